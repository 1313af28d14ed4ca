#!/usr/bin/env python3
"""Draws req/s and p99 latency per scenario beside the pgbench ceiling of the same SQL,
from the JSON that `scripts/bench --out FILE` writes.

    chart.py results.json chart.png
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(source, target):
    results = json.load(open(source))
    scenarios = results["scenarios"]
    names = [s["name"] for s in scenarios]
    positions = range(len(names))
    figure, (rate, latency) = plt.subplots(1, 2, figsize=(13, 4.8))
    width = 0.38
    rate.bar([p - width / 2 for p in positions], [s["req_s"] for s in scenarios], width, label="Coffer req/s (wrk)")
    rate.bar([p + width / 2 for p in positions], [s["pgbench_tps"] for s in scenarios], width,
             label="pgbench TPS, same SQL", color="#999999")
    for p, s in zip(positions, scenarios):
        rate.annotate(f"{s['ratio']:.2f}×", (p - width / 2, s["req_s"]), ha="center", va="bottom", fontsize=9)
    token = next((s for s in scenarios if s["key"] == "token"), None)
    if token:
        index = scenarios.index(token)
        rate.hlines(results["openssl_rsa4096"]["sign_s"], index - 0.45, index + 0.45, colors="#d62728",
                    linestyles="dashed", label="openssl speed rsa4096 signs/s")
    rate.set_xticks(list(positions), names, rotation=15, ha="right")
    rate.set_yscale("log")
    rate.set_ylabel("per second (log scale)")
    rate.set_title("Throughput beside the database's own ceiling")
    rate.legend(fontsize=8)
    latency.bar(list(positions), [s["p99_ms"] for s in scenarios], 0.5, label="p99", color="#1f77b4")
    latency.bar(list(positions), [s["p50_ms"] for s in scenarios], 0.5, label="p50", color="#aec7e8")
    latency.set_xticks(list(positions), names, rotation=15, ha="right")
    latency.set_ylabel("milliseconds")
    latency.set_title(f"Coffer latency, {results['connections']} connections")
    latency.legend(fontsize=8)
    machine = results["machine"]
    figure.suptitle(f"Coffer service benchmark — {machine['cores']} cores, {machine['cpu']}", fontsize=10)
    figure.tight_layout()
    figure.savefig(target, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
