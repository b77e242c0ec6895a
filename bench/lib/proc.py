#!/usr/bin/env python3
"""Process facts from /proc for bench/run.

  proc.py count PGID          processes in the group
  proc.py workers PGID        pids of the group but its leader (the master)
  proc.py cpu PGID...         CPU ticks of each group (user+system, with reaped
                              children), then the machine's busy and total ticks
  proc.py rss PGID            {"master_kb":..,"workers_kb":[..],"total_kb":..}
"""
import json
import os
import sys


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


def main():
    cmd, args = sys.argv[1], [int(a) for a in sys.argv[2:]]
    if cmd == "count":
        print(len(group(args[0])))
    elif cmd == "workers":
        print(" ".join(str(p[0]) for p in group(args[0]) if p[0] != args[0]))
    elif cmd == "cpu":
        ticks = dict.fromkeys(args, 0)
        for pid, _, pgid, t in procs():
            if pgid in ticks:
                ticks[pgid] += t
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        total = sum(v[:8])                      # user..steal
        busy = total - v[3] - v[4]              # minus idle, iowait
        print(" ".join(str(ticks[a]) for a in args), busy, total)
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
