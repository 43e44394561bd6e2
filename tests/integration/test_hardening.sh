#!/usr/bin/env bash
# test_hardening.sh -- issue 9's findings against a live broker with stock clients: shared
# subscriptions are judged by their filter, no kit disconnects another or takes over its session by
# presenting its client id, duplicate JSON keys are malformed, look-alike measurement topics are
# refused, an empty retained publish clears, and (on a tiny tmpfs, when mount is permitted) no PUBACK
# without durability. (1. wills on measurement topics: test_wills.sh.)
. "$(dirname "$0")/lib.sh"

DB=hardening
URL=$(kg_db_create $DB 10) || kg_die "cannot create database $DB"
kg_broker_start hard <<CONF
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
pub5() { mosquitto_pub -d -p "$P" -V mqttv5 -q 1 -u "$1" -P pw -t "$2" -m "$3" "${@:4}" 2>&1; }
pub5n() { mosquitto_pub -d -p "$P" -V mqttv5 -q 1 -u "$1" -P pw -t "$2" -n "${@:3}" 2>&1; } # empty payload
rows() { kg_psql $DB "select count(*) from raw_measurements where id = '$1'"; }
row_is() { [ "$(rows "$1")" = "$2" ]; }
status() { kg_status_get "$1"; }
# waits until the client id has had its SUBACK (mosquitto logs "Sending SUBACK to <id>")
suback_seen() { kg_wait_until 10 grep -q "Sending SUBACK to $1\$" "$KG_BROKER_LOG"; }
RAW1=kit/k-test-0001/measurement/raw

# ---------------------------------------------------------------- 2. shared subscriptions
# A kit may not join a group on another kit's (or every kit's) topics; it may share its own.
out=$(mosquitto_sub -d -p "$P" -V mqttv5 -u k-test-0002 -P pw -i share-kit -t '$share/workers/kit/+/measurement/raw' -W 2 2>&1)
grep -qE 'Subscribed \(mid: [0-9]+\): 135' <<<"$out" && kg_pass "kit: \$share/workers/kit/+/measurement/raw refused (0x87)" ||
	kg_fail "kit joined a group on other kits' topics: $out"
out=$(mosquitto_sub -d -p "$P" -V mqttv5 -u k-test-0002 -P pw -t '$share/own/kit/k-test-0002/#' -W 1 2>&1)
grep -qE 'Subscribed \(mid: [0-9]+\): 0' <<<"$out" && kg_pass "kit: may share its own kit/k-test-0002/#" ||
	kg_fail "kit could not share its own topics: $out"
# the service consumer gets all 20 of 20 even with a kit trying to join its group
mosquitto_sub -p "$P" -V mqttv5 -u server -P pw -i share-svc -t '$share/workers/kit/+/measurement/raw' -q 1 -C 20 -W 20 >"$KG_BROKER_DIR/shared" 2>&1 &
S1=$!
suback_seen share-svc || kg_fail "service consumer has no SUBACK"
mosquitto_sub -p "$P" -V mqttv5 -u k-test-0002 -P pw -i share-kit2 -t '$share/workers/kit/+/measurement/raw' -q 1 -W 12 >/dev/null 2>&1 &
S2=$!
suback_seen share-kit2 || kg_fail "kit's shared subscription got no SUBACK"
for i in $(seq 1 20); do
	mosquitto_pub -p "$P" -V mqttv5 -q 1 -u k-test-0001 -P pw -t $RAW1 -m "$(raw "$(uuid)" k-test-0001 "$(now_ms)" 11 1 $i)"
done
wait $S1
kg_eq "service consumer of \$share/workers/kit/+/measurement/raw got all of 20" 20 "$(grep -c '"id"' "$KG_BROKER_DIR/shared")"
kill $S2 2>/dev/null; wait $S2 2>/dev/null

# ---------------------------------------------------------------- 3. client-id takeover
# Kit A online with a persistent session; kit B presents A's client id: refused, A stays.
mosquitto_sub -p "$P" -V mqttv311 -c -q 1 -u k-test-0001 -P pw -i kit-a-id -t kit/k-test-0001/cmd -v >"$KG_BROKER_DIR/kita1" 2>&1 &
A=$!
suback_seen kit-a-id || kg_fail "kit A has no SUBACK"
out=$(mosquitto_pub -p "$P" -V mqttv311 -q 1 -u k-test-0002 -P pw -i kit-a-id -t kit/k-test-0002/x -m hi 2>&1)
rc=$?
[ $rc -ne 0 ] && kg_pass "kit B with kit A's client id refused ($out)" || kg_fail "kit B connected with kit A's client id"
sleep 0.5
# (a takeover logs "Client X already connected, closing old connection." on 2.0 and
# "Client X [addr:port] disconnected: session taken over." on 2.1)
kill -0 $A 2>/dev/null && ! kg_broker_log_has "Client kit-a-id (already connected|\[[^]]*\] disconnected: session taken over)" &&
	kg_pass "kit A not disconnected" ||
	kg_fail "kit A was disconnected by kit B"
mosquitto_pub -p "$P" -q 1 -u server -P pw -t kit/k-test-0001/cmd -m cmd-online
kg_wait_until 5 grep -q cmd-online "$KG_BROKER_DIR/kita1" && kg_pass "kit A still receives its commands" || kg_fail "kit A lost its command"
# A goes offline; three QoS 1 commands queue in its session; B tries A's id (persistent too).
kill -KILL $A; wait $A 2>/dev/null
kg_wait_until 10 kg_broker_log_has "Client kit-a-id (\[[^]]*\] )?(closed its connection|disconnected)|Socket error on client kit-a-id" || true
for c in 1 2 3; do mosquitto_pub -p "$P" -q 1 -u server -P pw -t kit/k-test-0001/cmd -m "queued-$c"; done
out=$(mosquitto_sub -p "$P" -V mqttv311 -c -q 1 -u k-test-0002 -P pw -i kit-a-id -t kit/k-test-0002/cmd -W 2 2>&1)
grep -qi "refused\|not authori" <<<"$out" && kg_pass "kit B refused kit A's offline session ($out)" || kg_fail "kit B took kit A's offline session: $out"
got=$(mosquitto_sub -p "$P" -V mqttv311 -c -q 1 -u k-test-0001 -P pw -i kit-a-id -t kit/k-test-0001/cmd -C 3 -W 5 2>&1)
kg_eq "kit A gets its three queued commands" "queued-1 queued-2 queued-3" "$(echo $got)"
# service users: two connections with the same id of their own work as before (the second
# replaces the first, as MQTT says); kits with random ids work (every mosquitto_pub above).
mosquitto_sub -p "$P" -u server -P pw -i svc-1 -t 'kit/#' -W 3 >/dev/null 2>&1 &
V1=$!
suback_seen svc-1 || kg_fail "service user's first connection: no SUBACK"
out=$(mosquitto_pub -p "$P" -q 1 -u server -P pw -i svc-1 -t kit/k-test-0003/cmd -m x 2>&1) &&
	kg_pass "service user's second connection with its own id accepted" || kg_fail "service user's second connection refused: $out"
wait $V1 2>/dev/null
kg_broker_log_has "refused CONNECT of k-test-0002 .*client id \"kit-a-id\" belongs to another user" &&
	kg_pass "refusal logged" || kg_fail "no log line for the refused client id"

# ---------------------------------------------------------------- 4. duplicate keys
id_dup=$(uuid)
out=$(pub5 k-test-0001 $RAW1 "{\"id\":\"$id_dup\",\"kitSerial\":\"\",\"datetime\":$(now_ms),\"peripheral\":11,\"quantityType\":1,\"value\":1,\"value\":2}")
grep -q 'RC:135)' <<<"$out" && kg_pass "duplicate \"value\": 0x87" || kg_fail "duplicate \"value\" accepted: $out"
id_dup2=$(uuid)
out=$(pub5 k-test-0001 kit/k-test-0001/measurement/aggregate "{\"id\":\"$id_dup2\",\"kitSerial\":\"\",\"datetimeStart\":1,\"datetimeEnd\":2,\"peripheral\":11,\"quantityType\":1,\"values\":{\"count\":1,\"count\":2}}")
grep -q 'RC:135)' <<<"$out" && kg_pass "duplicate aggregate value name: 0x87" || kg_fail "duplicate aggregate value name accepted: $out"
sleep 1
kg_eq "duplicate keys: no rows" "0 0" "$(rows "$id_dup") $(kg_psql $DB "select count(*) from aggregate_measurements where id = '$id_dup2'")"

# ---------------------------------------------------------------- 5. look-alike topics
mosquitto_sub -p "$P" -V mqttv5 -u server -P pw -i watch-3 -t 'kit/+/measurement/#' -v -W 6 >"$KG_BROKER_DIR/watch3" 2>&1 &
W3=$!
suback_seen watch-3 || kg_fail "watcher 3 has no SUBACK"
for t in kit/k-test-0001/measurement/raw/ kit/k-test-0001/measurement/raw/extra kit/k-test-0001/measurement/RAW \
		kit/k-test-0001/measurement/other; do
	out=$(pub5 k-test-0001 "$t" lookalike-garbage)
	grep -q 'RC:135)' <<<"$out" && kg_pass "kit: $t refused" || kg_fail "kit: $t not refused: $out"
done
out=$(pub5 server kit/k-test-0001/measurement/raw/x lookalike-garbage)
grep -q 'RC:135)' <<<"$out" && kg_pass "service user: look-alike refused too" || kg_fail "service user: look-alike not refused: $out"
wait $W3
grep -q lookalike-garbage "$KG_BROKER_DIR/watch3" && kg_fail "look-alike garbage routed: $(cat "$KG_BROKER_DIR/watch3")" ||
	kg_pass "nothing on look-alike topics reached kit/+/measurement/# subscribers"

# ---------------------------------------------------------------- 6. empty retained publish clears
mal1=$(status .rejected.malformed)
id_ret=$(uuid)
out=$(pub5 k-test-0001 $RAW1 "$(raw "$id_ret" k-test-0001 "$(now_ms)" 11 1 5)" -r)
grep -qE 'RC:(0|16)\)' <<<"$out" || kg_fail "retained valid measurement not accepted: $out"
got=$(mosquitto_sub -p "$P" -u server -P pw -t $RAW1 -C 1 -W 3 2>/dev/null)
grep -q "$id_ret" <<<"$got" && kg_pass "retained measurement set" || kg_fail "retained measurement not set: $got"
out=$(pub5n k-test-0001 $RAW1 -r)
grep -qE 'RC:(0|16)\)' <<<"$out" && kg_pass "kit: empty retained publish accepted" || kg_fail "kit: empty retained publish refused: $out"
got=$(mosquitto_sub -p "$P" -u server -P pw -t $RAW1 -W 2 2>/dev/null)
[ -z "$got" ] && kg_pass "kit cleared its retained measurement" || kg_fail "retained measurement still there: $got"
# a service user clears any kit's retained measurement
pub5 k-test-0002 kit/k-test-0002/measurement/raw "$(raw "$(uuid)" k-test-0002 "$(now_ms)" 21 1 5)" -r >/dev/null
out=$(pub5n server kit/k-test-0002/measurement/raw -r)
grep -qE 'RC:(0|16)\)' <<<"$out" && kg_pass "service user: empty retained publish accepted" || kg_fail "service user: empty retained refused: $out"
got=$(mosquitto_sub -p "$P" -u server -P pw -t kit/k-test-0002/measurement/raw -W 2 2>/dev/null)
[ -z "$got" ] && kg_pass "service user cleared a kit's retained measurement" || kg_fail "retained still there: $got"
# a kit cannot clear another kit's; an empty non-retained publish is still malformed
out=$(pub5n k-test-0003 kit/k-test-0002/measurement/raw -r)
grep -q 'RC:135)' <<<"$out" && kg_pass "kit cannot clear another kit's retained measurement" || kg_fail "kit cleared another kit's: $out"
sleep 1.5
kg_eq "empty retained publishes are not counted as malformed" "$mal1" "$(status .rejected.malformed)"
out=$(pub5n k-test-0001 $RAW1)
grep -q 'RC:135)' <<<"$out" && kg_pass "empty non-retained publish: 0x87 (malformed)" || kg_fail "empty non-retained publish: $out"

kg_broker_stop hard

# ---------------------------------------------------------------- 2b. shared subscriptions, other_topics deny
kg_broker_start sharedeny <<CONF
plugin_opt_sink none
plugin_opt_other_topics deny
CONF
P=$KG_BROKER_PORT
out=$(mosquitto_sub -d -p "$P" -V mqttv5 -u server -P pw -t '$share/g/kit/#' -W 1 2>&1)
grep -qE 'Subscribed \(mid: [0-9]+\): 0' <<<"$out" && kg_pass "other_topics deny: service user may share kit/#" ||
	kg_fail "other_topics deny: service user cannot share kit/#: $out"
out=$(mosquitto_sub -d -p "$P" -V mqttv5 -u k-test-0001 -P pw -t '$share/g/kit/#' -W 1 2>&1)
grep -qE 'Subscribed \(mid: [0-9]+\): 135' <<<"$out" && kg_pass "other_topics deny: kit may not share kit/#" ||
	kg_fail "other_topics deny: kit shares kit/#: $out"
kg_broker_stop sharedeny

# ---------------------------------------------------------------- 7. no PUBACK without durability
# The spool on a 2 MiB tmpfs, the database unreachable: the spool fills up. QoS 1 publishes that
# cannot be appended are not acknowledged (the loadgen's acked stays below sent); after kill -9
# and a restart with the database reachable every acknowledged measurement is in PostgreSQL; once
# the worker has delivered and freed the segments the spool takes messages again by itself.
# (A second broker on the same spool_dir and a spool_dir that is a file: test_streams and
# test_spool_durability.)
LOADGEN="$KG_TOOLS/kitgate-loadgen"
mnt="$KG_SCRATCH/hardening-tmpfs"
mkdir -p "$mnt"
if ! mount -t tmpfs -o size=2m tmpfs "$mnt" 2>/dev/null; then
	kg_skip "no PUBACK without durability: cannot mount a tmpfs here (needs CAP_SYS_ADMIN)"
fi
kg_on_exit umount "$mnt"
deadport=$(kg_free_port)
kg_broker_start dur <<CONF
plugin_opt_sink postgres
plugin_opt_database_url postgresql://postgres@127.0.0.1:$deadport/nowhere?connect_timeout=1
plugin_opt_other_topics allow
plugin_opt_spool_dir $mnt/spool
plugin_opt_shutdown_timeout_ms 500
CONF
# --reconnect: a client whose publish was not acknowledged is disconnected and sends it again, for
# as long as the run lasts (15 s), then waits 3 s for answers
t0=$(date +%s)
"$LOADGEN" -p "$KG_BROKER_PORT" --kits 5 --messages 40000 --duration 15 --qos 1 --window 50 --quiet --reconnect \
	--drain-timeout 3 --acked-log "$KG_BROKER_DIR/acked" >"$KG_BROKER_DIR/load1" 2>&1
secs=$(($(date +%s) - t0))
line=$(tail -n 1 "$KG_BROKER_DIR/load1")
echo "full spool: $line"
sent=$(sed -n 's/.*sent=\([0-9]*\).*/\1/p' <<<"$line")
acked=$(sed -n 's/.* acked=\([0-9]*\).*/\1/p' <<<"$line")
[ -n "$acked" ] && [ "$acked" -lt "$sent" ] && [ "$acked" -gt 0 ] &&
	kg_pass "spool full: only $acked of $sent QoS 1 publishes acknowledged" ||
	kg_fail "spool full: acked $acked of $sent (expected some, not all)"
kg_broker_log_has "spool append failed .*not acknowledged" && kg_pass "unacknowledged publishes logged" ||
	kg_fail "no 'spool append failed' line"
n_log=$(grep -c "spool append failed" "$KG_BROKER_LOG")
[ "$n_log" -le $((secs + 3)) ] && kg_pass "append failures logged rate-limited ($n_log lines)" || kg_fail "append failures logged $n_log times"
kg_broker_kill
sed -i "s|^plugin_opt_database_url .*|plugin_opt_database_url $URL|" "$KG_BROKER_DIR/mosquitto.conf"
kg_psql $DB "truncate raw_measurements" >/dev/null
# The disk is still full: the restart must replay what is spooled (SPEC "Durability"). If it refuses
# (that is a failure, recorded by the harness), make room and go on checking that nothing
# acknowledged was lost.
probe="$KG_BROKER_DIR/probe.conf"
sed -e "s|^listener .*|listener $(kg_free_port) 127.0.0.1|" -e "s|^log_dest file .*|log_dest file $KG_BROKER_DIR/probe.log|" \
	"$KG_BROKER_DIR/mosquitto.conf" >"$probe"
mapfile -t envs < <(kg__sanitizer_env)
timeout 5 env "${envs[@]}" "$KG_MOSQUITTO" -c "$probe" >/dev/null 2>&1
rc=$?
if [ $rc -eq 124 ]; then
	kg_pass "a broker starts on the full spool disk"
else
	kg_fail "a broker refuses to start on the full spool disk (exit $rc): $(grep -m1 spool "$KG_BROKER_DIR/probe.log" | cut -c1-200)"
	echo "note: growing the tmpfs to go on"
	mount -o remount,size=16m "$mnt"
fi
kg_broker_restart
nacked=$(sort -u "$KG_BROKER_DIR/acked" | grep -c .)
rows_all() { [ "$(kg_psql $DB "select count(*) from raw_measurements")" -ge "$nacked" ]; }
kg_wait_until 120 rows_all
kg__psql -d $DB -c "create table acked_ids (id uuid primary key)" >/dev/null
sort -u "$KG_BROKER_DIR/acked" | kg__psql -d $DB -c "copy acked_ids from stdin" >/dev/null
kg_eq "after kill -9 and restart: acknowledged measurements missing from PostgreSQL" 0 \
	"$(kg_psql $DB "select count(*) from acked_ids a where not exists (select 1 from raw_measurements r where r.id = a.id)")"
# delivered segments are freed: the spool takes (and acknowledges) messages again by itself
resumed() {
	"$LOADGEN" -p "$KG_BROKER_PORT" --kits 2 --messages 2000 --qos 1 --quiet --drain-timeout 10 >"$KG_BROKER_DIR/load2" 2>&1 &&
		grep -q "acked=2000 " "$KG_BROKER_DIR/load2"
}
kg_wait_until 60 resumed && kg_pass "space freed: the spool acknowledges again by itself" ||
	kg_fail "the spool did not resume: $(tail -n 1 "$KG_BROKER_DIR/load2")"
kg_broker_stop dur

kg_finish
