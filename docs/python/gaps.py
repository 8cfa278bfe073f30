"""Where a lock's mean wait comes from: reads `bench latency -json` on
stdin and prints, per row, the mean wait split by gap length (each gap
taken at its histogram bucket's middle) and the buckets that hold the most
of the buyers' time (lesson 10).

    go run ./cmd/bench latency -json -procs 2 | python3 docs/python/gaps.py
"""
import json, sys

SPLITS = [(0, 1e5, "under 100us"), (1e5, 1e6, "100us-1ms"), (1e6, float("inf"), "over 1ms")]

for line in sys.stdin:
    r = json.loads(line)
    hist = r["hist"]
    mid = lambda b: (b["lo_ns"] + b["hi_ns"]) / 2
    total = sum(mid(b) * b["count"] for b in hist)
    parts = []
    for lo, hi, name in SPLITS:
        sq = sum(mid(b) ** 2 * b["count"] for b in hist if lo <= b["lo_ns"] < hi)
        parts.append("%s %.2f us" % (name, sq / (2 * total) / 1e3))
    top = sorted(hist, key=lambda b: -mid(b) * b["count"])[:4]
    spikes = ", ".join("%.3g-%.3g us: %d gaps, %.0f%% of the time" % (b["lo_ns"] / 1e3, b["hi_ns"] / 1e3, b["count"], 100 * mid(b) * b["count"] / total)
                       for b in top if b["lo_ns"] >= 1000)
    print("%s, %d procs, turn %g us: mean wait %.2f us (%s); %.0f M/s untimed" %
          (r["backend"], r["procs"], r["turn_us"], r["mean_wait_us"], "; ".join(parts), r["ops_per_sec"] / 1e6))
    if spikes:
        print("    longest-lasting gaps: " + spikes)
