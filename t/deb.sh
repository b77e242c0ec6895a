#!/bin/bash
# The Debian package, end to end, for CI (.ci/run); not in make check, because
# it installs and removes system packages. As root on Debian 12:
#   t/deb.sh
# It builds the package from a copy of this checkout (dpkg-buildpackage -us
# -uc -b), runs lintian, installs it with apt-get, checks clusterd -t, the man
# pages, the user, the conffiles and the unit, runs the master as the unit
# would (started by hand where systemd is not PID 1), rotates its logs with
# the packaged logrotate file, stops it with SIGQUIT, purges the package and
# checks that nothing is left but the system user, which Debian keeps (see
# debian/README.Debian); the test then removes the user if it created it.
# Each step has a time limit; whatever fails, the package is purged.
# TAP output; exit 0 when every check passed.
set -uo pipefail
export LC_ALL=C DEBIAN_FRONTEND=noninteractive
top=$(cd "$(dirname "$0")/.." && pwd)

n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)) failed=$((failed + 1)); echo "not ok $n - $1"; }
# check DESCRIPTION COMMAND...: one TAP line; the command's output on failure.
check() {
	local what=$1 out
	shift
	if out=$("$@" 2>&1); then ok "$what"; else not_ok "$what"; [ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/#   /'; fi
}
diag() { printf '%s\n' "$@" | sed 's/^/# /'; }
bail() { echo "Bail out! $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || bail "t/deb.sh installs packages: run it as root"
[ -r /etc/debian_version ] || bail "t/deb.sh needs Debian"

# ---- the tools (the Build-Depends come from debian/control, below) ----
tools="build-essential devscripts debhelper lintian logrotate man-db curl git"
missing=""
for p in $tools; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	diag "installing$missing"
	timeout 300 apt-get update -qq || bail "apt-get update failed"
	# shellcheck disable=SC2086
	timeout 900 apt-get install -y -qq --no-install-recommends $missing >/dev/null || bail "cannot install$missing"
fi

# ---- state before: nothing of clusterd installed, running or on the port ----
if dpkg-query -W -f='${Status}' clusterd 2>/dev/null | grep -qv "not-installed"; then
	bail "the clusterd package is already on this machine ($(dpkg-query -W -f='${Status}' clusterd)): purge it first"
fi
user_existed=no
getent passwd clusterd >/dev/null && user_existed=yes
# Files named like clusterd outside scratch space, to compare after the purge.
leftovers() {
	find /etc /lib /usr /var /run /opt /srv -xdev \( -path /var/tmp -o -path /var/cache/apt \) -prune \
		-o -name '*clusterd*' -print 2>/dev/null | sort
}
before=$(leftovers)
port=8080
# curl exits 7 when nothing listens there.
curl -s -o /dev/null --max-time 2 http://127.0.0.1:8080/; [ $? -eq 7 ] || port=""

tmp=$(mktemp -d /tmp/clusterd-deb.XXXXXX) || bail "mktemp"
chmod 755 "$tmp"    # apt's _apt user reads the .deb from there
master=""
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$master" ] && kill -0 "$master" 2>/dev/null; then
		kill -TERM "$master" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$master" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$master" 2>/dev/null
	fi
	if dpkg-query -W -f='${Status}' clusterd 2>/dev/null | grep -qv "not-installed"; then
		diag "cleanup: purging clusterd"
		timeout 300 apt-get purge -y -qq clusterd >/dev/null 2>&1 || timeout 120 dpkg --purge --force-all clusterd >/dev/null 2>&1
	fi
	if [ "$user_existed" = no ] && getent passwd clusterd >/dev/null; then
		deluser --system --quiet clusterd >/dev/null 2>&1
	fi
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- build, from a copy of the checkout (tracked and untracked files, not the ignored) ----
version=$(sed -n 's/^AC_INIT(\[clusterd\], \[\([^]]*\)\].*/\1/p' "$top/configure.ac")
debversion=$(dpkg-parsechangelog -l "$top/debian/changelog" -S Version)
arch=$(dpkg --print-architecture)
check "debian/changelog's version $debversion is configure.ac's $version, -N" \
	test "${debversion%-*}" = "$version"
src=$tmp/clusterd-$version
mkdir "$src"
(cd "$top" && git ls-files -z --cached --others --exclude-standard |
	tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -xf - -C "$src" ||
	bail "cannot copy the checkout to $src"
timeout 900 apt-get build-dep -y -qq --no-install-recommends "$src" >"$tmp/build-dep.log" 2>&1 ||
	{ tail -20 "$tmp/build-dep.log" | sed 's/^/# /'; bail "apt-get build-dep failed"; }
start=$(date +%s)
if (cd "$src" && timeout 1800 dpkg-buildpackage -us -uc -b) >"$tmp/build.log" 2>&1; then
	ok "dpkg-buildpackage -us -uc -b ($(($(date +%s) - start)) s; make check with the unit tests: $(grep -o '^# PASS: *[0-9]*' "$tmp/build.log" | tr -s ' ' | cut -d" " -f3) TAP tests passed)"
else
	not_ok "dpkg-buildpackage -us -uc -b"
	tail -40 "$tmp/build.log" | sed 's/^/#   /'
	bail "no package to test"
fi
deb=clusterd_${debversion}_${arch}.deb
[ -f "$tmp/$deb" ] || bail "no $deb in $tmp: $(ls "$tmp")"
ok "it built $deb"

# Exit status 0: no error (and lintian ran); no "W:" line: no warning, but
# those of debian/clusterd.lintian-overrides, shown as "O:" with their reason.
# (--fail-on warning would do, but with --show-overrides it fails on these.)
out=$(timeout 600 lintian --color never --show-overrides "$tmp/clusterd_${debversion}_${arch}.changes" 2>&1)
rc=$?
out=$(printf '%s\n' "$out" | grep -v '^running with root privileges')
if [ $rc -eq 0 ] && ! grep -q '^W: ' <<<"$out"; then
	ok "lintian: no error, no warning but the overridden"
else
	not_ok "lintian: no error, no warning but the overridden (exit status $rc)"
fi
[ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/#   /'

# ---- install ----
if (cd "$tmp" && timeout 900 apt-get install -y -q "./$deb") >"$tmp/install.log" 2>&1; then
	ok "apt-get install ./$deb"
else
	not_ok "apt-get install ./$deb"
	tail -30 "$tmp/install.log" | sed 's/^/#   /'
	bail "not installed"
fi
check "clusterd -V is $version" sh -c "clusterd -V | grep -qx 'clusterd $version'"
check "clusterd -t: the packaged config is valid" sh -c 'clusterd -t | grep -qx ok'
check "man -w clusterd" sh -c 'man -w clusterd | grep -q "/man8/clusterd.8"'
check "man -w clusterd.conf" sh -c 'man -w clusterd.conf | grep -q "/man5/clusterd.conf.5"'
check "the modules are found and load: clusterd -t on a config with readmongo and socketio routes" \
	sh -c "printf '%s' '{ \"listen\": [\"127.0.0.1:1\"], \"routes\": [
		{ \"prefix\": \"/m\", \"service\": \"readmongo\", \"uri\": \"mongodb://127.0.0.1:1/\",
		  \"database\": \"d\", \"collections\": [\"c\"] },
		{ \"prefix\": \"/s\", \"service\": \"socketio\" } ] }' > '$tmp/modules.conf' &&
		env -u CLUSTERD_MODULE_DIR clusterd -t -c '$tmp/modules.conf'"
check "a system user clusterd, no home, no shell" sh -c '
	IFS=: read -r name _ uid gid _ home shell <<EOF
$(getent passwd clusterd)
EOF
	[ "$name" = clusterd ] && [ "$uid" -lt 1000 ] && [ "$home" = /nonexistent ] &&
	[ "$shell" = /usr/sbin/nologin ] && [ "$(getent group "$gid" | cut -d: -f1)" = clusterd ] ||
	{ getent passwd clusterd; exit 1; }'
conffiles=$(dpkg-query -W -f='${Conffiles}\n' clusterd)
check "/etc/clusterd/clusterd.conf is a conffile" grep -q '^ /etc/clusterd/clusterd.conf ' <<<"$conffiles"
check "/etc/logrotate.d/clusterd is a conffile" grep -q '^ /etc/logrotate.d/clusterd ' <<<"$conffiles"
conf=/etc/clusterd/clusterd.conf
check "the config: workers run as clusterd, logs in /var/log/clusterd, pid file in /run/clusterd" sh -c "
	grep -q '\"user\": \"clusterd\"' $conf && grep -q '\"error_log\": \"/var/log/clusterd/error.log\"' $conf &&
	grep -q '\"access_log\": \"/var/log/clusterd/access.log\"' $conf &&
	grep -q '\"pid_file\": \"/run/clusterd/clusterd.pid\"' $conf"
check "the config: routes /dummy and /healthz only" sh -c "
	[ \"\$(grep -o '\"prefix\": \"[^\"]*\"' $conf | tr '\n' ' ')\" = '\"prefix\": \"/dummy\" \"prefix\": \"/healthz\" ' ]"
check "logrotate's postrotate runs clusterd -s reopen with the pid file" \
	grep -q '/usr/sbin/clusterd -s reopen -p /run/clusterd/clusterd.pid' /etc/logrotate.d/clusterd
unit=/lib/systemd/system/clusterd.service
check "the unit is installed" test -f $unit
check "the unit is enabled (multi-user.target.wants)" \
	test "$(readlink /etc/systemd/system/multi-user.target.wants/clusterd.service)" = $unit
if command -v systemd-analyze >/dev/null; then
	check "systemd-analyze verify: no warning" sh -c "out=\$(systemd-analyze verify --man=no $unit 2>&1); echo \"\$out\"; [ -z \"\$out\" ]"
fi

# ---- run it ----
get() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$1$2"; }
if [ -d /run/systemd/system ]; then
	# systemd is PID 1: the postinst started the service.
	port=8080
	check "systemd started clusterd.service" systemctl is-active --quiet clusterd
	for _ in $(seq 100); do [ "$(get "$port" /healthz)" = 200 ] && break; sleep 0.1; done
	master=""
	pid=$(systemctl show -p MainPID --value clusterd)
else
	# As the unit would: its directories, its umask, ExecStartPre then ExecStart.
	diag "systemd is not PID 1 here: starting the master by hand, as the unit would"
	pre=$(sed -n 's/^ExecStartPre=//p' $unit)
	cmd=$(sed -n 's/^ExecStart=//p' $unit)
	install -d -m 0755 /run/clusterd /var/log/clusterd
	if [ -z "$port" ]; then
		# Someone else listens on 8080 on this shared machine: the same
		# command on another port (-l replaces the config's listen).
		port=$(for p in $(seq 18081 18181); do curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$p/"; [ $? -eq 7 ] && { echo "$p"; break; }; done)
		diag "127.0.0.1:8080 is in use: adding -l 127.0.0.1:$port"
		cmd="$cmd -l 127.0.0.1:$port"
	fi
	# shellcheck disable=SC2086
	check "ExecStartPre: $pre" sh -c "umask 0027; $pre"
	# shellcheck disable=SC2086
	(umask 0027; cd / && exec $cmd) </dev/null >"$tmp/master.out" 2>&1 &
	master=$!
	pid=$master
	for _ in $(seq 100); do
		[ "$(get "$port" /healthz)" = 200 ] && break
		kill -0 "$master" 2>/dev/null || break
		sleep 0.1
	done
	check "ExecStart: $cmd: the master runs" kill -0 "$master"
fi
check "GET /healthz: 200" test "$(get "$port" /healthz)" = 200
check "GET /dummy: 200" test "$(get "$port" /dummy)" = 200
check "GET /metrics: 404 (not in the packaged config)" test "$(get "$port" /metrics)" = 404
check "the pid file names the master" test "$(cat /run/clusterd/clusterd.pid 2>&1)" = "$pid"
check "the master runs as root" test "$(ps -o user= -p "$pid")" = root
workers=$(ps -o user= --ppid "$pid" | sort | uniq -c | sed 's/^ *//' | paste -sd,)
check "the workers run as clusterd ($workers)" sh -c "[ -n '$workers' ] && ! ps -o user= --ppid $pid | grep -qvx clusterd"
check "clusterd -s status (pid file from the config)" sh -c 'clusterd -s status | grep -q "^master"'
check "error.log and access.log in /var/log/clusterd, owned by clusterd" sh -c '
	[ "$(stat -c %U /var/log/clusterd/error.log /var/log/clusterd/access.log | sort -u)" = clusterd ]'
check "access.log has the request to /dummy" grep -q 'GET /dummy ' /var/log/clusterd/access.log

# The packaged logrotate file, forced, with a state file of our own.
check "logrotate -f /etc/logrotate.d/clusterd" timeout 60 logrotate -f -s "$tmp/logrotate.state" /etc/logrotate.d/clusterd
check "the logs were rotated: access.log.1, error.log.1" test -s /var/log/clusterd/access.log.1 -a -s /var/log/clusterd/error.log.1
for _ in $(seq 50); do
	get "$port" /dummy?after-rotation >/dev/null
	grep -q 'after-rotation' /var/log/clusterd/access.log 2>/dev/null && break
	sleep 0.1
done
check "after -s reopen, a request goes to the new access.log, owned by clusterd" sh -c "
	grep -q 'after-rotation' /var/log/clusterd/access.log && [ \"\$(stat -c %U /var/log/clusterd/access.log)\" = clusterd ]"
check "the master logged the reopen in the new error.log" grep -q 'reopened the log files' /var/log/clusterd/error.log

# ---- stop it with the unit's signal (KillSignal=SIGQUIT, KillMode=mixed) ----
if [ -n "$master" ]; then
	kill -QUIT "$master"
	for _ in $(seq 200); do kill -0 "$master" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$master" 2>/dev/null; then
		not_ok "SIGQUIT: the master exits within 20 s"
	else
		wait "$master"
		check "SIGQUIT: the master exits with 0" test $? -eq 0
		master=""
	fi
	check "the pid file is gone" test ! -e /run/clusterd/clusterd.pid
	check "no process runs as clusterd" sh -c '! pgrep -u clusterd -l'
fi

# ---- purge ----
if timeout 600 apt-get purge -y -q clusterd >"$tmp/purge.log" 2>&1; then
	ok "apt-get purge clusterd"
else
	not_ok "apt-get purge clusterd"
	tail -20 "$tmp/purge.log" | sed 's/^/#   /'
fi
check "dpkg knows no clusterd" sh -c "! dpkg-query -W -f='\${Status}\n' clusterd 2>/dev/null | grep -qv not-installed"
left=$(for f in /etc/clusterd /var/log/clusterd /run/clusterd /usr/sbin/clusterd /usr/lib/clusterd \
	/lib/systemd/system/clusterd.service /etc/systemd/system/multi-user.target.wants/clusterd.service \
	/var/lib/systemd/deb-systemd-helper-enabled/clusterd.service.dsh-also \
	/var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/clusterd.service \
	/etc/logrotate.d/clusterd /usr/lib/tmpfiles.d/clusterd.conf /usr/share/doc/clusterd; do
	[ -e "$f" ] || [ -L "$f" ] && echo "$f"; done)
check "nothing left: config, logs, run dir, unit and its symlinks, logrotate, tmpfiles, doc" test -z "$left"
[ -z "$left" ] || diag "left: $left"
new=$(comm -13 <(printf '%s\n' "$before") <(leftovers))
check "no file named *clusterd* appeared in /etc /lib /usr /var /run /opt /srv" test -z "$new"
[ -z "$new" ] || diag "new: $new"
owned=$(find /etc /lib /usr /var /run /opt /srv -xdev -user clusterd 2>/dev/null | head)
check "no file owned by the user clusterd" test -z "$owned"
[ -z "$owned" ] || diag "owned by clusterd: $owned"
check "no process runs as clusterd" sh -c '! pgrep -u clusterd -l'
check "the system user clusterd stays (Debian keeps system users; see README.Debian)" getent passwd clusterd
check "curl 127.0.0.1:$port: nothing listens any more" sh -c "curl -s -o /dev/null --max-time 2 http://127.0.0.1:$port/; [ \$? -eq 7 ]"

echo "1..$n"
if [ "$failed" -ne 0 ]; then
	diag "$failed of $n checks failed"
	[ -s "$tmp/master.out" ] && { diag "the master's output:"; sed 's/^/#   /' "$tmp/master.out"; }
	exit 1
fi
diag "all $n checks passed"
