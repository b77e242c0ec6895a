# One bounded load and its record (a line of $RAW):
#   load_wrk SCENARIO URL CONNS SECONDS WRK_CPU LUA [wrk args...]
#   load_direct SCENARIO MODE SECONDS CLIENT   (no HTTP: node or libmongoc)
# Both measure the CPU time of the server's group, of the test MongoDB server
# and of everything else on the machine around the load (lib/proc.py).
# ROUND, SERVER_NAME, SERVER_PGID, WORKERS_NOW come from the caller.

HARNESS_PGID=$(ps -o pgid= $$ | tr -d ' ')

# Other work on the machine (builds, test suites) skews a load: wait up to
# $QUIET_WAIT s for the machine to be under 25 % busy first (0: no wait).
wait_quiet() {
	local busy
	[ "${QUIET_WAIT:-0}" != 0 ] || return 0
	busy=$(python3 "$BENCH/lib/proc.py" quiet "$QUIET_WAIT" 25) ||
		warn "the machine is ${busy}% busy with other work: measuring anyway"
}

cpu_snapshot() { python3 "$BENCH/lib/proc.py" cpu "${1:-0}" "${MONGO_PGID:-0}" "$HARNESS_PGID"; }

# wrk, bounded: -d plus a hard timeout in case it hangs
run_wrk() {
	local cpu=$1 url=$2 conns=$3 secs=$4 lua=$5; shift 5
	local pin=()
	[ -n "$cpu" ] && pin=(taskset -c "$cpu")
	BENCH_LUA="$BENCH/lua" BENCH_IDS="$IDS_FILE" BENCH_GROUPS="$GROUPS_N" \
		timeout -k 2 $((secs + 20)) "${pin[@]}" wrk -t1 -c"$conns" -d"${secs}s" --timeout 2s --latency \
		-s "$BENCH/lua/$lua" "$@" "$url"
}

load_wrk() {
	local scenario=$1 url=$2 conns=$3 secs=$4 cpu=$5 lua=$6; shift 6
	local out="$LOG_DIR/wrk-r$ROUND-$scenario-$SERVER_NAME.txt" before after
	wait_quiet
	before=$(cpu_snapshot "$SERVER_PGID")
	run_wrk "$cpu" "$url" "$conns" "$secs" "$lua" "$@" >"$out" 2>&1 || true
	after=$(cpu_snapshot "$SERVER_PGID")
	python3 "$BENCH/lib/record.py" "$out" "$before" "$after" kind=load round="$ROUND" \
		scenario="$scenario" server="$SERVER_NAME" workers="$WORKERS_NOW" conns="$conns" >>"$RAW"
}

# The test MongoDB server alone, no HTTP: CLIENT node (the official Node.js
# driver, 2 processes x 32 queries in flight) or libmongoc (mongo-ceiling,
# 8 threads, as many queries in flight as readmongo's pools of 2 workers).
load_direct() {
	local scenario=$1 mode=$2 secs=$3 client=$4
	local out="$LOG_DIR/direct-r$ROUND-$scenario-$client.txt" before after
	wait_quiet
	before=$(cpu_snapshot -1)
	if [ "$client" = node ]; then
		MONGO_URI="$MONGO_URI" MODE="$mode" IDS="$IDS_FILE" BENCH_GROUPS="$GROUPS_N" DURATION="$secs" PROCS=2 CONC=32 \
			timeout -k 2 $((secs + 30)) node "$BENCH/node/mongo-direct.js" >"$out" 2>&1 || true
	else
		timeout -k 2 $((secs + 30)) "$MONGO_CEILING" "$MONGO_URI" "$mode" "$IDS_FILE" "$GROUPS_N" "$secs" 8 \
			>"$out" 2>&1 || true
	fi
	after=$(cpu_snapshot -1)
	python3 "$BENCH/lib/record.py" "$out" "$before" "$after" kind=load round="$ROUND" \
		scenario="$scenario" server="$client-direct" workers=- conns=- >>"$RAW"
}
