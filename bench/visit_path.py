"""Section 1, the visit path: `GET /` at 16 connections on every server.

Run by bench/run.py as its first step, or alone, which rewrites only this section, its rows of
the targets table and the notes in BENCHMARKS.md:

    source scripts/tools.sh && cargo build --release --target wasm32-wasip2 \\
        -p spin-visits-http -p spin-visits-server \\
      && cargo build --profile bench-native -p spin-visits-native \\
      && python3 bench/visit_path.py --seconds 10 --runs 3

(the seed app needs Flask and waitress, as scripts/bench.sh installs them).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import (CHECKS, NATIVE_TARGET, PYTHON_TARGET, ROOT, machine, server_target,
                    spin_target, splice, spread, update_targets, without_backtraces, wrk)

HEADING = "## 1. Visit path: `GET /` (appends a line), 16 connections"


def every_server(args, report):
    report.append(f"`wrk -t2 -c16 -d{args.seconds}s --latency`, {args.runs} runs each, fresh empty log per "
                  "run; median (min–max).\n")
    report.append("| server | requests/s | p50 ms | p99 ms |")
    report.append("|---|---|---|---|")
    medians, p99s = {}, {}
    for target in [spin_target(), server_target(), NATIVE_TARGET, PYTHON_TARGET]:
        runs = []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as data_dir:
                target.start(Path(data_dir))
                try:
                    runs.append(wrk(f"http://{target.addr}/", 16, args.seconds))
                finally:
                    target.stop()
        rps, p50, p99 = zip(*runs)
        medians[target.name] = statistics.median(rps)
        p99s[target.name] = statistics.median(p99)
        report.append(f"| {target.name} | {spread(rps)} | {spread(p50, '{:.2f}')} | {spread(p99, '{:.2f}')} |")
        print(f"  {target.name}: {statistics.median(rps):,.0f} req/s", flush=True)
    native, python = medians[NATIVE_TARGET.name], medians[PYTHON_TARGET.name]
    report.append("\n| component | × native | × seed app |")
    report.append("|---|---|---|")
    for name in (spin_target().name, server_target().name):
        report.append(f"| {name} | {medians[name] / native:.2f} | {medians[name] / python:.1f} |")
        CHECKS.append((f"{name}: ≥ 0.5× native", f"{medians[name] / native:.2f}×", medians[name] / native >= 0.5))
        CHECKS.append((f"{name}: ≥ 10× the seed app", f"{medians[name] / python:.1f}×", medians[name] / python >= 10))
        CHECKS.append((f"{name}: p99 ≤ 2 ms at 16 connections", f"{p99s[name]:.2f} ms", p99s[name] <= 2))
    report.append("")


def step(args, report):
    """Appends this section to `report` (a list of markdown lines)."""
    print("visit_path", flush=True)
    without_backtraces()
    report.append(f"{HEADING}\n")
    every_server(args, report)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    parser.add_argument("--runs", type=int, default=3, help="runs (rounds) per figure")
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    args = parser.parse_args()
    report = []
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = os.getloadavg()[0]  # other work on the machine shows up as spread in the figures
    step(args, report)
    command = f"python3 bench/visit_path.py --seconds {args.seconds} --runs {args.runs}"
    report.insert(1, f"Measured on its own by `{command}` on {started}, after the rest of this file. "
                     f"Machine: {machine()}; load average {load:.1f} when it started. Compare within "
                     "this section: every row here comes from this one run.\n")
    for target, measured, met in CHECKS:
        print(f"{'met' if met else 'MISSED'}: {target}: {measured}")
    out = Path(args.out)
    notes = (ROOT / "bench" / "notes.md").read_text()
    text = splice(out.read_text(), HEADING, "\n".join(report) + "\n", notes)
    out.write_text(update_targets(text, CHECKS))
    print(f"wrote the section into {out}")


if __name__ == "__main__":
    sys.exit(main())
