#!/usr/bin/env bash
# test_spool_durability.sh -- issue 9, the spool against a live broker: a second broker on one
# spool_dir refuses to start naming the first one's pid; a spool_dir that is a file refuses to
# start with one line naming it; a restart while the spool's disk is full (a small tmpfs) replays
# everything that was spooled.
source "$(dirname "$0")/lib.sh"
kg_broker_log_no_debug   # the checks read only the plugin's own lines

LOADGEN="$KG_TOOLS/kitgate-loadgen"
TOOL="$KG_TOOLS/kitgate-spool"
for p in "$LOADGEN" "$TOOL"; do [ -x "$p" ] || kg_die "not built: $p"; done
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
rows() { kg_psql "$1" "select count(*) from raw_measurements"; }
rows_at_least() { test "$(rows "$1")" -ge "$2"; }

# Run a second mosquitto from broker NAME's config with another port, log and spool_dir; it must
# exit by itself within 20 s. Prints its exit status; its log is $KG_SCRATCH/second.log.
second_broker() {
	local conf="$KG_SCRATCH/second.conf" port rc
	port=$(kg_free_port)
	sed -e "s|^listener .*|listener $port 127.0.0.1|" -e "s|^log_dest file .*|log_dest file $KG_SCRATCH/second.log|" \
		-e "s|^plugin_opt_spool_dir .*|plugin_opt_spool_dir $1|" "$KG_BROKER_DIR/mosquitto.conf" >"$conf"
	rm -f "$KG_SCRATCH/second.log"
	mapfile -t envs < <(kg__sanitizer_env)
	timeout 20 env "${envs[@]}" "$KG_MOSQUITTO" -c "$conf" >"$KG_SCRATCH/second.out" 2>&1
	rc=$?
	echo $rc
}

deadport=$(kg_free_port)
# ---- 1. two brokers, one spool_dir --------------------------------------------------------------
kg_broker_start first <<CONF
plugin_opt_database_url postgresql://postgres@127.0.0.1:$deadport/nowhere?connect_timeout=1
plugin_opt_other_topics allow
plugin_opt_shutdown_timeout_ms 500
CONF
rc=$(second_broker "$KG_BROKER_DIR/spool")
[ "$rc" != 0 ] && [ "$rc" != 124 ] && kg_pass "a second broker on the same spool_dir refuses to start (exit $rc)" \
	|| kg_fail "a second broker on the same spool_dir: exit $rc"
grep -E "spool $KG_BROKER_DIR/spool(/measurements)?: .*locked by process $KG_BROKER_PID" "$KG_SCRATCH/second.log" >/dev/null \
	&& kg_pass "its log names the directory and the first broker's pid" \
	|| { kg_fail "no lock line naming dir and pid:"; cat "$KG_SCRATCH/second.log"; }
kill -0 "$KG_BROKER_PID" && kg_pass "the first broker runs on" || kg_fail "the first broker died"

# ---- 2. a spool_dir that is a file ---------------------------------------------------------------
touch "$KG_SCRATCH/not-a-dir"
rc=$(second_broker "$KG_SCRATCH/not-a-dir")
[ "$rc" != 0 ] && [ "$rc" != 124 ] && kg_pass "spool_dir that is a file: refuses to start (exit $rc)" \
	|| kg_fail "spool_dir that is a file: exit $rc"
kg_eq "one line names it" 1 "$(grep -c "$KG_SCRATCH/not-a-dir.*Not a directory" "$KG_SCRATCH/second.log")"
kg_broker_stop

# ---- 3. restart with the spool's disk full replays what is spooled --------------------------------
mnt="$KG_SCRATCH/smallfs"
mkdir -p "$mnt"
if ! mount -t tmpfs -o size=3m tmpfs "$mnt" 2>/dev/null; then
	kg_skip "cannot mount a tmpfs here (needs root); the unit tests cover a full disk with RLIMIT_FSIZE"
fi
kg_on_exit umount "$mnt"
db=spool_full
url=$(kg_db_create $db 10)
kg_broker_start full <<CONF
plugin_opt_database_url postgresql://postgres@127.0.0.1:$deadport/nowhere?connect_timeout=1
plugin_opt_other_topics allow
plugin_opt_spool_dir $mnt/spool
plugin_opt_shutdown_timeout_ms 500
CONF
echo "publishing 60,000 measurements into a spool on a 3 MiB tmpfs, database unreachable"
"$LOADGEN" -p "$KG_BROKER_PORT" --kits 10 --messages 60000 --rate 20000 --qos 1 --window 100 --quiet \
	--drain-timeout 10 >"$KG_SCRATCH/full.loadgen" 2>&1
tail -n 1 "$KG_SCRATCH/full.loadgen"
df -k "$mnt" | tail -n 1
"$TOOL" stat --json --force "$mnt/spool" >"$KG_SCRATCH/full.stat" 2>/dev/null
spooled=$(jq -r .pending_records <"$KG_SCRATCH/full.stat")
echo "spooled before the crash: $spooled"
[ "${spooled:-0}" -gt 1000 ] && kg_pass "the spool filled up ($spooled records)" || kg_fail "spooled: $spooled"
acked=$(tail -n 1 "$KG_SCRATCH/full.loadgen" | field acked)
[ "${acked:-0}" -le "${spooled:-0}" ] && kg_pass "no acknowledgement without the spool: acked $acked <= spooled $spooled" \
	|| kg_fail "acked $acked > spooled $spooled"
kg_broker_kill
avail=$(df -k --output=avail "$mnt" | tail -n 1)
[ "$avail" -lt 200 ] && kg_pass "the disk is still full at restart (${avail} KiB free)" || echo "note: ${avail} KiB free at restart"
sed -i "s|^plugin_opt_database_url .*|plugin_opt_database_url $url|" "$KG_BROKER_DIR/mosquitto.conf"
kg_broker_restart
kg_wait_until 120 rows_at_least $db "$spooled"
kg_eq "every spooled measurement reached PostgreSQL after the restart" "$spooled" "$(rows $db)"
kg_broker_log_has "spool $mnt/spool(/measurements)?: open" && kg_pass "the spool opened on the full disk" || kg_fail "spool not opened"
if kg_broker_log_has "WITHOUT a spool"; then kg_fail "ran without a spool"; fi
kg_broker_stop
kg_finish
