#!/bin/sh
# TAP self-test of the in-memory MongoDB test server (t/mongo/server.js):
# builds the libmongoc query client, then runs selftest.js, which compares
# Node's official driver and libmongoc against the server and against JS.
# Needs: node, `npm ci --prefix t/mongo`, libmongoc-1.0 (pkg-config), cc.
here=$(cd "$(dirname "$0")" && pwd)

if ! command -v node >/dev/null 2>&1; then echo "Bail out! node not found"; exit 1; fi
if ! pkg-config --exists libmongoc-1.0; then echo "Bail out! libmongoc-1.0 not found"; exit 1; fi
# The packages: in t/mongo/node_modules (npm ci --prefix t/mongo), or in a directory of NODE_PATH.
found=
for d in "$here/node_modules" $(echo "${NODE_PATH:-}" | tr ':' ' '); do
	[ -d "$d/mongodb" ] && found=1
done
if [ -z "$found" ]; then
	echo "Bail out! no node_modules: run npm ci --prefix t/mongo"; exit 1
fi

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
# shellcheck disable=SC2046
if cc -Wall -Wextra -o "$tmp/selftest_client" "$here/selftest_client.c" \
	$(pkg-config --cflags --libs libmongoc-1.0) >"$tmp/cc.log" 2>&1; then
	if [ -s "$tmp/cc.log" ]; then
		echo "not ok 1 - selftest_client.c compiles without warnings"
		sed 's/^/# /' "$tmp/cc.log"
		fail=1
	else
		echo "ok 1 - selftest_client.c compiles without warnings"
	fi
else
	echo "not ok 1 - selftest_client.c compiles"
	sed 's/^/# /' "$tmp/cc.log"
	echo "1..1"
	exit 1
fi

node "$here/selftest.js" "$tmp/selftest_client" 2
rc=$?
[ "${fail:-0}" = 1 ] && rc=1
exit $rc
