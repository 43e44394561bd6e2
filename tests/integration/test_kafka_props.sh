#!/usr/bin/env bash
# test_kafka_props.sh -- a kafka.<property> that librdkafka refuses stops the broker at start with
# one line naming the option (issue 9: `kafka.acks banana` used to pass init; the worker then
# exited and the broker kept PUBACKing into a spool nothing read). Good properties still start,
# with no Kafka broker reachable (init never fails because a server is down).
. "$(dirname "$0")/lib.sh"

dead_port=$(kg_free_port) || kg_die "no free port"

# refused_start NAME PROPERTY VALUE: mosquitto with the plugin and that property must exit non-zero
# within 20 s and log one line naming kafka.PROPERTY.
refused_start() {
	local name=$1 prop=$2 value=$3 dir="$KG_SCRATCH/$1" port rc
	rm -rf "$dir"
	mkdir -p "$dir/spool"
	port=$(kg_free_port) || kg_die "no free port"
	cat >"$dir/mosquitto.conf" <<CONF
per_listener_settings false
allow_anonymous false
log_dest file $dir/mosquitto.log
log_type error
listener $port 127.0.0.1
plugin $KG_PLUGIN
plugin_opt_spool_dir $dir/spool
plugin_opt_sink kafka
plugin_opt_kafka_brokers 127.0.0.1:$dead_port
plugin_opt_kafka.$prop $value
CONF
	timeout 20 mosquitto -c "$dir/mosquitto.conf" >"$dir/mosquitto.out" 2>&1
	rc=$?
	if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]; then
		kg_fail "kafka.$prop $value: broker did not refuse to start (exit $rc)"
	elif [ "$(grep -c "kafka\\.$prop" "$dir/mosquitto.log" "$dir/mosquitto.out" | awk -F: '{s += $2} END {print s}')" -ge 1 ]; then
		kg_pass "kafka.$prop $value: refused at start (exit $rc): $(grep -h "kafka\\.$prop" "$dir/mosquitto.log" "$dir/mosquitto.out" | head -n 1)"
	else
		kg_fail "kafka.$prop $value: exit $rc but no line naming kafka.$prop"
		tail -n 5 "$dir/mosquitto.log" "$dir/mosquitto.out"
	fi
}

refused_start acks-banana acks banana
refused_start linger-soon linger.ms soon
refused_start unknown-prop no.such.property 1

# control: valid properties start, although no Kafka broker listens on the bootstrap address
kg_broker_start good <<CONF
plugin_opt_sink kafka
plugin_opt_kafka_brokers 127.0.0.1:$dead_port
plugin_opt_kafka.acks all
plugin_opt_kafka.linger.ms 20
CONF
kg_pass "valid kafka.* properties start the broker with Kafka down"
kg_broker_stop

kg_finish
