"""/metrics read by Prometheus' own text parser (prometheus-client), against both
components, and the scrape annotations that point Prometheus at it."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import SERVER_WASM, SPIN_WASM, one, start_spin


@pytest.fixture(params=["server", "spin"])
def replica(request, tmp_path, replicas):
    env = {"POD_NAME": "visits-1", "LISTEN_ADDR": "127.0.0.1:0"}
    if request.param == "server":
        return replicas(tmp_path, "/data", env, wasm=SERVER_WASM)
    return start_spin(replicas, tmp_path, env)


def scrape(replica):
    status, headers, body = replica.get("/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    return {family.name: family for family in text_string_to_metric_families(body)}


def test_metrics_parse_and_follow_the_log(replica, tmp_path):
    families = scrape(replica)
    # prometheus-client strips the _total suffix from a counter family's name.
    assert families["visits"].type == "counter"
    assert families["visits_log_size_bytes"].type == "gauge"
    (sample,) = families["visits"].samples
    assert sample.name == "visits_total" and sample.value == 0
    assert sample.labels == {"pod": "visits-1"}

    for _ in range(3):
        assert replica.get("/")[0] == 200
    families = scrape(replica)
    assert families["visits"].samples[0].value == 3
    size = (tmp_path / "visits.txt").stat().st_size
    assert families["visits_log_size_bytes"].samples[0].value == size == 3 * 33
    assert scrape(replica)["visits"].samples[0].value == 3, "scraping records nothing"




def test_pods_carry_scrape_annotations_that_match_the_server(rendered):
    sts = one(rendered, "StatefulSet")
    annotations = sts["spec"]["template"]["metadata"]["annotations"]
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert int(annotations["prometheus.io/port"]) == container["ports"][0]["containerPort"]
