# Shared helpers of bench/run: logging, process groups, ports, readiness.
# Every server runs in its own session (setsid), so its process group id is
# its pid: stopping it means signalling the whole group, and the EXIT trap of
# bench/run stops every group still registered in $GROUPS_FILE.

GROUPS_FILE=""               # set by bench/run: one pgid a line, still running

log()  { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
warn() { printf '%s WARNING: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die()  { printf 'bench/run: %s\n' "$*" >&2; exit 1; }

# A free TCP port on 127.0.0.1 (the kernel's choice; bound again at once).
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# spawn LOGFILE CMD... : starts CMD in a new session, in the background;
# sets SPAWNED to its pid (= its process group id) and registers the group.
spawn() {
	local logfile=$1; shift
	setsid "$@" </dev/null >>"$logfile" 2>&1 &
	SPAWNED=$!
	echo "$SPAWNED" >>"$GROUPS_FILE"
}

# group_alive PGID : some process of the session/group is not a zombie
group_alive() {
	local st
	for st in $(ps -o stat= --sid "$1" 2>/dev/null); do
		[[ $st == Z* ]] || return 0
	done
	return 1
}

# stop_group PGID : SIGTERM to the group, SIGKILL after 3 s, and reaped.
stop_group() {
	local pg=$1 i
	[ -n "$pg" ] || return 0
	kill -TERM -- "-$pg" 2>/dev/null || true
	for i in $(seq 60); do
		group_alive "$pg" || break
		sleep 0.05
	done
	kill -KILL -- "-$pg" 2>/dev/null || true
	wait "$pg" 2>/dev/null || true
	sed -i "/^$pg\$/d" "$GROUPS_FILE" 2>/dev/null || true
}

stop_all_groups() {
	local pg
	[ -f "$GROUPS_FILE" ] || return 0
	for pg in $(tac "$GROUPS_FILE"); do stop_group "$pg"; done
}

# wait_200 URL [SECONDS] : polls until URL answers 200; 1 if it never does.
wait_200() {
	local url=$1 limit=${2:-15} end
	end=$(( $(date +%s) + limit ))
	while [ "$(date +%s)" -lt "$end" ]; do
		[ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$url" 2>/dev/null)" = 200 ] && return 0
		sleep 0.05
	done
	return 1
}

# median of the numbers on stdin
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR) print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }

# emit key=value... : the JSON object on stdin (or {}) with those keys added,
# as one line on stdout. Values that look like numbers become numbers.
emit() {
	python3 -c '
import json, sys
text = sys.stdin.read().strip()
d = json.loads(text) if text else {}
for kv in sys.argv[1:]:
    k, v = kv.split("=", 1)
    try:
        v = int(v)
    except ValueError:
        try:
            v = float(v)
        except ValueError:
            pass
    d[k] = v
print(json.dumps(d))' "$@"
}
