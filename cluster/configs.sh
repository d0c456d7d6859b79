# The node's configuration files, written into $CLUSTER_STATE/config by scripts/cluster.sh.
# Sourced after cluster/lib.sh and cluster/pki.sh.
# shellcheck shell=bash

CONF="$CLUSTER_STATE/config"

# Writes stdin to FILE only when it differs: kube-proxy exits when its config file changes
# ("content of the proxy server's configuration file was updated"), so a second `up` must not
# touch an unchanged file.
write_if_changed() {
    local tmp="$1.new"
    cat >"$tmp"
    if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv "$tmp" "$1"; fi
}

# containerd 2 (config version 3): every path of its own under $CLUSTER_STATE, runc by the
# cgroupfs driver (the kubelet's here: no systemd), the locally built pause image pinned as the
# sandbox image. The wasmtime runtime is NOT here: runtime-class/by-hand/install-wasmtime-shim.sh
# appends it, as it does on a user's node.
write_containerd_config() {
    [[ -f $CONF/containerd.toml ]] && return 0
    cat >"$CONF/containerd.toml" <<EOF
version = 3
root = '$CLUSTER_STATE/containerd/root'
state = '$CLUSTER_STATE/containerd/state'

[grpc]
  address = '$CLUSTER_STATE/containerd/containerd.sock'

[ttrpc]
  address = '$CLUSTER_STATE/containerd/containerd.sock.ttrpc'

[metrics]
  address = ''

[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = '$PAUSE_IMAGE'

[plugins.'io.containerd.cri.v1.runtime']
  # Pod network namespaces under containerd's state, not the host's /var/run/netns.
  netns_mounts_under_state_dir = true
  # This machine's root cannot lower a process's oom_score_adj (no CAP_SYS_RESOURCE in its
  # sandbox): runc's init failed with "failed to update /proc/self/oom_score_adj: Permission
  # denied" for every pod. Keep pods' scores at or above containerd's own.
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ['$CLUSTER_CNI_BIN']
    conf_dir = '$CLUSTER_STATE/cni/net.d'
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = 'runc'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = '$CLUSTER_BIN/runc'
        Root = '$CLUSTER_STATE/runc'
        SystemdCgroup = false
EOF
}

# The pods' network: one bridge in the node's namespace. No masquerade and no route out of the
# namespace: pods reach each other, the node and Services, nothing else.
write_cni_config() {
    mkdir -p "$CLUSTER_STATE/cni/net.d" "$CLUSTER_STATE/cni/ipam"
    write_if_changed "$CLUSTER_STATE/cni/net.d/10-spin-visits.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "spin-visits",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$CLUSTER_STATE/cni/ipam",
        "ranges": [[{"subnet": "$POD_CIDR"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
}

write_kubelet_config() {
    # Pods' resolv.conf for dnsPolicy Default (CoreDNS itself): no upstream resolver exists.
    printf 'nameserver %s\n' "$DNS_SERVICE_IP" | write_if_changed "$CONF/resolv.conf"
    write_if_changed "$CONF/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://$CLUSTER_STATE/containerd/containerd.sock
# cgroup v1 and no systemd here: the cgroupfs driver, as containerd's runc (SystemdCgroup = false).
cgroupDriver: cgroupfs
cgroupRoot: /$CLUSTER_CGROUP
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
clusterDomain: $CLUSTER_DOMAIN
clusterDNS: [$DNS_SERVICE_IP]
resolvConf: $CONF/resolv.conf
failSwapOn: false
maxPods: 30
# A shared build machine: do not evict pods or delete images because others fill the disk.
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, nodefs.inodesFree: 1%, imagefs.available: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
EOF
}

write_kube_proxy_config() {
    write_if_changed "$CONF/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $CLUSTER_STATE/kube-proxy.kubeconfig}
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: $NODE_NAME
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# Zeroes leave the machine-wide conntrack settings alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
}

# Static local PersistentVolumes, one directory each, for the default StorageClass "standard"
# (no provisioner: the PV controller binds each claim to a free volume once its pod is scheduled).
write_storage_manifest() {
    local n=${1:-8} i
    {
        cat <<EOF
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Retain
EOF
        for ((i = 0; i < n; i++)); do
            mkdir -p "$CLUSTER_STATE/volumes/pv-$i"
            cat <<EOF
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: local-pv-$i
  labels: {spin-visits-cluster/volume: local}
spec:
  capacity: {storage: 100Mi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: standard
  local: {path: $CLUSTER_STATE/volumes/pv-$i}
  nodeAffinity:
    required:
      nodeSelectorTerms:
        - matchExpressions:
            - {key: kubernetes.io/hostname, operator: In, values: [$NODE_NAME]}
EOF
        done
    } >"$CONF/storage.yaml"
}

# The image registry (distribution's cmd/registry) on the node's own loopback at $REGISTRY_ADDR,
# plain HTTP as a local registry is: containerd's CRI pulls a localhost registry over HTTP by
# default, and a user's `buildah push` in the node's namespace reaches the same address.
write_registry_config() {
    mkdir -p "$CLUSTER_STATE/registry"
    write_if_changed "$CONF/registry.yaml" <<EOF
version: 0.1
log:
  level: warn
  formatter: text
storage:
  filesystem:
    rootdirectory: $CLUSTER_STATE/registry
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
EOF
}
