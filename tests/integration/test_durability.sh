#!/usr/bin/env bash
# test_durability.sh -- nothing accepted is lost: PostgreSQL outage during a 50,000-message run,
# SIGKILL of the broker mid-run, and a spool with a torn tail and a corrupted record.
source "$(dirname "$0")/lib.sh"
kg_broker_log_no_debug   # the checks read only the plugin's own lines

LOADGEN="$KG_TOOLS/kitgate-loadgen"
[ -x "$LOADGEN" ] || kg_die "not built: $LOADGEN"

rows() { kg_psql "$1" "select count(*) from raw_measurements"; }
dups() { kg_psql "$1" "select count(*) - count(distinct id) from raw_measurements"; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
# For kg_wait_until: re-evaluated on every try (a "$(…)" argument would be evaluated only once).
rows_at_least() { test "$(rows "$1")" -ge "$2"; }

# ---- 1. PostgreSQL stopped for 20 s during a 50,000-message run -------------------------------
db=dur_pg
url=$(kg_db_create $db 10)
kg_broker_start pgout <<CONF
plugin_opt_database_url $url
plugin_opt_other_topics allow
CONF
echo "publishing 50,000 measurements from 10 kits at 2,500/s; PostgreSQL goes down for 20 s after 4 s"
"$LOADGEN" -p "$KG_BROKER_PORT" --kits 10 --messages 50000 --rate 2500 --qos 1 --window 100 --quiet \
	>"$KG_SCRATCH/pgout.loadgen" 2>&1 &
lg=$!
sleep 4
echo "rows before the outage: $(rows $db)"
kg_pg_stop
echo "PostgreSQL stopped at $(date +%T)"
sleep 20
kg_pg_start
echo "PostgreSQL started again at $(date +%T)"
wait $lg
tail -n 1 "$KG_SCRATCH/pgout.loadgen"
acked=$(tail -n 1 "$KG_SCRATCH/pgout.loadgen" | field acked)
kg_eq "every one of the 50,000 measurements was acked" 50000 "$acked"
kg_wait_until 120 rows_at_least $db "${acked:-50000}"
kg_eq "rows after the outage == accepted messages" "$acked" "$(rows $db)"
kg_eq "no duplicate rows" 0 "$(dups $db)"
sleep 1.2
kg_eq "status: accepted" "$acked" "$(kg_status_get .accepted)"
errors=$(kg_status_get .sink.errors)
if [ "${errors:-0}" -gt 0 ]; then
	kg_pass "the sink saw the outage ($errors failed writes) and recovered"
else
	kg_fail "the outage was not noticed (sink.errors=${errors:-?})"
fi
kg_broker_stop

# ---- 2. SIGKILL of the broker mid-run ----------------------------------------------------------
db=dur_kill
url=$(kg_db_create $db 10)
kg_broker_start kill9 <<CONF
plugin_opt_database_url $url
plugin_opt_other_topics allow
CONF
rm -f "$KG_SCRATCH/kill9.acked"
echo "publishing at 3,000/s; the broker is killed with SIGKILL after 3 s"
"$LOADGEN" -p "$KG_BROKER_PORT" --kits 10 --messages 60000 --rate 3000 --qos 1 --window 100 --quiet \
	--acked-log "$KG_SCRATCH/kill9.acked" >"$KG_SCRATCH/kill9.loadgen" 2>&1 &
lg=$!
sleep 3
kg_broker_kill
wait $lg
echo "loadgen: $(tail -n 1 "$KG_SCRATCH/kill9.loadgen")"
nacked=$(grep -c '' "$KG_SCRATCH/kill9.acked")
if [ "$nacked" -gt 1000 ]; then kg_pass "$nacked messages were PUBACKed before the kill"; else kg_fail "only $nacked acked before the kill"; fi
kg_broker_restart
kg__psql -d $db -c "create table acked (id uuid primary key)" >/dev/null
kg__psql -d $db -c "\\copy acked from '$KG_SCRATCH/kill9.acked'" >/dev/null
missing() { kg_psql $db "select count(*) from acked a where not exists (select 1 from raw_measurements r where r.id = a.id)"; }
none_missing() { test "$(missing)" -eq 0; }
kg_wait_until 120 none_missing
kg_eq "every PUBACKed message is in PostgreSQL after kill -9 and restart" 0 "$(missing)"
kg_eq "no duplicate rows" 0 "$(dups $db)"
echo "rows: $(rows $db) (acked $nacked; the others were accepted but their PUBACK died with the broker)"
kg_broker_stop

# ---- 3. torn tail and corrupted record in the spool --------------------------------------------
# Fill a spool while the database is unreachable (a port nobody listens on), stop the broker
# (the records stay in the spool), damage the segment, and start again with the right database.
db=dur_spool
url=$(kg_db_create $db 10)
deadport=$(kg_free_port)
kg_broker_start spool <<CONF
plugin_opt_database_url postgresql://postgres@127.0.0.1:$deadport/nowhere?connect_timeout=1
plugin_opt_other_topics allow
plugin_opt_shutdown_timeout_ms 500
CONF
"$LOADGEN" -p "$KG_BROKER_PORT" --kits 1 --messages 100 --qos 1 --window 10 --quiet >"$KG_SCRATCH/spool.loadgen" 2>&1
kg_eq "100 measurements acked into the spool" 100 "$(tail -n 1 "$KG_SCRATCH/spool.loadgen" | field acked)"
kg_broker_stop
seg=$(ls "$KG_BROKER_DIR"/spool/measurements/*.kgs | head -n 1)
size=$(stat -c %s "$seg")
# 100 raw records from kit k-test-0001 are 65-byte frames (12-byte header + 53-byte body).
kg_eq "spool segment holds 100 frames of 65 bytes" 6500 "$size"
truncate -s $((size - 7)) "$seg"                                                   # torn last record
printf '\xff' | dd of="$seg" bs=1 seek=$((65 * 50 + 30)) conv=notrunc status=none # corrupt record 51
sed -i "s|^plugin_opt_database_url .*|plugin_opt_database_url $url|" "$KG_BROKER_DIR/mosquitto.conf"
kg_broker_restart
kg_wait_until 60 rows_at_least $db 98
sleep 1.5
kg_eq "the 98 intact records were replayed" 98 "$(rows $db)"
kg_eq "status: one torn tail" 1 "$(kg_status_get .spool.torn_tails)"
kg_eq "status: one corrupt record skipped" 1 "$(kg_status_get .spool.corrupt_skipped)"
if kg_broker_log_has "torn|truncat"; then kg_pass "the torn tail is reported in the log"; else kg_fail "no log line about the torn tail"; fi
kg_broker_stop

# ---- 4. a statement blocked on a lock does not hold up shutdown --------------------------------
# Another session holds an exclusive lock on raw_measurements, so the writer's INSERT waits. SIGTERM
# must end the broker within shutdown_timeout_ms plus a little (the sink cancels the statement),
# not when the lock is released (8 s) or lock_timeout (10 s) fires; the records stay in the spool.
db=dur_lock
url=$(kg_db_create $db 10)
kg_broker_start lock <<CONF
plugin_opt_database_url $url
plugin_opt_other_topics allow
plugin_opt_shutdown_timeout_ms 1000
CONF
kg__psql -d $db -c "begin" -c "lock table raw_measurements in access exclusive mode" -c "select pg_sleep(8)" \
	-c "commit" >/dev/null 2>&1 &
locker=$!
locked() { [ "$(kg_psql $db "select count(*) from pg_locks l join pg_class c on c.oid = l.relation where c.relname = 'raw_measurements' and l.mode = 'AccessExclusiveLock' and l.granted")" -ge 1 ]; }
kg_wait_until 5 locked || kg_fail "the lock was not taken"
"$LOADGEN" -p "$KG_BROKER_PORT" --kits 1 --messages 20 --qos 1 --window 10 --quiet >"$KG_SCRATCH/lock.loadgen" 2>&1
kg_eq "20 measurements acked while the table is locked" 20 "$(tail -n 1 "$KG_SCRATCH/lock.loadgen" | field acked)"
waiting() { [ "$(kg_psql $db "select count(*) from pg_stat_activity where application_name = 'kitgate' and wait_event_type = 'Lock'")" -ge 1 ]; }
kg_wait_until 5 waiting && kg_pass "the writer waits on the lock" || kg_fail "the writer is not waiting on the lock"
t0=$(date +%s%N)
kg_broker_stop
took=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$took" -lt 4000 ] && kg_pass "shutdown with a blocked INSERT took $took ms" || kg_fail "shutdown took $took ms with a blocked INSERT"
wait $locker
kg_broker_restart
kg_wait_until 30 rows_at_least $db 20
kg_eq "the 20 records were written after the restart" 20 "$(rows $db)"
kg_broker_stop

kg_finish
