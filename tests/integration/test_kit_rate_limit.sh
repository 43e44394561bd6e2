#!/usr/bin/env bash
# test_kit_rate_limit.sh -- kit_rate_limit 5:5: a kit publishing 10x over its limit on one MQTT v5
# connection gets its excess refused (PUBACK 0x87 on mosquitto 2.0, 0x97 quota exceeded on 2.1),
# stays connected, its refusals are counted as rate_limited in the status, /metrics and the per-kit
# status, only what passed reaches a subscriber; another kit has its own bucket.
# The broker: $KG_MOSQUITTO (lib.sh), so it runs on 2.0.x and 2.1.
# Not RUN_SERIAL: its bounds follow the time measured (at most burst + rate x the burst's duration;
# a pause only adds tokens), so a slow machine cannot make it fail.
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || kg_die "curl is needed"
HP=$(kg_free_port)
kg_broker_start ratelimit <<CONF
plugin_opt_sink none
plugin_opt_kit_rate_limit 5:5
plugin_opt_other_topics allow
plugin_opt_stats_interval_s 1
plugin_opt_http_listen 127.0.0.1:$HP
CONF
P=$KG_BROKER_PORT
H="http://127.0.0.1:$HP"
case "$(env ${KG_MOSQUITTO_LIBS:+LD_LIBRARY_PATH=$KG_MOSQUITTO_LIBS} "$KG_MOSQUITTO" -h 2>/dev/null | head -1)" in
	*"version 2.0."*) WANT=135; WHAT="0x87 (mosquitto 2.0)" ;;
	*) WANT=151; WHAT="0x97 quota exceeded (mosquitto 2.1)" ;;
esac

now_ms() { date +%s%3N; }
raw() { printf '{"id":"%s","kitSerial":"%s","datetime":%s,"peripheral":1,"quantityType":1,"value":%s}\n' \
	"$(cat /proc/sys/kernel/random/uuid)" "$1" "$(now_ms)" "$2"; }

SUB="$KG_BROKER_DIR/sub.out"
mosquitto_sub -p "$P" -u server -P pw -i rl-sub -t 'kit/+/measurement/raw' >"$SUB" 2>&1 &
SUBPID=$!
kg_on_exit "kill $SUBPID 2>/dev/null"
kg_wait_until 10 grep -q 'Sending SUBACK to rl-sub$' "$KG_BROKER_LOG" || kg_fail "subscriber: no SUBACK"

# 50 measurements as fast as one connection sends them (well under a second: 10x over 5/s)
for i in $(seq 1 50); do raw k-test-0001 "$i"; done >"$KG_BROKER_DIR/burst.txt"
t0=$(now_ms)
out=$(mosquitto_pub -d -p "$P" -V mqttv5 -q 1 -u k-test-0001 -P pw -i rl-kit1 -t kit/k-test-0001/measurement/raw \
	-l <"$KG_BROKER_DIR/burst.txt" 2>&1)
took=$(( $(now_ms) - t0 ))
ok=$(grep -cE 'received PUBACK .*RC:(0|16)\)' <<<"$out")
limited=$(grep -cE "received PUBACK .*RC:$WANT\)" <<<"$out")
kg_eq "every publish was answered on one connection" "50 1" "$((ok + limited)) $(grep -c 'received CONNACK' <<<"$out")"
# the burst of 5 plus 5/s over the burst's duration
max_ok=$(( 5 + (took * 5 + 999) / 1000 + 1 ))
[ "$ok" -ge 5 ] && [ "$ok" -le "$max_ok" ] && kg_pass "$ok of 50 passed in $took ms (burst 5, 5/s: at most $max_ok)" ||
	kg_fail "$ok of 50 passed in $took ms (want 5..$max_ok)"
[ "$limited" -gt 0 ] && kg_pass "$limited refused with $WHAT" || kg_fail "no PUBACK RC:$WANT: $out"
# the broker's own lines: 2.0 "Client rl-kit1 disconnected.", 2.1 "Client rl-kit1 [addr] disconnected."
grep -E 'rl-kit1' "$KG_BROKER_LOG" | grep -vE 'PUBLISH|PUBACK' | grep -A1 'Received DISCONNECT from rl-kit1' |
	grep -qE 'Client rl-kit1( \[[^]]*\])? disconnected' &&
	[ "$(grep -cE 'Client rl-kit1( \[[^]]*\])? disconnected' "$KG_BROKER_LOG")" = 1 ] &&
	kg_pass "the kit left by its own DISCONNECT (never disconnected by the limit)" ||
	kg_fail "rl-kit1 was disconnected by the broker: $(grep rl-kit1 "$KG_BROKER_LOG" | grep -vE 'PUBLISH|PUBACK')"

st() { kg_status_get .rejected.rate_limited; }
kg_wait_until 5 eval '[ "$(st)" = "$limited" ]' && kg_pass "status rejected.rate_limited = $limited" ||
	kg_fail "status rejected.rate_limited = $(st), want $limited"
kg_eq "status accepted = the ones that passed" "$ok" "$(kg_status_get .accepted)"
kg_wait_until 5 eval '[ "$(wc -l <"$SUB")" -ge "$ok" ]'
sleep 0.5
kg_eq "only what passed reached the subscriber" "$ok" "$(wc -l <"$SUB")"
metrics() { curl -s "$H/metrics"; }
kg_wait_until 5 eval 'metrics | grep -q "^kitgate_measurements_rejected_total{reason=\"rate_limited\"} $limited\$"' &&
	kg_pass "/metrics: rejected reason=rate_limited $limited" || kg_fail "/metrics: $(metrics | grep rate_limited)"
kit1() { mosquitto_sub -p "$P" -u server -P pw -t '$SYS/broker/kitgate/kits/k-test-0001' -C 1 -W 5 2>/dev/null; }
kg_wait_until 15 eval '[ "$(kit1 | jq -r .rejected.rate_limited)" = "$limited" ]' &&
	kg_pass "per-kit status: rejected.rate_limited = $limited" || kg_fail "per-kit status: $(kit1)"
kg_eq "API: the kit's rate_limited count" "$limited" \
	"$(curl -s "$H/api/v1/kits/k-test-0001" | jq -r '.rejected.rate_limited')"

# another kit: its own bucket, untouched by kit 1's
for i in 1 2 3; do raw k-test-0002 "$i"; done >"$KG_BROKER_DIR/k2.txt"
out=$(mosquitto_pub -d -p "$P" -V mqttv5 -q 1 -u k-test-0002 -P pw -t kit/k-test-0002/measurement/raw -l <"$KG_BROKER_DIR/k2.txt" 2>&1)
kg_eq "kit 2: its 3 measurements all passed" 3 "$(grep -cE 'received PUBACK .*RC:(0|16)\)' <<<"$out")"
# kit 1 again after a pause: its bucket refilled
sleep 1.2
out=$(mosquitto_pub -d -p "$P" -V mqttv5 -q 1 -u k-test-0001 -P pw -t kit/k-test-0001/measurement/raw -m "$(raw k-test-0001 99)" 2>&1)
grep -qE 'received PUBACK .*RC:(0|16)\)' <<<"$out" && kg_pass "kit 1 passes again after a pause" || kg_fail "kit 1 after a pause: $out"
# a service user publishing on a kit's topic is not that kit: no limit
for i in $(seq 1 20); do raw k-test-0003 "$i"; done >"$KG_BROKER_DIR/svc.txt"
out=$(mosquitto_pub -d -p "$P" -V mqttv5 -q 1 -u server -P pw -t kit/k-test-0003/measurement/raw -l <"$KG_BROKER_DIR/svc.txt" 2>&1)
kg_eq "a service user's 20 publishes on a kit topic are not limited" 20 "$(grep -cE 'received PUBACK .*RC:(0|16)\)' <<<"$out")"
kg_finish
