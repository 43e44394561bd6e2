/* kitgate-livebench.c -- microbenchmark of the live view's broker-thread work per measurement:
 * kg_stats__add (rolling 1/5/30-minute windows) alone, and with what kg_live__measurement adds
 * around it (the per-kit lookup and touch, the stream key), plus the cost of a flush (the 4 Hz
 * scan that publishes changed streams). Pure CPU work on in-memory tables; no broker.
 *
 *   kitgate-livebench [--kits N] [--streams-per-kit S] [--rate-hz R] [--seconds T] [--max-samples M]
 *
 * Simulates N kits each with S streams receiving R samples per second per stream, in time order,
 * over T simulated seconds (so the windows fill and expire as in production). Times are the
 * thread's CPU time per operation. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kitgate/kits.h"
#include "kitgate/stats.h"
#include "kitgate/topic.h"

/* Thread CPU time: on a shared machine wall time mostly measures the other processes. */
static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nop(const struct kg_stats_view *v, void *arg)
{
	(void)v;
	(*(size_t *)arg)++;
}

int main(int argc, char **argv)
{
	int kits = 200, per_kit = 5, seconds = 3600, i;
	double rate = 1.0;
	size_t max_samples = 1024, published = 0;
	struct kg_stats_counters c;
	struct kg_stats *st;
	struct kg_kits *kt;
	char (*serials)[24], (*keys)[96];
	char key[KG_TOPIC_KIT_STATS_MAX];
	double t0, t_add = 0, t_full = 0, t_flush = 0;
	uint64_t n = 0, nflush = 0;
	int64_t base = 1700000000000LL, step_ms;

	for(i = 1; i + 1 < argc; i += 2){
		if(!strcmp(argv[i], "--kits")) kits = atoi(argv[i + 1]);
		else if(!strcmp(argv[i], "--streams-per-kit")) per_kit = atoi(argv[i + 1]);
		else if(!strcmp(argv[i], "--rate-hz")) rate = atof(argv[i + 1]);
		else if(!strcmp(argv[i], "--seconds")) seconds = atoi(argv[i + 1]);
		else if(!strcmp(argv[i], "--max-samples")) max_samples = (size_t)atol(argv[i + 1]);
		else{
			fprintf(stderr, "usage: %s [--kits N] [--streams-per-kit S] [--rate-hz R] [--seconds T] [--max-samples M]\n", argv[0]);
			return 2;
		}
	}
	if(kits < 1 || per_kit < 1 || rate <= 0 || seconds < 1) return 2;
	step_ms = (int64_t)(1000.0 / rate);
	if(step_ms < 1) step_ms = 1;
	serials = calloc((size_t)kits, sizeof(*serials));
	keys = calloc((size_t)(kits * per_kit), sizeof(*keys));
	st = kg_stats__new((size_t)(kits * per_kit), max_samples);
	kt = kg_kits__new((size_t)kits);
	if(!serials || !keys || !st || !kt) return 1;
	for(i = 0; i < kits; i++){
		snprintf(serials[i], sizeof(serials[i]), "k-test-%04d", i + 1);
		for(int s = 0; s < per_kit; s++){
			snprintf(keys[i * per_kit + s], sizeof(keys[0]), "kit/%s/stats/%d/%d", serials[i], i * 10 + s + 1, s + 1);
		}
	}

	/* Pass 1: kg_stats__add alone (keys prepared beforehand); a round of all streams is timed. */
	for(int64_t t = 0; t < (int64_t)seconds * 1000; t += step_ms){
		int64_t now = base + t;

		t0 = now_s();
		for(i = 0; i < kits * per_kit; i++) kg_stats__add(st, keys[i], now, (double)(t % 997) / 10.0, now);
		t_add += now_s() - t0;
		n += (uint64_t)(kits * per_kit);
		if(t % 250 < step_ms){
			t0 = now_s();
			kg_stats__flush(st, now, 1000, nop, &published);
			t_flush += now_s() - t0;
			nflush++;
		}
	}
	kg_stats__counters(st, &c);
	kg_stats__free(st);

	/* Pass 2: what kg_live__measurement does per accepted raw measurement (minus mosquitto_*). */
	st = kg_stats__new((size_t)(kits * per_kit), max_samples);
	t0 = now_s();
	for(int64_t t = 0; t < (int64_t)seconds * 1000; t += step_ms){
		int64_t now = base + t;

		for(i = 0; i < kits; i++){
			for(int s = 0; s < per_kit; s++){
				struct kg_kit *kit = kg_kits__get(kt, serials[i], strlen(serials[i]));

				kg_kits__touch(kt, kit, now);
				kit->accepted++;
				kg_topic__kit_stats(key, serials[i], strlen(serials[i]), (int32_t)(i * 10 + s + 1), (int32_t)(s + 1));
				kg_stats__add(st, key, now, (double)(t % 997) / 10.0, now);
			}
		}
	}
	t_full = now_s() - t0;

	printf("| what | value |\n|---|---|\n");
	printf("| streams x samples/s | %d x %.2f over %d simulated s (%" PRIu64 " samples) |\n", kits * per_kit, rate, seconds, n);
	printf("| samples held at the end | %" PRIu64 " (max_samples %zu/stream) |\n", c.samples, max_samples);
	printf("| kg_stats__add | %.0f ns/sample |\n", t_add / (double)n * 1e9);
	printf("| per accepted measurement (kit lookup+touch, key, add) | %.0f ns |\n", t_full / (double)n * 1e9);
	printf("| kg_stats__flush (4 Hz scan, %d streams) | %.1f us/scan, %.0f ns/stream |\n", kits * per_kit,
			t_flush / (double)nflush * 1e6, t_flush / (double)nflush / (kits * per_kit) * 1e9);
	printf("| stats messages handed out | %zu |\n", published);
	kg_stats__free(st);
	kg_kits__free(kt);
	free(serials);
	free(keys);
	return 0;
}
