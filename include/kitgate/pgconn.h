/* pgconn.h -- how kitgate opens a PostgreSQL connection (the writer's and the kits snapshot
 * loader's: one keyword list, not two), and a cancel slot so another thread can interrupt the
 * statement a connection is blocked in (shutdown).
 *
 * Defaults, each overridden by the same setting in the URI (the URI is expanded after them):
 *   connect_timeout (the caller's), keepalives_idle 30 / interval 10 / count 3, tcp_user_timeout
 *   60000 ms (a dead peer or network is noticed in about a minute, not hours), and
 *   options "-c statement_timeout=30000 -c lock_timeout=10000" (a statement stuck on a lock or a
 *   slow server ends). The URI's own `options` (or else $PGOPTIONS) are appended to ours, not
 *   swapped for them, so a URI may add settings or override these two (a later -c wins). */
#ifndef KITGATE_PGCONN_H
#define KITGATE_PGCONN_H

#include <pthread.h>
#include <stdbool.h>

#include <libpq-fe.h>

/* The options value kg_pgconn__connect sends: ours, then a space and conninfo's `options` (or,
 * when it has none, $PGOPTIONS) if any. conninfo may be NULL, a URI or key=value; one libpq cannot
 * parse just gets ours (connecting then reports the error). Returns a malloc'ed string the caller
 * frees, NULL when out of memory. Any thread. */
char *kg_pgconn__options(const char *conninfo);

/* PQconnectdbParams with the defaults above. Returns what libpq returns (NULL only when out of
 * memory): the caller checks PQstatus and PQfinish'es it either way. Blocks up to
 * connect_timeout_s per host. Any thread; never logs (the URI may hold a password). */
PGconn *kg_pgconn__connect(const char *conninfo, const char *application_name, int connect_timeout_s);

/* A cancel slot: the thread owning a connection publishes it (set) after connecting and
 * withdraws it (set NULL) before PQfinish; any other thread may fire it. Once fired it stays
 * fired: fired() tells the owner to stop connecting and writing. */
struct kg_pgconn_cancel {
	pthread_mutex_t lock;
	PGcancel *cancel;         /* [lock] */
	bool fired;               /* [lock] */
};

void kg_pgconn__cancel_init(struct kg_pgconn_cancel *c);
void kg_pgconn__cancel_destroy(struct kg_pgconn_cancel *c);
/* Owner thread: publish conn's cancel handle (NULL: withdraw it). */
void kg_pgconn__cancel_set(struct kg_pgconn_cancel *c, PGconn *conn);
/* Any thread: mark fired and send a cancel request for the statement in flight, if any (PQcancel:
 * a short extra connection to the server; a no-op when the connection is idle). */
void kg_pgconn__cancel_fire(struct kg_pgconn_cancel *c);
bool kg_pgconn__cancel_fired(struct kg_pgconn_cancel *c);

#endif
