/* kitgate-recbench.c -- what handing a batch of decoded records to the PostgreSQL sink costs
 * (sink_pg.c pg_submit copies the worker's records into the batch the connection threads write):
 * the whole struct kg_record per row, as it was, against the bytes each record uses
 * (kg_record__copy), in the same run, for RAW and AGGREGATE (4 values) batches.
 *
 * Usage: kitgate-recbench [--rows N (default 1000)] [--repeat R (default 201)]
 * Prints, per kind, the median time per batch (malloc of the batch + the copies) and the bytes
 * copied, for both ways. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kitgate/record.h"

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static void fill(struct kg_record *recs, size_t n, uint8_t kind)
{
	for(size_t i = 0; i < n; i++){
		struct kg_record *r = &recs[i];

		kg_record__reset(r, kind);
		memset(r->id, (int)i, sizeof(r->id));
		snprintf(r->serial, sizeof(r->serial), "k-abcd-efgh-%04zu", i % 100);
		r->peripheral = 7;
		r->quantity_type = 1;
		if(kind == KG_KIND_RAW){
			r->datetime_ms = 1700000000000 + (int64_t)i;
			r->value = 21.5;
		}else{
			static const char *const names[] = {"count", "average", "minimum", "maximum"};

			r->start_ms = 1700000000000;
			r->end_ms = 1700001800000;
			r->nvalues = 4;
			for(int v = 0; v < 4; v++){
				snprintf(r->values[v].name, sizeof(r->values[v].name), "%s", names[v]);
				r->values[v].value = v;
			}
		}
	}
}

/* One batch as pg_submit builds it: malloc, copy every record (whole or used bytes), free.
 * Returns ns; *bytes receives the bytes copied. */
static int64_t one_batch(const struct kg_record *recs, size_t n, int sized, size_t *bytes, volatile uint64_t *sink)
{
	int64_t t0 = now_ns();
	struct kg_record *b = malloc(n * sizeof(*b));
	size_t copied = 0;

	if(!b) abort();
	if(sized){
		for(size_t i = 0; i < n; i++){
			kg_record__copy(&b[i], &recs[i]);
			copied += kg_record__used(&recs[i]);
		}
	}else{
		memcpy(b, recs, n * sizeof(*b));
		copied = n * sizeof(*b);
	}
	*sink += (uint64_t)b[n - 1].peripheral + (uint64_t)b[0].serial[3];
	free(b);
	*bytes = copied;
	return now_ns() - t0;
}

int main(int argc, char **argv)
{
	long rows = 1000, repeat = 201;
	volatile uint64_t sink = 0;

	for(int i = 1; i < argc; i++){
		if(!strcmp(argv[i], "--rows") && i + 1 < argc) rows = atol(argv[++i]);
		else if(!strcmp(argv[i], "--repeat") && i + 1 < argc) repeat = atol(argv[++i]);
		else{
			fprintf(stderr, "usage: %s [--rows N] [--repeat R]\n", argv[0]);
			return 2;
		}
	}
	if(rows < 1 || repeat < 1 || repeat > 100000){
		fprintf(stderr, "recbench: --rows >= 1, --repeat 1..100000\n");
		return 2;
	}
	printf("recbench: sizeof(struct kg_record) = %zu bytes, %ld rows per batch, median of %ld batches\n",
			sizeof(struct kg_record), rows, repeat);
	for(int kind = KG_KIND_RAW; kind <= KG_KIND_AGGREGATE; kind++){
		struct kg_record *recs = calloc((size_t)rows, sizeof(*recs));
		int64_t *t[2];
		size_t bytes[2] = {0, 0};

		t[0] = calloc((size_t)repeat, sizeof(int64_t));
		t[1] = calloc((size_t)repeat, sizeof(int64_t));
		if(!recs || !t[0] || !t[1]) return 1;
		fill(recs, (size_t)rows, (uint8_t)kind);
		for(long r = 0; r < repeat; r++){ /* interleaved, so both see the same machine */
			t[0][r] = one_batch(recs, (size_t)rows, 0, &bytes[0], &sink);
			t[1][r] = one_batch(recs, (size_t)rows, 1, &bytes[1], &sink);
		}
		qsort(t[0], (size_t)repeat, sizeof(int64_t), cmp_i64);
		qsort(t[1], (size_t)repeat, sizeof(int64_t), cmp_i64);
		printf("recbench: %s: whole struct: %.1f us and %zu bytes copied per batch; used bytes "
				"(kg_record__copy): %.1f us and %zu bytes; ratio %.1fx time, %.1fx bytes\n",
				kind == KG_KIND_RAW ? "raw" : "aggregate(4 values)",
				(double)t[0][repeat / 2] / 1000.0, bytes[0], (double)t[1][repeat / 2] / 1000.0, bytes[1],
				(double)t[0][repeat / 2] / (double)(t[1][repeat / 2] ? t[1][repeat / 2] : 1),
				(double)bytes[0] / (double)(bytes[1] ? bytes[1] : 1));
		free(recs);
		free(t[0]);
		free(t[1]);
	}
	return sink == 0xdeadbeef; /* keeps the copies observable */
}
