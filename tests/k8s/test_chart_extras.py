"""What a platform team adds around the StatefulSet: a NetworkPolicy and a PodDisruptionBudget
(on by default, so in k8s/ too and compared with it by test_manifests.py), and an optional
ServiceMonitor and Ingress, each validated (the ServiceMonitor against the CRD schema kept in
tests/k8s/schema/, since kubernetes-validate knows no CRDs) and linted with --strict."""

import copy
import re

import helm_python as helm
import jsonschema
import pytest
import yaml

from conftest import CHART, ROOT, one, render_chart
from test_manifests import validate_strictly

ALL_ON = {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
          "ingress": {"enabled": True, "className": "nginx", "host": "visits.example",
                      "tlsSecretName": "visits-tls"}}


def selects(selector, labels):
    return selector.get("matchLabels", {}).items() <= labels.items() and not selector.get("matchExpressions")


def peer_matches(rule_peer, peer, own_namespace):
    if "ipBlock" in rule_peer:
        return False  # the pods never talk to addresses outside the cluster
    if "namespaceSelector" in rule_peer:
        namespace_ok = selects(rule_peer["namespaceSelector"], peer["namespace_labels"])
    else:
        namespace_ok = peer["namespace"] == own_namespace
    return namespace_ok and selects(rule_peer.get("podSelector", {}), peer["labels"])


def allows(policy, direction, pod_labels, peer, port, namespace="default"):
    """Does `policy` let a pod with `pod_labels` talk to (egress) or hear from (ingress) `peer`
    on `port` (the destination pod's {name, number, protocol})? As the NetworkPolicy API says:
    a policy that selects the pod and lists the direction allows only what a rule matches."""
    spec = policy["spec"]
    if not selects(spec["podSelector"], pod_labels) or direction.title() not in spec["policyTypes"]:
        return True
    for rule in spec.get(direction, []):
        peers = rule.get("to" if direction == "egress" else "from")
        if peers is not None and not any(peer_matches(p, peer, namespace) for p in peers):
            continue
        for rule_port in rule.get("ports") or [{}]:
            if rule_port.get("protocol", "TCP") != port["protocol"]:
                continue
            if rule_port.get("port") in (None, port["name"], port["number"]):
                return True
    return False


def traffic(rendered):
    sts = one(rendered, "StatefulSet")
    pod_labels = sts["spec"]["template"]["metadata"]["labels"]
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    (http,) = container["ports"]
    http = {"name": http["name"], "number": http["containerPort"], "protocol": "TCP"}
    peer = {"labels": pod_labels, "namespace": "default", "namespace_labels": {}}
    dns = {"labels": {"k8s-app": "kube-dns"}, "namespace": "kube-system",
           "namespace_labels": {"kubernetes.io/metadata.name": "kube-system"}}
    return pod_labels, http, peer, dns


def test_network_policy_lets_peers_and_dns_through_and_nothing_else(rendered):
    policy = one(rendered, "NetworkPolicy")
    pod_labels, http, peer, dns = traffic(rendered)
    stranger = {"labels": {"app": "other"}, "namespace": "default", "namespace_labels": {}}
    # /visits/all: out to each peer's http port, and in on it.
    assert allows(policy, "egress", pod_labels, peer, http), "the peers' port is blocked"
    assert allows(policy, "ingress", pod_labels, peer, http)
    # Users through the Service, probes, Prometheus: in on the http port from anywhere.
    assert allows(policy, "ingress", pod_labels, stranger, http)
    for protocol in ("UDP", "TCP"):
        assert allows(policy, "egress", pod_labels, dns, {"name": "dns", "number": 53, "protocol": protocol})
    # Nothing else: other pods, other ports, DNS servers that are not the cluster's.
    assert not allows(policy, "egress", pod_labels, stranger, http)
    assert not allows(policy, "egress", pod_labels, peer, {"name": "x", "number": 9090, "protocol": "TCP"})
    assert not allows(policy, "ingress", pod_labels, stranger, {"name": "x", "number": 9090, "protocol": "TCP"})
    assert not allows(policy, "egress", pod_labels, {**dns, "labels": {"app": "dnsmasq"}},
                      {"name": "dns", "number": 53, "protocol": "UDP"})


@pytest.mark.parametrize("breakage", [
    lambda p: p["spec"]["egress"][0]["ports"][0].update(port=80),
    lambda p: p["spec"]["egress"][0]["to"][0]["podSelector"]["matchLabels"].update(extra="x"),
    lambda p: p["spec"]["ingress"][0]["ports"][0].update(protocol="UDP"),
])
def test_a_policy_that_blocks_the_peers_port_is_caught(kustomized, breakage):
    """The check above must be able to fail: each of these would leave /visits/all blind."""
    policy = copy.deepcopy(one(kustomized, "NetworkPolicy"))
    breakage(policy)
    pod_labels, http, peer, _ = traffic(kustomized)
    assert not (allows(policy, "egress", pod_labels, peer, http)
                and allows(policy, "ingress", pod_labels, peer, http))


def test_disruption_budget_takes_one_replica_at_a_time(rendered):
    pdb = one(rendered, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1 and "minAvailable" not in pdb["spec"]
    pod_labels = one(rendered, "StatefulSet")["spec"]["template"]["metadata"]["labels"]
    assert selects(pdb["spec"]["selector"], pod_labels)


def test_optional_objects_are_off_by_default_and_the_rest_can_be_turned_off(chart_default):
    assert not [o for o in chart_default if o["kind"] in ("ServiceMonitor", "Ingress")]
    kinds = {o["kind"] for o in render_chart({"networkPolicy": {"enabled": False},
                                             "podDisruptionBudget": {"enabled": False}})}
    assert kinds == {"StatefulSet", "Service"}


def test_service_monitor_validates_against_its_crd_schema():
    crd = yaml.safe_load((ROOT / "tests/k8s/schema/servicemonitor-v1.yaml").read_text())
    objects = render_chart(ALL_ON)
    monitor = one(objects, "ServiceMonitor")
    assert monitor["apiVersion"] == f"{crd['group']}/{crd['version']}" and monitor["kind"] == crd["kind"]
    jsonschema.validate(monitor, crd["openAPIV3Schema"])
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    # It scrapes each pod once: exactly one Service matches, and it has the named port.
    (service,) = [s for s in objects if s["kind"] == "Service"
                  and selects(monitor["spec"]["selector"], s["metadata"]["labels"])]
    assert service["spec"]["clusterIP"] == "None"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in [p["name"] for p in service["spec"]["ports"]]
    assert endpoint["path"] == "/metrics"
    for breakage in (lambda m: m["spec"]["endpoints"][0].update(interval="30 seconds"),
                     lambda m: m["spec"]["endpoints"][0].update(prot="http"),
                     lambda m: m["spec"].pop("selector")):
        bad = copy.deepcopy(monitor)
        breakage(bad)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, crd["openAPIV3Schema"])


def test_ingress_validates_strictly_and_reaches_the_service(tmp_path):
    objects = render_chart(ALL_ON)
    ingress = one(objects, "Ingress")
    validate_strictly([ingress], tmp_path, "ingress")
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "visits.example"
    assert ingress["spec"]["tls"] == [{"hosts": ["visits.example"], "secretName": "visits-tls"}]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    service = one(objects, "Service", backend["name"])
    assert backend["port"]["name"] in [p["name"] for p in service["spec"]["ports"]]
    assert "host" not in one(render_chart({"ingress": {"enabled": True}}), "Ingress")["spec"]["rules"][0]


@pytest.mark.parametrize("values", [None, ALL_ON], ids=["default", "all-on"])
def test_chart_lints_clean_with_strict(values):
    result = helm.lint(str(CHART), values, strict=True)
    assert result["errors"] == []
    assert [m for m in result["messages"] if m["severity"] > 1] == []


def test_values_are_strict():
    """A misspelt value is refused instead of silently ignored."""
    for typo in ({"ingres": {"enabled": True}}, {"serviceMonitor": {"enabled": True, "intervall": "1m"}},
                 {"podDisruptionBudget": {"enabled": True, "maxUnavailable": 0}}):
        assert helm.lint(str(CHART), typo, strict=True)["errors"], typo


def test_readme_values_table_lists_every_value():
    documented = set(re.findall(r"## @param (\S+)", (CHART / "values.yaml").read_text()))
    readme = (ROOT / "README.md").read_text()
    table = set(re.findall(r"^\| `([\w.]+)` \|", readme, re.M))
    assert documented <= table, sorted(documented - table)
