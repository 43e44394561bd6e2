/* bench.h -- kitgate-bench's shared state and the functions its files share: the harness
 * (bench_harness.c: clocks, processes, PostgreSQL, the Kafka mock, brokers), the runs
 * (bench_runs.c), the report (bench_report.c) and main (bench_main.c). The main thread drives
 * everything; only the Kafka latency consumer (struct kcons, bench_kcons_main) has its own thread. */
#ifndef KITGATE_BENCH_H
#define KITGATE_BENCH_H

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <mosquitto.h>

#include "kitgate/config.h"
#include "kitgate/kafka.h"
#include "kitgate/pgwriter.h"
#include "kitgate/record.h"
#include "kitgate/json.h"
#include "pubengine.h"

#define MAXREP 50
#define STATUS_TOPIC "$SYS/broker/kitgate/status"

enum cfgid { C_BARE, C_NONE, C_PG, C_KAFKA, C_N };
extern const char *const cfg_name[C_N];
extern const char *const cfg_label[C_N];

struct opts {
	const char *plugin, *mosquitto, *mosquitto_passwd, *database_url, *kafka_mock;
	int kits, window, repeat;
	uint64_t messages;
	double rate, lat_duration, sink_seconds;
	int enabled[C_N];
	int sink_alone;
	const char *broker_opts[32];
	int nbroker_opts;
	int keep, verbose;
};

/* One measured throughput run. */
struct tp_run {
	double accepted_per_s, settled_per_s, cpu_us_per_msg, main_us_per_msg, rss_mb, ns_per_msg;
	uint64_t failed;
};

struct lat_run {
	double ack_p50, ack_p99, sink_p50, sink_p99;
	int have_sink;
	uint64_t failed, missing;
};

struct broker {
	pid_t pid;
	int port;
	char dir[PATH_MAX];
};

struct bench {
	struct opts o;
	char tmp[256];
	char passwd[300];
	PGconn *pg;
	int commit_ts;            /* track_commit_timestamp is on */
	pid_t kafka_pid;
	int kafka_in;             /* write end of the mock's stdin */
	char bootstrap[640];
	rd_kafka_t *kc;           /* consumer: watermarks and delivery latency */
	int kparts;
	int nruns;
	struct tp_run tp[C_N][MAXREP];
	struct lat_run lat[C_N][MAXREP];
	double pg_alone[3][MAXREP], kafka_alone[3][MAXREP];
	int have_tp[C_N], have_lat[C_N], have_pg_alone, have_kafka_alone;
	char notes[4096];
	char load_start[64], pg_settings[128];
};

extern volatile sig_atomic_t g_interrupted; /* set by the signal handler (bench_main.c) */
extern struct bench *g_bench;

extern const int batch_sizes[3];

/* The delivery-latency consumer: reads topic raw from the offsets given, and records
 * receive time - payload datetime for every message. */
struct kcons {
	struct bench *b;
	int64_t *start;        /* per partition */
	uint32_t *lat_us;      /* latencies of messages with datetime >= since_ms */
	size_t n, cap;         /* n: atomic */
	uint64_t seen;         /* every message consumed; atomic */
	int64_t since_ms;      /* atomic */
	int stop;              /* atomic */
	pthread_t th;
};

/* bench_harness.c */
int64_t bench_mono_ns(void);
int64_t bench_real_ms(void);
void bench_sleep_ms(int ms);
void bench_note(struct bench *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
double bench_median(const double *v, int n);
double bench_cpu_seconds(pid_t pid, pid_t tid);
double bench_peak_rss_mb(pid_t pid);
int bench_run_cmd(char *const argv[]);
void bench_loadavg(char *out, size_t n);
void bench_rm_rf(const char *dir);
PGresult *bench_pg_exec(struct bench *b, const char *sql);
double bench_pg_double(struct bench *b, const char *sql);
int bench_pg_setup(struct bench *b);
int bench_pg_truncate(struct bench *b);
const char *bench_pg_commit_expr(const struct bench *b);
uint64_t bench_pg_wait_rows(struct bench *b, uint64_t n, int stall_s);
int bench_kafka_start(struct bench *b);
void bench_kafka_stop(struct bench *b);
int bench_kafka_consumer(struct bench *b);
int64_t bench_kafka_high(struct bench *b);
void *bench_kcons_main(void *arg);
int bench_broker_start(struct bench *b, enum cfgid cfg, const char *tag, struct broker *br);
void bench_broker_stop(struct broker *br);
cJSON *bench_fetch_status(int port, int timeout_ms);

/* A QoS 1 subscriber to kit/+/measurement/raw (user server) on its own libmosquitto thread, to
 * measure bare mosquitto's delivery rate to one subscriber. start: NULL if it could not connect
 * and subscribe within 10 s. wait: until n messages arrived or timeout_s. stop: the count and the
 * realtime ms of the last delivery (either may be NULL), then free. Bench thread. */
struct bench_sub;
struct bench_sub *bench_sub_start(int port);
void bench_sub_wait(struct bench_sub *s, uint64_t n, int timeout_s);
void bench_sub_stop(struct bench_sub *s, uint64_t *received, int64_t *last_ms);
double bench_json_num(const cJSON *o, const char *a, const char *bkey);

/* bench_runs.c */
int bench_throughput_run(struct bench *b, enum cfgid cfg, int r);
int bench_latency_run(struct bench *b, enum cfgid cfg, int r);
double bench_pg_alone_run(struct bench *b, int batch, double seconds);
double bench_kafka_alone_run(struct bench *b, int batch, double seconds);

/* bench_report.c */
void bench_report(struct bench *b);

#endif
