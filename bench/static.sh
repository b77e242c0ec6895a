#!/usr/bin/env bash
# bench/static.sh: clusterd's static service against nginx serving the same
# files from the same directory on 127.0.0.1: a 4 KiB and a 1 MiB file, on
# keep-alive connections, with wrk. Prints, for each file and server, the
# median requests per second, MB/s, p99 and server CPU time per request,
# then clusterd's ratios to nginx; writes bench/results/static/latest.{json,md}.
#
#   bench/static.sh [--quick] [--rounds N] [--duration SECONDS] [--workers N] [--conns N]
#
# Standalone, or called by bench/run. clusterd is built as bench/run builds
# it (-O2, from a copy of the sources in bench/build/src), unless CLUSTERD
# names a binary. nginx runs with Debian's settings for static files:
# sendfile on, tcp_nopush on, its own mime.types, access_log off, no cap on
# keep-alive requests. The servers alternate round by round (clusterd, nginx,
# clusterd, ...), so that drift hits both alike. QUIET_WAIT (5): seconds to
# wait, before each load, for the machine to be under 25 % busy.
set -euo pipefail

BENCH=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$BENCH")
for f in common deps build; do
	# shellcheck source=/dev/null
	. "$BENCH/lib/$f.sh"
done

ROUNDS=5 DURATION=5 WORKERS=$(nproc) CONNS=64 QUIET_WAIT=${QUIET_WAIT:-5}
while [ $# -gt 0 ]; do
	case $1 in
	--quick) ROUNDS=2 DURATION=2 QUIET_WAIT=0 ;;
	--rounds) ROUNDS=$2; shift ;;
	--duration) DURATION=$2; shift ;;
	--workers) WORKERS=$2; shift ;;
	--conns) CONNS=$2; shift ;;
	-h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown option $1 (see --help)" ;;
	esac
	shift
done

RESULTS="$BENCH/results/static"
LOG_DIR="$RESULTS/logs"
# shellcheck disable=SC2034 # lib/build.sh reads it
BUILD_DIR=${BENCH_BUILD_DIR:-$BENCH/build}
WORK_DIR=$(mktemp -d /tmp/clusterd-static-bench.XXXXXX)
GROUPS_FILE="$WORK_DIR/groups"
RAW="$RESULTS/raw.jsonl"
HARNESS_PGID=$(ps -o pgid= $$ | tr -d ' ')
: >"$GROUPS_FILE"

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop_all_groups
	rm -rf "$WORK_DIR"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$RESULTS"
rm -rf "$LOG_DIR" "$RAW" "$RESULTS"/latest.*
mkdir -p "$LOG_DIR"
: >"$RAW"

# What this needs, and only that (bench/run's ensure_deps also sets up Node.js).
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v curl >/dev/null || missing+=(curl)
command -v python3 >/dev/null || missing+=(python3)
[ -f /etc/mime.types ] || missing+=(media-types)
[ "${#missing[@]}" = 0 ] || apt_install "${missing[@]}"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
NGINX_TYPES=/etc/nginx/mime.types
[ -f "$NGINX_TYPES" ] || die "$NGINX_TYPES is missing (Debian's nginx-common ships it)"

if [ -n "${CLUSTERD:-}" ]; then
	[ -x "$CLUSTERD" ] || die "CLUSTERD=$CLUSTERD is not an executable"
else
	build_clusterd
fi
log "bench/static.sh: $ROUNDS rounds of ${DURATION} s, $WORKERS workers, $CONNS connections"

# The files: random bytes, the same directory for both servers.
ROOT="$WORK_DIR/www"
mkdir -p "$ROOT"
head -c 4096 /dev/urandom >"$ROOT/4k.bin"
head -c 1048576 /dev/urandom >"$ROOT/1m.bin"
# nginx's workers run as nobody when it starts as root: they must reach them
chmod 755 "$WORK_DIR" "$ROOT"
chmod 644 "$ROOT"/*.bin
FILES=(4k.bin 1m.bin)

server_start() {
	local name=$1 port prefix
	port=$(free_port)
	case $name in
	clusterd)
		printf '{ "listen": "127.0.0.1:%s", "workers": %s, "log_level": "warn",\n  "routes": [ { "prefix": "/", "service": "static", "root": "%s" } ] }\n' \
			"$port" "$WORKERS" "$ROOT" >"$WORK_DIR/clusterd.conf"
		spawn "$LOG_DIR/clusterd.log" "$CLUSTERD" -c "$WORK_DIR/clusterd.conf"
		;;
	nginx)
		prefix="$WORK_DIR/nginx"
		mkdir -p "$prefix"
		cat >"$prefix/nginx.conf" <<-EOF
		daemon off;
		master_process on;
		worker_processes $WORKERS;
		pid $prefix/nginx.pid;
		error_log $prefix/error.log warn;
		events { worker_connections 4096; }
		http {
		    include $NGINX_TYPES;
		    default_type application/octet-stream;
		    access_log off;
		    sendfile on;
		    tcp_nopush on;
		    server_tokens off;
		    keepalive_requests 100000000;
		    keepalive_timeout 5s;
		    client_body_temp_path $prefix/client_body;
		    proxy_temp_path $prefix/proxy;
		    fastcgi_temp_path $prefix/fastcgi;
		    uwsgi_temp_path $prefix/uwsgi;
		    scgi_temp_path $prefix/scgi;
		    server {
		        listen 127.0.0.1:$port reuseport backlog=4096;
		        root $ROOT;
		    }
		}
		EOF
		spawn "$LOG_DIR/nginx.log" "$NGINX" -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log"
		;;
	esac
	SERVER_PGID=$SPAWNED SERVER_NAME=$name SERVER_PORT=$port
	if ! wait_200 "http://127.0.0.1:$port/4k.bin" 20; then
		tail -5 "$LOG_DIR/$name.log" >&2
		die "$name did not serve 127.0.0.1:$port/4k.bin (log: $LOG_DIR/$name.log)"
	fi
	local _
	for _ in $(seq 100); do
		[ "$(python3 "$BENCH/lib/proc.py" count "$SERVER_PGID")" -ge $((WORKERS + 1)) ] && break
		sleep 0.05
	done
}

server_stop() {
	stop_group "$SERVER_PGID"
	SERVER_PGID=""
}

# Both serve the same bytes, and the same validators (ETag as nginx makes it).
check_same() {
	local f cport nport
	server_start clusterd; cport=$SERVER_PORT
	for f in "${FILES[@]}"; do
		curl -s -D "$WORK_DIR/h-clusterd-$f" -o "$WORK_DIR/b-clusterd-$f" "http://127.0.0.1:$cport/$f"
	done
	server_stop
	server_start nginx; nport=$SERVER_PORT
	for f in "${FILES[@]}"; do
		curl -s -D "$WORK_DIR/h-nginx-$f" -o "$WORK_DIR/b-nginx-$f" "http://127.0.0.1:$nport/$f"
	done
	server_stop
	for f in "${FILES[@]}"; do
		cmp -s "$ROOT/$f" "$WORK_DIR/b-clusterd-$f" || die "clusterd served other bytes for $f"
		cmp -s "$ROOT/$f" "$WORK_DIR/b-nginx-$f" || die "nginx served other bytes for $f"
		local hc hn
		hc=$(grep -i -E '^(etag|last-modified|content-length|content-type):' "$WORK_DIR/h-clusterd-$f" | tr -d '\r' | sort -f)
		hn=$(grep -i -E '^(etag|last-modified|content-length|content-type):' "$WORK_DIR/h-nginx-$f" | tr -d '\r' | sort -f)
		if [ "${hc,,}" = "${hn,,}" ]; then
			log "$f: same bytes, same ETag, Last-Modified, Content-Length and Content-Type"
		else
			warn "$f: the headers differ: clusterd [${hc//$'\n'/; }] nginx [${hn//$'\n'/; }]"
		fi
	done
}

load() {
	local round=$1 f=$2 out before after
	out="$LOG_DIR/wrk-r$round-$f-$SERVER_NAME.txt"
	if [ "$QUIET_WAIT" != 0 ]; then
		python3 "$BENCH/lib/proc.py" quiet "$QUIET_WAIT" 25 >/dev/null ||
			warn "the machine is busy with other work: measuring anyway"
	fi
	before=$(python3 "$BENCH/lib/proc.py" cpu "$SERVER_PGID" -1 "$HARNESS_PGID")
	timeout -k 2 $((DURATION + 20)) wrk -t1 -c"$CONNS" -d"${DURATION}s" --timeout 2s --latency \
		-s "$BENCH/lua/report.lua" "http://127.0.0.1:$SERVER_PORT/$f" >"$out" 2>&1 || true
	after=$(python3 "$BENCH/lib/proc.py" cpu "$SERVER_PGID" -1 "$HARNESS_PGID")
	# the third figure: this script's group, wrk above all
	local client=$(( $(echo "$after" | cut -d' ' -f3) - $(echo "$before" | cut -d' ' -f3) ))
	python3 "$BENCH/lib/record.py" "$out" "$before" "$after" kind=load round="$round" \
		scenario="$f" server="$SERVER_NAME" workers="$WORKERS" conns="$CONNS" \
		client_ticks="$client" >>"$RAW"
}

check_same
for round in $(seq "$ROUNDS"); do
	for name in clusterd nginx; do
		server_start "$name"
		for f in "${FILES[@]}"; do
			load "$round" "$f"
		done
		server_stop
	done
done

python3 - "$RAW" "$RESULTS" "$ROUNDS" "$DURATION" "$WORKERS" "$CONNS" <<'EOF'
import json, os, statistics, sys
TICK_US = 1e6 / os.sysconf("SC_CLK_TCK")
raw, results, rounds, duration, workers, conns = sys.argv[1:]
recs = [json.loads(l) for l in open(raw) if l.strip()]
ok = [r for r in recs if not r.get("failed")]
sizes = {"4k.bin": ("4 KiB", 4096), "1m.bin": ("1 MiB", 1048576)}

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

summary, lines = {}, []
lines.append("static files: %s rounds of %s s, %s workers, %s keep-alive connections, wrk -t1 (medians)"
             % (rounds, duration, workers, conns))
lines.append("")
lines.append("| file | server | req/s | MB/s | p99 ms | server CPU us/req | wrk CPU us/req | errors |")
lines.append("|---|---|---:|---:|---:|---:|---:|---:|")
for f, (label, size) in sizes.items():
    for s in ("clusterd", "nginx"):
        rs = [r for r in ok if r["scenario"] == f and r["server"] == s]
        if not rs:
            continue
        m = {"runs": len(rs), "rps": med(r["rps"] for r in rs),
             "p99_ms": med(r.get("p99_ms") for r in rs),
             "cpu_us_per_req": med(r.get("server_cpu_us_per_req") for r in rs),
             "client_cpu_us_per_req": med(r["client_ticks"] * TICK_US / r["requests"]
                                          for r in rs if r.get("requests")),
             "errors": sum(r["errors"] for r in rs),
             "rps_by_round": [r["rps"] for r in rs]}
        m["mb_s"] = m["rps"] * size / 1e6
        summary.setdefault(f, {})[s] = m
        fmt = lambda v, spec: spec % v if v is not None else "-"
        lines.append("| %s | %s | %.0f | %.0f | %s | %s | %s | %d |" % (
            label, s, m["rps"], m["mb_s"], fmt(m["p99_ms"], "%.2f"),
            fmt(m["cpu_us_per_req"], "%.1f"), fmt(m["client_cpu_us_per_req"], "%.1f"),
            m["errors"]))
lines.append("")
ratios = {}
for f, (label, _) in sizes.items():
    c, n = summary.get(f, {}).get("clusterd"), summary.get(f, {}).get("nginx")
    if not c or not n:
        continue
    r = {"rps": c["rps"] / n["rps"] if n["rps"] else None}
    if c["cpu_us_per_req"] and n["cpu_us_per_req"]:
        r["cpu_per_req"] = c["cpu_us_per_req"] / n["cpu_us_per_req"]
    ratios[f] = r
    lines.append("%s: clusterd/nginx req/s %.2fx, CPU per request %s (below 1: less CPU)" % (
        label, r["rps"], "%.2fx" % r["cpu_per_req"] if "cpu_per_req" in r else "-"))
text = "\n".join(lines)
print(text)
open(results + "/latest.md", "w").write(text + "\n")
json.dump({"rounds": int(rounds), "duration_s": int(duration), "workers": int(workers),
           "conns": int(conns), "summary": summary, "ratios": ratios, "records": recs},
          open(results + "/latest.json", "w"), indent=1)
EOF
log "written: ${RESULTS#"$REPO"/}/latest.md, latest.json, logs/"
