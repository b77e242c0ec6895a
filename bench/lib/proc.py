#!/usr/bin/env python3
"""Process facts from /proc for bench/run.

  proc.py count PGID          processes in the group
  proc.py workers PGID        pids of the group but its leader (the master)
  proc.py cpu PGID...         CPU ticks of each group (user+system, with reaped
                              children), then the machine's busy and total ticks
  proc.py cpu-lines PGID...   the same line again for each line read on stdin,
                              until EOF (sioload --snapshot: no start-up cost
                              inside a measured window)
  proc.py rss PGID            {"master_kb":..,"workers_kb":[..],"total_kb":..}
  proc.py quiet MAX PCT       waits (up to MAX s) until the machine's CPU is
                              under PCT % busy over 0.25 s; prints the busy %
                              and exits 1 if it never was
"""
import json
import os
import sys
import time


def procs():
    """(pid, ppid, pgid, ticks) of every process."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                s = f.read()
        except OSError:
            continue
        f = s[s.rindex(")") + 2:].split()   # after "pid (comm) "
        # f[0]=state f[1]=ppid f[2]=pgrp ... f[11..14]=utime stime cutime cstime
        yield int(d), int(f[1]), int(f[2]), sum(int(x) for x in f[11:15])


def group(pgid):
    return [p for p in procs() if p[2] == pgid]


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def machine():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    total = sum(v[:8])                          # user..steal
    return total - v[3] - v[4], total           # busy (minus idle, iowait), total


def quiet(limit, pct):
    end = time.monotonic() + limit
    while True:
        b0, t0 = machine()
        time.sleep(0.25)
        b1, t1 = machine()
        busy = 100.0 * (b1 - b0) / max(1, t1 - t0)
        if busy < pct or time.monotonic() >= end:
            print("%.0f" % busy)
            return busy < pct


def cpu_line(pgids):
    ticks = dict.fromkeys(pgids, 0)
    for pid, _, pgid, t in procs():
        if pgid in ticks:
            ticks[pgid] += t
    busy, total = machine()
    return "%s %d %d" % (" ".join(str(ticks[a]) for a in pgids), busy, total)


def main():
    if sys.argv[1] == "quiet":
        sys.exit(0 if quiet(float(sys.argv[2]), float(sys.argv[3])) else 1)
    cmd, args = sys.argv[1], [int(a) for a in sys.argv[2:]]
    if cmd == "count":
        print(len(group(args[0])))
    elif cmd == "workers":
        print(" ".join(str(p[0]) for p in group(args[0]) if p[0] != args[0]))
    elif cmd == "cpu":
        print(cpu_line(args))
    elif cmd == "cpu-lines":
        for _ in sys.stdin:
            print(cpu_line(args), flush=True)
    elif cmd == "rss":
        pg = args[0]
        workers = [rss_kb(p[0]) for p in group(pg) if p[0] != pg]
        master = rss_kb(pg)
        print(json.dumps({"master_kb": master, "workers_kb": workers,
                          "total_kb": master + sum(workers)}))
    else:
        sys.exit("proc.py: unknown command " + cmd)


if __name__ == "__main__":
    main()
