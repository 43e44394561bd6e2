/* pgconn.c -- PostgreSQL connection defaults and the cross-thread cancel slot (see pgconn.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kitgate/pgconn.h"

#define KG_PGCONN_OPTIONS "-c statement_timeout=30000 -c lock_timeout=10000"

/* Contract in pgconn.h. */
char *kg_pgconn__options(const char *conninfo)
{
	PQconninfoOption *opts = NULL, *o;
	const char *theirs = NULL;
	char *out;
	size_t n;

	if(conninfo && *conninfo) opts = PQconninfoParse(conninfo, NULL);
	for(o = opts; o && o->keyword; o++){
		if(!strcmp(o->keyword, "options") && o->val && *o->val){
			theirs = o->val;
			break;
		}
	}
	if(!theirs) theirs = getenv("PGOPTIONS"); /* libpq's own default, which an explicit value hides */
	n = strlen(KG_PGCONN_OPTIONS) + (theirs && *theirs ? 1 + strlen(theirs) : 0) + 1;
	out = malloc(n);
	if(out){
		if(theirs && *theirs) snprintf(out, n, "%s %s", KG_PGCONN_OPTIONS, theirs);
		else memcpy(out, KG_PGCONN_OPTIONS, sizeof(KG_PGCONN_OPTIONS));
	}
	if(opts) PQconninfoFree(opts);
	return out;
}

/* Contract in pgconn.h. Keywords before "dbname" are defaults the expanded URI overrides
 * (libpq: later keywords win, and the URI in dbname is expanded in place); "options" comes after
 * it, so the merged value (ours, then the URI's) is the one used. */
PGconn *kg_pgconn__connect(const char *conninfo, const char *application_name, int connect_timeout_s)
{
	static const char *const keys[] = {"application_name", "connect_timeout", "keepalives",
		"keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout", "dbname",
		"options", NULL};
	char timeout[16], *options = kg_pgconn__options(conninfo);
	const char *vals[10];
	PGconn *c;

	snprintf(timeout, sizeof(timeout), "%d", connect_timeout_s > 0 ? connect_timeout_s : 10);
	vals[0] = application_name;
	vals[1] = timeout;
	vals[2] = "1";
	vals[3] = "30";
	vals[4] = "10";
	vals[5] = "3";
	vals[6] = "60000";
	vals[7] = conninfo ? conninfo : "";
	vals[8] = options ? options : KG_PGCONN_OPTIONS;
	vals[9] = NULL;
	c = PQconnectdbParams(keys, vals, 1);
	free(options);
	return c;
}

void kg_pgconn__cancel_init(struct kg_pgconn_cancel *c)
{
	pthread_mutex_init(&c->lock, NULL);
	c->cancel = NULL;
	c->fired = false;
}

void kg_pgconn__cancel_destroy(struct kg_pgconn_cancel *c)
{
	if(c->cancel) PQfreeCancel(c->cancel);
	c->cancel = NULL;
	pthread_mutex_destroy(&c->lock);
}

void kg_pgconn__cancel_set(struct kg_pgconn_cancel *c, PGconn *conn)
{
	PGcancel *fresh = conn ? PQgetCancel(conn) : NULL, *old;

	pthread_mutex_lock(&c->lock);
	old = c->cancel;
	c->cancel = fresh;
	pthread_mutex_unlock(&c->lock);
	if(old) PQfreeCancel(old);
}

void kg_pgconn__cancel_fire(struct kg_pgconn_cancel *c)
{
	char err[256];

	pthread_mutex_lock(&c->lock);
	c->fired = true;
	/* Under the lock, so the owner cannot free the handle meanwhile. PQcancel is thread-safe. */
	if(c->cancel) (void)PQcancel(c->cancel, err, (int)sizeof(err));
	pthread_mutex_unlock(&c->lock);
}

bool kg_pgconn__cancel_fired(struct kg_pgconn_cancel *c)
{
	bool fired;

	pthread_mutex_lock(&c->lock);
	fired = c->fired;
	pthread_mutex_unlock(&c->lock);
	return fired;
}
