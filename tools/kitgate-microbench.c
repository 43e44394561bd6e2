/* kitgate-microbench.c -- the broker-thread cost of one accepted measurement, measured in-process:
 * kg_ingest__message (ingest.c: classify, validate, encode, hand-off push with the spool append),
 * the very function the MESSAGE callback calls, while the real worker (worker.c, sink `none`)
 * drains the stream and commits the checkpoint. No broker, no network and no other process
 * competes for the CPU, so this is the cost itself, not the cost plus preemption.
 *
 * Usage: kitgate-microbench [--messages N] [--repeat R] [--spool-dir DIR] [--no-spool]
 * Prints one line per repeat and a median line:
 *   microbench: median of R runs of N messages: ingest[+spool]=…ns total=…ns per message */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kitgate/config.h"
#include "kitgate/handoff.h"
#include "kitgate/ingest.h"
#include "kitgate/sink.h"
#include "kitgate/spool.h"
#include "kitgate/worker.h"

static int64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
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
	int use_spool = 1, split = 0;
	static struct kg_ingest_memo memo; /* --split: the plugin's path (ACL WRITE check, then MESSAGE) */
	char tmpl[] = "/tmp/kg-microbench-XXXXXX";
	char err[512];
	struct kg_config cfg;
	struct kg_opt opts[] = { { "sink", "none" } };
	double tt[64], tc[64];

	for(int i = 1; i < argc; i++){
		if(!strcmp(argv[i], "--messages") && i + 1 < argc) messages = atol(argv[++i]);
		else if(!strcmp(argv[i], "--repeat") && i + 1 < argc) repeat = atol(argv[++i]);
		else if(!strcmp(argv[i], "--spool-dir") && i + 1 < argc) dir = argv[++i];
		else if(!strcmp(argv[i], "--no-spool")) use_spool = 0;
		else if(!strcmp(argv[i], "--split")) split = 1;
		else{
			fprintf(stderr, "usage: %s [--messages N] [--repeat R (1..64)] [--spool-dir DIR] [--no-spool] [--split]\n", argv[0]);
			return 1;
		}
	}
	if(messages < 1 || repeat < 1 || repeat > 64){
		fprintf(stderr, "microbench: --messages must be >= 1 and --repeat 1..64\n");
		return 1;
	}
	if(kg_config__parse(&cfg, opts, 1, err, sizeof(err)) != 0){
		fprintf(stderr, "microbench: %s\n", err);
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
		struct kg_handoff *h;
		struct kg_worker *w;
		struct kg_sink sink;
		struct kg_ingest ig;
		struct kg_worker_config wc = { "measurements", KG_WORKER_KIND(KG_KIND_RAW), 1000, 10, 5000, 0 };
		int64_t t_ingest = 0, c_start;
		char payload[512];
		int64_t now_ms = (int64_t)time(NULL) * 1000;

		if(use_spool && kg_spool__open(&sp, dir, 64ull << 20) != 0){
			fprintf(stderr, "microbench: cannot open spool in %s\n", dir);
			return 1;
		}
		h = kg_handoff__new(100000, sp);
		if(!h || kg_sink_none__new(&sink, err, sizeof(err)) != 0){
			fprintf(stderr, "microbench: out of memory\n");
			return 1;
		}
		w = kg_worker__new(&wc, sp, h, &sink);
		if(!w || kg_worker__start(w) != 0){
			fprintf(stderr, "microbench: cannot start the worker\n");
			return 1;
		}
		kg_ingest__init(&ig, &cfg, h, NULL);
		c_start = clock_ns(CLOCK_THREAD_CPUTIME_ID);
		for(long i = 0; i < messages; i++){
			struct kg_ingest_out out;
			int len = snprintf(payload, sizeof(payload),
					"{\"id\":\"9b2f%04lx-0000-4000-8000-%012lx\",\"kitSerial\":\"\",\"datetime\":%lld,"
					"\"peripheral\":%ld,\"quantityType\":1,\"value\":%ld.5}",
					(unsigned long)(r & 0xffff), (unsigned long)i, (long long)now_ms, 11 + i % 3, i);
			int64_t t0 = now_ns();
			enum kg_ingest_result rc;

			if(split){ /* what the plugin runs: kg_ingest__check in ACL WRITE, kg_ingest__push in MESSAGE */
				rc = kg_ingest__check(&ig, "kit/k-test-0001/measurement/raw", payload, (size_t)len, false,
						now_ms, &memo, &out);
				if(rc == KG_INGEST_ACCEPTED) rc = kg_ingest__push(&ig, &memo, &out);
			}else{
				rc = kg_ingest__message(&ig, "kit/k-test-0001/measurement/raw", payload, (size_t)len,
						now_ms, &out);
			}
			t_ingest += now_ns() - t0;
			if(rc != KG_INGEST_ACCEPTED){
				fprintf(stderr, "microbench: message %ld not accepted (result %d, %s)\n", i, (int)rc,
						kg_reason__name(out.reason));
				return 1;
			}
		}
		tc[r] = (double)(clock_ns(CLOCK_THREAD_CPUTIME_ID) - c_start) / messages; /* incl. payload formatting */
		kg_worker__free(w); /* drains and commits */
		kg_handoff__free(h);
		if(sp) kg_spool__close(sp);
		tt[r] = (double)t_ingest / messages;
		printf("microbench: run %ld: ingest%s=%.0fns total=%.0fns per message (thread CPU %.0fns)\n",
				r + 1, use_spool ? "+spool" : "", tt[r], tt[r], tc[r]);
	}
	qsort(tt, (size_t)repeat, sizeof(double), cmp_double);
	qsort(tc, (size_t)repeat, sizeof(double), cmp_double);
	printf("microbench: median of %ld runs of %ld messages: ingest%s=%.0fns total=%.0fns per message "
			"(%s: validate, encode, hand-off; thread CPU %.0fns incl. the loop)\n",
			repeat, messages, use_spool ? "+spool" : "", tt[repeat / 2], tt[repeat / 2],
			split ? "kg_ingest__check + kg_ingest__push" : "kg_ingest__message", tc[repeat / 2]);
	kg_config__free(&cfg);
	if(use_spool && dir == tmpl){
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
		if(system(cmd) != 0) fprintf(stderr, "microbench: could not remove %s\n", tmpl);
	}
	return 0;
}
