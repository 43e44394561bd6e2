/* test_authpool.c -- plugin/auth/authpool.c: delayed kit logins. Without threads (run_one): results
 * come back in order with the right verdicts; a job superseded by a newer login of the same client
 * id is never hashed (queued) or comes back stale (ran); one pending check per serial; the slot
 * budget and the suspect half; slots come back when results are taken. With threads: a storm of
 * checks all come back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "kitgate/authpool.h"
#include "kitgate/pbkdf2.h"

static char hash_str[256];
static struct kg_pbkdf2 h;

static int setup(void **state)
{
	(void)state;
	assert_int_equal(kg_pbkdf2__format(KG_PBKDF2_SHA256, 1000, "salt", "pw", 32, hash_str, sizeof(hash_str)), 0);
	assert_int_equal(kg_pbkdf2__parse(hash_str, &h, NULL), 0);
	return 0;
}

static enum kg_authpool_submit sub(struct kg_authpool *ap, const char *id, const char *serial,
		const char *pw, enum kg_authpool_class cls)
{
	return kg_authpool__submit(ap, id, serial, serial, hash_str, &h, pw, strlen(pw), cls);
}

static void test_results_in_order(void **state)
{
	struct kg_authpool *ap = kg_authpool__new(0, 8);
	struct kg_authresult r;

	(void)state;
	assert_non_null(ap);
	assert_int_equal(sub(ap, "c1", "k1", "pw", KG_AUTHPOOL_CLEAN), KG_AUTHPOOL_QUEUED);
	assert_int_equal(sub(ap, "c2", "k2", "wrong", KG_AUTHPOOL_CLEAN), KG_AUTHPOOL_QUEUED);
	assert_int_equal(kg_authpool__pending(ap), 2);
	assert_int_equal(kg_authpool__take(ap, &r), 0);        /* nothing ran yet */
	assert_int_equal(kg_authpool__run_one(ap), 1);
	assert_int_equal(kg_authpool__run_one(ap), 1);
	assert_int_equal(kg_authpool__run_one(ap), 0);
	assert_int_equal(kg_authpool__take(ap, &r), 1);
	assert_string_equal(r.client_id, "c1");
	assert_string_equal(r.serial, "k1");
	assert_string_equal(r.hash, hash_str);
	assert_int_equal(r.pwlen, 2);
	assert_memory_equal(r.password, "pw", 2);
	assert_int_equal(r.verdict, 1);
	assert_false(r.stale);
	kg_authpool__release(ap, &r);
	assert_int_equal(kg_authpool__take(ap, &r), 1);
	assert_string_equal(r.client_id, "c2");
	assert_int_equal(r.verdict, 0);
	kg_authpool__release(ap, &r);
	assert_int_equal(kg_authpool__pending(ap), 0);
	kg_authpool__free(ap);
}

/* The same client id logs in again while its first check is queued: the old job is dropped
 * unhashed, only the new one comes back. */
static void test_supersede_queued(void **state)
{
	struct kg_authpool *ap = kg_authpool__new(0, 8);
	struct kg_authpool_counters c;
	struct kg_authresult r;

	(void)state;
	assert_int_equal(sub(ap, "same", "k1", "pw", KG_AUTHPOOL_CLEAN), KG_AUTHPOOL_QUEUED);
	/* a different serial under the same client id (the old client is gone) */
	assert_int_equal(sub(ap, "same", "k2", "wrong", KG_AUTHPOOL_CLEAN), KG_AUTHPOOL_QUEUED);
	assert_int_equal(kg_authpool__pending(ap), 1);
	assert_int_equal(kg_authpool__run_one(ap), 1);
	assert_int_equal(kg_authpool__run_one(ap), 0);
	assert_int_equal(kg_authpool__take(ap, &r), 1);
	assert_string_equal(r.serial, "k2");
	assert_int_equal(r.verdict, 0);          /* the newcomer's own (wrong) secret decides */
	assert_false(r.stale);
	kg_authpool__release(ap, &r);
	assert_int_equal(kg_authpool__take(ap, &r), 0);
	kg_authpool__counters(ap, &c);
	assert_int_equal(c.superseded, 1);
	assert_int_equal(c.skipped, 1);
	assert_int_equal(c.hashed, 1);
	kg_authpool__free(ap);
}

/* Superseded after its hash ran: it comes back stale (never completes a login), the newcomer's
 * job comes back fresh. */
static void test_supersede_done(void **state)
{
	struct kg_authpool *ap = kg_authpool__new(0, 8);
	struct kg_authresult r;

	(void)state;
	assert_int_equal(sub(ap, "same", "k1", "pw", KG_AUTHPOOL_CLEAN), KG_AUTHPOOL_QUEUED);
	assert_int_equal(kg_authpool__run_one(ap), 1);
	assert_int_equal(sub(ap, "same", "k2", "wrong", KG_AUTHPOOL_CLEAN), KG_AUTHPOOL_QUEUED);
	assert_int_equal(kg_authpool__run_one(ap), 1);
	assert_int_equal(kg_authpool__take(ap, &r), 1);
	assert_string_equal(r.serial, "k1");
	assert_int_equal(r.verdict, 1);
	assert_true(r.stale);
	kg_authpool__release(ap, &r);
	assert_int_equal(kg_authpool__take(ap, &r), 1);
	assert_string_equal(r.serial, "k2");
	assert_false(r.stale);
	kg_authpool__release(ap, &r);
	kg_authpool__free(ap);
}

/* One pending check per serial; once its result is taken the serial may queue again. */
static void test_one_per_serial(void **state)
{
	struct kg_authpool *ap = kg_authpool__new(0, 8);
	struct kg_authresult r;

	(void)state;
	assert_int_equal(sub(ap, "a", "k1", "pw", KG_AUTHPOOL_CLEAN), KG_AUTHPOOL_QUEUED);
	assert_int_equal(sub(ap, "b", "k1", "x", KG_AUTHPOOL_CLEAN), KG_AUTHPOOL_BUSY);
	assert_int_equal(sub(ap, "c", "k1", "y", KG_AUTHPOOL_CLEAN), KG_AUTHPOOL_BUSY);
	assert_int_equal(kg_authpool__pending(ap), 1);
	assert_int_equal(kg_authpool__run_one(ap), 1);
	/* done but not taken: still pending for the serial */
	assert_int_equal(sub(ap, "b", "k1", "x", KG_AUTHPOOL_CLEAN), KG_AUTHPOOL_BUSY);
	assert_int_equal(kg_authpool__take(ap, &r), 1);
	kg_authpool__release(ap, &r);
	assert_int_equal(sub(ap, "b", "k1", "x", KG_AUTHPOOL_CLEAN), KG_AUTHPOOL_QUEUED);
	kg_authpool__free(ap);                     /* frees a queued job */
}

/* max_pending slots; suspects only below half; taking a result frees a slot. */
static void test_slots(void **state)
{
	struct kg_authpool *ap = kg_authpool__new(0, 4);
	struct kg_authpool_counters c;
	struct kg_authresult r;

	(void)state;
	assert_int_equal(sub(ap, "s1", "bad1", "x", KG_AUTHPOOL_SUSPECT), KG_AUTHPOOL_QUEUED);
	assert_int_equal(sub(ap, "s2", "bad2", "x", KG_AUTHPOOL_SUSPECT), KG_AUTHPOOL_QUEUED);
	assert_int_equal(sub(ap, "s3", "bad3", "x", KG_AUTHPOOL_SUSPECT), KG_AUTHPOOL_FULL); /* half used */
	assert_int_equal(sub(ap, "c1", "k1", "pw", KG_AUTHPOOL_CLEAN), KG_AUTHPOOL_QUEUED);
	assert_int_equal(sub(ap, "c2", "k2", "pw", KG_AUTHPOOL_CLEAN), KG_AUTHPOOL_QUEUED);
	assert_int_equal(sub(ap, "c3", "k3", "pw", KG_AUTHPOOL_CLEAN), KG_AUTHPOOL_FULL);
	assert_int_equal(kg_authpool__pending(ap), 4);
	assert_int_equal(kg_authpool__run_one(ap), 1);
	/* ran but not taken: the slot is still used */
	assert_int_equal(sub(ap, "c3", "k3", "pw", KG_AUTHPOOL_CLEAN), KG_AUTHPOOL_FULL);
	assert_int_equal(kg_authpool__take(ap, &r), 1);
	kg_authpool__release(ap, &r);
	assert_int_equal(sub(ap, "c3", "k3", "pw", KG_AUTHPOOL_CLEAN), KG_AUTHPOOL_QUEUED);
	kg_authpool__counters(ap, &c);
	assert_int_equal(c.full, 3);
	assert_int_equal(c.submitted, 5);
	kg_authpool__free(ap);
}

/* Real threads: 200 checks of 200 serials all come back, each with its own verdict. */
static void test_threads_storm(void **state)
{
	struct kg_authpool *ap = kg_authpool__new(2, 256);
	struct kg_authresult r;
	char id[32], serial[32];
	int i, got = 0, ok = 0, spins = 0;

	(void)state;
	assert_non_null(ap);
	for(i = 0; i < 200; i++){
		snprintf(id, sizeof(id), "c%d", i);
		snprintf(serial, sizeof(serial), "k%d", i);
		assert_int_equal(sub(ap, id, serial, i % 2 ? "pw" : "no", KG_AUTHPOOL_CLEAN), KG_AUTHPOOL_QUEUED);
	}
	while(got < 200){
		if(kg_authpool__take(ap, &r)){
			int n = atoi(r.serial + 1);
			assert_int_equal(r.verdict, n % 2 ? 1 : 0);
			ok += r.verdict;
			got++;
			kg_authpool__release(ap, &r);
		}else{
			struct timespec ts = { 0, 1000000 };
			nanosleep(&ts, NULL);
			assert_true(++spins < 60000);
		}
	}
	assert_int_equal(ok, 100);
	assert_int_equal(kg_authpool__pending(ap), 0);
	kg_authpool__free(ap);
}

/* Freeing a pool with checks queued and running: no leak, no hang (ASan/valgrind judge). */
static void test_free_busy(void **state)
{
	struct kg_authpool *ap = kg_authpool__new(2, 64);
	char id[32];
	int i;

	(void)state;
	for(i = 0; i < 50; i++){
		snprintf(id, sizeof(id), "c%d", i);
		assert_int_equal(sub(ap, id, id, "pw", KG_AUTHPOOL_CLEAN), KG_AUTHPOOL_QUEUED);
	}
	kg_authpool__free(ap);
}

static void test_bad_args(void **state)
{
	(void)state;
	assert_null(kg_authpool__new(-1, 8));
	assert_null(kg_authpool__new(1, 1));
	assert_null(kg_authpool__new(257, 8));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_results_in_order),
		cmocka_unit_test(test_supersede_queued),
		cmocka_unit_test(test_supersede_done),
		cmocka_unit_test(test_one_per_serial),
		cmocka_unit_test(test_slots),
		cmocka_unit_test(test_threads_storm),
		cmocka_unit_test(test_free_busy),
		cmocka_unit_test(test_bad_args),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
