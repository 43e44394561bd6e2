#!/usr/bin/env bash
# kitgate-authbench.sh -- the auth benchmark end to end, on one or more brokers side by side: a
# PostgreSQL (the test fixture), kits with real PBKDF2 hashes, a broker with auth postgres, then
# `kitgate-authbench cpu` and `storm` (login storms while a service client measures its QoS 1 round
# trip), and a table of the results per broker.
#   tools/kitgate-authbench.sh [NKITS=100] [NFLEET=1000]      (build first; uses build/ like the tests)
# Scenarios, on each broker:
#   go-auth:    NKITS kits with mosquitto-go-auth's default hashes (PBKDF2-SHA512, 100,000
#               iterations) log in at once, refused kits retry after 1 s: time until all are in
#               (cold), then again from the login cache (warm);
#   astroplant: NFLEET kits with AstroPlant's hashes (sha256/15000) log in at once right after the
#               broker started (empty login cache, as after a restart): time until all are in.
# Brokers: KG_AUTHBENCH_BROKERS="LABEL=BINARY[:LIBDIR] ..." (default "system=mosquitto"), e.g.
#   KG_AUTHBENCH_BROKERS="2.0.11=mosquitto 2.1=$KG_MOSQUITTO_2_1"   (eval "$(ci/brokers env)" first)
# On 2.1 logins that need PBKDF2 are delayed and hashed on auth_threads (default: the CPUs); on 2.0
# they run on the broker thread under auth_cold_budget_ms (default 250 ms per second).
. "$(dirname "$0")/../tests/integration/lib.sh"

N=${1:-100}
NFLEET=${2:-1000}
BENCH="$KG_TOOLS/kitgate-authbench"
[ -x "$BENCH" ] || kg_die "not built: $BENCH"
SECRET='q7!Rm@x#T$v%W&z2Kp9LbN4c'
BROKERS=${KG_AUTHBENCH_BROKERS:-system=mosquitto}
ulimit -n 8192 2>/dev/null || ulimit -n 4096 2>/dev/null || true
RESULTS="$KG_SCRATCH/authbench.results"
: >"$RESULTS"

"$BENCH" cpu 2

# set_hashes ALG ITERATIONS NKITS: the authbench database with NKITS kits behind SECRET.
set_hashes() {
	local sql="$KG_SCRATCH/authbench-$1-$3.sql" i s
	URL=$(kg_db_create authbench "$3") || kg_die "cannot create the database"
	if [ ! -s "$sql" ]; then
		: >"$sql.tmp"
		for i in $(seq 1 "$3"); do
			s=$(printf 'k-test-%04d' "$i")
			echo "UPDATE kits SET password_hash = '$("$BENCH" hash "$1" "$2" "salt${s}xxxxxxx" "$SECRET")' WHERE serial = '$s';" >>"$sql.tmp"
		done
		mv "$sql.tmp" "$sql"
	fi
	kg__psql -d authbench -f "$sql" >/dev/null || kg_die "cannot set hashes"
}

# storm LABEL SCENARIO NKITS CYCLES: start the broker, run the storm, record its lines.
storm() {
	local label=$1 scen=$2 n=$3 cycles=$4 out="$KG_SCRATCH/authbench-$1-$2.out"
	kg_broker_start authbench <<CONF
plugin_opt_sink none
plugin_opt_database_url $URL
plugin_opt_auth postgres
max_connections -1
CONF
	kg_wait_until 20 kg_broker_log_has 'first kits snapshot|loaded' || kg_die "broker $label did not start"
	sleep 1
	echo "== $label: $scen ($n kits) =="
	grep -ao 'delayed basic auth: [^;]*\|on the broker thread, limited to [0-9]* ms per second' "$KG_BROKER_LOG" | head -1
	"$BENCH" storm -p "$KG_BROKER_PORT" -n "$n" -s "$SECRET" -c "$cycles" -q 1 -w | tee "$out"
	kg_broker_stop authbench
	awk -v l="$label" -v s="$scen" '
		/storm \(until/ { c = $2; sub(":", "", c); p99[c] = $(NF - 4) }
		/all admitted after/ { c = $2; sub(":", "", c); t[c] = $(NF - 3); r[c] = $6 }
		END { for(c in t) printf "%s\t%s-%s\t%s\t%s\t%s\n", l, s, (c == 1 ? "cold" : "warm"), t[c], p99[c], r[c] }' \
		"$out" >>"$RESULTS"
}

# bare LABEL: the same broker without kitgate (password_file logins, no PBKDF2): the round trip
# this machine gives at the same time, the baseline for the p99 column.
bare() {
	local label=$1 out="$KG_SCRATCH/authbench-$1-bare.out"
	KG_BROKER_PLAIN=1 kg_broker_start authbench-bare </dev/null
	echo "== $label: bare broker (no kitgate), 100 password_file logins =="
	"$BENCH" storm -p "$KG_BROKER_PORT" -n 100 -s pw -c 1 -q 1 -w | tee "$out"
	kg_broker_stop authbench-bare
	awk -v l="$label" '/storm \(until/ { p = $(NF - 4) } /all admitted after/ { t = $(NF - 3); r = $6 }
		END { printf "%s\tbare-100-logins\t%s\t%s\t%s\n", l, t, p, r }' "$out" >>"$RESULTS"
}

for b in $BROKERS; do
	label=${b%%=*}
	bin=${b#*=}
	libs=
	case $bin in *:*) libs=${bin#*:}; bin=${bin%%:*} ;; esac
	export KG_MOSQUITTO=$bin KG_MOSQUITTO_LIBS=$libs
	bare "$label"
	set_hashes sha512 100000 "$N"
	storm "$label" go-auth "$N" 2
	set_hashes sha256 15000 "$NFLEET"
	storm "$label" astroplant "$NFLEET" 1
done

echo
echo "== summary: time until every kit is admitted, and the service client's QoS 1 round trip p99 during the storm =="
printf '%-10s %-18s %14s %12s %10s\n' broker scenario "all in (ms)" "p99 (ms)" refusals
sort -k2,2 -k1,1 "$RESULTS" | while IFS=$'\t' read -r l s t p r; do
	printf '%-10s %-18s %14s %12s %10s\n' "$l" "$s" "$t" "$p" "$r"
done
kg_finish
