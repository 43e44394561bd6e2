#!/usr/bin/env bash
# test_clientids.sh -- issue 19 item 1, end to end: a kit makes 70,000 MQTT v5 CONNECT/DISCONNECT
# cycles with fresh client ids (more than the 65,536 ids the old ownership table held), then
# presents an offline victim kit's client id, whose persistent session holds three queued QoS 1
# commands: refused, and the victim still gets its commands (before: the churn evicted the
# victim's id, the attacker took the session and the victim was refused).
. "$(dirname "$0")/lib.sh"

CHURN="$KG_BUILD_DIR/tests/idchurn"
[ -x "$CHURN" ] || kg_die "not built: $CHURN"
: "${KG_CHURN_CYCLES:=70000}"

kg_broker_start clientids <<CONF
plugin_opt_sink none
plugin_opt_other_topics allow
CONF
P=$KG_BROKER_PORT

# the victim: an MQTT v5 persistent session (expiry 1 h) subscribed to its commands, then offline
mosquitto_sub -p "$P" -V mqttv5 -c -x 3600 -q 1 -u k-test-0002 -P pw -i victim-id -t kit/k-test-0002/cmd -W 1 >/dev/null 2>&1
kg_wait_until 10 kg_broker_log_has "Client victim-id (closed its connection|disconnected)" || true
for c in 1 2 3; do mosquitto_pub -p "$P" -q 1 -u server -P pw -t kit/k-test-0002/cmd -m "queued-$c"; done

# the attacker churns fresh ids
s=$(date +%s%N)
out=$("$CHURN" "$P" k-test-0001 pw "$KG_CHURN_CYCLES" 4)
rc=$?
echo "INFO: $out in $(( ($(date +%s%N) - s) / 1000000 )) ms"
[ "$rc" = 0 ] && kg_pass "the attacker's $KG_CHURN_CYCLES fresh ids were all admitted" || kg_fail "churn: $out"
sleep 1.2
ev=$(kg_status_get .clientid_evicted)
[ "${ev:-0}" -ge $((KG_CHURN_CYCLES - 16)) ] 2>/dev/null &&
	kg_pass "the attacker's own ids were forgotten past its 16 (clientid_evicted $ev)" ||
	kg_fail "clientid_evicted is '$ev' after $KG_CHURN_CYCLES fresh ids"

# the takeover attempt with the victim's id and a persistent session
out=$(mosquitto_sub -p "$P" -V mqttv5 -c -x 3600 -q 1 -u k-test-0001 -P pw -i victim-id -t kit/k-test-0001/cmd -W 2 2>&1)
grep -qi "refused\|not authori" <<<"$out" && kg_pass "the attacker is refused the victim's id ($out)" ||
	kg_fail "the attacker took the victim's id: $out"
got=$(mosquitto_sub -p "$P" -V mqttv5 -c -x 3600 -q 1 -u k-test-0002 -P pw -i victim-id -t kit/k-test-0002/cmd -C 3 -W 5 2>&1)
kg_eq "the victim reconnects and gets its three queued commands" "queued-1 queued-2 queued-3" "$(echo $got)"

# a kit cannot lock a service user out of its fixed id: the service (v3.1.1, clean session) leaves,
# a kit claims the id and stays connected, the service comes back with it and gets in
mosquitto_pub -p "$P" -V mqttv311 -u server -P pw -i astroplant-mqtt-ingest -t kit/k-test-0003/x -m hi
mosquitto_sub -p "$P" -V mqttv5 -u k-test-0003 -P pw -i astroplant-mqtt-ingest -t kit/k-test-0003/# >/dev/null 2>&1 &
squat=$!
kg_wait_until 10 grep -q 'Sending SUBACK to astroplant-mqtt-ingest$' "$KG_BROKER_LOG" || kg_fail "the kit did not claim the id"
out=$(mosquitto_pub -d -p "$P" -V mqttv311 -q 1 -u server -P pw -i astroplant-mqtt-ingest -t kit/k-test-0003/x -m back 2>&1)
grep -q 'received PUBACK' <<<"$out" && kg_pass "the service user gets its fixed id back from a kit" ||
	kg_fail "a kit locked the service user out of its id: $out"
kill "$squat" 2>/dev/null; wait "$squat" 2>/dev/null

kg_finish
