"""The manifests as data: rendered by kustomize and Helm, validated strictly against the
Kubernetes 1.37 schemas, and cross-checked so the pieces refer to each other correctly."""

import copy
import re
import subprocess
from pathlib import Path

import helm_python as helm
import jsonschema
import pytest
import yaml

from conftest import CHART, ROOT, one, render_chart, tool

K8S_VERSION = "1.37.0"
TOOLING_LABELS = ("app.kubernetes.io/managed-by", "helm.sh/chart")


def validate_strictly(objects, tmp_path, name):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump_all(objects))
    result = subprocess.run(
        [tool("kubernetes-validate"), "--strict", "-k", K8S_VERSION, str(path)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    passed = re.findall(r"passed for resource", result.stdout + result.stderr)
    assert len(passed) == len(objects), result.stdout + result.stderr


def test_kustomize_output_validates_strictly(kustomized, tmp_path):
    assert sorted(o["kind"] for o in kustomized) == [
        "NetworkPolicy", "PodDisruptionBudget", "Service", "Service", "StatefulSet"]
    validate_strictly(kustomized, tmp_path, "kustomize")


def test_chart_default_render_validates_strictly(chart_default, tmp_path):
    validate_strictly(chart_default, tmp_path, "chart")


def test_runtime_class_validates_strictly(runtime_class_objects, tmp_path):
    core = [o for o in runtime_class_objects if o["apiVersion"] == "node.k8s.io/v1"]
    assert [o["kind"] for o in core] == ["RuntimeClass"]
    validate_strictly(core, tmp_path, "runtime-class")


def test_strict_validation_catches_an_unknown_field(kustomized, tmp_path):
    """The validator must be able to fail: a misspelt field is refused."""
    broken = copy.deepcopy(kustomized)
    one(broken, "StatefulSet")["spec"]["podManagmentPolicy"] = "Parallel"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump_all(broken))
    result = subprocess.run(
        [tool("kubernetes-validate"), "--strict", "-k", K8S_VERSION, str(path)],
        capture_output=True, text=True,
    )
    assert result.returncode != 0


@pytest.mark.parametrize("name", ["wasmtime", "spin-v2"])
def test_shim_validates_against_the_runtime_class_manager_crd(runtime_class_objects, name):
    crd = yaml.safe_load((ROOT / "runtime-class/schema/shim-v1alpha1.yaml").read_text())
    shim = one(runtime_class_objects, "Shim", name)
    assert shim["apiVersion"] == f"{crd['group']}/{crd['version']}"
    assert shim["kind"] == crd["kind"]
    assert "namespace" not in shim["metadata"], "Shims are cluster-scoped"
    schema = crd["openAPIV3Schema"]
    jsonschema.validate(shim, schema)
    for breakage in (lambda s: s["spec"].pop("runtimeClass"),
                     lambda s: s["spec"]["rolloutStrategy"].update(type="rollin"),
                     lambda s: s["spec"]["fetchStrategy"].update(anonymousHttp={})):
        bad = copy.deepcopy(shim)
        breakage(bad)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


def strip_tooling_labels(objects):
    objects = copy.deepcopy(objects)
    for obj in objects:
        for meta in metadata_blocks(obj):
            labels = meta.get("labels", {})
            for label in TOOLING_LABELS:
                labels.pop(label, None)
    return sorted(objects, key=lambda o: (o["kind"], o["metadata"]["name"]))


def metadata_blocks(obj):
    yield obj["metadata"]
    spec = obj.get("spec", {})
    if "template" in spec:
        yield spec["template"]["metadata"]
    for claim in spec.get("volumeClaimTemplates", []):
        yield claim["metadata"]


def test_chart_default_render_is_the_kustomize_output(kustomized, chart_default):
    """Same objects, field for field; only the labels that name the tool differ."""
    assert strip_tooling_labels(chart_default) == strip_tooling_labels(kustomized)


def test_chart_lints_clean():
    result = helm.lint(str(CHART))
    assert result["errors"] == []
    assert [m for m in result["messages"] if m["severity"] > 1] == []


def test_chart_values_are_documented_and_take_effect():
    values_text = (CHART / "values.yaml").read_text()
    documented = set(re.findall(r"## @param (\S+)", values_text))
    for key in ["image.repository", "image.tag", "replicas", "podManagementPolicy",
                "runtimeClassName", "persistence.size", "persistence.storageClass"]:
        assert key in documented, key

    objects = render_chart({
        "replicas": 5,
        "podManagementPolicy": "OrderedReady",
        "runtimeClassName": "wasmtime-v2",
        "image": {"repository": "registry.example/visits", "tag": "1.2.3"},
        "persistence": {"size": "1Gi", "storageClass": "fast"},
    })
    sts = one(objects, "StatefulSet")
    assert sts["spec"]["replicas"] == 5
    assert sts["spec"]["podManagementPolicy"] == "OrderedReady"
    pod = sts["spec"]["template"]["spec"]
    assert pod["runtimeClassName"] == "wasmtime-v2"
    assert pod["containers"][0]["image"] == "registry.example/visits:1.2.3"
    claim = sts["spec"]["volumeClaimTemplates"][0]["spec"]
    assert claim["resources"]["requests"]["storage"] == "1Gi"
    assert claim["storageClassName"] == "fast"


# --- cross-references, on both renders (the `rendered` fixture) ---------------------


def container(sts):
    (only,) = sts["spec"]["template"]["spec"]["containers"]
    return only


def env_of(c):
    return {e["name"]: e for e in c["env"]}


def test_the_seed_shape(rendered):
    sts = one(rendered, "StatefulSet")
    assert sts["spec"]["replicas"] == 3
    assert sts["spec"]["podManagementPolicy"] == "Parallel"
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "100Mi"
    cluster_ip = [s for s in rendered if s["kind"] == "Service" and s["spec"].get("clusterIP") != "None"]
    assert [s["spec"].get("type", "ClusterIP") for s in cluster_ip] == ["ClusterIP"]
    assert cluster_ip[0]["spec"]["ports"][0]["port"] == 80


def test_selectors_match_the_pod_labels(rendered):
    sts = one(rendered, "StatefulSet")
    pod_labels = sts["spec"]["template"]["metadata"]["labels"]
    selectors = [sts["spec"]["selector"]["matchLabels"]]
    selectors += [s["spec"]["selector"] for s in rendered if s["kind"] == "Service"]
    for selector in selectors:
        assert selector and selector.items() <= pod_labels.items()
    for key in ["app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component",
                "app.kubernetes.io/part-of", "app.kubernetes.io/version"]:
        assert key in pod_labels and key in sts["metadata"]["labels"], key


def test_service_name_is_the_headless_service(rendered):
    sts = one(rendered, "StatefulSet")
    headless = one(rendered, "Service", sts["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"


def test_claim_is_mounted_at_data_dir(rendered):
    sts = one(rendered, "StatefulSet")
    c = container(sts)
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert claim["metadata"]["name"] in mounts
    assert mounts[claim["metadata"]["name"]] == env_of(c)["DATA_DIR"]["value"]
    assert "volumes" not in sts["spec"]["template"]["spec"], "the claim template is the only volume"


def test_pod_name_comes_from_the_downward_api(rendered):
    pod_name = env_of(container(one(rendered, "StatefulSet")))["POD_NAME"]
    assert pod_name["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def named_port(c, name_or_number):
    """The containerPort a probe, hook or Service targetPort refers to, by name or number."""
    (port,) = [p for p in c["ports"] if name_or_number in (p["name"], p["containerPort"])]
    return port


def addr_port(c, variable):
    return int(env_of(c)[variable]["value"].rsplit(":", 1)[1])


def test_ports_line_up(rendered):
    """http (LISTEN_ADDR) carries visits, probes and Services; admin (ADMIN_ADDR) only the
    preStop hook."""
    c = container(one(rendered, "StatefulSet"))
    assert [p["name"] for p in c["ports"]] == ["http", "admin"]
    assert named_port(c, "http")["containerPort"] == addr_port(c, "LISTEN_ADDR")
    assert named_port(c, "admin")["containerPort"] == addr_port(c, "ADMIN_ADDR")
    for service in (s for s in rendered if s["kind"] == "Service"):
        for service_port in service["spec"]["ports"]:
            assert named_port(c, service_port["targetPort"])["name"] == "http"
    for probe in ("livenessProbe", "readinessProbe"):
        assert named_port(c, c[probe]["httpGet"]["port"])["name"] == "http"


def test_pre_stop_drains_through_the_admin_port_no_service_exposes(rendered):
    c = container(one(rendered, "StatefulSet"))
    hook = c["lifecycle"]["preStop"]["httpGet"]
    assert hook["path"] == "/drain"
    admin = named_port(c, hook["port"])
    assert admin["name"] == "admin" and admin["containerPort"] == addr_port(c, "ADMIN_ADDR")
    assert admin["containerPort"] != named_port(c, "http")["containerPort"]
    for service in (s for s in rendered if s["kind"] == "Service"):
        for service_port in service["spec"]["ports"]:
            assert service_port["targetPort"] not in (admin["name"], admin["containerPort"]), \
                service["metadata"]["name"]
    # (the NetworkPolicy side: test_chart_extras.py)


def test_grace_period_outlasts_the_drain(rendered):
    """The grace period counts from the hook's start: it must cover the longest /drain
    (delay, then in-flight work up to the timeout) with room to spare."""
    sts = one(rendered, "StatefulSet")
    env = env_of(container(sts))
    drain = int(env["DRAIN_DELAY_SECONDS"]["value"]) + int(env["DRAIN_TIMEOUT_SECONDS"]["value"])
    assert sts["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > drain


def test_server_settings_are_the_interface_defaults(rendered):
    env = {k: v["value"] for k, v in env_of(container(one(rendered, "StatefulSet"))).items() if "value" in v}
    assert env["MAX_CONNECTIONS"] == "900", "descriptors must remain under the pod's soft limit of 1024"
    assert int(env["MAX_CONNECTIONS"]) < 1024
    assert {k: env[k] for k in ("WRITE_TIMEOUT_SECONDS", "IDLE_TIMEOUT_SECONDS", "HEADER_READ_TIMEOUT_SECONDS",
                                "ADMIN_ADDR", "DRAIN_DELAY_SECONDS", "DRAIN_TIMEOUT_SECONDS",
                                "PEER_CACHE_MILLISECONDS")} == {
        "WRITE_TIMEOUT_SECONDS": "30", "IDLE_TIMEOUT_SECONDS": "60", "HEADER_READ_TIMEOUT_SECONDS": "10",
        "ADMIN_ADDR": "0.0.0.0:9090", "DRAIN_DELAY_SECONDS": "2", "DRAIN_TIMEOUT_SECONDS": "20",
        "PEER_CACHE_MILLISECONDS": "500"}


def test_volume_capacity_is_the_claims_request(rendered):
    sts = one(rendered, "StatefulSet")
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    capacity = env_of(container(sts))["VOLUME_CAPACITY"]["value"]
    assert capacity == claim["spec"]["resources"]["requests"]["storage"]


def test_chart_server_values_take_effect():
    sts = one(render_chart({
        "persistence": {"size": "2Gi"}, "terminationGracePeriodSeconds": 70,
        "server": {"adminPort": 9191, "writeTimeoutSeconds": 5, "drainDelaySeconds": 10,
                   "drainTimeoutSeconds": 50, "peerCacheMilliseconds": 1000, "maxConnections": 4000},
    }), "StatefulSet")
    c = container(sts)
    env = {k: v.get("value") for k, v in env_of(c).items()}
    assert env["VOLUME_CAPACITY"] == "2Gi"
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert (env["ADMIN_ADDR"], env["WRITE_TIMEOUT_SECONDS"], env["DRAIN_DELAY_SECONDS"],
            env["DRAIN_TIMEOUT_SECONDS"], env["PEER_CACHE_MILLISECONDS"], env["MAX_CONNECTIONS"]) == (
        "0.0.0.0:9191", "5", "10", "50", "1000", "4000")
    assert named_port(c, c["lifecycle"]["preStop"]["httpGet"]["port"])["containerPort"] == 9191
    assert sts["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 70


@pytest.mark.parametrize("values, message", [
    ({"terminationGracePeriodSeconds": 22}, "must exceed"),
    ({"server": {"drainTimeoutSeconds": 40}}, "must exceed"),
    ({"server": {"adminPort": 8080}}, "must differ"),
    ({"server": {"peerCacheMilliseconds": 1001}}, "peerCacheMilliseconds"),
])
def test_chart_refuses_a_grace_period_shorter_than_the_drain_and_other_clashes(values, message):
    with pytest.raises(helm.HelmError, match=message):
        render_chart(values)


def test_peers_are_found_through_the_headless_service(rendered):
    """Scaling must not need a manifest edit: the pods resolve the headless Service, which
    names every pod, on each /visits/all. PEERS would override it, so it is not set."""
    sts = one(rendered, "StatefulSet")
    env = env_of(container(sts))
    assert "PEERS" not in env
    headless = one(rendered, "Service", sts["spec"]["serviceName"])
    assert headless["spec"]["publishNotReadyAddresses"] is True
    (port,) = headless["spec"]["ports"]
    assert env["PEER_SERVICE"]["value"] == f"{headless['metadata']['name']}:{port['port']}"
    assert port["port"] == container(sts)["ports"][0]["containerPort"]


def test_chart_peer_service_follows_the_name_and_port():
    sts = one(render_chart({"replicas": 5, "containerPort": 9000}, name="lab"), "StatefulSet")
    assert env_of(container(sts))["PEER_SERVICE"]["value"] == "lab-headless:9000"


def test_probes_are_the_health_routes(rendered):
    c = container(one(rendered, "StatefulSet"))
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_runtime_class_is_defined_in_runtime_class_dir(rendered, runtime_class_objects):
    """Both set-up paths give the RuntimeClass the pods name; each handler is the containerd
    runtime that path registers."""
    name = one(rendered, "StatefulSet")["spec"]["template"]["spec"]["runtimeClassName"]
    by_hand = one(runtime_class_objects, "RuntimeClass", name)
    assert by_hand["handler"] == "wasmtime"
    script = (ROOT / "runtime-class/by-hand/install-wasmtime-shim.sh").read_text()
    assert f'containerd.runtimes.{by_hand["handler"]}]' in script
    shim = one(runtime_class_objects, "Shim", "wasmtime")
    assert shim["spec"]["runtimeClass"]["name"] == name
    # runtime-class-manager registers the tarball's binary minus "containerd-shim-".
    binary = "containerd-shim-wasmtime-v1"
    assert shim["spec"]["runtimeClass"]["handler"] == binary.removeprefix("containerd-shim-")
    assert binary in script
    assert shim["spec"]["nodeSelector"] == by_hand["scheduling"]["nodeSelector"]


def test_pods_meet_the_restricted_pod_security_profile(rendered):
    """Pod Security Standards, "restricted", as the admission controller checks it."""
    pod = one(rendered, "StatefulSet")["spec"]["template"]["spec"]
    pod_sc = pod["securityContext"]
    assert pod_sc["runAsNonRoot"] is True
    assert pod_sc.get("runAsUser", 1) != 0
    assert pod_sc["seccompProfile"]["type"] in ("RuntimeDefault", "Localhost")
    assert "fsGroup" in pod_sc, "the claim must stay writable for the non-root user"
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(key)
    for c in pod["containers"]:
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert not sc["capabilities"].get("add")
        assert not sc.get("privileged")
        assert "ports" not in c or all("hostPort" not in p for p in c["ports"])
    assert all(v.get("persistentVolumeClaim") or v.get("configMap") or v.get("secret")
               for v in pod.get("volumes", [])), "no hostPath volumes"


def test_resources_are_bounded(rendered):
    # Requests for both; a memory limit. No CPU limit: BENCHMARKS.md section 9 measured a CFS
    # quota halving a saturated replica's rate and doubling its p99 (README, values table).
    resources = container(one(rendered, "StatefulSet"))["resources"]
    assert {"cpu", "memory"} <= resources["requests"].keys()
    assert "memory" in resources["limits"]
