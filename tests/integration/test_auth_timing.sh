#!/usr/bin/env bash
# test_auth_timing.sh -- the auth postgres checks that bound time, moved out of test_auth.sh so that
# the rest of it runs in parallel with other tests: a burst of wrong secrets buys one PBKDF2 per
# failure window (the last, right secret falls inside the window), CONNECTs without a password open
# no window and run no PBKDF2 (counters read from the status published every second), and a busy
# kits table (~1,000 NOTIFYs a second) does not postpone reloads (a rotation kicks within 4 s, a new
# kit gets in within 4 s, the stream runs at >= 500 a second).
# ctest: RUN_SERIAL its failure-window checks depend on the window still being open; it bounds latencies
. "$(dirname "$0")/lib.sh"

DB=authtiming
. "$(dirname "$0")/auth_fixture.sh"

# a burst of wrong secrets for one kit buys one PBKDF2 per failure window, not one per CONNECT
auth_now() { sleep 1.2; kg_status_get "$1"; }   # status is published every second
runs0=$(auth_now .auth.pbkdf2_runs); boff0=$(kg_status_get .auth.backoff_refused)
for i in $(seq 1 20); do mosquitto_pub -p "$P" -V mqttv311 -u k-test-0005 -P "wrong-$i" -t kit/k-test-0005/x -m hi 2>/dev/null; done
out=$(pub k-test-0005 "$S5" kit/k-test-0005/x hi)
refused "$out" && kg_pass "right but uncached secret refused inside the failure window" || kg_fail "in the window: $out"
runs1=$(auth_now .auth.pbkdf2_runs); boff1=$(kg_status_get .auth.backoff_refused)
[ $((runs1 - runs0)) -ge 1 ] && [ $((runs1 - runs0)) -le 5 ] &&
	kg_pass "21 refused logins ran PBKDF2 $((runs1 - runs0)) times" || kg_fail "burst ran PBKDF2 $((runs1 - runs0)) times"
[ $((boff1 - boff0)) -ge 15 ] && kg_pass "$((boff1 - boff0)) refused without checking" ||
	kg_fail "only $((boff1 - boff0)) refused by the backoff"
kg_wait_until 5 kg_broker_log_has 'refused kit k-test-0005 from .* unchecked: recent failed logins' &&
	kg_pass "backoff refusal logged" || kg_fail "no backoff log line"
adm5() { grep -qE 'RC:(0|16)\)' <<<"$(pub k-test-0005 "$S5" kit/k-test-0005/x hi)"; }
t0=$(date +%s%N)
kg_wait_until 10 adm5 && kg_pass "right secret admitted again $(( ($(date +%s%N) - t0) / 1000000 )) ms later" ||
	kg_fail "right secret still refused 10 s after the burst"

# a CONNECT without a password checks nothing, so it costs the sender nothing: it must not open a
# failure window (that would lock the kit out for free), nor run or count a PBKDF2
nopw() { mosquitto_pub -p "$P" -V mqttv311 -u k-test-0006 -t kit/k-test-0006/x -m hi 2>&1; }
runs0=$(auth_now .auth.pbkdf2_runs); boff0=$(kg_status_get .auth.backoff_refused); nopw0=$(kg_status_get .auth.no_password)
out=$(nopw)
refused "$out" && kg_pass "kit CONNECT without a password refused" || kg_fail "no password: $out"
( for i in $(seq 1 10); do nopw >/dev/null; sleep 0.1; done ) &
NOPW=$!
out=$(pub k-test-0006 "$S6" kit/k-test-0006/x hi)
wait "$NOPW"
grep -qE 'RC:(0|16)\)' <<<"$out" &&
	kg_pass "k-test-0006's secret (cold) admitted amid CONNECTs without a password for it" ||
	kg_fail "k-test-0006 locked out by CONNECTs without a password: $out"
runs1=$(auth_now .auth.pbkdf2_runs); boff1=$(kg_status_get .auth.backoff_refused); nopw1=$(kg_status_get .auth.no_password)
kg_eq "status auth.no_password counts the 11 CONNECTs without a password" 11 $((nopw1 - nopw0))
kg_eq "CONNECTs without a password ran no PBKDF2 (only the right secret's check)" 1 $((runs1 - runs0))
kg_eq "CONNECTs without a password were not refused by a failure window" 0 $((boff1 - boff0))
kg_wait_until 5 kg_broker_log_has 'auth: refused kit k-test-0006 from .*: no password' &&
	kg_pass "CONNECT without a password logged" || kg_fail "no log line for the CONNECT without a password"

# ---------------------------------------------------------------- a busy kits table (NOTIFY stream)
# ~1,000 no-op UPDATEs a second on kits (a notification each, through the trigger) for 20 s must
# not postpone reloads: a rotated secret still disconnects its kit and a new kit gets in, within a
# couple of seconds, while the stream goes on (a debounce restarting on every notification waited
# for the stream to end).
NSQL="$KG_BROKER_DIR/notify-stream.sql"
yes "UPDATE kits SET name = name WHERE false;" | head -n 400000 >"$NSQL"   # outlasts the checks (killed after them)
xacts() { kg_psql $DB "SELECT xact_commit FROM pg_stat_database WHERE datname = '$DB'"; }
kit_sub rot2 k-test-0002 "$S2"
loads0=$(kg_status_get .auth_snapshot.loads)
x0=$(xacts); ts0=$(date +%s%N)
"$KG_PSQL" -X -q -h "$KG_PGHOST" -p "$KG_PGPORT" -U postgres -d $DB -o /dev/null -f "$NSQL" &
NSPID=$!
sleep 2
kill -0 "$NSPID" 2>/dev/null && kg_pass "notify stream running" || kg_fail "the notify stream ended early"
kg_psql $DB "UPDATE kits SET password_hash = '$HNEW' WHERE serial = 'k-test-0002'" >/dev/null
kicked_within "$KSUB" 4 "rotation under a stream of NOTIFYs"
SK11='a-new-kit-secret#000011'
kg_psql $DB "INSERT INTO kits (id, serial, password_hash) VALUES (11, 'k-test-0011', '$(kg_pbkdf2_hash sha256 1000 saltForKitEleven0000 "$SK11")')" >/dev/null
newkit() { grep -qE 'RC:(0|16)\)' <<<"$(pub k-test-0011 "$SK11" kit/k-test-0011/x hi)"; }
t0=$(date +%s%N)
kg_wait_until 4 newkit && kg_pass "a new kit got in under a stream of NOTIFYs after $(( ($(date +%s%N) - t0) / 1000000 )) ms" ||
	kg_fail "a new kit was refused for 4 s under a stream of NOTIFYs"
loads1=$(kg_status_get .auth_snapshot.loads)
running=0; kill -0 "$NSPID" 2>/dev/null && running=1
x1=$(xacts); ts1=$(date +%s%N)
kill "$NSPID" 2>/dev/null; wait "$NSPID" 2>/dev/null
rate=$(( (x1 - x0) * 1000000000 / (ts1 - ts0) ))
[ "$running" = 1 ] && [ "$rate" -ge 500 ] && kg_pass "the stream ran throughout: $rate transactions (NOTIFYs) a second" ||
	kg_fail "the notify stream: running=$running, $rate a second"
[ $((loads1 - loads0)) -ge 2 ] && [ $((loads1 - loads0)) -le 20 ] &&
	kg_pass "the stream coalesced into $((loads1 - loads0)) loads" || kg_fail "loads under the stream: $((loads1 - loads0))"


kg_broker_stop authtiming
kg_finish
