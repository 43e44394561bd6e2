#!/usr/bin/env bash
# test_http_hardening.sh -- the HTTP endpoint against hostile clients: DNS rebinding (a foreign Host
# gets 421, http_allowed_hosts lets a name in, the test-measurement POST needs a password file),
# security headers on every answer (401, 405, SSE, assets, API), "/app.js%00.txt" is no app.js, the
# Basic scheme is case-insensitive and a password with a NUL is no password, and 64 slow
# connections from 64 addresses leave /metrics answering (slowloris).
. "$(dirname "$0")/lib.sh"

HP=$(kg_free_port) || kg_die "no free port"
HPW="$KG_SCRATCH/hard.httpasswd"
rm -f "$HPW"
mosquitto_passwd -c -b "$HPW" server pw || kg_die "mosquitto_passwd"
H="http://127.0.0.1:$HP"
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
hdrs() { curl -s -D - -o /dev/null "$@" | tr -d '\r'; }
has_hdr() { grep -qi "^$1" <<<"$2"; }

# ---------------------------------------------------------------- with a password file
kg_broker_start hard1 <<CONF
plugin_opt_sink none
plugin_opt_http_listen 127.0.0.1:$HP
plugin_opt_http_password_file $HPW
CONF
kg_wait_until 10 kg__port_open "$HP" || kg_die "HTTP endpoint not up"

# security headers: every kind of answer
for what in "401 $H/api/v1/status" "200 -userver:pw $H/" "200 -userver:pw $H/api/v1/status" \
		"405 -userver:pw -XPOST $H/api/v1/status" "404 -userver:pw $H/nothing"; do
	set -- $what
	want=$1; shift
	h=$(hdrs --max-time 3 "$@")
	ok=1
	for x in 'X-Content-Type-Options: nosniff' 'Cache-Control: no-store' 'X-Frame-Options: DENY' \
			"Content-Security-Policy: frame-ancestors 'none'"; do
		has_hdr "$x" "$h" || { ok=0; kg_fail "$want answer ($*) lacks '$x'"; }
	done
	grep -q "^HTTP/1.1 $want" <<<"$h" || { ok=0; kg_fail "expected $want from $*: $(head -1 <<<"$h")"; }
	[ $ok = 1 ] && kg_pass "$want answer carries nosniff, no-store, X-Frame-Options DENY, frame-ancestors 'none'"
done
h=$(curl -s -D - -o /dev/null --max-time 2 -userver:pw "$H/api/v1/events" | tr -d '\r')
has_hdr 'Content-Type: text/event-stream' "$h" && has_hdr 'X-Content-Type-Options: nosniff' "$h" &&
	has_hdr 'Cache-Control: no-store' "$h" && has_hdr 'X-Frame-Options: DENY' "$h" &&
	kg_pass "SSE answer carries nosniff, no-store, X-Frame-Options" || kg_fail "SSE headers: $h"

# a NUL in the path
kg_eq "/app.js%00.txt is not app.js: 404" 404 "$(code -userver:pw "$H/app.js%00.txt")"
kg_eq "/app.js is served" 200 "$(code -userver:pw "$H/app.js")"
kg_eq "/index.html%00 is not the dashboard: 404" 404 "$(code -userver:pw "$H/index.html%00")"

# the Basic scheme
b64=$(printf 'server:pw' | base64)
kg_eq "lower-case 'basic' scheme: 200" 200 "$(code -H "Authorization: basic $b64" "$H/api/v1/status")"
kg_eq "upper-case 'BASIC' scheme: 200" 200 "$(code -H "Authorization: BASIC $b64" "$H/api/v1/status")"
kg_eq "password 'pw' followed by a NUL and junk: 401" 401 \
	"$(code -H "Authorization: Basic $(printf 'server:pw\0junk' | base64)" "$H/api/v1/status")"
kg_eq "not base64: 401" 401 "$(code -H 'Authorization: Basic !!!' "$H/api/v1/status")"

# DNS rebinding, with credentials
kg_eq "foreign Host: 421" 421 "$(code -userver:pw -H 'Host: evil.example' "$H/api/v1/status")"
kg_eq "foreign Host with the right port: 421" 421 "$(code -userver:pw -H "Host: evil.example:$HP" "$H/api/v1/status")"
kg_eq "foreign Host answer is JSON" misdirected_request \
	"$(curl -s -userver:pw -H 'Host: evil.example' "$H/api/v1/status" | jq -r .error)"
kg_eq "Host localhost on a loopback listener: 200" 200 "$(code -userver:pw -H "Host: localhost:$HP" "$H/api/v1/status")"
kg_eq "foreign Origin POST: 403" 403 "$(code -userver:pw -X POST -H 'Content-Type: application/json' \
	-H 'Origin: http://evil.example' --data-binary '{}' "$H/api/v1/kits/k-test-0001/test-measurement")"
kg_broker_stop

# ---------------------------------------------------------------- without a password file
kg_broker_start hard2 <<CONF
plugin_opt_sink none
plugin_opt_http_listen 127.0.0.1:$HP
plugin_opt_http_allowed_hosts kitgate.internal, dash.example
CONF
kg_wait_until 10 kg__port_open "$HP" || kg_die "HTTP endpoint not up"
kg_eq "no password file: own Host 200" 200 "$(code "$H/api/v1/status")"
kg_eq "no password file: foreign Host 421" 421 "$(code -H 'Host: evil.example' "$H/api/v1/status")"
kg_eq "no password file: foreign Host on the dashboard 421" 421 "$(code -H 'Host: rebind.evil.example:80' "$H/")"
kg_eq "no password file: foreign Host on /metrics 421" 421 "$(code -H 'Host: evil.example' "$H/metrics")"
kg_eq "a name of http_allowed_hosts: 200" 200 "$(code -H 'Host: dash.example:8080' "$H/api/v1/status")"
kg_eq "the other name of http_allowed_hosts: 200" 200 "$(code -H 'Host: KITGATE.internal' "$H/api/v1/status")"
kg_eq "another IP than the listen address: 421" 421 "$(code -H "Host: 10.1.2.3:$HP" "$H/api/v1/status")"
good='{"id":"9b2f0c58-8f2e-4a51-9d6b-0d1c2e3f4a5b","kitSerial":"","datetime":'"$(date +%s%3N)"',"peripheral":11,"quantityType":1,"value":1}'
out=$(curl -s -w '\n%{http_code}' -X POST -H 'Content-Type: application/json' --data-binary "$good" "$H/api/v1/kits/k-test-0001/test-measurement")
kg_eq "no password file: test-measurement POST refused 403 auth_required" "403 auth_required" \
	"$(tail -1 <<<"$out") $(head -1 <<<"$out" | jq -r .error)"
grep -q 'http_password_file' <<<"$(head -1 <<<"$out" | jq -r .message)" &&
	kg_pass "the 403 says what to configure" || kg_fail "403 message: $(head -1 <<<"$out")"
kg_eq "foreign Host POST: 421" 421 "$(code -X POST -H 'Host: evil.example' -H 'Origin: http://evil.example' \
	-H 'Content-Type: application/json' --data-binary "$good" "$H/api/v1/kits/k-test-0001/test-measurement")"

# slowloris: 64 connections from 127.0.0.2 .. 127.0.0.65, each sending a header byte now and then
SLOW_LOG="$KG_SCRATCH/slow.log"
python3 - "$HP" 64 20 >"$SLOW_LOG" 2>&1 <<'PY' &
import socket, sys, time
port, n, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
socks = []
for i in range(n):
    s = socket.socket()
    s.bind(("127.0.0.%d" % (2 + i), 0))
    s.connect(("127.0.0.1", port))
    s.send(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    socks.append(s)
print("open", len(socks), flush=True)
end = time.time() + secs
while time.time() < end:
    for s in socks:
        try: s.send(b"X")
        except OSError: pass
    time.sleep(1)
PY
SLOW=$!
kg_on_exit kill $SLOW
kg_wait_until 10 grep -q '^open 64' "$SLOW_LOG" || kg_fail "slow clients: $(cat "$SLOW_LOG")"
sleep 2
for i in 1 2 3; do
	r=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 2 "$H/metrics")
	kg_eq "with 64 slow connections open, /metrics from 127.0.0.1 answers within 2 s (try $i: $r)" 200 "${r%% *}"
done
r=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$H/")
kg_eq "with 64 slow connections open, the dashboard answers" 200 "$r"
kill $SLOW 2>/dev/null
wait $SLOW 2>/dev/null
kg_finish
