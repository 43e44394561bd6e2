/* kitgate-recbench.c -- what handing a batch of decoded records to the PostgreSQL sink costs
 * (sink_pg.c pg_submit copies the worker's records into the batch the connection threads write),
 * three ways in the same run, for RAW and AGGREGATE (4 values) batches: the whole struct
 * kg_record per row (the original), the bytes each record uses into an array of whole structs
 * (kg_record__copy, the step after), and the records stored sized to their data with an array of
 * pointers to them (kg_record__store, what pg_submit does now; kg_pg__write_ptrs reads them).
 *
 * Usage: kitgate-recbench [--rows N (default 1000)] [--repeat R (default 201)]
 * Prints, per kind and way, the median time per batch (malloc of the batch + the copies + free),
 * per record, the bytes copied and the bytes allocated for the records. */
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

enum way { WHOLE, USED, SIZED, NWAYS };

static const char *const way_name[NWAYS] = {
	"whole struct (memcpy of n structs, the original)",
	"used bytes into n structs (kg_record__copy)",
	"sized to their data (kg_record__store, pointers: pg_submit now)",
};

/* One batch as pg_submit builds it (malloc, copy every record, free) in one of the three ways.
 * Returns ns; *bytes receives the bytes copied, *alloc the bytes allocated for the records. */
static int64_t one_batch(const struct kg_record *recs, size_t n, enum way way, size_t *bytes, size_t *alloc,
		volatile uint64_t *sink)
{
	int64_t t0 = now_ns();
	size_t copied = 0, total = 0;

	if(way == SIZED){
		const struct kg_record **ptrs;
		unsigned char *data;
		size_t off = 0;

		for(size_t i = 0; i < n; i++) total += kg_record__stored(&recs[i]);
		data = malloc(total + n * sizeof(*ptrs));
		if(!data) abort();
		ptrs = (const struct kg_record **)(void *)(data + total);
		for(size_t i = 0; i < n; i++){
			size_t k = kg_record__store(data + off, &recs[i]);

			ptrs[i] = (const struct kg_record *)(void *)(data + off);
			off += k;
			copied += kg_record__used(&recs[i]);
		}
		*sink += (uint64_t)ptrs[n - 1]->peripheral + (uint64_t)ptrs[0]->serial[3];
		free(data);
		total += n * sizeof(*ptrs);
	}else{
		struct kg_record *b = malloc(n * sizeof(*b));

		if(!b) abort();
		total = n * sizeof(*b);
		if(way == USED){
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
	}
	*bytes = copied;
	*alloc = total;
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
		int64_t *t[NWAYS], med[NWAYS];
		size_t bytes[NWAYS] = {0}, alloc[NWAYS] = {0};

		if(!recs) return 1;
		for(int w = 0; w < NWAYS; w++) if(!(t[w] = calloc((size_t)repeat, sizeof(int64_t)))) return 1;
		fill(recs, (size_t)rows, (uint8_t)kind);
		for(long r = 0; r < repeat; r++){ /* interleaved, so every way sees the same machine */
			for(int w = 0; w < NWAYS; w++) t[w][r] = one_batch(recs, (size_t)rows, (enum way)w, &bytes[w], &alloc[w], &sink);
		}
		for(int w = 0; w < NWAYS; w++){
			qsort(t[w], (size_t)repeat, sizeof(int64_t), cmp_i64);
			med[w] = t[w][repeat / 2];
			printf("recbench: %s: %s: %.1f us per batch, %.1f ns per record, %zu bytes copied, %zu bytes allocated\n",
					kind == KG_KIND_RAW ? "raw" : "aggregate(4 values)", way_name[w], (double)med[w] / 1000.0,
					(double)med[w] / (double)rows, bytes[w], alloc[w]);
		}
		printf("recbench: %s: sized vs whole struct: %.1fx less time, %.1fx fewer bytes copied, %.1fx less memory\n",
				kind == KG_KIND_RAW ? "raw" : "aggregate(4 values)",
				(double)med[WHOLE] / (double)(med[SIZED] ? med[SIZED] : 1),
				(double)bytes[WHOLE] / (double)(bytes[SIZED] ? bytes[SIZED] : 1),
				(double)alloc[WHOLE] / (double)(alloc[SIZED] ? alloc[SIZED] : 1));
		free(recs);
		for(int w = 0; w < NWAYS; w++) free(t[w]);
	}
	return sink == 0xdeadbeef; /* keeps the copies observable */
}
