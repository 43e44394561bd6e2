#!/usr/bin/env bash
# test_acl_example.sh -- the acl_file the README and the package ship (packaging/acl.example), run
# as is with the default other_topics defer: the service user reads kitgate's status on $SYS, a kit
# does not, non-kit topics follow the file, and kit/ topics are still the plugin's decision.
. "$(dirname "$0")/lib.sh"

ACL="$KG_SOURCE_DIR/packaging/acl.example"
[ -f "$ACL" ] || kg_die "missing $ACL"
kg_broker_start aclx <<CONF
plugin_opt_sink none
acl_file $ACL
CONF
P=$KG_BROKER_PORT
status_as() { mosquitto_sub -p "$P" -u "$1" -P pw -V mqttv5 -t '$SYS/broker/kitgate/status' -C 1 -W 4 2>/dev/null; }

out=$(status_as server)
[ "${out:0:1}" = "{" ] && kg_pass "service user reads \$SYS/broker/kitgate/status through the example acl_file" \
	|| kg_fail "service user got no status: '$out'"
out=$(status_as k-test-0001)
[ -z "$out" ] && kg_pass "a kit does not read the broker-wide status" || kg_fail "kit read the status: $out"

# non-kit topics follow the file: server may use devices/#, a kit may not
got=$(mosquitto_sub -p "$P" -u server -P pw -t 'devices/#' -C 1 -W 5 2>/dev/null &
	sleep 1; mosquitto_pub -p "$P" -u server -P pw -t devices/d1/temp -m 7 -q 1; wait)
kg_eq "service user: devices/# round trip" "7" "$got"
out=$(mosquitto_pub -d -p "$P" -u k-test-0001 -P pw -V mqttv5 -q 1 -t devices/d1/temp -m 8 2>&1)
grep -q 'RC:135' <<<"$out" && kg_pass "kit: devices/ denied by the acl_file (0x87)" || kg_fail "kit publish to devices/: $out"

# kit/ stays the plugin's: a kit publishes its own measurement topic, the file has no kit/ line
out=$(mosquitto_pub -d -p "$P" -u k-test-0001 -P pw -V mqttv5 -q 1 -t kit/k-test-0001/media -m x 2>&1)
grep -qE 'received PUBACK \(Mid: 1, RC:(0|16)\)' <<<"$out" && kg_pass "kit/<own>/ allowed by the plugin despite the acl_file" \
	|| kg_fail "kit own topic: $out"
kg_finish
