#!/usr/bin/env bash
# test_auth.sh -- auth postgres end to end: kits log in with the secrets behind real PBKDF2 hashes in
# kits.password_hash (made here with Python's hashlib), wrong secrets / unknown kits / unparsable
# hashes are refused, rotation and deletion disconnect the kit (NOTIFY trigger, and the periodic
# reload without it), a foreign or unknown peripheral never reaches a subscriber, the database
# down at start refuses kits until it is up, and password_file service users keep working.
. "$(dirname "$0")/lib.sh"


# kitgate-passwd (the operators' tool for kits.password_hash) against hashlib and the SPEC's known
# answer.
PASSWD_TOOL="$KG_TOOLS/kitgate-passwd"
kg_eq "kitgate-passwd: the SPEC's known answer" 'PBKDF2$sha256$2000$Z416JHE8vSmaiamV5TRz$z3y6FvWAZtyQe6TV+O/oyhC3oqnF8KJdlB5Lphi+Lwg=' \
	"$("$PASSWD_TOOL" --iterations 2000 --salt Z416JHE8vSmaiamV5TRz 'It all adds up to normality.')"
kg_eq "kitgate-passwd --sha512 = hashlib" "$(kg_pbkdf2_hash sha512 1000 someSalt 'p@ss w0rd$')" \
	"$(printf '%s\n' 'p@ss w0rd$' | "$PASSWD_TOOL" --sha512 --iterations 1000 --salt someSalt)"
kg_eq "kitgate-passwd: AstroPlant defaults (sha256, 15000, 20-character salt)" 1 \
	"$("$PASSWD_TOOL" x | grep -cE '^PBKDF2\$sha256\$15000\$[A-Za-z0-9]{20}\$[A-Za-z0-9+/]{43}=$')"

# AstroPlant-like secrets (24 characters, with ! @ # $ % &), their kits and the broker.
DB=auth
. "$(dirname "$0")/auth_fixture.sh"

# ---------------------------------------------------------------- logins
id1=$(uuid)
out=$(pub k-test-0001 "$S1" kit/k-test-0001/measurement/raw "$(raw "$id1" k-test-0001 11 1 21.5)")
grep -qE 'received PUBACK \(Mid: 1, RC:(0|16)\)' <<<"$out" && kg_pass "sha256/15000 secret: connected, PUBACK success" ||
	kg_fail "sha256/15000 secret: $out"
kg_wait_until 15 row_is "$id1" 1 && kg_pass "its measurement landed" || kg_fail "no row for $id1"

id2=$(uuid)
out=$(pub k-test-0002 "$S2" kit/k-test-0002/measurement/raw "$(raw "$id2" k-test-0002 21 2 7)")
grep -qE 'received PUBACK \(Mid: 1, RC:(0|16)\)' <<<"$out" && kg_pass "sha512/100000 (go-auth default) secret: connected" ||
	kg_fail "sha512/100000: $out"
kg_wait_until 15 row_is "$id2" 1 || kg_fail "no row for $id2"

out=$(pub k-test-0001 "$S1" kit/k-test-0001/measurement/raw "$(raw "$(uuid)" k-test-0001 11 1 1)")
grep -qE 'RC:(0|16)\)' <<<"$out" && kg_pass "second login of the same kit (login cache)" || kg_fail "cached login: $out"

out=$(pub k-test-0001 "wrong-${S1:6}" kit/k-test-0001/x hi)
refused "$out" && kg_pass "wrong secret refused" || kg_fail "wrong secret: $out"
kg_wait_until 5 kg_broker_log_has 'auth: refused kit k-test-0001 from .*: wrong secret' &&
	kg_pass "wrong secret logged" || kg_fail "no log line for the wrong secret"
out=$(pub k-test-0001 pw kit/k-test-0001/x hi)
refused "$out" && kg_pass "password_file's entry for a kit does not bypass its database secret" ||
	kg_fail "password_file pw for a database kit: $out"
if grep -qF -- "${S1:6}" "$KG_BROKER_LOG"; then kg_fail "a secret appears in the broker log"; else kg_pass "no secret in the log"; fi
out=$(pub k-test-0001 "" kit/k-test-0001/x hi)
refused "$out" && kg_pass "empty secret refused" || kg_fail "empty secret: $out"

# (a burst of wrong secrets in the failure window, CONNECTs without a password: test_auth_timing.sh)

out=$(pub k-nokit-0001 "$S1" kit/k-nokit-0001/x hi)
refused "$out" && kg_pass "unknown kit refused" || kg_fail "unknown kit: $out"
out=$(pub k-test-0003 pw kit/k-test-0003/x hi)
refused "$out" && kg_pass "kit with an unparsable hash refused" || kg_fail "unparsable hash: $out"
kg_wait_until 5 kg_broker_log_has 'refused kit k-test-0003: its kits.password_hash is not PBKDF2.*bad base64 key' &&
	kg_pass "unparsable hash logged with the serial" || kg_fail "no log line naming k-test-0003"

out=$(pub server pw kit/k-test-0009/kit-rpc/request hi)
grep -qE 'RC:(0|16)\)' <<<"$out" && kg_pass "service user from password_file still logs in" || kg_fail "service user: $out"

# ---------------------------------------------------------------- ownership against the snapshot
SUBOUT="$KG_BROKER_DIR/sub.all"
mosquitto_sub -p "$P" -V mqttv5 -u server -P pw -i auth-sub-all -t 'kit/#' -v >"$SUBOUT" 2>&1 &
SUBPID=$!
kg_wait_until 10 grep -q 'Sending SUBACK to auth-sub-all$' "$KG_BROKER_LOG" || kg_fail "subscriber: no SUBACK"
# Only what the snapshot knows to be wrong is rejected (a peripheral of another kit); an unknown
# peripheral or quantity type may be newer than the snapshot: it goes on to the sink, whose
# database check decides (here it refuses both: they exist nowhere), SPEC "Authentication".
bad_ids=()
id=$(uuid)
bad_ids+=("$id")
out=$(pub k-test-0001 "$S1" kit/k-test-0001/measurement/raw "$(raw "$id" k-test-0001 21 1 3)")
grep -q 'received PUBACK (Mid: 1, RC:135)' <<<"$out" && kg_pass "foreign_peripheral: PUBACK 0x87" || kg_fail "foreign_peripheral: $out"
unknown_ids=()
for c in "999 1 unknown_peripheral" "11 9 unknown_quantity_type"; do
	set -- $c
	id=$(uuid)
	unknown_ids+=("$id")
	out=$(pub k-test-0001 "$S1" kit/k-test-0001/measurement/raw "$(raw "$id" k-test-0001 "$1" "$2" 3)")
	grep -qE 'received PUBACK \(Mid: 1, RC:(0|16)\)' <<<"$out" && kg_pass "$3 (not in the snapshot): passed on to the sink" ||
		kg_fail "$3: $out"
done
idok=$(uuid)
pub k-test-0001 "$S1" kit/k-test-0001/measurement/raw "$(raw "$idok" k-test-0001 12 1 3)" >/dev/null
kg_wait_until 10 grep -q "$idok" "$SUBOUT" && kg_pass "subscriber got the valid one" || kg_fail "subscriber missed $idok"
kill "$SUBPID" 2>/dev/null; wait "$SUBPID" 2>/dev/null
for id in "${bad_ids[@]}"; do
	grep -q "$id" "$SUBOUT" && kg_fail "a rejected measurement reached a kit/# subscriber ($id)"
	[ "$(rows "$id")" = 0 ] || kg_fail "a rejected measurement was stored ($id)"
done
kg_pass "the foreign measurement reached neither the subscriber nor the database"
kg_wait_until 5 eval '[ "$(kg_status_get .rejected.foreign_peripheral)" = 1 ]' && kg_pass "counted as foreign_peripheral" ||
	kg_fail "status: foreign_peripheral = $(kg_status_get .rejected.foreign_peripheral)"
kg_eq "unknown ones not rejected by the broker (unknown_peripheral)" 0 "$(kg_status_get .rejected.unknown_peripheral)"
kg_eq "unknown ones not rejected by the broker (unknown_quantity_type)" 0 "$(kg_status_get .rejected.unknown_quantity_type)"
kg_wait_until 10 eval '[ "$(kg_status_get .sink.rejected.unknown_peripheral)" = 1 ]' &&
	kg_pass "the database refused the unknown peripheral (sink.rejected.unknown_peripheral)" ||
	kg_fail "sink.rejected.unknown_peripheral = $(kg_status_get .sink.rejected.unknown_peripheral)"
kg_wait_until 10 eval '[ "$(kg_status_get .sink.rejected.unknown_quantity_type)" = 1 ]' &&
	kg_pass "the database refused the unknown quantity type (sink.rejected.unknown_quantity_type)" ||
	kg_fail "sink.rejected.unknown_quantity_type = $(kg_status_get .sink.rejected.unknown_quantity_type)"
for id in "${unknown_ids[@]}"; do
	[ "$(rows "$id")" = 0 ] || kg_fail "a measurement the database refuses was stored ($id)"
done
kg_wait_until 5 eval '[ "$(kg_status_get .auth_snapshot.unknown_passed)" = 2 ]' && kg_pass "status auth_snapshot.unknown_passed = 2" ||
	kg_fail "status auth_snapshot.unknown_passed = $(kg_status_get .auth_snapshot.unknown_passed)"
kg_wait_until 5 eval '[ "$(kg_status_get .auth_snapshot.refresh_asked)" -ge 1 ]' &&
	kg_pass "an unknown id asked the loader for a fresh snapshot" || kg_fail "no refresh asked"

# ---------------------------------------------------------------- rotation and deletion (NOTIFY)
kit_sub rot1 k-test-0001 "$S1"
kg_psql $DB "UPDATE kits SET password_hash = '$HNEW' WHERE serial = 'k-test-0001'" >/dev/null
kicked_within "$KSUB" 5 "rotation (NOTIFY)"
kg_broker_log_has 'disconnecting kit k-test-0001: its secret changed' && kg_pass "rotation logged" || kg_fail "no kick line"
out=$(pub k-test-0001 "$S1" kit/k-test-0001/x hi)
refused "$out" && kg_pass "old secret refused after rotation (the login cache is bound to the hash)" || kg_fail "old secret after rotation: $out"
# the refused old secret opened a failure window: the new (uncached) secret is admitted after it
admnew() { grep -qE 'RC:(0|16)\)' <<<"$(pub k-test-0001 "$SNEW" kit/k-test-0001/x hi)"; }
kg_wait_until 35 admnew && kg_pass "new secret admitted after rotation" || kg_fail "new secret refused after rotation"

kit_sub del4 k-test-0004 "$S4"
kg_psql $DB "DELETE FROM kits WHERE serial = 'k-test-0004'" >/dev/null
kicked_within "$KSUB" 5 "deletion (NOTIFY)"
out=$(pub k-test-0004 "$S4" kit/k-test-0004/x hi)
refused "$out" && kg_pass "deleted kit refused" || kg_fail "deleted kit: $out"

# ---------------------------------------------------------------- a busy kits table (NOTIFY stream): test_auth_timing.sh

# ---------------------------------------------------------------- a snapshot older than the data
# No trigger and a long auth_refresh_s: the kit logs in, then its new peripheral and a new quantity
# type are inserted. Their first measurements must land in the table (the snapshot does not know
# them, the database does), and the loader is asked for a fresh snapshot.
DB3=auth_stale
URL3=$(kg_db_create $DB3 10) || kg_die "cannot create database $DB3"
set_hashes $DB3
auth_broker_start auth_stale "$URL3"
kg_wait_until 20 kg_broker_log_has 'auth: first kits snapshot' || kg_fail "auth_stale: no first snapshot"
rows3() { kg_psql $DB3 "select count(*) from raw_measurements where id = '$1'"; }
out=$(pub k-test-0002 "$S2" kit/k-test-0002/x hi)
grep -qE 'RC:(0|16)\)' <<<"$out" && kg_pass "auth_stale: the kit logged in" || kg_fail "auth_stale: login: $out"
# the retained status may still be one published before the first load: wait for a status after it
kg_wait_until 10 eval '[ "$(kg_status_get .auth_snapshot.loads)" -ge 1 ]' || kg_fail "auth_stale: no load in the status"
loads0=$(kg_status_get .auth_snapshot.loads)
kg_psql $DB3 "INSERT INTO peripherals (id, kit_id, kit_configuration_id, peripheral_definition_id, name, configuration)
	VALUES (500, 2, 2, 1, 'new-sensor', '{}')" >/dev/null || kg_fail "cannot insert peripheral 500"
kg_psql $DB3 "INSERT INTO quantity_types (id, physical_quantity, physical_unit) VALUES (50, 'Test quantity', 'tu')" >/dev/null ||
	kg_fail "cannot insert quantity type 50"
idp=$(uuid); idq=$(uuid); idf=$(uuid)
out=$(pub k-test-0002 "$S2" kit/k-test-0002/measurement/raw "$(raw "$idp" k-test-0002 500 1 3)")
grep -qE 'received PUBACK \(Mid: 1, RC:(0|16)\)' <<<"$out" && kg_pass "new peripheral: PUBACK 0" || kg_fail "new peripheral: $out"
out=$(pub k-test-0002 "$S2" kit/k-test-0002/measurement/raw "$(raw "$idq" k-test-0002 21 50 3)")
grep -qE 'received PUBACK \(Mid: 1, RC:(0|16)\)' <<<"$out" && kg_pass "new quantity type: PUBACK 0" || kg_fail "new quantity type: $out"
out=$(pub k-test-0002 "$S2" kit/k-test-0002/measurement/raw "$(raw "$idf" k-test-0002 31 1 3)")
grep -q 'received PUBACK (Mid: 1, RC:135)' <<<"$out" && kg_pass "another kit's peripheral: still 0x87" || kg_fail "foreign: $out"
kg_wait_until 10 eval '[ "$(rows3 "$idp")" = 1 ]' && kg_pass "the new peripheral's first measurement is in the table" ||
	kg_fail "the new peripheral's first measurement was lost"
kg_wait_until 10 eval '[ "$(rows3 "$idq")" = 1 ]' && kg_pass "the new quantity type's first measurement is in the table" ||
	kg_fail "the new quantity type's first measurement was lost"
kg_wait_until 10 eval '[ "$(kg_status_get .auth_snapshot.loads)" -gt "$loads0" ]' &&
	kg_pass "the unknown ids made the loader reload (auth_refresh_s is 300)" || kg_fail "no reload after the unknown ids"
# the fresh snapshot knows them: further measurements pass as known ones
sleep 2 # the status is published every second
passed0=$(kg_status_get .auth_snapshot.unknown_passed)
[ "$passed0" -ge 1 ] && kg_pass "counted in auth_snapshot.unknown_passed ($passed0)" || kg_fail "unknown_passed = $passed0"
idk=$(uuid)
pub k-test-0002 "$S2" kit/k-test-0002/measurement/raw "$(raw "$idk" k-test-0002 500 50 3)" >/dev/null
kg_wait_until 10 eval '[ "$(rows3 "$idk")" = 1 ]' || kg_fail "auth_stale: the measurement after the reload is not stored"
sleep 2
kg_eq "after the reload the snapshot knows them (nothing more passed as unknown)" "$passed0" "$(kg_status_get .auth_snapshot.unknown_passed)"
kg_broker_stop auth_stale

# ---------------------------------------------------------------- periodic reload without the trigger
DB2=auth_nt
URL2=$(kg_db_create $DB2 10) || kg_die "cannot create database $DB2"
set_hashes $DB2
kg_broker_start auth_nt <<CONF
plugin_opt_sink none
plugin_opt_database_url $URL2
plugin_opt_auth postgres
plugin_opt_auth_refresh_s 2
CONF
P=$KG_BROKER_PORT
kg_wait_until 20 kg_broker_log_has 'auth: first kits snapshot' || kg_fail "auth_nt: no first snapshot"
kit_sub rot5 k-test-0005 "$S5"
kg_psql $DB2 "UPDATE kits SET password_hash = '$HNEW' WHERE serial = 'k-test-0005'" >/dev/null
kicked_within "$KSUB" 8 "rotation without the trigger (auth_refresh_s 2)"
kit_sub del6 k-test-0006 "$S6"
kg_psql $DB2 "DELETE FROM kits WHERE serial = 'k-test-0006'" >/dev/null
kicked_within "$KSUB" 8 "deletion without the trigger (auth_refresh_s 2)"
kg_broker_stop auth_nt

# ---------------------------------------------------------------- database down at start
kg_pg_stop
kg_broker_start auth_down <<CONF
plugin_opt_sink none
plugin_opt_database_url $URL2
plugin_opt_auth postgres
plugin_opt_auth_refresh_s 300
CONF
P=$KG_BROKER_PORT
out=$(pub k-test-0002 "$S2" kit/k-test-0002/x hi)
refused "$out" && kg_pass "database down at start: kit refused (fail closed)" || kg_fail "db down: kit: $out"
kg_wait_until 5 kg_broker_log_has 'no kits snapshot loaded yet' && kg_pass "refusal logged" || kg_fail "no 'no snapshot' line"
out=$(pub server pw kit/k-test-0002/kit-rpc/request hi)
grep -qE 'RC:(0|16)\)' <<<"$out" && kg_pass "database down: service user still logs in" || kg_fail "db down: service user: $out"
kg_pg_start
admitted() { grep -qE 'RC:(0|16)\)' <<<"$(pub k-test-0002 "$S2" kit/k-test-0002/x hi)"; }
t0=$(date +%s%N)
kg_wait_until 20 admitted && kg_pass "kit admitted $(( ($(date +%s%N) - t0) / 1000000 )) ms after the database came up" ||
	kg_fail "kit still refused 20 s after the database came up"
# an outage after the first load keeps the snapshot
kg_pg_stop
out=$(pub k-test-0001 "$S1" kit/k-test-0001/x hi)
grep -qE 'RC:(0|16)\)' <<<"$out" && kg_pass "database down after the first load: kits still log in (last snapshot)" ||
	kg_fail "outage after load: $out"
kg_pg_start
kg_broker_stop auth_down

kg_finish
