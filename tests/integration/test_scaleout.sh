#!/usr/bin/env bash
# test_scaleout.sh -- the scale-out topology on loopback: two brokers with kitgate (sink kafka), a
# three-broker Kafka mock with 6-partition raw/aggregate topics, connectors in one consumer group.
# One connector is killed (-9) mid-stream and another started, and a Kafka broker is down for 8 s:
# every acknowledged measurement lands in PostgreSQL exactly once. The connectors' /metrics pass
# promtool and show rows and consumer lag, which is 0 once caught up, also on partitions a late
# joiner took over with nothing new on them.
. "$(dirname "$0")/lib.sh"

LOADGEN="$KG_TOOLS/kitgate-loadgen"
CONNECTOR="$KG_TOOLS/kitgate-kafka-connector"
[ -x "$LOADGEN" ] || kg_die "not built: $LOADGEN"
[ -x "$CONNECTOR" ] || kg_die "not built: $CONNECTOR"
dir="$KG_SCRATCH/$KG_TEST_NAME"
rm -rf "$dir"
mkdir -p "$dir"
PER_BROKER=${KG_SCALE_MESSAGES:-8000}

db=kg_scaleout
url=$(kg_db_create "$db" 20) || kg_die "no database"
kg_kafka_start --brokers 3 --partitions 6
first=${KG_KAFKA_BOOTSTRAP%%,*}
for b in a b; do
	kg_broker_start "$b" <<CONF
plugin_opt_sink kafka
plugin_opt_kafka_brokers $KG_KAFKA_BOOTSTRAP
CONF
done
kg_broker_use a; PORT_A=$KG_BROKER_PORT
kg_broker_use b; PORT_B=$KG_BROKER_PORT

declare -A CPID CPORT
kg_on_exit 'for p in "${CPID[@]}"; do kill -KILL "$p" 2>/dev/null; done'
# start_connector NAME: one more connector in group kg-scale, with /metrics on a free port.
start_connector() {
	local name=$1 port
	port=$(kg_free_port) || kg_die "no free port"
	env DATABASE_URL="$url" KAFKA_HOST="${first%:*}" KAFKA_PORT="${first##*:}" \
		KAFKA_CONSUMER_GROUP=kg-scale LOG_LEVEL=INFO \
		"$CONNECTOR" run --metrics-listen "127.0.0.1:$port" >>"$dir/$name.log" 2>&1 &
	CPID[$name]=$!
	CPORT[$name]=$port
}
rows() { kg_psql "$db" "select (select count(*) from raw_measurements) + (select count(*) from aggregate_measurements)"; }
rows_at_least() { [ "$(rows)" -ge "$1" ]; }
metrics_of() { curl -s -m 5 "http://127.0.0.1:${CPORT[$1]}/metrics"; }
metrics_up() { metrics_of "$1" | grep -q '^kitgate_connector_consumed_total'; }

start_connector c1
start_connector c2

# Kits 1-10 on broker a, 11-20 on broker b (a kit sticks to one broker).
"$LOADGEN" -p "$PORT_A" --kits 10 --start-kit 1 --messages "$PER_BROKER" --rate 800 --aggregate-every 7 \
	--quiet --acked-log "$dir/acked_a" >"$dir/loadgen_a.out" 2>&1 &
lga=$!
"$LOADGEN" -p "$PORT_B" --kits 10 --start-kit 11 --messages "$PER_BROKER" --rate 800 --aggregate-every 7 \
	--quiet --acked-log "$dir/acked_b" >"$dir/loadgen_b.out" 2>&1 &
lgb=$!

if kg_wait_until 90 rows_at_least 2000; then
	kg_pass "two connectors are writing rows ($(rows))"
else
	kg_fail "only $(rows) rows after 90 s"
fi
if kg_wait_until 10 metrics_up c1; then
	metrics_of c1 >"$dir/metrics_c1.txt"
	if promtool check metrics <"$dir/metrics_c1.txt" >"$dir/promtool.out" 2>&1; then
		kg_pass "connector /metrics passes promtool check metrics"
	else
		kg_fail "promtool: $(cat "$dir/promtool.out")"
	fi
	# the watermarks come with the consumer's first fetch responses: wait for them, not on luck
	lag_listed() { metrics_of c1 >"$dir/metrics_c1.txt"; grep -q '^kitgate_connector_consumer_lag{topic="raw",partition="[0-9]*"}' "$dir/metrics_c1.txt"; }
	kg_wait_until 15 lag_listed \
		&& kg_pass "connector /metrics reports per-partition consumer lag" \
		|| kg_fail "no per-partition lag in /metrics: $(head -c 600 "$dir/metrics_c1.txt")"
else
	kg_fail "connector c1 serves no /metrics"
fi

kill -KILL "${CPID[c1]}"; wait "${CPID[c1]}" 2>/dev/null; unset 'CPID[c1]'
echo "connector c1 killed (-9) at $(rows) rows; starting c3"
start_connector c3
kg_kafka_cmd "down 2" && echo "Kafka broker 2 down for 8 s"
sleep 8
kg_kafka_cmd "up 2"

wait "$lga"; kg_eq "loadgen a exit status" 0 "$?"
wait "$lgb"; kg_eq "loadgen b exit status" 0 "$?"
sort -u "$dir/acked_a" "$dir/acked_b" >"$dir/acked"
n=$(wc -l <"$dir/acked")
kg_eq "every measurement was acknowledged" $((2 * PER_BROKER)) "$n"
if kg_wait_until 180 rows_at_least "$n"; then
	kg_pass "all $n acknowledged measurements landed"
else
	kg_fail "only $(rows) of $n rows after 180 s"
fi
sleep 3 # anything doubled would arrive now
kg_psql "$db" "select id from raw_measurements union all select id from aggregate_measurements" | sort >"$dir/ids"
kg_eq "rows = distinct ids (nothing doubled)" "$(sort -u "$dir/ids" | wc -l)" "$(wc -l <"$dir/ids")"
kg_eq "the stored ids are exactly the acknowledged ids" "" "$(comm -3 "$dir/acked" "$dir/ids" | head -n 5)"
kg_eq "aggregates landed too" 1 "$([ "$(kg_psql "$db" "select count(*) from aggregate_measurements")" -gt 0 ] && echo 1)"

lag_zero_of() { metrics_of "$1" | grep -q '^kitgate_connector_consumer_lag_overall 0$'; }
if kg_wait_until 90 lag_zero_of c2; then   # its watermarks refresh with its fetches: slow on a busy machine
	kg_pass "consumer lag of c2 drains to 0"
else
	kg_fail "c2 lag: $(metrics_of c2 | grep consumer_lag)"
fi
# A connector joining now gets caught-up partitions on which nothing new arrives, so it has no
# consumer position there: its lag must come from the committed offsets, not the whole partition.
start_connector c4
# One consistent view after the rebalance: the three connectors list the 12 partitions (6 raw, 6
# aggregate) exactly once between them, and every lag is 0. A snapshot from before the rebalance
# (c2 and c3 sharing all 12, c4 listing its new ones too) lists more; one taken between revoke and
# assign lists fewer.
all_lag_zero() {
	local c
	for c in c2 c3 c4; do metrics_of "$c"; done | grep '^kitgate_connector_consumer_lag{' >"$dir/lag_after"
	[ "$(wc -l <"$dir/lag_after")" -eq 12 ] &&
		[ "$(sed 's/}.*//' "$dir/lag_after" | sort -u | wc -l)" -eq 12 ] &&
		! grep -qv '} 0$' "$dir/lag_after"
}
if kg_wait_until 90 all_lag_zero; then
	kg_pass "after c4 joined, c2, c3 and c4 list the 12 partitions once, all with lag 0"
else
	kg_fail "after c4 joined, the connectors' lag: $(tr '\n' ';' <"$dir/lag_after")"
fi
for c in c2 c3 c4; do
	kill -TERM "${CPID[$c]}"
	wait "${CPID[$c]}"
	kg_eq "connector $c exits 0 after SIGTERM" 0 "$?"
	unset "CPID[$c]"
done
kg_finish
