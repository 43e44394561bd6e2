#!/usr/bin/env bash
# test_pgwriter.sh -- plugin/sinks/pgwriter.c against a live PostgreSQL: rows, rejections, fallback, reconnect, throughput.
#
# Runs tests/pgwriter_check (the checks), then its --bench mode on a second fresh database and
# prints rows/s for batches of 1, 100 and 1000. The bench fails below KG_PG_MIN_RATE rows/s at
# batch 1000 (default 10000 in a plain build, not enforced under the sanitizers): a floor that
# catches a row-at-a-time regression without making a busy machine's test flaky.
# ctest: RUN_SERIAL_UNSANITIZED it checks a rows/s floor (not under the sanitizers: it runs in parallel there)
. "$(dirname "$0")/lib.sh"

CHECK="$KG_BUILD_DIR/tests/pgwriter_check"
[ -x "$CHECK" ] || kg_die "not built: $CHECK"

# run_check LABEL ARGS...: runs pgwriter_check, echoing its PASS/FAIL lines; its exit status decides.
run_check() {
	local label=$1 out rc
	shift
	out=$("$CHECK" "$@" 2>"$KG_SCRATCH/$KG_TEST_NAME.$label.log")
	rc=$?
	echo "$out"
	if [ "$rc" -eq 0 ]; then
		kg_pass "pgwriter_check $label"
	else
		kg_fail "pgwriter_check $label exited $rc (log: $KG_SCRATCH/$KG_TEST_NAME.$label.log)"
		tail -n 20 "$KG_SCRATCH/$KG_TEST_NAME.$label.log"
	fi
}

url=$(kg_db_create kg_pgwriter 10) || kg_die "no database"
run_check checks "$url"

# The schema and the seed load twice without errors or duplicates (idempotent).
if out=$(kg__psql -d kg_pgwriter -v nkits=10 -f "$KG_SOURCE_DIR/schema/astroplant.sql" \
	-f "$KG_SOURCE_DIR/schema/seed-test.sql" 2>&1 >/dev/null); then
	kg_pass "schema and seed load again over themselves"
else
	kg_fail "schema reload: $out"
fi
kg_eq "quantity types after a reload" "5" "$(kg_psql kg_pgwriter 'SELECT count(*) FROM quantity_types')"
kg_eq "kits after a reload" "10" "$(kg_psql kg_pgwriter "SELECT count(*) FROM kits WHERE serial LIKE 'k-test-%'")"

if [ "$KG_SANITIZE" = 1 ]; then
	min_rate=${KG_PG_MIN_RATE:-0}
	nbench=${KG_PG_BENCH_ROWS:-20000}
else
	min_rate=${KG_PG_MIN_RATE:-10000}
	nbench=${KG_PG_BENCH_ROWS:-100000}
fi
burl=$(kg_db_create kg_pgwriter_bench 10) || kg_die "no database"
run_check bench "$burl" --bench "$nbench" --min-rate "$min_rate"

# tools/kitgate-pgbench (ci/pgbench's tool) still runs every mode: a short smoke run, no rate floor.
PGBENCH="$KG_BUILD_DIR/tools/kitgate-pgbench"
if [ -x "$PGBENCH" ]; then
	if out=$("$PGBENCH" --database-url "$burl" --seconds 0.3 --sizes 10,100 2>"$KG_SCRATCH/$KG_TEST_NAME.pgbench.log"); then
		kg_pass "kitgate-pgbench smoke run"
	else
		kg_fail "kitgate-pgbench exited non-zero (log: $KG_SCRATCH/$KG_TEST_NAME.pgbench.log)"
	fi
	echo "$out"
	kg_eq "kitgate-pgbench rows (3 modes x 2 sizes + COPY shape)" "7" \
		"$(echo "$out" | grep -c '^| [12] connection.* | [0-9]* | [1-9][0-9]* |')"
fi

kg_finish
