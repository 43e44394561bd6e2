/* pgwriter.c -- batched, idempotent writes of RAW/AGGREGATE records into the AstroPlant schema (libpq). */
/*
 * A batch is checked against two caches (peripheral -> kit, configuration, kit serial; known
 * quantity type ids), filled with one query per batch for the ids it misses, unknown ids being
 * remembered for NEGATIVE_TTL_MS. The accepted rows go in with one statement (text array
 * parameters, unnest, ON CONFLICT (id) DO NOTHING, kit_last_seen upsert): one implicit
 * transaction and one round trip. Batches of SPLIT_MIN_ROWS or more are split by id over two
 * connections whose explicit transactions commit together, because the server's per-row
 * foreign-key and index work runs on one core per connection. A data error (SQLSTATE class 22
 * or 23, e.g. a peripheral deleted since it was cached) rolls the batch back, reloads the
 * caches and writes the rows one by one under savepoints, so one bad row only rejects itself.
 * Any other error drops the connections and returns -1; the caller retries the batch.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "kitgate/json.h"
#include "kitgate/log.h"
#include "kitgate/ratelimit.h"
#include "kitgate/numfmt.h"
#include "kitgate/pgwriter.h"
#include "kitgate/record.h"
#include "kitgate/timefmt.h"
#include "kitgate/uuid.h"

#define NEGATIVE_TTL_MS 5000     /* how long an unknown peripheral/quantity type stays unknown */
#define POSITIVE_TTL_MS 600000   /* known ones are looked up again after this (renamed kits) */
#define CACHE_MAX_ENTRIES 65536  /* a cache growing past this is cleared (bounds memory) */
#define SPLIT_MIN_ROWS 200       /* batches from this size run on two connections in parallel */
#define SECOND_RETRY_MS 30000    /* after the second connection failed, try it again after this */

/* ---- statements ---- */

#define SQL_PERIPHERALS \
	"SELECT p.id, p.kit_id, p.kit_configuration_id, k.serial FROM peripherals p " \
	"JOIN kits k ON k.id = p.kit_id WHERE p.id = ANY($1::int[])"
#define SQL_QUANTITY_TYPES \
	"SELECT id FROM quantity_types WHERE id = ANY($1::int[])"
/* One statement, hence one implicit transaction and one round trip, per batch: the raw rows
 * ($1..$7), the aggregate rows ($8..$15) and the kit_last_seen upsert ($16, kits in id order so
 * that concurrent writers lock kit_last_seen rows in the same order). Any array may be empty.
 * Returns the numbers of raw and aggregate rows really inserted (duplicates are skipped). */
#define SQL_BATCH \
	"WITH r AS (INSERT INTO raw_measurements (id, peripheral_id, kit_id, kit_configuration_id, " \
	"quantity_type_id, value, datetime) " \
	"SELECT * FROM unnest($1::uuid[], $2::int[], $3::int[], $4::int[], $5::int[], " \
	"$6::float8[], $7::timestamptz[]) ON CONFLICT (id) DO NOTHING RETURNING 1), " \
	"a AS (INSERT INTO aggregate_measurements (id, peripheral_id, kit_id, kit_configuration_id, " \
	"quantity_type_id, datetime_start, datetime_end, \"values\") " \
	"SELECT * FROM unnest($8::uuid[], $9::int[], $10::int[], $11::int[], $12::int[], " \
	"$13::timestamptz[], $14::timestamptz[], $15::json[]) ON CONFLICT (id) DO NOTHING RETURNING 1), " \
	"s AS (INSERT INTO kit_last_seen (kit_id, datetime_last_seen) " \
	"SELECT k, now() FROM (SELECT DISTINCT unnest($16::int[]) AS k) d ORDER BY k " \
	"ON CONFLICT (kit_id) DO UPDATE SET datetime_last_seen = EXCLUDED.datetime_last_seen RETURNING 1) " \
	"SELECT (SELECT count(*) FROM r) + (SELECT count(*) FROM a), (SELECT count(*) FROM s)"

enum stmt { ST_PERIPHERALS, ST_QUANTITY_TYPES, ST_BATCH, ST_COUNT };
static const char *const stmt_name[ST_COUNT] = {"kg_periph", "kg_qt", "kg_batch"};
static const char *const stmt_sql[ST_COUNT] = {SQL_PERIPHERALS, SQL_QUANTITY_TYPES, SQL_BATCH};
static const int stmt_nparams[ST_COUNT] = {1, 1, 16};

/* ---- small helpers ---- */

/* A grow-only text buffer, reused across batches. */
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

/* Append the decimal text of v (the hot path of array building; snprintf is slow). */
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

/* An array literal under construction: "{" elem "," elem ... "}". */
static int arr_start(struct sbuf *sb)
{
	sb->len = 0;
	return sb_addc(sb, '{');
}

static int arr_sep(struct sbuf *sb)
{
	return sb->len > 1 ? sb_addc(sb, ',') : 0;
}

static int arr_end(struct sbuf *sb)
{
	return sb_addc(sb, '}');
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- id caches (open addressing, linear probing, never deletes single entries) ---- */

enum { CE_EMPTY = 0, CE_KNOWN, CE_NEGATIVE, CE_PENDING };

struct centry {
	int32_t id;
	int32_t kit_id;
	int32_t cfg_id;
	uint8_t state;
	int64_t until_ms;      /* CE_KNOWN/CE_NEGATIVE: valid until then */
	char serial[KG_SERIAL_MAX + 1];
};

struct cache {
	struct centry *slots;
	size_t cap; /* power of two, or 0 */
	size_t used;
};

static size_t cache_hash(int32_t id, size_t cap)
{
	return (size_t)(((uint32_t)id * 2654435761u) & (uint32_t)(cap - 1));
}

static void cache_clear(struct cache *c)
{
	if(c->slots) memset(c->slots, 0, c->cap * sizeof(*c->slots));
	c->used = 0;
}

/* The entry for id, or NULL. */
static struct centry *cache_find(struct cache *c, int32_t id)
{
	size_t i;

	if(!c->cap) return NULL;
	for(i = cache_hash(id, c->cap);; i = (i + 1) & (c->cap - 1)){
		if(c->slots[i].state == CE_EMPTY) return NULL;
		if(c->slots[i].id == id) return &c->slots[i];
	}
}

/* The entry for id, created (state CE_EMPTY, caller fills it) when absent. Keeps the load
 * below 1/2. Returns NULL on out-of-memory. */
static struct centry *cache_put(struct cache *c, int32_t id)
{
	struct centry *e = cache_find(c, id);
	size_t i;

	if(e) return e;
	if((c->used + 1) * 2 > c->cap){
		size_t ncap = c->cap ? c->cap * 2 : 256;
		struct centry *ns = calloc(ncap, sizeof(*ns));
		size_t j;

		if(!ns) return NULL;
		for(j = 0; j < c->cap; j++){
			if(c->slots[j].state == CE_EMPTY) continue;
			for(i = cache_hash(c->slots[j].id, ncap); ns[i].state != CE_EMPTY; i = (i + 1) & (ncap - 1));
			ns[i] = c->slots[j];
		}
		free(c->slots);
		c->slots = ns;
		c->cap = ncap;
	}
	for(i = cache_hash(id, c->cap); c->slots[i].state != CE_EMPTY; i = (i + 1) & (c->cap - 1));
	memset(&c->slots[i], 0, sizeof(c->slots[i]));
	c->slots[i].id = id;
	c->used++;
	return &c->slots[i];
}

/* ---- the writer ---- */

enum { RL_SERVER = KG_PG_ROW_COUNT, RL_COUNT };

/* The arrays of one INSERT statement under construction. */
struct rowset {
	struct sbuf raw[7], agg[8], kits;
	size_t nraw, nagg;
	int32_t last_kit;       /* last id appended to kits, 0 for none (ids are serial, > 0) */
};

/* conn[0] does everything; conn[1], when it can be had, takes half of a big batch in parallel
 * (the database's per-row foreign-key and index work is bound to one core per connection). */
struct kg_pg {
	char *conninfo;
	PGconn *conn[2];
	bool ever_connected;
	int64_t second_retry_ms; /* no second connection attempt before then */
	struct kg_pg_stats st;
	struct cache periph, qtypes;
	struct rowset rs[2];
	struct sbuf ids, json;
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

/* Whether a line of category cat may be logged now; *suppressed gets the count of lines
 * swallowed since the last one that was. */
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

/* Close both connections (an open transaction is rolled back by the server) and forget the
 * caches: the next connection may see another database. */
static void drop_connection(struct kg_pg *pg)
{
	int h;

	for(h = 0; h < 2; h++){
		if(pg->conn[h]) PQfinish(pg->conn[h]);
		pg->conn[h] = NULL;
	}
	cache_clear(&pg->periph);
	cache_clear(&pg->qtypes);
}

struct kg_pg *kg_pg__new(const char *conninfo)
{
	struct kg_pg *pg = calloc(1, sizeof(*pg));

	if(!pg) return NULL;
	pg->conninfo = strdup(conninfo ? conninfo : "");
	if(!pg->conninfo){
		free(pg);
		return NULL;
	}
	return pg;
}

void kg_pg__free(struct kg_pg *pg)
{
	size_t i, h;

	if(!pg) return;
	drop_connection(pg);
	for(h = 0; h < 2; h++){
		for(i = 0; i < 7; i++) free(pg->rs[h].raw[i].p);
		for(i = 0; i < 8; i++) free(pg->rs[h].agg[i].p);
		free(pg->rs[h].kits.p);
	}
	free(pg->ids.p);
	free(pg->json.p);
	free(pg->periph.slots);
	free(pg->qtypes.slots);
	free(pg->conninfo);
	free(pg);
}

void kg_pg__stats(const struct kg_pg *pg, struct kg_pg_stats *st)
{
	*st = pg->st;
	st->connected = kg_pg__connected(pg);
}

int kg_pg__connected(const struct kg_pg *pg)
{
	return pg->conn[0] && PQstatus(pg->conn[0]) == CONNECTION_OK;
}

/* A new connection with the statements prepared, or NULL (logged as what). The URI's own
 * settings win over our defaults (later keywords override earlier ones; dbname is expanded
 * last). Never logs the conninfo. */
static PGconn *connect_one(struct kg_pg *pg, const char *what)
{
	static const char *const keys[] = {"application_name", "connect_timeout", "keepalives_idle",
		"keepalives_interval", "keepalives_count", "tcp_user_timeout", "dbname", NULL};
	const char *vals[] = {"kitgate", "10", "30", "10", "3", "60000", pg->conninfo, NULL};
	PGconn *c = PQconnectdbParams(keys, vals, 1);
	PGresult *res;
	int i;

	if(!c || PQstatus(c) != CONNECTION_OK){
		log_server(pg, what, c ? PQerrorMessage(c) : "out of memory");
		PQfinish(c);
		return NULL;
	}
	for(i = 0; i < ST_COUNT; i++){
		res = PQprepare(c, stmt_name[i], stmt_sql[i], stmt_nparams[i], NULL);
		if(PQresultStatus(res) != PGRES_COMMAND_OK){
			log_server(pg, "cannot prepare statements (is schema/astroplant.sql loaded?)",
					PQresultErrorMessage(res));
			PQclear(res);
			PQfinish(c);
			return NULL;
		}
		PQclear(res);
	}
	return c;
}

/* Connect conn[0] when it is not connected. Returns 0 or -1 (logged, counted; nothing is left
 * behind). */
static int ensure_connected(struct kg_pg *pg)
{
	if(pg->conn[0] && PQstatus(pg->conn[0]) == CONNECTION_OK) return 0;
	drop_connection(pg);
	pg->conn[0] = connect_one(pg, "cannot connect");
	if(!pg->conn[0]){
		pg->st.errors++;
		return -1;
	}
	if(pg->ever_connected) pg->st.reconnects++;
	pg->ever_connected = true;
	kg_log(KG_LOG_INFO, "pg: connected to database %s on %s port %s as %s", PQdb(pg->conn[0]),
			PQhost(pg->conn[0]), PQport(pg->conn[0]), PQuser(pg->conn[0]));
	return 0;
}

/* Whether conn[1] is usable, connecting it when needed. Its failure is not an error: the
 * batch then runs on conn[0] alone. */
static bool ensure_second(struct kg_pg *pg)
{
	if(pg->conn[1] && PQstatus(pg->conn[1]) == CONNECTION_OK) return true;
	PQfinish(pg->conn[1]);
	pg->conn[1] = NULL;
	if(now_ms() < pg->second_retry_ms) return false;
	pg->conn[1] = connect_one(pg, "cannot open the second connection (continuing with one)");
	if(!pg->conn[1]) pg->second_retry_ms = now_ms() + SECOND_RETRY_MS;
	return pg->conn[1] != NULL;
}

enum errkind { ERR_NONE, ERR_DATA, ERR_FATAL };

/* Classify a finished result (expected status ok). ERR_DATA: SQLSTATE class 22/23, this
 * batch's data is at fault; ERR_FATAL: anything else (connection lost, shutdown, missing
 * table, ...): the caller drops the connection and retries later. Logs fatal errors. */
static enum errkind classify(struct kg_pg *pg, PGconn *conn, PGresult *res, ExecStatusType ok,
		const char *what)
{
	const char *state;

	if(res && PQresultStatus(res) == ok) return ERR_NONE;
	state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if(state && PQstatus(conn) == CONNECTION_OK
			&& (!strncmp(state, "22", 2) || !strncmp(state, "23", 2))){
		const char *prim = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		char line[200];

		one_line(prim ? prim : "", line, sizeof(line));
		snprintf(pg->data_error, sizeof(pg->data_error), "%s (SQLSTATE %s)", line, state);
		return ERR_DATA;
	}
	log_server(pg, what, res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
	return ERR_FATAL;
}

/* Run a parameterless command (BEGIN, COMMIT, ...) on conn[0]. */
static enum errkind run(struct kg_pg *pg, const char *sql)
{
	PGresult *res = PQexec(pg->conn[0], sql);
	enum errkind k = classify(pg, pg->conn[0], res, PGRES_COMMAND_OK, sql);

	PQclear(res);
	return k;
}

/* Run prepared statement st (text parameters) on conn[0]. On ERR_NONE *out owns the result
 * (caller PQclears it). */
static enum errkind run_stmt(struct kg_pg *pg, enum stmt st, const char *const *params,
		ExecStatusType ok, PGresult **out)
{
	PGresult *res = PQexecPrepared(pg->conn[0], stmt_name[st], stmt_nparams[st], params, NULL, NULL, 0);
	enum errkind k = classify(pg, pg->conn[0], res, ok, stmt_name[st]);

	if(k == ERR_NONE){
		*out = res;
	}else{
		PQclear(res);
	}
	return k;
}

/* Resolve the peripherals and quantity types of rows whose status is OK and whose ids are not
 * cached (or whose negative entry expired): at most one query each. Returns 0, or -1 on
 * out-of-memory / a fatal server error (caches cleared). */
static int resolve(struct kg_pg *pg, const struct kg_record *recs, size_t n, const uint8_t *status)
{
	int64_t now = now_ms();
	size_t i, nmiss;
	int pass, r;

	for(pass = 0; pass < 2; pass++){
		struct cache *c = pass == 0 ? &pg->periph : &pg->qtypes;
		PGresult *res = NULL;
		const char *param;

		if(arr_start(&pg->ids)) return -1;
		/* Bound memory (a kit may send any number of made-up ids); never in mid-pass, where
		 * it would forget this batch's pending entries. */
		if(c->used + n > CACHE_MAX_ENTRIES) cache_clear(c);
		nmiss = 0;
		for(i = 0; i < n; i++){
			int32_t id = pass == 0 ? recs[i].peripheral : recs[i].quantity_type;
			struct centry *e;

			if(status[i] != KG_PG_ROW_OK) continue;
			e = cache_find(c, id);
			if(e && (e->state == CE_PENDING || e->until_ms > now)) continue;
			e = cache_put(c, id);
			if(!e) return -1;
			e->state = CE_PENDING;
			if(arr_sep(&pg->ids) || sb_addi(&pg->ids, id)) return -1;
			nmiss++;
		}
		if(!nmiss) continue;
		if(arr_end(&pg->ids)) return -1;
		param = pg->ids.p;
		if(run_stmt(pg, pass == 0 ? ST_PERIPHERALS : ST_QUANTITY_TYPES, &param, PGRES_TUPLES_OK,
				&res) != ERR_NONE){
			drop_connection(pg);
			return -1;
		}
		for(r = 0; r < PQntuples(res); r++){
			struct centry *e = cache_find(c, (int32_t)atol(PQgetvalue(res, r, 0)));

			if(!e) continue; /* not asked for (cannot happen) */
			e->state = CE_KNOWN;
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
			struct centry *e = cache_find(c, pass == 0 ? recs[i].peripheral : recs[i].quantity_type);

			if(e && e->state == CE_PENDING){
				e->state = CE_NEGATIVE;
				e->until_ms = now + NEGATIVE_TTL_MS;
			}
		}
	}
	return 0;
}

/* Check every still-OK row against the caches (resolve() ran) and reject the bad ones. */
static void check_rows(struct kg_pg *pg, const struct kg_record *recs, size_t n, uint8_t *status)
{
	size_t i;

	for(i = 0; i < n; i++){
		const struct kg_record *rec = &recs[i];
		struct centry *p, *q;

		if(status[i] != KG_PG_ROW_OK) continue;
		p = cache_find(&pg->periph, rec->peripheral);
		q = cache_find(&pg->qtypes, rec->quantity_type);
		if(!p || p->state != CE_KNOWN){
			reject_row(pg, rec, &status[i], KG_PG_ROW_UNKNOWN_PERIPHERAL);
		}else if(strcmp(p->serial, rec->serial) != 0){
			reject_row(pg, rec, &status[i], KG_PG_ROW_FOREIGN_PERIPHERAL);
		}else if(!q || q->state != CE_KNOWN){
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

/* Append text as a double-quoted array element (backslash-escaping '"' and '\'). */
static int arr_quoted(struct sbuf *sb, const char *s, size_t len)
{
	size_t i;

	if(sb_reserve(sb, 2 * len + 2)) return -1;
	sb->p[sb->len++] = '"';
	for(i = 0; i < len; i++){
		if(s[i] == '"' || s[i] == '\\') sb->p[sb->len++] = '\\';
		sb->p[sb->len++] = s[i];
	}
	sb->p[sb->len++] = '"';
	sb->p[sb->len] = '\0';
	return 0;
}

/* Append a quoted timestamptz element. A time kg_timefmt__pg cannot represent becomes text
 * the database refuses (SQLSTATE 22007), so that row ends up KG_PG_ROW_REJECTED. */
static int add_time(struct sbuf *sb, int64_t ms)
{
	char t[40];
	int len = kg_timefmt__pg(ms, t);

	if(len < 0) return arr_quoted(sb, "unrepresentable", strlen("unrepresentable"));
	return arr_quoted(sb, t, (size_t)len);
}

static int reset_arrays(struct rowset *rs)
{
	size_t i;

	rs->nraw = rs->nagg = 0;
	rs->last_kit = 0;
	for(i = 0; i < 7; i++) if(arr_start(&rs->raw[i])) return -1;
	for(i = 0; i < 8; i++) if(arr_start(&rs->agg[i])) return -1;
	return arr_start(&rs->kits);
}

static int finish_arrays(struct rowset *rs)
{
	size_t i;

	for(i = 0; i < 7; i++) if(arr_end(&rs->raw[i])) return -1;
	for(i = 0; i < 8; i++) if(arr_end(&rs->agg[i])) return -1;
	return arr_end(&rs->kits);
}

/* Append one accepted row (its peripheral is cached) to the arrays of its kind in rs, and its
 * kit to kits->kits. */
static int append_row(struct kg_pg *pg, struct rowset *rs, struct rowset *kits, const struct kg_record *rec)
{
	const struct centry *p = cache_find(&pg->periph, rec->peripheral);
	struct sbuf *a = rec->kind == KG_KIND_RAW ? rs->raw : rs->agg;
	char uuid[37], d[32];
	struct sbuf *js;
	int i;

	assert(p && p->state == CE_KNOWN);
	assert(rec->kind == KG_KIND_RAW || rec->kind == KG_KIND_AGGREGATE);
	for(i = 0; i < (rec->kind == KG_KIND_RAW ? 7 : 8); i++){
		if(arr_sep(&a[i])) return -1;
	}
	kg_uuid__format(rec->id, uuid);
	if(sb_add(&a[0], uuid, 36)
			|| sb_addi(&a[1], rec->peripheral)
			|| sb_addi(&a[2], p->kit_id)
			|| sb_addi(&a[3], p->cfg_id)
			|| sb_addi(&a[4], rec->quantity_type)){
		return -1;
	}
	if(rec->kind == KG_KIND_RAW){
		int len = kg_numfmt__double(rec->value, d);
		if(sb_add(&a[5], d, (size_t)len)) return -1;
		if(add_time(&a[6], rec->datetime_ms)) return -1;
		rs->nraw++;
	}else{
		if(add_time(&a[5], rec->start_ms) || add_time(&a[6], rec->end_ms)) return -1;
		/* The JSON object is built in pg->json, then quoted into a[7]. */
		js = &pg->json;
		js->len = 0;
		if(sb_addc(js, '{')) return -1;
		for(i = 0; i < rec->nvalues && i < KG_AGG_MAX; i++){
			size_t dl = (size_t)kg_numfmt__double(rec->values[i].value, d);
			if((i && sb_addc(js, ',')) || sb_addc(js, '"') || json_escape(js, rec->values[i].name)
					|| sb_add(js, "\":", 2) || sb_add(js, d, dl)){
				return -1;
			}
		}
		if(sb_addc(js, '}') || arr_quoted(&a[7], js->p, js->len)) return -1;
		rs->nagg++;
	}
	/* Skip a kit id equal to the previous one (batches are often one kit's run). */
	if(p->kit_id == kits->last_kit) return 0;
	kits->last_kit = p->kit_id;
	if(arr_sep(&kits->kits) || sb_addi(&kits->kits, p->kit_id)) return -1;
	return 0;
}

/* The 16 parameters of ST_BATCH from rs (finish_arrays ran): its rows when rows, its kits when
 * kits, empty arrays otherwise. */
static void batch_params(const struct rowset *rs, bool rows, bool kits, const char *params[16])
{
	int i;

	for(i = 0; i < 7; i++) params[i] = rows ? rs->raw[i].p : "{}";
	for(i = 0; i < 8; i++) params[7 + i] = rows ? rs->agg[i].p : "{}";
	params[15] = kits ? rs->kits.p : "{}";
}

/* Add the inserted-row count of an ST_BATCH result to *inserted. */
static void add_inserted(PGresult *res, uint64_t *inserted)
{
	if(PQntuples(res) == 1) *inserted += strtoull(PQgetvalue(res, 0, 0), NULL, 10);
}

/* Run ST_BATCH on conn[0] with rs[0]. Adds to *inserted the rows really inserted. */
static enum errkind run_batch(struct kg_pg *pg, bool rows, bool kits, uint64_t *inserted)
{
	const char *params[16];
	PGresult *res = NULL;
	enum errkind k;

	batch_params(&pg->rs[0], rows, kits, params);
	k = run_stmt(pg, ST_BATCH, params, PGRES_TUPLES_OK, &res);
	if(k != ERR_NONE) return k;
	add_inserted(res, inserted);
	PQclear(res);
	return ERR_NONE;
}

/* Send sql (no parameters; ST_BATCH when params) on both connections, then wait for both.
 * The server works on the two at the same time. Returns the worse outcome; *inserted gets the
 * ST_BATCH counts. */
static enum errkind run_both(struct kg_pg *pg, const char *sql, const char *params[2][16],
		uint64_t *inserted)
{
	ExecStatusType ok = params ? PGRES_TUPLES_OK : PGRES_COMMAND_OK;
	enum errkind worst = ERR_NONE;
	int h, sent[2] = {0, 0};

	for(h = 0; h < 2; h++){
		sent[h] = params
			? PQsendQueryPrepared(pg->conn[h], stmt_name[ST_BATCH], stmt_nparams[ST_BATCH], params[h],
					NULL, NULL, 0)
			: PQsendQuery(pg->conn[h], sql);
		if(!sent[h]){
			log_server(pg, "cannot send", PQerrorMessage(pg->conn[h]));
			worst = ERR_FATAL;
		}
	}
	for(h = 0; h < 2; h++){
		PGresult *first = NULL, *r;
		enum errkind k;

		if(!sent[h]) continue;
		while((r = PQgetResult(pg->conn[h]))){
			if(first){
				PQclear(r);
			}else{
				first = r;
			}
		}
		k = classify(pg, pg->conn[h], first, ok, params ? stmt_name[ST_BATCH] : sql);
		if(k == ERR_NONE && params) add_inserted(first, inserted);
		PQclear(first);
		if(k > worst) worst = k;
	}
	return worst;
}

/* A big batch on two connections: rows split by id (so that duplicates of one id meet in one
 * transaction and never wait on the other), kit_last_seen only on conn[0] (so that the two
 * never wait on each other's row locks), both transactions committed once both inserts worked.
 * A data error rolls both back. Only a connection lost between the two COMMITs can leave half
 * a batch committed, which the retry then finds as duplicates. */
static enum errkind write_split(struct kg_pg *pg, uint64_t *inserted)
{
	const char *params[2][16];
	enum errkind k;

	batch_params(&pg->rs[0], true, true, params[0]);
	batch_params(&pg->rs[1], true, false, params[1]);
	if((k = run_both(pg, "BEGIN", NULL, NULL)) != ERR_NONE) return ERR_FATAL;
	k = run_both(pg, NULL, params, inserted);
	if(k == ERR_FATAL) return k;
	if(k == ERR_DATA){
		*inserted = 0;
		return run_both(pg, "ROLLBACK", NULL, NULL) == ERR_NONE ? ERR_DATA : ERR_FATAL;
	}
	return run_both(pg, "COMMIT", NULL, NULL) == ERR_NONE ? ERR_NONE : ERR_FATAL;
}

/* The fast path: every OK row and the kit_last_seen upsert in one statement (one implicit
 * transaction), or in two in parallel for big batches. */
static enum errkind write_bulk(struct kg_pg *pg, const struct kg_record *recs, size_t n,
		const uint8_t *status, uint64_t *inserted, uint64_t *accepted)
{
	size_t i, nok = 0;
	bool split;

	*inserted = *accepted = 0;
	for(i = 0; i < n; i++) nok += status[i] == KG_PG_ROW_OK;
	if(!nok) return ERR_NONE;
	split = nok >= SPLIT_MIN_ROWS && ensure_second(pg);
	if(reset_arrays(&pg->rs[0]) || reset_arrays(&pg->rs[1])) return ERR_FATAL;
	for(i = 0; i < n; i++){
		const uint8_t *id = recs[i].id;
		int h = split ? (id[0] ^ id[7] ^ id[15]) & 1 : 0;

		if(status[i] != KG_PG_ROW_OK) continue;
		if(append_row(pg, &pg->rs[h], &pg->rs[0], &recs[i])) return ERR_FATAL;
	}
	if(finish_arrays(&pg->rs[0]) || finish_arrays(&pg->rs[1])) return ERR_FATAL;
	*accepted = nok;
	return split ? write_split(pg, inserted) : run_batch(pg, true, true, inserted);
}

/* The slow path after a data error, on conn[0]: one transaction, a savepoint per row; rows the
 * database still refuses become KG_PG_ROW_REJECTED. */
static enum errkind write_rows(struct kg_pg *pg, const struct kg_record *recs, size_t n,
		uint8_t *status, uint64_t *inserted, uint64_t *accepted)
{
	struct rowset *rs = &pg->rs[0];
	enum errkind k;
	size_t i;

	*inserted = *accepted = 0;
	if(run(pg, "BEGIN") != ERR_NONE) return ERR_FATAL;
	for(i = 0; i < n; i++){
		uint64_t ins = 0;

		if(status[i] != KG_PG_ROW_OK) continue;
		if(reset_arrays(rs) || append_row(pg, rs, rs, &recs[i]) || finish_arrays(rs)) return ERR_FATAL;
		if(run(pg, "SAVEPOINT kg_row") != ERR_NONE) return ERR_FATAL;
		k = run_batch(pg, true, false, &ins);
		if(k == ERR_FATAL) return k;
		if(k == ERR_DATA){
			if(run(pg, "ROLLBACK TO SAVEPOINT kg_row") != ERR_NONE) return ERR_FATAL;
			reject_row(pg, &recs[i], &status[i], KG_PG_ROW_REJECTED);
			continue;
		}
		if(run(pg, "RELEASE SAVEPOINT kg_row") != ERR_NONE) return ERR_FATAL;
		*inserted += ins;
		(*accepted)++;
	}
	/* kit_last_seen for the kits of the rows that went in (a kit deleted meanwhile is skipped). */
	if(*accepted){
		if(reset_arrays(rs)) return ERR_FATAL;
		for(i = 0; i < n; i++){
			if(status[i] == KG_PG_ROW_OK && append_row(pg, rs, rs, &recs[i])) return ERR_FATAL;
		}
		if(finish_arrays(rs)) return ERR_FATAL;
		if(run(pg, "SAVEPOINT kg_seen") != ERR_NONE) return ERR_FATAL;
		k = run_batch(pg, false, true, &(uint64_t){0});
		if(k == ERR_FATAL) return k;
		if(k == ERR_DATA && run(pg, "ROLLBACK TO SAVEPOINT kg_seen") != ERR_NONE) return ERR_FATAL;
	}
	return run(pg, "COMMIT") == ERR_NONE ? ERR_NONE : ERR_FATAL;
}

/* Give up on this attempt: nothing was committed, the connection is reset. */
static int fail(struct kg_pg *pg)
{
	pg->st.errors++;
	drop_connection(pg);
	return -1;
}

int kg_pg__write(struct kg_pg *pg, const struct kg_record *recs, size_t n, uint8_t *status)
{
	uint64_t inserted = 0, accepted = 0;
	uint64_t rejected_before[KG_PG_ROW_COUNT];
	enum errkind k;
	size_t i;

	assert(pg && (recs || !n) && (status || !n));
	if(!n) return 0;
	if(ensure_connected(pg)) return -1;
	memcpy(rejected_before, pg->st.rows_rejected, sizeof(rejected_before));
	for(i = 0; i < n; i++){
		status[i] = KG_PG_ROW_OK;
		if(recs[i].kind != KG_KIND_RAW && recs[i].kind != KG_KIND_AGGREGATE){
			snprintf(pg->data_error, sizeof(pg->data_error), "not a measurement (kind %u)",
					(unsigned)recs[i].kind);
			reject_row(pg, &recs[i], &status[i], KG_PG_ROW_REJECTED);
		}
	}
	if(resolve(pg, recs, n, status)) goto failed;
	check_rows(pg, recs, n, status);

	k = write_bulk(pg, recs, n, status, &inserted, &accepted);
	if(k == ERR_DATA){
		/* Stale cache (a peripheral deleted or moved) or a row the database refuses; nothing
		 * of the batch is committed. */
		cache_clear(&pg->periph);
		cache_clear(&pg->qtypes);
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
	 * retry counts them again. */
	memcpy(pg->st.rows_rejected, rejected_before, sizeof(rejected_before));
	return fail(pg);
}
