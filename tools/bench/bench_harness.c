/* bench_harness.c -- kitgate-bench harness: clocks, ports, processes, PostgreSQL set-up, the Kafka
 * mock cluster and its consumer, mosquitto brokers and the plugin's status. */
#include <stdatomic.h>

#include "bench.h"

const char *const cfg_name[C_N] = {"bare", "none", "postgres", "kafka"};
const char *const cfg_label[C_N] = {"bare mosquitto", "kitgate, sink none", "kitgate, sink postgres",
	"kitgate, sink kafka (mock)"};
const int batch_sizes[3] = {1, 100, 1000};

/* ------------------------------------------------------------------ helpers */

int64_t bench_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t bench_real_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void bench_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while(nanosleep(&ts, &ts) == -1 && errno == EINTR){}
}

void bench_note(struct bench *b, const char *fmt, ...)
{
	size_t len = strlen(b->notes);
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "bench: NOTE: %s\n", line);
	snprintf(b->notes + len, sizeof(b->notes) - len, "- %s\n", line);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median of n values (copied, not sorted in place); NAN when n == 0. */
double bench_median(const double *v, int n)
{
	double t[MAXREP];

	if(n <= 0) return NAN;
	memcpy(t, v, (size_t)n * sizeof(*t));
	qsort(t, (size_t)n, sizeof(*t), cmp_double);
	return (n % 2) ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

/* A TCP port on 127.0.0.1 that was free a moment ago. Returns the port or -1. */
static int free_port(void)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if(fd < 0) return -1;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0){
		port = ntohs(a.sin_port);
	}
	close(fd);
	return port;
}

static int port_open(int port)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

	if(fd < 0) return 0;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

/* utime+stime in seconds of a process (tid 0) or of one of its threads. -1 on error. */
double bench_cpu_seconds(pid_t pid, pid_t tid)
{
	char path[64], buf[1024], *p;
	unsigned long ut, st;
	FILE *f;
	size_t n;

	if(tid) snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
	else snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if(!f) return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if(!p) return -1;
	/* fields after the command: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
	if(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* VmHWM of a process in MiB, or -1. */
double bench_peak_rss_mb(pid_t pid)
{
	char path[64], line[256];
	double mb = -1;
	long kb;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if(!f) return -1;
	while(fgets(line, sizeof(line), f)){
		if(sscanf(line, "VmHWM: %ld kB", &kb) == 1){
			mb = kb / 1024.0;
			break;
		}
	}
	fclose(f);
	return mb;
}

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if(!f) return -1;
	fputs(text, f);
	return fclose(f);
}

/* Run argv, wait, return its exit status (or -1). */
int bench_run_cmd(char *const argv[])
{
	pid_t pid = fork();
	int st;

	if(pid < 0) return -1;
	if(pid == 0){
		int fd = open("/dev/null", O_WRONLY);

		if(fd >= 0){
			dup2(fd, 1);
			close(fd);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	if(waitpid(pid, &st, 0) < 0) return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The first three fields of /proc/loadavg. */
void bench_loadavg(char *out, size_t n)
{
	FILE *f = fopen("/proc/loadavg", "r");
	double a = 0, b = 0, c = 0;

	if(f && fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3) snprintf(out, n, "%.2f %.2f %.2f", a, b, c);
	else snprintf(out, n, "?");
	if(f) fclose(f);
}

void bench_rm_rf(const char *dir)
{
	char *argv[] = {"rm", "-rf", (char *)dir, NULL};

	if(dir[0] && strcmp(dir, "/")) bench_run_cmd(argv);
}

/* ------------------------------------------------------------------ PostgreSQL */

PGresult *bench_pg_exec(struct bench *b, const char *sql)
{
	PGresult *r = PQexec(b->pg, sql);
	ExecStatusType st = PQresultStatus(r);

	if(st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK){
		fprintf(stderr, "bench: SQL failed: %s: %s", sql, PQerrorMessage(b->pg));
		PQclear(r);
		return NULL;
	}
	return r;
}

static int pg_cmd(struct bench *b, const char *sql)
{
	PGresult *r = bench_pg_exec(b, sql);

	if(!r) return -1;
	PQclear(r);
	return 0;
}

/* First column of the first row as a double; NAN on error or NULL. */
double bench_pg_double(struct bench *b, const char *sql)
{
	PGresult *r = bench_pg_exec(b, sql);
	double v = NAN;

	if(!r) return NAN;
	if(PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) v = strtod(PQgetvalue(r, 0, 0), NULL);
	PQclear(r);
	return v;
}

int bench_pg_setup(struct bench *b)
{
	PGresult *r;

	b->pg = PQconnectdb(b->o.database_url);
	if(PQstatus(b->pg) != CONNECTION_OK){
		fprintf(stderr, "bench: cannot connect to %s: %s", b->o.database_url, PQerrorMessage(b->pg));
		return -1;
	}
	pg_cmd(b, "SET client_min_messages = warning");
	if(pg_cmd(b, "ALTER TABLE raw_measurements ADD COLUMN IF NOT EXISTS ingested_at timestamptz DEFAULT clock_timestamp()")){
		return -1;
	}
	r = bench_pg_exec(b, "SHOW track_commit_timestamp");
	if(!r) return -1;
	b->commit_ts = PQntuples(r) > 0 && !strcmp(PQgetvalue(r, 0, 0), "on");
	PQclear(r);
	r = bench_pg_exec(b, "SELECT 'PostgreSQL ' || current_setting('server_version') || ', fsync ' || current_setting('fsync') "
			"|| ', synchronous_commit ' || current_setting('synchronous_commit')");
	if(r && PQntuples(r) > 0) snprintf(b->pg_settings, sizeof(b->pg_settings), "%s", PQgetvalue(r, 0, 0));
	PQclear(r);
	if(bench_pg_double(b, "SELECT count(*) FROM kits WHERE serial LIKE 'k-test-%'") < b->o.kits){
		fprintf(stderr, "bench: the database needs test kits k-test-0001..k-test-%04d (schema/seed-test.sql -v nkits=%d)\n",
				b->o.kits, b->o.kits);
		return -1;
	}
	return 0;
}

int bench_pg_truncate(struct bench *b)
{
	return pg_cmd(b, "TRUNCATE raw_measurements, aggregate_measurements, kit_last_seen");
}

/* The SQL expression for when a raw row became visible. */
const char *bench_pg_commit_expr(const struct bench *b)
{
	return b->commit_ts ? "pg_xact_commit_timestamp(xmin)" : "ingested_at";
}

/* Wait until raw_measurements holds n rows (no progress for stall_s seconds = give up). Returns
 * the number of rows. */
uint64_t bench_pg_wait_rows(struct bench *b, uint64_t n, int stall_s)
{
	double have = 0, last = -1;
	int64_t last_change = bench_mono_ns();

	for(;;){
		have = bench_pg_double(b, "SELECT count(*) FROM raw_measurements");
		if(isnan(have)) return 0;
		if(have >= (double)n) break;
		if(have != last){
			last = have;
			last_change = bench_mono_ns();
		}else if(bench_mono_ns() - last_change > (int64_t)stall_s * 1000000000LL){
			break;
		}
		bench_sleep_ms(100);
	}
	return (uint64_t)have;
}

/* ------------------------------------------------------------------ Kafka (mock and consumer) */

int bench_kafka_start(struct bench *b)
{
	int in[2], out[2];
	char line[600];
	FILE *f;

	if(access(b->o.kafka_mock, X_OK)){
		fprintf(stderr, "bench: no kafka mock at %s\n", b->o.kafka_mock);
		return -1;
	}
	if(pipe(in) || pipe(out)) return -1;
	b->kafka_pid = fork();
	if(b->kafka_pid < 0) return -1;
	if(b->kafka_pid == 0){
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[0]);
		close(in[1]);
		close(out[0]);
		close(out[1]);
		execl(b->o.kafka_mock, b->o.kafka_mock, "--brokers", "1", (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	b->kafka_in = in[1];
	f = fdopen(out[0], "r");
	if(!f || !fgets(line, sizeof(line), f) || strncmp(line, "bootstrap=", 10)){
		fprintf(stderr, "bench: the kafka mock did not print bootstrap=...\n");
		if(f) fclose(f);
		return -1;
	}
	line[strcspn(line, "\r\n")] = '\0';
	snprintf(b->bootstrap, sizeof(b->bootstrap), "%s", line + 10);
	fclose(f); /* the mock's later answers go nowhere; it only answers commands we never send */
	return 0;
}

void bench_kafka_stop(struct bench *b)
{
	int st;

	if(b->kc){
		rd_kafka_destroy(b->kc);
		b->kc = NULL;
	}
	if(b->kafka_pid > 0){
		close(b->kafka_in);
		kill(b->kafka_pid, SIGTERM);
		waitpid(b->kafka_pid, &st, 0);
		b->kafka_pid = 0;
	}
}

/* The bench's consumer handle, used for watermarks and the latency consumer. */
int bench_kafka_consumer(struct bench *b)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *t;
	char err[512], gid[64];
	int i;

	snprintf(gid, sizeof(gid), "kitgate-bench-%d", (int)getpid());
	if(rd_kafka_conf_set(conf, "bootstrap.servers", b->bootstrap, err, sizeof(err))
			|| rd_kafka_conf_set(conf, "group.id", gid, err, sizeof(err))
			|| rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err))
			|| rd_kafka_conf_set(conf, "fetch.wait.max.ms", "5", err, sizeof(err))
			|| rd_kafka_conf_set(conf, "fetch.error.backoff.ms", "5", err, sizeof(err))
			|| rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err))){
		fprintf(stderr, "bench: kafka consumer: %s\n", err);
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	b->kc = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if(!b->kc){
		fprintf(stderr, "bench: kafka consumer: %s\n", err);
		rd_kafka_conf_destroy(conf);
		return -1;
	}
	t = rd_kafka_topic_new(b->kc, "raw", NULL);
	for(i = 0; i < 50; i++){
		if(rd_kafka_metadata(b->kc, 0, t, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR){
			if(md->topic_cnt == 1 && md->topics[0].partition_cnt > 0) break;
			rd_kafka_metadata_destroy(md);
			md = NULL;
		}
		bench_sleep_ms(100);
	}
	rd_kafka_topic_destroy(t);
	if(!md){
		fprintf(stderr, "bench: no metadata for topic raw from %s\n", b->bootstrap);
		return -1;
	}
	b->kparts = md->topics[0].partition_cnt;
	rd_kafka_metadata_destroy(md);
	return 0;
}

/* Sum of the high watermarks of topic raw; -1 on error. */
int64_t bench_kafka_high(struct bench *b)
{
	int64_t lo, hi, sum = 0;
	int p;

	for(p = 0; p < b->kparts; p++){
		if(rd_kafka_query_watermark_offsets(b->kc, "raw", p, &lo, &hi, 5000)) return -1;
		sum += hi;
	}
	return sum;
}


void *bench_kcons_main(void *arg)
{
	struct kcons *kc = arg;
	rd_kafka_topic_partition_list_t *tl = rd_kafka_topic_partition_list_new(kc->b->kparts);
	rd_kafka_message_t *m;
	int p;

	for(p = 0; p < kc->b->kparts; p++){
		rd_kafka_topic_partition_list_add(tl, "raw", p)->offset = kc->start[p];
	}
	rd_kafka_assign(kc->b->kc, tl);
	rd_kafka_topic_partition_list_destroy(tl);
	while(!__atomic_load_n(&kc->stop, __ATOMIC_ACQUIRE)){
		m = rd_kafka_consumer_poll(kc->b->kc, 20);
		if(!m) continue;
		if(!m->err && m->payload){
			int64_t now = bench_real_ms();
			const char *d = memmem(m->payload, m->len, "\"datetime\":", 11);

			__atomic_add_fetch(&kc->seen, 1, __ATOMIC_RELEASE);
			if(d && strtoll(d + 11, NULL, 10) >= __atomic_load_n(&kc->since_ms, __ATOMIC_ACQUIRE)){
				long long dt = strtoll(d + 11, NULL, 10);
				int64_t ms = now - dt;

				if(kc->n == kc->cap){
					size_t nc = kc->cap ? kc->cap * 2 : 65536;
					uint32_t *np = realloc(kc->lat_us, nc * sizeof(*np));

					if(np){
						kc->lat_us = np;
						kc->cap = nc;
					}
				}
				if(kc->n < kc->cap){
					kc->lat_us[kc->n] = (uint32_t)(ms < 0 ? 0 : ms * 1000);
					__atomic_store_n(&kc->n, kc->n + 1, __ATOMIC_RELEASE);
				}
			}
		}
		rd_kafka_message_destroy(m);
	}
	rd_kafka_assign(kc->b->kc, NULL);
	return NULL;
}

/* ------------------------------------------------------------------ brokers */

/* Write the config and start mosquitto for cfg. 0 once the port accepts connections, else -1
 * (the log tail is printed). */
int bench_broker_start(struct bench *b, enum cfgid cfg, const char *tag, struct broker *br)
{
	char conf[PATH_MAX + 32], text[8192], path[PATH_MAX + 32];
	size_t len;
	int i;
	int64_t deadline;

	memset(br, 0, sizeof(*br));
	snprintf(br->dir, sizeof(br->dir), "%s/%s", b->tmp, tag);
	bench_rm_rf(br->dir);
	if(mkdir(br->dir, 0755)) return -1;
	snprintf(path, sizeof(path), "%s/spool", br->dir);
	mkdir(path, 0755);
	br->port = free_port();
	len = (size_t)snprintf(text, sizeof(text),
			"per_listener_settings false\n"
			"listener %d 127.0.0.1\n"
			"allow_anonymous false\n"
			"password_file %s\n"
			"persistence false\n"
			"max_queued_messages 10000000\n"
			"set_tcp_nodelay true\n"
			"%s"
			"log_dest file %s/mosquitto.log\n"
			"log_type error\nlog_type warning\nlog_type notice\nlog_type information\n",
			br->port, b->passwd, geteuid() == 0 ? "user root\n" : "", br->dir);
	if(cfg != C_BARE){
		len += (size_t)snprintf(text + len, sizeof(text) - len,
				"plugin %s\n"
				"plugin_opt_sink %s\n"
				"plugin_opt_spool_dir %s/spool\n"
				"plugin_opt_other_topics allow\n"
				"plugin_opt_stats_interval_s 1\n",
				b->o.plugin, cfg == C_PG ? "postgres" : cfg == C_KAFKA ? "kafka" : "none", br->dir);
		if(cfg == C_PG){
			len += (size_t)snprintf(text + len, sizeof(text) - len, "plugin_opt_database_url %s\n", b->o.database_url);
		}
		if(cfg == C_KAFKA){
			len += (size_t)snprintf(text + len, sizeof(text) - len, "plugin_opt_kafka_brokers %s\n", b->bootstrap);
		}
		for(i = 0; i < b->o.nbroker_opts && len < sizeof(text); i++){
			len += (size_t)snprintf(text + len, sizeof(text) - len, "%s\n", b->o.broker_opts[i]);
		}
	}
	if(len >= sizeof(text)) return -1;
	snprintf(conf, sizeof(conf), "%s/mosquitto.conf", br->dir);
	if(write_file(conf, text)) return -1;

	br->pid = fork();
	if(br->pid < 0) return -1;
	if(br->pid == 0){
		int fd;

		snprintf(path, sizeof(path), "%s/stderr.log", br->dir);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if(fd >= 0){
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execl(b->o.mosquitto, b->o.mosquitto, "-c", conf, (char *)NULL);
		_exit(127);
	}
	deadline = bench_mono_ns() + 20000000000LL;
	while(bench_mono_ns() < deadline){
		int st;

		if(waitpid(br->pid, &st, WNOHANG) == br->pid){
			fprintf(stderr, "bench: mosquitto (%s) exited at start; see %s/mosquitto.log and stderr.log\n",
					tag, br->dir);
			char cmd[2 * PATH_MAX + 64];

			snprintf(cmd, sizeof(cmd), "tail -n 5 %s/mosquitto.log %s/stderr.log >&2", br->dir, br->dir);
			if(system(cmd)){}
			br->pid = 0;
			return -1;
		}
		if(port_open(br->port)) return 0;
		bench_sleep_ms(20);
	}
	fprintf(stderr, "bench: mosquitto (%s) did not open port %d\n", tag, br->port);
	kill(br->pid, SIGKILL);
	waitpid(br->pid, NULL, 0);
	br->pid = 0;
	return -1;
}

void bench_broker_stop(struct broker *br)
{
	int64_t deadline = bench_mono_ns() + 30000000000LL;
	int st;

	if(br->pid <= 0) return;
	kill(br->pid, SIGTERM);
	while(bench_mono_ns() < deadline){
		if(waitpid(br->pid, &st, WNOHANG) == br->pid){
			br->pid = 0;
			return;
		}
		bench_sleep_ms(10);
	}
	fprintf(stderr, "bench: mosquitto in %s did not stop in 30 s; killing it\n", br->dir);
	kill(br->pid, SIGKILL);
	waitpid(br->pid, &st, 0);
	br->pid = 0;
}

/* The plugin's latest status JSON (retained on $SYS/broker/kitgate/status), as user "server".
 * Returns a cJSON object (caller deletes) or NULL after timeout_ms. */
struct status_wait {
	char *payload;
	int subscribed;
};

static void st_on_connect(struct mosquitto *m, void *ud, int rc)
{
	(void)ud;
	if(rc == 0) mosquitto_subscribe(m, NULL, STATUS_TOPIC, 0);
}

static void st_on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg)
{
	struct status_wait *sw = ud;

	(void)m;
	if(!sw->payload && msg->payloadlen > 0){
		sw->payload = strndup(msg->payload, (size_t)msg->payloadlen);
	}
}

cJSON *bench_fetch_status(int port, int timeout_ms)
{
	struct status_wait sw = {NULL, 0};
	struct mosquitto *m = mosquitto_new(NULL, true, &sw);
	int64_t deadline = bench_mono_ns() + (int64_t)timeout_ms * 1000000;
	cJSON *j = NULL;

	if(!m) return NULL;
	mosquitto_username_pw_set(m, "server", "pw");
	mosquitto_connect_callback_set(m, st_on_connect);
	mosquitto_message_callback_set(m, st_on_message);
	if(mosquitto_connect(m, "127.0.0.1", port, 30) == MOSQ_ERR_SUCCESS){
		while(!sw.payload && bench_mono_ns() < deadline){
			if(mosquitto_loop(m, 100, 1) != MOSQ_ERR_SUCCESS) break;
		}
		mosquitto_disconnect(m);
	}
	mosquitto_destroy(m);
	if(sw.payload){
		j = cJSON_Parse(sw.payload);
		free(sw.payload);
	}
	return j;
}

double bench_json_num(const cJSON *o, const char *a, const char *bkey)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);

	if(bkey) x = cJSON_GetObjectItemCaseSensitive(x, bkey);
	return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

/* ---- one subscriber counting deliveries (bare mosquitto's delivery rate) ------------------- */

/* Shared between the libmosquitto network thread (on_message) and the bench thread: both fields
 * are atomics, written by the network thread only. */
struct bench_sub {
	struct mosquitto *m;
	_Atomic uint64_t received;
	_Atomic int64_t last_ms;    /* realtime ms of the latest delivery */
	_Atomic int subscribed;
};

static void sub_on_connect(struct mosquitto *m, void *ud, int rc)
{
	(void)ud;
	if(rc == 0) mosquitto_subscribe(m, NULL, "kit/+/measurement/raw", 1);
}

static void sub_on_subscribe(struct mosquitto *m, void *ud, int mid, int n, const int *granted)
{
	struct bench_sub *s = ud;

	(void)m;
	(void)mid;
	if(n == 1 && granted[0] <= 2) atomic_store(&s->subscribed, 1);
}

static void sub_on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg)
{
	struct bench_sub *s = ud;

	(void)m;
	(void)msg;
	atomic_fetch_add(&s->received, 1);
	atomic_store(&s->last_ms, bench_real_ms());
}

struct bench_sub *bench_sub_start(int port)
{
	struct bench_sub *s = calloc(1, sizeof(*s));
	int64_t deadline = bench_mono_ns() + 10000000000LL;

	if(!s) return NULL;
	s->m = mosquitto_new(NULL, true, s);
	if(!s->m){
		free(s);
		return NULL;
	}
	mosquitto_username_pw_set(s->m, "server", "pw");
	mosquitto_connect_callback_set(s->m, sub_on_connect);
	mosquitto_subscribe_callback_set(s->m, sub_on_subscribe);
	mosquitto_message_callback_set(s->m, sub_on_message);
	if(mosquitto_connect(s->m, "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS || mosquitto_loop_start(s->m) != MOSQ_ERR_SUCCESS){
		mosquitto_destroy(s->m);
		free(s);
		return NULL;
	}
	while(!atomic_load(&s->subscribed) && bench_mono_ns() < deadline) bench_sleep_ms(10);
	if(!atomic_load(&s->subscribed)){
		bench_sub_stop(s, NULL, NULL);
		return NULL;
	}
	return s;
}

void bench_sub_wait(struct bench_sub *s, uint64_t n, int timeout_s)
{
	int64_t deadline = bench_mono_ns() + (int64_t)timeout_s * 1000000000LL;

	while(atomic_load(&s->received) < n && bench_mono_ns() < deadline && !g_interrupted) bench_sleep_ms(10);
}

void bench_sub_stop(struct bench_sub *s, uint64_t *received, int64_t *last_ms)
{
	if(!s) return;
	mosquitto_disconnect(s->m);
	mosquitto_loop_stop(s->m, true);
	if(received) *received = atomic_load(&s->received);
	if(last_ms) *last_ms = atomic_load(&s->last_ms);
	mosquitto_destroy(s->m);
	free(s);
}
