#!/usr/bin/env bash
# test_connector.sh -- MQTT -> plugin (sink kafka) -> Kafka mock -> kitgate-kafka-connector -> PostgreSQL: every row exactly once, also across kill -9.
. "$(dirname "$0")/lib.sh"

LOADGEN="$KG_TOOLS/kitgate-loadgen"
CONNECTOR="$KG_TOOLS/kitgate-kafka-connector"
[ -x "$LOADGEN" ] || kg_die "not built: $LOADGEN"
[ -x "$CONNECTOR" ] || kg_die "not built: $CONNECTOR"
dir="$KG_SCRATCH/$KG_TEST_NAME"
rm -rf "$dir"
mkdir -p "$dir"

db=kg_connector
url=$(kg_db_create "$db" 10) || kg_die "no database"
url_agg=$(kg_db_create kg_connector_agg 10) || kg_die "no database"

kg_kafka_start --brokers 3 --partitions 4
kg_broker_start conn <<EOF
plugin_opt_sink kafka
plugin_opt_kafka_brokers $KG_KAFKA_BOOTSTRAP
EOF
# AstroPlant-style environment: one bootstrap host and port
first=${KG_KAFKA_BOOTSTRAP%%,*}
CONN_PID=""

# start_connector LOGNAME [DATABASE_URL GROUP ARGS...]: runs the connector in the background.
start_connector() {
	local log=$1 u=${2:-$url} g=${3:-kg-test}
	shift 3 2>/dev/null || shift $#
	env DATABASE_URL="$u" KAFKA_HOST="${first%:*}" KAFKA_PORT="${first##*:}" KAFKA_CONSUMER_GROUP="$g" \
		LOG_LEVEL=INFO "$CONNECTOR" run "$@" >>"$dir/$log" 2>&1 &
	CONN_PID=$!
}
kg_on_exit '[ -n "$CONN_PID" ] && kill -KILL "$CONN_PID" 2>/dev/null'

# SIGTERM the connector; it must exit 0 (ASan leak checks included) within 30 s.
stop_connector() {
	local what=$1 i rc
	kill -TERM "$CONN_PID"
	for i in $(seq 1 150); do kill -0 "$CONN_PID" 2>/dev/null || break; sleep 0.2; done
	if kill -0 "$CONN_PID" 2>/dev/null; then
		kg_fail "$what: connector still running 30 s after SIGTERM"
		kill -KILL "$CONN_PID"
	fi
	wait "$CONN_PID"
	rc=$?
	CONN_PID=""
	kg_eq "$what: connector exit status after SIGTERM" 0 "$rc"
}

rows() { kg_psql "$1" "select (select count(*) from raw_measurements) + (select count(*) from aggregate_measurements)"; }
rows_at_least() { [ "$(rows "$1")" -ge "$2" ]; }

# ---- 1. stream with a kill -9 of the connector in the middle
start_connector run1.log
"$LOADGEN" -p "$KG_BROKER_PORT" --kits 5 --messages 6000 --rate 500 --aggregate-every 5 --quiet \
	--acked-log "$dir/acked" >"$dir/loadgen1.out" 2>&1 &
lg=$!
if kg_wait_until 60 rows_at_least "$db" 1500; then
	kg_pass "connector is writing rows ($(rows "$db"))"
else
	kg_fail "connector wrote only $(rows "$db") rows in 60 s"
fi
kill -KILL "$CONN_PID"
wait "$CONN_PID" 2>/dev/null
CONN_PID=""
at_kill=$(rows "$db")
sleep 1
start_connector run2.log
wait "$lg"
kg_eq "loadgen exit status" 0 "$?"
n=$(sort -u "$dir/acked" | wc -l)
kg_eq "loadgen acked every message" 6000 "$n"
if kg_wait_until 180 rows_at_least "$db" "$n"; then
	kg_pass "all $n rows landed after the restart (had $at_kill at the kill)"
else
	kg_fail "only $(rows "$db") of $n rows after 180 s"
fi
sleep 2
kg_eq "raw: count(*) = count(distinct id)" "$(kg_psql "$db" "select count(distinct id) from raw_measurements")" \
	"$(kg_psql "$db" "select count(*) from raw_measurements")"
kg_eq "rows in the database = acked measurements" "$n" "$(rows "$db")"
kg_psql "$db" "select id from raw_measurements union all select id from aggregate_measurements" | sort >"$dir/db_ids"
kg_eq "database ids = acked ids (differences)" 0 "$(sort -u "$dir/acked" | comm -3 - "$dir/db_ids" | wc -l)"
naggr=$(kg_psql "$db" "select count(*) from aggregate_measurements")
[ "$naggr" -gt 0 ] && kg_pass "aggregate measurements written ($naggr)" || kg_fail "no aggregate measurements written"
kg_eq "kit_last_seen has every publishing kit" 5 "$(kg_psql "$db" "select count(*) from kit_last_seen")"
kg_eq "no message skipped as invalid" 0 "$(grep -c 'skipping' "$dir/run1.log" "$dir/run2.log" | awk -F: '{s += $2} END {print s}')"
stop_connector "run 2"
grep -q 'stopping: consumed' "$dir/run2.log" && kg_pass "connector logged its totals on exit" ||
	kg_fail "no exit line in run2.log"

# ---- 2. offsets were committed: a restart consumes only what is new
start_connector run3.log
"$LOADGEN" -p "$KG_BROKER_PORT" --kits 2 --start-kit 7 --messages 100 --quiet --acked-log "$dir/acked3" \
	>"$dir/loadgen3.out" 2>&1
kg_eq "loadgen 3 acked" 100 "$(sort -u "$dir/acked3" | wc -l)"
kg_wait_until 120 rows_at_least "$db" $((n + 100)) || kg_fail "the 100 new rows did not land"
sleep 1
stop_connector "run 3"
kg_eq "run 3 consumed only the new messages (committed offsets honoured)" "consumed 100," \
	"$(grep -o 'stopping: consumed [0-9]*,' "$dir/run3.log" | sed 's/stopping: //')"
kg_eq "rows after run 3 (exactly once)" $((n + 100)) "$(rows "$db")"

# ---- 3. --stream aggregate with a new group: starts from the earliest offset, aggregates only
start_connector agg.log "$url_agg" kg-agg --stream aggregate
want=$(kg_psql "$db" "select count(*) from aggregate_measurements")
agg_rows() { [ "$(kg_psql kg_connector_agg "select count(*) from aggregate_measurements")" -ge "$want" ]; }
kg_wait_until 120 agg_rows || kg_fail "--stream aggregate: aggregates did not land"
sleep 1
stop_connector "--stream aggregate"
kg_eq "--stream aggregate: every aggregate from the earliest offset" "$want" \
	"$(kg_psql kg_connector_agg "select count(*) from aggregate_measurements")"
kg_eq "--stream aggregate: no raw rows" 0 "$(kg_psql kg_connector_agg "select count(*) from raw_measurements")"

# ---- 4. CLI
"$CONNECTOR" --help >"$dir/help.out" 2>&1
kg_eq "--help exit status" 0 "$?"
grep -q -- '--stream raw|aggregate|all' "$dir/help.out" && kg_pass "--help shows the usage" || kg_fail "--help: $(head -1 "$dir/help.out")"
"$CONNECTOR" --stream bogus >/dev/null 2>&1
kg_eq "--stream bogus refused" 2 "$?"
"$CONNECTOR" walk >/dev/null 2>&1
kg_eq "unknown command refused" 2 "$?"

kg_broker_stop
kg_finish
