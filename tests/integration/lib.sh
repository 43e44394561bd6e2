# lib.sh -- the integration-test harness: PostgreSQL, brokers with the plugin, the Kafka mock, checks.
#
# Sourced by every tests/integration/test_*.sh (`. "$(dirname "$0")/lib.sh"`). Environment from
# ctest: KG_SOURCE_DIR, KG_BUILD_DIR, KG_SCRATCH, KG_SANITIZE; run by hand they default to the
# source tree above this file, $KG_SOURCE_DIR/build, $KG_BUILD_DIR/it-scratch and the build's
# KITGATE_SANITIZE setting. If the pg fixture is not running (a test run by hand) lib.sh starts it
# and stops it when the test exits.
#
# Conventions: do not `set -e` in tests (checks are expected to fail); every check prints
# "PASS: …" or "FAIL: …"; end with kg_finish. Functions meant for $(…) (kg_db_create,
# kg_free_port, kg_status_json) report their failures on stderr and record them in a file, so a
# failure inside a subshell still fails the test. The script's stdin is /dev/null, so
# kg_broker_start without a here-document reads no extra config.
# The broker: $KG_MOSQUITTO (default `mosquitto` from PATH, the system's), with $KG_MOSQUITTO_LIBS
# prepended to LD_LIBRARY_PATH (a dpkg -x tree's libraries); the plugin: $KG_PLUGIN (default the
# build's). ci/brokers provides 2.0.21 and 2.1; tests/CMakeLists.txt runs a set of tests on them.
# Extra functions beyond the interface: kg_broker_use NAME, kg_status_get JQ_PATH,
# kg_on_exit CMD, kg_die MSG, kg_sub_count, kg_broker_log_has REGEX.
# KG_BROKER_LOG_TYPE: the brokers' log_type values, space-separated (default all; benchmarks log less so that logging is
# not what they measure; kg_broker_log_no_debug sets it for a test that reads no debug line).

KG_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${KG_SOURCE_DIR:=$(cd "$KG_LIB_DIR/../.." && pwd)}"
: "${KG_BUILD_DIR:=$KG_SOURCE_DIR/build}"
: "${KG_SCRATCH:=$KG_BUILD_DIR/it-scratch}"
if [ -z "${KG_SANITIZE:-}" ]; then
	KG_SANITIZE=0
	grep -q '^KITGATE_SANITIZE:BOOL=ON' "$KG_BUILD_DIR/CMakeCache.txt" 2>/dev/null && KG_SANITIZE=1
fi
: "${KG_ALLOW_ANON:=false}"
: "${KG_BROKER_PLAIN:=0}"
export KG_SOURCE_DIR KG_BUILD_DIR KG_SCRATCH KG_SANITIZE

KG_TEST_NAME="$(basename "$0" .sh)"
: "${KG_PLUGIN:=$KG_BUILD_DIR/plugin/mosquitto_kitgate.so}"
: "${KG_MOSQUITTO:=mosquitto}"
: "${KG_MOSQUITTO_LIBS:=}"
KG_TOOLS="$KG_BUILD_DIR/tools"
KG_PASSWD="$KG_SCRATCH/passwd"
KG_PSQL=psql   # kg__pg_load_env switches to the server's own client binary
mkdir -p "$KG_SCRATCH"
# Tests run in parallel under ctest (tests/CMakeLists.txt), so each has its own scratch directory
# (KG_SCRATCH_PER_TEST=1: brokers, logs and files of one test never meet another's); the shared
# PostgreSQL fixture's pg.env and the password file stay in the run's scratch root.
# KG_PG_PRIVATE=1 (set for the tests that stop, kill or restart PostgreSQL): the test gets a cluster
# of its own, so the tests that share the fixture's cluster keep running beside it.
if [ -z "${KG_PG_SCRATCH:-}" ]; then
	KG_PG_SCRATCH="$KG_SCRATCH"
	[ "${KG_PG_PRIVATE:-0}" = 1 ] && KG_PG_SCRATCH="$KG_SCRATCH/pg-$KG_TEST_NAME"
fi
if [ "${KG_SCRATCH_PER_TEST:-0}" = 1 ]; then
	KG_SCRATCH="$KG_SCRATCH/$KG_TEST_NAME"
	mkdir -p "$KG_SCRATCH"
	KG_SCRATCH_PER_TEST=0   # scripts this test runs share its directory
fi
export KG_PG_SCRATCH KG_SCRATCH_PER_TEST
KG__FAILFILE="$KG_SCRATCH/.failures.$KG_TEST_NAME.$$"
KG__PORTFILE="$KG_SCRATCH/.ports.$$"
: >"$KG__FAILFILE"
: >"$KG__PORTFILE"
KG__ON_EXIT=()
KG__OWN_PG=0
KG__PG_DOWN=0
declare -A KG__BPID=() KG__BPORT=()
KG_BROKER_NAME="" KG_BROKER_PORT="" KG_BROKER_PID="" KG_BROKER_DIR="" KG_BROKER_LOG=""
KG_KAFKA_PID="" KG_KAFKA_FD="" KG_KAFKA_BOOTSTRAP=""
exec </dev/null
export PGCONNECT_TIMEOUT=5 PGCLIENTENCODING=UTF8

# ---------------------------------------------------------------- results

kg_pass() { echo "PASS: $*"; }

# Records a failure (also from a subshell) and continues. The fail file holds one line per
# failure (kg__nfail counts lines), so a message's own newlines become spaces there.
kg_fail() {
	echo "FAIL: $*"
	printf '%s\n' "${*//$'\n'/ }" >>"$KG__FAILFILE"
}

# Like kg_fail, but on stderr: for functions whose stdout is captured.
kg__fail_err() {
	echo "FAIL: $*" >&2
	printf '%s\n' "${*//$'\n'/ }" >>"$KG__FAILFILE"
}

# Fails and ends the test now (the EXIT trap cleans up).
kg_die() {
	kg__fail_err "$*"
	exit 1
}

kg_eq() {
	if [ "$2" == "$3" ]; then
		kg_pass "$1 ($3)"
	else
		kg_fail "$1: expected '$2', got '$3'"
	fi
}

kg__nfail() { if [ -f "$KG__FAILFILE" ]; then wc -l <"$KG__FAILFILE"; else echo 0; fi; }

kg_finish() {
	kg__cleanup
	local n
	n=$(kg__nfail)
	if [ "$n" -gt 0 ]; then
		echo "$KG_TEST_NAME: $n check(s) FAILED"
		exit 1
	fi
	echo "$KG_TEST_NAME: all checks passed"
	exit 0
}

# Ends the test when a part of it cannot run here (MSG says which and why): a failure so far still
# fails it (1); otherwise it exits 77, which ctest reports as Skipped (SKIP_RETURN_CODE), never as
# Passed.
kg_skip() {
	echo "SKIP: $*"
	kg__cleanup
	local n
	n=$(kg__nfail)
	if [ "$n" -gt 0 ]; then
		echo "$KG_TEST_NAME: $n check(s) FAILED"
		exit 1
	fi
	echo "$KG_TEST_NAME: checks so far passed; the rest skipped"
	exit 77
}

# kg_pbkdf2_hash ALG ITERATIONS SALT SECRET -> PBKDF2$alg$iter$salt$base64(key), the kits.password_hash
# format (key length = digest), computed by Python's hashlib as a reference independent of kitgate.
kg_pbkdf2_hash() {
	command -v python3 >/dev/null || { kg__fail_err "python3 is needed to make PBKDF2 hashes"; return 1; }
	python3 -c 'import base64, hashlib, sys
alg, it, salt, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
key = hashlib.pbkdf2_hmac(alg, pw.encode(), salt.encode(), it)
print("PBKDF2$%s$%d$%s$%s" % (alg, it, salt, base64.b64encode(key).decode()))' "$@"
}

# Re-runs CMD every 0.2 s until it succeeds (0) or SECONDS pass (1).
kg_wait_until() {
	local secs=$1
	shift
	# no date(1) per poll; the digits only: the locale's decimal point may be a comma or U+066B
	local deadline=$((${EPOCHREALTIME//[!0-9]/} / 1000 + secs * 1000))
	while :; do
		"$@" && return 0
		[ "$((${EPOCHREALTIME//[!0-9]/} / 1000))" -ge "$deadline" ] && return 1
		sleep 0.2
	done
}

# Runs CMD when the test exits (before brokers are stopped).
kg_on_exit() { KG__ON_EXIT+=("$*"); }

# ---------------------------------------------------------------- ports

# Prints a TCP port on 127.0.0.1 that nothing listens on and that this test has not handed out.
kg_free_port() {
	local p i
	for i in $(seq 1 500); do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
		grep -qx "$p" "$KG__PORTFILE" 2>/dev/null && continue
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p" >>"$KG__PORTFILE"
			echo "$p"
			return 0
		fi
	done
	kg__fail_err "kg_free_port: no free port found"
	return 1
}

kg__port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---------------------------------------------------------------- PostgreSQL

kg__as_pg_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		(cd / && runuser -u postgres -- "$@")
	else
		(cd / && "$@")
	fi
}

kg__pg_load_env() {
	[ -f "$KG_PG_SCRATCH/pg.env" ] || return 1
	# shellcheck disable=SC1091
	. "$KG_PG_SCRATCH/pg.env"
	export KG_PGHOST KG_PGPORT
	# the client binary itself: Debian's `psql` is a Perl wrapper that costs three times its startup
	[ -x "$KG_PGBIN/psql" ] && KG_PSQL="$KG_PGBIN/psql"
	return 0
}

kg__pg_running() { "$KG_PSQL" -X -At -h "$KG_PGHOST" -p "$KG_PGPORT" -U postgres -d postgres -c 'select 1' >/dev/null 2>&1; }

kg_pg_start() {
	if ! kg__as_pg_owner "$KG_PGBIN/pg_ctl" -D "$KG_PGDATA" -l "$KG_PGLOG" -w -t 60 start >/dev/null; then
		kg_fail "kg_pg_start: PostgreSQL did not start; log tail: $(tail -n 5 "$KG_PGLOG" 2>/dev/null)"
		return 1
	fi
	KG__PG_DOWN=0
}

kg_pg_stop() {
	KG__PG_DOWN=1
	kg__as_pg_owner "$KG_PGBIN/pg_ctl" -D "$KG_PGDATA" -m fast -w -t 60 stop >/dev/null ||
		{ kg_fail "kg_pg_stop: pg_ctl stop failed"; return 1; }
}

kg_pg_kill() {
	KG__PG_DOWN=1
	kg__as_pg_owner "$KG_PGBIN/pg_ctl" -D "$KG_PGDATA" -m immediate -w -t 60 stop >/dev/null ||
		{ kg_fail "kg_pg_kill: pg_ctl stop failed"; return 1; }
}

kg__psql() { "$KG_PSQL" -X -q -v ON_ERROR_STOP=1 -h "$KG_PGHOST" -p "$KG_PGPORT" -U postgres "$@"; }

# Runs SQL against database NAME; prints the rows unaligned, tuples only.
kg_psql() { kg__psql -At -d "$1" -c "$2"; }

# Fresh database NAME with the AstroPlant schema and NKITS (default 10) test kits; prints its URI.
kg_db_create() {
	local name=$1 nkits=${2:-10} out
	if ! out=$(kg__psql -d postgres -c "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" \
		-c "CREATE DATABASE \"$name\"" 2>&1); then
		kg__fail_err "kg_db_create $name: $out"
		return 1
	fi
	if ! out=$(kg__psql -d "$name" -v nkits="$nkits" -f "$KG_SOURCE_DIR/schema/astroplant.sql" \
		-f "$KG_SOURCE_DIR/schema/seed-test.sql" 2>&1 >/dev/null); then
		kg__fail_err "kg_db_create $name: schema: $out"
		return 1
	fi
	echo "postgresql://postgres@127.0.0.1:$KG_PGPORT/$name"
}

kg__pg_init() {
	if ! kg__pg_load_env; then
		KG_SCRATCH="$KG_PG_SCRATCH" bash "$KG_LIB_DIR/fixture_pg.sh" start >&2 || kg_die "could not start PostgreSQL"
		KG__OWN_PG=1
		kg__pg_load_env
	elif ! kg__pg_running; then
		# A previous test stopped the shared cluster and died before restarting it.
		kg_pg_start >&2 || kg_die "the shared PostgreSQL cluster is down and does not start"
	fi
}

# ---------------------------------------------------------------- brokers

# Creates the password file once per run: users server and k-test-0001..k-test-0200, password "pw";
# also evil+1, evil#1 and evil/1 (so tests can show that the plugin, not the password file, refuses
# such usernames).
kg__passwd_init() {
	[ -s "$KG_PASSWD" ] && grep -q '^evil/1:' "$KG_PASSWD" && return 0
	local tmp="$KG_PASSWD.$$" i
	{
		echo "server:pw"
		for i in $(seq 1 200); do printf 'k-test-%04d:pw\n' "$i"; done
		printf '%s\n' 'evil+1:pw' 'evil#1:pw' 'evil/1:pw'
	} >"$tmp"
	mosquitto_passwd -U "$tmp" || kg_die "mosquitto_passwd -U failed"
	mv "$tmp" "$KG_PASSWD"
}

# Brokers started after this log everything but debug lines (mosquitto writes two per message,
# received PUBLISH and sent PUBACK: the bulk of a load test's log and of its broker's write calls),
# unless KG_BROKER_LOG_TYPE was set already. For tests whose checks read no debug line.
kg_broker_log_no_debug() { : "${KG_BROKER_LOG_TYPE:=error warning notice information}"; }

# Makes NAME the broker that KG_BROKER_* and the broker functions refer to.
kg_broker_use() {
	KG_BROKER_NAME=$1
	KG_BROKER_DIR="$KG_SCRATCH/$1"
	KG_BROKER_LOG="$KG_BROKER_DIR/mosquitto.log"
	KG_BROKER_PORT=${KG__BPORT[$1]:-}
	KG_BROKER_PID=${KG__BPID[$1]:-}
}

# The ASan runtime must come first in a process whose executable is not instrumented, so it is
# preloaded. The plugin itself is preloaded too: when its dependencies (libpq, ...) are dlopen'ed
# by mosquitto under a preloaded ASan, glibc's gettext lock (_nl_state_lock) ends up corrupted and
# the worker deadlocks in libpq's first bindtextdomain(); loading them at startup avoids that.
# mosquitto's own dlopen of the plugin then just reuses the preloaded copy. libubsan comes in as a
# dependency of the plugin.
kg__sanitizer_env() {
	[ -n "$KG_MOSQUITTO_LIBS" ] && echo "LD_LIBRARY_PATH=$KG_MOSQUITTO_LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
	[ "$KG_SANITIZE" = 1 ] || return 0
	# The sanitize build's plugin carries UBSan only (it links libubsan itself): ASan cannot be
	# preloaded into Debian's uninstrumented mosquitto without breaking glibc's locale lock (see
	# CMakeLists.txt). The plugin's modules run under ASan in the unit tests and the tools.
	echo "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$KG_BROKER_DIR/ubsan"
}

# Fails the test for every new ASan/UBSan report in the current broker's directory.
kg__sanitizer_check() {
	local f
	for f in "$KG_BROKER_DIR"/asan.* "$KG_BROKER_DIR"/ubsan.*; do
		[ -f "$f" ] || continue
		case "$f" in *.reported) continue ;; esac
		if [ -s "$f" ]; then
			echo "---- $f" >&2
			cat "$f" >&2
			kg_fail "sanitizer report from broker $KG_BROKER_NAME: $f"
		fi
		mv "$f" "$f.reported"
	done
}

kg__broker_launch() {
	local name=$KG_BROKER_NAME i envs=()
	mapfile -t envs < <(kg__sanitizer_env)
	env "${envs[@]}" "$KG_MOSQUITTO" -c "$KG_BROKER_DIR/mosquitto.conf" >>"$KG_BROKER_DIR/mosquitto.out" 2>&1 &
	KG_BROKER_PID=$!
	echo "$KG_BROKER_PID" >"$KG_BROKER_DIR/pid"
	KG__BPID[$name]=$KG_BROKER_PID
	for i in $(seq 1 100); do
		if ! kill -0 "$KG_BROKER_PID" 2>/dev/null; then
			wait "$KG_BROKER_PID" 2>/dev/null
			KG__BPID[$name]=""
			KG_BROKER_PID=""
			kg_fail "broker $name exited at start; log tail:"
			tail -n 30 "$KG_BROKER_LOG" "$KG_BROKER_DIR/mosquitto.out" 2>/dev/null
			kg__sanitizer_check
			exit 1
		fi
		kg__port_open "$KG_BROKER_PORT" && return 0
		sleep 0.2
	done
	kg_fail "broker $name does not accept connections on $KG_BROKER_PORT after 20 s; log tail:"
	tail -n 30 "$KG_BROKER_LOG" "$KG_BROKER_DIR/mosquitto.out" 2>/dev/null
	exit 1
}

# Starts mosquitto (with the plugin unless KG_BROKER_PLAIN=1) as broker NAME; extra config lines
# on stdin. Sets KG_BROKER_PORT, KG_BROKER_PID, KG_BROKER_DIR, KG_BROKER_LOG.
kg_broker_start() {
	local name=$1 extra port old line
	[ -n "${KG__BPID[$name]:-}" ] && { kg_broker_use "$name"; kg_broker_stop; }
	kg_broker_use "$name"
	# A broker of that name left running by an earlier, killed run.
	if [ -f "$KG_BROKER_DIR/pid" ]; then
		old=$(cat "$KG_BROKER_DIR/pid")
		if [ -n "$old" ] && tr "\\0" " " 2>/dev/null <"/proc/$old/cmdline" | grep -qF "$KG_BROKER_DIR/mosquitto.conf"; then
			kill -KILL "$old" 2>/dev/null
		fi
	fi
	rm -rf "$KG_BROKER_DIR"
	mkdir -p "$KG_BROKER_DIR/spool"
	extra=$(cat)
	kg__passwd_init
	port=$(kg_free_port) || kg_die "no free port for broker $name"
	{
		echo "# generated by tests/integration/lib.sh for $KG_TEST_NAME, broker $name"
		echo "per_listener_settings false"
		echo "allow_anonymous $KG_ALLOW_ANON"
		echo "password_file $KG_PASSWD"
		echo "persistence false"
		echo "max_queued_messages 10000000"
		echo "user root"
		echo "log_dest file $KG_BROKER_LOG"
		for line in ${KG_BROKER_LOG_TYPE:-all}; do echo "log_type $line"; done
		echo "log_timestamp_format %Y-%m-%dT%H:%M:%S"
		echo "connection_messages true"
		echo "listener $port 127.0.0.1"
		if [ "$KG_BROKER_PLAIN" != 1 ]; then
			[ -f "$KG_PLUGIN" ] || kg_die "plugin not built: $KG_PLUGIN"
			echo "plugin $KG_PLUGIN"
			for line in "plugin_opt_spool_dir $KG_BROKER_DIR/spool" "plugin_opt_stats_interval_s 1"; do
				# the test's own value of an option wins
				grep -qE "^[[:space:]]*${line%% *}[[:space:]]" <<<"$extra" || echo "$line"
			done
		fi
		[ -n "$extra" ] && printf '%s\n' "$extra"
	} >"$KG_BROKER_DIR/mosquitto.conf"
	KG__BPORT[$name]=$port
	KG_BROKER_PORT=$port
	kg__broker_launch
}

kg__broker_reap() {
	local pid=$1 how=$2 i rc
	for i in $(seq 1 300); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	if kill -0 "$pid" 2>/dev/null; then
		kg_fail "broker $KG_BROKER_NAME did not exit within 60 s of SIGTERM; killing it"
		kill -KILL "$pid" 2>/dev/null
		how=KILL
	fi
	wait "$pid" 2>/dev/null
	rc=$?
	if [ "$how" = TERM ] && [ "$rc" -ne 0 ]; then
		kg_fail "broker $KG_BROKER_NAME exited with status $rc after SIGTERM"
		tail -n 20 "$KG_BROKER_LOG" "$KG_BROKER_DIR/mosquitto.out" 2>/dev/null
	fi
	KG__BPID[$KG_BROKER_NAME]=""
	KG_BROKER_PID=""
	kg__sanitizer_check
}

# SIGTERM the current broker (or NAME) and wait up to 60 s for it to exit.
kg_broker_stop() {
	[ -n "${1:-}" ] && kg_broker_use "$1"
	[ -n "$KG_BROKER_PID" ] || return 0
	kill -TERM "$KG_BROKER_PID" 2>/dev/null
	kg__broker_reap "$KG_BROKER_PID" TERM
}

kg_broker_kill() {
	[ -n "${1:-}" ] && kg_broker_use "$1"
	[ -n "$KG_BROKER_PID" ] || return 0
	kill -KILL "$KG_BROKER_PID" 2>/dev/null
	kg__broker_reap "$KG_BROKER_PID" KILL
}

# Starts the current broker (or NAME) again with the same config, port and spool.
kg_broker_restart() {
	[ -n "${1:-}" ] && kg_broker_use "$1"
	[ -n "$KG_BROKER_PID" ] && kg_broker_stop
	kg__broker_launch
}

# True if the current broker's log matches the extended regex.
kg_broker_log_has() { grep -qE "$1" "$KG_BROKER_LOG" 2>/dev/null; }

# Prints the latest retained $SYS/broker/kitgate/status JSON of the current broker.
kg_status_json() {
	local out
	out=$(mosquitto_sub -p "$KG_BROKER_PORT" -u server -P pw -t '$SYS/broker/kitgate/status' -C 1 -W 5 2>&1)
	if [ -z "$out" ] || [ "${out:0:1}" != "{" ]; then
		kg__fail_err "kg_status_json: no status from broker $KG_BROKER_NAME: $out"
		return 1
	fi
	echo "$out"
}

# Prints one value of the status JSON, e.g. kg_status_get .rejected.malformed
kg_status_get() {
	local j
	j=$(kg_status_json) || return 1
	jq -r "$1" <<<"$j"
}

# Counts the messages user USER receives on FILTER within SECONDS (MQTT v5, -W timeout).
# kg_sub_count USER FILTER SECONDS [more mosquitto_sub args]
kg_sub_count() {
	local user=$1 filter=$2 secs=$3
	shift 3
	mosquitto_sub -p "$KG_BROKER_PORT" -u "$user" -P pw -V mqttv5 -t "$filter" -W "$secs" "$@" 2>/dev/null | grep -c ''
}

# ---------------------------------------------------------------- Kafka mock

# Starts tools/kafka-mock ARGS with its stdin on a FIFO; sets KG_KAFKA_BOOTSTRAP, KG_KAFKA_PID.
kg_kafka_start() {
	local dir="$KG_SCRATCH/$KG_TEST_NAME-kafka" i envs=()
	[ -n "$KG_KAFKA_PID" ] && kg_kafka_stop
	[ -x "$KG_TOOLS/kafka-mock" ] || kg_die "not built: $KG_TOOLS/kafka-mock"
	rm -rf "$dir"
	mkdir -p "$dir"
	mkfifo "$dir/cmd"
	[ "$KG_SANITIZE" = 1 ] && envs=("ASAN_OPTIONS=detect_leaks=0")
	env "${envs[@]}" "$KG_TOOLS/kafka-mock" "$@" <"$dir/cmd" >"$dir/out" 2>"$dir/err" &
	KG_KAFKA_PID=$!
	exec {KG_KAFKA_FD}>"$dir/cmd"
	KG_KAFKA_BOOTSTRAP=""
	for i in $(seq 1 100); do
		KG_KAFKA_BOOTSTRAP=$(sed -n 's/^bootstrap=//p' "$dir/out" 2>/dev/null | head -n 1)
		[ -n "$KG_KAFKA_BOOTSTRAP" ] && break
		kill -0 "$KG_KAFKA_PID" 2>/dev/null || break
		sleep 0.2
	done
	if [ -z "$KG_KAFKA_BOOTSTRAP" ]; then
		kg_fail "kafka-mock did not print its bootstrap servers:"
		cat "$dir/out" "$dir/err" 2>/dev/null
		exit 1
	fi
	KG_KAFKA_DIR=$dir
}

# Writes one command line (e.g. "down all", "up 1") to the running kafka-mock and waits (10 s) for
# its answer "ok <command>"; an error answer or none fails the check (returns 1).
kg_kafka_cmd() {
	[ -n "$KG_KAFKA_FD" ] || { kg_fail "kg_kafka_cmd: no kafka-mock running"; return 1; }
	local cmd="$*" n
	n=$(grep -cE "^(ok|error) $cmd" "$KG_KAFKA_DIR/out")
	echo "$cmd" >&"$KG_KAFKA_FD"
	if ! kg_wait_until 10 kg__kafka_answered "$cmd" "$n"; then
		kg_fail "kg_kafka_cmd: no answer to '$cmd'"
		return 1
	fi
	if [ "$(grep -E "^(ok|error) $cmd" "$KG_KAFKA_DIR/out" | tail -n 1 | cut -c1-2)" != ok ]; then
		kg_fail "kg_kafka_cmd: $(grep -E "^error $cmd" "$KG_KAFKA_DIR/out" | tail -n 1)"
		return 1
	fi
}

kg__kafka_answered() { [ "$(grep -cE "^(ok|error) $1" "$KG_KAFKA_DIR/out")" -gt "$2" ]; }

kg_kafka_stop() {
	[ -n "$KG_KAFKA_PID" ] || return 0
	[ -n "$KG_KAFKA_FD" ] && exec {KG_KAFKA_FD}>&-
	KG_KAFKA_FD=""
	kill -TERM "$KG_KAFKA_PID" 2>/dev/null
	local i
	for i in $(seq 1 50); do kill -0 "$KG_KAFKA_PID" 2>/dev/null || break; sleep 0.2; done
	kill -KILL "$KG_KAFKA_PID" 2>/dev/null
	wait "$KG_KAFKA_PID" 2>/dev/null
	KG_KAFKA_PID=""
}

# ---------------------------------------------------------------- cleanup

kg__cleanup() {
	local c n p
	for c in "${KG__ON_EXIT[@]}"; do eval "$c"; done
	KG__ON_EXIT=()
	for n in "${!KG__BPID[@]}"; do
		[ -n "${KG__BPID[$n]}" ] || continue
		kg_broker_use "$n"
		kg_broker_stop
	done
	kg_kafka_stop
	for p in $(jobs -p); do kill -TERM "$p" 2>/dev/null; done
	for p in $(jobs -p); do wait "$p" 2>/dev/null; done
	if [ "$KG__PG_DOWN" = 1 ]; then
		kg_pg_start >/dev/null 2>&1
	fi
	if [ "$KG__OWN_PG" = 1 ]; then
		KG_SCRATCH="$KG_PG_SCRATCH" bash "$KG_LIB_DIR/fixture_pg.sh" stop >/dev/null 2>&1
		KG__OWN_PG=0
	fi
	rm -f "$KG__PORTFILE"
}

kg__on_exit() {
	local rc=$?
	trap - EXIT
	kg__cleanup
	[ "$(kg__nfail)" -gt 0 ] && [ "$rc" -eq 0 ] && rc=1
	rm -f "$KG__FAILFILE"
	exit "$rc"
}
trap kg__on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

kg__pg_init
