#!/usr/bin/env bash
# test_live.sh -- the live view end to end: rolling statistics against hand-computed windows
# (measurement times in the past, empty windows, a value 59 s vs 61 s old), generic stats topics,
# per-kit status on $SYS (online, offline after disconnect, a refused login stays offline), and the
# HTTP endpoint: Basic auth ($7$ and $6$ entries, 401/403), /metrics through promtool, the JSON API,
# the test-measurement POST (422 with the broker's reason; 202 and a PostgreSQL row), SSE, 4xx.
. "$(dirname "$0")/lib.sh"

DB=live
URL=$(kg_db_create $DB 10) || kg_die "cannot create database $DB"
HP=$(kg_free_port) || kg_die "no free port"
HPW="$KG_SCRATCH/live.httpasswd"
rm -f "$HPW"
mosquitto_passwd -c -b "$HPW" server pw || kg_die "mosquitto_passwd"
mosquitto_passwd -H sha512 -b "$HPW" server6 pw6
mosquitto_passwd -b "$HPW" k-test-0001 pw
kg_broker_start live <<CONF
plugin_opt_sink postgres
plugin_opt_database_url $URL
plugin_opt_other_topics allow
plugin_opt_service_users server,server6
plugin_opt_stats_topics sensors/+/temp
plugin_opt_stats_topics plant/#=plant/summary
plugin_opt_http_listen 127.0.0.1:$HP
plugin_opt_http_password_file $HPW
CONF
P=$KG_BROKER_PORT
H="http://127.0.0.1:$HP"
AUTH=(-u server:pw)

uuid() { cat /proc/sys/kernel/random/uuid; }
now_ms() { date +%s%3N; }
raw() { printf '{"id":"%s","kitSerial":"%s","datetime":%s,"peripheral":%s,"quantityType":%s,"value":%s}' "$@"; }
pub() { mosquitto_pub -p "$P" -q 1 -u "$1" -P pw -t "$2" -m "$3"; }
retained() { mosquitto_sub -p "$P" -u server -P pw -t "$1" -C 1 -W 5 2>/dev/null; }
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }

# ---------------------------------------------------------------- statistics of kit streams
STATS_LOG="$KG_BROKER_DIR/stats.log"
mosquitto_sub -p "$P" -u k-test-0001 -P pw -i live-stats-sub -t 'kit/k-test-0001/stats/#' -v >"$STATS_LOG" 2>&1 &
SUBPID=$!
kg_on_exit kill "$SUBPID"
kg_wait_until 10 grep -q "Sending SUBACK to live-stats-sub\$" "$KG_BROKER_LOG" || kg_fail "stats subscriber not subscribed"

t=$(now_ms)
pub k-test-0001 kit/k-test-0001/measurement/raw "$(raw "$(uuid)" k-test-0001 $((t - 2000)) 11 1 57)"
pub k-test-0001 kit/k-test-0001/measurement/raw "$(raw "$(uuid)" k-test-0001 $((t - 1000)) 11 1 43)"
# 50 s and 61 s old (one connection, so usually one stats message): only the first is in the
# 1-minute window; both in 5 and 30 minutes. The exact edges (60 s in, 60.001 s out) are unit-tested;
# here the one inside has 10 s to spare (58 s left 2 s, which a loaded machine spent before the
# broker saw it), and its own t12.
t12=$(now_ms)
printf '%s\n%s\n' "$(raw "$(uuid)" k-test-0001 $((t12 - 61000)) 12 1 20)" "$(raw "$(uuid)" k-test-0001 $((t12 - 50000)) 12 1 10)" |
	mosquitto_pub -p "$P" -q 1 -u k-test-0001 -P pw -t kit/k-test-0001/measurement/raw -l
# 31 minutes old: accepted and stored, but in no window
pub k-test-0001 kit/k-test-0001/measurement/raw "$(raw "$(uuid)" k-test-0001 $((t - 1860000)) 13 1 99)"

has_msg() { grep -qF "$1" "$STATS_LOG"; }
kg_wait_until 10 has_msg 'kit/k-test-0001/stats/11/1 {"avg_1min":50,"avg_5min":50,"avg_30min":50,"count_1min":2,"count_5min":2,"count_30min":2,"latest":43,"latest_at":'"$((t - 1000))"'}' &&
	kg_pass "57 and 43 -> 50 in every window (retained JSON on kit/<serial>/stats/<peripheral>/<qt>, readable by the kit)" ||
	kg_fail "stream 11/1: $(grep '/11/1' "$STATS_LOG")"
kg_wait_until 10 has_msg 'kit/k-test-0001/stats/12/1 {"avg_1min":10,"avg_5min":15,"avg_30min":15,"count_1min":1,"count_5min":2,"count_30min":2,"latest":10,' &&
	kg_pass "50 s old in the 1-minute window, 61 s old not" || kg_fail "stream 12/1: $(grep '/12/1' "$STATS_LOG")"
kg_wait_until 20 has_msg 'kit/k-test-0001/stats/12/1 {"avg_1min":null,"avg_5min":15,"avg_30min":15,"count_1min":0,' &&
	kg_pass "the 1-minute window empties: republished with null" || kg_fail "stream 12/1 never emptied: $(grep '/12/1' "$STATS_LOG")"
n=$(grep '/12/1 ' "$STATS_LOG" | uniq -d | wc -l)
kg_eq "republished only when something changed (no message repeats the previous one)" 0 "$n"
has_msg 'kit/k-test-0001/stats/13/1' && kg_fail "a 31-minute-old value made a stats message" ||
	kg_pass "a value older than 30 minutes is in no window (no stats message)"
r=$(retained kit/k-test-0001/stats/11/1)
kg_eq "stats are retained" 50 "$(jq -r .avg_1min <<<"$r")"

# ---------------------------------------------------------------- generic stats topics
pub server sensors/a/temp 21
pub server sensors/a/temp '{"value":23,"unit":"C"}'
pub server sensors/a/temp hello
pub server plant/x/y 4
pub server plant/z 6
sleep 1.5
r=$(retained sensors/a/temp/stats)
kg_eq "generic topic: bare and JSON numbers, default <topic>/stats" "22 2" "$(jq -r '"\(.avg_1min) \(.count_1min)"' <<<"$r")"
r=$(retained plant/summary)
kg_eq "generic filter with its own stats topic" "5 2" "$(jq -r '"\(.avg_30min) \(.count_30min)"' <<<"$r")"

# ---------------------------------------------------------------- per-kit status
mosquitto_sub -p "$P" -V mqttv311 -u k-test-0003 -P pw -i kit3-client -t 'kit/k-test-0003/#' >/dev/null 2>&1 &
K3=$!
kg_wait_until 10 grep -q "Sending SUBACK to kit3-client\$" "$KG_BROKER_LOG" || kg_fail "kit 3 did not subscribe"
st_online() { [ "$(retained '$SYS/broker/kitgate/kits/k-test-0003' | jq -r .online)" = "$1" ]; }
kg_wait_until 5 st_online true && kg_pass "kit status online after connect" || kg_fail "kit 3 not online"
s=$(retained '$SYS/broker/kitgate/kits/k-test-0003')
kg_eq "kit status fields" "kit3-client 127.0.0.1 4" "$(jq -r '"\(.client_id) \(.address) \(.protocol_version)"' <<<"$s")"
kill "$K3"; wait "$K3" 2>/dev/null
t0=$(date +%s)
kg_wait_until 5 st_online false && kg_pass "kit status offline within $(( $(date +%s) - t0 )) s of the disconnect" ||
	kg_fail "kit 3 still online 5 s after disconnect"
# A kit whose session outlives the connection (clean_session false): 2.1 reports it going away as
# MOSQ_EVT_CLIENT_OFFLINE, not DISCONNECT (2.0 sends DISCONNECT); it must go offline on both.
mosquitto_sub -p "$P" -V mqttv311 -c -q 1 -u k-test-0009 -P pw -i kit9-persistent -t 'kit/k-test-0009/#' >/dev/null 2>&1 &
K9=$!
kg_wait_until 10 grep -q "Sending SUBACK to kit9-persistent\$" "$KG_BROKER_LOG" || kg_fail "persistent kit 9 did not subscribe"
st9_online() { [ "$(retained '$SYS/broker/kitgate/kits/k-test-0009' | jq -r .online)" = "$1" ]; }
kg_wait_until 5 st9_online true && kg_pass "persistent-session kit online after connect" || kg_fail "persistent kit 9 not online"
kill -KILL "$K9"; wait "$K9" 2>/dev/null
kg_wait_until 5 st9_online false && kg_pass "persistent-session kit offline after its connection dies" ||
	kg_fail "persistent-session kit 9 still online 5 s after its connection died"
mosquitto_pub -p "$P" -u k-test-0004 -P wrong -i kit4-bad -t kit/k-test-0004/x -m 1 2>/dev/null
sleep 1.5
kg_eq "a refused login does not make a kit online" 404 "$(code "${AUTH[@]}" "$H/api/v1/kits/k-test-0004")"
s=$(retained '$SYS/broker/kitgate/kits/k-test-0001')
kg_eq "kit 1: accepted count; online (its stats subscriber is still connected)" "5 true" "$(jq -r '"\(.accepted) \(.online)"' <<<"$s")"

# ---------------------------------------------------------------- HTTP: auth
kg_eq "no credentials: 401" 401 "$(code "$H/api/v1/status")"
kg_eq "401 carries a Basic challenge" 1 "$(curl -s -D - -o /dev/null "$H/api/v1/status" | grep -ci '^WWW-Authenticate: Basic')"
kg_eq "wrong password: 401" 401 "$(code -u server:nope "$H/api/v1/status")"
kg_eq "a password with a NUL (server:pw\\0junk): 401" 401 \
	"$(code -H "Authorization: Basic $(printf 'server:pw\0junk' | base64)" "$H/api/v1/status")"
kg_eq "the same header without the NUL's tail: 200" 200 \
	"$(code -H "Authorization: Basic $(printf 'server:pw' | base64)" "$H/api/v1/status")"
kg_eq "a kit (not a service user): 403" 403 "$(code -u k-test-0001:pw "$H/api/v1/status")"
kg_eq "service user with a \$7\$ (PBKDF2) entry: 200" 200 "$(code "${AUTH[@]}" "$H/api/v1/status")"
kg_eq "service user with a \$6\$ (salted SHA-512) entry: 200" 200 "$(code -u server6:pw6 "$H/api/v1/status")"
kg_eq "401 body is JSON" unauthorized "$(curl -s "$H/metrics" | jq -r .error)"

# ---------------------------------------------------------------- /metrics
pub k-test-0002 kit/k-test-0002/measurement/raw "$(raw "$(uuid)" k-test-0002 "$(now_ms)" 21 1 1e999)"
pub k-test-0002 kit/k-test-0002/measurement/raw '{"id":"nope"}'
sleep 1
M="$KG_BROKER_DIR/metrics.txt"
curl -s "${AUTH[@]}" "$H/metrics" >"$M"
promtool check metrics <"$M" >"$KG_BROKER_DIR/promtool.out" 2>&1 && kg_pass "promtool check metrics is clean" ||
	kg_fail "promtool: $(cat "$KG_BROKER_DIR/promtool.out")"
kg_eq "accepted total" "kitgate_measurements_accepted_total 5" "$(grep '^kitgate_measurements_accepted_total ' "$M")"
kg_eq "rejected by reason" 'kitgate_measurements_rejected_total{reason="bad_value"} 1' "$(grep 'reason="bad_value"' "$M")"
grep -q '^kitgate_sink_connected 1$' "$M" && kg_pass "sink connected" || kg_fail "sink_connected: $(grep sink_connected "$M")"
grep -q '^kitgate_spool_bytes ' "$M" && grep -q '^kitgate_queue_depth ' "$M" && grep -q '^kitgate_sink_lag_records ' "$M" &&
	kg_pass "spool bytes, queue depth, sink lag exported" || kg_fail "missing spool/queue/lag metrics"
kg_eq "non-numeric stats payloads counted" "kitgate_stats_ignored_total 1" "$(grep '^kitgate_stats_ignored_total ' "$M")"
kg_eq "statistics eviction counters exported (nothing evicted here)" \
	"kitgate_stats_evicted_total 0|kitgate_stats_kit_evicted_total 0|kitgate_stats_clear_dropped_total 0" \
	"$(grep -E '^kitgate_stats_(evicted|kit_evicted|clear_dropped)_total ' "$M" | paste -sd'|')"

# ---------------------------------------------------------------- JSON API
j=$(curl -s "${AUTH[@]}" "$H/api/v1/kits/k-test-0001")
kg_eq "one kit with its streams (the 31-minute-old value made none)" "k-test-0001 2 50" \
	"$(jq -r '"\(.serial) \(.streams|length) \(.streams[]|select(.peripheral==11)|.avg_5min)"' <<<"$j")"
pub server kit/k-test-0008/measurement/raw "$(raw "$(uuid)" "" "$(now_ms)" 81 1 3)"
sleep 1
j=$(curl -s "${AUTH[@]}" "$H/api/v1/kits/k-test-0008")
kg_eq "a service user publishing for a kit counts for the kit but does not make it online" "1 false" \
	"$(jq -r '"\(.accepted) \(.online)"' <<<"$j")"
j=$(curl -s "${AUTH[@]}" "$H/api/v1/clients/kit3-client")
kg_eq "client-id lookup" "k-test-0003 false" "$(jq -r '"\(.kit.serial) \(.kit.online)"' <<<"$j")"
kg_eq "unknown client id: 404" 404 "$(code "${AUTH[@]}" "$H/api/v1/clients/nobody")"
j=$(curl -s "${AUTH[@]}" "$H/api/v1/rejections")
kg_eq "recent rejections, newest first, with reason/detail/topic/serial" \
	"bad_type id kit/k-test-0002/measurement/raw k-test-0002|bad_value value" \
	"$(jq -r '"\(.[0].reason) \(.[0].detail) \(.[0].topic) \(.[0].serial)|\(.[1].reason) \(.[1].detail)"' <<<"$j")"
j=$(curl -s "${AUTH[@]}" "$H/api/v1/status")
kg_eq "status: accepted, rejected by reason, sink" "6 1 postgres true" \
	"$(jq -r '"\(.accepted) \(.rejected.bad_value) \(.sink.kind) \(.sink.connected)"' <<<"$j")"
kg_eq "status: statistics counters, clear_dropped among them" "0 0 0 0" \
	"$(jq -r '.stats | "\(.evicted) \(.kit_evicted) \(.samples_dropped) \(.clear_dropped)"' <<<"$j")"
kg_eq "generic streams listed" 2 "$(curl -s "${AUTH[@]}" "$H/api/v1/streams" | jq length)"

# ---------------------------------------------------------------- test measurement POST
post() { curl -s -w '\n%{http_code}' "${AUTH[@]}" -X POST -H 'Content-Type: application/json' --data-binary "$2" "$H/api/v1/kits/$1/test-measurement"; }
id=$(uuid)
out=$(post k-test-0005 "$(raw "$id" k-test-0001 "$(now_ms)" 51 1 7.5)")
kg_eq "invalid test measurement: 422 with the broker's reason" "422 serial_mismatch" \
	"$(tail -1 <<<"$out") $(head -1 <<<"$out" | jq -r .reason)"
out=$(post k-test-0005 "$(raw "$id" "" "$(now_ms)" 51 1 1e999)")
kg_eq "non-finite value: bad_value" "422 bad_value" "$(tail -1 <<<"$out") $(head -1 <<<"$out" | jq -r .reason)"
out=$(post k-test-0005 "$(raw "$id" "" "$(now_ms)" 51 1 7.5)")
kg_eq "valid test measurement: 202 with its id" "202 $id" "$(tail -1 <<<"$out") $(head -1 <<<"$out" | jq -r .id)"
row() { [ "$(kg_psql $DB "select value from raw_measurements where id = '$id'")" = 7.5 ]; }
kg_wait_until 15 row && kg_pass "the test measurement went through the sink (row in PostgreSQL)" || kg_fail "no row for $id"
# cross-site request forgery: a simple (no-preflight) POST from another site must not get through
good=$(raw "$(uuid)" "" "$(now_ms)" 51 1 7.5)
TM="$H/api/v1/kits/k-test-0005/test-measurement"
kg_eq "text/plain body: 415" "415 unsupported_media_type" \
	"$(code "${AUTH[@]}" -X POST -H 'Content-Type: text/plain' --data-binary "$good" "$TM") $(curl -s "${AUTH[@]}" -X POST -H 'Content-Type: text/plain' --data-binary "$good" "$TM" | jq -r .error)"
kg_eq "form-encoded body (curl's default): 415" 415 "$(code "${AUTH[@]}" -X POST --data-binary "$good" "$TM")"
kg_eq "foreign Origin: 403 JSON" "403 cross_site" \
	"$(code "${AUTH[@]}" -X POST -H 'Content-Type: application/json' -H 'Origin: http://evil.example' --data-binary "$good" "$TM") $(curl -s "${AUTH[@]}" -X POST -H 'Content-Type: application/json' -H 'Origin: http://evil.example' --data-binary "$good" "$TM" | jq -r .error)"
kg_eq "foreign Origin with text/plain: 403" 403 \
	"$(code "${AUTH[@]}" -X POST -H 'Content-Type: text/plain' -H 'Origin: http://evil.example' --data-binary "$good" "$TM")"
kg_eq "Origin null: 403" 403 "$(code "${AUTH[@]}" -X POST -H 'Content-Type: application/json' -H 'Origin: null' --data-binary "$good" "$TM")"
kg_eq "Sec-Fetch-Site cross-site: 403" 403 \
	"$(code "${AUTH[@]}" -X POST -H 'Content-Type: application/json' -H 'Sec-Fetch-Site: cross-site' --data-binary "$good" "$TM")"
out=$(curl -s -w '\n%{http_code}' "${AUTH[@]}" -X POST -H 'Content-Type: application/json; charset=utf-8' \
	-H "Origin: http://127.0.0.1:$HP" -H 'Sec-Fetch-Site: same-origin' --data-binary "$good" "$TM")
kg_eq "same-origin POST (as the dashboard sends it): 202" 202 "$(tail -1 <<<"$out")"
# the serial in the URL: MHD decodes %XX, so bytes >= 0x80 and controls must be refused there
for bad in 'k%FFx' 'k%0Ax' 'k%20x' 'k%2Bx' 'k%23x' "$(head -c 65 /dev/zero | tr '\0' k)"; do
	kg_eq "serial '$bad' in the URL: 400 bad_serial" "400 bad_serial" \
		"$(code "${AUTH[@]}" -X POST -H 'Content-Type: application/json' --data-binary "$good" "$H/api/v1/kits/$bad/test-measurement") $(curl -s "${AUTH[@]}" -X POST -H 'Content-Type: application/json' --data-binary "$good" "$H/api/v1/kits/$bad/test-measurement" | jq -r .error)"
done
kg_eq "kits JSON stays valid after the refused serials" 0 "$(curl -s "${AUTH[@]}" "$H/api/v1/kits" | jq -e . >/dev/null; echo $?)"
kg_eq "bad kind: 400" 400 "$(code "${AUTH[@]}" -X POST -H 'Content-Type: application/json' --data x "$H/api/v1/kits/k-test-0005/test-measurement?kind=foo")"
kg_eq "GET on the POST endpoint: 405" 405 "$(code "${AUTH[@]}" "$H/api/v1/kits/k-test-0005/test-measurement")"
kg_eq "POST on a GET endpoint: 405" 405 "$(code "${AUTH[@]}" -X POST --data x "$H/api/v1/status")"
kg_eq "unknown path: 404 JSON" "404 not_found" "$(code "${AUTH[@]}" "$H/api/v2/x") $(curl -s "${AUTH[@]}" "$H/api/v2/x" | jq -r .error)"
big=$(head -c 20000 /dev/zero | tr '\0' a)
out=$(post k-test-0005 "$big")
kg_eq "oversized body: 422 too_large" "422 too_large" "$(tail -1 <<<"$out") $(head -1 <<<"$out" | jq -r .reason)"

# ---------------------------------------------------------------- SSE and the dashboard
ev=$(curl -s -N --max-time 3 "${AUTH[@]}" "$H/api/v1/events")
grep -q '^event: state$' <<<"$ev" && grep -q '^data: {"now":' <<<"$ev" && kg_pass "server-sent events carry the state" ||
	kg_fail "SSE: ${ev:0:200}"
kg_eq "dashboard served at /" 200 "$(code "${AUTH[@]}" "$H/")"
kg_eq "uPlot served from the plugin" 200 "$(code "${AUTH[@]}" "$H/vendor/uPlot.iife.min.js")"

# ---------------------------------------------------------------- a slow client does not stall the broker
exec 7<>"/dev/tcp/127.0.0.1/$HP"; printf 'GET /api/v1/status HTTP/1.1\r\nHost: x\r\n' >&7   # never finishes its headers
t1=$(date +%s%N)
pub k-test-0006 kit/k-test-0006/measurement/raw "$(raw "$(uuid)" "" "$(now_ms)" 61 1 1)"
t2=$(date +%s%N)
exec 7>&-
[ $(( (t2 - t1) / 1000000 )) -lt 2000 ] && kg_pass "a stalled HTTP client does not stall publishing ($(( (t2 - t1) / 1000000 )) ms)" ||
	kg_fail "publish took $(( (t2 - t1) / 1000000 )) ms while an HTTP client stalled"

kg_finish
