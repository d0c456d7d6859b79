"""k8s/spin/ (the Spin component on containerd-shim-spin) as data: validated strictly against the
Kubernetes schemas, and cross-checked with the image's spin.toml, the runtime config and the
runtime-class-manager Shim, so the pieces refer to each other correctly."""

import tomllib

import pytest
from test_manifests import strip_tooling_labels, validate_strictly

from conftest import ROOT, kustomize, one, render_chart

SPIN_TOML = tomllib.loads((ROOT / "spin-image/spin.toml").read_text())
DOCKERFILE = (ROOT / "spin-image/Dockerfile").read_text()


@pytest.fixture(scope="module")
def spin_rendered():
    return kustomize(ROOT / "k8s" / "spin")


def pod_of(objects):
    return one(objects, "StatefulSet")["spec"]["template"]["spec"]


def container_of(objects):
    (container,) = pod_of(objects)["containers"]
    return container


def env_of(container):
    return {var["name"]: var for var in container["env"]}


def test_validates_strictly(spin_rendered, tmp_path):
    assert sorted(o["kind"] for o in spin_rendered) == [
        "ConfigMap", "NetworkPolicy", "PodDisruptionBudget", "Service", "Service", "StatefulSet"]
    validate_strictly(spin_rendered, tmp_path, "k8s-spin")
    validate_strictly(render_chart({"component": "spin"}), tmp_path, "chart-spin")


def test_runs_on_the_spin_shims_runtime_class(spin_rendered, runtime_class_objects):
    name = pod_of(spin_rendered)["runtimeClassName"]
    assert name == "wasmtime-spin-v2"
    shim = one(runtime_class_objects, "Shim", "spin-v2")
    assert shim["spec"]["runtimeClass"]["name"] == name
    location = shim["spec"]["fetchStrategy"]["anonHttp"]["location"]
    assert "/v0.24.0/containerd-shim-spin-v2-" in location, "the shim the tests run"
    assert shim["spec"]["runtimeClass"]["handler"] == "spin-v2"


def test_the_database_is_on_the_claim(spin_rendered):
    sts = one(spin_rendered, "StatefulSet")
    container = container_of(spin_rendered)
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    config_mount = mounts.pop("runtime-config")
    assert config_mount["mountPath"] == "/runtime-config.toml", "where the shim reads it"
    assert config_mount["readOnly"] is True
    (volume,) = pod_of(spin_rendered)["volumes"]
    config_map = one(spin_rendered, "ConfigMap")
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    runtime_config = tomllib.loads(config_map["data"][config_mount["subPath"]])
    assert mounts[claim["metadata"]["name"]]["mountPath"] == "/data"
    assert runtime_config["sqlite_database"]["default"] == {"type": "spin", "path": "/data/visits.db"}
    # Spin's default key-value store would go to /.spin on the read-only root and stop the app.
    assert runtime_config["key_value_store"]["default"] == {"type": "spin"}
    assert "default" in SPIN_TOML["component"]["visits"]["sqlite_databases"]


def test_the_image_holds_the_manifest_and_the_sqlite_build(spin_rendered):
    component = SPIN_TOML["component"]["visits"]
    assert f"/{component['source']}" in DOCKERFILE
    assert "COPY spin-image/spin.toml /spin.toml" in DOCKERFILE
    assert 'ENTRYPOINT ["/"]' in DOCKERFILE, "the shim starts no task without one"
    assert component["environment"]["VISIT_STORE"] == "sqlite"
    assert container_of(spin_rendered)["image"] == "localhost:5000/spin-visits-spin:0.1.0"


def test_settings_reach_the_component_as_spin_variables(spin_rendered):
    env = env_of(container_of(spin_rendered))
    variables = SPIN_TOML["component"]["visits"]["variables"]
    for name in env:
        if name.startswith("SPIN_VARIABLE_"):
            variable = name.removeprefix("SPIN_VARIABLE_").lower()
            assert variable in SPIN_TOML["variables"], name
            assert variables[variable] == f"{{{{ {variable} }}}}", name
    assert env["SPIN_VARIABLE_POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    sts = one(spin_rendered, "StatefulSet")
    assert env["SPIN_VARIABLE_VOLUME_CAPACITY"]["value"] == \
        sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]


def test_peers_are_every_replica_behind_the_headless_service_and_allowed(spin_rendered):
    sts = one(spin_rendered, "StatefulSet")
    container = container_of(spin_rendered)
    env = env_of(container)
    (http_port,) = [p["containerPort"] for p in container["ports"] if p["name"] == "http"]
    assert env["SPIN_HTTP_LISTEN_ADDR"]["value"] == f"0.0.0.0:{http_port}"
    headless = one(spin_rendered, "Service", sts["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    peers = env["SPIN_VARIABLE_PEERS"]["value"].split(",")
    name, service = sts["metadata"]["name"], sts["spec"]["serviceName"]
    assert peers == [f"{name}-{i}.{service}:{http_port}" for i in range(sts["spec"]["replicas"])]
    assert env["SPIN_VARIABLE_PEER_SERVICE"]["value"] == f"{service}:{http_port}"
    assert SPIN_TOML["component"]["visits"]["allowed_outbound_hosts"] == \
        ["http://*.{{ peer_service }}"]


def test_the_prestop_sleep_fits_in_the_grace_period(spin_rendered):
    """Spin has no drain; the kubelet's preStop sleep keeps the pod serving while its endpoint
    leaves the Service, and the grace period counts from the hook's start."""
    pod = pod_of(spin_rendered)
    sleep = container_of(spin_rendered)["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert 1 < sleep < pod["terminationGracePeriodSeconds"]
    with pytest.raises(Exception, match="must exceed spin.preStopSleepSeconds"):
        render_chart({"component": "spin", "spin": {
            "image": {"repository": "r", "tag": "t"}, "runtimeClassName": "x", "resources": {},
            "preStopSleepSeconds": 10, "terminationGracePeriodSeconds": 10}})


def test_probes_and_the_restricted_profile(spin_rendered):
    pod = pod_of(spin_rendered)
    container = container_of(spin_rendered)
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    security = pod["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] != 0 and "fsGroup" in security
    assert security["seccompProfile"]["type"] == "RuntimeDefault"
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["readOnlyRootFilesystem"] is True
    assert "memory" in container["resources"]["limits"]


def test_the_chart_switch_renders_k8s_spin(spin_rendered):
    """`component: spin` gives the same objects as k8s/spin/, field for field (the runtime
    config's text included); only the labels that name the tool differ."""
    chart = render_chart({"component": "spin"})
    assert strip_tooling_labels(chart) == strip_tooling_labels(spin_rendered)


def test_the_chart_switch_follows_the_name_replicas_and_port():
    objects = render_chart({"component": "spin", "replicas": 2, "containerPort": 9000,
                            "fullnameOverride": "lab"})
    env = env_of(container_of(objects))
    assert env["SPIN_VARIABLE_PEERS"]["value"] == "lab-0.lab-headless:9000,lab-1.lab-headless:9000"
    assert env["SPIN_VARIABLE_PEER_SERVICE"]["value"] == "lab-headless:9000"
    assert env["SPIN_HTTP_LISTEN_ADDR"]["value"] == "0.0.0.0:9000"
    volume = pod_of(objects)["volumes"][0]
    assert volume["configMap"]["name"] == one(objects, "ConfigMap")["metadata"]["name"]
