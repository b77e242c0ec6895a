# The servers under test, each started the same way:
#   server_start NAME WORKERS PORT [CPU]   sets SERVER_PGID (its pid and group)
#   server_stop
# NAME: clusterd | nginx | node-http | node-express. CPU pins the whole
# process tree (taskset -c CPU). All listen on 127.0.0.1:PORT, serve GET
# /dummy, and (not nginx) /mongo/... when MONGO_URI is set.
# server_cmd NAME WORKERS PORT prints nothing: it sets the array SERVER_CMD
# (also used by the start-up and kill -9 probes). With NO_MONGO=1 in its
# environment, clusterd gets nginx's job only (/dummy): the start-up probe
# compares like with like that way, and apart with the readmongo route.

SERVERS_HTTP=(clusterd nginx node-http node-express)   # the order of a round
SERVERS_MONGO=(clusterd node-http node-express)

server_cmd() {
	local name=$1 workers=$2 port=$3 conf
	case $name in
	clusterd)
		conf="$WORK_DIR/clusterd-$port.conf"
		{
			printf '{ "listen": ["127.0.0.1:%s"], "workers": %s, "log_level": "warn",\n' "$port" "$workers"
			printf '  "routes": [ { "prefix": "/dummy", "service": "dummy" }'
			[ -n "$MONGO_URI" ] && [ -z "${NO_MONGO:-}" ] && printf ',\n    { "prefix": "/mongo", "service": "readmongo", "uri": "%s",\n      "database": "bench", "collections": ["*"] }' "$MONGO_URI"
			printf ' ] }\n'
		} >"$conf"
		SERVER_CMD=("$CLUSTERD" -c "$conf")
		;;
	nginx)
		local prefix="$WORK_DIR/nginx-$port"
		mkdir -p "$prefix"
		sed -e "s|@WORKERS@|$workers|g" -e "s|@PORT@|$port|g" -e "s|@PREFIX@|$prefix|g" \
			"$BENCH/nginx/nginx.conf.in" >"$prefix/nginx.conf"
		SERVER_CMD=("$NGINX" -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/error.log")
		;;
	node-http|node-express)
		SERVER_CMD=(env PORT="$port" WORKERS="$workers" MONGO_URI="$MONGO_URI" DB=bench
			node "$BENCH/node/${name#node-}.js")
		;;
	*) die "unknown server $name" ;;
	esac
}

server_start() {
	local name=$1 workers=$2 port=$3 cpu=${4:-} pin=()
	[ -n "$cpu" ] && pin=(taskset -c "$cpu")
	server_cmd "$name" "$workers" "$port"
	spawn "$LOG_DIR/$name.log" "${pin[@]}" "${SERVER_CMD[@]}"
	SERVER_PGID=$SPAWNED
	SERVER_NAME=$name
	SERVER_PORT=$port
	if ! wait_200 "http://127.0.0.1:$port/dummy" 20; then
		tail -5 "$LOG_DIR/$name.log" >&2
		server_stop
		die "$name did not answer on 127.0.0.1:$port (log: $LOG_DIR/$name.log)"
	fi
	# every worker up: as many processes in the group as workers + master
	local i
	for i in $(seq 100); do
		[ "$(python3 "$BENCH/lib/proc.py" count "$SERVER_PGID")" -ge $((workers + 1)) ] && break
		sleep 0.05
	done
}

server_stop() {
	stop_group "$SERVER_PGID"
	SERVER_PGID=""
}
