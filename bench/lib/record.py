#!/usr/bin/env python3
"""Turns one load's output into one JSON line of results/raw.jsonl.

  record.py OUTFILE BEFORE AFTER key=value...

OUTFILE has wrk's (or mongo-direct.js's) "BENCH_JSON {...}" line. BEFORE and
AFTER are `proc.py cpu SERVER MONGO HARNESS` lines taken around the load
(ticks of the server's group, of the test MongoDB server, of bench/run's own
group, i.e. wrk or a direct client such as mongo-ceiling; then the machine's
busy and total ticks). Prints the record
on stdout and a progress line on stderr.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import line as progress_line  # noqa: E402

TICK_US = 1e6 / os.sysconf("SC_CLK_TCK")

out, before, after = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
rec = {}
for kv in sys.argv[4:]:
    k, v = kv.split("=", 1)
    rec[k] = int(v) if v.lstrip("-").isdigit() else v

w = None
with open(out, errors="replace") as f:
    for line in f:
        if line.startswith("BENCH_JSON "):
            w = json.loads(line[len("BENCH_JSON "):])
if w is None:
    rec["failed"] = "no BENCH_JSON line in " + out
    print(json.dumps(rec))
    print(progress_line(rec), file=sys.stderr)
    sys.exit(0)

d = [int(a) - int(b) for a, b in zip(after, before)]
server, mongo, harness, busy, total = d if len(d) == 5 else (0, 0, 0, 0, 0)
n = w["requests"]
secs = w["duration_us"] / 1e6
errors = w["errors"]
rec.update({
    "requests": n,
    "seconds": round(secs, 3),
    "rps": round(n / secs, 1) if secs else 0,
    "errors": sum(errors.values()) if isinstance(errors, dict) else errors,
    "errors_by_kind": errors,
    "server_cpu_us_per_req": round(server * TICK_US / n, 2) if n and rec.get("workers") != "-" else None,
    "mongo_cpu_pct": round(100.0 * mongo * TICK_US / w["duration_us"], 1),
    # a direct client's own CPU (bench/run's group holds it): the driver's floor per query
    "client_cpu_us_per_req": round(harness * TICK_US / n, 2) if n and rec.get("workers") == "-" else None,
    "foreign_cpu_pct": round(100.0 * max(0, busy - server - mongo - harness) / total, 1) if total else None,
})
if "latency_us" in w:
    rec["latency_us"] = w["latency_us"]
    rec["p99_ms"] = round(w["latency_us"]["p99"] / 1000.0, 3)
elif "p99_us" in w:              # mongo-ceiling: each query's own latency
    rec["p99_ms"] = round(w["p99_us"] / 1000.0, 3)
print(json.dumps(rec))
print(progress_line(rec), file=sys.stderr)
