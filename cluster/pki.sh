# Certificates and kubeconfigs of the cluster, made once with openssl into $CLUSTER_STATE/pki.
# Sourced by scripts/cluster.sh after cluster/lib.sh.
# shellcheck shell=bash

PKI="$CLUSTER_STATE/pki"

# cert NAME CN [O] [SANS]: a key and a certificate signed by the cluster CA.
pki_cert() {
    local name=$1 cn=$2 org=${3:-} sans=${4:-}
    [[ -f $PKI/$name.crt ]] && return 0
    local subj="/CN=$cn"
    [[ -n $org ]] && subj="/O=$org$subj"
    openssl genrsa -out "$PKI/$name.key" 2048 2>/dev/null
    openssl req -new -key "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
    {
        echo "basicConstraints=CA:FALSE"
        echo "keyUsage=critical,digitalSignature,keyEncipherment"
        if [[ -n $sans ]]; then
            echo "extendedKeyUsage=serverAuth,clientAuth"
            echo "subjectAltName=$sans"
        else
            echo "extendedKeyUsage=clientAuth"
        fi
    } >"$PKI/$name.ext"
    openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
        -CAcreateserial -days 3650 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
    rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

# kubeconfig NAME SERVER: a kubeconfig for the client certificate NAME.
pki_kubeconfig() {
    local name=$1 server=$2
    cat >"$CLUSTER_STATE/$name.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: spin-visits
  cluster:
    certificate-authority: $PKI/ca.crt
    server: $server
users:
- name: $name
  user:
    client-certificate: $PKI/$name.crt
    client-key: $PKI/$name.key
contexts:
- name: spin-visits
  context: {cluster: spin-visits, user: $name}
current-context: spin-visits
EOF
}

pki_make() {
    mkdir -p "$PKI"
    chmod 700 "$PKI"
    if [[ ! -f $PKI/ca.crt ]]; then
        openssl req -x509 -newkey rsa:2048 -nodes -keyout "$PKI/ca.key" -out "$PKI/ca.crt" \
            -days 3650 -subj "/CN=spin-visits-cluster-ca" 2>/dev/null
    fi
    # The API server is reached inside the node's namespace at NODE_IP, from pods at the
    # kubernetes Service's address, and from the host through the loopback forwarder.
    pki_cert apiserver kube-apiserver "" \
        "IP:$NODE_IP,IP:$KUBERNETES_SERVICE_IP,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$CLUSTER_DOMAIN,DNS:localhost"
    pki_cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
    pki_cert admin kubernetes-admin system:masters
    pki_cert controller-manager system:kube-controller-manager
    pki_cert scheduler system:kube-scheduler
    pki_cert kubelet "system:node:$NODE_NAME" system:nodes
    pki_cert kubelet-serving "system:node:$NODE_NAME" system:nodes "IP:$NODE_IP,DNS:$NODE_NAME"
    pki_cert kube-proxy system:kube-proxy
    if [[ ! -f $PKI/sa.key ]]; then
        openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
        openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
    fi
    local inside="https://$NODE_IP:$APISERVER_PORT"
    pki_kubeconfig controller-manager "$inside"
    pki_kubeconfig scheduler "$inside"
    pki_kubeconfig kubelet "$inside"
    pki_kubeconfig kube-proxy "$inside"
    # Inside the node's namespace, for the script itself.
    pki_kubeconfig admin "$inside"
}
