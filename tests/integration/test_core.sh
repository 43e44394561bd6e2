#!/usr/bin/env bash
# test_core.sh -- the core requirements end to end with real clients: ownership, validation inside
# the broker (reason codes, counting by reason, nothing reaches subscribers), PostgreSQL ingestion
# (exact rows, idempotent redelivery) and no loss across a database outage under load.
. "$(dirname "$0")/lib.sh"

DB=core
URL=$(kg_db_create $DB 10) || kg_die "cannot create database $DB"
MAXP=1024
kg_broker_start core <<CONF
plugin_opt_sink postgres
plugin_opt_database_url $URL
plugin_opt_other_topics allow
plugin_opt_max_payload $MAXP
CONF
P=$KG_BROKER_PORT

uuid() { cat /proc/sys/kernel/random/uuid; }
now_ms() { date +%s%3N; }
raw() { # raw ID SERIAL MS PERIPHERAL QT VALUE
	printf '{"id":"%s","kitSerial":"%s","datetime":%s,"peripheral":%s,"quantityType":%s,"value":%s}' "$@"
}
# pub5 USER TOPIC PAYLOAD: MQTT v5 QoS 1 publish with debug output (shows the PUBACK reason).
pub5() { mosquitto_pub -d -p "$P" -V mqttv5 -q 1 -u "$1" -P pw -t "$2" -m "$3" 2>&1; }
pub311() { mosquitto_pub -p "$P" -V mqttv311 -q 1 -u "$1" -P pw -t "$2" -m "$3" 2>&1; }
rows() { kg_psql $DB "select count(*) from raw_measurements where id = '$1'"; }
row_is() { [ "$(rows "$1")" = "$2" ]; }
RAW1=kit/k-test-0001/measurement/raw

# Starts a v5 subscriber USER FILTER that exits after its first message (or 15 s); waits until
# its SUBACK was sent. Sets SUBPID, SUBOUT.
nsub=0
sub_start() {
	nsub=$((nsub + 1))
	SUBOUT="$KG_BROKER_DIR/sub.$nsub"
	mosquitto_sub -p "$P" -V mqttv5 -u "$1" -P pw -i "core-sub-$nsub" -t "$2" -C 1 -W 15 -v >"$SUBOUT" 2>&1 &
	SUBPID=$!
	kg_wait_until 10 grep -q "Sending SUBACK to core-sub-$nsub\$" "$KG_BROKER_LOG" ||
		kg_fail "subscriber core-sub-$nsub did not get its SUBACK"
}
sub_wait() { wait "$SUBPID"; }

# ---------------------------------------------------------------- valid measurements land exactly
ms=$(now_ms)
id_raw=$(uuid)
out=$(pub5 k-test-0001 $RAW1 "$(raw "$id_raw" k-test-0001 "$ms" 11 1 21.5)")
# success is 0, or 16 (0x10 "no matching subscribers")
grep -qE 'received PUBACK \(Mid: 1, RC:(0|16)\)' <<<"$out" && kg_pass "valid raw: PUBACK success" ||
	kg_fail "valid raw: PUBACK not success: $out"
kg_wait_until 15 row_is "$id_raw" 1 || kg_fail "valid raw: no row after 15 s"
kg_eq "raw row: kit, configuration, peripheral, quantity type, value, ms time" "1|1|11|1|21.5|$ms" \
	"$(kg_psql $DB "select kit_id, kit_configuration_id, peripheral_id, quantity_type_id, value,
		(extract(epoch from datetime) * 1000)::bigint from raw_measurements where id = '$id_raw'")"

id_agg=$(uuid)
ms2=$(now_ms)
start=$((ms2 - 1800000))
# empty kitSerial, as real kits send: filled from the topic
agg="{\"id\":\"$id_agg\",\"kitSerial\":\"\",\"datetimeStart\":$start,\"datetimeEnd\":$ms2,\"peripheral\":12,\"quantityType\":2,\"values\":{\"count\":30,\"average\":21.5,\"minimum\":20.0,\"maximum\":23.25}}"
out=$(pub5 k-test-0001 kit/k-test-0001/measurement/aggregate "$agg")
grep -qE 'RC:(0|16)\)' <<<"$out" && kg_pass "valid aggregate: PUBACK success" || kg_fail "valid aggregate: $out"
agg_rows() { [ "$(kg_psql $DB "select count(*) from aggregate_measurements where id = '$id_agg'")" = 1 ]; }
kg_wait_until 15 agg_rows || kg_fail "valid aggregate: no row after 15 s"
kg_eq "aggregate row: kit, configuration, peripheral, quantity type, start/end ms" "1|1|12|2|$start|$ms2" \
	"$(kg_psql $DB "select kit_id, kit_configuration_id, peripheral_id, quantity_type_id,
		(extract(epoch from datetime_start) * 1000)::bigint, (extract(epoch from datetime_end) * 1000)::bigint
		from aggregate_measurements where id = '$id_agg'")"
kg_eq "aggregate values json" t \
	"$(kg_psql $DB "select \"values\"::jsonb = '{\"count\":30,\"average\":21.5,\"minimum\":20.0,\"maximum\":23.25}'::jsonb
		from aggregate_measurements where id = '$id_agg'")"
kg_eq "kit_last_seen has kit 1" 1 "$(kg_psql $DB "select count(*) from kit_last_seen where kit_id = 1")"

# ---------------------------------------------------------------- rejection: 0x87, subscribers see nothing
# (measurement topics only: kit/<serial>/stats/... carries the plugin's retained statistics)
sub_start server 'kit/+/measurement/#'
id_bad=$(uuid)
out=$(pub5 k-test-0001 $RAW1 "$(raw "$id_bad" k-test-0001 "$(now_ms)" 11 1 1e999)")
grep -q 'received PUBACK (Mid: 1, RC:135)' <<<"$out" && kg_pass "invalid (v5): PUBACK reason 0x87" ||
	kg_fail "invalid (v5): expected PUBACK RC:135, got: $out"
id_ok=$(uuid)
pub5 k-test-0001 $RAW1 "$(raw "$id_ok" k-test-0001 "$(now_ms)" 11 1 7)" >/dev/null
sub_wait
grep -q "$id_ok" "$SUBOUT" && ! grep -q "$id_bad" "$SUBOUT" &&
	kg_pass "subscriber on kit/+/measurement/# got the valid message, not the invalid one" ||
	kg_fail "subscriber on kit/+/measurement/# got: $(cat "$SUBOUT")"
kg_wait_until 15 row_is "$id_ok" 1 || kg_fail "valid message after an invalid one: no row"
kg_eq "invalid message: no row" 0 "$(rows "$id_bad")"

# v3.1.1: no reason codes, but the message is dropped all the same
sub_start server 'kit/+/measurement/#'
id_bad311=$(uuid)
pub311 k-test-0001 $RAW1 "$(raw "$id_bad311" k-test-0002 "$(now_ms)" 11 1 3)" >/dev/null
id_ok311=$(uuid)
pub311 k-test-0001 $RAW1 "$(raw "$id_ok311" k-test-0001 "$(now_ms)" 11 1 4)" >/dev/null
sub_wait
grep -q "$id_ok311" "$SUBOUT" && ! grep -q "$id_bad311" "$SUBOUT" &&
	kg_pass "v3.1.1 invalid message not delivered, valid one delivered" ||
	kg_fail "v3.1.1: subscriber got: $(cat "$SUBOUT")"
kg_wait_until 15 row_is "$id_ok311" 1 || kg_fail "v3.1.1 valid message: no row"
kg_eq "v3.1.1 invalid message: no row" 0 "$(rows "$id_bad311")"

# ---------------------------------------------------------------- every reason is counted
# the status is published once a second: wait until it shows the two rejections above
# (bad_value from the v5 client, serial_mismatch from the v3.1.1 one) before taking the baseline
seen_two() {
	local s
	s=$(kg_status_json 2>/dev/null) || return 1
	[ "$(jq -r '.rejected.bad_value >= 1 and .rejected.serial_mismatch >= 1' <<<"$s")" = true ]
}
kg_wait_until 10 seen_two || kg_fail "status JSON does not count the earlier rejections"
status=$(kg_status_json) || kg_die "no status JSON"
reasons=(too_large malformed missing_field bad_type serial_mismatch bad_time bad_value)
declare -A base
for r in "${reasons[@]}"; do
	base[$r]=$(jq -r ".rejected.$r" <<<"$status")
	[[ "${base[$r]}" =~ ^[0-9]+$ ]] || kg_fail "status JSON has no rejected.$r: $status"
done
pad=$(head -c $((MAXP + 100)) /dev/zero | tr '\0' x)
ms=$(now_ms)
declare -A bad=(
	[too_large]="{\"id\":\"$(uuid)\",\"kitSerial\":\"k-test-0001\",\"datetime\":$ms,\"peripheral\":11,\"quantityType\":1,\"value\":1,\"pad\":\"$pad\"}"
	[malformed]='{"id":"4b9f2c1e-1d2a-4c3b-9e8f-0a1b2c3d4e5f","kitSerial":'
	[missing_field]="{\"id\":\"$(uuid)\",\"kitSerial\":\"k-test-0001\",\"datetime\":$ms,\"peripheral\":11,\"quantityType\":1}"
	[bad_type]="{\"id\":\"$(uuid)\",\"kitSerial\":\"k-test-0001\",\"datetime\":$ms,\"peripheral\":\"11\",\"quantityType\":1,\"value\":1}"
	[serial_mismatch]="$(raw "$(uuid)" k-test-0002 "$ms" 11 1 1)"
	[bad_time]="$(raw "$(uuid)" k-test-0001 $((ms + 10 * 86400000)) 11 1 1)"
	[bad_value]="$(raw "$(uuid)" k-test-0001 "$ms" 11 1 -1e999)"
)
for r in "${reasons[@]}"; do
	out=$(pub5 k-test-0001 $RAW1 "${bad[$r]}")
	grep -q 'RC:135)' <<<"$out" && kg_pass "$r: PUBACK 0x87" || kg_fail "$r: expected RC:135, got: $out"
done
reasons_counted() {
	local s r
	s=$(kg_status_json 2>/dev/null) || return 1
	for r in "${reasons[@]}"; do
		[ "$(jq -r ".rejected.$r" <<<"$s")" = "$((base[$r] + 1))" ] || return 1
	done
}
if kg_wait_until 10 reasons_counted; then
	kg_pass "each reason counted once in the status JSON"
else
	status=$(kg_status_json)
	for r in "${reasons[@]}"; do
		kg_eq "status rejected.$r" "$((base[$r] + 1))" "$(jq -r ".rejected.$r" <<<"$status")"
	done
fi

# ---------------------------------------------------------------- ownership
# kit 1 publishing into kit 2's topic: refused, no row, nobody receives it
sub_start server 'kit/k-test-0002/measurement/#'
id_foreign=$(uuid)
out=$(pub5 k-test-0001 kit/k-test-0002/measurement/raw "$(raw "$id_foreign" k-test-0002 "$(now_ms)" 21 1 5)")
grep -q 'RC:135)' <<<"$out" && kg_pass "publish into another kit's topic: PUBACK 0x87" ||
	kg_fail "publish into another kit's topic: $out"
id_own2=$(uuid)
pub5 k-test-0002 kit/k-test-0002/measurement/raw "$(raw "$id_own2" k-test-0002 "$(now_ms)" 21 1 6)" >/dev/null
sub_wait
grep -q "$id_own2" "$SUBOUT" && ! grep -q "$id_foreign" "$SUBOUT" &&
	kg_pass "subscriber never saw the foreign publish" || kg_fail "foreign publish: subscriber got: $(cat "$SUBOUT")"
kg_wait_until 15 row_is "$id_own2" 1 || kg_fail "kit 2's own measurement: no row"
kg_eq "foreign publish: no row" 0 "$(rows "$id_foreign")"

# subscriptions: another kit's topics and kit/# are denied (SUBACK reason 0x87 = 135)
for f in 'kit/k-test-0002/#' 'kit/#' 'kit/+/measurement/raw'; do
	out=$(mosquitto_sub -d -p "$P" -V mqttv5 -u k-test-0001 -P pw -t "$f" -W 2 2>&1)
	if grep -q 'Subscribed (mid: 1): 135' <<<"$out"; then
		kg_pass "kit 1 subscribing to $f: denied (135)"
	else
		kg_fail "kit 1 subscribing to $f: expected SUBACK 135, got: $out"
	fi
done
out=$(mosquitto_sub -d -p "$P" -V mqttv5 -u k-test-0001 -P pw -t 'kit/k-test-0001/#' -W 1 2>&1)
grep -q 'Subscribed (mid: 1): 0' <<<"$out" && kg_pass "kit 1 subscribing to its own kit/k-test-0001/#: granted" ||
	kg_fail "own subscription: $out"

# usernames that cannot be a serial are refused at CONNECT by the plugin: the password file has
# them (a bare broker with the same password file accepts them), the kitgate broker refuses them
evil=('evil+1' 'evil#1' 'evil/1')
KG_BROKER_PLAIN=1 kg_broker_start plain </dev/null
for u in "${evil[@]}"; do
	mosquitto_pub -p "$KG_BROKER_PORT" -V mqttv5 -u "$u" -P pw -t other/topic -m x >/dev/null 2>&1 ||
		kg_fail "control: bare broker refuses $u (password file?)"
done
kg_broker_stop
kg_broker_use core
for u in "${evil[@]}"; do
	if out=$(mosquitto_pub -p "$P" -V mqttv5 -u "$u" -P pw -t other/topic -m x 2>&1); then
		kg_fail "username $u: CONNECT accepted"
	else
		kg_pass "username $u refused at CONNECT ($(head -n 1 <<<"$out"))"
	fi
done
kg_broker_log_has 'refused CONNECT .*evil' && kg_pass "plugin logged the refusal" ||
	kg_fail "no 'refused CONNECT' log line"

# ---------------------------------------------------------------- redelivery lands once
id_dup=$(uuid)
dup=$(raw "$id_dup" k-test-0001 "$(now_ms)" 13 3 55.5)
pub5 k-test-0001 $RAW1 "$dup" >/dev/null
pub5 k-test-0001 $RAW1 "$dup" >/dev/null
id_after=$(uuid)
pub5 k-test-0001 $RAW1 "$(raw "$id_after" k-test-0001 "$(now_ms)" 13 3 1)" >/dev/null
kg_wait_until 15 row_is "$id_after" 1 || kg_fail "message after the duplicate: no row"
kg_eq "same id published twice: one row" 1 "$(rows "$id_dup")"

# ---------------------------------------------------------------- 5,000 messages across a database outage
before=$(kg_psql $DB "select count(*) from raw_measurements")
ackfile="$KG_BROKER_DIR/acked.ids"
lgout="$KG_BROKER_DIR/loadgen.out"
"$KG_TOOLS/kitgate-loadgen" -p "$P" --kits 5 --messages 5000 --qos 1 --window 100 --rate 500 \
	--acked-log "$ackfile" --quiet >"$lgout" 2>&1 &
lgpid=$!
sleep 2
kg_pg_stop && echo "core: PostgreSQL stopped at $(date +%T)"
sleep 5
kg_pg_start && echo "core: PostgreSQL started at $(date +%T)"
wait "$lgpid"
lgrc=$?
kg_eq "loadgen exit status" 0 "$lgrc"
kg_eq "loadgen final line: all acked" "acked=5000 rejected=0 failed=0" \
	"$(tail -n 1 "$lgout" | grep -oE 'acked=[0-9]+ rejected=[0-9]+ failed=[0-9]+')"
all_in() { [ "$(kg_psql $DB "select count(*) from raw_measurements")" -ge $((before + 5000)) ]; }
kg_wait_until 60 all_in || kg_fail "not all 5000 rows after 60 s"
kg_eq "rows after the outage" $((before + 5000)) "$(kg_psql $DB "select count(*) from raw_measurements")"
missing=$(kg__psql -At -d $DB <<SQL
create temp table acked(id uuid);
\copy acked from '$ackfile'
select count(*), count(distinct id) from acked;
select count(*) from acked a where not exists (select 1 from raw_measurements r where r.id = a.id);
SQL
)
kg_eq "acked ids (all, distinct)" "5000|5000" "$(sed -n 1p <<<"$missing")"
kg_eq "acked ids missing from raw_measurements" 0 "$(sed -n 2p <<<"$missing")"
kg_eq "kit_last_seen has the 5 loadgen kits" 5 \
	"$(kg_psql $DB "select count(*) from kit_last_seen where kit_id between 1 and 5")"

kg_broker_stop
kg_finish
