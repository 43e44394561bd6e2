/* pgwriter.h -- writes validated measurements into the AstroPlant schema; shared by the plugin's
 * worker and kitgate-kafka-connector.
 *
 * One kg_pg is one PostgreSQL connection. Threads: a kg_pg belongs to one thread (the one that
 * calls kg_pg__write); a sink that wants N connections runs N kg_pg, each on its own thread, with
 * its own batches and commits. Any number of kg_pg may write the same database at once: they
 * never deadlock on each other (every batch locks rows in one global order) and kit_last_seen
 * never moves backwards. It never calls mosquitto_*; it logs with kg_log. */
#ifndef KITGATE_PGWRITER_H
#define KITGATE_PGWRITER_H

#include <stddef.h>
#include <stdint.h>
#include "kitgate/record.h"

struct kg_pg;

/* Why a single row was not written. */
enum kg_pg_row {
	KG_PG_ROW_OK = 0,                /* inserted, or already present (same id) */
	KG_PG_ROW_UNKNOWN_PERIPHERAL,    /* "unknown_peripheral" */
	KG_PG_ROW_FOREIGN_PERIPHERAL,    /* "foreign_peripheral": belongs to another kit */
	KG_PG_ROW_UNKNOWN_QUANTITY_TYPE, /* "unknown_quantity_type" */
	KG_PG_ROW_REJECTED,              /* "db_rejected": the database refused this one row */
	KG_PG_ROW_COUNT
};
const char *kg_pg__row_name(enum kg_pg_row r);

struct kg_pg_stats {
	uint64_t batches, rows_inserted, rows_duplicate, rows_rejected[KG_PG_ROW_COUNT];
	uint64_t reconnects, errors;
	int connected;
};

/* Create a writer for a libpq URI. Does not connect (connects lazily in kg_pg__write), so it
 * never fails because the server is down. Returns NULL only on out-of-memory. */
struct kg_pg *kg_pg__new(const char *conninfo);

/* Write the n RAW/AGGREGATE records recs[0..n) point to in one transaction (a record may be
 * stored sized to its data, kg_record__used: only its used bytes are read): resolves each peripheral to its kit and
 * configuration (cached), rejects rows whose peripheral is unknown or belongs to another kit or
 * whose quantity type is unknown (status[i] says which), inserts the rest with
 * ON CONFLICT (id) DO NOTHING, upserts kit_last_seen (GREATEST of old and now()), commits.
 * A row the database refuses is KG_PG_ROW_REJECTED and the rest of the batch still lands.
 * Returns 0 when the batch is settled (every row written, duplicate or rejected: status[] says),
 * or -1 on a connection or server error: nothing is committed, the connection is reset, and the
 * caller retries the same batch later (with backoff). status must hold n entries.
 * Owning thread. */
int kg_pg__write_ptrs(struct kg_pg *pg, const struct kg_record *const *recs, size_t n, uint8_t *status);

/* kg_pg__write_ptrs over an array of n records (the tools and tests). -1 also on out of memory. */
int kg_pg__write(struct kg_pg *pg, const struct kg_record *recs, size_t n, uint8_t *status);

/* Counters since creation. Owning thread. */
void kg_pg__stats(const struct kg_pg *pg, struct kg_pg_stats *st);

/* Whether the last attempt left a working connection. */
int kg_pg__connected(const struct kg_pg *pg);

/* Any thread (shutdown): interrupt the statement pg's owner is blocked in (PQcancel) and make
 * every later kg_pg__write fail at once without connecting. The owner's write then returns -1.
 * pg stays valid: free it after joining its owner. */
void kg_pg__cancel(struct kg_pg *pg);

void kg_pg__free(struct kg_pg *pg);

#endif
