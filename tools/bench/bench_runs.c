/* bench_runs.c -- kitgate-bench runs: one throughput or latency run against a broker, and the
 * sinks (PostgreSQL writer, Kafka producer) on their own. */
#include "bench.h"

/* ------------------------------------------------------------------ one run */

static void run_opts(struct bench *b, struct kg_pe_opts *po, int port)
{
	kg_pe__defaults(po);
	po->port = port;
	po->nkits = b->o.kits;
	po->window = b->o.window;
	po->qos = 1;
	po->drain_timeout_s = 60;
	po->stop = (volatile int *)&g_interrupted;
}

/* Bare mosquitto's delivery rate to one QoS 1 subscriber (a second run on a fresh broker, so the
 * PUBACK rate above stays that of a broker without subscribers, like the plugin's runs): what the
 * plugin's rows committed per second are compared with (issue 8's end-to-end goal). Sets
 * t->settled_per_s, or leaves it NAN with a note. */
static void bare_delivery_run(struct bench *b, struct tp_run *t, const char *tag)
{
	struct kg_pe_opts po;
	struct kg_pe_result res;
	struct bench_sub *sub;
	struct broker br;
	uint64_t got = 0;
	int64_t last_ms = 0;

	if(bench_broker_start(b, C_BARE, tag, &br)) return;
	sub = bench_sub_start(br.port);
	if(!sub){
		bench_note(b, "%s: the delivery subscriber could not subscribe", tag);
		bench_broker_stop(&br);
		return;
	}
	run_opts(b, &po, br.port);
	po.messages = b->o.messages;
	if(kg_pe__run(&po, &res) == 0){
		bench_sub_wait(sub, res.c.acked, 30);
		bench_sub_stop(sub, &got, &last_ms);
		if(got < res.c.acked) bench_note(b, "%s: the subscriber got %" PRIu64 " of %" PRIu64, tag, got, res.c.acked);
		if(last_ms > res.first_pub_realtime_ms){
			t->settled_per_s = (double)got / ((double)(last_ms - res.first_pub_realtime_ms) / 1000.0);
		}
	}else{
		bench_sub_stop(sub, NULL, NULL);
	}
	kg_pe__result_free(&res);
	bench_broker_stop(&br);
}

/* Throughput run r of configuration cfg. Returns 0 or -1 (the run could not happen). */
int bench_throughput_run(struct bench *b, enum cfgid cfg, int r)
{
	struct tp_run *t = &b->tp[cfg][r];
	struct kg_pe_opts po;
	struct kg_pe_result res;
	struct broker br;
	char tag[64];
	double cpu0, main0, cpu1, main1;
	int64_t k0 = 0, t_settle_ms = 0;
	int rc;

	memset(t, 0, sizeof(*t));
	t->settled_per_s = t->ns_per_msg = NAN;
	snprintf(tag, sizeof(tag), "tp-%s-%d", cfg_name[cfg], r + 1);
	if(cfg == C_PG && bench_pg_truncate(b)) return -1;
	if(cfg == C_KAFKA && (k0 = bench_kafka_high(b)) < 0) return -1;
	if(bench_broker_start(b, cfg, tag, &br)) return -1;
	run_opts(b, &po, br.port);
	po.messages = b->o.messages;
	cpu0 = bench_cpu_seconds(br.pid, 0);
	main0 = bench_cpu_seconds(br.pid, br.pid);
	rc = kg_pe__run(&po, &res);
	main1 = bench_cpu_seconds(br.pid, br.pid);
	if(rc){
		fprintf(stderr, "bench: %s: %s\n", tag, res.error);
		kg_pe__result_free(&res);
		bench_broker_stop(&br);
		return -1;
	}
	t->failed = res.c.failed;
	t->accepted_per_s = res.c.elapsed_s > 0 ? (double)res.c.acked / res.c.elapsed_s : 0;
	if(cfg == C_PG){
		uint64_t have = bench_pg_wait_rows(b, res.c.acked, 30);
		char sql[256];
		double last_ms;

		snprintf(sql, sizeof(sql), "SELECT extract(epoch FROM max(%s)) * 1000 FROM raw_measurements", bench_pg_commit_expr(b));
		last_ms = bench_pg_double(b, sql);
		if(have < res.c.acked) bench_note(b, "%s: only %" PRIu64 " of %" PRIu64 " acked rows arrived in PostgreSQL", tag, have, res.c.acked);
		if(!isnan(last_ms) && last_ms > (double)res.first_pub_realtime_ms){
			t->settled_per_s = (double)have / ((last_ms - (double)res.first_pub_realtime_ms) / 1000.0);
		}
	}else if(cfg == C_KAFKA){
		int64_t deadline = bench_mono_ns() + 60000000000LL, k1 = k0;

		while(bench_mono_ns() < deadline && !g_interrupted){
			k1 = bench_kafka_high(b);
			if(k1 - k0 >= (int64_t)res.c.acked) break;
			bench_sleep_ms(20);
		}
		t_settle_ms = bench_real_ms();
		if(k1 - k0 < (int64_t)res.c.acked){
			bench_note(b, "%s: only %" PRId64 " of %" PRIu64 " acked messages reached the Kafka mock", tag, k1 - k0, res.c.acked);
		}
		t->settled_per_s = (double)(k1 - k0) / ((double)(t_settle_ms - res.first_pub_realtime_ms) / 1000.0);
	}
	cpu1 = bench_cpu_seconds(br.pid, 0);
	if(res.c.acked > 0){
		t->cpu_us_per_msg = (cpu1 - cpu0) * 1e6 / (double)res.c.acked;
		t->main_us_per_msg = (main1 - main0) * 1e6 / (double)res.c.acked;
	}
	if(cfg != C_BARE){
		/* the status is republished every second: wait for one that covers the whole run */
		bench_sleep_ms(1200);
		cJSON *st = bench_fetch_status(br.port, 5000);

		if(st){
			t->ns_per_msg = bench_json_num(st, "broker_thread_ns_per_msg", NULL);
			if(b->o.verbose){
				char *s = cJSON_PrintUnformatted(st);

				fprintf(stderr, "bench: %s status %s\n", tag, s);
				free(s);
			}
			cJSON_Delete(st);
		}else{
			bench_note(b, "%s: no status JSON on " STATUS_TOPIC, tag);
		}
	}
	t->rss_mb = bench_peak_rss_mb(br.pid);
	bench_broker_stop(&br);
	if(cfg == C_BARE) bare_delivery_run(b, t, tag);
	fprintf(stderr, "bench: %-14s accepted=%.0f/s settled=%.0f/s cpu=%.2fus/msg main=%.2fus/msg rss=%.1fMB "
			"ns/msg=%.0f failed=%" PRIu64 "\n", tag, t->accepted_per_s, t->settled_per_s, t->cpu_us_per_msg,
			t->main_us_per_msg, t->rss_mb, t->ns_per_msg, t->failed);
	if(res.c.failed) bench_note(b, "%s: %" PRIu64 " messages unanswered", tag, res.c.failed);
	if(res.c.rejected) bench_note(b, "%s: %" PRIu64 " messages rejected", tag, res.c.rejected);
	kg_pe__result_free(&res);
	return 0;
}

/* Latency run r at the fixed rate. */
int bench_latency_run(struct bench *b, enum cfgid cfg, int r)
{
	struct lat_run *l = &b->lat[cfg][r];
	struct kg_pe_opts po;
	struct kg_pe_result res;
	struct broker br;
	struct kcons kc;
	char tag[64];
	int rc, p;

	memset(l, 0, sizeof(*l));
	memset(&kc, 0, sizeof(kc));
	l->sink_p50 = l->sink_p99 = NAN;
	snprintf(tag, sizeof(tag), "lat-%s-%d", cfg_name[cfg], r + 1);
	if(cfg == C_PG && bench_pg_truncate(b)) return -1;
	if(bench_broker_start(b, cfg, tag, &br)) return -1;
	if(cfg == C_KAFKA){
		int64_t lo, hi;

		kc.b = b;
		kc.start = calloc((size_t)b->kparts, sizeof(*kc.start));
		for(p = 0; p < b->kparts; p++){
			if(rd_kafka_query_watermark_offsets(b->kc, "raw", p, &lo, &hi, 5000)) hi = RD_KAFKA_OFFSET_END;
			kc.start[p] = hi;
		}
		kc.since_ms = INT64_MAX;
		pthread_create(&kc.th, NULL, bench_kcons_main, &kc);
	}
	if(cfg == C_PG || cfg == C_KAFKA){
		/* one message through the whole path first: the sink connects lazily, and the
		 * consumer needs its first fetch going; the measurement is of the steady state */
		int64_t deadline = bench_mono_ns() + 15000000000LL;

		run_opts(b, &po, br.port);
		po.nkits = 1;
		po.messages = 1;
		if(kg_pe__run(&po, &res) == 0){
			if(cfg == C_PG){
				bench_pg_wait_rows(b, 1, 15);
				bench_pg_truncate(b);
			}else{
				while(__atomic_load_n(&kc.seen, __ATOMIC_ACQUIRE) < 1 && bench_mono_ns() < deadline) bench_sleep_ms(10);
			}
		}
		kg_pe__result_free(&res);
		if(cfg == C_KAFKA) __atomic_store_n(&kc.since_ms, bench_real_ms(), __ATOMIC_RELEASE);
	}
	run_opts(b, &po, br.port);
	po.rate = b->o.rate;
	po.duration_s = b->o.lat_duration;
	rc = kg_pe__run(&po, &res);
	if(rc){
		fprintf(stderr, "bench: %s: %s\n", tag, res.error);
	}else{
		l->failed = res.c.failed;
		l->ack_p50 = kg_pe__percentile_ms(res.lat_us, res.nlat, 50);
		l->ack_p99 = kg_pe__percentile_ms(res.lat_us, res.nlat, 99);
		if(cfg == C_PG){
			uint64_t have = bench_pg_wait_rows(b, res.c.acked, 30);
			char sql[512];
			PGresult *q;

			snprintf(sql, sizeof(sql),
					"SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) "
					"FROM (SELECT extract(epoch FROM (%s - datetime)) * 1000 AS ms FROM raw_measurements) s",
					bench_pg_commit_expr(b));
			q = bench_pg_exec(b, sql);
			if(q && PQntuples(q) == 1 && !PQgetisnull(q, 0, 0)){
				l->sink_p50 = strtod(PQgetvalue(q, 0, 0), NULL);
				l->sink_p99 = strtod(PQgetvalue(q, 0, 1), NULL);
				l->have_sink = 1;
			}
			PQclear(q);
			l->missing = res.c.acked - have;
		}else if(cfg == C_KAFKA){
			int64_t deadline = bench_mono_ns() + 60000000000LL;

			size_t got;

			while((got = __atomic_load_n(&kc.n, __ATOMIC_ACQUIRE)) < res.c.acked && bench_mono_ns() < deadline
					&& !g_interrupted){
				bench_sleep_ms(20);
			}
			l->missing = res.c.acked > got ? res.c.acked - got : 0;
		}
	}
	if(cfg == C_KAFKA){
		__atomic_store_n(&kc.stop, 1, __ATOMIC_RELEASE);
		pthread_join(kc.th, NULL);
		if(kc.n){
			l->sink_p50 = kg_pe__percentile_ms(kc.lat_us, kc.n, 50);
			l->sink_p99 = kg_pe__percentile_ms(kc.lat_us, kc.n, 99);
			l->have_sink = 1;
		}
		free(kc.lat_us);
		free(kc.start);
	}
	bench_broker_stop(&br);
	if(rc == 0){
		fprintf(stderr, "bench: %-14s sent=%" PRIu64 " acked=%" PRIu64 " puback p50=%.2fms p99=%.2fms sink p50=%.2fms p99=%.2fms\n",
				tag, res.c.sent, res.c.acked, l->ack_p50, l->ack_p99, l->sink_p50, l->sink_p99);
		if(l->failed) bench_note(b, "%s: %" PRIu64 " messages unanswered", tag, l->failed);
		if(l->missing) bench_note(b, "%s: %" PRIu64 " acked messages never reached the sink", tag, l->missing);
	}
	kg_pe__result_free(&res);
	return rc ? -1 : 0;
}

/* ------------------------------------------------------------------ sinks on their own */

/* n RAW records for kits 1..kits with random ids, datetime = now. */
static void fill_records(struct kg_record *recs, size_t n, int kits, uint64_t *seq)
{
	char buf[512];
	size_t i;

	for(i = 0; i < n; i++){
		struct kg_record *rec = &recs[i];
		int kit = 1 + (int)(*seq % (uint64_t)kits);

		memset(rec, 0, offsetof(struct kg_record, values));
		rec->kind = KG_KIND_RAW;
		kg_pe__payload(buf, sizeof(buf), kit, *seq, 0, KG_PE_INV_COUNT, bench_real_ms(), rec->id);
		snprintf(rec->serial, sizeof(rec->serial), "k-test-%04d", kit);
		rec->peripheral = kit * 10 + 1 + (int)(*seq % 3);
		rec->quantity_type = 1 + (int)((*seq / 3) % 3);
		rec->datetime_ms = bench_real_ms();
		rec->value = (double)*seq;
		(*seq)++;
	}
}

/* Rows/s of kg_pg__write with batches of size batch for about seconds s; NAN on failure. */
double bench_pg_alone_run(struct bench *b, int batch, double seconds)
{
	struct kg_record *recs = calloc((size_t)batch, sizeof(*recs));
	uint8_t *status = calloc((size_t)batch, 1);
	struct kg_pg *pg = kg_pg__new(b->o.database_url);
	uint64_t seq = 0, rows = 0;
	int64_t t0, t1;
	double rate = NAN;
	int i;

	if(!recs || !status || !pg || bench_pg_truncate(b)) goto out;
	fill_records(recs, 1, b->o.kits, &seq);   /* connect and warm the caches */
	if(kg_pg__write(pg, recs, 1, status)) goto fail;
	t0 = bench_mono_ns();
	do{
		fill_records(recs, (size_t)batch, b->o.kits, &seq);
		if(kg_pg__write(pg, recs, (size_t)batch, status)) goto fail;
		for(i = 0; i < batch; i++) rows += status[i] == KG_PG_ROW_OK;
		t1 = bench_mono_ns();
	}while((double)(t1 - t0) / 1e9 < seconds && !g_interrupted);
	rate = (double)rows / ((double)(t1 - t0) / 1e9);
	if(rows != seq - 1) bench_note(b, "postgres alone, batch %d: %" PRIu64 " of %" PRIu64 " rows not OK", batch, seq - 1 - rows, seq - 1);
	goto out;
fail:
	bench_note(b, "postgres alone, batch %d: kg_pg__write failed", batch);
out:
	if(pg) kg_pg__free(pg);
	free(recs);
	free(status);
	return rate;
}

struct kdr {
	uint64_t ok, failed;
};

static void kafka_alone_dr(void *opaque, int err, const char *errstr, void *ud)
{
	struct kdr *d = ud;

	(void)opaque;
	(void)errstr;
	if(err) d->failed++;
	else d->ok++;
}

/* Messages/s produced and delivered (delivery report OK) with kafka.batch.num.messages = batch. */
double bench_kafka_alone_run(struct bench *b, int batch, double seconds)
{
	char bs[32], linger[16], err[512], json[512], topic[sizeof("kit//measurement/raw") + KG_SERIAL_MAX];
	struct kg_opt opts[] = {
		{"sink", "kafka"}, {"kafka_brokers", b->bootstrap}, {"kafka.batch.num.messages", bs},
		{"kafka.linger.ms", linger}, {"spool_dir", b->tmp},
	};
	struct kg_config cfg;
	struct kg_kafka *k;
	struct kg_record rec;
	struct kdr d = {0, 0};
	uint64_t seq = 0, produced = 0;
	int64_t t0, t1;
	size_t jl;
	double rate = NAN;
	int rc;

	snprintf(bs, sizeof(bs), "%d", batch);
	snprintf(linger, sizeof(linger), "%d", batch == 1 ? 0 : batch == 100 ? 2 : 5);
	if(kg_config__parse(&cfg, opts, (int)(sizeof(opts) / sizeof(opts[0])), err, sizeof(err))){
		bench_note(b, "kafka alone: config: %s", err);
		return NAN;
	}
	k = kg_kafka__new(&cfg, kafka_alone_dr, &d, err, sizeof(err));
	if(!k){
		bench_note(b, "kafka alone: %s", err);
		kg_config__free(&cfg);
		return NAN;
	}
	/* warm up: metadata, producer id */
	fill_records(&rec, 1, b->o.kits, &seq);
	jl = kg_json__record(&rec, json, sizeof(json));
	kg_kafka__produce(k, "raw", rec.serial, strlen(rec.serial), json, jl, 0, NULL, NULL);
	kg_kafka__flush(k, 10000);
	d.ok = d.failed = 0;
	t0 = bench_mono_ns();
	do{
		fill_records(&rec, 1, b->o.kits, &seq);
		jl = kg_json__record(&rec, json, sizeof(json));
		snprintf(topic, sizeof(topic), "kit/%s/measurement/raw", rec.serial);
		while((rc = kg_kafka__produce(k, "raw", rec.serial, strlen(rec.serial), json, jl, 0, topic, NULL)) == 1){
			kg_kafka__poll(k, 1);
		}
		if(rc < 0){
			bench_note(b, "kafka alone, batch %d: produce failed", batch);
			break;
		}
		produced++;
		if((produced & 255) == 0){
			kg_kafka__poll(k, 0);
			/* keep the local queue bounded so the final flush stays short */
			while(kg_kafka__outq_len(k) > 20000) kg_kafka__poll(k, 1);
		}
		t1 = bench_mono_ns();
	}while((double)(t1 - t0) / 1e9 < seconds && !g_interrupted);
	if(kg_kafka__flush(k, 60000)) bench_note(b, "kafka alone, batch %d: messages still undelivered after 60 s", batch);
	t1 = bench_mono_ns();
	rate = (double)d.ok / ((double)(t1 - t0) / 1e9);
	if(d.failed) bench_note(b, "kafka alone, batch %d: %" PRIu64 " delivery failures", batch, d.failed);
	kg_kafka__free(k);
	kg_config__free(&cfg);
	return rate;
}
