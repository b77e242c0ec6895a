# The socketio section of bench/run: clusterd's socketio service against the
# Node.js peer (node/hub.js: cluster + socket.io 4.8 + @socket.io/cluster-adapter),
# driven by sioload (sioload.c), one fresh server per round and server:
#
#   sio_prepare          the open-files limit the servers and sioload need;
#                        1 (with why in SIO_SKIPPED) when the section cannot run
#   sio_round            every server of SERVERS_SIO in turn: start it, read
#                        its RSS, then one sioload run: connect $SIO_CONNS
#                        sockets (all joined to one room), hold them idle while
#                        its RSS is read again, then publish to the room at
#                        saturation (window $SIO_WINDOW) and at $SIO_RATE
#                        msgs/s; lib/siorecord.py turns that into records
#
# CPU: sioload keeps `lib/proc.py cpu-lines PGID` running beside it and asks
# it for the server's CPU ticks at the start and end of each measured window,
# so the server's CPU is counted over the window only; its own CPU sioload
# measures itself (getrusage).

SERVERS_SIO=(clusterd node-socketio)     # the order of a round
SIO_CONNS=${BENCH_SIO_CONNS:-10000}
SIO_WINDOW=${BENCH_SIO_WINDOW:-8}         # messages in flight at saturation
SIO_RATE=${BENCH_SIO_RATE:-2}             # msgs/s of the fixed-rate phase
SIO_PAYLOAD=${BENCH_SIO_PAYLOAD:-64}      # bytes of pad in each message
SIO_IDLE=2                                # seconds held idle (RSS read half-way)
SIO_NOFILE="" NOFILE=()

# The open-files limit: sioload holds $SIO_CONNS sockets, and so may a single
# worker. The soft limit goes up to what is needed (the hard limit too, when
# allowed: it takes CAP_SYS_RESOURCE); only the socketio servers and sioload
# run with it (NOFILE: a prefix to their command).
sio_prepare() {
	local need=$(( SIO_CONNS + 1024 )) hard
	hard=$(ulimit -Hn)
	if [ "$hard" != unlimited ] && [ "$hard" -lt "$need" ]; then
		if (ulimit -Hn "$need") 2>/dev/null; then hard=$need; fi
	fi
	[ "$hard" = unlimited ] && hard=$need
	if [ "$hard" -lt $(( SIO_CONNS + 64 )) ]; then
		SIO_SKIPPED="the hard limit on open files is $hard, too few for $SIO_CONNS sockets (set BENCH_SIO_CONNS, or raise it)"
		return 1
	fi
	SIO_NOFILE=$(( hard < need ? hard : need ))
	NOFILE=(sh -c 'ulimit -n "$0" && exec "$@"' "$SIO_NOFILE")
	[ -x "$SIOLOAD" ] || { SIO_SKIPPED="no sioload ($SIOLOAD)"; return 1; }
	[ -f "$(dirname "$CLUSTERD")/socketio.so" ] || { SIO_SKIPPED="no socketio.so beside $CLUSTERD"; return 1; }
	[ -d "$BENCH/node/socketio/node_modules/socket.io" ] ||
		{ SIO_SKIPPED="socket.io is not installed in bench/node/socketio"; return 1; }
}

sio_server_cmd() {
	local name=$1 workers=$2 port=$3 conf
	case $name in
	clusterd)
		conf="$WORK_DIR/clusterd-sio-$port.conf"
		# /dummy for readiness, /metrics for the service's own counters after the load
		cat >"$conf" <<-EOF
		{ "listen": ["127.0.0.1:$port"], "workers": $workers, "log_level": "warn",
		  "worker_rlimit_nofile": $SIO_NOFILE,
		  "routes": [ { "prefix": "/dummy", "service": "dummy" },
		              { "prefix": "/metrics", "service": "metrics" },
		              { "prefix": "/socket.io", "service": "socketio",
		                "max_connections": $(( SIO_CONNS + 100 )) } ] }
		EOF
		SERVER_CMD=("$CLUSTERD" -c "$conf")
		;;
	node-socketio)
		SERVER_CMD=(node "$BENCH/node/hub.js" --port "$port" --workers "$workers")
		;;
	*) die "unknown socketio server $name" ;;
	esac
}

sio_server_start() {
	local name=$1 workers=$2 port=$3 log="$LOG_DIR/$1-sio.log" i ok=0
	sio_server_cmd "$name" "$workers" "$port"
	spawn "$log" "${NOFILE[@]}" "${SERVER_CMD[@]}"
	SERVER_PGID=$SPAWNED SERVER_NAME=$name SERVER_PORT=$port
	if [ "$name" = clusterd ]; then
		wait_200 "http://127.0.0.1:$port/dummy" 20 && ok=1
	else
		for i in $(seq 400); do     # hub.js prints {"ready":true,...} once every worker listens
			grep -q "\"ready\":true,\"port\":$port" "$log" 2>/dev/null && { ok=1; break; }
			group_alive "$SERVER_PGID" || break
			sleep 0.05
		done
	fi
	if [ "$ok" != 1 ]; then
		tail -5 "$log" >&2
		server_stop
		die "$name (socketio) did not start on 127.0.0.1:$port (log: $log)"
	fi
	for i in $(seq 100); do
		[ "$(python3 "$BENCH/lib/proc.py" count "$SERVER_PGID")" -ge $((workers + 1)) ] && break
		sleep 0.05
	done
	sleep 0.3                   # settled: the RSS baseline is read next
}

# The socketio lines of clusterd's /metrics that say whether anything was
# dropped or closed, as key=value for the record.
sio_metrics() {
	[ "$SERVER_NAME" = clusterd ] || return 0
	curl -s -m 5 "http://127.0.0.1:$SERVER_PORT/metrics" | awk '
		/^clusterd_socketio_(deliveries_total|bus_dropped_total|refused_total)\{/ {
			split($1, a, "{"); sub(/^clusterd_socketio_/, "", a[1]); printf "m_%s=%s\n", a[1], $2 }
		/^clusterd_socketio_disconnects_total\{/ {
			r = $1; sub(/.*reason="/, "", r); sub(/".*/, "", r); printf "m_closed_%s=%s\n", r, $2 }'
}

sio_load() {
	local out="$LOG_DIR/sioload-r$ROUND-$SERVER_NAME.json" err="$LOG_DIR/sioload-r$ROUND-$SERVER_NAME.err"
	local warm=$SIO_WARMUP base budget metrics
	base=$(python3 "$BENCH/lib/proc.py" rss "$SERVER_PGID")
	wait_quiet
	# connect (60 s at most) + idle + 2 x (warm-up + window + 5 s of grace) + slack
	budget=$(( 60 + SIO_IDLE + 2 * (warm + DURATION + 5 + 2) + 10 ))
	timeout -k 2 $(( budget + 10 )) "${NOFILE[@]}" "$SIOLOAD" --port "$SERVER_PORT" \
		--conns "$SIO_CONNS" --rate 0 --inflight 200 --room bench --connect-timeout 60 \
		--idle "$SIO_IDLE" --idle-cmd "python3 $BENCH/lib/proc.py rss $SERVER_PGID" \
		--publish --window "$SIO_WINDOW" --msgs-per-sec "$SIO_RATE" --payload "$SIO_PAYLOAD" \
		--warmup "$warm" --duration "$DURATION" --grace 5 --deadline "$budget" \
		--snapshot "python3 $BENCH/lib/proc.py cpu-lines $SERVER_PGID" >"$out" 2>"$err" || true
	metrics=$(sio_metrics | tr '\n' ' ')
	# shellcheck disable=SC2086
	python3 "$BENCH/lib/siorecord.py" "$out" "$base" round="$ROUND" server="$SERVER_NAME" \
		workers="$WORKERS" $metrics >>"$RAW"
}

sio_round() {
	local s
	for s in "${SERVERS_SIO[@]}"; do
		sio_server_start "$s" "$WORKERS" "$(free_port)"
		WORKERS_NOW=$WORKERS
		sio_load
		server_stop
	done
}
