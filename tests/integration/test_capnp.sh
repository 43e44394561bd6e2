#!/usr/bin/env bash
# test_capnp.sh -- AstroPlant kits speaking packed Cap'n Proto, end to end: the kit simulator
# (tools/kitgate-kitsim: MQTT 3.1.1, QoS 0 raw, QoS 2 aggregates) against a broker with kitgate
# (sink postgres, payload_format auto): rows land exactly as the simulator printed them; invalid
# Cap'n Proto gets 0x87 (v5), is counted by reason and never reaches a subscriber or the database.
. "$(dirname "$0")/lib.sh"

DB=capnp
URL=$(kg_db_create $DB 10) || kg_die "cannot create database $DB"
kg_broker_start capnp <<CONF
plugin_opt_sink postgres
plugin_opt_database_url $URL
plugin_opt_other_topics allow
CONF
P=$KG_BROKER_PORT
SIM="$KG_TOOLS/kitgate-kitsim"
SCHEMA="$KG_SOURCE_DIR/schema/astroplant.capnp"
W="$KG_BROKER_DIR"
[ -x "$SIM" ] || kg_die "simulator not built: $SIM"

now_ms() { date +%s%3N; }
q() { kg_psql $DB "$1"; }

# A subscriber that sees every kit message for the whole test (topic and payload in hex).
mosquitto_sub -p "$P" -V mqttv5 -u server -P pw -i capnp-sub -q 2 -t 'kit/+/measurement/#' -F '%t %x' >"$W/sub.out" 2>"$W/sub.err" &
SUBPID=$!
kg_on_exit "kill $SUBPID 2>/dev/null"
kg_wait_until 10 grep -q 'Sending SUBACK to capnp-sub$' "$KG_BROKER_LOG" || kg_fail "subscriber got no SUBACK"

status_reason() { kg_status_get ".rejected.$1"; }
reasons=(malformed bad_type serial_mismatch bad_time bad_value)
declare -A base
status=$(kg_status_json) || kg_die "no status JSON"
for r in "${reasons[@]}"; do base[$r]=$(jq -r ".rejected.$r" <<<"$status"); done

# ---------------------------------------------------------------- valid kits, Cap'n Proto, v3.1.1
"$SIM" -p "$P" --kits 3 --raw-interval 0.5 --agg-interval 2 --duration 5.2 >"$W/sim1.out" 2>"$W/sim1.err"
rc=$?
kg_eq "simulator (3 kits, capnp, v3.1.1) exit status" 0 "$rc"
nraw=$(grep -c '^sent k-test-000[123] raw ' "$W/sim1.out")
nagg=$(grep -c '^sent k-test-000[123] aggregate ' "$W/sim1.out")
# 3 kits x 5 streams x ~11 raw rounds; 3 x 5 x 2 aggregate windows
[ "$nraw" -ge 120 ] && [ "$nagg" -ge 15 ] && kg_pass "simulator sent $nraw raw and $nagg aggregates" ||
	kg_fail "simulator sent too little: raw=$nraw aggregate=$nagg: $(tail -3 "$W/sim1.out") $(cat "$W/sim1.err")"
grep -q "^kitsim: kits=3 raw=$nraw aggregate=$nagg invalid=0 completed=$((nraw + nagg)) rejected=0 dropped=0\$" "$W/sim1.out" &&
	kg_pass "simulator summary: every message completed" || kg_fail "simulator summary: $(tail -1 "$W/sim1.out")"

raw_rows() { [ "$(q "select count(*) from raw_measurements where kit_id in (1,2,3)")" = "$nraw" ]; }
agg_rows() { [ "$(q "select count(*) from aggregate_measurements where kit_id in (1,2,3)")" = "$nagg" ]; }
kg_wait_until 20 raw_rows && kg_pass "raw rows land exactly ($nraw)" ||
	kg_fail "raw rows: expected $nraw, got $(q "select count(*) from raw_measurements")"
kg_wait_until 20 agg_rows && kg_pass "aggregate rows land exactly ($nagg)" ||
	kg_fail "aggregate rows: expected $nagg, got $(q "select count(*) from aggregate_measurements")"

# Every printed id is a row (one query for all of them), and a few rows match field by field.
ids=$(awk '$3 == "raw" {printf "%s'"'"'%s'"'"'", (n++ ? "," : ""), $4}' "$W/sim1.out")
kg_eq "every raw id the simulator printed is a row" "$nraw" "$(q "select count(*) from raw_measurements where id in ($ids)")"
ids=$(awk '$3 == "aggregate" {printf "%s'"'"'%s'"'"'", (n++ ? "," : ""), $4}' "$W/sim1.out")
kg_eq "every aggregate id the simulator printed is a row" "$nagg" \
	"$(q "select count(*) from aggregate_measurements where id in ($ids)")"
for line in 1 60 $nraw; do
	read -r _ serial _ id per qt ms val < <(grep ' raw ' "$W/sim1.out" | sed -n "${line}p")
	kit=$((10#${serial#k-test-}))
	kg_eq "raw row $line ($id): kit, peripheral, quantity type, ms, value" "$kit|$per|$qt|$ms|t" \
		"$(q "select kit_id, peripheral_id, quantity_type_id, (extract(epoch from datetime) * 1000)::bigint,
			value = '$val'::float8 from raw_measurements where id = '$id'")"
done
for line in 1 $nagg; do
	read -r _ serial _ id per qt start end c a mi ma < <(grep ' aggregate ' "$W/sim1.out" | sed -n "${line}p")
	kit=$((10#${serial#k-test-}))
	vals="{\"count\":${c#count=},\"average\":${a#average=},\"minimum\":${mi#minimum=},\"maximum\":${ma#maximum=}}"
	kg_eq "aggregate row $line ($id): kit, peripheral, quantity type, window, values" "$kit|$per|$qt|$start|$end|t" \
		"$(q "select kit_id, peripheral_id, quantity_type_id, (extract(epoch from datetime_start) * 1000)::bigint,
			(extract(epoch from datetime_end) * 1000)::bigint, \"values\"::jsonb = '$vals'::jsonb
			from aggregate_measurements where id = '$id'")"
done
# The aggregate is over the raw values the kit sent in its window.
read -r _ serial _ id per qt start end c _ < <(grep ' aggregate ' "$W/sim1.out" | sed -n "1p")
kg_eq "first aggregate's count = raw rows of its stream in its window" "${c#count=}" \
	"$(awk -v s="$serial" -v p="$per" -v qq="$qt" -v a="$start" -v b="$end" \
		'$2 == s && $3 == "raw" && $5 == p && $6 == qq && $7 >= a && $7 <= b {n++} END {print n + 0}' "$W/sim1.out")"

# ---------------------------------------------------------------- JSON kits beside Cap'n Proto (auto)
"$SIM" -p "$P" --kits 1 --start-kit 4 --json --raw-interval 0.5 --agg-interval 1 --duration 2.2 >"$W/sim2.out" 2>"$W/sim2.err"
kg_eq "simulator --json exit status" 0 "$?"
jraw=$(grep -c ' raw ' "$W/sim2.out")
jagg=$(grep -c ' aggregate ' "$W/sim2.out")
json_rows() {
	[ "$(q "select (select count(*) from raw_measurements where kit_id = 4) || '/' ||
		(select count(*) from aggregate_measurements where kit_id = 4)")" = "$jraw/$jagg" ]
}
kg_wait_until 20 json_rows && kg_pass "JSON kit beside capnp kits: $jraw raw, $jagg aggregate rows" ||
	kg_fail "JSON kit rows: expected $jraw/$jagg"

# ---------------------------------------------------------------- invalid Cap'n Proto, v5: 0x87, counted, never delivered
enc() { # enc TYPE TEXT FILE
	printf '%s' "$2" | capnp encode --packed "$SCHEMA" "$1" >"$3" || kg_die "capnp encode failed: $2"
}
ms=$(now_ms)
ID='id = 0x"0badc0de0badc0de0badc0de0badc0de"'
enc RawMeasurement "($ID, kitSerial = \"\", datetime = $ms, peripheral = 11, quantityType = 1, value = 1.25)" "$W/ok.bin"
head -c 20 "$W/ok.bin" >"$W/truncated.bin"
printf '\xff\xff\xff\xff\xff\xff\xff\xff\x00garbage' >"$W/garbage.bin"
enc RawMeasurement "(id = 0x\"0badc0de0badc0de0badc0de0badc0\", datetime = $ms, peripheral = 11, quantityType = 1)" "$W/id15.bin"
enc RawMeasurement "($ID, kitSerial = \"k-test-0002\", datetime = $ms, peripheral = 11, quantityType = 1)" "$W/other.bin"
enc RawMeasurement "($ID, datetime = 18446744073709551615, peripheral = 11, quantityType = 1)" "$W/time.bin"
enc AggregateMeasurement "($ID, datetimeStart = 1, datetimeEnd = $ms, peripheral = 11, quantityType = 1, values = [(type = \"count\", value = inf)])" "$W/aggval.bin"
declare -A want=([truncated]=malformed [garbage]=malformed [id15]=bad_type [other]=serial_mismatch [time]=bad_time [aggval]=bad_value)
for f in truncated garbage id15 other time aggval; do
	topic=kit/k-test-0001/measurement/raw
	[ $f = aggval ] && topic=kit/k-test-0001/measurement/aggregate
	out=$(mosquitto_pub -d -p "$P" -V mqttv5 -q 1 -u k-test-0001 -P pw -t $topic -f "$W/$f.bin" 2>&1)
	grep -q 'received PUBACK (Mid: 1, RC:135)' <<<"$out" && kg_pass "$f (${want[$f]}): PUBACK 0x87" ||
		kg_fail "$f: expected RC:135, got: $out"
done
out=$(mosquitto_pub -d -p "$P" -V mqttv5 -q 2 -u k-test-0001 -P pw -t kit/k-test-0001/measurement/raw -f "$W/garbage.bin" 2>&1)
grep -q 'Publish 1 failed: Not authorized' <<<"$out" && kg_pass "garbage at QoS 2: PUBREC 0x87 (not authorized)" ||
	kg_fail "garbage QoS 2: expected PUBREC RC:135, got: $out"
out=$(mosquitto_pub -d -p "$P" -V mqttv5 -q 1 -u k-test-0001 -P pw -t kit/k-test-0001/measurement/raw -f "$W/ok.bin" 2>&1)
grep -qE 'received PUBACK \(Mid: 1, RC:(0|16)\)' <<<"$out" && kg_pass "valid capnp from mosquitto_pub: PUBACK success" ||
	kg_fail "valid capnp: $out"
ok_row() { [ "$(q "select count(*) from raw_measurements where id = '0badc0de-0bad-c0de-0bad-c0de0badc0de'")" = 1 ]; }
kg_wait_until 15 ok_row &&
	kg_pass "valid capnp row landed" || kg_fail "valid capnp: no row"
kg_eq "valid capnp row: kit, peripheral, value" "1|11|1.25" \
	"$(q "select kit_id, peripheral_id, value from raw_measurements where id = '0badc0de-0bad-c0de-0bad-c0de0badc0de'")"

# Counted by reason: the explicit rejections above (malformed 3: truncated, garbage twice).
declare -A exp=([malformed]=3 [bad_type]=1 [serial_mismatch]=1 [bad_time]=1 [bad_value]=1)
counted() {
	local s r
	s=$(kg_status_json) || return 1
	for r in "${reasons[@]}"; do
		[ "$(jq -r ".rejected.$r" <<<"$s")" = "$((base[$r] + exp[$r]))" ] || return 1
	done
}
kg_wait_until 10 counted && kg_pass "status JSON counts every capnp rejection by reason" ||
	kg_fail "status JSON: $(kg_status_json | jq -c .rejected) (baseline ${base[*]}, expected +${exp[*]})"

# ---------------------------------------------------------------- the simulator's own invalid messages, v5
status=$(kg_status_json) || kg_die "no status JSON"
for r in "${reasons[@]}"; do base[$r]=$(jq -r ".rejected.$r" <<<"$status"); done
"$SIM" -p "$P" --kits 2 --start-kit 5 --v5 --invalid-ratio 0.3 --raw-interval 0.5 --agg-interval 1 \
	--duration 3.2 >"$W/sim3.out" 2>"$W/sim3.err"
kg_eq "simulator --v5 --invalid-ratio exit status" 0 "$?"
ninv=$(grep -c '^sent .* invalid=' "$W/sim3.out")
ninv_agg=$(grep ' aggregate ' "$W/sim3.out" | grep -c ' invalid=')
[ "$ninv" -ge 5 ] && kg_pass "simulator sent $ninv invalid messages" || kg_fail "too few invalid messages: $ninv"
grep -q " invalid=$ninv completed=[0-9]* rejected=$ninv_agg dropped=0\$" "$W/sim3.out" &&
	kg_pass "every invalid QoS 2 aggregate got 0x87 ($ninv_agg)" || kg_fail "simulator summary: $(tail -1 "$W/sim3.out")"
for r in "${reasons[@]}"; do exp[$r]=$(grep -c " invalid=$r\$" "$W/sim3.out"); done
kg_wait_until 10 counted && kg_pass "status JSON counts the simulator's invalid messages by reason" ||
	kg_fail "status JSON: $(kg_status_json | jq -c .rejected), expected +$(for r in "${reasons[@]}"; do printf '%s=%s ' $r "${exp[$r]}"; done)"
vraw=$(grep ' raw ' "$W/sim3.out" | grep -vc ' invalid=')
vagg=$(grep ' aggregate ' "$W/sim3.out" | grep -vc ' invalid=')
v5_rows() {
	[ "$(q "select (select count(*) from raw_measurements where kit_id in (5,6)) || '/' ||
		(select count(*) from aggregate_measurements where kit_id in (5,6))")" = "$vraw/$vagg" ]
}
kg_wait_until 20 v5_rows && kg_pass "only the valid ones land: $vraw raw, $vagg aggregate" ||
	kg_fail "rows for kits 5,6: expected $vraw/$vagg, got $(q "select (select count(*) from raw_measurements where kit_id in (5,6)) || '/' || (select count(*) from aggregate_measurements where kit_id in (5,6))")"
ids=$(awk '/^sent .* invalid=/ {printf "%s'"'"'%s'"'"'", (n++ ? "," : ""), $4}' "$W/sim3.out")
kg_eq "no invalid id is a row" "0" "$(q "select (select count(*) from raw_measurements where id in ($ids)) +
	(select count(*) from aggregate_measurements where id in ($ids))")"

# ---------------------------------------------------------------- the subscriber saw exactly the valid ones
sleep 1
kill "$SUBPID" 2>/dev/null
wait "$SUBPID" 2>/dev/null
got=$(grep -c '' "$W/sub.out")
kg_eq "subscriber received every valid message and nothing else" "$((nraw + nagg + jraw + jagg + 1 + vraw + vagg))" "$got"
for f in truncated garbage id15 other time aggval; do
	hex=$(xxd -p "$W/$f.bin" | tr -d '\n')
	grep -q " $hex\$" "$W/sub.out" && kg_fail "subscriber received the invalid $f message" ||
		kg_pass "subscriber never received $f"
done
hex=$(xxd -p "$W/ok.bin" | tr -d '\n')
grep -q "^kit/k-test-0001/measurement/raw $hex\$" "$W/sub.out" && kg_pass "subscriber received the valid capnp payload verbatim" ||
	kg_fail "subscriber did not receive the valid capnp payload"

# ---------------------------------------------------------------- libcapnp stays off stderr
# A 10-byte packed message announcing 3 segments whose input ends early made libkj print ~350
# bytes (a stack trace) to the broker's stderr per message, unthrottled. Refused as malformed,
# counted, and nothing on stderr.
printf '\x01\x02\x10\x50\x00\x6c\x38\x7c\x62\x80' >"$W/kj.bin"
m0=$(kg_status_get .rejected.malformed)
for i in $(seq 200); do mosquitto_pub -p "$P" -u server -P pw -t kit/k-test-0001/measurement/raw -f "$W/kj.bin" 2>/dev/null; done
kg_wait_until 5 eval '[ "$(kg_status_get .rejected.malformed)" -ge $((m0 + 200)) ]' &&
	kg_pass "200 malformed multi-segment payloads counted as malformed" ||
	kg_fail "malformed: $(kg_status_get .rejected.malformed) (was $m0)"
if grep -qE 'capnp/|kj/|stack:' "$KG_BROKER_DIR/mosquitto.out"; then
	kg_fail "libcapnp wrote to the broker's stderr: $(grep -cE 'capnp/|kj/' "$KG_BROKER_DIR/mosquitto.out") line(s)"
else
	kg_pass "nothing from libcapnp on the broker's stderr"
fi

kg_finish
