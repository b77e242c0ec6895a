# Installs what bench/run needs and does not find (Debian packages as root,
# npm packages from the lock files). Safe to run every time.

# Debian's nginx packages start the system nginx on install: a policy-rc.d
# that answers 101 keeps it from starting (ours runs from its own prefix).
apt_install() {
	local made_policy=0
	[ "$(id -u)" -eq 0 ] || die "missing Debian packages: $* (run as root, or install them)"
	log "installing Debian packages: $*"
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod +x /usr/sbin/policy-rc.d
		made_policy=1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq && apt-get install -y -qq "$@" >/dev/null
	local rc=$?
	[ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
	[ "$rc" = 0 ] || die "apt-get install $* failed"
}

ensure_deps() {
	local missing=()
	command -v wrk >/dev/null      || missing+=(wrk)
	command -v gnuplot >/dev/null  || missing+=(gnuplot-nox)
	command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
	command -v curl >/dev/null     || missing+=(curl)
	command -v python3 >/dev/null  || missing+=(python3)
	command -v taskset >/dev/null  || missing+=(util-linux)
	command -v node >/dev/null     || missing+=(nodejs)
	command -v npm >/dev/null      || missing+=(npm)
	[ "${#missing[@]}" = 0 ] || apt_install "${missing[@]}"
	NGINX=$(command -v nginx || echo /usr/sbin/nginx)

	# npm ci when node_modules is missing or older than the lock file.
	local dir
	# bench/node/socketio: the socket.io peer of the socketio section (its own lock file)
	for dir in "$BENCH/node" "$BENCH/node/socketio" "$REPO/t/mongo"; do
		if [ ! -f "$dir/node_modules/.package-lock.json" ] ||
		   [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
			log "npm ci in ${dir#$REPO/}"
			npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >&2 ||
				die "npm ci --prefix $dir failed"
		fi
	done
}
