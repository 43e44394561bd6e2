/* kitgate-livebench.c -- microbenchmark of the live view's broker-thread work per measurement:
 * kg_stats__add (rolling 1/5/30-minute windows) alone, and with what kg_live__measurement adds
 * around it (the per-kit lookup and touch, the stream key), plus the cost of a flush (the 4 Hz
 * scan that publishes changed streams). Pure CPU work on in-memory tables; no broker.
 *
 *   kitgate-livebench [--kits N] [--streams-per-kit S] [--rate-hz R] [--seconds T] [--max-samples M]
 *
 * Simulates N kits each with S streams receiving R samples per second per stream, in time order,
 * over T simulated seconds (so the windows fill and expire as in production). Times are the
 * thread's CPU time per operation.
 *
 * Then the flush at fleet scale (issue 20), N x S streams: idle (one sample each, handed out, then
 * 200 flushes 250 ms apart before any sample leaves a window: the full scan visited every stream
 * each time) and a fleet's traffic (a sample every 10 s per stream, staggered, flushes every
 * 250 ms for 120 simulated seconds after the windows' first minute), as ns per flush and streams
 * visited per flush (counters.flush_visits). */
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

	/* Pass 3: the flush with every stream idle, then with a fleet's traffic (0.1 Hz per stream). */
	{
		int nst = kits * per_kit, f;
		struct kg_stats_counters c0, c1;
		double t_idle = 0, t_fleet = 0, t_fleet_add = 0;
		uint64_t nfl = 0, nadd = 0;
		int64_t now = base, mono = 0;

		memset(&c0, 0, sizeof(c0));
		memset(&c1, 0, sizeof(c1));
		st = kg_stats__new((size_t)nst, max_samples);
		if(!st) return 1;
		for(i = 0; i < nst; i++) kg_stats__add(st, keys[i], now, 1.0, now);
		kg_stats__flush_at(st, now, mono, 1000, NULL, NULL);
		kg_stats__counters(st, &c0);
		for(f = 1; f <= 200; f++){
			t0 = now_s();
			kg_stats__flush_at(st, now + 250 * f, mono + 250 * f, 1000, NULL, NULL);
			t_idle += now_s() - t0;
		}
		kg_stats__counters(st, &c1);
		printf("| kg_stats__flush_at, %d idle streams (nothing changed, nothing due) | %.1f us/flush, %.1f streams visited/flush |\n",
				nst, t_idle / 200 * 1e6, c1.flushes > c0.flushes ? (double)(c1.flush_visits - c0.flush_visits) / 200 : (double)nst);
		kg_stats__free(st);

		/* every stream a sample every 10 s, stream i at offset i * 10000 / nst ms */
		st = kg_stats__new((size_t)nst, max_samples);
		if(!st) return 1;
		for(int64_t ms = 0; ms < 180 * 1000; ms += 250){
			int64_t lo = ms % 10000, hi = lo + 250; /* the streams whose offset falls in (ms-250, ms] */

			now = base + ms;
			mono = ms;
			t0 = now_s();
			for(i = (int)(lo * nst / 10000); i < (int)(hi * nst / 10000) && i < nst; i++){
				kg_stats__add(st, keys[i], now, (double)(ms % 997) / 10.0, now);
				nadd++;
			}
			t_fleet_add += now_s() - t0;
			if(ms == 60 * 1000) kg_stats__counters(st, &c0);
			t0 = now_s();
			kg_stats__flush_at(st, now, mono, 1000, NULL, NULL);
			if(ms > 60 * 1000){
				t_fleet += now_s() - t0;
				nfl++;
			}
		}
		kg_stats__counters(st, &c1);
		printf("| kg_stats__flush_at, %d streams at 0.1 Hz (after the first minute) | %.1f us/flush, %.1f streams visited/flush, %.1f handed out/flush |\n",
				nst, t_fleet / (double)nfl * 1e6,
				c1.flushes > c0.flushes ? (double)(c1.flush_visits - c0.flush_visits) / (double)nfl : (double)nst,
				(double)(c1.published - c0.published) / (double)nfl);
		(void)t_fleet_add;
		kg_stats__free(st);
	}
	kg_kits__free(kt);
	free(serials);
	free(keys);
	return 0;
}
