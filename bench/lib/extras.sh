# Measurements other than throughput, each on fresh servers:
#   measure_startup NAME N   spawn to first 200, N times (2 workers); clusterd
#                            both with nginx's routes only (server=clusterd)
#                            and with a readmongo route as well
#                            (server=clusterd, variant=readmongo): loading
#                            libmongoc is most of the start-up then
#   measure_kill9 NAME N     kill -9 of the only worker to the first 200 from
#                            its replacement, N times, each on a fresh server
#                            (clusterd backs off when a slot's workers keep
#                            dying young, so kills in a row would measure the
#                            back-off, not the restart)
#   measure_reload NAME      SIGHUP to the master 5 times, $RELOAD_EVERY s
#                            apart, during a wrk run of $RELOAD_SECS s at 64
#                            connections: failed requests
#   record_rss               RSS of the running server's group (after a load)

measure_startup() {
	local name=$1 n=$2 i port variant
	for i in $(seq "$n"); do
		for variant in plain readmongo; do
			[ "$variant" = readmongo ] && { [ "$name" = clusterd ] && [ -n "$MONGO_URI" ] || continue; }
			port=$(free_port)
			if [ "$variant" = plain ]; then NO_MONGO=1 server_cmd "$name" "$WORKERS" "$port"
			else server_cmd "$name" "$WORKERS" "$port"; fi
			python3 "$BENCH/lib/probe.py" startup "$port" -- "${SERVER_CMD[@]}" </dev/null 2>>"$LOG_DIR/probe.log" |
				emit kind=startup server="$name" variant="$variant" workers="$WORKERS" try="$i" >>"$RAW"
		done
	done
	for variant in plain readmongo; do
		grep '"kind": "startup"' "$RAW" | grep "\"server\": \"$name\"" | grep -q "\"variant\": \"$variant\"" || continue
		log "$(printf '%-13s start to first 200%s: %s ms' "$name" "$([ "$variant" = readmongo ] && echo ' (with readmongo)')" \
			"$(grep '"kind": "startup"' "$RAW" | grep "\"server\": \"$name\"" | grep "\"variant\": \"$variant\"" | python3 -c '
import json, sys; print(" ".join(str(json.loads(l).get("ms")) for l in sys.stdin))')")"
	done
}

measure_kill9() {
	local name=$1 n=$2 i port
	for i in $(seq "$n"); do
		port=$(free_port)
		server_cmd "$name" 1 "$port"
		python3 "$BENCH/lib/probe.py" kill9 "$port" -- "${SERVER_CMD[@]}" </dev/null 2>>"$LOG_DIR/probe.log" |
			emit kind=kill9 server="$name" workers=1 try="$i" >>"$RAW"
	done
	log "$(printf '%-13s kill -9 to serving: %s ms' "$name" \
		"$(grep '"kind": "kill9"' "$RAW" | grep "\"server\": \"$name\"" | python3 -c '
import json, sys; print(" ".join(str(json.loads(l).get("ms", "-")) for l in sys.stdin))')")"
}

measure_reload() {
	local name=$1 secs=$RELOAD_SECS port out before after wrk_pid i gen
	port=$(free_port)
	server_start "$name" "$WORKERS" "$port"
	[ "$MODE" = quick ] || run_wrk "" "http://127.0.0.1:$port/dummy" 64 1 report.lua >/dev/null 2>&1 || true   # warm
	out="$LOG_DIR/wrk-reload-$name.txt"
	before=$(cpu_snapshot "$SERVER_PGID")
	run_wrk "" "http://127.0.0.1:$port/dummy" 64 "$secs" report.lua >"$out" 2>&1 &
	wrk_pid=$!
	sleep "$RELOAD_EVERY"
	for i in 1 2 3 4 5; do
		kill -HUP "$SERVER_PGID"
		sleep "$RELOAD_EVERY"
	done
	wait "$wrk_pid" || true
	after=$(cpu_snapshot "$SERVER_PGID")
	# clusterd counts generations: 5 reloads done means generation 6
	gen=$(curl -s -m 2 "http://127.0.0.1:$port/dummy" | sed -n 's/.*"generation":\([0-9]*\).*/\1/p')
	[ "$name" = clusterd ] || gen=""     # only clusterd counts its generations
	python3 "$BENCH/lib/record.py" "$out" "$before" "$after" kind=reload round=- scenario=5-reloads server="$name" \
		workers="$WORKERS" conns=64 hups=5 ${gen:+generation_after=$gen} >>"$RAW"
	server_stop
	log "$(printf '%-13s 5 reloads under load: %s' "$name" "$(tail -1 "$RAW" | python3 -c '
import json, sys; r = json.loads(sys.stdin.read())
print("%s requests, %s failed %s" % (r.get("requests"), r.get("errors"), r.get("errors_by_kind")),
      "(generation after: %s)" % r["generation_after"] if r.get("generation_after") else "")')")"
}

record_rss() {
	python3 "$BENCH/lib/proc.py" rss "$SERVER_PGID" |
		emit kind=rss server="$SERVER_NAME" workers="$WORKERS_NOW" round="$ROUND" >>"$RAW"
}
