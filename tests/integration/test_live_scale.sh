#!/usr/bin/env bash
# test_live_scale.sh -- the live view with 20,000 kits tracked: the broker thread's work per tick
# and the size of a server-sent event stay under bounds independent of the number of kits
# (measured with the plugin's counters, not with time), and the kit list is paged, searchable by
# serial prefix and walkable with a cursor. Then the kit table's bound (live_max_kits): an evicted
# kit's retained $SYS status is cleared, and rejected publishes of a service user create no kit.
. "$(dirname "$0")/lib.sh"

FLOOD="$KG_BUILD_DIR/tests/kit_flood"
[ -x "$FLOOD" ] || kg_die "not built: $FLOOD"
N=${KG_SCALE_KITS:-20000}
TICK_BOUND=256            # KIT_VISITS_PER_TICK in plugin/broker/live.c
SSE_BOUND=65536           # bytes: status + 200 recent rejections fit well under it
HP=$(kg_free_port) || kg_die "no free port"
H="http://127.0.0.1:$HP"
metric() { curl -s "$H/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
total() { curl -s -D - -o /dev/null "$H/api/v1/kits?limit=1" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-total-count" {print $2}'; }

kg_broker_start scale <<CONF
plugin_opt_sink none
plugin_opt_other_topics allow
plugin_opt_stats_max_streams 1000
plugin_opt_http_listen 127.0.0.1:$HP
CONF
P=$KG_BROKER_PORT
kg_wait_until 10 kg__port_open "$HP" || kg_die "HTTP endpoint not up"

# a few kits first: the SSE event size with few kits
"$FLOOD" "$P" server pw k-small- 20 >/dev/null || kg_fail "flood of 20 kits"
curl -s -N --max-time 3 "$H/api/v1/events" >"$KG_SCRATCH/sse-small.txt"
small=$(awk '/^data: /{ if (length($0) > m) m = length($0) } END {print m + 0}' "$KG_SCRATCH/sse-small.txt")

t0=$(date +%s%N)
"$FLOOD" "$P" server pw k-scale- "$N" >"$KG_SCRATCH/flood.out" 2>&1 || kg_fail "flood: $(cat "$KG_SCRATCH/flood.out")"
echo "published one measurement for each of $N kits in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
all_listed() { [ "$(total)" = $((N + 20)) ]; }
kg_wait_until 60 all_listed && kg_pass "$((N + 20)) kits listed (X-Total-Count)" || kg_fail "kits listed: $(total)"

# ---- bounds, measured with counters
curl -s -N --max-time 4 "$H/api/v1/events" >"$KG_SCRATCH/sse-big.txt"
big=$(awk '/^data: /{ if (length($0) > m) m = length($0) } END {print m + 0}' "$KG_SCRATCH/sse-big.txt")
events=$(grep -c '^event: state$' "$KG_SCRATCH/sse-big.txt")
echo "SSE event bytes: $small with 20 kits, $big with $((N + 20)) kits ($events events in 4 s)"
[ "$events" -ge 2 ] && kg_pass "SSE events flow with $N kits ($events in 4 s)" || kg_fail "only $events SSE events in 4 s"
[ "$big" -gt 0 ] && [ "$big" -lt $SSE_BOUND ] && kg_pass "an SSE event with $N kits is $big bytes (< $SSE_BOUND, independent of N)" ||
	kg_fail "SSE event of $big bytes with $N kits (bound $SSE_BOUND)"
m=$(metric kitgate_http_sse_event_bytes_max)
[ -n "$m" ] && [ "${m%.*}" -lt $SSE_BOUND ] && kg_pass "kitgate_http_sse_event_bytes_max $m < $SSE_BOUND" ||
	kg_fail "kitgate_http_sse_event_bytes_max: '$m'"
tk=$(metric kitgate_live_tick_kits_max)
visits=$(metric kitgate_live_kit_visits_total)
[ -n "$tk" ] && [ "${tk%.*}" -le $TICK_BOUND ] && [ "${tk%.*}" -gt 0 ] &&
	kg_pass "kits the broker thread visited in one tick: at most $tk (bound $TICK_BOUND) with $N kits ($visits visits in all)" ||
	kg_fail "kitgate_live_tick_kits_max: '$tk' (bound $TICK_BOUND)"
# the statistics flush (4 a second) visits only changed or due streams: over 3 s with the kits
# quiet, at most 3 visits per stream (a window edge passing: checked in its wheel slot by up to two
# flushes of that 256 ms tick, then visited when due), where the full scan visited every stream at
# every flush (>= 8 flushes in 3 s)
imetric() { metric "$1" | awk '{printf "%d", $1}'; }
f0=$(imetric kitgate_stats_flushes_total); v0=$(imetric kitgate_stats_flush_visits_total)
sleep 3
f1=$(imetric kitgate_stats_flushes_total); v1=$(imetric kitgate_stats_flush_visits_total)
streams=$(imetric kitgate_stats_streams)
echo "statistics flush: $((v1 - v0)) streams visited in $((f1 - f0)) flushes, $streams streams"
[ -n "$v1" ] && [ $((f1 - f0)) -ge 8 ] && [ $((v1 - v0)) -le $((3 * streams)) ] &&
	kg_pass "statistics flushes visited $((v1 - v0)) streams in $((f1 - f0)) flushes with $streams streams (a full scan: $(( (f1 - f0) * streams )))" ||
	kg_fail "statistics flush visits: $((v1 - v0)) in $((f1 - f0)) flushes, $streams streams"
snap_s=$(metric kitgate_http_snapshot_seconds_total); snaps=$(metric kitgate_http_snapshots_total)
awk -v t="$snap_s" -v n="$snaps" 'BEGIN { if (n > 0) printf "broker-thread time per snapshot: %.1f us (%d snapshots)\n", t / n * 1e6, n }'

# ---- paging, cursor, search
j=$(curl -s "$H/api/v1/kits?limit=50")
kg_eq "a page of 50, sorted by serial" "50 k-scale-00000 k-scale-00049" "$(jq -r '"\(length) \(.[0].serial) \(.[49].serial)"' <<<"$j")"
kg_eq "a kit carries its streams (the newest: stats_max_streams 1000 evicted the oldest kits' streams)" \
	"1 kit/k-scale-$(printf %05d $((N - 1)))/stats/1/1" \
	"$(curl -s "$H/api/v1/kits?prefix=k-scale-$(printf %05d $((N - 1)))" | jq -r '.[0].streams | "\(length) \(.[0].topic)"')"
kg_eq "default page: 100 kits" 100 "$(curl -s "$H/api/v1/kits" | jq length)"
kg_eq "offset near the end" "10 k-small-00019" "$(curl -s "$H/api/v1/kits?offset=$((N + 10))&limit=50" | jq -r '"\(length) \(.[9].serial)"')"
next=$(curl -s -D - -o /dev/null "$H/api/v1/kits?limit=50" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-next-after" {print $2}')
kg_eq "a cursor for the next page" k-scale-00049 "$next"
kg_eq "the page after the cursor" "k-scale-00050 50" "$(curl -s "$H/api/v1/kits?after=$next&limit=50" | jq -r '"\(.[0].serial) \(length)"')"
kg_eq "search by serial prefix" "10 k-scale-12340 k-scale-12349" \
	"$(curl -s "$H/api/v1/kits?prefix=k-scale-1234" | jq -r '"\(length) \(.[0].serial) \(.[9].serial)"')"
kg_eq "search total" 20 "$(curl -s -D - -o /dev/null "$H/api/v1/kits?prefix=k-small-" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-total-count" {print $2}')"
kg_eq "limit capped at 1000" 1000 "$(curl -s "$H/api/v1/kits?limit=5000" | jq length)"
kg_eq "bad limit: 400" 400 "$(curl -s -o /dev/null -w '%{http_code}' "$H/api/v1/kits?limit=-1")"
kg_eq "one kit" "k-scale-12345 1" "$(curl -s "$H/api/v1/kits/k-scale-12345" | jq -r '"\(.serial) \(.accepted)"')"
kg_broker_stop

# ---------------------------------------------------------------- the kit table's bound
kg_broker_start evict <<CONF
plugin_opt_sink none
plugin_opt_other_topics allow
plugin_opt_live_max_kits 5
plugin_opt_http_listen 127.0.0.1:$HP
CONF
P=$KG_BROKER_PORT
kg_wait_until 10 kg__port_open "$HP" || kg_die "HTTP endpoint not up"
statuses() { mosquitto_sub -p "$P" -u server -P pw -t '$SYS/broker/kitgate/kits/#' --retained-only -W 2 -v 2>/dev/null | awk '$2 != "" {print $1}' | sort; }
"$FLOOD" "$P" server pw k-ev- 5 >/dev/null || kg_fail "flood k-ev 0-4"
sleep 2   # their retained status is out
kg_eq "five kits, five retained statuses" 5 "$(statuses | wc -l)"
"$FLOOD" "$P" server pw k-ev- 3 5 >/dev/null || kg_fail "flood k-ev 5-7"
sleep 2
s=$(statuses)
kg_eq "past live_max_kits 5: the three oldest evicted kits' retained statuses are cleared" \
	"\$SYS/broker/kitgate/kits/k-ev-00003 \$SYS/broker/kitgate/kits/k-ev-00004 \$SYS/broker/kitgate/kits/k-ev-00005 \$SYS/broker/kitgate/kits/k-ev-00006 \$SYS/broker/kitgate/kits/k-ev-00007" \
	"$(tr '\n' ' ' <<<"$s" | sed 's/ $//')"
kg_eq "kitgate_live_status_cleared_total" 3 "$(metric kitgate_live_status_cleared_total)"
kg_eq "an evicted kit is gone from the API" 404 "$(curl -s -o /dev/null -w '%{http_code}' "$H/api/v1/kits/k-ev-00000")"
# rejected publishes of a service user for made-up serials: no kit, no status
for i in 1 2 3 4 5 6; do
	mosquitto_pub -p "$P" -q 1 -u server -P pw -t "kit/k-junk-$i/measurement/raw" -m '{"id":"nope"}'
done
sleep 2
kg_eq "rejected publishes of a service user create no kit (the table still holds the five real ones)" \
	"$(tr '\n' ' ' <<<"$s")" "$(statuses | tr '\n' ' ')"
kg_eq "no API entry for a made-up serial" 404 "$(curl -s -o /dev/null -w '%{http_code}' "$H/api/v1/kits/k-junk-1")"
kg_eq "the rejections are still counted" 6 "$(curl -s "$H/api/v1/status" | jq -r .rejected.bad_type)"
kg_finish
