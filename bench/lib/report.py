#!/usr/bin/env python3
"""Medians, ratios and targets of a bench/run run.

  report.py RESULTS_DIR        reads raw.jsonl and meta.json there; prints the
                               tables (markdown) and writes latest.json,
                               latest.md and plot.dat
line(record) is the progress line that record.py prints for each load.
"""
import json
import os
import statistics
import sys

SCENARIOS = [
    ("dummy-ka64", "dummy, keep-alive, 64 conns"),
    ("dummy-ka256", "dummy, keep-alive, 256 conns"),
    ("dummy-close", "dummy, new connection per request, 64 conns"),
    ("mongo-get", "readmongo get by id, 64 conns"),
    ("mongo-list", "readmongo list of 20 (filter), 64 conns"),
    ("percore", "per core: 1 worker on cpu 1, wrk on cpu 0, keep-alive 64"),
]
SERVERS = ["clusterd", "nginx", "node-http", "node-express"]
DIRECT = ["libmongoc-direct", "node-direct"]      # the test MongoDB server alone
SIO_SERVERS = ["clusterd", "node-socketio"]    # the socketio section
NAMES = {"clusterd": "clusterd", "nginx": "nginx", "node-http": "Node cluster + http",
         "node-express": "Node cluster + express", "node-socketio": "Node cluster + socket.io",
         "libmongoc-direct": "libmongoc, 8 threads", "node-direct": "Node driver, 2 x 32 in flight"}


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def k(n):
    if n is None:
        return "–"
    return "%.1fk" % (n / 1000) if n >= 10000 else "%.2fk" % (n / 1000) if n >= 1000 else "%.0f" % n


def f(x, fmt="%.1f"):
    return "–" if x is None else fmt % x


def ratio(a, b):
    return a / b if a is not None and b else None


def line(rec):
    if rec.get("failed"):
        return "  %-10s %-14s FAILED: %s" % (rec.get("scenario"), rec.get("server"), rec["failed"])
    return "  r%-2s %-12s %-14s %9s req/s  p99 %7s ms  cpu %6s us/req  errors %-6s mongo %5s%%  other %4s%%" % (
        rec.get("round"), rec.get("scenario"), rec.get("server"), "%.0f" % rec["rps"],
        f(rec.get("p99_ms"), "%.2f"), f(rec.get("server_cpu_us_per_req")), rec.get("errors"),
        f(rec.get("mongo_cpu_pct")), f(rec.get("foreign_cpu_pct")))


def summarize(records):
    loads = [r for r in records if r.get("kind") == "load" and not r.get("failed")]
    summary = {}
    for sc, _ in SCENARIOS:
        for sv in SERVERS + DIRECT:
            rs = [r for r in loads if r["scenario"] == sc and r["server"] == sv]
            if not rs:
                continue
            summary.setdefault(sc, {})[sv] = {
                "runs": len(rs),
                "rps": med(r["rps"] for r in rs),
                "rps_min": min(r["rps"] for r in rs),
                "rps_max": max(r["rps"] for r in rs),
                "p99_ms": med(r.get("p99_ms") for r in rs),
                "cpu_us_per_req": med(r.get("server_cpu_us_per_req") for r in rs),
                "client_cpu_us_per_req": med(r.get("client_cpu_us_per_req") for r in rs),
                "errors": sum(r["errors"] for r in rs),
                "mongo_cpu_pct": med(r.get("mongo_cpu_pct") for r in rs),
                "foreign_cpu_pct": med(r.get("foreign_cpu_pct") for r in rs),
                "rps_by_round": {str(r["round"]): r["rps"] for r in rs},
            }
    extras = {}
    for sv in SERVERS:
        e = {}
        rss = [r for r in records if r.get("kind") == "rss" and r["server"] == sv and r.get("workers", 0) > 1]
        if rss:
            e["rss_worker_mb"] = med(med(r["workers_kb"]) for r in rss) / 1024
            e["rss_total_mb"] = med(r["total_kb"] for r in rss) / 1024
            e["rss_master_mb"] = med(r["master_kb"] for r in rss) / 1024
        st = [r.get("ms") for r in records if r.get("kind") == "startup" and r["server"] == sv
              and r.get("variant", "plain") == "plain"]
        if st:
            e["startup_ms"] = med(st)
            e["startup_all_ms"] = st
        st = [r.get("ms") for r in records if r.get("kind") == "startup" and r["server"] == sv
              and r.get("variant") == "readmongo"]
        if st:
            e["startup_readmongo_ms"] = med(st)
            e["startup_readmongo_all_ms"] = st
        kl = [r for r in records if r.get("kind") == "kill9" and r["server"] == sv]
        if kl:
            e["kill9_ms"] = med(r.get("ms") for r in kl)
            e["kill9_all_ms"] = [r.get("ms") for r in kl]
            for x in ("refused", "reset", "hung"):
                e["kill9_" + x] = sum(r.get(x, 0) for r in kl)
            e["kill9_failed_probes"] = sum(1 for r in kl if r.get("ms") is None)
        rl = [r for r in records if r.get("kind") == "reload" and r["server"] == sv]
        if rl:
            r = rl[-1]
            e["reload_failed"] = r.get("errors")
            e["reload_requests"] = r.get("requests")
            e["reload_errors_by_kind"] = r.get("errors_by_kind")
            e["reload_generation_after"] = r.get("generation_after")
        if e:
            extras[sv] = e
    return summary, extras


def sio_summarize(records):
    """The socketio section: medians over rounds, per server."""
    out = {}
    for sv in SIO_SERVERS:
        e = {}
        for sc in ("sio-sat", "sio-rate"):
            rs = [r for r in records if r.get("kind") == "sio-load" and r["scenario"] == sc and r["server"] == sv]
            if not rs:
                continue
            e[sc] = {
                "runs": len(rs),
                "delivered_per_sec": med(r["delivered_per_sec"] for r in rs),
                "delivered_min": min(r["delivered_per_sec"] for r in rs),
                "delivered_max": max(r["delivered_per_sec"] for r in rs),
                "p50_ms": med(r["p50_ms"] for r in rs),
                "p99_ms": med(r["p99_ms"] for r in rs),
                "max_ms": med(r["max_ms"] for r in rs),
                "server_cpu_us_per_msg": med(r.get("server_cpu_us_per_msg") for r in rs),
                "server_cpu_pct": med(r.get("server_cpu_pct") for r in rs),
                "gen_cpu_pct": med(r["gen_cpu_pct"] for r in rs),
                "gen_cpu_us_per_msg": med(r["gen_cpu_us_per_msg"] for r in rs),
                "foreign_cpu_pct": med(r.get("foreign_cpu_pct") for r in rs),
                "lost": sum(r["lost"] for r in rs),
                "closed_after_join": sum(r.get("closed_after_join", 0) for r in rs),
                "receivers": min(r["receivers"] for r in rs),
                "window": rs[0]["window"], "msgs_per_sec_asked": rs[0]["msgs_per_sec_asked"],
                "payload": rs[0]["payload"],
                "delivered_by_round": {str(r["round"]): r["delivered_per_sec"] for r in rs},
                "p99_by_round": {str(r["round"]): r["p99_ms"] for r in rs},
            }
            ms = {k: sum(r.get(k, 0) for r in rs) for r in rs for k in r if k.startswith("m_")}
            if ms:
                e[sc]["metrics"] = ms
        rs = [r for r in records if r.get("kind") == "sio-connect" and r["server"] == sv]
        if rs:
            e["connect"] = {
                "runs": len(rs), "conns": rs[0]["conns"],
                "conns_per_sec": med(r["conns_per_sec"] for r in rs),
                "p50_ms": med(r["p50_ms"] for r in rs), "p99_ms": med(r["p99_ms"] for r in rs),
                "failed": sum(r["failed"] for r in rs), "gen_cpu_pct": med(r["gen_cpu_pct"] for r in rs),
                "inflight": rs[0].get("inflight"),
                "server_cpu_us_per_conn": med(r.get("server_cpu_us_per_conn") for r in rs),
                "by_round": {str(r["round"]): r["conns_per_sec"] for r in rs},
            }
        rs = [r for r in records if r.get("kind") == "sio-rss" and r["server"] == sv]
        if rs:
            e["rss"] = {
                "bytes_per_conn": med(r["bytes_per_conn"] for r in rs),
                "bytes_per_conn_total": med(r["bytes_per_conn_total"] for r in rs),
                "workers_mb": med(r["workers_mb"] for r in rs),
                "by_round": {str(r["round"]): r["bytes_per_conn"] for r in rs},
            }
        failed = [r for r in records if r.get("kind") == "sio-failed" and r["server"] == sv]
        errs = {}
        for r in records:
            if r.get("kind") == "sio-connect" and r["server"] == sv:
                for k, v in r.get("errors", {}).items():
                    errs[k] = errs.get(k, 0) + v
        if failed:
            e["failed_runs"] = len(failed)
        if errs:
            e["errors"] = errs
        if e:
            out[sv] = e
    return out


def get(summary, sc, sv, key):
    return summary.get(sc, {}).get(sv, {}).get(key)


def round_ratios(summary, sc, a, b):
    """a's req/s over b's, round by round (each pair measured minutes apart)."""
    ra = get(summary, sc, a, "rps_by_round") or {}
    rb = get(summary, sc, b, "rps_by_round") or {}
    return [ra[r] / rb[r] for r in sorted(ra) if r in rb and rb[r]]


def targets(summary, extras, meta):
    t = []

    def add(name, measured, ok):
        t.append({"target": name, "measured": measured,
                  "result": "n/a" if ok is None else "PASS" if ok else "FAIL"})

    def rounds(sc, a, b):
        rr = round_ratios(summary, sc, a, b)
        return " (rounds: %s)" % ", ".join("%.2f" % x for x in rr) if len(rr) > 1 else ""

    for sc, label in (("dummy-ka64", "64"), ("dummy-ka256", "256")):
        c, n = get(summary, sc, "clusterd", "rps"), get(summary, sc, "nginx", "rps")
        cp, np_ = get(summary, sc, "clusterd", "p99_ms"), get(summary, sc, "nginx", "p99_ms")
        r = ratio(c, n)
        add("dummy keep-alive %s conns: >= 1.0x nginx req/s, p99 <= nginx's" % label,
            "%sx%s, p99 %s vs %s ms" % (f(r, "%.2f"), rounds(sc, "clusterd", "nginx"), f(cp, "%.2f"), f(np_, "%.2f")),
            None if r is None or cp is None else r >= 1.0 and cp <= np_)
    for sc, label in (("dummy-ka64", "64"), ("dummy-ka256", "256")):
        r = ratio(get(summary, sc, "clusterd", "rps"), get(summary, sc, "node-express", "rps"))
        add("dummy keep-alive %s conns: >= 5x Node cluster + express" % label,
            "%sx%s" % (f(r, "%.2f"), rounds(sc, "clusterd", "node-express")), None if r is None else r >= 5)
    r = ratio(get(summary, "mongo-get", "clusterd", "rps"), get(summary, "mongo-get", "node-express", "rps"))
    if r is None:
        add("readmongo get by id: >= 3x Node cluster + express + driver",
            "skipped: " + (meta.get("mongo_skipped") or "no data"), None)
    else:
        cpu = ratio(get(summary, "mongo-get", "node-express", "cpu_us_per_req"),
                    get(summary, "mongo-get", "clusterd", "cpu_us_per_req"))
        ceil = ratio(get(summary, "mongo-get", "clusterd", "rps"),
                     get(summary, "mongo-get", "libmongoc-direct", "rps"))
        add("readmongo get by id: >= 3x Node cluster + express + driver",
            "%sx%s; clusterd at %s of the test server's ceiling (its CPU %s %%); CPU per request %sx less" % (
                f(r, "%.2f"), rounds("mongo-get", "clusterd", "node-express"),
                "–" if ceil is None else "%.0f %%" % (100 * ceil),
                f(get(summary, "mongo-get", "clusterd", "mongo_cpu_pct"), "%.0f"), f(cpu, "%.1f")),
            r >= 3)
    cw = extras.get("clusterd", {}).get("rss_worker_mb")
    nw = extras.get("node-express", {}).get("rss_worker_mb")
    add("RSS per worker <= 1/10 of a Node (express) worker's",
        "%s vs %s MB (1/%s)" % (f(cw), f(nw), f(ratio(nw, cw), "%.0f")), None if not cw or not nw else cw * 10 <= nw)
    cs, ns = extras.get("clusterd", {}).get("startup_ms"), extras.get("nginx", {}).get("startup_ms")
    cm = extras.get("clusterd", {}).get("startup_readmongo_ms")
    add("start to first 200, nginx's routes: <= nginx's",
        "%s vs %s ms%s" % (f(cs), f(ns), "" if cm is None else "; with a readmongo route as well %s ms" % f(cm)),
        None if cs is None or ns is None else cs <= ns)
    km = extras.get("clusterd", {}).get("kill9_ms")
    add("kill -9 of a worker to serving: median < 20 ms", "%s ms" % f(km, "%.2f"), None if km is None else km < 20)
    rf = extras.get("clusterd", {}).get("reload_failed")
    gen = extras.get("clusterd", {}).get("reload_generation_after")
    add("zero failed requests across 5 SIGHUP reloads under load",
        "%s failed of %s (generation after: %s)" % (rf, extras.get("clusterd", {}).get("reload_requests"), gen),
        None if rf is None else rf == 0 and gen == 6)
    sio = meta.get("sio") or {}
    c, n = sio.get("clusterd", {}), sio.get("node-socketio", {})
    if c or n:
        cs, ns = c.get("sio-sat", {}), n.get("sio-sat", {})
        r = ratio(cs.get("delivered_per_sec"), ns.get("delivered_per_sec"))
        rr = [cs["delivered_by_round"][k] / ns["delivered_by_round"][k] for k in sorted(cs.get("delivered_by_round", {}))
              if ns.get("delivered_by_round", {}).get(k)]
        add("socketio: delivered msgs/s >= 5x Node cluster + socket.io (%s sockets in one room, saturated)"
            % cs.get("receivers", "?"),
            "%sx%s; server CPU per delivered message %s vs %s us" % (
                f(r, "%.2f"), " (rounds: %s)" % ", ".join("%.2f" % x for x in rr) if len(rr) > 1 else "",
                f(cs.get("server_cpu_us_per_msg")), f(ns.get("server_cpu_us_per_msg"))),
            None if r is None else r >= 5)
        cr, nr = c.get("sio-rate", {}), n.get("sio-rate", {})
        cp, np_ = cr.get("p99_ms"), nr.get("p99_ms")
        add("socketio: p99 publish-to-receive <= Node's (at %s msgs/s to %s sockets)"
            % (f(cr.get("msgs_per_sec_asked"), "%g"), cr.get("receivers", "?")),
            "%s vs %s ms (saturated: %s vs %s ms)" % (f(cp, "%.2f"), f(np_, "%.2f"),
                                                      f(cs.get("p99_ms"), "%.1f"), f(ns.get("p99_ms"), "%.1f")),
            None if cp is None or np_ is None else cp <= np_)
        cb, nb = c.get("rss", {}).get("bytes_per_conn"), n.get("rss", {}).get("bytes_per_conn")
        add("socketio: RSS per idle connection <= 1/10 of Node's",
            "%s vs %s bytes (1/%s)" % (f(cb, "%.0f"), f(nb, "%.0f"), f(ratio(nb, cb), "%.0f")),
            None if not cb or not nb else cb * 10 <= nb)
    if meta.get("only"):        # a partial run (--only readmongo|socketio): its own targets only
        t = [x for x in t if x["target"].startswith(meta["only"])]
    return t


def kill9_losses(e):
    """Connections refused, reset or left hanging around the kills, if any."""
    parts = ["%d %s" % (e["kill9_" + x], x) for x in ("refused", "reset", "hung") if e.get("kill9_" + x)]
    return " (%s, over %d kills)" % (", ".join(parts), len(e["kill9_all_ms"])) if parts else ""


def kb(b):
    return "–" if b is None else "%.1f kB" % (b / 1000.0) if abs(b) < 1e6 else "%.1f MB" % (b / 1e6)


def sio_tables(sio, meta):
    out = []
    c, n = sio.get("clusterd", {}), sio.get("node-socketio", {})
    any_ = c or n
    sat = c.get("sio-sat") or n.get("sio-sat") or {}
    rate = c.get("sio-rate") or n.get("sio-rate") or {}
    conn = c.get("connect") or n.get("connect") or {}
    out.append("Socket.IO hub (socketio): %s sockets connected to \"/\" and joined to one room, %s workers each;"
               " one more socket publishes to the room (the hub leaves the sender out); medians of %s rounds"
               " of %s s; the load generator is sioload (C, one thread), on the same %s cores."
               " Saturated: at most %s messages in flight (sent, and not yet at every receiver);"
               " payload %s bytes of pad." % (
                   conn.get("conns", "?"), meta.get("workers"), meta.get("rounds"), meta.get("duration"),
                   os.cpu_count(), sat.get("window", "?"), sat.get("payload", "?")))
    out.append("")
    out.append("| socketio | %s | %s | clusterd ÷ Node |" % (NAMES["clusterd"], NAMES["node-socketio"]))
    out.append("|---|---|---|---|")

    def row(label, key, sub, fmt, rfmt="%.2fx", inverse=False):
        a, b = c.get(sub, {}).get(key), n.get(sub, {}).get(key)
        r = ratio(b, a) if inverse else ratio(a, b)
        out.append("| %s | %s | %s | %s |" % (label, fmt(a), fmt(b), "–" if r is None else rfmt % r))

    ms = lambda v: "–" if v is None else "%.2f ms" % v if v < 100 else "%.0f ms" % v
    row("delivered msgs/s, saturated (across all receivers)", "delivered_per_sec", "sio-sat", k)
    row("p99 publish-to-receive, saturated", "p99_ms", "sio-sat", ms)
    if rate:
        row("p99 publish-to-receive at %g msgs/s (%s deliveries/s)" % (
            rate["msgs_per_sec_asked"], k(rate["msgs_per_sec_asked"] * rate["receivers"])), "p99_ms", "sio-rate", ms)
        row("p50 publish-to-receive at %g msgs/s" % rate["msgs_per_sec_asked"], "p50_ms", "sio-rate", ms)
    row("RSS per idle connection (workers' VmRSS, minus the baseline)", "bytes_per_conn", "rss", kb,
        "1/%.0f", inverse=True)
    row("connect rate (sockets connected + joined per second)", "conns_per_sec", "connect", lambda v: k(v) + "/s"
        if v is not None else "–")
    row("p99 connect to joined (%s handshakes in flight)" % conn.get("inflight", 200), "p99_ms", "connect", ms)
    row("server CPU µs per connection (connect + join)", "server_cpu_us_per_conn", "connect", f)
    row("server CPU µs per delivered message, saturated", "server_cpu_us_per_msg", "sio-sat", f)
    if rate:
        row("server CPU µs per delivered message at %g msgs/s" % rate["msgs_per_sec_asked"],
            "server_cpu_us_per_msg", "sio-rate", f)
    row("server CPU, saturated (100 % = one core)", "server_cpu_pct", "sio-sat",
        lambda v: "–" if v is None else "%.0f %%" % v)
    for sub, label in (("sio-sat", "saturated"), ("sio-rate", "at the fixed rate")):
        a, b = c.get(sub, {}), n.get(sub, {})
        if a or b:
            g = lambda e: "–" if not e else "%.0f %% · %.2f µs/msg" % (e["gen_cpu_pct"], e["gen_cpu_us_per_msg"])
            out.append("| generator (sioload) CPU, %s: %% of one core · µs per message | %s | %s | |" % (label, g(a), g(b)))
    g = lambda e: "–" if not e else "%.0f %%" % e["gen_cpu_pct"]
    out.append("| generator (sioload) CPU while connecting | %s | %s | |" % (g(c.get("connect")), g(n.get("connect"))))
    out.append("")
    notes = []
    for sv, e in ((sv, sio.get(sv, {})) for sv in SIO_SERVERS):
        bits = []
        for sub in ("sio-sat", "sio-rate"):
            x = e.get(sub, {})
            if x.get("lost"):
                bits.append("%d deliveries lost or over 5 s late (%s)" % (x["lost"], sub[4:]))
            if x.get("closed_after_join"):
                bits.append("%d sockets closed during the loads" % x["closed_after_join"])
        if e.get("connect", {}).get("failed"):
            bits.append("%d connects failed" % e["connect"]["failed"])
        if e.get("errors"):
            bits.append("errors %s" % e["errors"])
        if e.get("failed_runs"):
            bits.append("%d runs of sioload failed" % e["failed_runs"])
        m = e.get("sio-sat", {}).get("metrics")
        if m:
            bad = {k2[2:]: v for k2, v in m.items() if v and k2 not in ("m_deliveries_total", "m_closed_client")}
            bits.append("its /metrics: %s" % (bad if bad else "nothing dropped or closed by the server"))
        if bits:
            notes.append("%s: %s" % (NAMES[sv], "; ".join(bits)))
    fc = [e.get(sub, {}).get("foreign_cpu_pct") for e in sio.values() for sub in ("sio-sat", "sio-rate")]
    notes.append("other processes used a median %s%% of the machine's CPU during the socketio loads" % f(med(fc), "%.0f"))
    out.append("; ".join(notes) + ".")
    out.append("")
    return out if any_ else []


def tables(summary, extras, tgts, meta):
    if meta.get("only") == "socketio":
        return "\n".join(sio_tables(meta.get("sio") or {}, meta) + targets_table(tgts) + run_line(meta))
    out = []
    w = meta.get("workers")
    out.append("Medians of %s interleaved rounds of %s s each (wrk -t1, %s workers unless said);"
               " cell = req/s · p99 latency." % (meta.get("rounds"), meta.get("duration"), w))
    out.append("")
    cols = [s for s in SERVERS if any(s in summary.get(sc, {}) for sc, _ in SCENARIOS)]
    mongo_rows = [sc for sc in ("mongo-get", "mongo-list") if sc in summary]
    out.append("| scenario | " + " | ".join(NAMES[c] for c in cols) +
               " | clusterd ÷ nginx | clusterd ÷ Node http | clusterd ÷ express |")
    out.append("|---" * (len(cols) + 4) + "|")
    for sc, label in SCENARIOS:
        if sc not in summary:
            continue
        row = [label]
        for c in cols:
            s = summary[sc].get(c)
            row.append("–" if s is None else "%s · %s ms" % (k(s["rps"]), f(s["p99_ms"], "%.2f")) if s["p99_ms"] is not None
                       else "%s" % k(s["rps"]))
        for other in ("nginx", "node-http", "node-express"):
            r = ratio(get(summary, sc, "clusterd", "rps"), get(summary, sc, other, "rps"))
            row.append("–" if r is None else "%.2fx" % r)
        out.append("| " + " | ".join(row) + " |")
    out.append("")
    out.append("Server CPU time per request, µs (all its processes and threads; the fairest"
               " comparison on 2 cores, since wrk needs ~9 µs/req itself); failed requests in brackets:")
    out.append("")
    out.append("| scenario | " + " | ".join(NAMES[c] for c in cols) + " |")
    out.append("|---" * (len(cols) + 1) + "|")
    for sc, label in SCENARIOS:
        if sc not in summary:
            continue
        row = [label]
        for c in cols:
            s = summary[sc].get(c)
            row.append("–" if s is None else "%s%s" % (f(s["cpu_us_per_req"]), " (%d)" % s["errors"] if s["errors"] else ""))
        out.append("| " + " | ".join(row) + " |")
    out.append("")
    if mongo_rows:
        procs = meta.get("mongo_processes", 1)
        out.append("The test MongoDB server (t/mongo/server.js, %s): its ceiling, queried"
                   " directly with no HTTP, and its CPU use (100 %% = one core) during each load:"
                   % ("one Node.js thread" if procs == 1 else "%d Node.js processes, up to %d %% CPU" % (procs, 100 * procs)))
        out.append("")
        out.append("| query | ceiling: %s · p99 of its queries | %s | clusterd | clusterd ÷ ceiling"
                   " | CPU per query, µs: the ceiling's client · clusterd | its CPU: ceiling · clusterd · Node http · express |"
                   % (NAMES["libmongoc-direct"], NAMES["node-direct"]))
        out.append("|---|---|---|---|---|---|---|")
        for sc in mongo_rows:
            label = dict(SCENARIOS)[sc].split(",")[0]
            cpu = " · ".join("%s %%" % f(get(summary, sc, c, "mongo_cpu_pct"), "%.0f")
                             for c in ("libmongoc-direct", "clusterd", "node-http", "node-express"))
            out.append("| %s | %s | %s | %s | %s | %s · %s | %s |" % (
                label, "%s · %s ms" % (k(get(summary, sc, "libmongoc-direct", "rps")),
                                       f(get(summary, sc, "libmongoc-direct", "p99_ms"))),
                k(get(summary, sc, "node-direct", "rps")),
                k(get(summary, sc, "clusterd", "rps")),
                f(ratio(get(summary, sc, "clusterd", "rps"), get(summary, sc, "libmongoc-direct", "rps")), "%.2f"),
                f(get(summary, sc, "libmongoc-direct", "client_cpu_us_per_req")),
                f(get(summary, sc, "clusterd", "cpu_us_per_req")),
                cpu))
        out.append("")
    out.append("RSS after the loads (%s workers); start-up and kill -9: medians over fresh servers (kill -9: 1 worker,"
               " a new connection every 0.5 ms from the kill on); reloads: 5 SIGHUP during wrk at 64 connections:" % w)
    out.append("")
    out.append("| server | RSS per worker | RSS total (master + workers) | start to first 200 | kill -9 to serving | failed requests, 5 reloads under load |")
    out.append("|---|---|---|---|---|---|")
    for sv in SERVERS:
        e = extras.get(sv)
        if not e:
            continue
        rl = "–"
        if e.get("reload_failed") is not None:
            rl = "%d of %s" % (e["reload_failed"], k(e.get("reload_requests")))
        elif sv.startswith("node"):
            rl = "n/a (no reload)"
        st = "%s ms" % f(e.get("startup_ms"))
        if e.get("startup_readmongo_ms") is not None:
            st += " (%s ms with a readmongo route)" % f(e["startup_readmongo_ms"])
        out.append("| %s | %s MB | %s MB | %s | %s | %s |" % (
            NAMES[sv], f(e.get("rss_worker_mb")), f(e.get("rss_total_mb")), st,
            "–" if e.get("kill9_ms") is None else "%s ms%s" % (f(e["kill9_ms"], "%.1f"), kill9_losses(e)),
            rl))
    out.append("")
    out += sio_tables(meta.get("sio") or {}, meta)
    out += targets_table(tgts)
    out += run_line(meta)
    return "\n".join(out)


def targets_table(tgts):
    out = ["| target | measured | result |", "|---|---|---|"]
    for t in tgts:
        out.append("| %s | %s | **%s** |" % (t["target"], t["measured"], t["result"]))
    out.append("")
    return out


def run_line(meta):
    fc = meta.get("foreign_cpu_pct")
    notes = ["other processes used a median %s%% of the machine's CPU during the loads" % f(fc, "%.0f")]
    if meta.get("mongo_skipped"):
        notes.append("readmongo scenarios skipped: %s" % meta["mongo_skipped"])
    if meta.get("bodies"):
        notes.append("bodies: %s" % meta["bodies"])
    return ["Run %s on %s, commit %s, %s mode. %s." % (
        meta.get("date"), meta.get("machine"), meta.get("commit"), meta.get("mode"), "; ".join(notes))]


def main():
    d = sys.argv[1]
    records = [json.loads(l) for l in open(os.path.join(d, "raw.jsonl")) if l.strip()]
    meta = json.load(open(os.path.join(d, "meta.json")))
    meta["foreign_cpu_pct"] = med(r.get("foreign_cpu_pct") for r in records if r.get("kind") in ("load", "sio-load"))
    summary, extras = summarize(records)
    meta["sio"] = sio_summarize(records)
    tgts = targets(summary, extras, meta)
    text = tables(summary, extras, tgts, meta)
    with open(os.path.join(d, "latest.json"), "w") as fh:
        sio = meta.pop("sio")
        json.dump({"meta": meta, "summary": summary, "extras": extras, "socketio": sio, "targets": tgts,
                   "records": records},
                  fh, indent=1)
    with open(os.path.join(d, "latest.md"), "w") as fh:
        fh.write(text + "\n")
    # plot.dat: one row per HTTP scenario, req/s then p99 of each server ("?" = none)
    plot_servers = ["clusterd", "nginx", "node-http", "node-express"]
    with open(os.path.join(d, "plot.dat"), "w") as fh:
        fh.write("# scenario " + " ".join(plot_servers) + " " + " ".join(s + "_p99" for s in plot_servers) + "\n")
        for sc, _ in SCENARIOS:
            if sc not in summary:
                continue
            vals = [get(summary, sc, s, "rps") for s in plot_servers]
            p99 = [get(summary, sc, s, "p99_ms") for s in plot_servers]
            fh.write(sc + " " + " ".join("?" if v is None else "%.0f" % v for v in vals) + " " +
                     " ".join("?" if v is None else "%.3f" % v for v in p99) + "\n")
    print(text)


if __name__ == "__main__":
    main()
