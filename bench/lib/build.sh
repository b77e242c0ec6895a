# Builds clusterd with the release flags from a copy of the repo's sources
# in $BUILD_DIR/src (the checkout may itself be configured in place, as the
# README's commands leave it, which rules out a build out of tree):
# $BUILD_DIR/src/clusterd and its readmongo.so and socketio.so modules;
# $BUILD_DIR/mongo-ceiling (mongo/ceiling.c); and $BUILD_DIR/sioload
# (sioload.c, the Socket.IO load generator). Runs ./bootstrap (which also
# installs the build dependencies) in the copy when its configure is missing
# or older than its inputs, and configure when the copy is not configured,
# configure changed, or the flags did.

RELEASE_CFLAGS=${RELEASE_CFLAGS:--O2}

# The sources: what git tracks and what it does not ignore, as they are now.
copy_sources() {
	local src=$1
	mkdir -p "$src"
	if git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then
		(cd "$REPO" && git ls-files -z -co --exclude-standard) |
			(cd "$REPO" && xargs -0 cp --parents -p -u -t "$src")
	else
		(cd "$REPO" && tar -cf - --exclude=./bench/build --exclude=./bench/results \
			--exclude=config.status --exclude='*.o' .) | (cd "$src" && tar -xf -)
	fi
}

build_clusterd() {
	local blog="$LOG_DIR/build.log" f src="$BUILD_DIR/src"
	: >"$blog"
	copy_sources "$src" >>"$blog" 2>&1 || { tail -20 "$blog" >&2; die "cannot copy the sources to $src"; }
	local stale=0
	[ -x "$src/configure" ] || stale=1
	for f in configure.ac Makefile.am bootstrap; do
		[ "$src/$f" -nt "$src/configure" ] && stale=1
	done
	if [ "$stale" = 1 ]; then
		log "bootstrap (autoreconf) in $src"
		(cd "$src" && ./bootstrap) >>"$blog" 2>&1 || { tail -20 "$blog" >&2; die "./bootstrap failed (see $blog)"; }
	fi
	if [ ! -f "$src/config.status" ] || [ "$src/configure" -nt "$src/config.status" ] ||
	   [ "$(cat "$BUILD_DIR/.bench-cflags" 2>/dev/null)" != "$RELEASE_CFLAGS" ]; then
		log "configure CFLAGS='$RELEASE_CFLAGS' in $src"
		(cd "$src" && ./configure -q CFLAGS="$RELEASE_CFLAGS") >>"$blog" 2>&1 ||
			{ tail -20 "$blog" >&2; die "configure failed (see $blog)"; }
		echo "$RELEASE_CFLAGS" >"$BUILD_DIR/.bench-cflags"
	fi
	log "make clusterd readmongo.so socketio.so"
	# the services are modules, beside the program, where clusterd looks for them
	make -C "$src" -j"$(nproc)" clusterd readmongo.so socketio.so >>"$blog" 2>&1 ||
		{ tail -30 "$blog" >&2; die "make failed (see $blog)"; }
	CLUSTERD="$src/clusterd"
	CLUSTERD_VERSION=$("$CLUSTERD" -V 2>&1 | head -1)

	# the test MongoDB server's ceiling client, on libmongoc like readmongo
	MONGO_CEILING="$BUILD_DIR/mongo-ceiling"
	if [ "$BENCH/mongo/ceiling.c" -nt "$MONGO_CEILING" ]; then
		log "cc mongo-ceiling"
		# shellcheck disable=SC2046
		cc -O2 -Wall -o "$MONGO_CEILING" "$BENCH/mongo/ceiling.c" \
			$(pkg-config --cflags --libs libmongoc-1.0) -pthread >>"$blog" 2>&1 ||
			{ tail -20 "$blog" >&2; die "cc mongo/ceiling.c failed (see $blog)"; }
	fi
	build_sioload
}

# The Socket.IO load generator: plain C11, epoll, nettle (SHA-1 and base64 of
# the handshake), no other dependency; warning-free with -Wall -Wextra.
build_sioload() {
	local blog="$LOG_DIR/build.log"
	SIOLOAD="$BUILD_DIR/sioload"
	if [ "$BENCH/sioload.c" -nt "$SIOLOAD" ]; then
		log "cc sioload"
		# shellcheck disable=SC2046
		cc -std=c11 -O2 -Wall -Wextra -o "$SIOLOAD" "$BENCH/sioload.c" \
			$(pkg-config --cflags --libs nettle) >>"$blog" 2>&1 ||
			{ tail -20 "$blog" >&2; die "cc sioload.c failed (see $blog)"; }
	fi
}
