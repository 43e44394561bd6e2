#!/usr/bin/env bash
# fixture_pg.sh -- start/stop the one PostgreSQL cluster the integration tests share (ctest fixture "pg").
#
#   fixture_pg.sh start   stop any stale cluster of a previous run, initdb a fresh one (user postgres,
#                         trust auth, fsync on; a copy of the build directory's first one) on a free
#                         port of 127.0.0.1 with its own socket dir, start it and write
#                         $KG_SCRATCH/pg.env for lib.sh
#   fixture_pg.sh stop    fast stop, remove the cluster and pg.env
#
# As root the cluster runs as user postgres; its directory is $KG_SCRATCH/pg when postgres can reach
# it, else a mktemp dir in /tmp (the repo may live under /root). pg.env records where it is.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${KG_SOURCE_DIR:=$(cd "$here/../.." && pwd)}"
: "${KG_BUILD_DIR:=$KG_SOURCE_DIR/build}"
: "${KG_SCRATCH:=$KG_BUILD_DIR/it-scratch}"
envfile="$KG_SCRATCH/pg.env"

log() { echo "fixture_pg: $*"; }
die() { echo "fixture_pg: ERROR: $*" >&2; exit 1; }

# The newest installed server's bin dir (Debian: /usr/lib/postgresql/<ver>/bin).
find_pgbin() {
	local d
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
	if [ -n "$d" ] && [ -x "$d/initdb" ]; then echo "$d"; return 0; fi
	d=$(command -v initdb 2>/dev/null || true)
	[ -n "$d" ] || return 1
	dirname "$(readlink -f "$d")"
}

# Runs a command as the cluster owner (postgres when we are root), from /.
as_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		(cd / && runuser -u postgres -- "$@")
	else
		(cd / && "$@")
	fi
}

# A TCP port on 127.0.0.1 nothing listens on (below Linux's ephemeral range).
free_port() {
	local p i
	for i in $(seq 1 200); do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

stop_cluster() {
	[ -f "$envfile" ] || return 0
	# shellcheck disable=SC1090
	. "$envfile"
	if [ -f "$KG_PGDATA/postmaster.pid" ]; then
		log "stopping cluster in $KG_PGDATA"
		as_owner "$KG_PGBIN/pg_ctl" -D "$KG_PGDATA" -m fast -w -t 60 stop >/dev/null 2>&1 ||
			as_owner "$KG_PGBIN/pg_ctl" -D "$KG_PGDATA" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
	fi
	case "$KG_PGBASE" in
	""|/) ;;
	*) rm -rf "$KG_PGBASE" ;;
	esac
	rm -f "$envfile"
}

start_cluster() {
	local pgbin base port i
	pgbin=$(find_pgbin) || die "no PostgreSQL server binaries (initdb) found; run ci/deps"
	stop_cluster
	mkdir -p "$KG_SCRATCH"

	base="$KG_SCRATCH/pg"
	rm -rf "$base"
	# postgres must reach the directory, and the socket path must fit in sun_path (108 bytes).
	if { [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$KG_SCRATCH" 2>/dev/null; } ||
		[ $((${#base} + 25)) -ge 100 ]; then
		base=$(mktemp -d /tmp/kitgate-pg.XXXXXX)
	fi
	mkdir -p "$base/sock"
	[ "$(id -u)" -eq 0 ] && chown -R postgres: "$base"

	# initdb costs about a second of CPU and a ctest run starts some thirty clusters (every test
	# that stops PostgreSQL has its own): the first initdb of a build directory is kept as a
	# template (per server, initdb arguments and user) and later clusters are copies of it. The
	# template is a cache: making it is best-effort, and a copy that fails falls back to initdb.
	local initdb_args=(-U postgres --auth=trust -E UTF8 --locale=C) tmpl tmp
	tmpl="$KG_BUILD_DIR/it-scratch/.pg-template-$( { echo "$pgbin ${initdb_args[*]} $(id -u)"
		"$pgbin/postgres" --version; } | cksum | cut -d' ' -f1)"
	if [ -f "$tmpl/PG_VERSION" ] && cp -a "$tmpl" "$base/data" 2>/dev/null &&
			{ [ "$(id -u)" -ne 0 ] || chown -R postgres: "$base/data"; }; then
		log "cluster copied from $tmpl ($pgbin)"
	else
		rm -rf "$base/data" && mkdir -m 700 "$base/data"
		[ "$(id -u)" -eq 0 ] && chown postgres: "$base/data"
		log "initdb in $base/data ($pgbin)"
		if ! as_owner "$pgbin/initdb" -D "$base/data" "${initdb_args[@]}" >"$base/initdb.log" 2>&1; then
			cat "$base/initdb.log" >&2
			die "initdb failed"
		fi
		# another fixture may be doing the same: the first complete copy to be renamed wins
		if tmp=$(mkdir -p "$(dirname "$tmpl")" 2>/dev/null && mktemp -d "$tmpl.tmp.XXXXXX" 2>/dev/null); then
			{ cp -a "$base/data/." "$tmp/" && mv -T "$tmp" "$tmpl"; } 2>/dev/null || rm -rf "$tmp"
		fi
	fi

	for i in 1 2 3 4 5; do
		port=$(free_port) || die "no free port"
		{
			echo "listen_addresses = '127.0.0.1'"
			echo "port = $port"
			echo "unix_socket_directories = '$base/sock'"
			echo "fsync = on"
			echo "max_connections = 200"
		} >"$base/data/postgresql.auto.conf"
		[ "$(id -u)" -eq 0 ] && chown postgres: "$base/data/postgresql.auto.conf"
		if as_owner "$pgbin/pg_ctl" -D "$base/data" -l "$base/postgres.log" -w -t 60 start >/dev/null; then
			break
		fi
		log "start on port $port failed (attempt $i):"
		tail -n 5 "$base/postgres.log" >&2 || true
		port=""
	done
	[ -n "$port" ] || die "could not start PostgreSQL"

	cat >"$envfile.tmp" <<ENV
KG_PGBIN='$pgbin'
KG_PGBASE='$base'
KG_PGDATA='$base/data'
KG_PGHOST='$base/sock'
KG_PGPORT='$port'
KG_PGLOG='$base/postgres.log'
ENV
	mv "$envfile.tmp" "$envfile"
	log "PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}') up on 127.0.0.1:$port (socket $base/sock)"
}

case "${1:-}" in
start) start_cluster ;;
stop) stop_cluster; log "stopped" ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
