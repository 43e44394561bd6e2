#!/usr/bin/env bash
# test_bridge_routes.sh -- bridge_topics: MQTT topics forwarded to Kafka with topic mapping, attribute filtering and timestamps.
. "$(dirname "$0")/lib.sh"

command -v kcat >/dev/null || kg_die "kcat is not installed"
dir="$KG_SCRATCH/$KG_TEST_NAME"
rm -rf "$dir"
mkdir -p "$dir"

kg_kafka_start --brokers 1 --partitions 1
kg_broker_start bridge <<EOF
plugin_opt_sink none
plugin_opt_kafka_brokers $KG_KAFKA_BOOTSTRAP
plugin_opt_bridge_topics factory/#
plugin_opt_bridge_topics plant/+/status
plugin_opt_ignored_attributes factory/#=meta.debug,secret
plugin_opt_ignored_attributes factory/line1/#=extra
plugin_opt_timestamp_attribute ts
plugin_opt_other_topics allow
EOF

pub() { mosquitto_pub -p "$KG_BROKER_PORT" -u server -P pw -q 1 -t "$1" -m "$2" || kg_fail "publish on $1 failed"; }

# Prints "key \t timestamp \t value" lines of Kafka topic $1 (waits up to 30 s for the first).
fetch() {
	local i out
	for i in $(seq 1 150); do
		out=$(timeout 20 kcat -C -b "$KG_KAFKA_BOOTSTRAP" -t "$1" -o beginning -e -q -f '%k\t%T\t%s\n' 2>/dev/null)
		[ -n "$out" ] && { printf '%s\n' "$out"; return 0; }
		sleep 0.2
	done
	return 1
}

long="factory/$(printf 'x%.0s' $(seq 1 250))"
t0=$(($(date +%s%N) / 1000000))
pub office/temp '{"v":1}'                                  # not bridged
pub "$long" '{"v":1}'                                      # name too long: refused
pub factory/line1/temp '{"ts":1700000000123,"v":21.5,"secret":"s3cr3t","meta":{"debug":true,"site":"a"},"extra":[1],"list":[{"secret":1}]}'
pub factory/line2/hum '{ "v" : 40,  "meta" : "debug" }'    # nothing to remove: bytes kept
pub factory/line2/raw 'hello, world'                       # not JSON
pub factory/line2/arr '[ {"secret":1}, 2 ]'                # JSON, not an object
pub "factory/hall 1/t=ä" '{"secret":1,"ts":-5}'           # illegal characters; negative ts ignored
pub plant/p1/status '{"ts":1700000000999.5,"ok":true}'     # non-integral ts ignored
pub plant/p1/status/x 'deeper: not bridged'
t1=$(($(date +%s%N) / 1000000))

# 1. mapped name, filtered value, Kafka timestamp from "ts", key = MQTT topic
if line=$(fetch factory_line1_temp); then
	kg_eq "factory/line1/temp: one message" 1 "$(grep -c '' <<<"$line")"
	kg_eq "factory/line1/temp: key is the MQTT topic" factory/line1/temp "$(cut -f1 <<<"$line")"
	kg_eq "factory/line1/temp: Kafka timestamp = payload ts" 1700000000123 "$(cut -f2 <<<"$line")"
	kg_eq "factory/line1/temp: secret, meta.debug and extra removed (two matching rules)" \
		'{"list":[{"secret":1}],"meta":{"site":"a"},"ts":1700000000123,"v":21.5}' "$(cut -f3- <<<"$line" | jq -cS .)"
else
	kg_fail "nothing arrived in Kafka topic factory_line1_temp"
fi

# 2. JSON object with nothing to remove: byte-identical; timestamp = produce time
if line=$(fetch factory_line2_hum); then
	kg_eq "factory/line2/hum: value unchanged byte for byte" '{ "v" : 40,  "meta" : "debug" }' "$(cut -f3- <<<"$line")"
	ts=$(cut -f2 <<<"$line")
	[ "$ts" -ge "$t0" ] && [ "$ts" -le "$((t1 + 60000))" ] && kg_pass "factory/line2/hum: timestamp is the produce time ($ts)" ||
		kg_fail "factory/line2/hum: timestamp $ts not within [$t0, $t1+60s]"
else
	kg_fail "nothing arrived in Kafka topic factory_line2_hum"
fi

# 3. non-JSON and non-object payloads forwarded unchanged
line=$(fetch factory_line2_raw) && kg_eq "non-JSON payload unchanged" 'hello, world' "$(cut -f3- <<<"$line")" ||
	kg_fail "nothing arrived in Kafka topic factory_line2_raw"
line=$(fetch factory_line2_arr) && kg_eq "JSON array unchanged" '[ {"secret":1}, 2 ]' "$(cut -f3- <<<"$line")" ||
	kg_fail "nothing arrived in Kafka topic factory_line2_arr"

# 4. illegal characters become '_' (one per character); unusable ts ignored
if line=$(fetch factory_hall_1_t__); then
	kg_eq "illegal characters mapped: value filtered" '{"ts":-5}' "$(cut -f3- <<<"$line")"
	ts=$(cut -f2 <<<"$line")
	[ "$ts" -ge "$t0" ] && kg_pass "negative ts is not the Kafka timestamp ($ts)" || kg_fail "negative ts used: $ts"
else
	kg_fail "nothing arrived in Kafka topic factory_hall_1_t__"
fi
if line=$(fetch plant_p1_status); then
	kg_eq "plant/+/status: one message (plant/p1/status/x not bridged)" 1 "$(grep -c '' <<<"$line")"
	ts=$(cut -f2 <<<"$line")
	[ "$ts" != 1700000000999 ] && [ "$ts" -ge "$t0" ] && kg_pass "non-integral ts ignored ($ts)" || kg_fail "non-integral ts used: $ts"
else
	kg_fail "nothing arrived in Kafka topic plant_p1_status"
fi

# 5. nothing else reached Kafka: no office_temp, no plant_p1_status_x, no refused long name
topics=$(timeout 20 kcat -L -b "$KG_KAFKA_BOOTSTRAP" -J | jq -r '.topics[].topic' | sort)
kg_eq "Kafka topics created by the bridge" \
	"$(printf '%s\n' aggregate factory_hall_1_t__ factory_line1_temp factory_line2_arr factory_line2_hum factory_line2_raw plant_p1_status raw | sort)" \
	"$topics"
status_is() { [ "$(kg_status_get "$1" 2>/dev/null)" = "$2" ]; }
kg_wait_until 10 status_is .bridge.forwarded 6
kg_eq "status: bridged messages forwarded" 6 "$(kg_status_get .bridge.forwarded)"
kg_wait_until 10 status_is .bridge.refused_topic 1
kg_eq "status: over-long topic refused" 1 "$(kg_status_get .bridge.refused_topic)"

# 6. the MQTT side is unaffected: subscribers still get the original payload
mosquitto_sub -p "$KG_BROKER_PORT" -u server -P pw -t factory/line1/temp -C 1 -W 10 >"$dir/sub.out" 2>&1 &
sub=$!
sleep 0.5
pub factory/line1/temp '{"secret":"s","v":1}'
wait "$sub"
kg_eq "MQTT subscribers receive the unfiltered payload" '{"secret":"s","v":1}' "$(cat "$dir/sub.out")"

kg_broker_stop
kg_finish
