# auth_fixture.sh -- sourced by test_auth.sh and test_auth_timing.sh (after lib.sh, with DB set to
# the database and broker name): AstroPlant-like kit secrets and their PBKDF2 hashes (hashlib),
# the database DB with them and the NOTIFY trigger, a broker with auth postgres whose first kits
# snapshot has loaded (port in P), and the helpers both tests use (measurements, rows, a kit
# subscriber and its kick).

# AstroPlant-like secrets (24 characters, with ! @ # $ % &).
S1='q7!Rm@x#T$v%W&z2Kp9LbN4c'
S2='go-auth-default!sha512#1'
S4='deleted-kit-secret@@1234'
S5='periodic-refresh&secret5'
S6='db-down-at-start%secret6'
SNEW='rotated-secret$$$0000000'
H1=$(kg_pbkdf2_hash sha256 15000 Z416JHE8vSmaiamV5TRz "$S1")
H2=$(kg_pbkdf2_hash sha512 100000 goAuthDefaultSalt123 "$S2")
H4=$(kg_pbkdf2_hash sha256 15000 saltForKitFour000000 "$S4")
H5=$(kg_pbkdf2_hash sha256 15000 saltForKitFive000000 "$S5")
H6=$(kg_pbkdf2_hash sha256 15000 saltForKitSix0000000 "$S6")
HNEW=$(kg_pbkdf2_hash sha256 15000 rotatedSalt000000000 "$SNEW")

set_hashes() { # DB
	kg_psql "$1" "UPDATE kits SET password_hash = CASE serial
		WHEN 'k-test-0001' THEN '$H1' WHEN 'k-test-0002' THEN '$H2'
		WHEN 'k-test-0003' THEN 'PBKDF2\$sha256\$15000\$salt\$not*base64'
		WHEN 'k-test-0004' THEN '$H4' WHEN 'k-test-0005' THEN '$H5' WHEN 'k-test-0006' THEN '$H6'
		ELSE password_hash END" >/dev/null || kg_fail "cannot set password hashes in $1"
}

URL=$(kg_db_create $DB 10) || kg_die "cannot create database $DB"
set_hashes $DB
kg__psql -d $DB -f "$KG_SOURCE_DIR/schema/kitgate-notify.sql" >/dev/null || kg_fail "cannot install the NOTIFY trigger"

# auth_broker_start NAME URL: a broker with auth postgres against URL (the tests' one configuration).
auth_broker_start() {
	kg_broker_start "$1" <<CONF
plugin_opt_sink postgres
plugin_opt_database_url $2
plugin_opt_auth postgres
plugin_opt_auth_refresh_s 300
plugin_opt_other_topics allow
plugin_opt_stats_interval_s 1
CONF
	P=$KG_BROKER_PORT
}
auth_broker_start "$DB" "$URL"
kg_wait_until 20 kg_broker_log_has 'auth: first kits snapshot: 10 kits' || kg_fail "no first snapshot within 20 s"

uuid() { cat /proc/sys/kernel/random/uuid; }
now_ms() { date +%s%3N; }
raw() { # raw ID SERIAL PERIPHERAL QT VALUE
	printf '{"id":"%s","kitSerial":"%s","datetime":%s,"peripheral":%s,"quantityType":%s,"value":%s}' \
		"$1" "$2" "$(now_ms)" "$3" "$4" "$5"
}
# pub USER SECRET TOPIC PAYLOAD: MQTT v5 QoS 1 with debug output (CONNACK and PUBACK reasons).
pub() { mosquitto_pub -d -p "$P" -V mqttv5 -q 1 -u "$1" -P "$2" -t "$3" -m "$4" 2>&1; }
refused() { grep -qiE 'not authori[sz]ed|Connection Refused|CONNACK \(.*135\)|reason code 135' <<<"$1"; }
rows() { kg_psql $DB "select count(*) from raw_measurements where id = '$1'"; }
row_is() { [ "$(rows "$1")" = "$2" ]; }

# kit_sub NAME USER SECRET: a subscriber that stays connected; its pid in KSUB. mosquitto_sub
# reconnects after a kick and then exits on the refused CONNACK.
kit_sub() {
	mosquitto_sub -p "$P" -V mqttv311 -u "$2" -P "$3" -i "$1" -t "kit/$2/#" >"$KG_BROKER_DIR/$1.out" 2>&1 &
	KSUB=$!
	kg_wait_until 10 grep -q "Sending SUBACK to $1\$" "$KG_BROKER_LOG" || kg_fail "$1: no SUBACK"
}
gone() { ! kill -0 "$1" 2>/dev/null; }
kicked_within() { # PID SECONDS WHAT
	local t0=$(date +%s%N)
	if kg_wait_until "$2" gone "$1"; then
		kg_pass "$3: disconnected after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
	else
		kg_fail "$3: still connected after $2 s"
		kill "$1" 2>/dev/null
	fi
	wait "$1" 2>/dev/null
}
