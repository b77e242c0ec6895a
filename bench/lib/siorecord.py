#!/usr/bin/env python3
"""Turns one sioload run into lines of results/raw.jsonl (the socketio section).

  siorecord.py OUTFILE BASELINE key=value...

OUTFILE holds sioload's JSON line. BASELINE is `proc.py rss PGID` of the
server before sioload connected. Each measured window of sioload carries
`proc.py cpu PGID` snapshots (the server's group's CPU ticks, then the
machine's busy and total ticks) taken at its start and end. Prints the
records:

  kind=sio-connect   sockets connected + joined per second, and the time each took
  kind=sio-rss       RSS of the workers (and master) idle with N sockets, minus
                     the baseline, per connection
  kind=sio-load      scenario sio-sat (open loop, a window of messages in flight)
                     and sio-rate (a fixed rate): messages delivered per second
                     across all receivers, publish-to-receive latency, the
                     server's CPU per delivered message, the generator's CPU
  kind=sio-failed    sioload printed nothing usable

and a progress line for each on stderr.
"""
import json
import os
import sys

TICK_US = 1e6 / os.sysconf("SC_CLK_TCK")


def progress(rec):
    k = rec["kind"]
    head = "  r%-2s %-12s %-14s" % (rec.get("round"), rec.get("scenario", k), rec.get("server"))
    if k == "sio-failed":
        return head + " FAILED: " + rec.get("failed", "")
    if k == "sio-connect":
        return head + " %7.0f conns/s  p99 %7.1f ms  joined %s of %s  server %s us/conn (%s%%)" \
            "  generator %s%% cpu" % (
                rec["conns_per_sec"], rec["p99_ms"], rec["joined"], rec["conns"], rec.get("server_cpu_us_per_conn"),
                rec.get("server_cpu_pct"), rec["gen_cpu_pct"])
    if k == "sio-rss":
        return head + " %7.0f bytes per idle connection (workers; %s with the master), %s open" % (
            rec["bytes_per_conn"], rec["bytes_per_conn_total"], rec["open"])
    return head + " %9.0f msgs/s  p99 %8.2f ms  server %6s us/msg (%s%%)  generator %5s%% cpu %s us/msg" \
        "  lost %s  other %s%%" % (
            rec["delivered_per_sec"], rec["p99_ms"], rec.get("server_cpu_us_per_msg"),
            rec.get("server_cpu_pct"), rec["gen_cpu_pct"], rec["gen_cpu_us_per_msg"], rec["lost"],
            rec.get("foreign_cpu_pct"))


def emit(rec):
    print(json.dumps(rec))
    print(progress(rec), file=sys.stderr)


def cpu_delta(phase):
    """(server ticks, machine busy ticks, machine total ticks, wall us) between
    the phase's two `proc.py cpu-lines` answers; None without them."""
    try:
        b = [int(x) for x in phase["snap_before"].split()]
        a = [int(x) for x in phase["snap_after"].split()]
        server, busy, total = a[0] - b[0], a[1] - b[1], a[2] - b[2]
    except (ValueError, IndexError, KeyError, AttributeError):
        return None
    if total <= 0:
        return None
    return server, busy, total, total / os.cpu_count() * TICK_US


def main():
    out, base = sys.argv[1], json.loads(sys.argv[2])
    tags = {}
    for kv in sys.argv[3:]:
        k, v = kv.split("=", 1)
        tags[k] = int(v) if v.lstrip("-").isdigit() else v
    d = None
    try:
        with open(out) as f:
            for line in f:
                if line.startswith("{"):
                    d = json.loads(line)
    except (OSError, ValueError) as e:
        d = None
        why = str(e)
    else:
        why = "no JSON line in " + out
    if d is None or "connect" not in d:
        emit(dict(tags, kind="sio-failed", failed=why))
        return
    metrics = {k: tags.pop(k) for k in list(tags) if k.startswith("m_")}
    errors = {k: v for k, v in d.get("errors", {}).items() if v}
    common = dict(tags, conns=d["conns"], closed_after_join=d.get("closed_after_join", 0),
                  errors=errors, first_error=d.get("first_error", ""))

    c = d["connect"]
    rec = dict(common, kind="sio-connect", joined=c["joined"], failed=c["failed"], secs=c["secs"],
               conns_per_sec=c["per_sec"], p50_ms=c["latency_ms"]["p50"], p99_ms=c["latency_ms"]["p99"],
               max_ms=c["latency_ms"]["max"], gen_cpu_pct=c["gen_cpu_pct"], inflight=c["inflight"])
    cd = cpu_delta(c)
    if cd is not None and c["joined"]:
        rec["server_cpu_us_per_conn"] = round(cd[0] * TICK_US / c["joined"], 1)
        rec["server_cpu_pct"] = round(100.0 * cd[0] * TICK_US / cd[3], 1)
    emit(rec)

    idle = d.get("idle")
    if idle:
        try:
            after = json.loads(idle["cmd_out"])
        except ValueError:
            after = None
        n = idle["open_at_cmd"]
        if after and n:
            w0, w1 = sum(base["workers_kb"]), sum(after["workers_kb"])
            emit(dict(common, kind="sio-rss", open=n, baseline=base, idle=after,
                      bytes_per_conn=round((w1 - w0) * 1024.0 / n, 1),
                      bytes_per_conn_total=round((after["total_kb"] - base["total_kb"]) * 1024.0 / n, 1),
                      workers_mb=round(w1 / 1024.0, 1)))

    for p in d.get("phases", []):
        rec = dict(common, kind="sio-load", scenario="sio-" + p["name"], receivers=p["receivers"],
                   window=p["window"], msgs_per_sec_asked=p["msgs_per_sec_asked"], payload=p["payload"],
                   seconds=p["secs"], sent=p["sent"], sent_late=p["sent_late"], delivered=p["delivered"],
                   delivered_per_sec=p["delivered_per_sec"], expected=p["expected"], lost=p["lost"],
                   in_flight_at_end=p["in_flight_at_end"], latency_ms=p["latency_ms"],
                   p50_ms=p["latency_ms"]["p50"], p99_ms=p["latency_ms"]["p99"],
                   max_ms=p["latency_ms"]["max"], gen_cpu_pct=p["gen_cpu_pct"],
                   gen_cpu_us_per_msg=p["gen_cpu_us_per_msg"])
        cd = cpu_delta(p)
        if cd is None:
            rec["server_cpu_us_per_msg"] = rec["server_cpu_pct"] = rec["foreign_cpu_pct"] = None
        else:
            server, busy, total, wall_us = cd
            rec["server_cpu_us_per_msg"] = round(server * TICK_US / p["delivered"], 2) if p["delivered"] else None
            rec["server_cpu_pct"] = round(100.0 * server * TICK_US / wall_us, 1)
            # the machine's busy share minus the server and the generator: other work
            gen_ticks = p["gen_cpu_pct"] / 100.0 * wall_us / TICK_US
            rec["foreign_cpu_pct"] = round(100.0 * max(0.0, busy - server - gen_ticks) / total, 1)
        if p["name"] == "sat":
            rec.update(metrics)  # clusterd's own counters, after the whole run
        emit(rec)


if __name__ == "__main__":
    main()
