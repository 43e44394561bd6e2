#!/usr/bin/env bash
# test_tls.sh -- kits identified by their TLS client certificate (use_identity_as_username: the
# certificate's CN is the serial). Certificates are made by openssl here. A kit's certificate grants
# only its own topics (publish, subscribe), a claimed username cannot override the certificate, and
# clients without a certificate from the CA are refused at the handshake. Validation still applies.
# With use_username_as_clientid (what the README tells TLS listeners to set: certificate kits never
# reach the plugin's client-id guard), a kit cannot take over another kit's session by its client id.
. "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null || kg_die "openssl is not installed"
pki="$KG_SCRATCH/$KG_TEST_NAME-pki"
rm -rf "$pki"; mkdir -p "$pki"
ossl() { openssl "$@" >>"$pki/openssl.log" 2>&1 || kg_die "openssl $1 failed: $(tail -n 3 "$pki/openssl.log")"; }
# cert NAME CN CA: a key and a certificate signed by CA (ca or rogue).
cert() {
	local name=$1 cn=$2 ca=$3 ext=$pki/$1.ext
	ossl req -new -newkey rsa:2048 -nodes -keyout "$pki/$name.key" -subj "/CN=$cn" -out "$pki/$name.csr"
	if [ "$name" = server ]; then
		printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$ext"
	else
		printf 'extendedKeyUsage=clientAuth\n' >"$ext"
	fi
	ossl x509 -req -in "$pki/$name.csr" -CA "$pki/$ca.crt" -CAkey "$pki/$ca.key" -CAcreateserial \
		-days 2 -sha256 -extfile "$ext" -out "$pki/$name.crt"
}
for ca in ca rogue; do
	ossl req -x509 -new -newkey rsa:2048 -nodes -keyout "$pki/$ca.key" -subj "/CN=kitgate test $ca" \
		-days 2 -sha256 -out "$pki/$ca.crt"
done
cert server localhost ca
cert kit1 k-test-0001 ca
cert kit2 k-test-0002 ca
cert fake1 k-test-0001 rogue   # right CN, wrong CA
chmod 644 "$pki"/*

TLS_PORT=$(kg_free_port) || kg_die "no free port"
kg_broker_start tls <<CONF
plugin_opt_sink none
plugin_opt_other_topics allow
listener $TLS_PORT 127.0.0.1
cafile $pki/ca.crt
certfile $pki/server.crt
keyfile $pki/server.key
require_certificate true
use_identity_as_username true
use_username_as_clientid true
CONF
P=$KG_BROKER_PORT

uuid() { cat /proc/sys/kernel/random/uuid; }
raw() { printf '{"id":"%s","kitSerial":"","datetime":%s,"peripheral":%s,"quantityType":1,"value":%s}' "$(uuid)" "$(date +%s%3N)" "$1" "$2"; }
# tls_pub CERT TOPIC PAYLOAD [args]: MQTT v5 QoS 1 over TLS, debug output (shows the PUBACK reason).
tls_pub() {
	local c=$1 t=$2 m=$3; shift 3
	mosquitto_pub -d -h 127.0.0.1 -p "$TLS_PORT" --cafile "$pki/ca.crt" --cert "$pki/$c.crt" --key "$pki/$c.key" \
		-V mqttv5 -q 1 -t "$t" -m "$m" "$@" 2>&1
}
# Starts a subscriber on the plain listener as the service user; counts what it gets in $SUBOUT.
sub_all() {
	SUBOUT="$KG_BROKER_DIR/sub.$1"
	mosquitto_sub -p "$P" -u server -P pw -V mqttv5 -i "tls-watch-$1" -t 'kit/+/measurement/#' -W "$2" -v >"$SUBOUT" 2>/dev/null &
	SUBPID=$!
	kg_wait_until 10 grep -q "Sending SUBACK to tls-watch-$1\$" "$KG_BROKER_LOG" || kg_fail "watcher $1 got no SUBACK"
}

# ---- a kit's certificate grants its own topics
sub_all 1 8
out=$(tls_pub kit1 kit/k-test-0001/measurement/raw "$(raw 11 20.5)")
grep -qE 'received PUBACK \(Mid: 1, RC:(0|16)\)' <<<"$out" && kg_pass "kit certificate: own measurement accepted" \
	|| kg_fail "kit certificate: own measurement not accepted: $out"
kg_broker_log_has "New client connected .* u'k-test-0001'" && kg_pass "the broker took the CN as the username" \
	|| kg_fail "no client with username k-test-0001 in the broker log"

# ---- ... and nothing of another kit's
out=$(tls_pub kit1 kit/k-test-0002/measurement/raw "$(raw 21 1)")
grep -q 'RC:135' <<<"$out" && kg_pass "kit certificate: publish into another kit's topic gets 0x87" \
	|| kg_fail "kit certificate: publish into another kit's topic: $out"
out=$(tls_pub kit1 kit/k-test-0002/measurement/raw "$(raw 21 2)" -u k-test-0002)
grep -q 'RC:135' <<<"$out" && kg_pass "a claimed username does not override the certificate" \
	|| kg_fail "claimed username k-test-0002 with kit1's certificate: $out"
out=$(mosquitto_sub -d -h 127.0.0.1 -p "$TLS_PORT" --cafile "$pki/ca.crt" --cert "$pki/kit1.crt" --key "$pki/kit1.key" \
	-V mqttv5 -t 'kit/k-test-0002/#' -W 2 2>&1)
grep -qE 'Subscribed \(mid: [0-9]+\): 135' <<<"$out" && kg_pass "kit certificate: subscription to another kit refused (0x87)" \
	|| kg_fail "kit certificate: subscription to another kit: $out"
out=$(mosquitto_sub -d -h 127.0.0.1 -p "$TLS_PORT" --cafile "$pki/ca.crt" --cert "$pki/kit1.crt" --key "$pki/kit1.key" \
	-V mqttv5 -t 'kit/#' -W 2 2>&1)
grep -qE 'Subscribed \(mid: [0-9]+\): 135' <<<"$out" && kg_pass "kit certificate: kit/# refused (0x87)" \
	|| kg_fail "kit certificate: kit/#: $out"

# ---- validation applies over TLS too
out=$(tls_pub kit1 kit/k-test-0001/measurement/raw '{"id":"nope"}')
grep -q 'RC:135' <<<"$out" && kg_pass "invalid measurement over TLS gets 0x87" || kg_fail "invalid over TLS: $out"

wait "$SUBPID"
kg_eq "the watcher saw exactly the one valid measurement" 1 "$(grep -c '^kit/' "$SUBOUT")"
kg_eq "... on kit 1's topic" 1 "$(grep -c '^kit/k-test-0001/measurement/raw ' "$SUBOUT")"

# ---- kit 2's own certificate works for kit 2 (not a fluke of kit 1)
out=$(tls_pub kit2 kit/k-test-0002/measurement/raw "$(raw 21 3)")
grep -qE 'received PUBACK \(Mid: 1, RC:(0|16)\)' <<<"$out" && kg_pass "kit 2's certificate: own measurement accepted" \
	|| kg_fail "kit 2's certificate: $out"

# ---- client ids: kit 1 presenting kit 2's client id does not take over kit 2's session
# (use_username_as_clientid: the id becomes the certificate's CN). Kit 2 listens on its own topic.
K2OUT="$KG_BROKER_DIR/sub.kit2"
mosquitto_sub -d -h 127.0.0.1 -p "$TLS_PORT" --cafile "$pki/ca.crt" --cert "$pki/kit2.crt" --key "$pki/kit2.key" \
	-V mqttv5 -q 1 -i k-test-0002 -c -x 60 -t 'kit/k-test-0002/kit-rpc/#' -W 12 >"$K2OUT" 2>&1 &
K2PID=$!
kg_wait_until 10 grep -q "Sending SUBACK to k-test-0002\$" "$KG_BROKER_LOG" || kg_fail "kit 2's session got no SUBACK"
out=$(mosquitto_pub -d -h 127.0.0.1 -p "$TLS_PORT" --cafile "$pki/ca.crt" --cert "$pki/kit1.crt" --key "$pki/kit1.key" \
	-V mqttv5 -q 1 -i k-test-0002 -t kit/k-test-0001/media -m hi 2>&1)
grep -qE 'received PUBACK \(Mid: 1, RC:(0|16)\)' <<<"$out" && kg_pass "kit 1 claiming kit 2's client id connects (and publishes)" \
	|| kg_fail "kit 1 with kit 2's client id could not publish: $out"
kg_broker_log_has "New client connected .* as k-test-0001 .*u'k-test-0001'" && kg_pass "... its client id became its CN" \
	|| kg_fail "no connection with client id k-test-0001 in the broker log"
mosquitto_pub -p "$P" -u server -P pw -V mqttv5 -q 1 -t kit/k-test-0002/kit-rpc/ping -m after-claim
kg_wait_until 10 grep -q 'after-claim' "$K2OUT" && kg_pass "kit 2's session still receives after the claim" \
	|| kg_fail "kit 2's session lost: $(tail -n 5 "$K2OUT")"
kg_broker_log_has "Client k-test-0002 already connected, closing old connection" \
	&& kg_fail "kit 2's session was closed by another kit" || kg_pass "kit 2's session was never taken over"
kill "$K2PID" 2>/dev/null; wait "$K2PID" 2>/dev/null

# ---- no certificate, or one from another CA: refused at the handshake
out=$(mosquitto_pub -h 127.0.0.1 -p "$TLS_PORT" --cafile "$pki/ca.crt" -V mqttv5 -q 1 -t kit/k-test-0001/x -m y 2>&1)
[ $? -ne 0 ] && kg_pass "no client certificate: refused" || kg_fail "no client certificate was accepted: $out"
out=$(tls_pub fake1 kit/k-test-0001/measurement/raw "$(raw 11 1)")
grep -q 'received PUBACK' <<<"$out" && kg_fail "a certificate of another CA was accepted: $out" \
	|| kg_pass "certificate of another CA: refused"
kg_finish
