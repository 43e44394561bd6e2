#!/usr/bin/env bash
# test_wills.sh -- wills on measurement topics are validated like any publish (issue 9; moved out of
# test_hardening.sh so that the other brokers run it on its own, issue 18): a kit's invalid
# retained will is never delivered to a kit/# subscriber nor retained, and is counted as malformed;
# a valid will is delivered AND stored in PostgreSQL.
. "$(dirname "$0")/lib.sh"

DB=wills
URL=$(kg_db_create $DB 10) || kg_die "cannot create database $DB"
kg_broker_start wills <<CONF
plugin_opt_sink postgres
plugin_opt_database_url $URL
plugin_opt_other_topics allow
CONF
P=$KG_BROKER_PORT

uuid() { cat /proc/sys/kernel/random/uuid; }
now_ms() { date +%s%3N; }
raw() { # raw ID SERIAL MS PERIPHERAL QT VALUE
	printf '{"id":"%s","kitSerial":"%s","datetime":%s,"peripheral":%s,"quantityType":%s,"value":%s}' "$@"
}
rows() { kg_psql $DB "select count(*) from raw_measurements where id = '$1'"; }
row_is() { [ "$(rows "$1")" = "$2" ]; }
status() { kg_status_get "$1"; }
# waits until the client id has had its SUBACK (mosquitto logs "Sending SUBACK to <id>")
suback_seen() { kg_wait_until 10 grep -q "Sending SUBACK to $1\$" "$KG_BROKER_LOG"; }
RAW1=kit/k-test-0001/measurement/raw

# A kit with an invalid retained will dies (kill -9: the broker sees the socket close and sends the
# will). No kit/# subscriber may get it, nothing may be retained, and it is counted as malformed.
# The watcher takes the first message it gets: once the broker has judged the will (counted), a
# service user publishes a sentinel command to the kit; a delivered will would have reached the
# watcher before it (one broker thread, delivery in order), so the watcher ends on the sentinel,
# not on a timer. (A command, not a measurement: a measurement would leave retained statistics on
# kit/k-test-0001/stats/..., which watcher 2's kit/# would get first.)
mal0=$(status .rejected.malformed)
mosquitto_sub -p "$P" -V mqttv5 -u server -P pw -i watch-1 -t 'kit/#' -v -C 1 -W 30 >"$KG_BROKER_DIR/watch1" 2>&1 &
W1=$!
suback_seen watch-1 || kg_fail "watcher 1 has no SUBACK"
mosquitto_sub -p "$P" -V mqttv5 -u k-test-0001 -P pw -i will-bad -t kit/k-test-0001/cmd \
	--will-topic $RAW1 --will-payload 'garbage{' --will-qos 1 --will-retain >/dev/null 2>&1 &
K=$!
suback_seen will-bad || kg_fail "kit with the invalid will has no SUBACK"
kill -KILL $K; wait $K 2>/dev/null
# (2.1 logs "Client will-bad [127.0.0.1:port] disconnected: connection closed by client.")
kg_wait_until 10 grep -q "Client will-bad closed its connection\|Socket error on client will-bad\|Client will-bad \(\[[^]]*\] \)\?disconnected" "$KG_BROKER_LOG" ||
	kg_fail "the broker did not notice the kit's death"
counted() { [ "$(status .rejected.malformed)" -gt "$mal0" ]; }
kg_wait_until 10 counted && kg_pass "invalid will counted as malformed" || kg_fail "invalid will not counted (malformed $mal0 -> $(status .rejected.malformed))"
id_sentinel=$(uuid)
mosquitto_pub -p "$P" -V mqttv5 -q 1 -u server -P pw -t kit/k-test-0001/cmd -m "sentinel $id_sentinel" ||
	kg_fail "sentinel publish failed"
wait $W1
grep -q garbage "$KG_BROKER_DIR/watch1" && kg_fail "invalid will delivered to a kit/# subscriber: $(cat "$KG_BROKER_DIR/watch1")" ||
	kg_pass "invalid will not delivered to a kit/# subscriber"
grep -q "$id_sentinel" "$KG_BROKER_DIR/watch1" && kg_pass "the kit/# watcher got the sentinel published after the will" ||
	kg_fail "the kit/# watcher did not get the sentinel: $(cat "$KG_BROKER_DIR/watch1")"
got=$(mosquitto_sub -p "$P" -V mqttv5 -u server -P pw -t $RAW1 -W 2 2>/dev/null)
[ -z "$got" ] && kg_pass "invalid will not retained" || kg_fail "invalid will retained: $got"

# A valid will: delivered to subscribers and stored in PostgreSQL.
id_will=$(uuid)
mosquitto_sub -p "$P" -V mqttv5 -u server -P pw -i watch-2 -t 'kit/#' -v -C 1 -W 10 >"$KG_BROKER_DIR/watch2" 2>&1 &
W2=$!
suback_seen watch-2 || kg_fail "watcher 2 has no SUBACK"
mosquitto_sub -p "$P" -V mqttv5 -u k-test-0001 -P pw -i will-good -t kit/k-test-0001/cmd \
	--will-topic $RAW1 --will-payload "$(raw "$id_will" k-test-0001 "$(now_ms)" 11 1 42.5)" --will-qos 1 >/dev/null 2>&1 &
K=$!
suback_seen will-good || kg_fail "kit with the valid will has no SUBACK"
kill -KILL $K; wait $K 2>/dev/null
wait $W2
grep -q "$id_will" "$KG_BROKER_DIR/watch2" && kg_pass "valid will delivered" || kg_fail "valid will not delivered: $(cat "$KG_BROKER_DIR/watch2")"
kg_wait_until 15 row_is "$id_will" 1 && kg_pass "valid will stored in PostgreSQL" || kg_fail "valid will: no row after 15 s"
kg_eq "valid will's value" "42.5" "$(kg_psql $DB "select value from raw_measurements where id = '$id_will'")"

kg_broker_stop wills
kg_finish
