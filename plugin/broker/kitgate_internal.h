/* kitgate_internal.h -- the plugin's private state, shared by its modules (one instance per plugin
 * load, passed as the callbacks' userdata).
 *
 * Only the broker-only files (the .c files of plugin/broker/) include it; the core
 * library (worker, sinks, hand-off, spool...) never sees struct kg_plugin.
 *
 * Thread rules (see HACKING.md): fields marked [broker] are touched only by the broker thread;
 * the streams' objects carry their own rules (handoff.h, worker.h, spool.h). */
#ifndef KITGATE_INTERNAL_H
#define KITGATE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "kitgate/clock.h"
#include "kitgate/authbudget.h"
#include "kitgate/authpool.h"
#include "kitgate/brokerinfo.h"
#include "kitgate/config.h"
#include "kitgate/ingest.h"
#include "kitgate/log.h"
#include "kitgate/pbkdf2.h"
#include "kitgate/ratelimit.h"
#include "kitgate/snapshot.h"
#include "kitgate/validate.h"

struct kg_spool;
struct kg_handoff;
struct kg_events;
struct kg_events_session;
struct kg_events_client;
struct kg_worker;

/* The two independent streams (worker.h): each has its own spool directory, hand-off, worker
 * thread and sink. A stream that is not configured has all three NULL. */
enum kg_stream_id { KG_STREAM_MEASUREMENTS = 0, KG_STREAM_BRIDGE, KG_STREAM_COUNT };

struct kg_stream {
	const char *name;              /* "measurements", "bridge": also the spool subdirectory */
	struct kg_spool *spool;        /* NULL: memory only (spool_dir off) or stream off */
	struct kg_handoff *h;          /* NULL: stream off */
	struct kg_worker *worker;      /* owns the stream's sink */
};

/* [broker] counters of the MESSAGE path; the workers keep their own (kg_worker__stats). */
struct kg_counters {
	uint64_t accepted;
	uint64_t rejected[KG_REASON_COUNT];
	uint64_t spool_unavailable;    /* QoS 0 messages dropped because the spool append failed */
	uint64_t unacked;              /* QoS 1/2 messages refused (client disconnected) for that */
	uint64_t broker_ns, broker_msgs;
	uint64_t bridge_forwarded, bridge_refused;
	uint64_t wills_accepted;       /* valid wills on measurement topics handed to the stream */
	uint64_t wills_unsaved;        /* valid wills delivered whose hand-off failed (not in the sink) */
	uint64_t clientid_refused;     /* CONNECTs refused: client id owned by another username */
};

/* auth postgres (auth.c); all NULL/0 with auth none. */
struct kg_auth {
	struct kg_snapshot_loader *loader;
	struct kg_snapshot *snap;      /* [broker] current snapshot; NULL until the first load (fail closed) */
	uint64_t gen;                  /* [broker] generation of snap */
	struct kg_logincache *logins;  /* [broker] */
	struct kg_ratelimit wrong_log, hash_log, wait_log;                     /* [broker] */
	uint64_t ok, cached, refused, kicked, pbkdf2_runs, pbkdf2_ns;          /* [broker] */
	struct kg_backoff *backoff;    /* [broker] failure windows per (serial, source address) (backoff.h) */
	struct kg_backoff *suspects;   /* [broker] per-serial failure record: the budget's class */
	struct kg_ratelimit backoff_log;                                       /* [broker] */
	uint64_t backoff_refused;      /* [broker] refused in a window without running PBKDF2 */
	struct kg_authbudget budget;   /* [broker] broker-thread time for cold logins (authbudget.h) */
	struct kg_ratelimit budget_log;                                        /* [broker] */
	uint64_t budget_refused;       /* [broker] cold logins refused unchecked: budget spent */
	struct kg_ratelimit nopw_log;                                          /* [broker] */
	uint64_t no_password;          /* [broker] kit CONNECTs without (or with an empty) password */
	struct kg_pbkdf2 dummy;        /* read-only after init: the hash unknown serials are checked against */
	/* delayed logins (mosquitto 2.1): PBKDF2 on auth_threads workers (authpool.h), completed in
	 * TICK with mosquitto_complete_basic_auth; pool NULL on 2.0 (broker-thread path above). */
	struct kg_authpool *pool;
	void (*complete)(const char *client_id, int result);   /* dlsym'ed; NULL on 2.0 */
	int threads;
	uint64_t delayed, slots_refused, busy_refused, stale, changed;         /* [broker] */
	struct kg_ratelimit slots_log;                                         /* [broker] */
	uint64_t unknown_passed;       /* [broker] measurements whose peripheral or quantity type the
	                                * snapshot did not know: passed to the sink (kg_message__check) */
};

struct kg_plugin {
	void *pid;                     /* mosquitto_plugin_id_t * */
	struct kg_config cfg;          /* read-only after init: every thread reads it */
	struct kg_ingest ingest;       /* read-only after init */
	struct kg_stream streams[KG_STREAM_COUNT];
	struct kg_counters counters;   /* [broker] */
	struct kg_ratelimit reject_log[KG_REASON_COUNT]; /* [broker] */
	struct kg_ratelimit bridge_log;                  /* [broker] */
	struct kg_ratelimit durable_log;                 /* [broker] */
	struct kg_ratelimit auth_log;                    /* [broker] */
	struct kg_every status_every;  /* [broker] $SYS status cadence, monotonic (clock.h) */
	pthread_t main_thread;
	struct kg_brokerinfo broker;   /* read-only after init: the running mosquitto (brokerinfo.c) */
	struct kg_live *live;          /* [broker] live.c: statistics, kit status, HTTP view */
	struct kg_auth auth;
	struct kg_ingest_memo memo;    /* [broker] the last allowed measurement write (acl.c, message.c) */
	struct kg_events *events;      /* [broker] what the event sequence means: wills, client-id
	                                * owners, kits online/offline (events.h; fed by acl.c) */
	struct kg_ratelimit clientid_log; /* [broker] */
	struct kg_ratelimit will_log;  /* [broker] */
	int quota_rc;                  /* what a rate-limited publish gets: MOSQ_ERR_QUOTA_EXCEEDED on
	                                * 2.1 (v5 0x97), MOSQ_ERR_ACL_DENIED on 2.0 (0x87); set at init */
};

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
/* acl.c: init (0, or -1 out of memory) and cleanup (pushes a pending will first) of the events
 * module (p->events); tick and DISCONNECT (also CLIENT_OFFLINE on 2.1) feed it their event. */
int kg_acl__init(struct kg_plugin *p);
void kg_acl__cleanup(struct kg_plugin *p);
void kg_acl__tick(struct kg_plugin *p);
int kg_acl__on_disconnect(int event, void *event_data, void *userdata);
/* acl.c: MOSQ_EVT_CONNECT (2.1): a login succeeded: its client id's owner is recorded, a kit goes
 * online (events.h decides, live.c acts). */
int kg_acl__on_connect(int event, void *event_data, void *userdata);
/* message.c: MOSQ_EVT_MESSAGE. */
int kg_message__on_message(int event, void *event_data, void *userdata);
/* message.c: the ACL WRITE half of a measurement (publish or will), after the access matrix
 * allowed it: validate into p->memo; MOSQ_ERR_SUCCESS or MOSQ_ERR_ACL_DENIED (counted, logged). */
struct mosquitto_evt_acl_check;
int kg_message__on_write(struct kg_plugin *p, struct mosquitto_evt_acl_check *ed);
/* message.c: the events module's will() decision: the write validated into p->memo had no MESSAGE,
 * so it was a will: push its record now. No-op when the memo is empty. */
void kg_message__will(struct kg_plugin *p);
/* message.c: kg_ingest's check hook (ud = the plugin): the kits snapshot's rules with auth postgres. */
enum kg_reason kg_message__check(void *ud, const char *serial, size_t serial_len,
		const struct kg_record *rec, const char **detail);
/* auth.c: auth postgres. init starts the snapshot loader and, on mosquitto 2.1, the auth threads
 * (0, -1 out of memory, -2 an option this broker cannot honour: auth_threads on 2.0, logged); tick swaps in a
 * new snapshot and disconnects changed/deleted kits; basic_auth decides a kit's login (DEFER for
 * everyone who is not a kit); cleanup joins the loader. Main thread. */
int kg_auth__init(struct kg_plugin *p);
void kg_auth__tick(struct kg_plugin *p);
/* auth.c: milliseconds until auth needs the next TICK (delayed logins pending: a few ms), 0 for no
 * wish. For the tick callback's next_s/next_ms (2.1). Main thread. */
long kg_auth__tick_wish_ms(struct kg_plugin *p);
struct mosquitto_evt_basic_auth;
int kg_auth__basic_auth(struct kg_plugin *p, struct mosquitto_evt_basic_auth *ed);
void kg_auth__cleanup(struct kg_plugin *p);
/* status.c: publish $SYS/broker/kitgate/status when due. Main thread (TICK). */
void kg_status__tick(struct kg_plugin *p);
struct kg_stream_status;
/* One stream's numbers for the status model (statusmodel.h): hand-off depth, spool and worker
 * counters (copies), the sink's kind and what was handed to it. Broker thread. */
void kg_status__gather(struct kg_plugin *p, enum kg_stream_id id, struct kg_stream_status *out);
struct kg_broker_status;
/* Every number of the status model (statusmodel.h), both streams' included: the one place the
 * status outputs ($SYS, the HTTP API, /metrics) take their numbers from. Broker thread. */
void kg_status__gather_broker(struct kg_plugin *p, struct kg_broker_status *out);
/* live.c: the live view's numbers of the status model (kits, statistics, HTTP); nothing without
 * the live view. Broker thread. */
void kg_live__status(struct kg_plugin *p, struct kg_broker_status *out);
struct kg_kitdir;
struct kg_kit;
struct kg_stats_view;
/* livepub.c: the live view's MQTT publishing (statistics, kit status; the HTTP kit directory kept
 * in step). The callbacks take a struct kg_livepub as their arg. Broker thread. */
struct kg_livepub {
	struct kg_kitdir *dir;       /* the HTTP kit directory (live.c owns it), or NULL */
	uint64_t status_cleared;     /* retained kit statuses cleared because their kit was evicted */
	int64_t now;                 /* kg_clock__mono_ms() of this TICK: the view and status cadences */
};
void kg_livepub__stats(const struct kg_stats_view *v, void *pub);     /* kg_stats__flush_at's */
void kg_livepub__clear_stats(const char *key, void *pub);             /* kg_stats__drain_evicted's */
void kg_livepub__kit_evicted(struct kg_kit *kit, void *pub);          /* kg_kits__on_evict's */
/* kg_kits__visit_due's: one changed kit's HTTP entry (at most once a second) and retained
 * status; 0 when done, else when it is due again (mono ms). */
int64_t kg_livepub__visit_kit(struct kg_kit *kit, void *pub);
struct kg_view;
/* livetest.c: runs the test measurements queued on view by the HTTP threads and answers them;
 * *accepted counts the accepted ones. Broker thread (TICK). */
void kg_livetest__run(struct kg_plugin *p, struct kg_view *view, uint64_t *accepted);

/* live.c: statistics, per-kit status and the HTTP view. init: 0 or -1 (out of memory). measurement: once per kit measurement, accepted (r == KG_OK, rec filled)
 * or not; client may be NULL. other: once per publish on a non-kit topic. Main thread only. */
int kg_live__init(struct kg_plugin *p);
void kg_live__cleanup(struct kg_plugin *p);
void kg_live__tick(struct kg_plugin *p);
void kg_live__measurement(struct kg_plugin *p, const void *client, const char *serial, size_t slen,
		const char *topic, enum kg_reason r, const char *detail, const struct kg_record *rec);
void kg_live__other(struct kg_plugin *p, const char *topic, const void *payload, size_t len);
/* live.c: the events module's online()/offline() decisions: open the kit session s (when its
 * serial is a kit), close the session of the client c that went away (when it is a kit's). And
 * whether username may be a kit (a valid serial of the kits snapshot, not a service user), for the
 * events module's kg_events_client.kit. Main thread. */
void kg_live__session_online(struct kg_plugin *p, const struct kg_events_session *s);
void kg_live__session_offline(struct kg_plugin *p, const struct kg_events_client *c);
bool kg_live__is_kit_user(struct kg_plugin *p, const char *username);
/* live.c: the kit table's entry of serial (created if needed; NULL when out of memory): where the
 * per-kit rate limit's bucket lives (kits.h). Main thread. */
struct kg_kit *kg_live__kit(struct kg_plugin *p, const char *serial, size_t slen);

#endif
