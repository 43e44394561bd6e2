/* compat21.h -- the few mosquitto 2.1 names kitgate uses, for a build against 2.0 headers (the
 * Debian package is built against bookworm's 2.0.11 and must still use them when it runs in 2.1).
 * Include it after the mosquitto headers. Values are 2.1's ABI (include/mosquitto/defs.h and
 * broker.h of 2.1.2); whether the running broker has them is decided at run time (auth.c looks
 * mosquitto_complete_basic_auth up with dlsym), never here. Broker-facing files only. */
#ifndef KITGATE_COMPAT21_H
#define KITGATE_COMPAT21_H

#include <stddef.h>
#include <time.h>

#if defined(LIBMOSQUITTO_MAJOR) && (LIBMOSQUITTO_MAJOR > 2 || (LIBMOSQUITTO_MAJOR == 2 && LIBMOSQUITTO_MINOR >= 1))
#define KG_HEADERS_21 1
#define KG_MOSQ_ERR_AUTH_DELAYED MOSQ_ERR_AUTH_DELAYED
#define KG_MOSQ_ERR_QUOTA_EXCEEDED MOSQ_ERR_QUOTA_EXCEEDED
#define KG_MOSQ_EVT_CONNECT MOSQ_EVT_CONNECT
#define KG_MOSQ_EVT_CLIENT_OFFLINE MOSQ_EVT_CLIENT_OFFLINE
typedef struct mosquitto_evt_connect kg_evt_connect;
#else
#define KG_HEADERS_21 0
#define KG_MOSQ_ERR_AUTH_DELAYED (-5)     /* BASIC_AUTH: the plugin completes the login later */
#define KG_MOSQ_ERR_QUOTA_EXCEEDED (-6)   /* MESSAGE_IN: drop, v5 PUBACK/PUBREC 0x97 */
#define KG_MOSQ_EVT_CONNECT 11            /* a client's CONNECT was accepted (after the CONNACK) */
/* a client whose session outlives its connection went away: 2.1 raises this INSTEAD of
 * MOSQ_EVT_DISCONNECT (src/context.c context__disconnect); event data laid out as
 * struct mosquitto_evt_disconnect {future, client, reason, future2[4]} */
#define KG_MOSQ_EVT_CLIENT_OFFLINE 28
typedef struct {
	void *future;
	struct mosquitto *client;
	void *future2[4];
} kg_evt_connect;
#endif

/* void mosquitto_complete_basic_auth(const char *clientid, int result): 2.1 only, main thread. */
typedef void (*kg_complete_basic_auth_fn)(const char *clientid, int result);

/* Ask for the next MOSQ_EVT_TICK in ms (> 0) milliseconds, from inside the tick callback. 2.1
 * reads next_s/next_ms (both 0: no wish); 2.0 ignores them. The third member of struct
 * mosquitto_evt_tick is next_ns in 2.0's headers and next_ms in 2.1's, same place and type. */
static inline void kg_compat__tick_wish(void *event_data, long ms)
{
	struct mosquitto_evt_tick *ev = event_data;

	ev->next_s = (time_t)(ms / 1000);
#if KG_HEADERS_21
	ev->next_ms = ms % 1000;
#else
	ev->next_ns = ms % 1000;   /* read as next_ms by 2.1 */
#endif
}

#endif
