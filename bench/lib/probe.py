#!/usr/bin/env python3
"""Timing probes that need millisecond precision, each on a fresh server:

  probe.py startup PORT -- CMD...   ms from spawning CMD to the first 200
  probe.py kill9 PORT -- CMD...     (CMD with 1 worker) ms from SIGKILL of the
                                    worker to the first 200 from its
                                    replacement on a new connection
  probe.py ready PORT [SECONDS]     waits for a 200 (exit 1 if none)

Each prints one JSON line. CMD runs in its own session; its whole process
group is stopped before exiting, whatever happens (and its pgid is appended
to $BENCH_GROUPS_FILE so that bench/run's EXIT trap knows it too).
"""
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time

REQUEST = b"GET /dummy HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
child = None


def get(port, timeout=2.0):
    """(status, body) of GET /dummy on a new connection; raises OSError."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(REQUEST)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    if not data:
        raise ConnectionResetError("empty reply")
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def body_pid(body):
    try:
        return json.loads(body).get("pid")
    except ValueError:
        return None


def spawn(cmd):
    global child
    child = subprocess.Popen(cmd, start_new_session=True, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    gf = os.environ.get("BENCH_GROUPS_FILE")
    if gf:
        with open(gf, "a") as f:
            f.write("%d\n" % child.pid)
    return child


def stop():
    if child is None:
        return
    for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 2.0)):
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            break
        end = time.monotonic() + wait
        while time.monotonic() < end and group_alive(child.pid):
            child.poll()
            time.sleep(0.01)
    child.poll()
    gf = os.environ.get("BENCH_GROUPS_FILE")
    if gf and os.path.exists(gf):
        with open(gf) as f:
            left = [l for l in f if l.strip() != str(child.pid)]
        with open(gf, "w") as f:
            f.writelines(left)


def group_alive(pg):
    """Some process of the group is alive (zombies, which a busy init may
    leave unreaped for a while, do not count)."""
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[2]) == pg and fields[0] != "Z":
                    return True
            except (OSError, ValueError, IndexError):
                pass
    return False


def on_signal(sig, frame):
    stop()
    sys.exit(1)


def wait_200(port, limit):
    """ms until the first 200, polling every 0.2 ms; None after limit s."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        try:
            status, _ = get(port)
            if status == 200:
                return (time.monotonic() - t0) * 1000
        except OSError:
            pass
        time.sleep(0.0002)
    return None


def group_pids(pg):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    s = f.read()
                if int(s[s.rindex(")") + 2:].split()[2]) == pg and int(d) != pg:
                    out.append(int(d))
            except (OSError, ValueError):
                pass
    return out


def startup(port, cmd):
    spawn(cmd)
    ms = wait_200(port, 20)          # its clock starts right after the spawn
    return {"ms": None if ms is None else round(ms, 2)}


def kill9(port, cmd):
    """A new connection every 0.5 ms from the kill on, each with its request,
    all kept open: the first 200 from another pid than the victim's ends it.
    A server that keeps its listening socket queues them all (answered late,
    none lost); one that closes it refuses some; connections handed to the
    dead worker hang: after the first 200, the others get 0.5 s more to be
    answered; those still waiting then count as "hung"."""
    spawn(cmd)
    if wait_200(port, 20) is None:
        return {"ms": None, "error": "never answered"}
    time.sleep(0.3)                      # settled: one worker, idle
    workers = group_pids(child.pid)
    status, body = get(port)
    victim = body_pid(body)
    if victim not in workers:
        return {"ms": None, "error": "answering pid %s is not a worker %s" % (victim, workers)}
    sel = selectors.DefaultSelector()
    conns = {}                           # socket -> bytes read so far
    refused = reset = 0
    os.kill(victim, signal.SIGKILL)
    t0 = time.monotonic()
    next_open = t0
    served = None                        # ms to the first 200 of the replacement
    deadline = t0 + 10
    try:
        while time.monotonic() < deadline and (served is None or conns):
            now = time.monotonic()
            if served is None and now >= next_open and len(conns) < 500:
                next_open = now + 0.0005
                s = socket.socket()
                s.setblocking(False)
                try:
                    s.connect(("127.0.0.1", port))
                except BlockingIOError:
                    pass
                except OSError:
                    refused += 1
                    s.close()
                    continue
                conns[s] = b""
                sel.register(s, selectors.EVENT_WRITE)
            for key, ev in sel.select(timeout=0.0005):
                s = key.fileobj
                try:
                    if ev & selectors.EVENT_WRITE:
                        s.send(REQUEST)
                        sel.modify(s, selectors.EVENT_READ)
                        continue
                    chunk = s.recv(65536)
                except ConnectionRefusedError:
                    chunk, refused = None, refused + 1
                except OSError:
                    chunk, reset = None, reset + 1
                if chunk:
                    conns[s] += chunk
                    continue
                data = conns.pop(s)
                sel.unregister(s)
                s.close()
                if chunk is None:
                    continue
                if not data:
                    reset += 1
                    continue
                head, _, body = data.partition(b"\r\n\r\n")
                if served is None and head.split(b" ", 2)[1] == b"200" and body_pid(body) != victim:
                    served = round((time.monotonic() - t0) * 1000, 2)
                    deadline = time.monotonic() + 0.5
        if served is None:
            return {"ms": None, "error": "no replacement within 10 s", "refused": refused, "reset": reset}
        return {"ms": served, "refused": refused, "reset": reset, "hung": len(conns)}
    finally:
        for s in conns:
            s.close()


def main():
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    what, port = sys.argv[1], int(sys.argv[2])
    if what == "ready":
        ok = wait_200(port, float(sys.argv[3]) if len(sys.argv) > 3 else 15) is not None
        sys.exit(0 if ok else 1)
    cmd = sys.argv[sys.argv.index("--") + 1:]
    try:
        res = startup(port, cmd) if what == "startup" else kill9(port, cmd)
    finally:
        stop()
    print(json.dumps(res))


if __name__ == "__main__":
    main()
