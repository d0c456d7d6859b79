"""`helm install` of charts/spin-visits on the real node, through the Helm SDK's own install
action (helm-python-sdk, the Helm library the chart tests render with), in a namespace of its
own beside the kustomize deployment: three Ready pods on the wasmtime RuntimeClass, each with
its own Bound claim, and the release's Service answering visits."""

import helm_python as helm

from cluster_helpers import ROOT

NAMESPACE = "helm-test"
RELEASE = "visits"
LABELS = f"app.kubernetes.io/name=spin-visits,app.kubernetes.io/instance={RELEASE}"
PODS = [f"{RELEASE}-{i}" for i in range(3)]


def test_helm_install_gives_three_ready_pods(cluster):
    with helm.Config(kubeconfig_path=cluster.kubeconfig, namespace=NAMESPACE) as config:
        try:
            release = config.install(str(ROOT / "charts" / "spin-visits"), RELEASE,
                                     namespace=NAMESPACE, create_namespace=True,
                                     wait="watcher", timeout=300)
            assert release["status"] == "deployed", release["status"]
            found = cluster.wait("three Ready pods",
                                 lambda: cluster.all_ready(PODS, LABELS, NAMESPACE), timeout=60)
            for name in PODS:
                assert found[name]["spec"]["runtimeClassName"] == "wasmtime"
                claim = cluster.json("get", "pvc", "-n", NAMESPACE, f"data-{name}")
                assert claim["status"]["phase"] == "Bound"
            service = cluster.json("get", "service", "-n", NAMESPACE, RELEASE)
            status, headers, body = cluster.http(f"http://{service['spec']['clusterIP']}/")
            assert status == 200, body
            assert headers["x-served-by"] in PODS
        finally:
            config.uninstall(RELEASE, ignore_not_found=True, wait="watcher", timeout=120)
            cluster.kubectl("delete", "namespace", NAMESPACE, "--wait=true", "--timeout=120s",
                            timeout=150, check=False)
