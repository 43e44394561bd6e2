/* pgwriter.c -- batched, idempotent writes of RAW/AGGREGATE records into the AstroPlant schema (libpq, one connection). */
/*
 * A batch is checked against two caches (pgcache.c: peripheral -> kit, configuration, kit serial;
 * known quantity type ids), filled with one query per batch for the ids it misses, unknown ids
 * being remembered for NEGATIVE_TTL_MS. The accepted rows go in with one prepared statement whose
 * parameters are binary arrays (INSERT ... SELECT unnest(...) ON CONFLICT (id) DO NOTHING for
 * each table, then the kit_last_seen upsert): one implicit transaction, one round trip, no text
 * parsing on the server.
 *
 * Several kg_pg may write the same tables at once (the sink runs one per connection, each on its
 * own thread). They cannot deadlock: every batch takes its row locks in one global order -- raw
 * rows by id, then aggregate rows by id (a duplicate id waits for the transaction that inserted
 * it), then kit_last_seen rows by kit id -- and the foreign-key checks only take shared locks.
 * kit_last_seen moves only forward (GREATEST), whichever of two writers commits last.
 *
 * A data error (SQLSTATE class 22 or 23, e.g. a peripheral deleted since it was cached, or text
 * the database refuses) rolls the batch back, reloads the caches and writes the rows one by one
 * under savepoints, in the same order, so one bad row only rejects itself. Any other error drops
 * the connection and returns -1 (nothing of the batch is committed); the caller retries.
 *
 * Threads: a kg_pg and everything in it belong to the thread that calls kg_pg__write.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "kitgate/clock.h"
#include "kitgate/json.h"
#include "kitgate/log.h"
#include "kitgate/numfmt.h"
#include "kitgate/pgcache.h"
#include "kitgate/pgconn.h"
#include "kitgate/pgwriter.h"
#include "kitgate/ratelimit.h"
#include "kitgate/record.h"
#include "kitgate/uuid.h"

#define NEGATIVE_TTL_MS 5000     /* how long an unknown peripheral/quantity type stays unknown */
#define POSITIVE_TTL_MS 600000   /* known ones are looked up again after this (renamed kits) */
#define CACHE_MAX_ENTRIES 65536  /* a cache growing past this is cleared (bounds memory) */

/* Type oids of the binary array elements (pg_type.h; fixed since PostgreSQL 8.x / 9.4). */
#define OID_INT4 23
#define OID_JSON 114
#define OID_FLOAT8 701
#define OID_TIMESTAMPTZ 1184
#define OID_UUID 2950
/* Microseconds between the Unix epoch and PostgreSQL's (2000-01-01). */
#define PG_EPOCH_MS INT64_C(946684800000)

/* ---- statements ---- */

#define SQL_PERIPHERALS \
	"SELECT p.id, p.kit_id, p.kit_configuration_id, k.serial FROM peripherals p " \
	"JOIN kits k ON k.id = p.kit_id WHERE p.id = ANY($1::int[])"
#define SQL_QUANTITY_TYPES \
	"SELECT id FROM quantity_types WHERE id = ANY($1::int[])"
/* One statement per batch, all parameters binary arrays (any may be empty): the raw rows
 * ($1..$7), the aggregate rows ($8..$15), the kit ids for kit_last_seen ($16, sorted, distinct).
 * Rows are inserted in array order (sorted by id by the caller) and the CTEs run in the order
 * the final SELECT reads them (r, a, s): that is the lock order described above. Returns the
 * number of rows really inserted (duplicates are skipped) and of kit_last_seen rows touched. */
#define SQL_BATCH \
	"WITH r AS (INSERT INTO raw_measurements (id, peripheral_id, kit_id, kit_configuration_id, " \
	"quantity_type_id, value, datetime) " \
	"SELECT * FROM unnest($1::uuid[], $2::int4[], $3::int4[], $4::int4[], $5::int4[], " \
	"$6::float8[], $7::timestamptz[]) ON CONFLICT (id) DO NOTHING RETURNING 1), " \
	"a AS (INSERT INTO aggregate_measurements (id, peripheral_id, kit_id, kit_configuration_id, " \
	"quantity_type_id, datetime_start, datetime_end, \"values\") " \
	"SELECT * FROM unnest($8::uuid[], $9::int4[], $10::int4[], $11::int4[], $12::int4[], " \
	"$13::timestamptz[], $14::timestamptz[], $15::json[]) ON CONFLICT (id) DO NOTHING RETURNING 1), " \
	"s AS (INSERT INTO kit_last_seen AS l (kit_id, datetime_last_seen) " \
	"SELECT k, now() FROM unnest($16::int4[]) AS k ORDER BY k " \
	"ON CONFLICT (kit_id) DO UPDATE SET datetime_last_seen = " \
	"GREATEST(l.datetime_last_seen, EXCLUDED.datetime_last_seen) RETURNING 1) " \
	"SELECT (SELECT count(*) FROM r) + (SELECT count(*) FROM a), (SELECT count(*) FROM s)"

enum stmt { ST_PERIPHERALS, ST_QUANTITY_TYPES, ST_BATCH, ST_COUNT };
static const char *const stmt_name[ST_COUNT] = {"kg_periph", "kg_qt", "kg_batch"};
static const char *const stmt_sql[ST_COUNT] = {SQL_PERIPHERALS, SQL_QUANTITY_TYPES, SQL_BATCH};
enum { NRAW = 7, NAGG = 8, NPARAMS = NRAW + NAGG + 1 };
static const int stmt_nparams[ST_COUNT] = {1, 1, NPARAMS};

/* ---- small helpers ---- */

/* A grow-only byte buffer, reused across batches (kept NUL-terminated for text use). */
struct sbuf {
	char *p;
	size_t len, cap;
};

/* Ensure room for extra more bytes plus a NUL. Returns 0 or -1 (out of memory). */
static int sb_reserve(struct sbuf *sb, size_t extra)
{
	size_t need = sb->len + extra + 1;
	size_t ncap;
	char *np;

	if(need <= sb->cap) return 0;
	ncap = sb->cap ? sb->cap : 4096;
	while(ncap < need) ncap *= 2;
	np = realloc(sb->p, ncap);
	if(!np) return -1;
	sb->p = np;
	sb->cap = ncap;
	return 0;
}

static int sb_add(struct sbuf *sb, const char *s, size_t n)
{
	if(sb_reserve(sb, n)) return -1;
	memcpy(sb->p + sb->len, s, n);
	sb->len += n;
	sb->p[sb->len] = '\0';
	return 0;
}

static int sb_addc(struct sbuf *sb, char c)
{
	return sb_add(sb, &c, 1);
}

/* ---- binary arrays (the array_recv wire format) ---- */

/* A one-dimensional array of non-null elements under construction. The first ARR_HDR bytes are
 * reserved for the header, which barr_finish writes. */
#define ARR_HDR 20
struct barr {
	struct sbuf b;
	uint32_t oid;
	uint32_t n;
};

static void put_be32(char *p, uint32_t v)
{
	p[0] = (char)(v >> 24);
	p[1] = (char)(v >> 16);
	p[2] = (char)(v >> 8);
	p[3] = (char)v;
}

static void put_be64(char *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

/* Empty the array and make it one of element type oid. Returns 0 or -1 (out of memory). */
static int barr_start(struct barr *a, uint32_t oid)
{
	a->oid = oid;
	a->n = 0;
	a->b.len = 0;
	if(sb_reserve(&a->b, ARR_HDR)) return -1;
	a->b.len = ARR_HDR;
	return 0;
}

/* Append one element of len bytes (already in network byte order). Returns 0 or -1. */
static int barr_add(struct barr *a, const void *data, size_t len)
{
	char *p;

	assert(len <= INT32_MAX);
	if(sb_reserve(&a->b, 4 + len)) return -1;
	p = a->b.p + a->b.len;
	put_be32(p, (uint32_t)len);
	memcpy(p + 4, data, len);
	a->b.len += 4 + len;
	a->n++;
	return 0;
}

static int barr_i32(struct barr *a, int32_t v)
{
	char d[4];

	put_be32(d, (uint32_t)v);
	return barr_add(a, d, 4);
}

static int barr_i64(struct barr *a, int64_t v)
{
	char d[8];

	put_be64(d, (uint64_t)v);
	return barr_add(a, d, 8);
}

static int barr_f64(struct barr *a, double v)
{
	uint64_t u;

	memcpy(&u, &v, sizeof(u));
	return barr_i64(a, (int64_t)u);
}

/* A timestamptz element for epoch milliseconds ms. A time that does not fit becomes a value
 * the server refuses (SQLSTATE 22008), so that row ends up KG_PG_ROW_REJECTED. */
static int barr_time(struct barr *a, int64_t ms)
{
	int64_t us;

	if(__builtin_sub_overflow(ms, PG_EPOCH_MS, &ms) || __builtin_mul_overflow(ms, 1000, &us)){
		us = INT64_MAX - 1; /* not "infinity" (INT64_MAX), out of range */
	}
	return barr_i64(a, us);
}

/* Write the header and return the parameter: *val and *len. An empty array is sent as the
 * 12-byte zero-dimension form, placed just before where the elements would start. */
static void barr_finish(struct barr *a, const char **val, int *len)
{
	char *p = a->b.p;

	assert(a->b.len >= ARR_HDR && a->b.len - ARR_HDR <= INT32_MAX);
	if(!a->n){
		p += ARR_HDR - 12;
		put_be32(p, 0);      /* ndim */
		put_be32(p + 4, 0);  /* has nulls */
		put_be32(p + 8, a->oid);
		*val = p;
		*len = 12;
		return;
	}
	put_be32(p, 1);
	put_be32(p + 4, 0);
	put_be32(p + 8, a->oid);
	put_be32(p + 12, a->n);
	put_be32(p + 16, 1);     /* lower bound */
	*val = p;
	*len = (int)a->b.len;
}

/* ---- the writer ---- */

enum { RL_SERVER = KG_PG_ROW_COUNT, RL_COUNT };

/* A row of the batch in lock order: the record and its index in the caller's status array. */
struct ord_row {
	const struct kg_record *rec;
	size_t i;
};

struct kg_pg {
	char *conninfo;
	PGconn *conn;
	struct kg_pgconn_cancel cancel; /* conn's cancel handle, for kg_pg__cancel from other threads */
	bool ever_connected;
	struct kg_pg_stats st;
	struct kg_pgcache *periph, *qtypes;
	/* The parameters of ST_BATCH under construction: raw columns, aggregate columns, kit ids. */
	struct barr raw[NRAW], agg[NAGG], kits;
	struct ord_row *ord;          /* this batch's OK rows in lock order */
	int32_t *kit_ids;
	size_t ord_cap;
	const struct kg_record **ptrs; /* kg_pg__write's pointers to its array's records */
	size_t ptrs_cap;
	struct sbuf ids, json;        /* resolve()'s id list; one aggregate's JSON object */
	struct kg_ratelimit rl[RL_COUNT];  /* log lines, per rejection reason and for server errors */
	char data_error[256];   /* message of the last SQLSTATE 22/23 error */
};

const char *kg_pg__row_name(enum kg_pg_row r)
{
	switch(r){
		case KG_PG_ROW_OK: return "ok";
		case KG_PG_ROW_UNKNOWN_PERIPHERAL: return "unknown_peripheral";
		case KG_PG_ROW_FOREIGN_PERIPHERAL: return "foreign_peripheral";
		case KG_PG_ROW_UNKNOWN_QUANTITY_TYPE: return "unknown_quantity_type";
		case KG_PG_ROW_REJECTED: return "db_rejected";
		default: return "unknown";
	}
}

/* Copy a libpq message (multi-line, ending in a newline) into out as one line. */
static void one_line(const char *msg, char *out, size_t cap)
{
	size_t o = 0;
	bool space = false;

	for(; msg && *msg && o + 1 < cap; msg++){
		if(*msg == '\n' || *msg == '\t' || *msg == '\r' || *msg == ' '){
			space = o > 0;
			continue;
		}
		if(space && o + 2 < cap) out[o++] = ' ';
		space = false;
		out[o++] = *msg;
	}
	out[o] = '\0';
}

/* " (N similar lines suppressed)" when N > 0, else "". */
static const char *suppressed_note(uint64_t n, char *buf, size_t cap)
{
	if(!n) return "";
	snprintf(buf, cap, " (%" PRIu64 " similar lines suppressed)", n);
	return buf;
}

/* Log a server/connection problem (rate-limited). */
static void log_server(struct kg_pg *pg, const char *what, const char *msg)
{
	char line[512], note[64];
	uint64_t sup;

	if(!kg_ratelimit__allow(&pg->rl[RL_SERVER], &sup)) return;
	one_line(msg, line, sizeof(line));
	kg_log(KG_LOG_ERROR, "pg: %s: %s%s", what, line, suppressed_note(sup, note, sizeof(note)));
}

/* Record and log (rate-limited) one rejected row. */
static void reject_row(struct kg_pg *pg, const struct kg_record *rec, uint8_t *status, enum kg_pg_row why)
{
	char uuid[37], note[64];
	uint64_t sup;

	*status = (uint8_t)why;
	pg->st.rows_rejected[why]++;
	if(!kg_ratelimit__allow(&pg->rl[why], &sup)) return;
	kg_uuid__format(rec->id, uuid);
	kg_log(KG_LOG_WARNING, "pg: rejected %s measurement %s from kit %s: peripheral %" PRId32
			", quantity type %" PRId32 ": %s%s%s%s",
			rec->kind == KG_KIND_AGGREGATE ? "aggregate" : "raw", uuid, rec->serial,
			rec->peripheral, rec->quantity_type, kg_pg__row_name(why),
			why == KG_PG_ROW_REJECTED ? ": " : "", why == KG_PG_ROW_REJECTED ? pg->data_error : "",
			suppressed_note(sup, note, sizeof(note)));
}

/* Close the connection (an open transaction is rolled back by the server) and forget the
 * caches: the next connection may see another database. */
static void drop_connection(struct kg_pg *pg)
{
	kg_pgconn__cancel_set(&pg->cancel, NULL);
	if(pg->conn) PQfinish(pg->conn);
	pg->conn = NULL;
	kg_pgcache__clear(pg->periph);
	kg_pgcache__clear(pg->qtypes);
}

struct kg_pg *kg_pg__new(const char *conninfo)
{
	struct kg_pg *pg = calloc(1, sizeof(*pg));

	if(!pg) return NULL;
	kg_pgconn__cancel_init(&pg->cancel);
	pg->conninfo = strdup(conninfo ? conninfo : "");
	pg->periph = kg_pgcache__new();
	pg->qtypes = kg_pgcache__new();
	if(!pg->conninfo || !pg->periph || !pg->qtypes){
		kg_pg__free(pg);
		return NULL;
	}
	return pg;
}

void kg_pg__free(struct kg_pg *pg)
{
	size_t i;

	if(!pg) return;
	if(pg->conn) PQfinish(pg->conn);
	for(i = 0; i < NRAW; i++) free(pg->raw[i].b.p);
	for(i = 0; i < NAGG; i++) free(pg->agg[i].b.p);
	free(pg->kits.b.p);
	free(pg->ord);
	free(pg->ptrs);
	free(pg->kit_ids);
	free(pg->ids.p);
	free(pg->json.p);
	kg_pgcache__free(pg->periph);
	kg_pgcache__free(pg->qtypes);
	free(pg->conninfo);
	kg_pgconn__cancel_destroy(&pg->cancel);
	free(pg);
}

/* Contract in pgwriter.h. */
void kg_pg__cancel(struct kg_pg *pg)
{
	if(pg) kg_pgconn__cancel_fire(&pg->cancel);
}

void kg_pg__stats(const struct kg_pg *pg, struct kg_pg_stats *st)
{
	*st = pg->st;
	st->connected = kg_pg__connected(pg);
}

int kg_pg__connected(const struct kg_pg *pg)
{
	return pg->conn && PQstatus(pg->conn) == CONNECTION_OK;
}

/* A new connection with the statements prepared, or NULL (logged). Defaults (keepalives,
 * tcp_user_timeout, statement and lock timeouts) and the URI's precedence: pgconn.h. Never logs
 * the conninfo. */
static PGconn *connect_one(struct kg_pg *pg)
{
	PGconn *c = kg_pgconn__connect(pg->conninfo, "kitgate", 10);
	PGresult *res;
	int i;

	if(!c || PQstatus(c) != CONNECTION_OK){
		log_server(pg, "cannot connect", c ? PQerrorMessage(c) : "out of memory");
		PQfinish(c);
		return NULL;
	}
	/* Cancellable from here on: preparing waits on a table lock like any statement. */
	kg_pgconn__cancel_set(&pg->cancel, c);
	if(kg_pgconn__cancel_fired(&pg->cancel)){   /* fired while we connected: it found no handle */
		kg_pgconn__cancel_set(&pg->cancel, NULL);
		PQfinish(c);
		return NULL;
	}
	for(i = 0; i < ST_COUNT; i++){
		res = PQprepare(c, stmt_name[i], stmt_sql[i], stmt_nparams[i], NULL);
		if(PQresultStatus(res) != PGRES_COMMAND_OK){
			log_server(pg, "cannot prepare statements (is schema/astroplant.sql loaded?)",
					PQresultErrorMessage(res));
			PQclear(res);
			kg_pgconn__cancel_set(&pg->cancel, NULL);
			PQfinish(c);
			return NULL;
		}
		PQclear(res);
	}
	return c;
}

/* Connect when not connected. Returns 0 or -1 (logged, counted; nothing is left behind). */
static int ensure_connected(struct kg_pg *pg)
{
	if(pg->conn && PQstatus(pg->conn) == CONNECTION_OK) return 0;
	drop_connection(pg);
	if(kg_pgconn__cancel_fired(&pg->cancel)) return -1; /* shutting down: do not connect again */
	pg->conn = connect_one(pg);
	if(!pg->conn){
		pg->st.errors++;
		return -1;
	}
	if(pg->ever_connected) pg->st.reconnects++;
	pg->ever_connected = true;
	kg_log(KG_LOG_INFO, "pg: connected to database %s on %s port %s as %s", PQdb(pg->conn),
			PQhost(pg->conn), PQport(pg->conn), PQuser(pg->conn));
	return 0;
}

enum errkind { ERR_NONE, ERR_DATA, ERR_FATAL };

/* Classify a finished result (expected status ok). ERR_DATA: SQLSTATE class 22/23, this
 * batch's data is at fault; ERR_FATAL: anything else (connection lost, shutdown, missing
 * table, ...): the caller drops the connection and retries later. Logs fatal errors. */
static enum errkind classify(struct kg_pg *pg, PGresult *res, ExecStatusType ok, const char *what)
{
	const char *state;

	if(res && PQresultStatus(res) == ok) return ERR_NONE;
	state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if(state && PQstatus(pg->conn) == CONNECTION_OK
			&& (!strncmp(state, "22", 2) || !strncmp(state, "23", 2))){
		const char *prim = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		char line[200];

		one_line(prim ? prim : "", line, sizeof(line));
		snprintf(pg->data_error, sizeof(pg->data_error), "%s (SQLSTATE %s)", line, state);
		return ERR_DATA;
	}
	log_server(pg, what, res ? PQresultErrorMessage(res) : PQerrorMessage(pg->conn));
	return ERR_FATAL;
}

/* Run a parameterless command (BEGIN, COMMIT, ...). */
static enum errkind run(struct kg_pg *pg, const char *sql)
{
	PGresult *res = PQexec(pg->conn, sql);
	enum errkind k = classify(pg, res, PGRES_COMMAND_OK, sql);

	PQclear(res);
	return k;
}

/* Run prepared statement st; params in binary when formats is not NULL (lens then gives their
 * lengths), else text. On ERR_NONE *out owns the result (the caller PQclears it). */
static enum errkind run_stmt(struct kg_pg *pg, enum stmt st, const char *const *params,
		const int *lens, const int *formats, PGresult **out)
{
	PGresult *res = PQexecPrepared(pg->conn, stmt_name[st], stmt_nparams[st], params, lens, formats, 0);
	enum errkind k = classify(pg, res, PGRES_TUPLES_OK, stmt_name[st]);

	if(k == ERR_NONE){
		*out = res;
	}else{
		PQclear(res);
	}
	return k;
}

/* Append the decimal text of v. */
static int sb_addi(struct sbuf *sb, int32_t v)
{
	char tmp[12], *q = tmp + sizeof(tmp);
	uint32_t u = v < 0 ? 0u - (uint32_t)v : (uint32_t)v;

	do{
		*--q = (char)('0' + u % 10);
		u /= 10;
	}while(u);
	if(v < 0) *--q = '-';
	return sb_add(sb, q, (size_t)(tmp + sizeof(tmp) - q));
}

/* Resolve the peripherals and quantity types of rows whose status is OK and whose ids are not
 * cached (or whose entry expired): at most one query each. Returns 0, or -1 on out-of-memory /
 * a fatal server error (the caller drops the connection). */
static int resolve(struct kg_pg *pg, const struct kg_record *const *recs, size_t n, const uint8_t *status)
{
	int64_t now = kg_clock__mono_ms();
	size_t i, nmiss;
	int pass, r;

	for(pass = 0; pass < 2; pass++){
		struct kg_pgcache *c = pass == 0 ? pg->periph : pg->qtypes;
		PGresult *res = NULL;
		const char *param;

		pg->ids.len = 0;
		if(sb_addc(&pg->ids, '{')) return -1;
		/* Bound memory (a kit may send any number of made-up ids); never in mid-pass, where
		 * it would forget this batch's pending entries. */
		if(kg_pgcache__used(c) + n > CACHE_MAX_ENTRIES) kg_pgcache__clear(c);
		nmiss = 0;
		for(i = 0; i < n; i++){
			int32_t id = pass == 0 ? recs[i]->peripheral : recs[i]->quantity_type;
			struct kg_pgcache_entry *e;

			if(status[i] != KG_PG_ROW_OK) continue;
			e = kg_pgcache__find(c, id);
			if(e && (e->state == KG_PGCACHE_PENDING || e->until_ms > now)) continue;
			e = kg_pgcache__put(c, id);
			if(!e) return -1;
			e->state = KG_PGCACHE_PENDING;
			if((nmiss && sb_addc(&pg->ids, ',')) || sb_addi(&pg->ids, id)) return -1;
			nmiss++;
		}
		if(!nmiss) continue;
		if(sb_addc(&pg->ids, '}')) return -1;
		param = pg->ids.p;
		if(run_stmt(pg, pass == 0 ? ST_PERIPHERALS : ST_QUANTITY_TYPES, &param, NULL, NULL,
				&res) != ERR_NONE){
			return -1;
		}
		for(r = 0; r < PQntuples(res); r++){
			struct kg_pgcache_entry *e = kg_pgcache__find(c, (int32_t)atol(PQgetvalue(res, r, 0)));

			if(!e) continue; /* not asked for (cannot happen) */
			e->state = KG_PGCACHE_KNOWN;
			e->until_ms = now + POSITIVE_TTL_MS;
			if(pass == 0){
				e->kit_id = (int32_t)atol(PQgetvalue(res, r, 1));
				e->cfg_id = (int32_t)atol(PQgetvalue(res, r, 2));
				snprintf(e->serial, sizeof(e->serial), "%s", PQgetvalue(res, r, 3));
			}
		}
		PQclear(res);
		/* Whatever is still pending does not exist (yet). */
		for(i = 0; i < n; i++){
			struct kg_pgcache_entry *e = kg_pgcache__find(c,
					pass == 0 ? recs[i]->peripheral : recs[i]->quantity_type);

			if(e && e->state == KG_PGCACHE_PENDING){
				e->state = KG_PGCACHE_NEGATIVE;
				e->until_ms = now + NEGATIVE_TTL_MS;
			}
		}
	}
	return 0;
}

/* Check every still-OK row against the caches (resolve() ran) and reject the bad ones. */
static void check_rows(struct kg_pg *pg, const struct kg_record *const *recs, size_t n, uint8_t *status)
{
	size_t i;

	for(i = 0; i < n; i++){
		const struct kg_record *rec = recs[i];
		struct kg_pgcache_entry *p, *q;

		if(status[i] != KG_PG_ROW_OK) continue;
		p = kg_pgcache__find(pg->periph, rec->peripheral);
		q = kg_pgcache__find(pg->qtypes, rec->quantity_type);
		if(!p || p->state != KG_PGCACHE_KNOWN){
			reject_row(pg, rec, &status[i], KG_PG_ROW_UNKNOWN_PERIPHERAL);
		}else if(strcmp(p->serial, rec->serial) != 0){
			reject_row(pg, rec, &status[i], KG_PG_ROW_FOREIGN_PERIPHERAL);
		}else if(!q || q->state != KG_PGCACHE_KNOWN){
			reject_row(pg, rec, &status[i], KG_PG_ROW_UNKNOWN_QUANTITY_TYPE);
		}
	}
}

/* Append s as a JSON string body (no quotes), escaped by kg_json__escape. */
static int json_escape(struct sbuf *sb, const char *s)
{
	size_t len = strlen(s);

	if(sb_reserve(sb, 6 * len)) return -1;
	sb->len += kg_json__escape(sb->p + sb->len, 6 * len, s, len);
	sb->p[sb->len] = '\0';
	return 0;
}

/* ---- building and running a batch ---- */

/* The lock order: raw rows before aggregate rows, each by id (bytes, as uuid compares). */
static int cmp_rows(const void *a, const void *b)
{
	const struct kg_record *x = ((const struct ord_row *)a)->rec;
	const struct kg_record *y = ((const struct ord_row *)b)->rec;

	if(x->kind != y->kind) return x->kind == KG_KIND_RAW ? -1 : 1;
	return memcmp(x->id, y->id, sizeof(x->id));
}

static int cmp_i32(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;

	return (x > y) - (x < y);
}

/* Fill pg->ord with the rows of recs whose status is OK, in lock order. Returns how many, or
 * -1 on out-of-memory. */
static long order_rows(struct kg_pg *pg, const struct kg_record *const *recs, size_t n, const uint8_t *status)
{
	size_t i, k = 0;

	if(n > pg->ord_cap){
		struct ord_row *no = realloc(pg->ord, n * sizeof(*no));
		int32_t *nk;

		if(!no) return -1;
		pg->ord = no;
		nk = realloc(pg->kit_ids, n * sizeof(*nk));
		if(!nk) return -1;
		pg->kit_ids = nk;
		pg->ord_cap = n;
	}
	for(i = 0; i < n; i++){
		if(status[i] == KG_PG_ROW_OK) pg->ord[k++] = (struct ord_row){recs[i], i};
	}
	qsort(pg->ord, k, sizeof(*pg->ord), cmp_rows);
	return (long)k;
}

static int reset_arrays(struct kg_pg *pg)
{
	static const uint32_t raw_oid[NRAW] = {OID_UUID, OID_INT4, OID_INT4, OID_INT4, OID_INT4,
		OID_FLOAT8, OID_TIMESTAMPTZ};
	static const uint32_t agg_oid[NAGG] = {OID_UUID, OID_INT4, OID_INT4, OID_INT4, OID_INT4,
		OID_TIMESTAMPTZ, OID_TIMESTAMPTZ, OID_JSON};
	size_t i;

	for(i = 0; i < NRAW; i++) if(barr_start(&pg->raw[i], raw_oid[i])) return -1;
	for(i = 0; i < NAGG; i++) if(barr_start(&pg->agg[i], agg_oid[i])) return -1;
	return barr_start(&pg->kits, OID_INT4);
}

/* Append one accepted row (its peripheral is cached) to the arrays of its kind. */
static int append_row(struct kg_pg *pg, const struct kg_record *rec)
{
	const struct kg_pgcache_entry *p = kg_pgcache__find(pg->periph, rec->peripheral);
	struct barr *a = rec->kind == KG_KIND_RAW ? pg->raw : pg->agg;
	struct sbuf *js = &pg->json;
	char d[32];
	int i;

	assert(p && p->state == KG_PGCACHE_KNOWN);
	assert(rec->kind == KG_KIND_RAW || rec->kind == KG_KIND_AGGREGATE);
	if(barr_add(&a[0], rec->id, 16)
			|| barr_i32(&a[1], rec->peripheral)
			|| barr_i32(&a[2], p->kit_id)
			|| barr_i32(&a[3], p->cfg_id)
			|| barr_i32(&a[4], rec->quantity_type)){
		return -1;
	}
	if(rec->kind == KG_KIND_RAW){
		return barr_f64(&a[5], rec->value) || barr_time(&a[6], rec->datetime_ms) ? -1 : 0;
	}
	if(barr_time(&a[5], rec->start_ms) || barr_time(&a[6], rec->end_ms)) return -1;
	/* json's binary form is its text. */
	js->len = 0;
	if(sb_addc(js, '{')) return -1;
	for(i = 0; i < rec->nvalues && i < KG_AGG_MAX; i++){
		size_t dl = (size_t)kg_numfmt__double(rec->values[i].value, d);
		if((i && sb_addc(js, ',')) || sb_addc(js, '"') || json_escape(js, rec->values[i].name)
				|| sb_add(js, "\":", 2) || sb_add(js, d, dl)){
			return -1;
		}
	}
	if(sb_addc(js, '}')) return -1;
	return barr_add(&a[7], js->p, js->len);
}

/* Put the distinct kit ids of rows ord[0..k) into the kit_last_seen array, ascending. */
static int add_kits(struct kg_pg *pg, const struct ord_row *ord, size_t k)
{
	size_t i, nk = 0;

	for(i = 0; i < k; i++){
		const struct kg_pgcache_entry *p = kg_pgcache__find(pg->periph, ord[i].rec->peripheral);

		assert(p && p->state == KG_PGCACHE_KNOWN);
		pg->kit_ids[nk++] = p->kit_id;
	}
	qsort(pg->kit_ids, nk, sizeof(*pg->kit_ids), cmp_i32);
	for(i = 0; i < nk; i++){
		if(i && pg->kit_ids[i] == pg->kit_ids[i - 1]) continue;
		if(barr_i32(&pg->kits, pg->kit_ids[i])) return -1;
	}
	return 0;
}

/* Run ST_BATCH with the arrays as they are. Adds to *inserted the rows really inserted. */
static enum errkind run_batch(struct kg_pg *pg, uint64_t *inserted)
{
	static const int formats[NPARAMS] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
	const char *params[NPARAMS];
	int lens[NPARAMS], i;
	PGresult *res = NULL;
	enum errkind k;

	for(i = 0; i < NRAW; i++) barr_finish(&pg->raw[i], &params[i], &lens[i]);
	for(i = 0; i < NAGG; i++) barr_finish(&pg->agg[i], &params[NRAW + i], &lens[NRAW + i]);
	barr_finish(&pg->kits, &params[NPARAMS - 1], &lens[NPARAMS - 1]);
	k = run_stmt(pg, ST_BATCH, params, lens, formats, &res);
	if(k != ERR_NONE) return k;
	if(PQntuples(res) == 1) *inserted += strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return ERR_NONE;
}

/* The fast path: every OK row (in lock order) and the kit_last_seen upsert in one statement,
 * hence one implicit transaction. */
static enum errkind write_bulk(struct kg_pg *pg, const struct kg_record *const *recs, size_t n,
		const uint8_t *status, uint64_t *inserted, uint64_t *accepted)
{
	long k = order_rows(pg, recs, n, status);
	long i;

	*inserted = *accepted = 0;
	if(k < 0) return ERR_FATAL;
	if(!k) return ERR_NONE;
	if(reset_arrays(pg)) return ERR_FATAL;
	for(i = 0; i < k; i++){
		if(append_row(pg, pg->ord[i].rec)) return ERR_FATAL;
	}
	if(add_kits(pg, pg->ord, (size_t)k)) return ERR_FATAL;
	*accepted = (uint64_t)k;
	return run_batch(pg, inserted);
}

/* The slow path after a data error: one transaction, a savepoint per row, rows in lock order;
 * rows the database still refuses become KG_PG_ROW_REJECTED. */
static enum errkind write_rows(struct kg_pg *pg, const struct kg_record *const *recs, size_t n,
		uint8_t *status, uint64_t *inserted, uint64_t *accepted)
{
	long k = order_rows(pg, recs, n, status);
	long i, nok = 0;
	enum errkind e;

	*inserted = *accepted = 0;
	if(k < 0) return ERR_FATAL;
	if(run(pg, "BEGIN") != ERR_NONE) return ERR_FATAL;
	for(i = 0; i < k; i++){
		struct ord_row row = pg->ord[i];
		const struct kg_record *rec = row.rec;
		uint64_t ins = 0;

		if(reset_arrays(pg) || append_row(pg, rec)) return ERR_FATAL;
		if(run(pg, "SAVEPOINT kg_row") != ERR_NONE) return ERR_FATAL;
		e = run_batch(pg, &ins);
		if(e == ERR_FATAL) return e;
		if(e == ERR_DATA){
			if(run(pg, "ROLLBACK TO SAVEPOINT kg_row") != ERR_NONE) return ERR_FATAL;
			reject_row(pg, rec, &status[row.i], KG_PG_ROW_REJECTED);
			continue;
		}
		if(run(pg, "RELEASE SAVEPOINT kg_row") != ERR_NONE) return ERR_FATAL;
		pg->ord[nok++] = row; /* keep the accepted ones, still in order, for the kits */
		*inserted += ins;
	}
	*accepted = (uint64_t)nok;
	/* kit_last_seen for the kits of the rows that went in (a kit deleted meanwhile is skipped). */
	if(nok){
		if(reset_arrays(pg) || add_kits(pg, pg->ord, (size_t)nok)) return ERR_FATAL;
		if(run(pg, "SAVEPOINT kg_seen") != ERR_NONE) return ERR_FATAL;
		e = run_batch(pg, &(uint64_t){0});
		if(e == ERR_FATAL) return e;
		if(e == ERR_DATA && run(pg, "ROLLBACK TO SAVEPOINT kg_seen") != ERR_NONE) return ERR_FATAL;
	}
	return run(pg, "COMMIT") == ERR_NONE ? ERR_NONE : ERR_FATAL;
}

int kg_pg__write_ptrs(struct kg_pg *pg, const struct kg_record *const *recs, size_t n, uint8_t *status)
{
	uint64_t inserted = 0, accepted = 0;
	uint64_t rejected_before[KG_PG_ROW_COUNT];
	enum errkind k;
	size_t i;

	assert(pg && (recs || !n) && (status || !n));
	if(!n) return 0;
	if(kg_pgconn__cancel_fired(&pg->cancel)) return -1;
	if(ensure_connected(pg)) return -1;
	memcpy(rejected_before, pg->st.rows_rejected, sizeof(rejected_before));
	for(i = 0; i < n; i++){
		status[i] = KG_PG_ROW_OK;
		if(recs[i]->kind != KG_KIND_RAW && recs[i]->kind != KG_KIND_AGGREGATE){
			snprintf(pg->data_error, sizeof(pg->data_error), "not a measurement (kind %u)",
					(unsigned)recs[i]->kind);
			reject_row(pg, recs[i], &status[i], KG_PG_ROW_REJECTED);
		}
	}
	if(resolve(pg, recs, n, status)) goto failed;
	check_rows(pg, recs, n, status);

	k = write_bulk(pg, recs, n, status, &inserted, &accepted);
	if(k == ERR_DATA){
		/* Stale cache (a peripheral deleted or moved) or a row the database refuses; nothing
		 * of the batch is committed. */
		kg_pgcache__clear(pg->periph);
		kg_pgcache__clear(pg->qtypes);
		if(resolve(pg, recs, n, status)) goto failed;
		check_rows(pg, recs, n, status);
		k = write_rows(pg, recs, n, status, &inserted, &accepted);
	}
	if(k != ERR_NONE) goto failed;
	pg->st.batches++;
	pg->st.rows_inserted += inserted;
	pg->st.rows_duplicate += accepted - inserted;
	return 0;

failed:
	/* The batch will be retried: forget the rejections counted during this attempt, the
	 * retry counts them again. Dropping the connection rolls back whatever was under way. */
	memcpy(pg->st.rows_rejected, rejected_before, sizeof(rejected_before));
	pg->st.errors++;
	drop_connection(pg);
	return -1;
}

int kg_pg__write(struct kg_pg *pg, const struct kg_record *recs, size_t n, uint8_t *status)
{
	size_t i;

	assert(pg && (recs || !n));
	if(n > pg->ptrs_cap){
		const struct kg_record **np = realloc(pg->ptrs, n * sizeof(*np));

		if(!np) return -1;
		pg->ptrs = np;
		pg->ptrs_cap = n;
	}
	for(i = 0; i < n; i++) pg->ptrs[i] = &recs[i];
	return kg_pg__write_ptrs(pg, pg->ptrs, n, status);
}
