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

/* HTTP Basic credentials with a NUL ("server:secret\0junk") are told apart from clean ones. */
static void test_basic_has_nul(void **state)
{
	(void)state;
	assert_false(kg_pwfile__basic_has_nul("Basic c2VydmVyOnB3"));             /* server:pw */
	assert_false(kg_pwfile__basic_has_nul("basic  c2VydmVyOnB3"));
	assert_false(kg_pwfile__basic_has_nul("Basic c2VydmVyOnB3eA=="));         /* server:pwx */
	assert_true(kg_pwfile__basic_has_nul("Basic c2VydmVyOnB3AGp1bms="));      /* server:pw\0junk */
	assert_true(kg_pwfile__basic_has_nul("Basic c2VydmVyOnB3AA=="));          /* server:pw\0 */
	assert_true(kg_pwfile__basic_has_nul("Basic AHNlcnZlcjpwdw=="));          /* \0server:pw */
	assert_true(kg_pwfile__basic_has_nul("Basic c2VydgBlcjpwdw=="));          /* serv\0er:pw */
	assert_false(kg_pwfile__basic_has_nul(NULL));
	assert_false(kg_pwfile__basic_has_nul("Basic"));
	assert_false(kg_pwfile__basic_has_nul("Basic c2VydmVyOnB"));              /* not base64 */
	assert_false(kg_pwfile__basic_has_nul(""));
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
		cmocka_unit_test(test_basic_has_nul),
		cmocka_unit_test(test_kits_sessions),
		cmocka_unit_test(test_kits_json_utf8),
		cmocka_unit_test(test_kits_eviction),
		cmocka_unit_test(test_rejection_ring),
		cmocka_unit_test(test_view),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
