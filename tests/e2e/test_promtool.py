"""Prometheus' own tool on what we give Prometheus: `promtool check metrics` on both components'
/metrics, and the chart's PrometheusRule checked and unit-tested with synthetic series
(`promtool test rules`): each alert fires where it should and stays quiet where it should not."""

import shutil
import subprocess

import pytest
import yaml

from conftest import SERVER_WASM, one, render_chart, start_spin

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(
    not PROMTOOL, reason="promtool not installed (scripts/test.sh installs Debian's prometheus)")

POD = 'pod="visits-0", namespace="default"'


def promtool(*args, stdin=None):
    done = subprocess.run([PROMTOOL, *args], input=stdin, capture_output=True, text=True)
    return done.returncode, done.stdout + done.stderr


@pytest.fixture(params=["server", "spin"])
def replica(request, tmp_path, replicas):
    env = {"POD_NAME": "visits-0", "LISTEN_ADDR": "127.0.0.1:0", "VOLUME_CAPACITY": "1Mi"}
    if request.param == "server":
        return replicas(tmp_path, "/data", env, wasm=SERVER_WASM)
    return start_spin(replicas, tmp_path, env)


def test_metrics_pass_promtool(replica):
    for path in ["/", "/", "/visits", "/nope"]:
        replica.get(path)
    status, _, body = replica.get("/metrics")
    assert status == 200
    code, out = promtool("check", "metrics", stdin=body)
    assert code == 0 and out.strip() == "", out


def test_promtool_catches_a_bad_exposition():
    """The check above can fail: a counter without _total is linted."""
    code, out = promtool("check", "metrics", stdin="# TYPE visits counter\nvisits 1\n")
    assert code != 0 and "_total" in out, out


@pytest.fixture
def rules_file(tmp_path):
    rule = one(render_chart({"prometheusRule": {"enabled": True}}), "PrometheusRule")
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    return path


def test_the_chart_rules_pass_promtool(rules_file):
    code, out = promtool("check", "rules", str(rules_file))
    assert code == 0, out


def alerts(name, firing_labels=None, summary=None):
    """The alerts of `name` expected at 20m: none, or one with these labels and summary."""
    exp = [] if firing_labels is None else [{"exp_labels": firing_labels, "summary": summary}]
    return {"eval_time": "20m", "alertname": name, "exp_alerts": exp}


def labels(**extra):
    return {"pod": "visits-0", "namespace": "default", **extra}


CASES = {
    "claim at 85% fires": (
        [f"visits_log_size_bytes{{{POD}}} 85+0x30", f"visits_volume_capacity_bytes{{{POD}}} 100+0x30"],
        alerts("SpinVisitsVolumeNearlyFull", labels(severity="warning"),
               "visits-0: visit log is 85% of its claim"),
    ),
    "claim at 50% is quiet": (
        [f"visits_log_size_bytes{{{POD}}} 50+0x30", f"visits_volume_capacity_bytes{{{POD}}} 100+0x30"],
        alerts("SpinVisitsVolumeNearlyFull"),
    ),
    "another release's pod is not ours": (
        ['visits_log_size_bytes{pod="other-0", namespace="default"} 95+0x30',
         'visits_volume_capacity_bytes{pod="other-0", namespace="default"} 100+0x30'],
        alerts("SpinVisitsVolumeNearlyFull"),
    ),
    "a replica at its cap fires": (
        [f"visits_open_connections{{{POD}}} 900+0x30", f"visits_max_connections{{{POD}}} 900+0x30"],
        alerts("SpinVisitsAtConnectionCap", labels(severity="warning"),
               "visits-0 has been at its connection cap (900) for 5 minutes"),
    ),
    "below the cap is quiet": (
        [f"visits_open_connections{{{POD}}} 10+0x30", f"visits_max_connections{{{POD}}} 900+0x30"],
        alerts("SpinVisitsAtConnectionCap"),
    ),
    "5xx on / fires": (
        [f'visits_http_requests_total{{{POD}, route="/", code="507"}} 0+10x30'],
        alerts("SpinVisitsFailing", labels(severity="critical"), "visits-0 answers visits with 5xx"),
    ),
    "5xx elsewhere is quiet": (
        [f'visits_http_requests_total{{{POD}, route="/visits/all", code="502"}} 0+10x30',
         f'visits_http_requests_total{{{POD}, route="/", code="200"}} 0+10x30'],
        alerts("SpinVisitsFailing"),
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_the_chart_rules_fire_as_meant(case, rules_file, tmp_path):
    series, expected = CASES[case]
    descriptions = {
        rule["alert"]: rule["annotations"]["description"]
        for group in yaml.safe_load(rules_file.read_text())["groups"] for rule in group["rules"]
    }
    for alert in expected["exp_alerts"]:
        alert["exp_annotations"] = {
            "summary": alert.pop("summary"), "description": descriptions[expected["alertname"]],
        }
    tests = {
        "rule_files": [str(rules_file)],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [
                {"series": line.rsplit(" ", 1)[0], "values": line.rsplit(" ", 1)[1]} for line in series
            ],
            "alert_rule_test": [expected],
        }],
    }
    path = tmp_path / "tests.yml"
    path.write_text(yaml.safe_dump(tests))
    code, out = promtool("test", "rules", str(path))
    assert code == 0, out
