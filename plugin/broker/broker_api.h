/* broker_api.h -- the one place the plugin's broker-facing files include mosquitto's plugin API
 * from, so one source tree builds warning-free against 2.0.x and 2.1.x headers.
 *
 * - 2.1 headers (CMake defines KG_MOSQ_HEADERS_21 when MOSQUITTO_INCLUDE_DIR has
 *   mosquitto/broker.h): <mosquitto.h> brings mosquitto/broker.h, mosquitto/broker_plugin.h and
 *   mosquitto/defs.h; the 2.0 names <mosquitto_broker.h>/<mosquitto_plugin.h> still exist there
 *   but `#warning`, which -DKITGATE_WERROR=ON turns into errors.
 * - 2.0 headers: <mosquitto_broker.h> before <mosquitto_plugin.h> (the latter needs the former's
 *   types), then <mosquitto.h>.
 *
 * Run-time facts do not come from here: a plugin built against 2.0 headers runs in a 2.1 broker
 * (the Debian package does); what the running broker offers is found at init (brokerinfo.c). */
#ifndef KITGATE_BROKER_API_H
#define KITGATE_BROKER_API_H

#include <stddef.h>

#ifdef KG_MOSQ_HEADERS_21
#include <mosquitto.h>
#else
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mosquitto.h>
#endif

/* 2.1 renamed the incoming-message event; both names are 7 in 2.1 (MOSQ_EVT_MESSAGE is kept as
 * "deprecated name"), 2.0 has only MOSQ_EVT_MESSAGE. */
#ifndef KG_MOSQ_HEADERS_21
#define MOSQ_EVT_MESSAGE_IN MOSQ_EVT_MESSAGE
#endif

/* 2.1 fires MOSQ_EVT_CLIENT_OFFLINE (28) instead of MOSQ_EVT_DISCONNECT when a client whose
 * session outlives the connection (v3 clean_session false, v5 session expiry > 0) goes offline;
 * 2.0 fires DISCONNECT for every client (src/context.c context__disconnect, 2.1.2). Both events
 * carry {void *future; struct mosquitto *client; int reason; ...}, so a DISCONNECT callback also
 * serves CLIENT_OFFLINE. Register it only where the broker has it (kg_brokerinfo.api21): 2.0
 * refuses an unknown event. */
#ifdef KG_MOSQ_HEADERS_21
#define KG_MOSQ_EVT_CLIENT_OFFLINE MOSQ_EVT_CLIENT_OFFLINE
_Static_assert(MOSQ_EVT_CLIENT_OFFLINE == 28, "MOSQ_EVT_CLIENT_OFFLINE moved");
#else
#define KG_MOSQ_EVT_CLIENT_OFFLINE 28
#endif

/* The other 2.1 names kitgate uses, for a build against 2.0 headers (the Debian package is built
 * against bookworm's 2.0.11 and must still use them when it runs in 2.1). Values are 2.1's ABI
 * (include/mosquitto/defs.h and broker.h of 2.1.2); whether the running broker has them is decided
 * at run time (brokerinfo.c, auth.c look mosquitto_complete_basic_auth up with dlsym), never here. */
#ifdef KG_MOSQ_HEADERS_21
#define KG_MOSQ_ERR_AUTH_DELAYED MOSQ_ERR_AUTH_DELAYED
#define KG_MOSQ_ERR_QUOTA_EXCEEDED MOSQ_ERR_QUOTA_EXCEEDED
#define KG_MOSQ_EVT_CONNECT MOSQ_EVT_CONNECT
typedef struct mosquitto_evt_connect kg_evt_connect;
#else
#define KG_MOSQ_ERR_AUTH_DELAYED (-5)     /* BASIC_AUTH: the plugin completes the login later */
#define KG_MOSQ_ERR_QUOTA_EXCEEDED (-6)   /* MESSAGE_IN: drop, v5 PUBACK/PUBREC 0x97 */
#define KG_MOSQ_EVT_CONNECT 11            /* a client's CONNECT was accepted (after the CONNACK) */
typedef struct {
	void *future;
	struct mosquitto *client;
	void *future2[4];
} kg_evt_connect;
#endif

/* void mosquitto_complete_basic_auth(const char *clientid, int result): 2.1 only, main thread. */
typedef void (*kg_complete_basic_auth_fn)(const char *clientid, int result);

/* Ask for MOSQ_EVT_TICK the way 2.0 delivers it: once per main-loop iteration (each batch of
 * network events) and, when idle, at the latest `ms` (1..999) milliseconds from now. Call from
 * inside the tick callback. Broker thread only.
 *
 * 2.0 does exactly that by itself (epoll_wait(..., 100), TICK at the end of every iteration) and
 * ignores what the plugin writes here. 2.1 (src/plugin_tick.c, 2.1.2) runs a plugin's tick only
 * when it is due, and wakes its loop for it only when the tick callback asks (next_s/next_ms; the
 * broker zeroes both before each call: 0 = no wish, sleep up to a day):
 *     loop__update_next_event(next_s*1000 + next_ms);          -- the loop's wake-up, if > 0
 *     next_tick = {now_s + next_s, now_ns + 1000000*next_ms};  -- normalised by ONE second at most
 *     due when mosquitto_time_cmp(now, next_tick) > 0          -- seconds compared first
 * A plain wish (next_ms = 100) leaves a gap: any network wake-up before the tick is due (the last
 * publish of a burst, say) skips the tick and asks for no wake-up, so the loop sleeps until the
 * next packet or the next $SYS/keepalive deadline (seconds), and the outbox, the live view and
 * the HTTP snapshot go stale (test_live on 2.1.2: 4 checks failed that way). So this writes
 * next_s = -2, next_ms = 2000 + ms: the wake-up is still `ms` from now, but next_tick's seconds
 * end up one below now's, so the tick is due at every iteration, as on 2.0. Should a later 2.1.x
 * normalise next_tick fully, this degrades to the plain `ms` wish, and test_live (run on 2.1 by
 * CI, ctest label broker21) fails again.
 *
 * Layout: the struct has the same size and shape in 2.0.11 and 2.1 -- {void *future; long now_ns;
 * long next_*; time_t now_s; time_t next_s; void *future2[4];} -- only the third member is named
 * next_ns in 2.0's headers and next_ms (milliseconds) in 2.1's. A plugin built against 2.0 headers
 * writes the milliseconds into next_ns, which a 2.1 broker reads as next_ms; nothing is written
 * past the 2.0 struct. */
static inline void kg_broker__tick_next(void *event_data, long ms)
{
	struct mosquitto_evt_tick *ev = event_data;

#ifdef KG_MOSQ_HEADERS_21
	_Static_assert(offsetof(struct mosquitto_evt_tick, next_ms) == offsetof(struct mosquitto_evt_tick, now_ns) + sizeof(long),
			"mosquitto_evt_tick.next_ms moved");
	ev->next_s = -2;
	ev->next_ms = 2000 + ms;
#else
	_Static_assert(offsetof(struct mosquitto_evt_tick, next_ns) == offsetof(struct mosquitto_evt_tick, now_ns) + sizeof(long),
			"mosquitto_evt_tick.next_ns moved");
	ev->next_s = -2;
	ev->next_ns = 2000 + ms; /* read as next_ms by 2.1, ignored by 2.0 */
#endif
}

#endif
