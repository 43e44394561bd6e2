#!/usr/bin/env bash
# test_streams.sh -- measurements and bridge routes are independent streams: with sink postgres
# and bridge_topics, stopping PostgreSQL does not delay bridged messages to Kafka; every
# measurement lands exactly once after PostgreSQL is back; a spool of the old single-stream layout
# is adopted by the measurement stream.
source "$(dirname "$0")/lib.sh"

command -v kcat >/dev/null || kg_die "kcat is not installed"
LOADGEN="$KG_TOOLS/kitgate-loadgen"
[ -x "$LOADGEN" ] || kg_die "not built: $LOADGEN"

rows() { kg_psql "$1" "select count(*) from raw_measurements"; }
dups() { kg_psql "$1" "select count(*) - count(distinct id) from raw_measurements"; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p"; }
rows_at_least() { test "$(rows "$1")" -ge "$2"; }
# Messages in Kafka topic $1 (reads to the end once).
kafka_count() { timeout 20 kcat -C -b "$KG_KAFKA_BOOTSTRAP" -t "$1" -o beginning -e -q -f '%k\n' 2>/dev/null | grep -c ''; }
kafka_at_least() { test "$(kafka_count "$1")" -ge "$2"; }
bridge_pub() { # N messages on plant/p1/status, numbered from $2
	local i
	for i in $(seq "$2" $(($2 + $1 - 1))); do echo "{\"n\":$i}"; done |
		mosquitto_pub -p "$KG_BROKER_PORT" -u server -P pw -q 1 -t plant/p1/status -l ||
		kg_fail "bridge publish failed"
}

db=streams
url=$(kg_db_create $db 4)
kg_kafka_start --brokers 1 --partitions 1
kg_broker_start streams <<CONF
plugin_opt_sink postgres
plugin_opt_database_url $url
plugin_opt_kafka_brokers $KG_KAFKA_BOOTSTRAP
plugin_opt_bridge_topics plant/#
plugin_opt_other_topics allow
CONF
ls -d "$KG_BROKER_DIR/spool/measurements" "$KG_BROKER_DIR/spool/bridge" >/dev/null 2>&1 &&
	kg_pass "one spool directory per stream" || kg_fail "no spool/measurements and spool/bridge"

# ---- 1. both streams flowing ----------------------------------------------------------------
"$LOADGEN" -p "$KG_BROKER_PORT" --kits 4 --messages 200 --qos 1 --window 20 --quiet >"$KG_SCRATCH/streams.lg1" 2>&1
kg_eq "200 measurements acked" 200 "$(tail -n 1 "$KG_SCRATCH/streams.lg1" | field acked)"
bridge_pub 20 1
kg_wait_until 30 rows_at_least $db 200
kg_eq "rows before the outage" 200 "$(rows $db)"
kg_wait_until 30 kafka_at_least plant_p1_status 20
kg_eq "bridged messages before the outage" 20 "$(kafka_count plant_p1_status)"

# ---- 2. PostgreSQL down: bridged messages still reach Kafka within seconds --------------------
kg_pg_stop
echo "PostgreSQL stopped at $(date +%T)"
"$LOADGEN" -p "$KG_BROKER_PORT" --kits 4 --messages 500 --qos 1 --window 20 --quiet >"$KG_SCRATCH/streams.lg2" 2>&1
acked2=$(tail -n 1 "$KG_SCRATCH/streams.lg2" | field acked)
kg_eq "500 measurements acked into the spool while PostgreSQL is down" 500 "$acked2"
t0=$(date +%s%N)
bridge_pub 100 21
if kg_wait_until 10 kafka_at_least plant_p1_status 120; then
	ms=$((($(date +%s%N) - t0) / 1000000))
	kg_pass "100 bridged messages reached Kafka in $ms ms while PostgreSQL was down"
else
	kg_fail "only $(($(kafka_count plant_p1_status) - 20)) of 100 bridged messages reached Kafka in 10 s while PostgreSQL was down"
fi
# The status is republished every second and the workers refresh their numbers every 200 ms: wait
# for a status that has caught up instead of reading the first one.
status_is() { [ "$(kg_status_get "$1")" = "$2" ]; }
kg_wait_until 10 status_is .streams.measurements.sink.connected false
kg_eq "status: measurement sink disconnected" false "$(kg_status_get .streams.measurements.sink.connected)"
kg_wait_until 10 status_is .streams.bridge.sink.delivered 120
kg_eq "status: bridge stream delivered everything" 120 "$(kg_status_get .streams.bridge.sink.delivered)"

# ---- 3. PostgreSQL back: every measurement exactly once --------------------------------------
kg_pg_start
echo "PostgreSQL started again at $(date +%T)"
kg_wait_until 120 rows_at_least $db 700
kg_eq "rows after the outage == accepted measurements" 700 "$(rows $db)"
kg_eq "no duplicate rows" 0 "$(dups $db)"
kg_eq "no bridged message doubled" 120 "$(kafka_count plant_p1_status)"
kg_eq "distinct bridged payloads" 120 "$(timeout 20 kcat -C -b "$KG_KAFKA_BOOTSTRAP" -t plant_p1_status -o beginning -e -q -f '%s\n' 2>/dev/null | sort -u | grep -c '')"

# ---- 4. the single-stream spool layout is adopted by the measurement stream --------------------
kg_pg_stop
"$LOADGEN" -p "$KG_BROKER_PORT" --kits 4 --messages 50 --qos 1 --window 10 --quiet >"$KG_SCRATCH/streams.lg3" 2>&1
kg_eq "50 more measurements acked into the spool" 50 "$(tail -n 1 "$KG_SCRATCH/streams.lg3" | field acked)"
kg_broker_stop
mv "$KG_BROKER_DIR"/spool/measurements/*.kgs "$KG_BROKER_DIR"/spool/
[ -f "$KG_BROKER_DIR/spool/measurements/checkpoint" ] && mv "$KG_BROKER_DIR/spool/measurements/checkpoint" "$KG_BROKER_DIR/spool/"
rm -rf "$KG_BROKER_DIR/spool/measurements"
kg_pg_start
kg_broker_restart
kg_wait_until 60 rows_at_least $db 750
kg_eq "rows after adopting the old layout" 750 "$(rows $db)"
kg_eq "no duplicate rows after the adoption" 0 "$(dups $db)"
kg_broker_log_has "adopted .* single-stream layout" && kg_pass "adoption logged" || kg_fail "no adoption line in the log"
kg_broker_stop

# ---- 5. an unusable spool_dir stops the start, with one log line naming it ---------------------
bad="$KG_SCRATCH/streams-badspool"
rm -rf "$bad"
mkdir -p "$bad"
echo x >"$bad/file"
sed -e "s|^plugin_opt_spool_dir .*|plugin_opt_spool_dir $bad/file|" -e "s|^log_dest file .*|log_dest file $bad/log|" \
	-e "s|^listener .*|listener $(kg_free_port) 127.0.0.1|" "$KG_BROKER_DIR/mosquitto.conf" >"$bad/mosquitto.conf"
mapfile -t envs < <(kg__sanitizer_env)
env "${envs[@]}" timeout 20 "$KG_MOSQUITTO" -c "$bad/mosquitto.conf" >"$bad/out" 2>&1
rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ]; then
	kg_pass "the broker refuses to start when spool_dir is a file (exit $rc)"
else
	kg_fail "the broker did not refuse an unusable spool_dir (exit $rc)"
fi
kg_eq "one log line names spool_dir and the reason" 1 \
	"$(cat "$bad/log" "$bad/out" 2>/dev/null | grep -c "spool_dir $bad/file is unusable.*Not a directory")"
kg_finish
