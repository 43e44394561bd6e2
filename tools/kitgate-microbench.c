/* kitgate-microbench.c -- the broker-thread cost of one accepted measurement, measured in-process:
 * kg_validate__measurement + kg_record__encode + kg_handoff__push (with the spool's write(2)),
 * while a second thread drains the hand-off as the worker does. No broker, no network and no
 * other process competes for the CPU, so this is the cost itself, not the cost plus preemption.
 *
 * Usage: kitgate-microbench [--messages N] [--repeat R] [--spool-dir DIR] [--no-spool]
 * Prints one line per repeat and a median line:
 *   microbench: median validate=…ns encode=…ns handoff=…ns total=…ns per message */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kitgate/handoff.h"
#include "kitgate/record.h"
#include "kitgate/spool.h"
#include "kitgate/validate.h"

static atomic_bool stop_drain;

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The worker's side: take and free, committing the spool position now and then. */
static void *drain(void *arg)
{
	struct kg_handoff *h = arg;
	struct kg_item *items[1000];
	uint64_t last = 0;
	int64_t last_commit = 0;
	size_t n;

	while(!atomic_load(&stop_drain) || !kg_handoff__empty(h)){
		/* As the worker's take_batch with batch_size 1000, batch_ms 10: wait for the first record,
		 * then linger for the rest of the batch. */
		if(h->spool) kg_spool__maintain(h->spool); /* as the worker: the next segment is prepared */
		n = kg_handoff__take(h, items, 1000, 1, 100);
		if(n && n < 1000) n += kg_handoff__take(h, items + n, 1000 - n, 1000 - n, 10);
		for(size_t i = 0; i < n; i++){
			if(items[i]->end) last = items[i]->end;
			free(items[i]);
		}
		if(n && h->spool && now_ns() - last_commit > 200000000){ /* as the worker: <= 5 commits/s */
			kg_spool__commit(h->spool, last);
			last_commit = now_ns();
		}
	}
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	long messages = 200000, repeat = 5;
	const char *dir = NULL;
	int use_spool = 1;
	char tmpl[] = "/tmp/kg-microbench-XXXXXX";
	struct kg_limits limits = { 16384, 86400000LL };
	double tv[64], te[64], th[64], tt[64];

	for(int i = 1; i < argc; i++){
		if(!strcmp(argv[i], "--messages") && i + 1 < argc) messages = atol(argv[++i]);
		else if(!strcmp(argv[i], "--repeat") && i + 1 < argc) repeat = atol(argv[++i]);
		else if(!strcmp(argv[i], "--spool-dir") && i + 1 < argc) dir = argv[++i];
		else if(!strcmp(argv[i], "--no-spool")) use_spool = 0;
		else{
			fprintf(stderr, "usage: %s [--messages N] [--repeat R (1..64)] [--spool-dir DIR] [--no-spool]\n", argv[0]);
			return 1;
		}
	}
	if(messages < 1 || repeat < 1 || repeat > 64){
		fprintf(stderr, "microbench: --messages must be >= 1 and --repeat 1..64\n");
		return 1;
	}
	if(use_spool && !dir){
		dir = mkdtemp(tmpl);
		if(!dir){
			perror("mkdtemp");
			return 1;
		}
	}
	for(long r = 0; r < repeat; r++){
		struct kg_spool *sp = NULL;
		struct kg_handoff h;
		pthread_t th_drain;
		int64_t t_validate = 0, t_encode = 0, t_push = 0;
		char payload[512];
		uint8_t buf[KG_RECORD_MAX_FIXED];
		int64_t now_ms = (int64_t)time(NULL) * 1000;

		if(use_spool && kg_spool__open(&sp, dir, 64ull << 20) != 0){
			fprintf(stderr, "microbench: cannot open spool in %s\n", dir);
			return 1;
		}
		kg_handoff__init(&h, 100000, sp);
		atomic_store(&stop_drain, false);
		pthread_create(&th_drain, NULL, drain, &h);
		for(long i = 0; i < messages; i++){
			struct kg_record rec;
			const char *detail;
			int len = snprintf(payload, sizeof(payload),
					"{\"id\":\"9b2f%04lx-0000-4000-8000-%012lx\",\"kitSerial\":\"\",\"datetime\":%lld,"
					"\"peripheral\":%ld,\"quantityType\":1,\"value\":%ld.5}",
					(unsigned long)(r & 0xffff), (unsigned long)i, (long long)now_ms, 11 + i % 3, i);
			int64_t t0 = now_ns(), t1, t2, t3;
			enum kg_reason rc = kg_validate__measurement(KG_KIND_RAW, "k-test-0001", 11, payload,
					(size_t)len, now_ms, &limits, &rec, &detail);
			t1 = now_ns();
			size_t n = kg_record__encode(&rec, buf, sizeof(buf));
			t2 = now_ns();
			if(rc != KG_OK || n == 0 || n > sizeof(buf) || kg_handoff__push(&h, buf, (uint32_t)n) != 0){
				fprintf(stderr, "microbench: message %ld not accepted (%s)\n", i, kg_reason__name(rc));
				return 1;
			}
			t3 = now_ns();
			t_validate += t1 - t0;
			t_encode += t2 - t1;
			t_push += t3 - t2;
		}
		atomic_store(&stop_drain, true);
		pthread_join(th_drain, NULL);
		kg_handoff__destroy(&h);
		if(sp) kg_spool__close(sp);
		tv[r] = (double)t_validate / messages;
		te[r] = (double)t_encode / messages;
		th[r] = (double)t_push / messages;
		tt[r] = tv[r] + te[r] + th[r];
		printf("microbench: run %ld: validate=%.0fns encode=%.0fns handoff%s=%.0fns total=%.0fns per message\n",
				r + 1, tv[r], te[r], use_spool ? "+spool" : "", th[r], tt[r]);
	}
	qsort(tv, (size_t)repeat, sizeof(double), cmp_double);
	qsort(te, (size_t)repeat, sizeof(double), cmp_double);
	qsort(th, (size_t)repeat, sizeof(double), cmp_double);
	qsort(tt, (size_t)repeat, sizeof(double), cmp_double);
	printf("microbench: median of %ld runs of %ld messages: validate=%.0fns encode=%.0fns handoff%s=%.0fns "
			"total=%.0fns per message\n", repeat, messages, tv[repeat / 2], te[repeat / 2],
			use_spool ? "+spool" : "", th[repeat / 2], tt[repeat / 2]);
	if(use_spool && dir == tmpl){
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
		if(system(cmd) != 0) fprintf(stderr, "microbench: could not remove %s\n", tmpl);
	}
	return 0;
}
