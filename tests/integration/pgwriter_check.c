/* pgwriter_check.c -- integration checks and throughput bench of plugin/sinks/pgwriter.c against a seeded database.
 *
 *   pgwriter_check URI              run the checks (database loaded with schema/astroplant.sql and
 *                                   schema/seed-test.sql, nkits >= 3); prints PASS:/FAIL: lines;
 *                                   includes a connection killed mid-batch and two concurrent
 *                                   writers on the same kits and ids
 *   pgwriter_check URI --bench N    write N raw rows in batches of 1, 100 and 1000 (batch 1 writes
 *                                   at most 5000) and print "bench batch=B rows=R rows_per_s=X"
 *   [--min-rate R]                  with --bench: exit 1 when batch 1000 is slower than R rows/s
 *   [--sizes 1,100,1000]            with --bench: the batch sizes to run
 *
 * Exit status 0 when everything passed. */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "kitgate/log.h"
#include "kitgate/pgconn.h"
#include "kitgate/pgwriter.h"
#include "kitgate/record.h"
#include "kitgate/uuid.h"

static int failures;
static PGconn *chk; /* the checker's own connection */
static char log_lines[64][1000];
static int nlog;

static void check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(int ok, const char *fmt, ...)
{
	va_list ap;

	printf("%s: ", ok ? "PASS" : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if(!ok) failures++;
}

/* Keeps the last 64 log lines for inspection and echoes them to stderr. */
static void log_sink(int level, const char *line)
{
	snprintf(log_lines[nlog % 64], sizeof(log_lines[0]), "%s", line);
	nlog++;
	fprintf(stderr, "kitgate %s: %s\n", kg_log__level_name(level), line);
}

static int logs_contain(const char *s)
{
	int i;

	for(i = 0; i < 64 && i < nlog; i++){
		if(strstr(log_lines[i], s)) return 1;
	}
	return 0;
}

/* Run sql on the checker's connection and return the first column of the first row (or "" / "ERROR"). */
static const char *q1(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *q1(const char *fmt, ...)
{
	static char out[4096];
	char sql[4096];
	PGresult *res;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(sql, sizeof(sql), fmt, ap);
	va_end(ap);
	res = PQexec(chk, sql);
	if(PQresultStatus(res) == PGRES_TUPLES_OK){
		snprintf(out, sizeof(out), "%s", PQntuples(res) ? PQgetvalue(res, 0, 0) : "");
	}else if(PQresultStatus(res) == PGRES_COMMAND_OK){
		snprintf(out, sizeof(out), "%s", PQcmdTuples(res));
	}else{
		fprintf(stderr, "query failed: %s: %s", sql, PQerrorMessage(chk));
		snprintf(out, sizeof(out), "ERROR");
	}
	PQclear(res);
	return out;
}

static uint64_t id_counter;
static uint32_t id_run;

/* A fresh, unique UUID (random per run, counter within it). */
static void new_id(uint8_t id[16])
{
	uint64_t c = ++id_counter;
	int i;

	memset(id, 0, 16);
	memcpy(id, &id_run, 4);
	id[6] = 0x40; /* version 4 */
	id[8] = 0x80;
	for(i = 0; i < 6; i++) id[15 - i] = (uint8_t)(c >> (8 * i));
}

static struct kg_record raw(const char *serial, int32_t periph, int32_t qt, double v, int64_t ms)
{
	struct kg_record r;

	memset(&r, 0, sizeof(r));
	r.kind = KG_KIND_RAW;
	new_id(r.id);
	snprintf(r.serial, sizeof(r.serial), "%s", serial);
	r.peripheral = periph;
	r.quantity_type = qt;
	r.value = v;
	r.datetime_ms = ms;
	return r;
}

static struct kg_record agg(const char *serial, int32_t periph, int32_t qt, int64_t start, int64_t end)
{
	struct kg_record r;

	memset(&r, 0, sizeof(r));
	r.kind = KG_KIND_AGGREGATE;
	new_id(r.id);
	snprintf(r.serial, sizeof(r.serial), "%s", serial);
	r.peripheral = periph;
	r.quantity_type = qt;
	r.start_ms = start;
	r.end_ms = end;
	return r;
}

static void add_value(struct kg_record *r, const char *name, double v)
{
	snprintf(r->values[r->nvalues].name, sizeof(r->values[0].name), "%s", name);
	r->values[r->nvalues].value = v;
	r->nvalues++;
}

static const char *uuid(const struct kg_record *r)
{
	static char s[4][37];
	static int k;

	k = (k + 1) % 4;
	kg_uuid__format(r->id, s[k]);
	return s[k];
}

static void expect_status(const uint8_t *st, const int *want, size_t n, const char *what)
{
	size_t i;

	for(i = 0; i < n; i++){
		check(st[i] == want[i], "%s: row %zu status %s (want %s)", what, i,
				kg_pg__row_name((enum kg_pg_row)st[i]), kg_pg__row_name((enum kg_pg_row)want[i]));
	}
}

/* Checks of one raw row: kit, configuration, value and millisecond time exactly as written. */
static void expect_raw_row(const struct kg_record *r, int kit, int cfg)
{
	char want[64];

	snprintf(want, sizeof(want), "%d|%d|%d|%d|%" PRId64, (int)r->peripheral, kit, cfg,
			(int)r->quantity_type, r->datetime_ms);
	check(!strcmp(q1("SELECT peripheral_id || '|' || kit_id || '|' || kit_configuration_id || '|' || "
			"quantity_type_id || '|' || (extract(epoch FROM datetime) * 1000)::bigint "
			"FROM raw_measurements WHERE id = '%s'", uuid(r)), want),
			"raw %s stored as %s", uuid(r), want);
	check(strtod(q1("SELECT value FROM raw_measurements WHERE id = '%s'", uuid(r)), NULL) == r->value,
			"raw %s value %.17g exact", uuid(r), r->value);
}

/* ---- a writer on its own thread ---- */

struct bg_write {
	pthread_t th;
	struct kg_pg *pg;
	const struct kg_record *recs;
	size_t n, batch;          /* write recs[0..n) in batches of batch rows */
	uint8_t *status;
	int rc;                   /* 0, or the first non-zero kg_pg__write result */
	size_t not_ok;            /* rows whose status was not OK */
};

static void *bg_main(void *arg)
{
	struct bg_write *b = arg;
	size_t off, i;

	for(off = 0; off < b->n && !b->rc; off += b->batch){
		size_t m = b->n - off < b->batch ? b->n - off : b->batch;

		b->rc = kg_pg__write(b->pg, b->recs + off, m, b->status + off);
		for(i = 0; !b->rc && i < m; i++) b->not_ok += b->status[off + i] != KG_PG_ROW_OK;
	}
	return NULL;
}

/* 8. A connection killed in the middle of a batch: the batch's raw rows are already inserted
 * (uncommitted) when the writer waits on a kit_last_seen row another session locked; the
 * backend is terminated there. kg_pg__write returns -1, nothing of the batch is committed, and
 * the retry writes it whole. */
static void check_killed_mid_batch(const char *uri)
{
	enum { N = 50 };
	struct kg_record recs[N];
	uint8_t status[N];
	struct bg_write b = {.recs = recs, .n = N, .batch = N, .status = status};
	PGconn *locker = PQconnectdb(uri);
	int i, waited = 0, killed = 0;
	const int64_t t0 = 1700000500000LL;

	for(i = 0; i < N; i++){
		char serial[16];
		snprintf(serial, sizeof(serial), "k-test-%04d", i % 2 + 1);
		recs[i] = raw(serial, (i % 2 + 1) * 10 + 3, 2, i, t0 + i);
	}
	b.pg = kg_pg__new(uri);
	/* Warm up (connect, cache) with another row so the batch itself runs one statement. */
	{
		struct kg_record w = raw("k-test-0001", 13, 2, 0, t0 - 1);
		uint8_t ws;
		check(kg_pg__write(b.pg, &w, 1, &ws) == 0, "mid-batch kill: warm-up written");
	}
	PQclear(PQexec(locker, "BEGIN"));
	PQclear(PQexec(locker, "INSERT INTO kit_last_seen VALUES (2, now()) ON CONFLICT DO NOTHING"));
	{
		PGresult *lr = PQexec(locker, "SELECT 1 FROM kit_last_seen WHERE kit_id = 2 FOR UPDATE");
		check(PQresultStatus(lr) == PGRES_TUPLES_OK, "mid-batch kill: kit_last_seen row of kit 2 locked");
		PQclear(lr);
	}
	pthread_create(&b.th, NULL, bg_main, &b);
	/* Wait until the writer's backend waits for that lock, i.e. is inside the batch. */
	for(i = 0; i < 100 && !waited; i++){
		usleep(50 * 1000);
		waited = atoi(q1("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'kitgate' "
				"AND datname = current_database() AND wait_event_type = 'Lock'"));
	}
	check(waited == 1, "mid-batch kill: the writer waits inside its batch");
	killed = atoi(q1("SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
			"WHERE application_name = 'kitgate' AND datname = current_database() "
			"AND wait_event_type = 'Lock') t"));
	check(killed == 1, "mid-batch kill: backend terminated");
	pthread_join(b.th, NULL);
	PQclear(PQexec(locker, "ROLLBACK"));
	PQfinish(locker);
	check(b.rc == -1, "mid-batch kill: kg_pg__write returned %d (want -1)", b.rc);
	check(!kg_pg__connected(b.pg), "mid-batch kill: not connected afterwards");
	check(!strcmp(q1("SELECT count(*) FROM raw_measurements WHERE datetime >= to_timestamp(%"
			PRId64 " / 1000.0)", t0), "0"), "mid-batch kill: nothing of the batch committed");
	b.rc = 0;
	b.not_ok = 0;
	bg_main(&b); /* the retry, on this thread */
	check(b.rc == 0 && b.not_ok == 0, "mid-batch kill: the retry writes the batch");
	check(!strcmp(q1("SELECT count(*) FROM raw_measurements WHERE datetime >= to_timestamp(%"
			PRId64 " / 1000.0)", t0), "50"), "mid-batch kill: all 50 rows after the retry");
	kg_pg__free(b.pg);
}

/* Shuffle a[0..n) (deterministic; xorshift). */
static void shuffle(struct kg_record *a, size_t n, uint32_t seed)
{
	size_t i;

	for(i = n; i > 1; i--){
		struct kg_record t;
		size_t j;

		seed ^= seed << 13;
		seed ^= seed >> 17;
		seed ^= seed << 5;
		j = seed % i;
		t = a[i - 1];
		a[i - 1] = a[j];
		a[j] = t;
	}
}

/* 9. Two writers, each its own connection on its own thread, write the same NROWS ids (every
 * row twice) for the same kits, in different orders and batch cuts, at the same time: no
 * deadlock (which would surface as -1), every id stored exactly once, inserted + duplicate
 * counts add up exactly, kit_last_seen never moved backwards. */
static void check_concurrent_writers(const char *uri)
{
	enum { NROWS = 12000 };
	struct kg_record *a = calloc(NROWS, sizeof(*a)), *b = calloc(NROWS, sizeof(*b));
	uint8_t *sa = calloc(NROWS, 1), *sb = calloc(NROWS, 1);
	struct bg_write wa = {.recs = a, .n = NROWS, .batch = 500, .status = sa};
	struct bg_write wb = {.recs = b, .n = NROWS, .batch = 700, .status = sb};
	struct kg_pg_stats s1, s2;
	const int64_t t0 = 1700001000000LL;
	char last_seen_before[64];
	int round, i;

	q1("UPDATE kit_last_seen SET datetime_last_seen = now() + interval '1 day' WHERE kit_id = 3");
	snprintf(last_seen_before, sizeof(last_seen_before), "%s",
			q1("SELECT datetime_last_seen FROM kit_last_seen WHERE kit_id = 3"));
	for(round = 0; round < 2; round++){
		for(i = 0; i < NROWS; i++){
			char serial[16];
			int kit = i % 3 + 1;
			snprintf(serial, sizeof(serial), "k-test-%04d", kit);
			a[i] = raw(serial, kit * 10 + 1 + i % 3, i % 5 + 1, i, t0 + round * NROWS + i);
			if(i % 4 == 0) a[i].kind = KG_KIND_AGGREGATE, a[i].start_ms = a[i].end_ms = a[i].datetime_ms,
				add_value(&a[i], "count", 1);
		}
		memcpy(b, a, NROWS * sizeof(*a));
		shuffle(b, NROWS, 12345u + (uint32_t)round);
		wa.pg = kg_pg__new(uri);
		wb.pg = kg_pg__new(uri);
		wa.rc = wb.rc = 0;
		wa.not_ok = wb.not_ok = 0;
		pthread_create(&wa.th, NULL, bg_main, &wa);
		pthread_create(&wb.th, NULL, bg_main, &wb);
		pthread_join(wa.th, NULL);
		pthread_join(wb.th, NULL);
		kg_pg__stats(wa.pg, &s1);
		kg_pg__stats(wb.pg, &s2);
		check(wa.rc == 0 && wb.rc == 0 && s1.errors == 0 && s2.errors == 0,
				"concurrent writers, round %d: no failed batch (rc %d/%d, errors %" PRIu64 "/%" PRIu64
				"; a deadlock would show here)", round, wa.rc, wb.rc, s1.errors, s2.errors);
		check(wa.not_ok == 0 && wb.not_ok == 0, "concurrent writers, round %d: every row ok", round);
		check(s1.rows_inserted + s2.rows_inserted == NROWS && s1.rows_duplicate + s2.rows_duplicate == NROWS,
				"concurrent writers, round %d: inserted %" PRIu64 "+%" PRIu64 ", duplicate %" PRIu64 "+%"
				PRIu64 " (want %d each in total)", round, s1.rows_inserted, s2.rows_inserted,
				s1.rows_duplicate, s2.rows_duplicate, NROWS);
		check(atoi(q1("SELECT (SELECT count(*) FROM raw_measurements WHERE datetime >= to_timestamp(%"
				PRId64 " / 1000.0)) + (SELECT count(*) FROM aggregate_measurements WHERE datetime_start >= "
				"to_timestamp(%" PRId64 " / 1000.0))", t0, t0)) == (round + 1) * NROWS,
				"concurrent writers, round %d: %d rows stored, each once", round, (round + 1) * NROWS);
		kg_pg__free(wa.pg);
		kg_pg__free(wb.pg);
	}
	check(!strcmp(q1("SELECT datetime_last_seen FROM kit_last_seen WHERE kit_id = 3"), last_seen_before),
			"kit_last_seen never moves backwards (GREATEST)");
	check(atoi(q1("SELECT count(*) FROM kit_last_seen WHERE kit_id IN (1, 2) "
			"AND datetime_last_seen > now() - interval '1 minute'")) == 2,
			"kit_last_seen moved forward for kits 1 and 2");
	free(a);
	free(b);
	free(sa);
	free(sb);
}

/* The connection defaults: kitgate's statement and lock timeouts are on, and a URI's own
 * `options` add to them (a later -c overrides) instead of silently dropping them. */
static void check_connection_options(const char *uri)
{
	char u[1024];
	PGconn *c;
	PGresult *r;
	const char *v;

	c = kg_pgconn__connect(uri, "kitgate-check", 5);
	r = PQexec(c, "SELECT current_setting('statement_timeout') || ' ' || current_setting('lock_timeout')");
	v = PQresultStatus(r) == PGRES_TUPLES_OK ? PQgetvalue(r, 0, 0) : PQerrorMessage(c);
	check(!strcmp(v, "30s 10s"), "default connection: statement/lock timeout '%s' == '30s 10s'", v);
	PQclear(r);
	PQfinish(c);

	snprintf(u, sizeof(u), "%s%soptions=-c%%20lock_timeout%%3D1234%%20-c%%20work_mem%%3D7MB", uri,
			strchr(uri, '?') ? "&" : "?");
	c = kg_pgconn__connect(u, "kitgate-check", 5);
	r = PQexec(c, "SELECT current_setting('statement_timeout') || ' ' || current_setting('lock_timeout') "
			"|| ' ' || current_setting('work_mem')");
	v = PQresultStatus(r) == PGRES_TUPLES_OK ? PQgetvalue(r, 0, 0) : PQerrorMessage(c);
	check(!strcmp(v, "30s 1234ms 7MB"), "URI with its own options: '%s' == '30s 1234ms 7MB'", v);
	PQclear(r);
	PQfinish(c);
}

static void run_checks(const char *uri)
{
	const int64_t t0 = 1700000000123LL;
	struct kg_pg_stats st;
	struct kg_record b[8];
	uint8_t status[8];
	struct kg_pg *pg, *bad;
	char baduri[512];
	const char *s;

	check_connection_options(uri);
	q1("DELETE FROM raw_measurements");
	q1("DELETE FROM aggregate_measurements");
	q1("DELETE FROM kit_last_seen");
	q1("DELETE FROM peripherals WHERE id IN (19, 29)");

	pg = kg_pg__new(uri);
	check(pg != NULL && !kg_pg__connected(pg), "kg_pg__new does not connect");
	check(kg_pg__write(pg, NULL, 0, NULL) == 0, "empty batch is settled");

	/* 1. A mixed batch: good rows land, bad rows are rejected with their reason. */
	b[0] = raw("k-test-0001", 11, 1, 21.5, t0);
	b[1] = raw("k-test-0001", 12, 2, -0.1234567890123456789, t0 + 876);
	b[2] = raw("k-test-0001", 21, 1, 1.0, t0);       /* kit 2's peripheral */
	b[3] = raw("k-test-0001", 999999, 1, 1.0, t0);   /* no such peripheral */
	b[4] = raw("k-test-0001", 13, 77, 1.0, t0);      /* no such quantity type */
	b[5] = agg("k-test-0002", 22, 3, t0, t0 + 1800000);
	add_value(&b[5], "count", 30);
	add_value(&b[5], "average", 21.5);
	add_value(&b[5], "we\"ird\\na,me{}", 1e-7);
	add_value(&b[5], "température", -3);
	b[6] = b[0];                                     /* duplicate within the batch */
	b[7] = raw("k-test-0003", 33, 5, 1e300, 0);
	{
		const int want[8] = {KG_PG_ROW_OK, KG_PG_ROW_OK, KG_PG_ROW_FOREIGN_PERIPHERAL,
			KG_PG_ROW_UNKNOWN_PERIPHERAL, KG_PG_ROW_UNKNOWN_QUANTITY_TYPE, KG_PG_ROW_OK, KG_PG_ROW_OK,
			KG_PG_ROW_OK};
		check(kg_pg__write(pg, b, 8, status) == 0, "mixed batch written");
		expect_status(status, want, 8, "mixed batch");
	}
	check(kg_pg__connected(pg), "connected after the first write");
	expect_raw_row(&b[0], 1, 1);
	expect_raw_row(&b[1], 1, 1);
	expect_raw_row(&b[7], 3, 3);
	check(!strcmp(q1("SELECT count(*) FROM raw_measurements"), "3"), "3 raw rows (duplicate ignored)");
	check(!strcmp(q1("SELECT count(*) FROM raw_measurements WHERE peripheral_id IN (21, 999999) "
			"OR quantity_type_id = 77"), "0"), "rejected rows not stored");
	check(!strcmp(q1("SELECT kit_id || '|' || kit_configuration_id || '|' || "
			"(extract(epoch FROM datetime_start) * 1000)::bigint || '|' || "
			"(extract(epoch FROM datetime_end) * 1000)::bigint FROM aggregate_measurements WHERE id = '%s'",
			uuid(&b[5])), "2|2|1700000000123|1700001800123"), "aggregate kit, configuration, window");
	check(!strcmp(q1("SELECT (\"values\"::jsonb = '{\"count\": 30, \"average\": 21.5, "
			"\"we\\\"ird\\\\na,me{}\": 1e-7, \"température\": -3}'::jsonb)::text "
			"FROM aggregate_measurements WHERE id = '%s'", uuid(&b[5])), "true"),
			"aggregate values JSON object exact (escaped names)");
	check(!strcmp(q1("SELECT string_agg(kit_id::text, ',' ORDER BY kit_id) FROM kit_last_seen"), "1,2,3"),
			"kit_last_seen has kits 1,2,3");
	check(!strcmp(q1("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'kitgate' "
			"AND datname = current_database()"), "1"),
			"application_name is kitgate");
	kg_pg__stats(pg, &st);
	check(st.batches == 1 && st.rows_inserted == 4 && st.rows_duplicate == 1,
			"stats: batches %" PRIu64 " inserted %" PRIu64 " duplicate %" PRIu64 " (want 1/4/1)",
			st.batches, st.rows_inserted, st.rows_duplicate);
	check(st.rows_rejected[KG_PG_ROW_FOREIGN_PERIPHERAL] == 1 && st.rows_rejected[KG_PG_ROW_UNKNOWN_PERIPHERAL] == 1
			&& st.rows_rejected[KG_PG_ROW_UNKNOWN_QUANTITY_TYPE] == 1 && st.rows_rejected[KG_PG_ROW_REJECTED] == 0,
			"stats: one rejection per reason");
	check(logs_contain("foreign_peripheral") && logs_contain("k-test-0001") && logs_contain("999999"),
			"rejections logged with serial, peripheral and reason");

	/* 2. The same batch again (a redelivery): nothing new, kit_last_seen moves on. */
	s = q1("SELECT datetime_last_seen FROM kit_last_seen WHERE kit_id = 1");
	{
		char before[64];
		snprintf(before, sizeof(before), "%s", s);
		check(kg_pg__write(pg, b, 8, status) == 0 && status[0] == KG_PG_ROW_OK && status[5] == KG_PG_ROW_OK,
				"redelivered batch settled");
		kg_pg__stats(pg, &st);
		check(st.rows_inserted == 4 && st.rows_duplicate == 6, "redelivery: all duplicates (inserted %"
				PRIu64 ", duplicate %" PRIu64 ")", st.rows_inserted, st.rows_duplicate);
		check(strcmp(q1("SELECT datetime_last_seen FROM kit_last_seen WHERE kit_id = 1"), before) != 0,
				"kit_last_seen updated by the second batch");
	}
	check(!strcmp(q1("SELECT count(*) FROM raw_measurements"), "3")
			&& !strcmp(q1("SELECT count(*) FROM aggregate_measurements"), "1"), "no duplicate rows stored");

	/* 3. Unknown peripheral created later: negative cache for a while, then found. */
	b[0] = raw("k-test-0001", 19, 1, 5, t0);
	check(kg_pg__write(pg, b, 1, status) == 0 && status[0] == KG_PG_ROW_UNKNOWN_PERIPHERAL,
			"peripheral 19 unknown");
	q1("INSERT INTO peripherals (id, kit_id, kit_configuration_id, peripheral_definition_id, name, "
			"configuration) VALUES (19, 1, 1, 1, 'late', '{}')");
	check(kg_pg__write(pg, b, 1, status) == 0 && status[0] == KG_PG_ROW_UNKNOWN_PERIPHERAL,
			"peripheral 19 still unknown right after creation (negative cache)");
	usleep(5300 * 1000);
	check(kg_pg__write(pg, b, 1, status) == 0 && status[0] == KG_PG_ROW_OK,
			"peripheral 19 found after the negative cache expired");
	expect_raw_row(&b[0], 1, 1);

	/* 4. A cached peripheral deleted behind our back, and a row the database refuses: the rest
	 * of the batch still lands. */
	b[0] = raw("k-test-0001", 19, 1, 6, t0 + 1);
	b[1] = raw("k-test-0001", 11, 1, 7, t0 + 2);
	b[2] = agg("k-test-0001", 12, 1, t0, t0 + 60000);
	add_value(&b[2], "bad\xff", 1);                 /* invalid UTF-8: the database refuses it */
	b[3] = raw("k-test-0002", 21, 1, 8, t0 + 3);
	q1("DELETE FROM peripherals WHERE id = 19");
	{
		const int want[4] = {KG_PG_ROW_UNKNOWN_PERIPHERAL, KG_PG_ROW_OK, KG_PG_ROW_REJECTED, KG_PG_ROW_OK};
		check(kg_pg__write(pg, b, 4, status) == 0, "batch with stale cache and a refused row settled");
		expect_status(status, want, 4, "fallback batch");
	}
	expect_raw_row(&b[1], 1, 1);
	expect_raw_row(&b[3], 2, 2);
	check(!strcmp(q1("SELECT count(*) FROM aggregate_measurements WHERE id = '%s'", uuid(&b[2])), "0"),
			"refused row not stored");
	kg_pg__stats(pg, &st);
	check(st.rows_rejected[KG_PG_ROW_REJECTED] == 1, "stats: one db_rejected row");
	check(logs_contain("db_rejected"), "db_rejected logged");

	/* 5. Connection killed by the server: -1, then the next call reconnects and writes. */
	q1("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'kitgate' "
			"AND datname = current_database() AND pid <> pg_backend_pid()");
	usleep(200 * 1000);
	b[0] = raw("k-test-0002", 22, 2, 9, t0 + 4);
	{
		int r1 = kg_pg__write(pg, b, 1, status);
		int r2 = r1 == 0 ? 0 : kg_pg__write(pg, b, 1, status);
		kg_pg__stats(pg, &st);
		check(r1 == -1, "write on a killed connection returns -1");
		check(r2 == 0 && status[0] == KG_PG_ROW_OK, "next write reconnects and succeeds");
		check(st.reconnects == 1 && st.errors >= 1 && st.connected, "stats: reconnects %" PRIu64
				", errors %" PRIu64, st.reconnects, st.errors);
	}
	expect_raw_row(&b[0], 2, 2);

	/* 6. Big batches: all land, duplicates of one id collapse,
	 * and a stale peripheral still only costs its own rows. */
	{
		enum { NBIG = 600 };
		struct kg_record *big = calloc(NBIG, sizeof(*big));
		uint8_t *bst = calloc(NBIG, 1);
		uint64_t ins0;
		int i, nbad = 0;

		q1("INSERT INTO peripherals (id, kit_id, kit_configuration_id, peripheral_definition_id, name, "
				"configuration) VALUES (29, 2, 2, 1, 'doomed', '{}') ON CONFLICT DO NOTHING");
		for(i = 0; i < NBIG; i++){
			char serial[16];
			snprintf(serial, sizeof(serial), "k-test-%04d", i % 3 + 1);
			big[i] = raw(serial, (i % 3 + 1) * 10 + 1, 4, i * 0.5, t0 + 10000 + i);
		}
		big[NBIG - 1] = big[0];                      /* duplicate id in the same batch */
		kg_pg__stats(pg, &st);
		ins0 = st.rows_inserted;
		check(kg_pg__write(pg, big, NBIG, bst) == 0, "big batch written");
		for(i = 0; i < NBIG; i++) nbad += bst[i] != KG_PG_ROW_OK;
		check(nbad == 0, "big batch: every row ok");
		kg_pg__stats(pg, &st);
		check(st.rows_inserted - ins0 == NBIG - 1, "big batch: %d inserted (want %d)",
				(int)(st.rows_inserted - ins0), NBIG - 1);
		check(!strcmp(q1("SELECT count(*) FROM raw_measurements WHERE quantity_type_id = 4"), "599"),
				"big batch: 599 rows stored");
		check(!strcmp(q1("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'kitgate' "
				"AND datname = current_database()"), "1"), "one kg_pg is one connection, big batches too");
		expect_raw_row(&big[1], 2, 2);

		/* Cache peripheral 29, delete it, then a big batch with rows for it. */
		b[0] = raw("k-test-0002", 29, 1, 1, t0);
		check(kg_pg__write(pg, b, 1, status) == 0 && status[0] == KG_PG_ROW_OK, "peripheral 29 cached");
		q1("DELETE FROM peripherals WHERE id = 29");
		for(i = 0; i < NBIG; i++){
			char serial[16];
			snprintf(serial, sizeof(serial), "k-test-%04d", i % 3 + 1);
			big[i] = raw(serial, i % 50 == 7 ? 29 : (i % 3 + 1) * 10 + 2, 4, i, t0 + 20000 + i);
			if(i % 50 == 7) snprintf(big[i].serial, sizeof(big[i].serial), "k-test-0002");
		}
		kg_pg__stats(pg, &st);
		ins0 = st.rows_inserted;
		check(kg_pg__write(pg, big, NBIG, bst) == 0, "big batch with a deleted peripheral settled");
		for(nbad = 0, i = 0; i < NBIG; i++){
			nbad += bst[i] != (i % 50 == 7 ? KG_PG_ROW_UNKNOWN_PERIPHERAL : KG_PG_ROW_OK);
		}
		check(nbad == 0, "big batch: only the deleted peripheral's 12 rows rejected");
		kg_pg__stats(pg, &st);
		check(st.rows_inserted - ins0 == NBIG - 12, "big batch: %d inserted (want %d)",
				(int)(st.rows_inserted - ins0), NBIG - 12);
		free(big);
		free(bst);
	}
	kg_pg__free(pg);

	check_killed_mid_batch(uri);
	check_concurrent_writers(uri);

	/* 7. Unreachable server: -1, not connected, and the password never appears in the log. */
	snprintf(baduri, sizeof(baduri), "postgresql://kg:s3cretPW@127.0.0.1:1/nothing?connect_timeout=2");
	bad = kg_pg__new(baduri);
	b[0] = raw("k-test-0001", 11, 1, 1, t0);
	check(bad && kg_pg__write(bad, b, 1, status) == -1 && !kg_pg__connected(bad), "unreachable server: -1");
	kg_pg__stats(bad, &st);
	check(st.errors == 1 && !st.connected, "unreachable server counted as an error");
	check(!logs_contain("s3cretPW"), "password never logged");
	kg_pg__free(bad);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Write rows raw rows in batches of bsz; returns rows/s, or -1 on failure. */
static double bench(const char *uri, size_t rows, size_t bsz)
{
	struct kg_record *b = calloc(bsz, sizeof(*b));
	uint8_t *status = calloc(bsz, 1);
	struct kg_pg *pg = kg_pg__new(uri);
	double t, rate = -1;
	size_t done = 0, i;
	int nkits = atoi(q1("SELECT count(*) FROM kits WHERE serial LIKE 'k-test-%%'"));

	if(!b || !status || !pg || nkits < 1) goto out;
	/* Connect and warm the caches outside the timing. */
	b[0] = raw("k-test-0001", 11, 1, 0, 1700000000000LL);
	if(kg_pg__write(pg, b, 1, status)) goto out;
	t = now_s();
	while(done < rows){
		size_t n = rows - done < bsz ? rows - done : bsz;
		for(i = 0; i < n; i++){
			size_t k = (done + i) % (size_t)nkits + 1;
			char serial[32];
			snprintf(serial, sizeof(serial), "k-test-%04zu", k);
			b[i] = raw(serial, (int32_t)(k * 10 + 1 + (done + i) % 3), (int32_t)((done + i) % 5 + 1),
					20.0 + (double)(done + i) / 1000.0, 1700000000000LL + (int64_t)(done + i));
		}
		if(kg_pg__write(pg, b, n, status)) goto out;
		for(i = 0; i < n; i++){
			if(status[i] != KG_PG_ROW_OK) goto out;
		}
		done += n;
	}
	rate = (double)rows / (now_s() - t);
out:
	kg_pg__free(pg);
	free(b);
	free(status);
	return rate;
}

int main(int argc, char **argv)
{
	const char *uri;
	double min_rate = 0;
	long nbench = 0;
	size_t sizes[8] = {1, 100, 1000}, nsizes = 3;
	int i;

	if(argc < 2){
		fprintf(stderr, "usage: %s URI [--bench N [--min-rate R]]\n", argv[0]);
		return 2;
	}
	uri = argv[1];
	for(i = 2; i < argc; i++){
		if(!strcmp(argv[i], "--bench") && i + 1 < argc){
			nbench = atol(argv[++i]);
		}else if(!strcmp(argv[i], "--min-rate") && i + 1 < argc){
			min_rate = atof(argv[++i]);
		}else if(!strcmp(argv[i], "--sizes") && i + 1 < argc){
			char *p = argv[++i];
			for(nsizes = 0; *p && nsizes < 8; nsizes++){
				sizes[nsizes] = strtoul(p, &p, 10);
				if(!sizes[nsizes]) return 2;
				if(*p == ',') p++;
			}
		}else{
			fprintf(stderr, "unknown argument %s\n", argv[i]);
			return 2;
		}
	}
	kg_log__configure(log_sink, KG_LOG_INFO);
	id_run = (uint32_t)time(NULL) ^ ((uint32_t)getpid() << 16);
	chk = PQconnectdb(uri);
	if(PQstatus(chk) != CONNECTION_OK){
		fprintf(stderr, "cannot connect: %s", PQerrorMessage(chk));
		return 2;
	}
	q1("SET client_min_messages = warning");
	if(nbench > 0){
		size_t k;

		for(k = 0; k < nsizes; k++){
			size_t rows = sizes[k] == 1 && nbench > 5000 ? 5000 : (size_t)nbench;
			double r = bench(uri, rows, sizes[k]);

			printf("bench batch=%zu rows=%zu rows_per_s=%.0f\n", sizes[k], rows, r);
			fflush(stdout);
			if(r < 0){
				check(0, "bench batch %zu failed", sizes[k]);
			}else if(sizes[k] == 1000 && min_rate > 0){
				check(r >= min_rate, "batch 1000: %.0f rows/s >= %.0f", r, min_rate);
			}
		}
	}else{
		run_checks(uri);
	}
	PQfinish(chk);
	printf("%s: %d failure(s)\n", failures ? "FAIL" : "PASS", failures);
	return failures ? 1 : 0;
}
