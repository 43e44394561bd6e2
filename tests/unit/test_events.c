/* test_events.c -- unit tests for plugin/session/events.c: replays of the event sequences measured on
 * mosquitto 2.0.11/2.0.21 and 2.1.2 (docs/brokers.md, "Event order measured on the three brokers")
 * and checks the decisions: wills pushed or publishes consumed, kits online/offline, client ids
 * allowed, refused or taken over. Each replay writes what the module decided into a log string. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "kitgate/clientids.h"
#include "kitgate/events.h"

/* ---- the recording sink ------------------------------------------------------------------------ */

static char log_buf[4096];

static void logf_(const char *fmt, ...)
{
	size_t n = strlen(log_buf);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(log_buf + n, sizeof(log_buf) - n, fmt, ap);
	va_end(ap);
}

static void rec_will(void *ud)
{
	(void)ud;
	logf_("will;");
}

static void rec_online(void *ud, const struct kg_events_session *s)
{
	(void)ud;
	logf_("online %s %s %s v%d @%lld;", s->serial, s->client_id, s->address, s->protocol, (long long)s->at_ms);
}

static void rec_offline(void *ud, const struct kg_events_client *c)
{
	(void)ud;
	logf_("offline %s %s;", c->username ? c->username : "-", c->id ? c->id : "-");
}

static struct kg_events *new_events(bool v21)
{
	struct kg_events_sink sink = { rec_will, rec_online, rec_offline, NULL };
	struct kg_events *ev = kg_events__new(v21, 64, 4, &sink);

	assert_non_null(ev);
	log_buf[0] = '\0';
	return ev;
}

/* Takes the log (and empties it) for an assert_string_equal. */
static const char *took(void)
{
	static char out[sizeof(log_buf)];

	memcpy(out, log_buf, sizeof(out));
	log_buf[0] = '\0';
	return out;
}

/* ---- clients ------------------------------------------------------------------------------------ */

/* Connection tokens: only their addresses matter (a struct mosquitto * is never dereferenced). */
static int conn_a, conn_b, conn_c;
#define A ((const void *)&conn_a)
#define B ((const void *)&conn_b)
#define C ((const void *)&conn_c)

/* A kit k-<n> (kit: true), a service user "server", an anonymous client, a password_file user. */
static struct kg_events_client kit(const void *token, const char *serial, const char *id)
{
	struct kg_events_client c = { token, id, serial, "10.0.0.1", 4, true, false, true };
	return c;
}

static struct kg_events_client service(const void *token, const char *id)
{
	struct kg_events_client c = { token, id, "server", "10.0.0.9", 5, false, true, true };
	return c;
}

static struct kg_events_client anonymous(const void *token, const char *id)
{
	struct kg_events_client c = { token, id, NULL, "10.0.0.7", 4, false, false, true };
	return c;
}

static struct kg_events_client persistent(struct kg_events_client c)
{
	c.clean = false;
	return c;
}

/* One successful synchronous login, as acl.c feeds it: BASIC_AUTH, then our auth's outcome. */
static enum kg_events_id login(struct kg_events *ev, const struct kg_events_client *c, enum kg_events_auth r,
		int64_t at)
{
	enum kg_events_id d = kg_events__basic_auth(ev, c, at);

	kg_events__auth(ev, c->token,
			d == KG_EVENTS_ID_ALLOWED || d == KG_EVENTS_ID_TAKEOVER ? r : KG_EVENTS_AUTH_REFUSED);
	return d;
}

/* A publish as 2.0 and 2.1 raise it: ACL WRITE (acl.c: kg_events__other, then the validation, then
 * kg_events__write when valid), MESSAGE. Returns the MESSAGE's decision. */
static const char topic_raw[] = "kit/k-1/measurement/raw";
static const char payload_1[] = "{\"m\":1}";
static const char payload_2[] = "{\"m\":2}";

static void acl_write(struct kg_events *ev, const void *token, const char *topic, const void *payload,
		size_t len, bool valid)
{
	kg_events__other(ev);
	if(valid) kg_events__write(ev, token, topic, payload, len);
}

/* ---- measurements and wills (the same on both versions) ------------------------------------------ */

static void publish_consumed(bool v21)
{
	struct kg_events *ev = new_events(v21);

	acl_write(ev, A, topic_raw, payload_1, sizeof(payload_1), true);
	assert_true(kg_events__write_pending(ev));
	assert_int_equal(kg_events__message(ev, A, topic_raw, payload_1, sizeof(payload_1)), KG_EVENTS_MSG_MEMO);
	assert_false(kg_events__write_pending(ev));
	kg_events__tick(ev);
	kg_events__disconnect(ev, &(struct kg_events_client){ .token = A, .id = "a", .clean = true });
	assert_string_equal(took(), "");  /* consumed: never a will, whatever follows */
	kg_events__free(ev);
}

static void test_publish_consumed_20(void **state) { (void)state; publish_consumed(false); }
static void test_publish_consumed_21(void **state) { (void)state; publish_consumed(true); }

/* QoS 1/2 retransmission: the second MESSAGE of the same publish has no memo of its own (its ACL
 * WRITE, if any, comes again first); without an ACL WRITE it is checked again, never a will. */
static void test_retransmission(void **state)
{
	struct kg_events *ev = new_events(false);

	(void)state;
	acl_write(ev, A, topic_raw, payload_1, sizeof(payload_1), true);
	assert_int_equal(kg_events__message(ev, A, topic_raw, payload_1, sizeof(payload_1)), KG_EVENTS_MSG_MEMO);
	assert_int_equal(kg_events__message(ev, A, topic_raw, payload_1, sizeof(payload_1)), KG_EVENTS_MSG_CHECK);
	/* the retransmission through its own ACL WRITE: consumed again */
	acl_write(ev, A, topic_raw, payload_1, sizeof(payload_1), true);
	assert_int_equal(kg_events__message(ev, A, topic_raw, payload_1, sizeof(payload_1)), KG_EVENTS_MSG_MEMO);
	kg_events__tick(ev);
	assert_string_equal(took(), "");
	kg_events__free(ev);
}

/* A MESSAGE is the pending write's only with the same client, topic, payload and length. */
static void test_message_identity(void **state)
{
	static const char topic_other[] = "kit/k-1/measurement/raw";  /* equal text, another pointer */
	struct kg_events *ev = new_events(false);

	(void)state;
	acl_write(ev, A, topic_raw, payload_1, sizeof(payload_1), true);
	assert_int_equal(kg_events__message(ev, B, topic_raw, payload_1, sizeof(payload_1)), KG_EVENTS_MSG_CHECK);
	assert_string_equal(took(), "will;"); /* the write had no MESSAGE of its own: a will */
	acl_write(ev, A, topic_raw, payload_1, sizeof(payload_1), true);
	assert_int_equal(kg_events__message(ev, A, topic_other, payload_1, sizeof(payload_1)), KG_EVENTS_MSG_CHECK);
	assert_string_equal(took(), "will;");
	acl_write(ev, A, topic_raw, payload_1, sizeof(payload_1), true);
	assert_int_equal(kg_events__message(ev, A, topic_raw, payload_2, sizeof(payload_1)), KG_EVENTS_MSG_CHECK);
	assert_string_equal(took(), "will;");
	acl_write(ev, A, topic_raw, payload_1, sizeof(payload_1), true);
	assert_int_equal(kg_events__message(ev, A, topic_raw, payload_1, sizeof(payload_1) - 1), KG_EVENTS_MSG_CHECK);
	assert_string_equal(took(), "will;");
	/* a MESSAGE with nothing pending (a bridge, another plugin's ACL): checked, no will */
	assert_int_equal(kg_events__message(ev, A, topic_raw, payload_1, sizeof(payload_1)), KG_EVENTS_MSG_CHECK);
	assert_string_equal(took(), "");
	kg_events__free(ev);
}

/* A will: DISCONNECT (2.1: or CLIENT_OFFLINE), then its ACL WRITE alone; whatever event comes next
 * pushes it, exactly once. Valid (written) and invalid (denied in the check: no write) wills,
 * retained or not (the retain flag only matters to the validation: an empty retained will clears a
 * retained message and is no measurement, i.e. no write). */
static void will_sequence(bool v21, bool valid, int next)
{
	struct kg_events *ev = new_events(v21);
	struct kg_events_client k = kit(A, "k-1", "c-1");
	struct kg_events_client other = kit(B, "k-2", "c-2");
	char want[256];

	assert_int_equal(login(ev, &k, KG_EVENTS_AUTH_OK, 1000), KG_EVENTS_ID_ALLOWED);
	if(v21) kg_events__connect(ev, &k, 1001);
	else kg_events__tick(ev);
	assert_string_equal(took(), "online k-1 c-1 10.0.0.1 v4 @1000;");
	kg_events__disconnect(ev, &k);
	acl_write(ev, A, topic_raw, payload_1, sizeof(payload_1), valid);
	assert_string_equal(took(), "offline k-1 c-1;");   /* not yet: something must come after */
	assert_int_equal(kg_events__write_pending(ev), valid);
	switch(next){
		case 0: kg_events__tick(ev); break;
		case 1: kg_events__basic_auth(ev, &other, 2000); break;
		case 2: kg_events__other(ev); break;                    /* an ACL check (READ for a subscriber) */
		case 3: kg_events__disconnect(ev, &other); break;
		case 4: assert_int_equal(kg_events__message(ev, B, topic_raw, payload_2, sizeof(payload_2)),
				KG_EVENTS_MSG_CHECK); break;
		case 5: kg_events__connect(ev, &other, 2000); break;   /* 2.1 only */
	}
	snprintf(want, sizeof(want), "%s%s", valid ? "will;" : "",
			next == 3 && !v21 ? "offline k-2 c-2;" : next == 3 ? "offline k-2 c-2;"
			: next == 5 ? "online k-2 c-2 10.0.0.1 v4 @2000;" : "");
	assert_string_equal(took(), want);
	kg_events__tick(ev);
	kg_events__other(ev);
	assert_string_equal(took(), next == 1 && !v21 ? "online k-2 c-2 10.0.0.1 v4 @2000;" : ""); /* once */
	kg_events__free(ev);
}

static void test_wills_20(void **state)
{
	int next;

	(void)state;
	for(next = 0; next <= 4; next++){
		will_sequence(false, true, next);
		will_sequence(false, false, next);
	}
}

static void test_wills_21(void **state)
{
	int next;

	(void)state;
	for(next = 0; next <= 5; next++){
		will_sequence(true, true, next);
		will_sequence(true, false, next);
	}
}

/* A will at shutdown: the plugin's cleanup feeds kg_events__other before freeing. */
static void test_will_at_cleanup(void **state)
{
	struct kg_events *ev = new_events(false);

	(void)state;
	acl_write(ev, A, topic_raw, payload_1, sizeof(payload_1), true);
	kg_events__other(ev);
	assert_string_equal(took(), "will;");
	kg_events__free(ev);
}

/* ---- mosquitto 2.0: online at TICK ------------------------------------------------------------- */

static void test20_online_at_tick(void **state)
{
	struct kg_events *ev = new_events(false);
	struct kg_events_client k = kit(A, "k-1", "c-1");

	(void)state;
	assert_int_equal(login(ev, &k, KG_EVENTS_AUTH_OK, 1000), KG_EVENTS_ID_ALLOWED);
	kg_events__connect(ev, &k, 1001);       /* never raised by 2.0: ignored */
	assert_string_equal(took(), "");        /* no CONNECT event on 2.0: the TICK decides */
	assert_int_equal(kg_events__pending(ev), 1);
	kg_events__tick(ev);
	assert_string_equal(took(), "online k-1 c-1 10.0.0.1 v4 @1000;");
	kg_events__tick(ev);
	assert_string_equal(took(), "");
	kg_events__disconnect(ev, &k);
	assert_string_equal(took(), "offline k-1 c-1;");
	kg_events__free(ev);
}

/* Deferred to password_file (auth none): the same, unless it refuses (DISCONNECT first). */
static void test20_password_file(void **state)
{
	struct kg_events *ev = new_events(false);
	struct kg_events_client k1 = kit(A, "k-1", "c-1"), k2 = kit(B, "k-2", "c-2");

	(void)state;
	login(ev, &k1, KG_EVENTS_AUTH_DEFERRED, 1000);
	login(ev, &k2, KG_EVENTS_AUTH_DEFERRED, 1001);
	kg_events__disconnect(ev, &k2);         /* password_file refused k-2: disconnected at once */
	assert_string_equal(took(), "");        /* no offline for a client that never logged in */
	kg_events__tick(ev);
	assert_string_equal(took(), "online k-1 c-1 10.0.0.1 v4 @1000;");
	kg_events__free(ev);
}

/* Refused by us: DISCONNECT in the same loop iteration, then TICK: never online, never offline. */
static void test20_refused_login(void **state)
{
	struct kg_events *ev = new_events(false);
	struct kg_events_client k = kit(A, "k-1", "c-1"), k_again = kit(B, "k-1", "c-1b");

	(void)state;
	login(ev, &k, KG_EVENTS_AUTH_OK, 1000);
	kg_events__tick(ev);
	assert_string_equal(took(), "online k-1 c-1 10.0.0.1 v4 @1000;");
	/* a second connection as k-1 with a wrong secret must not close the first one's session */
	login(ev, &k_again, KG_EVENTS_AUTH_REFUSED, 2000);
	kg_events__disconnect(ev, &k_again);
	kg_events__tick(ev);
	assert_string_equal(took(), "");
	/* refused and the TICK comes before its DISCONNECT (it cannot on 2.0, but never online) */
	login(ev, &k_again, KG_EVENTS_AUTH_REFUSED, 3000);
	kg_events__tick(ev);
	assert_string_equal(took(), "");
	/* a client id refused at BASIC_AUTH is a refused login by itself */
	kg_events__other(ev);
	assert_int_equal(kg_events__basic_auth(ev, &(struct kg_events_client){ C, "c-1", "k-2", "z", 4, true,
			false, true }, 4000), KG_EVENTS_ID_REFUSED);
	assert_false(kg_events__publish(ev, C));
	kg_events__tick(ev);
	assert_string_equal(took(), "");
	kg_events__free(ev);
}

/* A kit's first publish before the TICK brings it online with the login's data, once. */
static void test20_publish_before_tick(void **state)
{
	struct kg_events *ev = new_events(false);
	struct kg_events_client k = kit(A, "k-1", "c-1");

	(void)state;
	login(ev, &k, KG_EVENTS_AUTH_OK, 1000);
	assert_false(kg_events__publish(ev, B));   /* another client: nothing pending */
	assert_true(kg_events__publish(ev, A));
	assert_string_equal(took(), "online k-1 c-1 10.0.0.1 v4 @1000;");
	assert_false(kg_events__publish(ev, A));
	kg_events__tick(ev);
	assert_string_equal(took(), "");
	/* a refused login is never brought online by a publish */
	login(ev, &(struct kg_events_client){ B, "c-2", "k-2", "x", 4, true, false, true }, KG_EVENTS_AUTH_REFUSED, 5);
	assert_false(kg_events__publish(ev, B));
	assert_string_equal(took(), "");
	kg_events__free(ev);
}

/* Gone before the TICK (connected and dropped in one iteration): neither online nor offline. */
static void test20_gone_at_once(void **state)
{
	struct kg_events *ev = new_events(false);
	struct kg_events_client k = kit(A, "k-1", "c-1");

	(void)state;
	login(ev, &k, KG_EVENTS_AUTH_OK, 1000);
	kg_events__disconnect(ev, &k);
	kg_events__tick(ev);
	assert_string_equal(took(), "");
	kg_events__free(ev);
}

/* Only kits have sessions: a service user or anonymous client is never online/pending. */
static void test_not_a_kit(void **state)
{
	struct kg_events *ev = new_events(false);
	struct kg_events_client s = service(A, "ingest"), n = anonymous(B, "anon");

	(void)state;
	login(ev, &s, KG_EVENTS_AUTH_DEFERRED, 1);
	login(ev, &n, KG_EVENTS_AUTH_DEFERRED, 2);
	assert_int_equal(kg_events__pending(ev), 0);
	kg_events__tick(ev);
	assert_string_equal(took(), "");
	kg_events__free(ev);
	ev = new_events(true);
	kg_events__connect(ev, &s, 3);
	assert_string_equal(took(), "");
	kg_events__free(ev);
}

/* The pending table is bounded: past KG_EVENTS_PENDING_MAX logins in one iteration, the rest wait
 * for their first publish (the glue's fallback). */
static void test20_pending_bounded(void **state)
{
	static int tokens[KG_EVENTS_PENDING_MAX + 1];
	struct kg_events *ev = new_events(false);
	size_t i;

	(void)state;
	for(i = 0; i <= KG_EVENTS_PENDING_MAX; i++){
		struct kg_events_client k = kit(&tokens[i], "k-1", "c");
		kg_events__basic_auth(ev, &k, 1);
	}
	assert_int_equal(kg_events__pending(ev), KG_EVENTS_PENDING_MAX);
	assert_false(kg_events__publish(ev, &tokens[KG_EVENTS_PENDING_MAX]));
	kg_events__tick(ev);
	assert_int_equal(kg_events__pending(ev), 0);
	kg_events__free(ev);
}

/* ---- client ids ------------------------------------------------------------------------------------- */

static void takeovers(bool v21)
{
	struct kg_events *ev = new_events(v21);
	struct kg_events_client k1 = kit(A, "k-1", "shared"), k2 = kit(B, "k-2", "shared");
	struct kg_events_client s = service(C, "shared"), k1_again = kit(C, "k-1", "shared");
	struct kg_events_client n = anonymous(B, "shared");

	assert_int_equal(login(ev, &k1, KG_EVENTS_AUTH_OK, 1), KG_EVENTS_ID_ALLOWED);
	if(v21) kg_events__connect(ev, &k1, 1);      /* 2.1: the owner is recorded at CONNECT */
	assert_int_equal(kg_clientids__count(kg_events__clientids(ev)), 1);
	/* another kit presenting k-1's id: refused (and its refusal's DISCONNECT closes nothing) */
	assert_int_equal(login(ev, &k2, KG_EVENTS_AUTH_OK, 2), KG_EVENTS_ID_REFUSED);
	kg_events__disconnect(ev, &k2);
	/* anonymous on an owned id: refused */
	assert_int_equal(login(ev, &n, KG_EVENTS_AUTH_OK, 2), KG_EVENTS_ID_REFUSED);
	kg_events__disconnect(ev, &n);
	if(!v21) kg_events__tick(ev);
	assert_string_equal(took(), "online k-1 shared 10.0.0.1 v4 @1;");
	/* the same kit reconnecting (a new connection): allowed */
	assert_int_equal(login(ev, &k1_again, KG_EVENTS_AUTH_OK, 3), KG_EVENTS_ID_ALLOWED);
	if(v21) kg_events__connect(ev, &k1_again, 3);
	else kg_events__tick(ev);
	assert_string_equal(took(), "online k-1 shared 10.0.0.1 v4 @3;");
	/* a service user: allowed, and takes the id over */
	assert_int_equal(login(ev, &s, KG_EVENTS_AUTH_DEFERRED, 4), KG_EVENTS_ID_TAKEOVER);
	if(v21) kg_events__connect(ev, &s, 4);
	else kg_events__tick(ev);
	assert_int_equal(kg_clientids__owned(kg_events__clientids(ev), "server"), 1);
	assert_int_equal(kg_clientids__owned(kg_events__clientids(ev), "k-1"), 0);
	assert_int_equal(login(ev, &k1, KG_EVENTS_AUTH_OK, 5), KG_EVENTS_ID_REFUSED);
	kg_events__free(ev);
}

static void test_takeovers_20(void **state) { (void)state; takeovers(false); }
static void test_takeovers_21(void **state) { (void)state; takeovers(true); }

/* 2.0: the owner is recorded only once the login proved successful: by any event but its own
 * DISCONNECT (password_file refusing after our DEFER disconnects it first). */
static void test20_owner_settled_by_next_event(void **state)
{
	struct kg_events *ev = new_events(false);
	struct kg_events_client k1 = kit(A, "k-1", "x"), k2 = kit(B, "k-2", "x");
	struct kg_events_client k1p = persistent(kit(A, "k-1", "x"));   /* its DISCONNECT keeps an id */

	(void)state;
	login(ev, &k1p, KG_EVENTS_AUTH_DEFERRED, 1);
	assert_int_equal(kg_clientids__count(kg_events__clientids(ev)), 0);
	kg_events__disconnect(ev, &k1p);                 /* refused by password_file */
	assert_int_equal(kg_clientids__count(kg_events__clientids(ev)), 0);
	assert_int_equal(login(ev, &k2, KG_EVENTS_AUTH_DEFERRED, 2), KG_EVENTS_ID_ALLOWED);
	kg_events__other(ev);                            /* k-2's first ACL check: it got in */
	assert_int_equal(kg_clientids__owned(kg_events__clientids(ev), "k-2"), 1);
	assert_int_equal(login(ev, &k1, KG_EVENTS_AUTH_OK, 3), KG_EVENTS_ID_REFUSED);
	/* accepted by us: recorded at once */
	kg_events__free(ev);
	ev = new_events(false);
	login(ev, &k1, KG_EVENTS_AUTH_OK, 1);
	assert_int_equal(kg_clientids__owned(kg_events__clientids(ev), "k-1"), 1);
	/* refused by us: never recorded, even if the next event is somebody else's */
	kg_events__free(ev);
	ev = new_events(false);
	login(ev, &k1, KG_EVENTS_AUTH_REFUSED, 1);
	kg_events__other(ev);
	kg_events__tick(ev);
	assert_int_equal(kg_clientids__count(kg_events__clientids(ev)), 0);
	kg_events__free(ev);
}

/* A clean session releases its id when it ends; a persistent one (v3 clean_session false, v5)
 * keeps it owned; 2.1's CLIENT_OFFLINE is that persistent case. */
static void release(bool v21)
{
	struct kg_events *ev = new_events(v21);
	struct kg_events_client k1 = kit(A, "k-1", "x"), k2 = kit(B, "k-2", "x");
	struct kg_events_client p1 = persistent(kit(A, "k-1", "y")), p2 = kit(B, "k-2", "y");

	login(ev, &k1, KG_EVENTS_AUTH_OK, 1);
	if(v21) kg_events__connect(ev, &k1, 1);
	kg_events__disconnect(ev, &k1);                  /* DISCONNECT, clean */
	assert_int_equal(login(ev, &k2, KG_EVENTS_AUTH_OK, 2), KG_EVENTS_ID_ALLOWED);
	if(v21) kg_events__connect(ev, &k2, 2);
	login(ev, &p1, KG_EVENTS_AUTH_OK, 3);
	if(v21) kg_events__connect(ev, &p1, 3);
	kg_events__disconnect(ev, &p1);                  /* 2.1: CLIENT_OFFLINE */
	assert_int_equal(login(ev, &p2, KG_EVENTS_AUTH_OK, 4), KG_EVENTS_ID_REFUSED);
	kg_events__free(ev);
}

static void test_release_20(void **state) { (void)state; release(false); }
static void test_release_21(void **state) { (void)state; release(true); }

/* A full table refuses a new id rather than evict another user's. */
static void test_table_full(void **state)
{
	struct kg_events_sink sink = { rec_will, rec_online, rec_offline, NULL };
	struct kg_events *ev = kg_events__new(false, 2, 4, &sink);
	struct kg_events_client a = kit(A, "k-1", "a"), b = kit(B, "k-2", "b"), c = kit(C, "k-3", "c");

	(void)state;
	assert_non_null(ev);
	assert_int_equal(login(ev, &a, KG_EVENTS_AUTH_OK, 1), KG_EVENTS_ID_ALLOWED);
	assert_int_equal(login(ev, &b, KG_EVENTS_AUTH_OK, 1), KG_EVENTS_ID_ALLOWED);
	assert_int_equal(login(ev, &c, KG_EVENTS_AUTH_OK, 1), KG_EVENTS_ID_FULL);
	kg_events__disconnect(ev, &c);
	kg_events__tick(ev);
	log_buf[0] = '\0';
	assert_int_equal(kg_clientids__count(kg_events__clientids(ev)), 2);
	kg_events__free(ev);
}

/* 2.0 takeover by the same kit with the id still connected: BASIC_AUTH(new); ACL_WRITE(old's
 * will); DISCONNECT(old). The old session closes, the new one opens at TICK, the id stays owned. */
static void test20_same_kit_takeover(void **state)
{
	struct kg_events *ev = new_events(false);
	struct kg_events_client old = kit(A, "k-1", "x"), new = kit(B, "k-1", "x"), k2 = kit(C, "k-2", "x");

	(void)state;
	login(ev, &old, KG_EVENTS_AUTH_OK, 1);
	kg_events__tick(ev);
	assert_string_equal(took(), "online k-1 x 10.0.0.1 v4 @1;");
	assert_int_equal(login(ev, &new, KG_EVENTS_AUTH_OK, 2), KG_EVENTS_ID_ALLOWED);
	acl_write(ev, A, topic_raw, payload_1, sizeof(payload_1), true);   /* the old one's will */
	kg_events__disconnect(ev, &old);
	assert_string_equal(took(), "will;offline k-1 x;");
	kg_events__tick(ev);
	assert_string_equal(took(), "online k-1 x 10.0.0.1 v4 @2;");
	/* the old connection's clean DISCONNECT did not release the id the new one holds */
	assert_int_equal(login(ev, &k2, KG_EVENTS_AUTH_OK, 3), KG_EVENTS_ID_REFUSED);
	kg_events__free(ev);
}

/* Pointer reuse: a new client at the address of one that went away is a new client. */
static void test_pointer_reuse(void **state)
{
	struct kg_events *ev = new_events(false);
	struct kg_events_client k1 = kit(A, "k-1", "x"), k2 = kit(A, "k-2", "y"), k3 = kit(B, "k-3", "x");
	struct kg_events_client k4 = kit(A, "k-4", "w");

	(void)state;
	/* k-1 at A logs in and is gone before the TICK; k-2 comes at A: only k-2 goes online */
	login(ev, &k1, KG_EVENTS_AUTH_OK, 1);
	kg_events__disconnect(ev, &k1);
	login(ev, &k2, KG_EVENTS_AUTH_OK, 2);
	kg_events__tick(ev);
	assert_string_equal(took(), "online k-2 y 10.0.0.1 v4 @2;");
	/* k-1's clean session ended: its id x is free for k-3 */
	assert_int_equal(login(ev, &k3, KG_EVENTS_AUTH_OK, 3), KG_EVENTS_ID_ALLOWED);
	kg_events__tick(ev);
	took();
	/* a will written for the old client at A is not claimed by the new client at A's BASIC_AUTH */
	kg_events__disconnect(ev, &k2);
	acl_write(ev, A, topic_raw, payload_1, sizeof(payload_1), true);
	login(ev, &k4, KG_EVENTS_AUTH_OK, 4);
	assert_string_equal(took(), "offline k-2 y;will;");
	acl_write(ev, A, topic_raw, payload_1, sizeof(payload_1), true);
	assert_int_equal(kg_events__message(ev, A, topic_raw, payload_1, sizeof(payload_1)), KG_EVENTS_MSG_MEMO);
	assert_string_equal(took(), "");
	kg_events__free(ev);
}

/* ---- mosquitto 2.1: CONNECT, CLIENT_OFFLINE, delayed logins ----------------------------------------- */

static void test21_online_at_connect(void **state)
{
	struct kg_events *ev = new_events(true);
	struct kg_events_client k = kit(A, "k-1", "c-1");

	(void)state;
	login(ev, &k, KG_EVENTS_AUTH_OK, 1000);
	assert_false(kg_events__publish(ev, B));
	assert_string_equal(took(), "");
	kg_events__connect(ev, &k, 1005);       /* after the CONNACK */
	assert_string_equal(took(), "online k-1 c-1 10.0.0.1 v4 @1000;");
	kg_events__tick(ev);
	assert_string_equal(took(), "");
	/* a pending login without CONNECT is not online at TICK on 2.1 */
	login(ev, &(struct kg_events_client){ B, "c-2", "k-2", "x", 4, true, false, true }, KG_EVENTS_AUTH_DEFERRED, 2000);
	kg_events__tick(ev);
	assert_string_equal(took(), "");
	assert_int_equal(kg_events__pending(ev), 0);
	/* a CONNECT without our BASIC_AUTH (TLS identity, another plugin's login): a kit is online */
	kg_events__connect(ev, &(struct kg_events_client){ C, "c-3", "k-3", "y", 5, true, false, true }, 3000);
	assert_string_equal(took(), "online k-3 c-3 y v5 @3000;");
	/* ... but its client id was not checked by us: it gets no owner */
	assert_int_equal(kg_clientids__owned(kg_events__clientids(ev), "k-3"), 0);
	kg_events__free(ev);
}

/* DISCONNECT (clean) and CLIENT_OFFLINE (persistent) both end a kit's session. */
static void test21_offline_events(void **state)
{
	struct kg_events *ev = new_events(true);
	struct kg_events_client k1 = kit(A, "k-1", "c-1"), p2 = persistent(kit(B, "k-2", "c-2"));

	(void)state;
	login(ev, &k1, KG_EVENTS_AUTH_OK, 1);
	kg_events__connect(ev, &k1, 1);
	login(ev, &p2, KG_EVENTS_AUTH_OK, 2);
	kg_events__connect(ev, &p2, 2);
	took();
	kg_events__disconnect(ev, &k1);          /* DISCONNECT(7) */
	kg_events__disconnect(ev, &p2);          /* CLIENT_OFFLINE(7) */
	assert_string_equal(took(), "offline k-1 c-1;offline k-2 c-2;");
	kg_events__free(ev);
}

/* 2.1 refused synchronous login: no CONNECT; its DISCONNECT is no offline. */
static void test21_refused_login(void **state)
{
	struct kg_events *ev = new_events(true);
	struct kg_events_client k = kit(A, "k-1", "c-1"), bad = kit(B, "k-1", "c-9");

	(void)state;
	login(ev, &k, KG_EVENTS_AUTH_OK, 1);
	kg_events__connect(ev, &k, 1);
	took();
	login(ev, &bad, KG_EVENTS_AUTH_REFUSED, 2);
	kg_events__disconnect(ev, &bad);
	login(ev, &bad, KG_EVENTS_AUTH_DEFERRED, 3);   /* password_file refuses after us */
	kg_events__disconnect(ev, &bad);
	kg_events__tick(ev);
	assert_string_equal(took(), "");
	assert_int_equal(kg_clientids__owned(kg_events__clientids(ev), "k-1"), 1);   /* c-1 only */
	kg_events__free(ev);
}

/* Delayed login, success: BASIC_AUTH (delayed), TICKs, then inside mosquitto_complete_basic_auth
 * the CONNECT: online, and the id gets its owner. */
static void test21_delayed_ok(void **state)
{
	struct kg_events *ev = new_events(true);
	struct kg_events_client k = kit(A, "k-1", "c-1"), k2 = kit(B, "k-2", "c-1");

	(void)state;
	assert_int_equal(login(ev, &k, KG_EVENTS_AUTH_DELAYED, 1000), KG_EVENTS_ID_ALLOWED);
	kg_events__tick(ev);
	kg_events__other(ev);
	assert_string_equal(took(), "");
	assert_int_equal(kg_clientids__count(kg_events__clientids(ev)), 0);
	kg_events__complete_begin(ev, "c-1", true);
	kg_events__connect(ev, &k, 1200);
	kg_events__complete_end(ev);
	assert_string_equal(took(), "online k-1 c-1 10.0.0.1 v4 @1200;");
	assert_int_equal(kg_clientids__owned(kg_events__clientids(ev), "k-1"), 1);
	assert_int_equal(login(ev, &k2, KG_EVENTS_AUTH_OK, 1300), KG_EVENTS_ID_REFUSED);
	kg_events__free(ev);
}

/* Delayed login, refused: 2.1 disconnects it inside mosquitto_complete_basic_auth; that DISCONNECT
 * must not close the live session of the kit's other connection, and records no owner. */
static void test21_delayed_refused(void **state)
{
	struct kg_events *ev = new_events(true);
	struct kg_events_client good = kit(A, "k-1", "c-1"), bad = kit(B, "k-1", "c-9"), k2 = kit(C, "k-2", "c-9");

	(void)state;
	login(ev, &good, KG_EVENTS_AUTH_DELAYED, 1);
	kg_events__complete_begin(ev, "c-1", true);
	kg_events__connect(ev, &good, 2);
	kg_events__complete_end(ev);
	assert_string_equal(took(), "online k-1 c-1 10.0.0.1 v4 @2;");
	login(ev, &bad, KG_EVENTS_AUTH_DELAYED, 3);
	kg_events__complete_begin(ev, "c-9", false);
	kg_events__disconnect(ev, &bad);
	kg_events__complete_end(ev);
	assert_string_equal(took(), "");
	assert_int_equal(login(ev, &k2, KG_EVENTS_AUTH_OK, 4), KG_EVENTS_ID_ALLOWED);
	/* outside a completion the same DISCONNECT is an offline */
	kg_events__connect(ev, &k2, 4);
	took();
	kg_events__disconnect(ev, &good);
	assert_string_equal(took(), "offline k-1 c-1;");
	/* a successful completion's CONNECT does not hide a DISCONNECT of the same id */
	kg_events__complete_begin(ev, "c-9", true);
	kg_events__disconnect(ev, &k2);
	kg_events__complete_end(ev);
	assert_string_equal(took(), "offline k-2 c-9;");
	kg_events__free(ev);
}

/* 2.1 takeover of a connected id by the same kit: BASIC_AUTH(new); ACL_WRITE(old's will);
 * DISCONNECT(old, 142); CONNECT(new). And a persistent client reconnecting over its offline
 * session: BASIC_AUTH; DISCONNECT(142) of the old; CONNECT. */
static void test21_same_kit_takeover(void **state)
{
	struct kg_events *ev = new_events(true);
	struct kg_events_client old = kit(A, "k-1", "x"), new = kit(B, "k-1", "x"), k2 = kit(C, "k-2", "x");

	(void)state;
	login(ev, &old, KG_EVENTS_AUTH_OK, 1);
	kg_events__connect(ev, &old, 1);
	assert_string_equal(took(), "online k-1 x 10.0.0.1 v4 @1;");
	assert_int_equal(login(ev, &new, KG_EVENTS_AUTH_OK, 2), KG_EVENTS_ID_ALLOWED);
	acl_write(ev, A, topic_raw, payload_1, sizeof(payload_1), true);
	kg_events__disconnect(ev, &old);
	kg_events__connect(ev, &new, 3);
	assert_string_equal(took(), "will;offline k-1 x;online k-1 x 10.0.0.1 v4 @2;");
	assert_int_equal(login(ev, &k2, KG_EVENTS_AUTH_OK, 4), KG_EVENTS_ID_REFUSED);
	kg_events__free(ev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_publish_consumed_20),
		cmocka_unit_test(test_publish_consumed_21),
		cmocka_unit_test(test_retransmission),
		cmocka_unit_test(test_message_identity),
		cmocka_unit_test(test_wills_20),
		cmocka_unit_test(test_wills_21),
		cmocka_unit_test(test_will_at_cleanup),
		cmocka_unit_test(test20_online_at_tick),
		cmocka_unit_test(test20_password_file),
		cmocka_unit_test(test20_refused_login),
		cmocka_unit_test(test20_publish_before_tick),
		cmocka_unit_test(test20_gone_at_once),
		cmocka_unit_test(test_not_a_kit),
		cmocka_unit_test(test20_pending_bounded),
		cmocka_unit_test(test_takeovers_20),
		cmocka_unit_test(test_takeovers_21),
		cmocka_unit_test(test20_owner_settled_by_next_event),
		cmocka_unit_test(test_release_20),
		cmocka_unit_test(test_release_21),
		cmocka_unit_test(test_table_full),
		cmocka_unit_test(test20_same_kit_takeover),
		cmocka_unit_test(test_pointer_reuse),
		cmocka_unit_test(test21_online_at_connect),
		cmocka_unit_test(test21_offline_events),
		cmocka_unit_test(test21_refused_login),
		cmocka_unit_test(test21_delayed_ok),
		cmocka_unit_test(test21_delayed_refused),
		cmocka_unit_test(test21_same_kit_takeover),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
