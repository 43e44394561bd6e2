/* kitgate-kafka-connector.c -- the Kafka -> PostgreSQL half of a `sink kafka` deployment: consume, validate, write, commit. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "kitgate/config.h"
#include "kitgate/log.h"
#include "kitgate/rdkconf.h"
#include "kitgate/pgwriter.h"
#include "kitgate/record.h"
#include "kitgate/uuid.h"
#include "kitgate/validate.h"
#include "metrics_http.h"

#define DEFAULT_GROUP "kitgate-kafka-connector"
#define PROGRESS_INTERVAL_MS 10000
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: kitgate-kafka-connector [run] [--stream raw|aggregate|all] [--metrics-listen ADDR:PORT]\n"
		"Consumes kit measurements that kitgate (sink kafka) produced to Kafka, validates them and\n"
		"writes them into the AstroPlant PostgreSQL schema; offsets are committed only after the\n"
		"rows are committed. --stream chooses the topics (default all).\n"
		"--metrics-listen serves Prometheus /metrics (rows, rejections, consumer lag per partition)\n"
		"  on ADDR:PORT (e.g. 127.0.0.1:9465; * for every address); also KITGATE_METRICS_LISTEN.\n"
		"Environment:\n"
		"  DATABASE_URL          libpq URI (SQLAlchemy forms accepted)\n"
		"  KAFKA_HOST, KAFKA_PORT bootstrap servers (default localhost:9092)\n"
		"  KAFKA_USERNAME, KAFKA_PASSWORD  SASL PLAIN when set\n"
		"  KAFKA_CONSUMER_GROUP  consumer group (default " DEFAULT_GROUP ")\n"
		"  KAFKA_TOPIC_RAW, KAFKA_TOPIC_AGGREGATE  topics (default raw, aggregate)\n"
		"  LOG_LEVEL             DEBUG, INFO, WARNING, ERROR (default INFO)\n"
		"SIGTERM/SIGINT: finish and commit the current batch, leave the group, exit.\n");
}

static int64_t now_ms(int clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleep ms, waking early when a stop is requested. */
static void nap(int ms)
{
	while(ms > 0 && !g_stop){
		int step = ms < 100 ? ms : 100;
		struct timespec ts = {0, (long)step * 1000000L};

		nanosleep(&ts, NULL);
		ms -= step;
	}
}

/* librdkafka log lines at WARNING and worse go to kg_log (stderr). */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk;
	if(level > LOG_WARNING) return;
	kg_log(level <= LOG_ERR ? KG_LOG_ERROR : KG_LOG_WARNING, "kafka: %s: %s", fac, buf);
}

/* Committed offsets of assigned partitions that have no consumer position yet: a partition
 * assigned by a rebalance has none until a message arrives on it, so an idle, caught-up
 * partition would otherwise count as lagging by its whole length. Filled by publish_metrics
 * (one rd_kafka_committed round trip per assignment), emptied by every rebalance. Main thread
 * only: the rebalance callback is served from rd_kafka_consumer_poll. */
static rd_kafka_topic_partition_list_t *g_lag_committed;
static int64_t g_lag_retry_at;   /* after a failed lookup, not before this (monotonic ms) */

/* Forget the committed offsets, then take the assignment (eager or cooperative protocol). */
static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	const char *proto = rd_kafka_rebalance_protocol(rk);
	int coop = proto && !strcmp(proto, "COOPERATIVE");
	rd_kafka_error_t *e = NULL;
	rd_kafka_resp_err_t rc = RD_KAFKA_RESP_ERR_NO_ERROR;

	(void)opaque;
	if(g_lag_committed){
		rd_kafka_topic_partition_list_destroy(g_lag_committed);
		g_lag_committed = NULL;
	}
	g_lag_retry_at = 0;
	if(err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS){
		if(coop) e = rd_kafka_incremental_assign(rk, parts);
		else rc = rd_kafka_assign(rk, parts);
	}else{
		if(err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS){
			kg_log(KG_LOG_WARNING, "kafka: rebalance error: %s; dropping the assignment", rd_kafka_err2str(err));
		}
		if(coop) e = rd_kafka_incremental_unassign(rk, parts);
		else rc = rd_kafka_assign(rk, NULL);
	}
	if(e){
		kg_log(KG_LOG_WARNING, "kafka: rebalance: %s", rd_kafka_error_string(e));
		rd_kafka_error_destroy(e);
	}else if(rc){
		kg_log(KG_LOG_WARNING, "kafka: rebalance: %s", rd_kafka_err2str(rc));
	}
}

/* The consumer handle, subscribed to topics. NULL on error (logged). librdkafka's threads are
 * started with every signal blocked, so SIGTERM/SIGINT reach the main thread's handler. */
static rd_kafka_t *make_consumer(const struct kg_config *cfg, const char *group, rd_kafka_topic_partition_list_t *topics)
{
	const struct kg_rdkconf_prop defaults[] = {
		{"client.id", "kitgate-kafka-connector"},
		{"group.id", group},
		{"enable.auto.commit", "false"},
		{"enable.auto.offset.store", "false"},
		{"auto.offset.reset", "earliest"},
		{"enable.partition.eof", "false"},
		/* a killed connector's partitions move to the others after 10 s, not 45 */
		{"session.timeout.ms", "10000"},
	};
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk;
	rd_kafka_resp_err_t rc;
	char why[512];

	conf = kg_rdkconf__new(cfg, defaults, sizeof(defaults) / sizeof(defaults[0]), why, sizeof(why));
	if(!conf){
		kg_log(KG_LOG_ERROR, "%s", why);
		return NULL;
	}
	rd_kafka_conf_set_log_cb(conf, log_cb);
	rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);

	rk = kg_rdkconf__create(RD_KAFKA_CONSUMER, conf, why, sizeof(why));
	if(!rk){
		kg_log(KG_LOG_ERROR, "kafka: %s", why);
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rd_kafka_poll_set_consumer(rk);
	rc = rd_kafka_subscribe(rk, topics);
	if(rc){
		kg_log(KG_LOG_ERROR, "kafka: subscribe: %s", rd_kafka_err2str(rc));
		rd_kafka_destroy(rk);
		return NULL;
	}
	return rk;
}

struct counters {
	uint64_t consumed, invalid, rejected[KG_PG_ROW_COUNT], batches, commit_errors;
};

/* Store the next offset of every message of the batch and commit synchronously. A failed
 * commit only means the batch is consumed again (after a rebalance or a restart); the rows are
 * idempotent (ON CONFLICT (id) DO NOTHING). */
static void commit_batch(rd_kafka_t *rk, rd_kafka_message_t **msgs, size_t n, struct counters *c)
{
	rd_kafka_topic_partition_list_t *offs = rd_kafka_topic_partition_list_new((int)n);
	rd_kafka_resp_err_t rc;
	size_t i;

	for(i = 0; i < n; i++){
		const char *topic = rd_kafka_topic_name(msgs[i]->rkt);
		rd_kafka_topic_partition_t *p = rd_kafka_topic_partition_list_find(offs, topic, msgs[i]->partition);

		if(!p) p = rd_kafka_topic_partition_list_add(offs, topic, msgs[i]->partition);
		if(msgs[i]->offset + 1 > p->offset) p->offset = msgs[i]->offset + 1;
	}
	rc = rd_kafka_offsets_store(rk, offs);
	if(rc) kg_log(KG_LOG_WARNING, "kafka: storing offsets: %s (partitions revoked?)", rd_kafka_err2str(rc));
	rd_kafka_topic_partition_list_destroy(offs);
	rc = rd_kafka_commit(rk, NULL, 0);
	if(rc && rc != RD_KAFKA_RESP_ERR__NO_OFFSET){
		c->commit_errors++;
		kg_log(KG_LOG_WARNING, "kafka: commit failed: %s; the batch will be consumed again", rd_kafka_err2str(rc));
	}
}

/* Turn the batch's messages into records: invalid messages are logged, counted and skipped
 * (their offsets are still committed: retrying cannot make them valid). Returns the number of
 * records. */
static size_t decode_batch(const struct kg_config *cfg, rd_kafka_message_t **msgs, size_t n,
		struct kg_record *recs, struct counters *c)
{
	const struct kg_limits limits = {
		.max_payload = cfg->max_payload,
		.max_clock_skew_ms = cfg->max_clock_skew_s > INT64_MAX / 1000 ? INT64_MAX : cfg->max_clock_skew_s * 1000,
	};
	int64_t wall = now_ms(CLOCK_REALTIME);
	size_t i, nrec = 0;

	for(i = 0; i < n; i++){
		const rd_kafka_message_t *m = msgs[i];
		const char *topic = rd_kafka_topic_name(m->rkt);
		int kind = strcmp(topic, cfg->kafka_topic_raw) ? KG_KIND_AGGREGATE : KG_KIND_RAW;
		const char *detail = NULL;
		enum kg_reason r;

		if(!m->key || m->key_len == 0 || m->key_len > KG_SERIAL_MAX){
			c->invalid++;
			kg_log(KG_LOG_WARNING, "skipping %s [%" PRId32 "] @%" PRId64 ": key is not a kit serial",
					topic, m->partition, m->offset);
			continue;
		}
		r = kg_validate__measurement(kind, m->key, m->key_len, m->payload, m->len, wall, &limits,
				&recs[nrec], &detail);
		if(r != KG_OK){
			c->invalid++;
			kg_log(KG_LOG_WARNING, "skipping %s [%" PRId32 "] @%" PRId64 " (kit %.*s): %s (%s)",
					topic, m->partition, m->offset, (int)m->key_len, (const char *)m->key,
					kg_reason__name(r), detail ? detail : "-");
			continue;
		}
		nrec++;
	}
	return nrec;
}

/* Write recs with kg_pg__write, retrying with backoff while the database fails. Returns 0 when
 * settled, -1 when a stop was requested before it could be written (nothing committed). */
static int write_batch(struct kg_pg *pg, const struct kg_record *recs, size_t nrec, uint8_t *status, struct counters *c)
{
	int backoff = BACKOFF_MIN_MS;
	size_t i;

	if(nrec == 0) return 0;
	while(kg_pg__write(pg, recs, nrec, status) != 0){
		if(g_stop) return -1;
		kg_log(KG_LOG_WARNING, "database write failed; retrying the batch of %zu in %d ms", nrec, backoff);
		nap(backoff);
		if(g_stop) return -1;
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
	}
	for(i = 0; i < nrec; i++){
		char id[37];

		if(status[i] == KG_PG_ROW_OK || status[i] >= KG_PG_ROW_COUNT) continue;
		c->rejected[status[i]]++;
		kg_uuid__format(recs[i].id, id);
		kg_log(KG_LOG_WARNING, "measurement %s of kit %s rejected: %s", id, recs[i].serial,
				kg_pg__row_name((enum kg_pg_row)status[i]));
	}
	return 0;
}

/* A growing text buffer for the metrics exposition. */
struct text {
	char *buf;
	size_t len, cap;
	int oom;
};

static void text_printf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_printf(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for(;;){
		size_t room = t->cap - t->len;
		va_start(ap, fmt);
		n = vsnprintf(t->buf ? t->buf + t->len : NULL, room, fmt, ap);
		va_end(ap);
		if(n < 0){
			t->oom = 1;
			return;
		}
		if((size_t)n < room){
			t->len += (size_t)n;
			return;
		}
		size_t ncap = (t->cap ? t->cap * 2 : 4096) + (size_t)n;
		char *nb = realloc(t->buf, ncap);
		if(!nb){
			t->oom = 1;
			return;
		}
		t->buf = nb;
		t->cap = ncap;
	}
}

/* Give every partition of parts (positions from rd_kafka_position) that has no position the
 * committed offset instead, where it is known. g_lag_committed learns the ones it does not know
 * yet with one rd_kafka_committed round trip (250 ms at most: it blocks the consuming thread);
 * after an error (say the group coordinator is down, for the request or for one partition) not
 * again for 10 s or until the next rebalance, so an outage does not cost the consumer a quarter
 * of every second. */
static void lag_committed_fill(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts)
{
	rd_kafka_topic_partition_list_t *ask = NULL;
	int64_t now = now_ms(CLOCK_MONOTONIC);
	int i, failed = 0;

	for(i = 0; i < parts->cnt && now >= g_lag_retry_at; i++){
		const rd_kafka_topic_partition_t *p = &parts->elems[i];

		if(p->offset >= 0) continue;
		if(g_lag_committed && rd_kafka_topic_partition_list_find(g_lag_committed, p->topic, p->partition)) continue;
		if(!ask) ask = rd_kafka_topic_partition_list_new(parts->cnt);
		rd_kafka_topic_partition_list_add(ask, p->topic, p->partition);
	}
	if(ask){
		if(rd_kafka_committed(rk, ask, 250) == RD_KAFKA_RESP_ERR_NO_ERROR){
			if(!g_lag_committed) g_lag_committed = rd_kafka_topic_partition_list_new(ask->cnt);
			for(i = 0; i < ask->cnt; i++){
				if(ask->elems[i].err){
					failed = 1;
					continue;
				}
				rd_kafka_topic_partition_list_add(g_lag_committed, ask->elems[i].topic,
						ask->elems[i].partition)->offset = ask->elems[i].offset;
			}
		}else{
			failed = 1;
		}
		if(failed) g_lag_retry_at = now + 10000;
		rd_kafka_topic_partition_list_destroy(ask);
	}
	for(i = 0; i < parts->cnt && g_lag_committed; i++){
		rd_kafka_topic_partition_t *p = &parts->elems[i], *c;

		if(p->offset < 0 && (c = rd_kafka_topic_partition_list_find(g_lag_committed, p->topic, p->partition))){
			p->offset = c->offset;
		}
	}
}

/* Render the Prometheus exposition (counters, writer state, consumer lag per assigned partition
 * from the positions -- the committed offsets before a partition's first message -- and the
 * cached high watermarks: a broker round trip only after a rebalance) and hand it to the HTTP
 * thread. Main thread. */
static void publish_metrics(struct kg_metrics_http *mh, rd_kafka_t *rk, struct kg_pg *pg,
		const struct counters *c, double rows_per_s)
{
	static const char *row_reason[KG_PG_ROW_COUNT] = {
		[KG_PG_ROW_UNKNOWN_PERIPHERAL] = "unknown_peripheral",
		[KG_PG_ROW_FOREIGN_PERIPHERAL] = "foreign_peripheral",
		[KG_PG_ROW_UNKNOWN_QUANTITY_TYPE] = "unknown_quantity_type",
		[KG_PG_ROW_REJECTED] = "db_rejected",
	};
	rd_kafka_topic_partition_list_t *parts = NULL;
	struct kg_pg_stats st;
	struct text t = {0};
	int64_t total_lag = 0;
	int i;

	kg_pg__stats(pg, &st);
	text_printf(&t, "# HELP kitgate_connector_consumed_total Kafka messages consumed.\n"
			"# TYPE kitgate_connector_consumed_total counter\n"
			"kitgate_connector_consumed_total %" PRIu64 "\n", c->consumed);
	text_printf(&t, "# HELP kitgate_connector_invalid_total Consumed messages that failed validation.\n"
			"# TYPE kitgate_connector_invalid_total counter\n"
			"kitgate_connector_invalid_total %" PRIu64 "\n", c->invalid);
	text_printf(&t, "# HELP kitgate_connector_rows_inserted_total Rows inserted into PostgreSQL.\n"
			"# TYPE kitgate_connector_rows_inserted_total counter\n"
			"kitgate_connector_rows_inserted_total %" PRIu64 "\n", st.rows_inserted);
	text_printf(&t, "# HELP kitgate_connector_rows_duplicate_total Rows already present (same id).\n"
			"# TYPE kitgate_connector_rows_duplicate_total counter\n"
			"kitgate_connector_rows_duplicate_total %" PRIu64 "\n", st.rows_duplicate);
	text_printf(&t, "# HELP kitgate_connector_rows_rejected_total Rows the writer refused, by reason.\n"
			"# TYPE kitgate_connector_rows_rejected_total counter\n");
	for(i = 1; i < KG_PG_ROW_COUNT; i++){
		text_printf(&t, "kitgate_connector_rows_rejected_total{reason=\"%s\"} %" PRIu64 "\n",
				row_reason[i], c->rejected[i]);
	}
	text_printf(&t, "# HELP kitgate_connector_batches_total Batches written and committed.\n"
			"# TYPE kitgate_connector_batches_total counter\n"
			"kitgate_connector_batches_total %" PRIu64 "\n", c->batches);
	text_printf(&t, "# HELP kitgate_connector_db_errors_total Failed batch writes (retried).\n"
			"# TYPE kitgate_connector_db_errors_total counter\n"
			"kitgate_connector_db_errors_total %" PRIu64 "\n", st.errors);
	text_printf(&t, "# HELP kitgate_connector_commit_errors_total Failed offset commits.\n"
			"# TYPE kitgate_connector_commit_errors_total counter\n"
			"kitgate_connector_commit_errors_total %" PRIu64 "\n", c->commit_errors);
	text_printf(&t, "# HELP kitgate_connector_db_connected Whether the last write left a working connection.\n"
			"# TYPE kitgate_connector_db_connected gauge\n"
			"kitgate_connector_db_connected %d\n", kg_pg__connected(pg) ? 1 : 0);
	text_printf(&t, "# HELP kitgate_connector_rows_per_second Rows written per second over the last interval.\n"
			"# TYPE kitgate_connector_rows_per_second gauge\n"
			"kitgate_connector_rows_per_second %.1f\n", rows_per_s);
	text_printf(&t, "# HELP kitgate_connector_consumer_lag Messages behind the high watermark, per assigned partition.\n"
			"# TYPE kitgate_connector_consumer_lag gauge\n");
	if(rd_kafka_assignment(rk, &parts) == RD_KAFKA_RESP_ERR_NO_ERROR && parts){
		rd_kafka_position(rk, parts);
		lag_committed_fill(rk, parts);
		for(i = 0; i < parts->cnt; i++){
			rd_kafka_topic_partition_t *p = &parts->elems[i];
			int64_t lo = -1, hi = -1, from = p->offset, lag;

			if(rd_kafka_get_watermark_offsets(rk, p->topic, p->partition, &lo, &hi) || hi < 0) continue;
			/* nothing known, or before what retention kept: from the log start */
			if(from < 0 || from < lo) from = lo > 0 ? lo : 0;
			lag = hi - from;
			if(lag < 0) lag = 0;
			total_lag += lag;
			text_printf(&t, "kitgate_connector_consumer_lag{topic=\"%s\",partition=\"%d\"} %" PRId64 "\n",
					p->topic, (int)p->partition, lag);
		}
	}
	if(parts) rd_kafka_topic_partition_list_destroy(parts);
	text_printf(&t, "# HELP kitgate_connector_consumer_lag_overall Sum of the lag over this connector's partitions.\n"
			"# TYPE kitgate_connector_consumer_lag_overall gauge\n"
			"kitgate_connector_consumer_lag_overall %" PRId64 "\n", total_lag);
	if(!t.oom) kg_metrics_http__set(mh, t.buf, t.len);
	free(t.buf);
}

/* Parses argv; returns the --stream value ("raw", "aggregate", "all"), or NULL after printing
 * usage (*code is the exit status). */
static const char *parse_args(int argc, char **argv, int *code, const char **metrics)
{
	static const struct option longopts[] = {
		{"stream", required_argument, NULL, 's'},
		{"metrics-listen", required_argument, NULL, 'm'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *stream = "all";
	int c;

	while((c = getopt_long(argc, argv, "s:m:h", longopts, NULL)) != -1){
		switch(c){
		case 's':
			stream = optarg;
			break;
		case 'm':
			*metrics = optarg;
			break;
		case 'h':
			usage(stdout);
			*code = 0;
			return NULL;
		default:
			usage(stderr);
			*code = 2;
			return NULL;
		}
	}
	if(optind < argc && !strcmp(argv[optind], "run")) optind++;
	if(optind != argc || (strcmp(stream, "raw") && strcmp(stream, "aggregate") && strcmp(stream, "all"))){
		usage(stderr);
		*code = 2;
		return NULL;
	}
	return stream;
}

int main(int argc, char **argv)
{
	struct kg_opt opts[2];
	int nopts = 0, code = 0;
	struct kg_config cfg;
	char err[512];
	const char *stream, *group, *v, *metrics_listen;
	struct kg_metrics_http *mh = NULL;
	int64_t last_metrics = 0;
	uint64_t metrics_rows = 0;
	rd_kafka_topic_partition_list_t *topics;
	rd_kafka_t *rk;
	struct kg_pg *pg;
	rd_kafka_message_t **msgs;
	struct kg_record *recs;
	uint8_t *status;
	struct counters c = {0};
	struct sigaction sa;
	int64_t last_report;
	uint64_t last_rows = 0;
	size_t batch;

	metrics_listen = getenv("KITGATE_METRICS_LISTEN");
	stream = parse_args(argc, argv, &code, &metrics_listen);
	if(!stream) return code;

	/* The plugin's configuration code does the environment (DATABASE_URL, KAFKA_HOST/PORT,
	 * KAFKA_USERNAME/PASSWORD, LOG_LEVEL); the topic variables are passed in as options. */
	if((v = getenv("KAFKA_TOPIC_RAW")) && v[0]){
		opts[nopts].key = "kafka_topic_raw";
		opts[nopts++].value = (char *)v;
	}
	if((v = getenv("KAFKA_TOPIC_AGGREGATE")) && v[0]){
		opts[nopts].key = "kafka_topic_aggregate";
		opts[nopts++].value = (char *)v;
	}
	if(kg_config__parse(&cfg, opts, nopts, err, sizeof(err))){
		fprintf(stderr, "kitgate-kafka-connector: %s\n", err);
		return 1;
	}
	kg_log__configure(NULL, cfg.log_level);
	group = getenv("KAFKA_CONSUMER_GROUP");
	if(!group || !group[0]) group = DEFAULT_GROUP;
	if(!strcmp(cfg.kafka_topic_raw, cfg.kafka_topic_aggregate)){
		kg_log(KG_LOG_ERROR, "KAFKA_TOPIC_RAW and KAFKA_TOPIC_AGGREGATE must differ");
		kg_config__free(&cfg);
		return 1;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	topics = rd_kafka_topic_partition_list_new(2);
	if(strcmp(stream, "aggregate")) rd_kafka_topic_partition_list_add(topics, cfg.kafka_topic_raw, RD_KAFKA_PARTITION_UA);
	if(strcmp(stream, "raw")) rd_kafka_topic_partition_list_add(topics, cfg.kafka_topic_aggregate, RD_KAFKA_PARTITION_UA);
	rk = make_consumer(&cfg, group, topics);
	rd_kafka_topic_partition_list_destroy(topics);
	batch = (size_t)cfg.batch_size;
	pg = kg_pg__new(cfg.database_url);
	msgs = calloc(batch, sizeof(*msgs));
	recs = calloc(batch, sizeof(*recs));
	status = calloc(batch, 1);
	if(!rk || !pg || !msgs || !recs || !status){
		if(rk) rd_kafka_destroy(rk);
		if(pg) kg_pg__free(pg);
		free(msgs);
		free(recs);
		free(status);
		kg_config__free(&cfg);
		kg_log(KG_LOG_ERROR, "start-up failed");
		return 1;
	}
	if(metrics_listen && metrics_listen[0]){
		mh = kg_metrics_http__start(metrics_listen, err, sizeof(err));
		if(!mh){
			kg_log(KG_LOG_ERROR, "%s", err);
			g_stop = 1; /* a bad option: exit like the other start-up failures, after cleanup */
			code = 1;
		}else{
			kg_log(KG_LOG_INFO, "Prometheus metrics on http://%s/metrics", metrics_listen);
		}
	}
	kg_log(KG_LOG_INFO, "consuming %s (brokers %s, group %s), batches of %zu / %d ms",
			stream, cfg.kafka_brokers, group, batch, cfg.batch_ms);

	last_report = now_ms(CLOCK_MONOTONIC);
	while(!g_stop){
		size_t n = 0, nrec, i;
		int64_t deadline = 0;

		/* Gather up to batch messages, or what arrives within batch_ms of the first one. */
		while(n < batch && !g_stop){
			int timeout = 200;
			rd_kafka_message_t *m;

			if(n > 0){
				int64_t left = deadline - now_ms(CLOCK_MONOTONIC);

				if(left <= 0) break;
				timeout = left < 200 ? (int)left : 200;
			}
			m = rd_kafka_consumer_poll(rk, timeout);
			if(!m){
				if(n == 0) break; /* idle: let the outer loop report progress */
				continue;
			}
			if(m->err){
				kg_log(m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF ? KG_LOG_DEBUG : KG_LOG_WARNING,
						"kafka: %s", rd_kafka_message_errstr(m));
				rd_kafka_message_destroy(m);
				continue;
			}
			if(n == 0) deadline = now_ms(CLOCK_MONOTONIC) + cfg.batch_ms;
			msgs[n++] = m;
		}

		if(n > 0){
			c.consumed += n;
			nrec = decode_batch(&cfg, msgs, n, recs, &c);
			if(write_batch(pg, recs, nrec, status, &c) == 0){
				commit_batch(rk, msgs, n, &c);
				c.batches++;
				kg_log(KG_LOG_DEBUG, "batch of %zu messages (%zu records) written and committed", n, nrec);
			}else{
				kg_log(KG_LOG_WARNING, "stopping with a batch of %zu not written; it will be consumed again", n);
			}
			for(i = 0; i < n; i++) rd_kafka_message_destroy(msgs[i]);
		}

		if(mh && now_ms(CLOCK_MONOTONIC) - last_metrics >= 1000){
			struct kg_pg_stats st;
			int64_t t = now_ms(CLOCK_MONOTONIC);
			uint64_t rows;

			kg_pg__stats(pg, &st);
			rows = st.rows_inserted + st.rows_duplicate;
			publish_metrics(mh, rk, pg, &c, last_metrics ? (double)(rows - metrics_rows) * 1000.0
					/ (double)(t - last_metrics) : 0.0);
			metrics_rows = rows;
			last_metrics = t;
		}
		if(now_ms(CLOCK_MONOTONIC) - last_report >= PROGRESS_INTERVAL_MS){
			struct kg_pg_stats st;
			int64_t t = now_ms(CLOCK_MONOTONIC);
			uint64_t rows;

			kg_pg__stats(pg, &st);
			rows = st.rows_inserted + st.rows_duplicate;
			kg_log(KG_LOG_INFO, "%.1f rows/s; total consumed %" PRIu64 ", inserted %" PRIu64
					", duplicates %" PRIu64 ", invalid %" PRIu64 ", rejected %" PRIu64
					", db errors %" PRIu64 ", commit errors %" PRIu64,
					(double)(rows - last_rows) * 1000.0 / (double)(t - last_report), c.consumed,
					st.rows_inserted, st.rows_duplicate, c.invalid,
					c.rejected[KG_PG_ROW_UNKNOWN_PERIPHERAL] + c.rejected[KG_PG_ROW_FOREIGN_PERIPHERAL]
					+ c.rejected[KG_PG_ROW_UNKNOWN_QUANTITY_TYPE] + c.rejected[KG_PG_ROW_REJECTED],
					st.errors, c.commit_errors);
			last_rows = rows;
			last_report = t;
		}
	}

	{
		struct kg_pg_stats st;

		kg_pg__stats(pg, &st);
		kg_log(KG_LOG_INFO, "stopping: consumed %" PRIu64 ", invalid %" PRIu64 ", inserted %" PRIu64
				", duplicates %" PRIu64 ", batches %" PRIu64 "; leaving the consumer group",
				c.consumed, c.invalid, st.rows_inserted, st.rows_duplicate, c.batches);
	}
	kg_metrics_http__stop(mh);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	if(g_lag_committed) rd_kafka_topic_partition_list_destroy(g_lag_committed);
	kg_pg__free(pg);
	free(msgs);
	free(recs);
	free(status);
	kg_config__free(&cfg);
	return code;
}
