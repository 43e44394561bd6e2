/* test_live_core.c -- the live view's pure modules: the mosquitto_passwd reader ($7$ PBKDF2, $6$
 * salted SHA-512 as mosquitto_passwd writes them, $6$ crypt(3) strings), the per-kit table
 * (sessions, eviction of offline kits, the rejection ring, status JSON) and the snapshot view
 * (reference counting, the test-measurement queue and its timeout). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "kitgate/kitdir.h"
#include "kitgate/kits.h"
#include "kitgate/pwfile.h"
#include "kitgate/utf8.h"
#include "kitgate/view.h"

/* Written by mosquitto_passwd 2.0.11 (-H sha512 for a6) and by crypt(3) for c6. */
static const char PWFILE[] =
	"# comment\n"
	"a7:$7$101$QCzrLlC8rYdCX3t3$Dz4j0WqN2qOLY08bgQmB7O5C686nAmoMC+KJPNAJ2OcT5q60zULy0cZ0VA1c0yiAbb9BtUSuZ5Kf7ogZ1PjKHg==\n"
	"a6:$6$au+dCC8K5+X2zpiy$t8WT+UH0zsO/cbkJztH26LuNzlqqoiR1JUEfwC5DGt7OJkLErvt07sHBTy6VlRBy+wUM3dAAz230X37x/gZ2kg==\n"
	"c6:$6$Y.Sh7iNhQ4eVGzUq$EufpprAUXoobrjSX0lK1AWKujiNHAdtUWEYvgkOa.lXjd45Nh/IDGZjIbCkh33OSOiLQPMde2kNpsPfPqTdB91\n"
	"plain:secret\n"
	"broken\n";

static void test_pwfile(void **state)
{
	char path[] = "/tmp/kg-pwfile-XXXXXX", err[200];
	struct kg_pwfile *pw;
	size_t skipped;
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, PWFILE, sizeof(PWFILE) - 1), (ssize_t)(sizeof(PWFILE) - 1));
	close(fd);
	pw = kg_pwfile__load(path, &skipped, err, sizeof(err));
	unlink(path);
	assert_non_null(pw);
	assert_int_equal(skipped, 2); /* "plain:secret" (no hash) and "broken" */
	assert_int_equal(kg_pwfile__check(pw, "a7", "secret7"), 1);
	assert_int_equal(kg_pwfile__check(pw, "a7", "secret6"), 0);
	assert_int_equal(kg_pwfile__check(pw, "a6", "secret6"), 1);
	assert_int_equal(kg_pwfile__check(pw, "a6", "secret6 "), 0);
	assert_int_equal(kg_pwfile__check(pw, "c6", "secretc"), 1);
	assert_int_equal(kg_pwfile__check(pw, "c6", "secret"), 0);
	assert_int_equal(kg_pwfile__check(pw, "nobody", "secret7"), 0);
	assert_int_equal(kg_pwfile__check(pw, "plain", "secret"), 0);
	assert_int_equal(kg_pwfile__check(pw, "a7", NULL), 0);
	kg_pwfile__free(pw);
	assert_null(kg_pwfile__load("/nonexistent/kg", NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/kg"));
}

struct visit_ctx {
	size_t visits, requeue_left;
};

static bool visit_cb(struct kg_kit *kit, void *arg)
{
	struct visit_ctx *c = arg;

	c->visits++;
	kit->dirty = kit->view_dirty = false;
	if(c->requeue_left){
		c->requeue_left--;
		return true;
	}
	return false;
}

/* The broker thread's work per tick is bounded whatever the number of kits: 20,000 kits changed at
 * once are visited at most max per call, each at most once per call, all within N/max calls. */
static void test_kits_changed_queue_bounded(void **state)
{
	enum { N = 20000, MAX = 256 };
	struct kg_kits *k = kg_kits__new(N);
	struct visit_ctx c = {0, 0};
	char serial[32];
	size_t calls = 0, n, online;
	int i;

	(void)state;
	for(i = 0; i < N; i++){
		snprintf(serial, sizeof(serial), "k-%05d", i);
		assert_non_null(kg_kits__get(k, serial, strlen(serial)));
	}
	assert_int_equal(kg_kits__queued(k), N);
	while((n = kg_kits__visit_changed(k, MAX, visit_cb, &c)) > 0){
		assert_true(n <= MAX);
		calls++;
	}
	assert_int_equal(c.visits, N);
	assert_int_equal(calls, (N + MAX - 1) / MAX);
	assert_int_equal(kg_kits__queued(k), 0);
	/* touching one kit queues it once, however often */
	kg_kits__touch(k, kg_kits__find(k, "k-00007", 7), 5);
	kg_kits__touch(k, kg_kits__find(k, "k-00007", 7), 6);
	assert_int_equal(kg_kits__queued(k), 1);
	/* a kit that asks to come back is visited once per call, not in a loop */
	c.visits = 0;
	c.requeue_left = 1000;
	assert_int_equal(kg_kits__visit_changed(k, MAX, visit_cb, &c), 1);
	assert_int_equal(c.visits, 1);
	assert_int_equal(kg_kits__queued(k), 1);
	/* online count without a scan */
	kg_kits__session_open(k, kg_kits__find(k, "k-00001", 7), "a", 7);
	kg_kits__session_open(k, kg_kits__find(k, "k-00002", 7), "b", 7);
	kg_kits__session_close(k, kg_kits__find(k, "k-00002", 7), "b", 8);
	kg_kits__count(k, &online);
	assert_int_equal(online, 1);
	kg_kits__free(k);
}

/* kg_kits__visit_due (issue 20): a kit that is not due waits in the wheel and costs nothing per
 * call (with visit_changed, 1,000 kits waiting for their 10 s status were looked at 256 a TICK,
 * and mosquitto 2.0 runs TICK on every loop iteration: 7 % of the broker's CPU at 1,000 kits). */
struct due_ctx {
	size_t visits;
	int64_t due;      /* what the callback answers */
	bool keep_dirty;  /* leave dirty/view_dirty set (waiting for a status cadence) */
};

static int64_t due_cb(struct kg_kit *kit, void *arg)
{
	struct due_ctx *c = arg;

	c->visits++;
	if(!c->keep_dirty) kit->dirty = kit->view_dirty = false;
	kit->urgent = false;
	return c->due;
}

static void test_kits_visit_due(void **state)
{
	enum { N = 20000, MAX = 256 };
	struct kg_kits *k = kg_kits__new(N);
	struct due_ctx c = {0, 0, true};
	int64_t now = 1000000;
	char serial[32];
	size_t n, calls = 0, i;

	(void)state;
	for(i = 0; i < N; i++){
		snprintf(serial, sizeof(serial), "k-%05zu", i);
		assert_non_null(kg_kits__get(k, serial, strlen(serial)));
	}
	/* every kit visited once, MAX per call, each then waiting 5 s */
	c.due = now + 5000;
	while((n = kg_kits__visit_due(k, MAX, now, due_cb, &c)) > 0){
		assert_true(n <= MAX);
		calls++;
	}
	assert_int_equal(c.visits, N);
	assert_int_equal(calls, (N + MAX - 1) / MAX);
	assert_int_equal(kg_kits__queued(k), N); /* waiting, not lost */
	/* not due: no visit at all, however often it is called */
	c.visits = 0;
	for(i = 0; i < 1000; i++){
		now += 4;
		assert_int_equal(kg_kits__visit_due(k, MAX, now, due_cb, &c), 0);
	}
	assert_int_equal(c.visits, 0);
	/* a counter change of a waiting kit (already dirty, not urgent) keeps it waiting */
	kg_kits__touch(k, kg_kits__find(k, "k-00007", 7), 1);
	assert_int_equal(kg_kits__visit_due(k, MAX, now, due_cb, &c), 0);
	/* an urgent change (online state) moves it to the changed queue: visited at once */
	kg_kits__session_open(k, kg_kits__find(k, "k-00007", 7), "a", 2);
	assert_int_equal(kg_kits__visit_due(k, MAX, now, due_cb, &c), 1);
	assert_int_equal(c.visits, 1);
	/* once due (5 s after, plus at most one slot), every kit comes back, MAX per call, once each */
	now = 1000000 + 5000 + KG_KITS_WHEEL_MS;
	c.visits = 0;
	c.due = 0;
	c.keep_dirty = false;
	calls = 0;
	while((n = kg_kits__visit_due(k, MAX, now, due_cb, &c)) > 0) calls++;
	assert_int_equal(c.visits, N);
	assert_int_equal(calls, (N + MAX - 1) / MAX);
	assert_int_equal(kg_kits__queued(k), 0);
	/* a due time past the wheel's span: visited at the span's end, and may ask again */
	kg_kits__touch(k, kg_kits__find(k, "k-00009", 7), 3);
	c.visits = 0;
	c.due = now + 60000;
	c.keep_dirty = true;
	assert_int_equal(kg_kits__visit_due(k, MAX, now, due_cb, &c), 1);
	assert_int_equal(kg_kits__visit_due(k, MAX, now + KG_KITS_WHEEL_SPAN_MS - 2 * KG_KITS_WHEEL_MS, due_cb, &c), 0);
	assert_int_equal(kg_kits__visit_due(k, MAX, now + KG_KITS_WHEEL_SPAN_MS + KG_KITS_WHEEL_MS, due_cb, &c), 1);
	assert_int_equal(c.visits, 2);
	assert_int_equal(kg_kits__queued(k), 1);
	kg_kits__free(k);
}

struct evict_ctx {
	char last[KG_SERIAL_MAX + 1];
	size_t n;
};

static void on_evict(struct kg_kit *kit, void *arg)
{
	struct evict_ctx *e = arg;

	snprintf(e->last, sizeof(e->last), "%s", kit->serial);
	e->n++;
}

/* The eviction hook sees each evicted kit (the plugin clears its retained status there), and an
 * evicted kit leaves the changed queue. */
static void test_kits_evict_hook(void **state)
{
	struct kg_kits *k = kg_kits__new(2);
	struct evict_ctx e = {"", 0};

	(void)state;
	kg_kits__on_evict(k, on_evict, &e);
	assert_non_null(kg_kits__get(k, "k-a", 3));
	assert_non_null(kg_kits__get(k, "k-b", 3));
	assert_int_equal(kg_kits__queued(k), 2);
	assert_non_null(kg_kits__get(k, "k-c", 3));
	assert_int_equal(e.n, 1);
	assert_string_equal(e.last, "k-a");
	assert_int_equal(kg_kits__queued(k), 2);
	kg_kits__free(k);
}

/* The kit directory: pages sorted by serial, a cursor, a prefix search, streams with their kit,
 * removal, the client-id map. */
static void test_kitdir(void **state)
{
	struct kg_kitdir *d = kg_kitdir__new(100);
	char serial[32], json[64], next[KG_SERIAL_MAX + 1], *t;
	const char *cids[1];
	size_t total;
	int i;

	(void)state;
	for(i = 99; i >= 0; i--){
		snprintf(serial, sizeof(serial), "k-%03d", i);
		snprintf(json, sizeof(json), "{\"serial\":\"%s\"}", serial);
		cids[0] = i == 42 ? "cid-42" : NULL;
		kg_kitdir__put_kit(d, serial, json, strlen(json), cids, 1);
	}
	kg_kitdir__put_stream(d, "kit/k-005/stats/51/2", "{\"avg_1min\":1}", 14);
	kg_kitdir__put_stream(d, "greenhouse/x/stats", "{\"avg_1min\":2}", 14);
	t = kg_kitdir__kits(d, NULL, NULL, 0, 3, &total, next);
	assert_string_equal(t, "[{\"serial\":\"k-000\",\"streams\":[]},{\"serial\":\"k-001\",\"streams\":[]},"
			"{\"serial\":\"k-002\",\"streams\":[]}]");
	assert_int_equal(total, 100);
	assert_string_equal(next, "k-002");
	free(t);
	t = kg_kitdir__kits(d, NULL, next, 0, 3, &total, next);
	assert_non_null(strstr(t, "[{\"serial\":\"k-003\""));
	assert_non_null(strstr(t, "{\"serial\":\"k-005\",\"streams\":[{\"topic\":\"kit/k-005/stats/51/2\","
			"\"peripheral\":51,\"quantity_type\":2,\"avg_1min\":1}]}"));
	free(t);
	t = kg_kitdir__kits(d, "k-09", NULL, 0, 100, &total, next);
	assert_int_equal(total, 10);
	assert_string_equal(next, "");
	assert_non_null(strstr(t, "k-099"));
	assert_null(strstr(t, "k-089"));
	free(t);
	t = kg_kitdir__kits(d, NULL, NULL, 98, 10, &total, next);
	assert_string_equal(t, "[{\"serial\":\"k-098\",\"streams\":[]},{\"serial\":\"k-099\",\"streams\":[]}]");
	free(t);
	t = kg_kitdir__streams(d, 0, 10, &total);
	assert_string_equal(t, "[{\"topic\":\"greenhouse/x/stats\",\"avg_1min\":2}]");
	free(t);
	t = kg_kitdir__client(d, "cid-42");
	assert_string_equal(t, "{\"serial\":\"k-042\",\"streams\":[]}");
	free(t);
	kg_kitdir__remove_kit(d, "k-042");
	assert_null(kg_kitdir__kit(d, "k-042"));
	assert_null(kg_kitdir__client(d, "cid-42"));
	assert_int_equal(kg_kitdir__count(d), 99);
	usleep((KG_KITDIR_INDEX_MS + 50) * 1000);
	t = kg_kitdir__kits(d, NULL, NULL, 0, 1000, &total, next);
	assert_int_equal(total, 99);
	assert_null(strstr(t, "k-042"));
	free(t);
	kg_kitdir__remove_stream(d, "kit/k-005/stats/51/2");
	t = kg_kitdir__kit(d, "k-005");
	assert_string_equal(t, "{\"serial\":\"k-005\",\"streams\":[]}");
	free(t);
	kg_kitdir__free(d);
}

static void test_kits_sessions(void **state)
{
	struct kg_kits *k = kg_kits__new(10);
	struct kg_kit *kit;
	size_t online;
	char buf[2048];

	(void)state;
	kit = kg_kits__get(k, "k-1xyz", 3);
	assert_non_null(kit);
	assert_string_equal(kit->serial, "k-1");
	assert_ptr_equal(kg_kits__find(k, "k-1", 3), kit);
	assert_null(kg_kits__find(k, "k-2", 3));
	kg_kits__session_open(k, kit, "persistent", 1000);
	kg_kits__session_open(k, kit, "short", 2000);
	assert_int_equal(kit->connections, 2);
	assert_string_equal(kit->client_id, "short");
	kg_kits__session_close(k, kit, "short", 3000);
	assert_int_equal(kit->connections, 1);
	assert_string_equal(kit->client_id, "persistent"); /* back to the open session */
	kg_kits__count(k, &online);
	assert_int_equal(online, 1);
	kit->accepted = 3;
	kit->rejected[KG_BAD_VALUE] = 2;
	kg_kits__format_json(kit, buf, sizeof(buf));
	assert_non_null(strstr(buf, "\"serial\":\"k-1\",\"online\":true,\"client_id\":\"persistent\",\"sessions\":[\"persistent\"]"));
	assert_non_null(strstr(buf, "\"accepted\":3,\"rejected\":{\"too_large\":0,"));
	assert_non_null(strstr(buf, "\"bad_value\":2"));
	kg_kits__session_close(k, kit, "persistent", 4000);
	kg_kits__format_json(kit, buf, sizeof(buf));
	assert_non_null(strstr(buf, "\"online\":false,\"client_id\":\"persistent\",\"sessions\":[]"));
	assert_non_null(strstr(buf, "\"last_seen\":4000"));
	/* escaping */
	kg_kits__session_open(k, kit, "a\"b\\c\n", 5000);
	kg_kits__format_json(kit, buf, sizeof(buf));
	assert_non_null(strstr(buf, "\"client_id\":\"a\\\"b\\\\c\\u000a\""));
	/* too long or empty serials are refused */
	assert_null(kg_kits__get(k, "x", 0));
	assert_null(kg_kits__get(k, "0123456789012345678901234567890123456789012345678901234567890123456789", 70));
	kg_kits__free(k);
}

/* The client ids a kit remembers (allocated to their length since issue 20, no longer inline):
 * the latest open session's id, back to the newest still open when it closes, the last one kept
 * while offline, ids truncated at KG_KITS_CLIENT_ID_MAX bytes, at most KG_KITS_SESSIONS open
 * sessions remembered (the oldest forgotten). Valgrind and ASan see any leak or double free. */
static void test_kits_session_ids(void **state)
{
	struct kg_kits *k = kg_kits__new(4);
	struct kg_kit *kit = kg_kits__get(k, "k-1", 3);
	char longid[300], buf[4096];
	int i;

	(void)state;
	assert_true(sizeof(struct kg_kit) <= KG_KITS_KIT_MAX_BYTES);
	assert_true(sizeof(struct kg_kit) < 968 / 2); /* what the inline ids cost before */
	assert_string_equal(kit->client_id, "");
	assert_int_equal(kit->nsessions, 0);
	memset(longid, 'x', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = '\0';
	kg_kits__session_open(k, kit, longid, 1);
	assert_int_equal(strlen(kit->client_id), KG_KITS_CLIENT_ID_MAX);
	assert_int_equal(strncmp(kit->client_id, longid, KG_KITS_CLIENT_ID_MAX), 0);
	kg_kits__session_close(k, kit, longid, 2); /* matched on the truncated id */
	assert_int_equal(kit->connections, 0);
	assert_int_equal(kit->nsessions, 0);
	assert_int_equal(strlen(kit->client_id), KG_KITS_CLIENT_ID_MAX); /* the last one, kept */
	/* six sessions: the four newest remembered */
	for(i = 0; i < 6; i++){
		char id[8];

		snprintf(id, sizeof(id), "s%d", i);
		kg_kits__session_open(k, kit, id, 10 + i);
	}
	assert_int_equal(kit->connections, 6);
	assert_int_equal(kit->nsessions, KG_KITS_SESSIONS);
	assert_string_equal(kit->sessions[0], "s2");
	assert_string_equal(kit->client_id, "s5");
	kg_kits__session_close(k, kit, "s3", 20);  /* not the latest: client_id unchanged */
	assert_string_equal(kit->client_id, "s5");
	assert_int_equal(kit->nsessions, 3);
	kg_kits__session_close(k, kit, "s5", 21);  /* the latest: back to the newest open */
	assert_string_equal(kit->client_id, "s4");
	kg_kits__session_close(k, kit, "s0", 22);  /* forgotten: nothing to remove */
	assert_int_equal(kit->nsessions, 2);
	kg_kits__format_json(kit, buf, sizeof(buf));
	assert_non_null(strstr(buf, "\"client_id\":\"s4\",\"sessions\":[\"s2\",\"s4\"]"));
	kg_kits__session_close(k, kit, NULL, 23);
	kg_kits__session_close(k, kit, NULL, 24);
	assert_int_equal(kit->connections, 1);
	assert_int_equal(kit->nsessions, 2);
	kg_kits__session_close(k, kit, "nobody", 25); /* offline: the unmatched sessions forgotten */
	assert_int_equal(kit->connections, 0);
	assert_int_equal(kit->nsessions, 0);
	assert_string_equal(kit->client_id, "s4");
	kg_kits__session_open(k, kit, NULL, 26);      /* no client id: "" */
	assert_string_equal(kit->client_id, "");
	assert_int_equal(kit->nsessions, 1);
	/* evicted and freed with open-session ids and with an offline kit's own copy */
	kg_kits__session_open(k, kg_kits__get(k, "k-2", 3), "two", 27);
	kit = kg_kits__get(k, "k-3", 3);
	kg_kits__session_open(k, kit, "three", 28);
	kg_kits__session_close(k, kit, "three", 29);
	kg_kits__get(k, "k-4", 3);
	assert_non_null(kg_kits__get(k, "k-5", 3)); /* evicts k-3 (offline, own copy of its id) */
	assert_null(kg_kits__find(k, "k-3", 3));
	kg_kits__free(k);
}

/* Serials and client ids are arbitrary bytes (the HTTP API decodes %FF): the JSON stays valid UTF-8,
 * a byte that starts no valid sequence becomes U+FFFD and valid multi-byte sequences pass. */
static void test_kits_json_utf8(void **state)
{
	struct kg_kits *k = kg_kits__new(4);
	struct kg_kit *kit;
	char buf[2048];
	size_t n;

	(void)state;
	kit = kg_kits__get(k, "k\xff\xc3", 3);
	assert_non_null(kit);
	kg_kits__session_open(k, kit, "\xe2\x82\xac-\xe2\x82-\xed\xa0\x80", 1000);
	n = kg_kits__format_json(kit, buf, sizeof(buf));
	assert_true(n < sizeof(buf));
	assert_true(kg_utf8__valid((const uint8_t *)buf, n));
	assert_non_null(strstr(buf, "\"serial\":\"k\\ufffd\\ufffd\""));
	assert_non_null(strstr(buf, "\"client_id\":\"\xe2\x82\xac-\\ufffd\\ufffd-\\ufffd\\ufffd\\ufffd\""));
	kg_kits__free(k);
}

static void test_kits_eviction(void **state)
{
	struct kg_kits *k = kg_kits__new(2);
	struct kg_kit *a, *b;

	(void)state;
	a = kg_kits__get(k, "a", 1);
	b = kg_kits__get(k, "b", 1);
	kg_kits__session_open(k, a, "ca", 1);
	kg_kits__session_open(k, b, "cb", 2);
	assert_null(kg_kits__get(k, "c", 1)); /* all online: nothing evicted */
	kg_kits__session_close(k, a, "ca", 3);
	kg_kits__touch(k, b, 4);
	assert_non_null(kg_kits__get(k, "c", 1)); /* a (offline) evicted */
	assert_null(kg_kits__find(k, "a", 1));
	assert_int_equal(kg_kits__evicted(k), 1);
	kg_kits__free(k);

	/* offline kits go least recently seen first; seeing an offline kit (a service user's publish)
	 * makes it the most recent; going online takes a kit out of the running */
	k = kg_kits__new(3);
	a = kg_kits__get(k, "a", 1);
	b = kg_kits__get(k, "b", 1);
	assert_non_null(kg_kits__get(k, "c", 1));
	kg_kits__touch(k, a, 10);                 /* order now b, c, a */
	kg_kits__session_open(k, b, "cb", 11);    /* b online: c is the oldest offline */
	assert_non_null(kg_kits__get(k, "d", 1));
	assert_null(kg_kits__find(k, "c", 1));
	assert_non_null(kg_kits__find(k, "a", 1));
	kg_kits__session_close(k, b, "cb", 12);   /* offline again, most recently seen: a, d, b */
	assert_non_null(kg_kits__get(k, "e", 1));
	assert_null(kg_kits__find(k, "a", 1));
	assert_non_null(kg_kits__find(k, "b", 1));
	assert_int_equal(kg_kits__evicted(k), 2);
	kg_kits__free(k);
}

static int nrej;
static char first_rej[512];
static void rej_cb(const struct kg_rejection *r, void *arg)
{
	(void)arg;
	if(nrej++ == 0) snprintf(first_rej, sizeof(first_rej), "%lld %s %s %s %s", (long long)r->at_ms,
			kg_reason__name(r->reason), r->serial, r->topic, r->detail);
}

static void test_rejection_ring(void **state)
{
	struct kg_kits *k = kg_kits__new(4);
	int i;

	(void)state;
	for(i = 0; i < KG_KITS_REJECTIONS + 5; i++){
		kg_kits__reject(k, i, KG_BAD_TIME, "k-9abc", 3, "kit/k-9/measurement/raw", i % 2 ? "datetime" : NULL);
	}
	nrej = 0;
	kg_kits__rejections(k, rej_cb, NULL);
	assert_int_equal(nrej, KG_KITS_REJECTIONS);
	assert_string_equal(first_rej, "204 bad_time k-9 kit/k-9/measurement/raw ");
	kg_kits__free(k);
}

struct submitter {
	struct kg_view *v;
	struct kg_test_req *req;
	int rc;
};

static void *submit_thread(void *arg)
{
	struct submitter *s = arg;

	s->rc = kg_view__submit(s->v, s->req, 5000);
	return NULL;
}

static void test_view(void **state)
{
	struct kg_view *v = kg_view__new();
	struct kg_view_snapshot *s1, *s2, *s3;
	struct submitter sub;
	struct kg_test_req *req, *got = NULL;
	pthread_t th;
	int i;

	(void)state;
	assert_null(kg_view__acquire(v));
	assert_false(kg_view__wanted(v, 2000)); /* nobody asked: the broker builds nothing */
	assert_null(kg_view__acquire_fresh(v, 600, 20)); /* waits, asks, finds none */
	assert_true(kg_view__wanted(v, 2000));
	kg_view__publish(v, cJSON_CreateObject(), strdup("m1"), 1);
	s1 = kg_view__acquire(v);
	assert_string_equal(s1->metrics, "m1");
	kg_view__publish(v, cJSON_CreateObject(), strdup("m2"), 2);
	assert_string_equal(s1->metrics, "m1"); /* still valid: we hold it */
	s2 = kg_view__wait_newer(v, s1->seq, 10);
	assert_non_null(s2);
	assert_string_equal(s2->metrics, "m2");
	assert_null(kg_view__wait_newer(v, s2->seq, 10)); /* timeout */
	s3 = kg_view__acquire_fresh(v, 60000, 10); /* fresh enough: no wait */
	assert_ptr_equal(s3, s2);
	kg_view__release(v, s3);
	kg_view__release(v, s1);
	kg_view__release(v, s2);

	/* a request answered by the "broker thread" (this one) */
	req = calloc(1, sizeof(*req));
	req->refs = 1;
	sub.v = v;
	sub.req = req;
	pthread_create(&th, NULL, submit_thread, &sub);
	for(i = 0; i < 500 && !got; i++){
		got = kg_view__take_requests(v);
		if(!got) usleep(2000);
	}
	assert_ptr_equal(got, req);
	kg_view__complete(v, got, 202, "ok");
	pthread_join(th, NULL);
	assert_int_equal(sub.rc, 0);
	assert_int_equal(req->status, 202);
	kg_view__req_release(v, req);

	/* a request nobody answers in time: the submitter gets -1, the late completion frees it */
	req = calloc(1, sizeof(*req));
	req->refs = 1;
	assert_int_equal(kg_view__submit(v, req, 20), -1);
	kg_view__req_release(v, req);
	got = kg_view__take_requests(v);
	assert_ptr_equal(got, req);
	kg_view__complete(v, got, 202, "late");
	assert_null(kg_view__take_requests(v));
	kg_view__stop(v);
	assert_null(kg_view__wait_newer(v, 0, 1000)); /* returns at once when stopping */
	kg_view__free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pwfile),
		cmocka_unit_test(test_kits_sessions),
		cmocka_unit_test(test_kits_session_ids),
		cmocka_unit_test(test_kits_changed_queue_bounded),
		cmocka_unit_test(test_kits_visit_due),
		cmocka_unit_test(test_kits_evict_hook),
		cmocka_unit_test(test_kitdir),
		cmocka_unit_test(test_kits_json_utf8),
		cmocka_unit_test(test_kits_eviction),
		cmocka_unit_test(test_rejection_ring),
		cmocka_unit_test(test_view),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
