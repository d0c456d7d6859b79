"""What a platform team adds around the StatefulSet: a NetworkPolicy and a PodDisruptionBudget
(on by default, so in k8s/ too and compared with it by test_manifests.py), and an optional
ServiceMonitor, PrometheusRule and Ingress, each validated (the ServiceMonitor and the
PrometheusRule against the CRD schemas kept in tests/k8s/schema/, since kubernetes-validate
knows no CRDs) and linted with --strict."""

import copy
import re

import helm_python as helm
import jsonschema
import pytest
import yaml

from conftest import CHART, ROOT, one, render_chart
from test_manifests import validate_strictly

ALL_ON = {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
          "prometheusRule": {"enabled": True, "labels": {"release": "prometheus"}},
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
    (http,) = [p for p in container["ports"] if p["name"] == "http"]
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


def test_network_policy_keeps_the_admin_port_closed(rendered):
    """/drain is for the kubelet's preStop hook, which comes from the node (allowed by
    NetworkPolicy implementations generally, outside the API's rules): no pod may call it."""
    policy = one(rendered, "NetworkPolicy")
    pod_labels, _, peer, _ = traffic(rendered)
    hook_port = one(rendered, "StatefulSet")["spec"]["template"]["spec"]["containers"][0][
        "lifecycle"]["preStop"]["httpGet"]["port"]
    (admin,) = [p for p in one(rendered, "StatefulSet")["spec"]["template"]["spec"]["containers"][0]["ports"]
                if hook_port in (p["name"], p["containerPort"])]
    admin = {"name": admin["name"], "number": admin["containerPort"], "protocol": "TCP"}
    stranger = {"labels": {"app": "other"}, "namespace": "default", "namespace_labels": {}}
    for who in (peer, stranger):
        assert not allows(policy, "ingress", pod_labels, who, admin)
        assert not allows(policy, "egress", pod_labels, peer, admin)


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
    assert not [o for o in chart_default if o["kind"] in ("ServiceMonitor", "PrometheusRule", "Ingress")]
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


# What the server exposes on /metrics (README, Routes); histograms also as _bucket/_sum/_count.
METRICS = {"visits_total", "visits_log_size_bytes", "visits_volume_capacity_bytes",
           "visits_http_requests_total", "visits_open_connections", "visits_max_connections",
           "visits_accept_failures_total"}
HISTOGRAMS = {"visits_http_request_duration_seconds", "visits_commit_batch_size",
              "visits_sync_duration_seconds"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
                "unless", "offset", "inf", "nan"}


def metric_names(expr):
    """The series a PromQL expression reads: identifiers outside strings, label matchers and
    ranges, that are neither keywords nor called as functions."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    bare = re.sub(r"\{[^}]*\}", " ", bare)
    bare = re.sub(r"\[[^]]*\]", " ", bare)
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", bare):
        rest = bare[match.end():].lstrip()
        if rest.startswith("(") or match.group().lower() in PROMQL_WORDS:
            continue
        names.add(match.group())
    return names


def known_metric(name):
    return name in METRICS or any(name == h + suffix for h in HISTOGRAMS
                                  for suffix in ("_bucket", "_sum", "_count"))


def test_metric_names_finds_what_an_expression_reads():
    expr = 'sum by (pod) (rate(visits_http_requests_total{route="/", code=~"5.."}[5m])) > 0 and on (pod) up'
    assert metric_names(expr) == {"visits_http_requests_total", "up"}
    assert not known_metric("up") and known_metric("visits_sync_duration_seconds_bucket")


def test_prometheus_rule_validates_and_reads_only_the_servers_metrics():
    crd = yaml.safe_load((ROOT / "tests/k8s/schema/prometheusrule-v1.yaml").read_text())
    schema = crd["openAPIV3Schema"]
    objects = render_chart(ALL_ON)
    rule = one(objects, "PrometheusRule")
    assert rule["apiVersion"] == f"{crd['group']}/{crd['version']}" and rule["kind"] == crd["kind"]
    jsonschema.validate(rule, schema)
    assert rule["metadata"]["labels"]["release"] == "prometheus"
    groups = rule["spec"]["groups"]
    assert len({g["name"] for g in groups}) == len(groups), "group names are the list's key"
    alerts = {}
    for group in groups:
        for r in group["rules"]:
            assert ("alert" in r) != ("record" in r), r
            alerts[r["alert"]] = r
            names = metric_names(r["expr"])
            assert names and all(known_metric(n) for n in names), (r["alert"], names)
            assert r["expr"].count("(") == r["expr"].count(")")
            assert r["expr"].count("{") == r["expr"].count("}")
    assert {n for r in alerts.values() for n in metric_names(r["expr"])} >= {
        "visits_log_size_bytes", "visits_volume_capacity_bytes", "visits_open_connections",
        "visits_max_connections", "visits_http_requests_total"}
    assert metric_names(alerts["SpinVisitsVolumeNearlyFull"]["expr"]) == {
        "visits_log_size_bytes", "visits_volume_capacity_bytes"}
    assert alerts["SpinVisitsVolumeNearlyFull"]["expr"].rstrip().endswith("> 0.8")
    assert re.search(r"visits_open_connections\{[^}]*\}\s*>=\s*visits_max_connections",
                     alerts["SpinVisitsAtConnectionCap"]["expr"])
    failing = alerts["SpinVisitsFailing"]["expr"]
    assert 'route="/"' in failing and 'code=~"5.."' in failing and "rate(" in failing
    # Each alert waits some minutes, and looks at this release's pods only.
    sts = one(objects, "StatefulSet")
    for r in alerts.values():
        assert re.fullmatch(r"[0-9]+m", r["for"]) and int(r["for"][:-1]) >= 5, r["alert"]
        (pods,) = set(re.findall(r'pod=~"([^"]+)"', r["expr"]))
        assert re.fullmatch(pods, f"{sts['metadata']['name']}-0")
        assert not re.fullmatch(pods, "other-0") and not re.fullmatch(pods, "visits-headless")
        assert 'namespace="default"' in r["expr"]
    ratio = one(render_chart({"prometheusRule": {"enabled": True, "volumeFullRatio": 0.95}}), "PrometheusRule")
    assert "> 0.95" in ratio["spec"]["groups"][0]["rules"][0]["expr"]
    for breakage in (lambda m: m["spec"]["groups"][0]["rules"][0].update({"for": "10 minutes"}),
                     lambda m: m["spec"]["groups"][0]["rules"][0].pop("expr"),
                     lambda m: m["spec"]["groups"][0].update(rule=[]),
                     lambda m: m["spec"]["groups"][0].pop("name")):
        bad = copy.deepcopy(rule)
        breakage(bad)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)


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
                 {"prometheusRule": {"enabled": True, "lables": {}}},
                 {"prometheusRule": {"enabled": True, "volumeFullRatio": 90}},
                 {"server": {"drainTimeoutSecond": 20}},
                 {"podDisruptionBudget": {"enabled": True, "maxUnavailable": 0}}):
        assert helm.lint(str(CHART), typo, strict=True)["errors"], typo


def test_the_docs_values_table_lists_every_value():
    documented = set(re.findall(r"## @param (\S+)", (CHART / "values.yaml").read_text()))
    readme = (ROOT / "docs" / "kubernetes.md").read_text()
    table = set(re.findall(r"^\| `([\w.]+)` \|", readme, re.M))
    assert documented <= table, sorted(documented - table)
