/* fakebroker.h -- a fake mosquitto broker for unit tests of the plugin's broker-facing code
 * (the files in plugin/broker/): it defines every mosquitto_* function and symbol those files use, records
 * what the plugin does with them (callbacks per event, log lines, publishes, kicks, delayed-auth
 * completions), and drives the plugin only through its entry points and registered callbacks,
 * the way mosquitto 2.0.11 / 2.1 call them (docs/testing.md, "Sanitizers").
 *
 * test_plugin links the files of plugin/broker/ and the core library statically with this file, so in the
 * ASan build the whole plugin runs under ASan+UBSan with assert() on, which the integration tests
 * cannot do (Debian's uninstrumented mosquitto cannot take the ASan runtime).
 *
 * 2.0 or 2.1: the plugin decides 2.1 features at run time with dlsym(RTLD_DEFAULT,
 * "mosquitto_complete_basic_auth" / "mosquitto_client_will_set") (plugin/util/brokerinfo.c,
 * plugin/broker/auth.c). The fake plays 2.1 by loading a small shared object that defines those
 * two (fakebroker21.c) with RTLD_GLOBAL, and 2.0 without it. Once the plugin has looked one of them
 * up, glibc keeps the object loaded for the life of the process (a lookup from the main program
 * pins it), so a test program runs its 2.0 tests first; fb_start(FB_API20) fails (-1, one line on
 * stderr) when the 2.1 functions are still found. 2.0 also refuses events above
 * MOSQ_EVT_DISCONNECT (MOSQ_ERR_NOT_SUPPORTED), as mosquitto 2.0 does. The broker version the
 * start line names is read from /proc/self/exe, i.e. this test binary: tests pin the features,
 * test_brokerinfo pins the version scan against real broker binaries.
 *
 * Semantics kept from mosquitto (shared notes, src/plugin.c, src/security.c): callbacks run in
 * registration order; BASIC_AUTH and ACL_CHECK stop at the first answer that is not
 * MOSQ_ERR_PLUGIN_DEFER; MESSAGE stops at the first that is not MOSQ_ERR_SUCCESS; TICK, DISCONNECT,
 * CLIENT_OFFLINE, CONNECT run every callback. A publish is ACL WRITE then MESSAGE on the same topic
 * and payload pointers; a will is ACL WRITE only. Payloads are heap copies of exactly their length
 * (no terminating NUL), so an over-read is ASan's. The fake's functions check that they are called
 * on the thread that started the plugin (the broker thread); fb_stop reports violations.
 *
 * Single-threaded driver: call everything from the test's main thread. */
#ifndef KITGATE_TEST_FAKEBROKER_H
#define KITGATE_TEST_FAKEBROKER_H

#include <stdbool.h>
#include <stddef.h>

#include "broker_api.h"

#define FB_API20 20
#define FB_API21 21

/* ---- clients ------------------------------------------------------------------------------- */

/* A connected client as the broker sees it (any string may be NULL). Owned by the test: free it
 * after its DISCONNECT (the plugin must not keep the pointer; ASan reports it if it reads it). */
struct mosquitto *fb_client_new(const char *id, const char *username, const char *address,
		int protocol_version, bool clean_session);
void fb_client_free(struct mosquitto *c);

/* ---- the plugin's life --------------------------------------------------------------------- */

/* Play broker api (FB_API20 or FB_API21) and load the plugin: mosquitto_plugin_version with
 * {5,4,3,2}, then mosquitto_plugin_init with opts (key, value, key, value, ..., NULL). Returns
 * init's result. Clears the records first. On failure nothing stays loaded (fb_stop not needed,
 * but harmless). */
int fb_start(int api, const char *const *opts);
/* mosquitto_plugin_cleanup (when started), then unload the 2.1 functions. Returns how many
 * callbacks were still registered after cleanup plus how many mosquitto_* calls came from another
 * thread than the broker thread: 0 when the plugin cleaned up and kept the thread rule. */
int fb_stop(void);
/* Callbacks registered for event (any plugin id). */
int fb_callbacks(int event);

/* ---- events (return what the chain answered, as described above) --------------------------- */

/* BASIC_AUTH with the client's username and this password. */
int fb_basic_auth(struct mosquitto *c, const char *password);
/* ACL_CHECK (MOSQ_ACL_READ, _WRITE, _SUBSCRIBE, _UNSUBSCRIBE); payload only for READ/WRITE. */
int fb_acl(struct mosquitto *c, int access, const char *topic, const void *payload, size_t len,
		int qos, bool retain);
/* A PUBLISH: ACL WRITE, then (when it answered MOSQ_ERR_SUCCESS) MESSAGE with the same pointers.
 * Returns the ACL answer if it was not success, else MESSAGE's. *acl_rc (may be NULL) gets the
 * ACL answer. */
int fb_publish(struct mosquitto *c, const char *topic, const char *payload, int qos, bool retain, int *acl_rc);
/* MESSAGE alone (a bridge connection, never ACL-checked by mosquitto). */
int fb_message(struct mosquitto *c, const char *topic, const char *payload, int qos, bool retain);
/* A will being sent: ACL WRITE only (no MESSAGE follows). Returns the ACL answer. */
int fb_will(struct mosquitto *c, const char *topic, const char *payload, int qos, bool retain);
/* MOSQ_EVT_DISCONNECT (2.0, and 2.1 for clean sessions). */
void fb_disconnect(struct mosquitto *c, int reason);
/* 2.1 only: MOSQ_EVT_CLIENT_OFFLINE (a persistent session's connection closed), MOSQ_EVT_CONNECT. */
void fb_client_offline(struct mosquitto *c, int reason);
void fb_connect(struct mosquitto *c);
/* MOSQ_EVT_TICK; returns the wish the plugin wrote (next_s * 1000 + next_ms, as 2.1 reads it). */
long fb_tick(void);
/* MOSQ_EVT_RELOAD; returns the chain's answer (first non-DEFER, or DEFER). */
int fb_reload(void);

/* ---- what the plugin did ------------------------------------------------------------------- */

struct fb_log {
	int level;          /* MOSQ_LOG_* */
	char *text;
};
struct fb_pub {
	char *topic;
	char *payload;      /* NUL-terminated copy of len bytes (NULL when len is 0) */
	int len, qos;
	bool retain;
};
struct fb_completion {
	char *client_id;
	int result;
};

size_t fb_nlogs(void);
const struct fb_log *fb_log_at(size_t i);
/* Lines containing needle (all of them with needle NULL); the first such line or NULL. */
size_t fb_log_count(const char *needle);
const char *fb_log_find(const char *needle);
size_t fb_npubs(void);
const struct fb_pub *fb_pub_at(size_t i);
/* The last publish on topic, or NULL. */
const struct fb_pub *fb_pub_last(const char *topic);
size_t fb_nkicks(void);
const char *fb_kick_at(size_t i);   /* the username kicked */
size_t fb_ncompletions(void);
const struct fb_completion *fb_completion_at(size_t i);
/* Forget everything recorded so far (logs, publishes, kicks, completions). */
void fb_clear(void);
/* Print the recorded log lines to stderr (for a failing test's context). */
void fb_dump_logs(void);

#endif
