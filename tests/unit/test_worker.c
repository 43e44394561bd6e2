/* test_worker.c -- the worker (worker.h) driven through a fake sink: settling and the checkpoint,
 * partial submits, partial failure with rewind and replay, shutdown drain within the deadline,
 * crash replay from the spool, foreign records, memory-only loss, and two independent streams. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "kitgate/handoff.h"
#include "kitgate/record.h"
#include "kitgate/sink.h"
#include "kitgate/spool.h"
#include "kitgate/worker.h"

#define NVAL 2000

/* ---- fake sink --------------------------------------------------------------------------------
 * Records are RAW measurements whose value is their index. The fake keeps what was submitted and
 * reports it at the next poll, unless `stuck` (a server that is down: nothing is ever reported). */
struct fake {
	void *items[NVAL * 2];
	int vals[NVAL * 2];
	size_t n;                 /* submitted, not reported */
	size_t cap;               /* in-flight bound (partial submits); 0 = none */
	size_t max_total;         /* accept no more than this many in all; 0 = no bound */
	int fail_val;             /* report FAILED for this value once; -1 = never */
	int reject_val;           /* always REJECTED "bad_row"; -1 = never */
	int stuck;                /* set by the test thread: __atomic accesses */
	int ok_count[NVAL];       /* OK reports per value */
	int rejected_count[NVAL];
	int submitted_order[NVAL * 4];
	size_t nsubmitted;
	size_t rewinds, reported_after_free;
	int freed;
};

static size_t fake_submit(void *state, const struct kg_record *recs, void *const *items, size_t n)
{
	struct fake *f = state;
	size_t i;

	for(i = 0; i < n; i++){
		if(f->cap && f->n >= f->cap) break;
		if(f->max_total && f->nsubmitted >= f->max_total) break;
		assert_int_equal(recs[i].kind, KG_KIND_RAW);
		f->items[f->n] = items[i];
		f->vals[f->n] = (int)recs[i].value;
		f->n++;
		if(f->nsubmitted < NVAL * 4) f->submitted_order[f->nsubmitted++] = (int)recs[i].value;
	}
	return i;
}

static size_t fake_poll(void *state, int timeout_ms, kg_sink_report_fn report, void *ud)
{
	struct fake *f = state;
	size_t i, n = f->n;

	if(__atomic_load_n(&f->stuck, __ATOMIC_RELAXED) || n == 0){
		if(timeout_ms > 0){
			struct timespec ts = { 0, (long)timeout_ms * 1000000L };
			nanosleep(&ts, NULL);
		}
		return 0;
	}
	f->n = 0;
	for(i = 0; i < n; i++){
		int v = f->vals[i];
		if(v == f->fail_val){
			f->fail_val = -1;
			report(f->items[i], KG_SETTLE_FAILED, "test_failure", ud);
		}else if(v == f->reject_val){
			f->rejected_count[v]++;
			report(f->items[i], KG_SETTLE_REJECTED, "bad_row", ud);
		}else{
			__atomic_add_fetch(&f->ok_count[v], 1, __ATOMIC_RELAXED); /* the test reads it meanwhile */
			report(f->items[i], KG_SETTLE_OK, NULL, ud);
		}
	}
	return n;
}

static void fake_rewind(void *state)
{
	struct fake *f = state;
	f->n = 0; /* dropped: never reported */
	f->rewinds++;
}

static void fake_health(void *state, struct kg_sink_health *out)
{
	struct fake *f = state;
	memset(out, 0, sizeof(*out));
	out->connected = !__atomic_load_n(&f->stuck, __ATOMIC_RELAXED);
	out->in_flight = f->n;
}

static void fake_free(void *state)
{
	((struct fake *)state)->freed = 1; /* the test owns the memory and inspects it afterwards */
}

static const struct kg_sink_ops fake_ops = {
	"fake", fake_submit, fake_poll, fake_rewind, fake_health, fake_free,
};

static struct fake *fake_new(void)
{
	struct fake *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->fail_val = -1;
	f->reject_val = -1;
	return f;
}

/* ---- helpers ---------------------------------------------------------------------------------- */

static char *make_dir(void)
{
	char tmpl[] = "/tmp/kg-worker-XXXXXX";
	char *d = mkdtemp(tmpl);
	assert_non_null(d);
	return strdup(d);
}

static void remove_dir(char *d)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
	assert_int_equal(system(cmd), 0);
	free(d);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void push_raw(struct kg_handoff *h, int from, int n)
{
	uint8_t buf[KG_RECORD_MAX_FIXED];
	int i;

	for(i = from; i < from + n; i++){
		struct kg_record rec;
		size_t len;

		memset(&rec, 0, sizeof(rec));
		rec.kind = KG_KIND_RAW;
		memcpy(rec.id, &i, sizeof(i));
		rec.id[6] = 0x40;
		rec.id[8] = 0x80;
		strcpy(rec.serial, "k-test-0001");
		rec.peripheral = 11;
		rec.quantity_type = 1;
		rec.datetime_ms = 1700000000000LL + i;
		rec.value = i;
		len = kg_record__encode(&rec, buf, sizeof(buf));
		assert_true(len > 0 && len <= sizeof(buf));
		assert_int_equal(kg_handoff__push(h, buf, (uint32_t)len), 0);
	}
}

static void push_bridge(struct kg_handoff *h)
{
	uint8_t buf[256];
	struct kg_record rec;
	size_t len;

	memset(&rec, 0, sizeof(rec));
	rec.kind = KG_KIND_BRIDGE;
	rec.topic = "plant/p1/status";
	rec.topic_len = (uint16_t)strlen(rec.topic);
	rec.payload = (const uint8_t *)"{}";
	rec.payload_len = 2;
	len = kg_record__encode(&rec, buf, sizeof(buf));
	assert_true(len > 0 && len <= sizeof(buf));
	assert_int_equal(kg_handoff__push(h, buf, (uint32_t)len), 0);
}

struct stream {
	struct kg_spool *sp;
	struct kg_handoff *h;
	struct kg_worker *w;
	struct fake *f;
};

static void stream_open(struct stream *s, const char *dir, struct fake *f, int shutdown_ms)
{
	struct kg_worker_config wc = { "test", KG_WORKER_KIND(KG_KIND_RAW), 64, 1, shutdown_ms, 0 };
	struct kg_sink sink = { &fake_ops, f };

	memset(s, 0, sizeof(*s));
	if(dir) assert_int_equal(kg_spool__open(&s->sp, dir, 1 << 20), 0);
	s->h = kg_handoff__new(50, s->sp); /* small: spills to the spool */
	assert_non_null(s->h);
	s->f = f;
	s->w = kg_worker__new(&wc, s->sp, s->h, &sink);
	assert_non_null(s->w);
	assert_null(sink.ops); /* ownership moved */
}

static void stream_close(struct stream *s)
{
	kg_worker__free(s->w);
	assert_true(s->f->freed);
	kg_handoff__free(s->h);
	if(s->sp) kg_spool__close(s->sp);
}

static struct kg_worker_stats stats(struct stream *s)
{
	struct kg_worker_stats st;
	kg_worker__stats(s->w, &st);
	return st;
}

/* Wait until the worker has settled at least n records; false after timeout_ms. */
static bool wait_settled(struct stream *s, uint64_t n, int timeout_ms)
{
	int64_t until = mono_ms() + timeout_ms;
	while(mono_ms() < until){
		if(stats(s).settled >= n) return true;
		usleep(5000);
	}
	return false;
}

/* ---- tests ------------------------------------------------------------------------------------ */

/* Every record reported OK once, in spool order; the checkpoint reaches the end. */
static void test_settles_and_checkpoints(void **state)
{
	struct stream s;
	struct fake *f = fake_new();
	char *dir = make_dir();
	struct kg_worker_stats st;
	(void)state;

	stream_open(&s, dir, f, 2000);
	push_raw(s.h, 0, 500);
	assert_int_equal(kg_worker__start(s.w), 0);
	assert_true(wait_settled(&s, 500, 5000));
	kg_worker__stop(s.w);
	st = stats(&s);
	assert_int_equal(st.taken, 500);
	assert_int_equal(st.settled, 500);
	assert_int_equal(st.ok, 500);
	assert_int_equal(st.rewinds, 0);
	assert_false(st.running);
	assert_int_equal(st.checkpoint, kg_spool__end(s.sp));
	assert_int_equal(kg_spool__checkpoint(s.sp), kg_spool__end(s.sp));
	for(int i = 0; i < 500; i++){
		assert_int_equal(f->ok_count[i], 1);
		assert_int_equal(f->submitted_order[i], i); /* spool order */
	}
	stream_close(&s);
	free(f);
	remove_dir(dir);
}

/* The sink takes at most 7 at a time: the rest is submitted later, in order, never twice. */
static void test_partial_submit(void **state)
{
	struct stream s;
	struct fake *f = fake_new();
	char *dir = make_dir();
	(void)state;

	f->cap = 7;
	stream_open(&s, dir, f, 2000);
	push_raw(s.h, 0, 300);
	assert_int_equal(kg_worker__start(s.w), 0);
	assert_true(wait_settled(&s, 300, 5000));
	kg_worker__stop(s.w);
	assert_int_equal(f->nsubmitted, 300);
	for(int i = 0; i < 300; i++){
		assert_int_equal(f->submitted_order[i], i);
		assert_int_equal(f->ok_count[i], 1);
	}
	assert_int_equal(kg_spool__checkpoint(s.sp), kg_spool__end(s.sp));
	stream_close(&s);
	free(f);
	remove_dir(dir);
}

/* One record fails: the worker rewinds the sink and replays from the spool, starting at the
 * failed record (the checkpoint never passed it). A rejected record is settled, not retried. */
static void test_partial_failure_rewinds(void **state)
{
	struct stream s;
	struct fake *f = fake_new();
	char *dir = make_dir();
	struct kg_worker_stats st;
	(void)state;

	f->fail_val = 40;
	f->reject_val = 7;
	stream_open(&s, dir, f, 2000);
	push_raw(s.h, 0, 100);
	assert_int_equal(kg_worker__start(s.w), 0);
	/* 100 first time round, then 40.. replayed after the rewind, until the checkpoint is at the end */
	{
		int64_t until = mono_ms() + 8000;
		while(mono_ms() < until && (__atomic_load_n(&f->ok_count[40], __ATOMIC_RELAXED) < 1 || stats(&s).checkpoint < kg_spool__end(s.sp))){
			usleep(5000);
		}
	}
	kg_worker__stop(s.w);
	st = stats(&s);
	assert_int_equal(st.rewinds, 1);
	assert_int_equal(f->rewinds, 1 + 1); /* the failure, and the final drop at stop */
	assert_int_equal(f->ok_count[40], 1); /* the failed one, written once after the replay */
	for(int i = 0; i < 100; i++){
		if(i == 7) continue;
		assert_true(f->ok_count[i] >= 1);       /* nothing lost */
		if(i < 40) assert_int_equal(f->ok_count[i], 1); /* before the failure: never replayed */
	}
	assert_int_equal(f->rejected_count[7], 1);
	assert_int_equal(st.rejected, 1);
	assert_int_equal(st.nreasons, 1);
	assert_string_equal(st.reasons[0].reason, "bad_row");
	assert_int_equal(st.reasons[0].n, 1);
	assert_int_equal(kg_spool__checkpoint(s.sp), kg_spool__end(s.sp));
	stream_close(&s);
	free(f);
	remove_dir(dir);
}

/* A sink that never answers: stop returns within the deadline; nothing is committed; the next
 * start replays every record exactly once. */
static void test_shutdown_drain_deadline(void **state)
{
	struct stream s;
	struct fake *f = fake_new(), *g = fake_new();
	char *dir = make_dir();
	uint64_t end;
	int64_t t0, took;
	(void)state;

	f->stuck = 1;
	stream_open(&s, dir, f, 300);
	push_raw(s.h, 0, 80);
	end = kg_spool__end(s.sp);
	assert_int_equal(kg_worker__start(s.w), 0);
	usleep(100000);
	t0 = mono_ms();
	kg_worker__stop(s.w);
	took = mono_ms() - t0;
	assert_true(took >= 250);
	assert_true(took < 2000);
	assert_int_equal(stats(&s).settled, 0);
	assert_int_equal(kg_spool__checkpoint(s.sp), 0);
	stream_close(&s);

	stream_open(&s, dir, g, 2000); /* the next start */
	assert_int_equal(kg_spool__end(s.sp), end);
	assert_int_equal(kg_worker__start(s.w), 0);
	assert_true(wait_settled(&s, 80, 5000));
	kg_worker__stop(s.w);
	for(int i = 0; i < 80; i++) assert_int_equal(g->ok_count[i], 1);
	assert_int_equal(stats(&s).settled, 80);
	stream_close(&s);
	free(f);
	free(g);
	remove_dir(dir);
}

/* The sink is down and the in-flight window full, so the worker takes nothing: records appended
 * meanwhile (the broker keeps spooling during an outage) are still fdatasync'ed within a few
 * sync intervals, not only when the next batch is taken. */
static void test_syncs_during_outage(void **state)
{
	struct kg_worker_config wc = { "test", KG_WORKER_KIND(KG_KIND_RAW), 64, 1, 300, 10 };
	struct fake *f = fake_new();
	struct kg_sink sink = { &fake_ops, f };
	struct kg_spool *sp;
	struct kg_handoff *h;
	struct kg_worker *w;
	struct kg_worker_stats st;
	char *dir = make_dir();
	uint64_t end;
	int64_t until;
	(void)state;

	f->stuck = 1;
	assert_int_equal(kg_spool__open(&sp, dir, 1 << 20), 0);
	h = kg_handoff__new(50, sp);
	assert_non_null(h);
	w = kg_worker__new(&wc, sp, h, &sink);
	assert_non_null(w);
	assert_int_equal(kg_worker__start(w), 0);
	push_raw(h, 0, 10);
	for(until = mono_ms() + 5000; mono_ms() < until; usleep(5000)){
		kg_worker__stats(w, &st);
		if(st.taken == 10) break;
	}
	assert_int_equal(st.taken, 10);            /* the window is full: nothing more is taken */
	push_raw(h, 10, 200);
	end = kg_spool__end(sp);
	for(until = mono_ms() + 5000; mono_ms() < until; usleep(5000)){
		kg_worker__stats(w, &st);
		if(st.synced == end) break;
	}
	assert_int_equal(st.synced, end);
	assert_int_equal(st.taken, 10);
	assert_int_equal(st.settled, 0);
	kg_worker__free(w);
	kg_handoff__free(h);
	kg_spool__close(sp);
	free(f);
	remove_dir(dir);
}

/* The sink writes the first 30 and then hangs; the process "dies" (stop with a zero deadline:
 * only what was committed counts). Reopening the spool brings back exactly the records after the
 * checkpoint: none of the 30 is written again, each of the rest once. */
static void test_crash_replay(void **state)
{
	struct stream s;
	struct fake *f = fake_new(), *g = fake_new();
	char *dir = make_dir();
	uint64_t ckpt;
	(void)state;

	f->max_total = 30; /* takes 30, reports them, then takes nothing more (a hung server) */
	stream_open(&s, dir, f, 0);
	push_raw(s.h, 0, 100);
	assert_int_equal(kg_worker__start(s.w), 0);
	assert_true(wait_settled(&s, 30, 5000));
	{
		/* the checkpoint follows within COMMIT_INTERVAL_MS */
		int64_t until = mono_ms() + 3000;
		while(mono_ms() < until && stats(&s).checkpoint == 0) usleep(5000);
	}
	ckpt = stats(&s).checkpoint;
	assert_true(ckpt > 0);
	kg_worker__stop(s.w);
	ckpt = kg_spool__checkpoint(s.sp);
	stream_close(&s);

	stream_open(&s, dir, g, 2000);
	assert_int_equal(kg_spool__checkpoint(s.sp), ckpt);
	assert_int_equal(kg_worker__start(s.w), 0);
	assert_true(wait_settled(&s, 70, 5000));
	kg_worker__stop(s.w);
	for(int i = 0; i < 30; i++) assert_int_equal(f->ok_count[i] + g->ok_count[i], 1);
	for(int i = 30; i < 100; i++) assert_int_equal(g->ok_count[i], 1);
	assert_int_equal(stats(&s).settled, 70);
	assert_int_equal(kg_spool__checkpoint(s.sp), kg_spool__end(s.sp));
	stream_close(&s);
	free(f);
	free(g);
	remove_dir(dir);
}

/* A record of a kind the stream does not take (a bridge record in an adopted single-stream
 * spool) is settled with a count, never submitted; the checkpoint moves over it. */
static void test_foreign_record(void **state)
{
	struct stream s;
	struct fake *f = fake_new();
	char *dir = make_dir();
	struct kg_worker_stats st;
	(void)state;

	stream_open(&s, dir, f, 2000);
	push_raw(s.h, 0, 3);
	push_bridge(s.h);
	push_raw(s.h, 3, 3);
	assert_int_equal(kg_worker__start(s.w), 0);
	assert_true(wait_settled(&s, 7, 5000));
	kg_worker__stop(s.w);
	st = stats(&s);
	assert_int_equal(st.foreign, 1);
	assert_int_equal(st.ok, 6);
	assert_int_equal(f->nsubmitted, 6);
	assert_int_equal(kg_spool__checkpoint(s.sp), kg_spool__end(s.sp));
	stream_close(&s);
	free(f);
	remove_dir(dir);
}

/* Memory only (spool_dir off): a FAILED record cannot be replayed; it is counted lost. */
static void test_memory_only_failure_is_lost(void **state)
{
	struct stream s;
	struct fake *f = fake_new();
	struct kg_worker_stats st;
	(void)state;

	f->fail_val = 5;
	stream_open(&s, NULL, f, 2000);
	push_raw(s.h, 0, 10);
	assert_int_equal(kg_worker__start(s.w), 0);
	assert_true(wait_settled(&s, 10, 5000));
	kg_worker__stop(s.w);
	st = stats(&s);
	assert_int_equal(st.lost, 1);
	assert_int_equal(st.ok, 9);
	assert_int_equal(st.rewinds, 0);
	stream_close(&s);
	free(f);
}

/* Two streams: one sink hangs, the other's records all settle meanwhile. */
static void test_streams_independent(void **state)
{
	struct stream a, b;
	struct fake *fa = fake_new(), *fb = fake_new();
	char *da = make_dir(), *db = make_dir();
	int64_t t0;
	(void)state;

	fa->stuck = 1;
	stream_open(&a, da, fa, 200);
	stream_open(&b, db, fb, 2000);
	assert_int_equal(kg_worker__start(a.w), 0);
	assert_int_equal(kg_worker__start(b.w), 0);
	push_raw(a.h, 0, 200);
	t0 = mono_ms();
	push_raw(b.h, 0, 200);
	assert_true(wait_settled(&b, 200, 3000));
	assert_true(mono_ms() - t0 < 3000);
	assert_int_equal(stats(&a).settled, 0);
	kg_worker__stop(a.w);
	kg_worker__stop(b.w);
	for(int i = 0; i < 200; i++) assert_int_equal(fb->ok_count[i], 1);
	assert_int_equal(kg_spool__checkpoint(a.sp), 0);
	assert_int_equal(kg_spool__checkpoint(b.sp), kg_spool__end(b.sp));
	stream_close(&a);
	stream_close(&b);
	free(fa);
	free(fb);
	remove_dir(da);
	remove_dir(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_settles_and_checkpoints),
		cmocka_unit_test(test_partial_submit),
		cmocka_unit_test(test_partial_failure_rewinds),
		cmocka_unit_test(test_shutdown_drain_deadline),
		cmocka_unit_test(test_syncs_during_outage),
		cmocka_unit_test(test_crash_replay),
		cmocka_unit_test(test_foreign_record),
		cmocka_unit_test(test_memory_only_failure_is_lost),
		cmocka_unit_test(test_streams_independent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
