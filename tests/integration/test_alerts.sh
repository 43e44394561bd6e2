#!/usr/bin/env bash
# test_alerts.sh -- the shipped Prometheus alert rules (packaging/kitgate-alerts.yml) are valid,
# name only metrics the plugin exports, and fire as documented (promtool test rules).
set -u
. "$(dirname "$0")/lib.sh"

command -v promtool >/dev/null 2>&1 || kg_skip "promtool not installed (ci/deps installs prometheus)"
rules="$KG_SOURCE_DIR/packaging/kitgate-alerts.yml"
out=$(promtool check rules "$rules" 2>&1)
if [ $? -eq 0 ]; then kg_pass "promtool check rules: $(echo "$out" | tail -1)"; else kg_fail "promtool check rules: $out"; fi

# Every kitgate_* metric the rules use is one a running plugin exports on /metrics.
url=$(kg_db_create alerts 2) || kg_die "cannot create database alerts"
hp=$(kg_free_port) || kg_die "no free port"
kg_broker_start alerts <<CONF
plugin_opt_database_url $url
plugin_opt_http_listen 127.0.0.1:$hp
CONF
metrics=""
got_metrics() { metrics=$(curl -sf "http://127.0.0.1:$hp/metrics") && [ -n "$metrics" ]; }
kg_wait_until 10 got_metrics || kg_fail "no /metrics from the plugin"
missing=""
for m in $(grep -oE 'kitgate_[a-z_]+' "$rules" | sort -u); do
	grep -qE "^$m(\{| )" <<<"$metrics" || missing="$missing $m"
done
if [ -z "$missing" ]; then kg_pass "every metric in the rules is on the plugin's /metrics"; else kg_fail "rules name metrics /metrics lacks:$missing"; fi
kg_broker_stop

# Unit tests of the rules on synthetic series: a disconnected sink alerts after 5 minutes, not before;
# append errors alert at once; a healthy instance alerts nothing.
t="$KG_SCRATCH/alerts"
mkdir -p "$t"
cp "$rules" "$t/kitgate-alerts.yml"
cat >"$t/tests.yml" <<'YML'
rule_files: [kitgate-alerts.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'kitgate_sink_connected{instance="a",job="kitgate"}'
        values: '1 1 0 0 0 0 0 0 0 0'
      - series: 'kitgate_spool_append_errors_total{instance="a",job="kitgate"}'
        values: '0 0 0 0 0 3 3 3 3 3'
      - series: 'kitgate_sink_connected{instance="b",job="kitgate"}'
        values: '1 1 1 1 1 1 1 1 1 1'
    alert_rule_test:
      - eval_time: 5m
        alertname: KitgateSinkDisconnected
        exp_alerts: []
      - eval_time: 8m
        alertname: KitgateSinkDisconnected
        exp_alerts:
          - exp_labels: {severity: warning, instance: a, job: kitgate}
            exp_annotations:
              summary: "kitgate on a has had no sink connection for 5 minutes"
              description: "Measurements are accepted and spooled, nothing is lost, but nothing reaches PostgreSQL/Kafka. Check database_url / kafka_brokers and the database or Kafka cluster; the spool replays by itself when the sink is back."
      - eval_time: 6m
        alertname: KitgateSpoolAppendErrors
        exp_alerts:
          - exp_labels: {severity: critical, instance: a, job: kitgate}
            exp_annotations:
              summary: "kitgate on a cannot append to its spool"
              description: "QoS 1/2 publishers get no PUBACK (they retry) and QoS 0 measurements are dropped while this lasts. Usually the disk of spool_dir is full or the directory is gone: free space; appends resume by themselves."
YML
out=$(cd "$t" && promtool test rules tests.yml 2>&1)
if [ $? -eq 0 ]; then kg_pass "promtool test rules: the alerts fire as documented"; else kg_fail "promtool test rules: $out"; fi
kg_finish
