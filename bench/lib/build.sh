# Builds clusterd with the release flags, out of tree, from the repo's
# sources: $BUILD_DIR/clusterd and its readmongo.so module; and $BUILD_DIR/mongo-ceiling (mongo/ceiling.c). Re-runs ./bootstrap (which also installs the
# build dependencies) when configure is missing or older than its inputs,
# and configure when the build dir is not configured or configure changed.

RELEASE_CFLAGS=${RELEASE_CFLAGS:--O2}

build_clusterd() {
	local blog="$LOG_DIR/build.log" f
	: >"$blog"
	[ ! -f "$REPO/config.status" ] ||
		die "$REPO is configured in-tree (config.status): run 'make distclean' there, bench/run builds out of tree"
	local stale=0
	[ -x "$REPO/configure" ] || stale=1
	for f in configure.ac Makefile.am bootstrap; do
		[ "$REPO/$f" -nt "$REPO/configure" ] && stale=1
	done
	if [ "$stale" = 1 ]; then
		log "bootstrap (autoreconf) in $REPO"
		(cd "$REPO" && ./bootstrap) >>"$blog" 2>&1 || { tail -20 "$blog" >&2; die "./bootstrap failed (see $blog)"; }
	fi
	mkdir -p "$BUILD_DIR"
	if [ ! -f "$BUILD_DIR/config.status" ] || [ "$REPO/configure" -nt "$BUILD_DIR/config.status" ] ||
	   [ "$(cat "$BUILD_DIR/.bench-cflags" 2>/dev/null)" != "$RELEASE_CFLAGS" ]; then
		log "configure CFLAGS='$RELEASE_CFLAGS' in $BUILD_DIR"
		(cd "$BUILD_DIR" && "$REPO/configure" -q CFLAGS="$RELEASE_CFLAGS") >>"$blog" 2>&1 ||
			{ tail -20 "$blog" >&2; die "configure failed (see $blog)"; }
		echo "$RELEASE_CFLAGS" >"$BUILD_DIR/.bench-cflags"
	fi
	log "make clusterd readmongo.so"
	# readmongo is a module, beside the program, where clusterd looks for it
	make -C "$BUILD_DIR" -j"$(nproc)" clusterd readmongo.so >>"$blog" 2>&1 ||
		{ tail -30 "$blog" >&2; die "make failed (see $blog)"; }
	CLUSTERD="$BUILD_DIR/clusterd"
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
}
