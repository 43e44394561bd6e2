#!/usr/bin/env bash
# kitgate-authbench.sh -- the auth benchmark end to end: a PostgreSQL (the test fixture), NKITS kits
# with real PBKDF2 hashes, a broker with auth postgres, then `kitgate-authbench cpu` and `storm`
# (cold and warm reconnect storms while a service client measures message latency).
#   tools/kitgate-authbench.sh [NKITS=100]       (build first; uses build/ like the tests)
. "$(dirname "$0")/../tests/integration/lib.sh"

N=${1:-100}
BENCH="$KG_TOOLS/kitgate-authbench"
[ -x "$BENCH" ] || kg_die "not built: $BENCH"
SECRET='q7!Rm@x#T$v%W&z2Kp9LbN4c'

"$BENCH" cpu 2
for params in "sha256 15000" "sha512 100000"; do
	set -- $params
	URL=$(kg_db_create authbench "$N") || kg_die "cannot create the database"
	sql="$KG_SCRATCH/authbench.sql"
	: >"$sql"
	for i in $(seq 1 "$N"); do
		s=$(printf 'k-test-%04d' "$i")
		echo "UPDATE kits SET password_hash = '$("$BENCH" hash "$1" "$2" "salt${s}xxxxxxx" "$SECRET")' WHERE serial = '$s';" >>"$sql"
	done
	kg__psql -d authbench -f "$sql" >/dev/null || kg_die "cannot set hashes"
	kg_broker_start authbench <<CONF
plugin_opt_sink none
plugin_opt_database_url $URL
plugin_opt_auth postgres
CONF
	kg_wait_until 20 kg_broker_log_has 'first kits snapshot' || kg_die "no snapshot"
	echo "== $1/$2 =="
	"$BENCH" storm -p "$KG_BROKER_PORT" -n "$N" -s "$SECRET" -c 2
	kg_broker_stop authbench
done
kg_finish
