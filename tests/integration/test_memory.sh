#!/usr/bin/env bash
# test_memory.sh -- with the sink down, 500,000 accepted messages keep the broker's resident memory
# bounded by queue_limit (the rest waits in the spool), and all of them land once the sink is back.
source "$(dirname "$0")/lib.sh"

LOADGEN="$KG_TOOLS/kitgate-loadgen"
[ -x "$LOADGEN" ] || kg_die "not built: $LOADGEN"
# The README's figure for the default queue_limit 100000 is for the release build (500,000
# messages: 400,000 of them in the spool); ASan's shadow memory and quarantine need more, and there
# 200,000 messages (100,000 spooled) check the same paths at a fifth of the CPU (a hand run in a
# sanitizer build; ci/test runs this test once, in the release build).
if [ "$KG_SANITIZE" = 1 ]; then
	N=${KG_MEMORY_MESSAGES:-200000}; LIMIT_MB=${KG_MEMORY_LIMIT_MB:-600}
else
	N=${KG_MEMORY_MESSAGES:-500000}; LIMIT_MB=${KG_MEMORY_LIMIT_MB:-96}
fi
# No debug lines (100 MB and a third of the run's CPU at 500,000 messages): this test reads
# nothing from the broker's log.
kg_broker_log_no_debug

db=mem
url=$(kg_db_create $db 20)
kg_broker_start mem <<CONF
plugin_opt_database_url $url
plugin_opt_other_topics allow
CONF
kg_pg_stop
echo "PostgreSQL is down; publishing $N measurements from 20 kits"
"$LOADGEN" -p "$KG_BROKER_PORT" --kits 20 --messages "$N" --qos 1 --window 200 --quiet >"$KG_SCRATCH/mem.loadgen" 2>&1
tail -n 1 "$KG_SCRATCH/mem.loadgen"
acked=$(tail -n 1 "$KG_SCRATCH/mem.loadgen" | sed -n 's/.*acked=\([0-9]*\).*/\1/p')
kg_eq "all $N acked while the sink was down" "$N" "$acked"
hwm_kb=$(awk '/VmHWM/ {print $2}' "/proc/$KG_BROKER_PID/status")
sleep 1.2
echo "broker peak resident memory: $((hwm_kb / 1024)) MiB (limit $LIMIT_MB MiB); spool: $(kg_status_get .spool.bytes) bytes, queue depth $(kg_status_get .queue_depth)"
if [ "$hwm_kb" -le $((LIMIT_MB * 1024)) ]; then
	kg_pass "peak RSS $((hwm_kb / 1024)) MiB <= $LIMIT_MB MiB"
else
	kg_fail "peak RSS $((hwm_kb / 1024)) MiB > $LIMIT_MB MiB"
fi
kg_eq "status: spilling to the spool" true "$(kg_status_get .spilling)"
kg_pg_start
echo "PostgreSQL is back; waiting for $N rows"
landed() { test "$(kg_psql $db 'select count(*) from raw_measurements')" -ge "$N"; }  # re-evaluated per try
kg_wait_until 600 landed
kg_eq "all $N rows landed" "$N" "$(kg_psql $db 'select count(*) from raw_measurements')"
kg_eq "no duplicates" 0 "$(kg_psql $db 'select count(*) - count(distinct id) from raw_measurements')"
kg_broker_stop
kg_finish
