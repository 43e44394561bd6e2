#!/usr/bin/env bash
# bench_sparkplug.sh -- Sparkplug B bridge benchmark (not a ctest test): decoder alone, kg_bridge__transform, and end to end MQTT -> kitgate -> Kafka mock for Sparkplug B vs plain JSON.
# Usage: KG_BUILD_DIR=build-rel bash tests/integration/bench_sparkplug.sh [MESSAGES] (default 20000).
. "$(dirname "$0")/lib.sh"

n=${1:-20000}
bench="$KG_TOOLS/kitgate-spbench"
[ -x "$bench" ] || kg_die "not built: $bench"

"$bench" decode --seconds 3 || kg_fail "decode benchmark failed"
"$bench" transform --seconds 3 || kg_fail "transform benchmark failed"

kg_kafka_start --brokers 1 --partitions 1
kg_broker_start spbench <<EOF2
plugin_opt_sink none
plugin_opt_kafka_brokers $KG_KAFKA_BOOTSTRAP
plugin_opt_bridge_topics spBv1.0/#
plugin_opt_bridge_topics uns/#
plugin_opt_other_topics allow
EOF2
"$bench" e2e -p "$KG_BROKER_PORT" -b "$KG_KAFKA_BOOTSTRAP" --messages "$n" || kg_fail "e2e Sparkplug B failed"
"$bench" e2e -p "$KG_BROKER_PORT" -b "$KG_KAFKA_BOOTSTRAP" --messages "$n" --json || kg_fail "e2e plain JSON failed"
kg_eq "nothing undecodable" 0 "$(kg_status_get .bridge.undecodable)"
kg_broker_stop
kg_finish
