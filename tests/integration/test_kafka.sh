#!/usr/bin/env bash
# test_kafka.sh -- sink kafka: kit measurements reach the mock Kafka cluster exactly once, keyed by serial, in per-kit order, also across an outage.
. "$(dirname "$0")/lib.sh"

command -v kcat >/dev/null || kg_die "kcat is not installed"
LOADGEN="$KG_TOOLS/kitgate-loadgen"
[ -x "$LOADGEN" ] || kg_die "not built: $LOADGEN"
dir="$KG_SCRATCH/$KG_TEST_NAME"
rm -rf "$dir"
mkdir -p "$dir"

kg_kafka_start --brokers 3 --partitions 4
kg_broker_start kafka <<EOF
plugin_opt_sink kafka
plugin_opt_kafka_brokers $KG_KAFKA_BOOTSTRAP
plugin_opt_other_topics allow
EOF

# Dumps Kafka topic $1 as "key \t headers \t partition \t offset \t value" lines into $2.
dump() {
	timeout 60 kcat -C -b "$KG_KAFKA_BOOTSTRAP" -t "$1" -o beginning -e -q \
		-f '%k\t%h\t%p\t%o\t%s\n' >"$2" 2>"$2.err"
}

# Distinct measurement ids in a dump file.
distinct_ids() { cut -f5 "$1" | jq -r '.id' 2>/dev/null | sort -u | wc -l; }

# True when topic raw holds at least $1 distinct ids.
raw_has() {
	dump raw "$dir/raw.tsv" || return 1
	[ "$(distinct_ids "$dir/raw.tsv")" -ge "$1" ]
}

# Checks a dump against the acked ids: exactly once, key/header/kitSerial, per-kit order.
check_dump() {
	local what=$1 file=$2 acked=$3 n_acked n_lines n_distinct missing bad
	n_acked=$(sort -u "$acked" | wc -l)
	n_lines=$(grep -c '' "$file")
	n_distinct=$(distinct_ids "$file")
	missing=$(comm -23 <(sort -u "$acked") <(cut -f5 "$file" | jq -r '.id' | sort -u) | wc -l)
	kg_eq "$what: every acked measurement is in Kafka (missing ids)" 0 "$missing"
	kg_eq "$what: messages in Kafka = distinct ids (no duplicates)" "$n_distinct" "$n_lines"
	kg_eq "$what: distinct ids in Kafka = acked" "$n_acked" "$n_distinct"
	# key == kitSerial == the topic's serial, header mqtt_topic = the MQTT topic
	bad=$(jq -Rr 'split("\t") | select(
			(.[4] | fromjson) as $v
			| .[0] == "" or $v.kitSerial != .[0]
			or .[1] != "mqtt_topic=kit/\(.[0])/measurement/raw") | .[0]' "$file" | wc -l)
	kg_eq "$what: key = kitSerial, header mqtt_topic = kit/<serial>/measurement/raw (bad lines)" 0 "$bad"
	# per kit: one partition, value (the kit's sequence number) strictly increasing with offset
	bad=$(jq -Rn '[inputs | split("\t") | {k: .[0], p: (.[2] | tonumber), o: (.[3] | tonumber),
			s: (.[4] | fromjson | .value)}]
		| group_by(.k)
		| map(select((map(.p) | unique | length) != 1
			or ((sort_by(.o) | map(.s)) as $s | $s != ($s | unique))) | .[0].k)
		| length' "$file")
	kg_eq "$what: kits whose messages are out of order or split across partitions" 0 "$bad"
}

# ---- 1. 3 kits x 300 measurements, Kafka up all the time
"$LOADGEN" -p "$KG_BROKER_PORT" --kits 3 --messages 900 --quiet --acked-log "$dir/acked1" >"$dir/loadgen1.out" 2>&1
kg_eq "loadgen 1 exit status" 0 "$?"
kg_eq "loadgen 1 acked every message" 900 "$(sort -u "$dir/acked1" | wc -l)"
if kg_wait_until 60 raw_has 900; then
	kg_pass "900 measurements arrived in topic raw"
else
	kg_fail "only $(distinct_ids "$dir/raw.tsv") of 900 measurements in topic raw after 60 s"
fi
sleep 2 # late duplicates would show up now
dump raw "$dir/raw1.tsv"
check_dump "steady" "$dir/raw1.tsv" "$dir/acked1"
value=$(head -n 1 "$dir/raw1.tsv" | cut -f5)
kg_eq "value is the canonical JSON (id, kitSerial, datetime, peripheral, quantityType, value)" \
	'["datetime","id","kitSerial","peripheral","quantityType","value"]' "$(jq -c 'keys' <<<"$value")"
kg_eq "status: sink kind" kafka "$(kg_status_get .sink.kind)"

# ---- 2. all Kafka brokers down for 20 s while kits k-test-0004..6 publish
"$LOADGEN" -p "$KG_BROKER_PORT" --kits 3 --start-kit 4 --duration 28 --rate 150 --quiet \
	--acked-log "$dir/acked2" >"$dir/loadgen2.out" 2>&1 &
lg=$!
sleep 3
kg_kafka_cmd "down all"
echo "all Kafka brokers down for 20 s"
sleep 20
kg_kafka_cmd "up all"
wait "$lg"
kg_eq "loadgen 2 exit status" 0 "$?"
n2=$(sort -u "$dir/acked2" | wc -l)
[ "$n2" -gt 2000 ] && kg_pass "loadgen 2 acked $n2 messages" || kg_fail "loadgen 2 acked only $n2 messages"
grep -q 'ok down all' "$KG_KAFKA_DIR/out" && grep -q 'ok up all' "$KG_KAFKA_DIR/out" &&
	kg_pass "kafka-mock took the down/up commands" || kg_fail "kafka-mock did not answer down/up"
cat "$dir/acked1" "$dir/acked2" >"$dir/acked_all"
total=$(sort -u "$dir/acked_all" | wc -l)
if kg_wait_until 120 raw_has "$total"; then
	kg_pass "all $total accepted measurements delivered after the outage"
else
	kg_fail "only $(distinct_ids "$dir/raw.tsv") of $total measurements in topic raw 120 s after the outage"
fi
sleep 2
dump raw "$dir/raw2.tsv"
check_dump "outage" "$dir/raw2.tsv" "$dir/acked_all"
kg_eq "status: every accepted message delivered" "$total" "$(kg_status_get .sink.delivered)"

kg_broker_stop
kg_finish
