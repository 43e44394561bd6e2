#!/usr/bin/env bash
# test_fleet_sim.sh -- the kit simulator's fleet mode (tools/kitgate-kitsim --fleet: every kit from
# one thread under epoll), the smoke check of ci/bench-fleet: 200 kits against a broker with kitgate
# (sink postgres) connect staggered, measure, survive a broker restart by reconnecting with backoff,
# and every raw measurement and aggregate the simulator counts as completed is a row.
. "$(dirname "$0")/lib.sh"

DB=fleetsim
URL=$(kg_db_create $DB 200) || kg_die "cannot create database $DB"
kg_broker_start fleetsim <<CONF
plugin_opt_sink postgres
plugin_opt_database_url $URL
CONF
SIM="$KG_TOOLS/kitgate-kitsim"
W="$KG_BROKER_DIR"
[ -x "$SIM" ] || kg_die "simulator not built: $SIM"
q() { kg_psql $DB "$1"; }
st() { tr ' ' '\n' <"$W/sim.status" 2>/dev/null | awk -F= -v k="$1" '$1 == k {print $2}'; }
all_up() { [ "$(st connected)" = 200 ]; }

# 200 kits over 2 s, raw every second per stream, aggregates every 3 s; 20 s in all
"$SIM" --fleet -p "$KG_BROKER_PORT" --kits 200 --ramp 2 --raw-interval 1 --agg-interval 3 --duration 20 \
	--backoff-max 2 --status-file "$W/sim.status" >"$W/sim.out" 2>"$W/sim.err" &
SIMPID=$!
kg_on_exit "kill $SIMPID 2>/dev/null"
kg_wait_until 15 all_up && kg_pass "200 kits connected (one simulator thread)" ||
	kg_fail "kits connected: $(st connected) of 200"
[ "$(ls /proc/$SIMPID/task | wc -l)" = 1 ] && kg_pass "the simulator runs every kit from one thread" ||
	kg_fail "simulator threads: $(ls /proc/$SIMPID/task | wc -l)"
sleep 4
# a broker restart: every kit loses its connection and comes back by itself. The kits pause
# (SIGUSR1) first: QoS 0 still unread in the dying broker's sockets would be lost, rightly.
kill -USR1 "$SIMPID"
sleep 1
kg_broker_restart
back() { [ "$(st connects)" -ge 400 ] && all_up; }
kg_wait_until 15 back && kg_pass "every kit reconnected after the broker restart" ||
	kg_fail "after the restart: $(cat "$W/sim.status")"
kill -USR2 "$SIMPID"
wait "$SIMPID"
kg_eq "simulator exit status" 0 "$?"
end=$(grep '^kitsim: fleet ' "$W/sim.out")
sum=$(grep '^kitsim: kits=' "$W/sim.out")
raw=$(sed -n 's/.* raw_done=\([0-9]*\).*/\1/p' <<<"$end")
agg=$(sed -n 's/.* aggregate_done=\([0-9]*\).*/\1/p' <<<"$end")
lost=$(sed -n 's/.* lost=\([0-9]*\).*/\1/p' <<<"$end")
kg_eq "connections lost at the restart" 200 "$lost"
# 200 kits x 5 streams x ~15 s (less the pause): thousands of raw measurements, hundreds of aggregates
[ "${raw:-0}" -ge 5000 ] && [ "${agg:-0}" -ge 1000 ] && kg_pass "simulator completed $raw raw and $agg aggregates" ||
	kg_fail "too few completed: $end / $sum"
grep -q "^kitsim: kits=200 raw=$raw aggregate=$agg invalid=0 completed=$((raw + agg)) rejected=0 dropped=0\$" "$W/sim.out" &&
	kg_pass "every message sent was completed, none dropped" || kg_fail "summary: $sum / $end"
# QoS 0 raw written to the socket of a live broker on loopback arrives: ids are random UUIDs and
# the table started empty, so the row count is the count of distinct ids landed
rows_raw() { [ "$(q "select count(*) from raw_measurements")" = "$raw" ]; }
rows_agg() { [ "$(q "select count(*) from aggregate_measurements")" = "$agg" ]; }
kg_wait_until 20 rows_raw && kg_pass "every completed raw measurement is a row ($raw)" ||
	kg_fail "raw rows $(q "select count(*) from raw_measurements"), completed $raw"
kg_wait_until 20 rows_agg && kg_pass "every completed aggregate is a row ($agg)" ||
	kg_fail "aggregate rows $(q "select count(*) from aggregate_measurements"), completed $agg"
kg_eq "every kit's measurements landed" 200 "$(q "select count(distinct kit_id) from raw_measurements")"
kg_finish
