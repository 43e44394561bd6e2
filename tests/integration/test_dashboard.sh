#!/usr/bin/env bash
# test_dashboard.sh -- the dashboard in a real browser: headless Debian chromium driven by
# playwright-core (npm, installed into tests/integration/browser/node_modules; no browser
# download) against a live broker with kits publishing. Checks what the page shows, clicks "send
# test measurement" and sees the row arrive on the page and in PostgreSQL. Screenshots go to
# docs/dashboard.png and docs/dashboard-phone.png (KG_SCREENSHOTS=dir to put them elsewhere).
. "$(dirname "$0")/lib.sh"

BROWSER_DIR="$KG_SOURCE_DIR/tests/integration/browser"
command -v node >/dev/null || kg_die "node is required"
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || kg_die "chromium is required"
if [ ! -d "$BROWSER_DIR/node_modules/playwright-core" ]; then
	(cd "$BROWSER_DIR" && npm ci --no-audit --no-fund --ignore-scripts) >"$KG_SCRATCH/npm.log" 2>&1 ||
		kg_die "npm ci in $BROWSER_DIR failed: $(tail -3 "$KG_SCRATCH/npm.log")"
fi
SHOTS=${KG_SCREENSHOTS:-$KG_SOURCE_DIR/docs}
mkdir -p "$SHOTS"

DB=dash
URL=$(kg_db_create $DB 10) || kg_die "cannot create database $DB"
HP=$(kg_free_port) || kg_die "no free port"
HPW="$KG_SCRATCH/dash.httpasswd"
mosquitto_passwd -c -b "$HPW" server pw || kg_die "mosquitto_passwd"
kg_broker_start dash <<CONF
plugin_opt_sink postgres
plugin_opt_database_url $URL
plugin_opt_other_topics allow
plugin_opt_stats_topics greenhouse/+/humidity
plugin_opt_http_listen 127.0.0.1:$HP
plugin_opt_http_password_file $HPW
CONF
P=$KG_BROKER_PORT

uuid() { cat /proc/sys/kernel/random/uuid; }
raw() { printf '{"id":"%s","kitSerial":"","datetime":%s,"peripheral":%s,"quantityType":%s,"value":%s}' "$@"; }
pub() { mosquitto_pub -p "$P" -q 1 -u "$1" -P pw -t "kit/$1/measurement/raw" -m "$2"; }

# kit 1 stays connected (its client id is looked up); kits 1-3 publish twice a second
mosquitto_sub -p "$P" -u k-test-0001 -P pw -i dash-kit1 -t 'kit/k-test-0001/#' >/dev/null 2>&1 &
kg_on_exit kill $!
pub k-test-0009 "$(raw "$(uuid)" "$(date +%s%3N)" 91 1 5)"   # seen once, then offline
(
	i=0
	while :; do
		now=$(date +%s%3N)
		pub k-test-0001 "$(raw "$(uuid)" "$now" 11 1 "$(( 20 + i % 7 )).5")"
		pub k-test-0001 "$(raw "$(uuid)" "$now" 12 2 "$(( 400 + (i * 13) % 50 ))")"
		pub k-test-0002 "$(raw "$(uuid)" "$now" 21 1 "$(( 18 + i % 3 ))")"
		mosquitto_pub -p "$P" -u server -P pw -t greenhouse/north/humidity -m "$(( 60 + i % 9 ))"
		[ $((i % 10)) = 0 ] && pub k-test-0003 "{\"id\":\"$(uuid)\",\"datetime\":$now,\"peripheral\":31,\"quantityType\":1,\"value\":1e999}"
		i=$((i + 1))
		sleep 0.5
	done
) >/dev/null 2>&1 &
LOOP=$!
kg_on_exit kill $LOOP
sleep 3

out=$(node "$BROWSER_DIR/dashboard_check.mjs" "http://127.0.0.1:$HP/" server pw "$SHOTS" 2>&1)
rc=$?
grep -E '^(PASS|FAIL):' <<<"$out"
[ $rc = 0 ] || { grep -vE '^(PASS|FAIL|TESTID)' <<<"$out" | tail -20; kg_fail "browser checks failed"; }
id=$(sed -n 's/^TESTID //p' <<<"$out")
row() { [ "$(kg_psql $DB "select value from raw_measurements where id = '$id'")" = 42.25 ]; }
[ -n "$id" ] && kg_wait_until 15 row && kg_pass "the dashboard's test measurement is in PostgreSQL ($id)" ||
	kg_fail "no PostgreSQL row for the dashboard's test measurement '$id'"
[ -s "$SHOTS/dashboard.png" ] && [ -s "$SHOTS/dashboard-phone.png" ] && kg_pass "screenshots in $SHOTS" || kg_fail "no screenshots"
kg_finish
