#!/usr/bin/env python3
"""Issue 13's headline targets over several seeds, on the simulator.

For each workload and seed: find the rate where `vllm`'s mean TTFT first passes the threshold
(500 ms; `bench --find-peak --policies vllm`, the lowest probed rate above it), run every policy
there, and print fastlibra's mean and P99 TTFT against `vllm`, `vllm-async` and `slora`. On
chatbot it also finds every policy's peak load. 300 s of arrivals, 100 LoRAs, llama3-8b on
h100-80g unless given otherwise. Everything is simulated (virtual time): the figures are
deterministic for a build and a seed.

    scripts/targets.py [--seeds 1,2,3] [--workloads chatbot,agents,translation,dgg]
                       [--duration 300] [--out bench-out/targets] [--bin target/release/fastlibra]

Prints one Markdown table per workload and writes `summary.json` under `--out`.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

POLICIES = ["fastlibra", "vllm", "vllm-async", "slora"]


def bench(args, out, extra):
    """Runs `fastlibra bench … --json` and returns its report."""
    cmd = [args.bin, "bench", "--json", "--out", out, "--duration", str(args.duration),
           "--model", "llama3-8b", "--gpu", "h100-80g"] + extra
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"targets: `{' '.join(cmd)}` failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(done.stdout)


def workload_flags(name, seed):
    flags = ["--workload", name, "--seed", str(seed)]
    if name != "dgg":
        flags += ["--loras", "100"]
    return flags


def knee(probes):
    """The lowest probed rate whose mean TTFT is above the threshold (None if none was)."""
    above = [p["rate"] for p in probes if not p["below"]]
    return min(above) if above else None


def pct_below(ours, theirs):
    return 100.0 * (1.0 - ours / theirs) if theirs > 0 else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--workloads", default="chatbot,agents,translation,dgg")
    ap.add_argument("--duration", type=float, default=300.0)
    ap.add_argument("--threshold-ms", type=float, default=500.0)
    ap.add_argument("--out", default="bench-out/targets")
    ap.add_argument("--bin", default="target/release/fastlibra")
    args = ap.parse_args()
    if not os.access(args.bin, os.X_OK):
        sys.exit(f"targets: no binary at {args.bin} (cargo build --release)")
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        sys.exit(f"targets: --seeds takes comma-separated integers, not {args.seeds!r}")
    summary = {}
    for name in args.workloads.split(","):
        rows = []
        for seed in seeds:
            base = os.path.join(args.out, f"{name}-{seed}")
            started = time.monotonic()
            peak_policies = POLICIES if name == "chatbot" else ["vllm"]
            found = bench(args, base + "-peak", workload_flags(name, seed) + [
                "--find-peak", "--policies", ",".join(peak_policies),
                "--threshold-ms", str(args.threshold_ms)])
            runs = {r["policy"]: r for r in found["peak_search"]["runs"]}
            rate = knee(runs["vllm"]["probes"])
            if rate is None:
                print(f"{name} seed {seed}: vllm never passed {args.threshold_ms} ms", file=sys.stderr)
                continue
            report = bench(args, base, workload_flags(name, seed) + [
                "--rate", str(rate), "--policies", ",".join(POLICIES)])
            ttft = {p: report["policies"][p]["ttft_ms"] for p in POLICIES}
            row = {"seed": seed, "rate": rate, "ttft": ttft,
                   "peaks": {p: runs[p]["peak_rps"] for p in peak_policies}}
            rows.append(row)
            print(f"{name} seed {seed}: knee {rate:g}/s, "
                  + ", ".join(f"{p} {ttft[p]['mean']:.1f}/{ttft[p]['p99']:.1f} ms" for p in POLICIES)
                  + f" ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
        summary[name] = rows
        print_table(name, rows)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)


def print_table(name, rows):
    if not rows:
        return
    print(f"\n### {name}\n")
    print("| seed | rate | fastlibra mean / P99 | vllm | vllm-async | slora "
          "| mean below vllm / vllm-async / slora | P99 below vllm / vllm-async |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    cols = {k: [] for k in ("mv", "ma", "ms", "pv", "pa")}
    for r in rows:
        t = r["ttft"]
        f = t["fastlibra"]
        cells = {"mv": pct_below(f["mean"], t["vllm"]["mean"]),
                 "ma": pct_below(f["mean"], t["vllm-async"]["mean"]),
                 "ms": pct_below(f["mean"], t["slora"]["mean"]),
                 "pv": pct_below(f["p99"], t["vllm"]["p99"]),
                 "pa": pct_below(f["p99"], t["vllm-async"]["p99"])}
        for k, v in cells.items():
            cols[k].append(v)
        pair = lambda p: f"{t[p]['mean']:,.1f} / {t[p]['p99']:,.1f}"
        print(f"| {r['seed']} | {r['rate']:g} | {pair('fastlibra')} | {pair('vllm')} "
              f"| {pair('vllm-async')} | {pair('slora')} "
              f"| {cells['mv']:.1f} / {cells['ma']:.1f} / {cells['ms']:.1f} % "
              f"| {cells['pv']:.1f} / {cells['pa']:.1f} % |")
    m = {k: statistics.mean(v) for k, v in cols.items()}
    print(f"| mean | | | | | | {m['mv']:.1f} / {m['ma']:.1f} / {m['ms']:.1f} % "
          f"| {m['pv']:.1f} / {m['pa']:.1f} % |")
    if len(rows[0]["peaks"]) > 1:
        print("\n| seed | peak fastlibra | vllm | vllm-async | slora | gain over vllm / vllm-async / slora |")
        print("|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            p = r["peaks"]
            gain = lambda b: 100.0 * (p["fastlibra"] / p[b] - 1.0)
            print(f"| {r['seed']} | {p['fastlibra']:.1f} | {p['vllm']:.1f} | {p['vllm-async']:.1f} "
                  f"| {p['slora']:.1f} | +{gain('vllm'):.1f} / +{gain('vllm-async'):.1f} "
                  f"/ +{gain('slora'):.1f} % |")


if __name__ == "__main__":
    main()
