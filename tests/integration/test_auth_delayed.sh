#!/usr/bin/env bash
# test_auth_delayed.sh -- auth_threads and delayed kit logins.
# On mosquitto 2.0 (the system's, or $KG_MOSQUITTO): `auth_threads` stops the start with one line
# naming the version and what to do. On mosquitto 2.1 ($KG_MOSQUITTO if it is 2.1, else
# $KG_MOSQUITTO_2_1 as `eval "$(ci/brokers env)"` exports it; skipped without one): logins that
# need PBKDF2 are delayed and completed from the auth threads (the start line says so); right
# secrets get in, wrong ones are refused and open the failure window, a cached login is answered
# at once; a kit logged in through a delayed login owns its client id (another user presenting it
# is refused) and is online in the per-kit status; a storm of kits all get in while a service
# client keeps being served.
# ctest: RUN_SERIAL its failure-window checks depend on a 1 s window still being open
. "$(dirname "$0")/lib.sh"

version_of() { "$1" -h 2>/dev/null | head -1 | grep -oE '2\.[0-9]+\.[0-9]+'; }

# ---------------------------------------------------------------- 2.0: auth_threads refused at start
B20=$KG_MOSQUITTO L20=$KG_MOSQUITTO_LIBS
case "$(version_of "$B20")" in 2.0.*) ;; *) B20=mosquitto L20= ;; esac
if [[ "$(version_of "$B20")" == 2.0.* ]]; then
	d="$KG_SCRATCH/auth-threads-20"
	mkdir -p "$d"
	port=$(kg_free_port)
	cat >"$d/m.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
log_dest stdout
plugin $KG_PLUGIN
plugin_opt_sink none
plugin_opt_auth_threads 4
CONF
	out=$(env ${L20:+LD_LIBRARY_PATH=$L20} timeout 10 "$B20" -c "$d/m.conf" 2>&1)
	rc=$?
	[ "$rc" != 0 ] && [ "$rc" != 124 ] && kg_pass "mosquitto $(version_of "$B20") with auth_threads: does not start (exit $rc)" ||
		kg_fail "mosquitto 2.0 with auth_threads: exit $rc: $out"
	grep -q 'option auth_threads 4 needs mosquitto 2.1 or later .* this broker is mosquitto 2.0 .*remove plugin_opt_auth_threads .* or upgrade mosquitto to 2.1' <<<"$out" &&
		kg_pass "one line names the option, the version and what to do" || kg_fail "no clear line: $out"
fi

# ---------------------------------------------------------------- 2.1: delayed logins
B21=
case "$(version_of "$KG_MOSQUITTO")" in 2.0.*|'') B21=${KG_MOSQUITTO_2_1:-} ;; *) B21=$KG_MOSQUITTO ;; esac
if [ -z "$B21" ] || [ ! -x "$B21" ]; then
	kg_skip "no mosquitto 2.1 for the delayed-login part (set KG_MOSQUITTO or KG_MOSQUITTO_2_1, e.g. eval \"\$(ci/brokers env)\")"
fi
export KG_MOSQUITTO=$B21 KG_MOSQUITTO_LIBS=

S='q7!Rm@x#T$v%W&z2Kp9LbN4c'
H1=$(kg_pbkdf2_hash sha512 100000 goAuthDefaultSalt123 "$S")
HF=$(kg_pbkdf2_hash sha256 15000 Z416JHE8vSmaiamV5TRz "$S")
DB=authdelayed
URL=$(kg_db_create $DB 40) || kg_die "cannot create database $DB"
kg_psql $DB "UPDATE kits SET password_hash = CASE WHEN serial = 'k-test-0001' THEN '$H1' ELSE '$HF' END" >/dev/null ||
	kg_fail "cannot set hashes"

kg_broker_start authdelayed <<CONF
plugin_opt_sink none
plugin_opt_database_url $URL
plugin_opt_auth postgres
plugin_opt_auth_threads 2
plugin_opt_other_topics allow
plugin_opt_stats_interval_s 1
CONF
P=$KG_BROKER_PORT
kg_wait_until 10 kg_broker_log_has 'mosquitto 2.1 delayed basic auth: PBKDF2 for logins not in the login cache runs on 2 auth thread' &&
	kg_pass "start line: delayed basic auth on 2 auth threads ($(version_of "$B21"))" || kg_fail "no delayed-auth start line"

pub() { mosquitto_pub -d -p "$P" -V mqttv5 -q 1 -u "$1" -P "$2" ${4:+-i "$4"} -t "$3" -m hi 2>&1; }
admitted() { grep -qE 'received PUBACK \(Mid: 1, RC:(0|16)\)' <<<"$1"; }
refused() { grep -qiE 'not authori[sz]ed|Connection Refused|CONNACK \(.*135\)|reason code 135' <<<"$1"; }
st() { mosquitto_sub -p "$P" -u server -P pw -t '$SYS/broker/kitgate/status' -C 1 -W 5 2>/dev/null | jq -r "$1"; }
# the first login may come before the first snapshot (refused, fail closed): retry for a while
first() { admitted "$(pub k-test-0001 "$S" kit/k-test-0001/x kit1-a)"; }
kg_wait_until 20 first && kg_pass "go-auth hash (sha512/100000): admitted through a delayed login" ||
	kg_fail "k-test-0001 not admitted"
# (2.1 publishes the status from TICK; each status read's connection wakes the loop)
kg_wait_until 10 eval '[ "$(st .auth.delayed)" -ge 1 ]' && kg_pass "status auth.delayed >= 1" ||
	kg_fail "status auth.delayed = $(st .auth.delayed)"
d1=$(st .auth.delayed)
out=$(pub k-test-0001 "$S" kit/k-test-0001/x kit1-b)
admitted "$out" && kg_pass "second login (login cache)" || kg_fail "cached login: $out"
kg_wait_until 10 eval '[ "$(st .auth.cached)" -ge 1 ]' || kg_fail "status auth.cached = $(st .auth.cached)"
kg_eq "a cached login is answered at once (not delayed)" "$d1" "$(st .auth.delayed)"
kg_eq "status auth.threads" 2 "$(st .auth.threads)"

# client-id ownership settled by the delayed login's CONNECT: kit 2 cannot take kit 1's id
out=$(pub k-test-0002 "$S" kit/k-test-0002/x kit1-b)
refused "$out" && kg_pass "another kit presenting kit 1's client id is refused" || kg_fail "client id taken over: $out"
kg_wait_until 5 kg_broker_log_has 'client id "kit1-b" belongs to another user' || kg_fail "no client-id log line"

# per-kit status: online while connected through a delayed login
mosquitto_sub -p "$P" -V mqttv5 -u k-test-0003 -P "$S" -i kit3-sub -t 'kit/k-test-0003/#' >/dev/null 2>&1 &
K3=$!
kg_on_exit "kill $K3 2>/dev/null"
kg_wait_until 10 grep -q 'Sending SUBACK to kit3-sub$' "$KG_BROKER_LOG" && kg_pass "kit 3 subscribed after a delayed login" ||
	kg_fail "kit 3 not in"
kst() { mosquitto_sub -p "$P" -u server -P pw -t '$SYS/broker/kitgate/kits/k-test-0003' -C 1 -W 3 2>/dev/null | jq -r .online; }
kg_wait_until 10 eval '[ "$(kst)" = true ]' && kg_pass "kit 3 online in its status" || kg_fail "kit 3 status online = $(kst)"
# a refused delayed login for kit 3 (another connection, a wrong secret): 2.1 raises DISCONNECT for
# it inside mosquitto_complete_basic_auth; the connected kit must stay online
out=$(pub k-test-0003 "wrong-$S" kit/k-test-0003/x kit3-wrong)
refused "$out" || kg_fail "kit 3's wrong secret: $out"
kg_wait_until 5 kg_broker_log_has 'auth: refused kit k-test-0003 from .* \(client kit3-wrong\): wrong secret' ||
	kg_fail "no wrong-secret line for kit 3"
still=0
for i in 1 2 3; do sleep 1; [ "$(kst)" = true ] && still=$((still + 1)); done
kg_eq "kit 3 stays online through another connection's refused delayed login" 3 "$still"
kill "$K3"; wait "$K3" 2>/dev/null
kg_wait_until 10 eval '[ "$(kst)" = false ]' && kg_pass "kit 3 offline after it left" || kg_fail "kit 3 still online"
# a persistent session (v3.1.1, clean session false): 2.1 raises CLIENT_OFFLINE, not DISCONNECT
mosquitto_sub -p "$P" -V mqttv311 -c -u k-test-0005 -P "$S" -i kit5-persist -q 1 -t 'kit/k-test-0005/#' >/dev/null 2>&1 &
K5=$!
kg_on_exit "kill $K5 2>/dev/null"
kg_wait_until 10 grep -q 'Sending SUBACK to kit5-persist$' "$KG_BROKER_LOG" || kg_fail "kit 5 not in"
k5st() { mosquitto_sub -p "$P" -u server -P pw -t '$SYS/broker/kitgate/kits/k-test-0005' -C 1 -W 3 2>/dev/null | jq -r .online; }
kg_wait_until 10 eval '[ "$(k5st)" = true ]' && kg_pass "kit 5 (persistent session) online" || kg_fail "kit 5 not online"
kill "$K5"; wait "$K5" 2>/dev/null
kg_wait_until 10 eval '[ "$(k5st)" = false ]' && kg_pass "kit 5 (persistent session) offline after it left (CLIENT_OFFLINE)" ||
	kg_fail "kit 5 still online after its persistent session's connection ended"

# wrong secret: refused after its (delayed) check, which opens the failure window
out=$(pub k-test-0004 "wrong-secret" kit/k-test-0004/x)
refused "$out" && kg_pass "wrong secret refused (delayed check)" || kg_fail "wrong secret: $out"
kg_wait_until 5 kg_broker_log_has 'auth: refused kit k-test-0004 from .* \(client .*\): wrong secret' && kg_pass "logged" ||
	kg_fail "no wrong-secret line"
out=$(pub k-test-0004 "$S" kit/k-test-0004/x)
refused "$out" && kg_pass "right secret inside the failure window refused at once" || kg_fail "window: $out"

# a storm: 30 kits at once, all in, a service client keeps its round trip
"$KG_TOOLS/kitgate-authbench" storm -p "$P" -n 30 -s "$S" -c 1 -q 1 -w >"$KG_BROKER_DIR/storm.out" 2>&1 ||
	kg_fail "storm tool failed: $(cat "$KG_BROKER_DIR/storm.out")"
cat "$KG_BROKER_DIR/storm.out"
grep -qE 'cycle 1: 30 kits admitted, .* all admitted after' "$KG_BROKER_DIR/storm.out" && kg_pass "storm: 30 kits admitted" ||
	kg_fail "storm: $(cat "$KG_BROKER_DIR/storm.out")"
kg_finish
