/* kitgate_internal.h -- the plugin's private state, shared by its modules (one instance per plugin
 * load, passed as the callbacks' userdata).
 *
 * Thread rules (see HACKING.md): fields marked [broker] are touched only by the broker thread;
 * [worker] only by the worker; [atomic] are written by one thread and read by the other with
 * relaxed atomics (they are statistics, nothing is decided from them across threads). */
#ifndef KITGATE_INTERNAL_H
#define KITGATE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "kitgate/config.h"
#include "kitgate/handoff.h"
#include "kitgate/log.h"
#include "kitgate/ratelimit.h"
#include "kitgate/pgwriter.h"
#include "kitgate/snapshot.h"
#include "kitgate/validate.h"

struct kg_spool;

struct kg_counters {
	/* [broker] */
	uint64_t accepted;
	uint64_t rejected[KG_REASON_COUNT];
	uint64_t broker_ns, broker_msgs;
	uint64_t bridge_forwarded, bridge_refused;
	/* [atomic] written by the worker */
	_Atomic uint64_t settled;          /* records the sink is done with (written, duplicate, rejected) */
	_Atomic uint64_t inserted, duplicates;
	_Atomic uint64_t sink_rejected[KG_PG_ROW_COUNT];
	_Atomic uint64_t sink_errors, reconnects;
	_Atomic uint64_t delivered, delivery_failures;
	_Atomic uint64_t corrupt_records;  /* spooled bytes that no longer decode */
	_Atomic int sink_connected;
	_Atomic uint64_t bridge_refused_worker; /* bridged topics whose Kafka name is refused */
};

/* auth postgres (auth.c); all NULL/0 with auth none. */
struct kg_auth {
	struct kg_snapshot_loader *loader;
	struct kg_snapshot *snap;      /* [broker] current snapshot; NULL until the first load (fail closed) */
	uint64_t gen;                  /* [broker] generation of snap */
	struct kg_logincache *logins;  /* [broker] */
	struct kg_ratelimit wrong_log, hash_log, wait_log;                     /* [broker] */
	uint64_t ok, cached, refused, kicked, pbkdf2_runs, pbkdf2_ns;          /* [broker] */
};

struct kg_plugin {
	void *pid;                     /* mosquitto_plugin_id_t * */
	struct kg_config cfg;          /* read-only after init: both threads read it */
	struct kg_limits limits;
	struct kg_spool *spool;        /* NULL when disabled or unusable */
	struct kg_handoff handoff;
	bool handing_off;              /* anything is ever pushed (sink != none or bridge routes) */
	pthread_t worker;
	bool worker_started;
	struct kg_counters counters;
	struct kg_ratelimit reject_log[KG_REASON_COUNT]; /* [broker] */
	struct kg_ratelimit bridge_log;                  /* [broker] */
	struct kg_ratelimit auth_log;                    /* [broker] */
	time_t next_status;            /* [broker] */
	pthread_t main_thread;
	struct kg_auth auth;
};

/* worker.c: start the worker thread with all signals blocked. Main thread, at init. 0 or -1. */
int kg_worker__start(struct kg_plugin *p);
/* worker.c: ask the worker to drain (within cfg.shutdown_timeout_ms), spool the rest, and join it.
 * Main thread, at cleanup. */
void kg_worker__stop(struct kg_plugin *p);


/* ---- broker thread only (plugin.c, acl.c, message.c, status.c, outbox.c) ------------------- */

/* outbox.c: install the plugin's log sink (broker-thread lines go straight to mosquitto's log,
 * other threads' lines wait in a bounded locked outbox). Main thread, at init. 0 or -1. */
int kg_outbox__init(int min_level);
/* outbox.c: emit queued worker lines; all = no per-tick bound. Main thread (TICK, cleanup). */
void kg_outbox__drain(int all);
/* outbox.c: drain everything and restore the stderr sink. Main thread, after the worker joined. */
void kg_outbox__cleanup(void);

/* acl.c: MOSQ_EVT_ACL_CHECK and MOSQ_EVT_BASIC_AUTH. */
int kg_acl__on_check(int event, void *event_data, void *userdata);
int kg_acl__on_basic_auth(int event, void *event_data, void *userdata);
/* message.c: MOSQ_EVT_MESSAGE. */
int kg_message__on_message(int event, void *event_data, void *userdata);
/* auth.c: auth postgres. init starts the snapshot loader (0, or -1 out of memory); tick swaps in a
 * new snapshot and disconnects changed/deleted kits; basic_auth decides a kit's login (DEFER for
 * everyone who is not a kit); cleanup joins the loader. Main thread. */
int kg_auth__init(struct kg_plugin *p);
void kg_auth__tick(struct kg_plugin *p);
struct mosquitto_evt_basic_auth;
int kg_auth__basic_auth(struct kg_plugin *p, struct mosquitto_evt_basic_auth *ed);
void kg_auth__cleanup(struct kg_plugin *p);
/* status.c: publish $SYS/broker/kitgate/status when due. Main thread (TICK). */
void kg_status__tick(struct kg_plugin *p);

#endif
