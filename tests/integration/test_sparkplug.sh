#!/usr/bin/env bash
# test_sparkplug.sh -- Sparkplug B on bridge routes: NBIRTH/NDATA/DDATA decoded to JSON in Kafka, payload timestamp as Kafka timestamp, garbage forwarded and counted, raw mode.
. "$(dirname "$0")/lib.sh"

command -v kcat >/dev/null || kg_die "kcat is not installed"
spb="$KG_BUILD_DIR/tests/spb_payload"
[ -x "$spb" ] || kg_die "helper not built: $spb"
dir="$KG_SCRATCH/$KG_TEST_NAME"
rm -rf "$dir"
mkdir -p "$dir"
for k in nbirth ndata ddata; do "$spb" "$k" >"$dir/$k.bin" || kg_die "spb_payload $k failed"; done
printf '\xff\xff\xff' >"$dir/garbage.bin"

kg_kafka_start --brokers 1 --partitions 1
kg_broker_start spb <<EOF2
plugin_opt_sink none
plugin_opt_kafka_brokers $KG_KAFKA_BOOTSTRAP
plugin_opt_bridge_topics spBv1.0/#
plugin_opt_ignored_attributes spBv1.0/+/DDATA/#=seq
plugin_opt_other_topics allow
EOF2

pubf() { mosquitto_pub -p "$KG_BROKER_PORT" -u server -P pw -q 1 -t "$1" -f "$2" || kg_fail "publish on $1 failed"; }

# Prints "timestamp \t value" of the one message of Kafka topic $1 (waits up to 30 s).
fetch() {
	local i out
	for i in $(seq 1 150); do
		out=$(timeout 20 kcat -C -b "$KG_KAFKA_BOOTSTRAP" -t "$1" -o beginning -e -q -f '%T\t%s\n' 2>/dev/null)
		[ -n "$out" ] && { printf '%s\n' "$out"; return 0; }
		sleep 0.2
	done
	return 1
}
# The value of the one message of Kafka topic $1 as hex.
fetch_hex() {
	local i out
	for i in $(seq 1 150); do
		out=$(timeout 20 kcat -C -b "$KG_KAFKA_BOOTSTRAP" -t "$1" -o beginning -e -q -c 1 -f '%s' 2>/dev/null | od -An -tx1 | tr -d ' \n')
		[ -n "$out" ] && { echo "$out"; return 0; }
		sleep 0.2
	done
	return 1
}
hex() { od -An -tx1 "$1" | tr -d ' \n'; }
norm() { jq -cS . 2>/dev/null <<<"$1" || echo "not JSON: $1"; }

pubf spBv1.0/plant/NBIRTH/edge1 "$dir/nbirth.bin"
pubf spBv1.0/plant/NDATA/edge1 "$dir/ndata.bin"
pubf spBv1.0/plant/DDATA/edge1/dev1 "$dir/ddata.bin"
pubf spBv1.0/plant/DDATA/edge1/bad "$dir/garbage.bin"
mosquitto_pub -p "$KG_BROKER_PORT" -u server -P pw -q 1 -t spBv1.0/STATE/host1 \
	-m '{"online":true,"timestamp":1700000004000}' || kg_fail "publish STATE failed"

# 1. NBIRTH: JSON with signed Int16, Int8Array; Kafka timestamp = payload timestamp
check() { # topic, want JSON, want timestamp
	local line
	if line=$(fetch "$1"); then
		kg_eq "$1: one message" 1 "$(grep -c '' <<<"$line")"
		kg_eq "$1: Kafka timestamp = payload timestamp" "$3" "$(cut -f1 <<<"$line")"
		kg_eq "$1: decoded JSON" "$(norm "$2")" "$(norm "$(cut -f2- <<<"$line")")"
	else
		kg_fail "nothing arrived in Kafka topic $1"
	fi
}
check spBv1.0_plant_NBIRTH_edge1 '{"timestamp":1700000001000,"seq":0,"metrics":[
	{"name":"bdSeq","datatype":8,"value":0},
	{"name":"Node Control/Rebirth","datatype":11,"value":false},
	{"name":"temp","alias":1,"datatype":2,"value":-5},
	{"name":"name","datatype":12,"value":"edge-1"},
	{"name":"arr","datatype":22,"value":[-1,2]}]}' 1700000001000
# 2. NDATA: by alias, a double, a negative Int64
check spBv1.0_plant_NDATA_edge1 '{"timestamp":1700000002000,"seq":1,"metrics":[
	{"alias":1,"datatype":2,"value":-7},
	{"name":"pressure","datatype":10,"value":1.25},
	{"name":"big","datatype":4,"value":-123456}]}' 1700000002000
# 3. DDATA: float, bytes as base64, is_null; ignored_attributes removed "seq"
check spBv1.0_plant_DDATA_edge1_dev1 '{"timestamp":1700000003000,"metrics":[
	{"name":"dev/temp","datatype":9,"value":-1.5},
	{"name":"dev/blob","datatype":17,"value":"aGk="},
	{"name":"dev/nothing","datatype":3,"is_null":true,"value":null}]}' 1700000003000
# 4. STATE is JSON: forwarded as is, its timestamp used
check spBv1.0_STATE_host1 '{"online":true,"timestamp":1700000004000}' 1700000004000

# 5. garbage: forwarded byte for byte, counted, logged
if got=$(fetch_hex spBv1.0_plant_DDATA_edge1_bad); then
	kg_eq "garbage forwarded unchanged" "$(hex "$dir/garbage.bin")" "$got"
else
	kg_fail "nothing arrived in Kafka topic spBv1.0_plant_DDATA_edge1_bad"
fi
status_is() { [ "$(kg_status_get "$1" 2>/dev/null)" = "$2" ]; }
kg_wait_until 10 status_is .bridge.undecodable 1
kg_eq "status: bridge.undecodable" 1 "$(kg_status_get .bridge.undecodable)"
kg_wait_until 10 status_is .bridge.forwarded 5
kg_eq "status: bridge.forwarded (undecodable ones too)" 5 "$(kg_status_get .bridge.forwarded)"
kg_wait_until 10 kg_broker_log_has 'is not a valid Sparkplug B payload'
kg_broker_log_has 'spBv1.0/plant/DDATA/edge1/bad.*is not a valid Sparkplug B payload' &&
	kg_pass "undecodable payload logged" || kg_fail "no log line for the undecodable payload"

# 6. MQTT subscribers still get the protobuf bytes
mosquitto_sub -p "$KG_BROKER_PORT" -u server -P pw -t spBv1.0/plant/NDATA/edge1 -C 1 -W 10 -N >"$dir/sub.out" 2>&1 &
sub=$!
sleep 0.5
pubf spBv1.0/plant/NDATA/edge1 "$dir/ndata.bin"
wait "$sub"
kg_eq "MQTT subscribers receive the protobuf payload" "$(hex "$dir/ndata.bin")" "$(hex "$dir/sub.out")"
kg_broker_stop

# 7. bridge_sparkplug raw: the bytes go to Kafka, nothing is counted
kg_broker_start spbraw <<EOF2
plugin_opt_sink none
plugin_opt_kafka_brokers $KG_KAFKA_BOOTSTRAP
plugin_opt_bridge_topics spBv1.0/#
plugin_opt_bridge_sparkplug raw
plugin_opt_other_topics allow
EOF2
pubf spBv1.0/raw/NDATA/edge1 "$dir/ndata.bin"
if got=$(fetch_hex spBv1.0_raw_NDATA_edge1); then
	kg_eq "raw: protobuf bytes forwarded" "$(hex "$dir/ndata.bin")" "$got"
else
	kg_fail "nothing arrived in Kafka topic spBv1.0_raw_NDATA_edge1"
fi
kg_wait_until 10 status_is .bridge.forwarded 1
kg_eq "raw: nothing undecodable" 0 "$(kg_status_get .bridge.undecodable)"
kg_broker_stop
kg_finish
