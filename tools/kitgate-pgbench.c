/* kitgate-pgbench.c -- the PostgreSQL writer alone (kg_pg__write): rows/s with 1 connection, 2 in lockstep and 2 independent, and the server's CPU per row (see --help). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "kitgate/log.h"
#include "kitgate/pgwriter.h"
#include "kitgate/record.h"

#define MAX_WRITERS 2
#define MAX_SIZES 8
#define MAX_PIDS 8

enum mode { MODE_ONE, MODE_LOCKSTEP, MODE_INDEPENDENT, MODE_COUNT, MODE_COPY = MODE_COUNT };
static const char *const mode_name[MODE_COUNT + 1] = {"1 connection", "2 connections, lockstep",
	"2 connections, independent", "1 connection, COPY shape (prototype in this tool)"};

struct opts {
	const char *url, *nofk_url;
	double seconds;
	size_t sizes[MAX_SIZES], nsizes;
	int nkits;
	double min_rate;
	int repeat;
};

/* One writer thread: its own kg_pg (created, connected and warmed by main, then owned by the
 * thread until it is joined). */
struct writer {
	pthread_t th;
	struct kg_pg *pg;
	PGconn *copy;      /* MODE_COPY: the prototype's own connection instead of pg */
	struct sbuf_copy { char *p; size_t len, cap; } buf;
	struct cell *cell;
	int idx;
	uint64_t rows;
	int failed;
	uint64_t seq;      /* record counter (unique ids) */
	struct kg_record *recs;
	uint8_t *status;
};

/* One measurement: a mode and a batch size. */
struct cell {
	enum mode mode;
	size_t batch;
	int nwriters;
	int nkits;
	double deadline;            /* monotonic seconds */
	pthread_barrier_t barrier;  /* lockstep: both batches of a pair are committed */
	bool stop;                  /* lockstep: written by the barrier's serial thread between two waits */
	struct writer w[MAX_WRITERS];
};

static uint32_t run_id;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void quiet_log(int level, const char *line)
{
	if(level >= KG_LOG_WARNING) fprintf(stderr, "kitgate-pgbench: %s\n", line);
}

/* Fill w->recs[0..n) with fresh raw records: unique ids, kits and peripherals of the seed
 * (schema/seed-test.sql), quantity types 1..5. */
static void make_batch(struct writer *w, size_t n, int nkits)
{
	size_t i;

	for(i = 0; i < n; i++){
		struct kg_record *r = &w->recs[i];
		uint64_t s = ++w->seq;
		int kit = (int)(s % (uint64_t)nkits) + 1;
		int b;

		memset(r, 0, sizeof(*r));
		r->kind = KG_KIND_RAW;
		memcpy(r->id, &run_id, 4);
		r->id[4] = (uint8_t)w->idx;
		r->id[6] = 0x40;
		r->id[8] = 0x80;
		for(b = 0; b < 7; b++) r->id[15 - b] = (uint8_t)(s >> (8 * b));
		snprintf(r->serial, sizeof(r->serial), "k-test-%04d", kit);
		r->peripheral = kit * 10 + 1 + (int32_t)(s % 3);
		r->quantity_type = (int32_t)(s % 5) + 1;
		r->value = 20.0 + (double)(s % 1000) / 100.0;
		r->datetime_ms = 1700000000000LL + (int64_t)s;
	}
}


/* ---- the other statement shape, for comparison: COPY (FORMAT binary) into a temporary table,
 * then INSERT ... SELECT ... ON CONFLICT (id) DO NOTHING and the kit_last_seen upsert, in one
 * explicit transaction (3 round trips). A prototype for raw rows of the seed only (kit and
 * configuration are the seed's peripheral id / 10): it measures the shape, not the writer. ---- */

#define COPY_SETUP \
	"SET client_min_messages = warning; " \
	"CREATE TEMP TABLE IF NOT EXISTS kg_tmp (LIKE raw_measurements) ON COMMIT DELETE ROWS"
#define COPY_FINISH \
	"INSERT INTO raw_measurements SELECT * FROM kg_tmp ORDER BY id ON CONFLICT (id) DO NOTHING; " \
	"INSERT INTO kit_last_seen AS l (kit_id, datetime_last_seen) " \
	"SELECT DISTINCT kit_id, now() FROM kg_tmp ORDER BY 1 ON CONFLICT (kit_id) DO UPDATE SET " \
	"datetime_last_seen = GREATEST(l.datetime_last_seen, EXCLUDED.datetime_last_seen); COMMIT"

static int cb_add(struct sbuf_copy *b, const void *d, size_t n)
{
	if(b->len + n > b->cap){
		size_t nc = b->cap ? b->cap : 65536;
		char *np;

		while(nc < b->len + n) nc *= 2;
		np = realloc(b->p, nc);
		if(!np) return -1;
		b->p = np;
		b->cap = nc;
	}
	memcpy(b->p + b->len, d, n);
	b->len += n;
	return 0;
}

static int cb_be(struct sbuf_copy *b, uint64_t v, int bytes)
{
	unsigned char d[8];
	int i;

	for(i = 0; i < bytes; i++) d[i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
	return cb_add(b, d, (size_t)bytes);
}

/* One field: length, then the value (bytes big-endian). */
static int cb_field(struct sbuf_copy *b, uint64_t v, int bytes)
{
	return cb_be(b, (uint64_t)bytes, 4) || cb_be(b, v, bytes);
}

static int exec_cmd(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;

	if(!ok) fprintf(stderr, "kitgate-pgbench: copy shape: %s", PQerrorMessage(c));
	PQclear(r);
	return ok ? 0 : -1;
}

static int copy_write(struct writer *w, size_t n)
{
	static const char sig[11] = "PGCOPY\n\377\r\n";
	struct sbuf_copy *b = &w->buf;
	PGresult *r;
	size_t i;
	uint64_t f;

	make_batch(w, n, w->cell->nkits);
	b->len = 0;
	if(cb_add(b, sig, 11) || cb_be(b, 0, 4) || cb_be(b, 0, 4)) return -1;
	for(i = 0; i < n; i++){
		const struct kg_record *rec = &w->recs[i];
		int32_t kit = rec->peripheral / 10;

		memcpy(&f, &rec->value, 8);
		if(cb_be(b, 7, 2) || cb_be(b, 16, 4) || cb_add(b, rec->id, 16)
				|| cb_field(b, (uint32_t)rec->peripheral, 4) || cb_field(b, (uint32_t)kit, 4)
				|| cb_field(b, (uint32_t)kit, 4) || cb_field(b, (uint32_t)rec->quantity_type, 4)
				|| cb_field(b, f, 8)
				|| cb_field(b, (uint64_t)((rec->datetime_ms - INT64_C(946684800000)) * 1000), 8)){
			return -1;
		}
	}
	if(cb_be(b, 0xffff, 2)) return -1;
	if(exec_cmd(w->copy, "BEGIN")) return -1;
	r = PQexec(w->copy, "COPY kg_tmp FROM STDIN (FORMAT binary)");
	if(PQresultStatus(r) != PGRES_COPY_IN){
		PQclear(r);
		return -1;
	}
	PQclear(r);
	if(PQputCopyData(w->copy, b->p, (int)b->len) != 1 || PQputCopyEnd(w->copy, NULL) != 1) return -1;
	while((r = PQgetResult(w->copy))){
		int bad = PQresultStatus(r) != PGRES_COMMAND_OK;
		if(bad) fprintf(stderr, "kitgate-pgbench: copy shape: %s", PQerrorMessage(w->copy));
		PQclear(r);
		if(bad) return -1;
	}
	if(exec_cmd(w->copy, COPY_FINISH)) return -1;
	w->rows += n;
	return 0;
}

static PGconn *copy_connect(const char *url)
{
	const char *keys[] = {"application_name", "dbname", NULL};
	const char *vals[] = {"kitgate", url, NULL};
	PGconn *c = PQconnectdbParams(keys, vals, 1);

	if(PQstatus(c) != CONNECTION_OK || exec_cmd(c, COPY_SETUP)){
		PQfinish(c);
		return NULL;
	}
	return c;
}

/* Write one batch; 0, or -1 when the write failed or a row was not accepted. */
static int write_batch(struct writer *w, size_t n)
{
	size_t i;

	if(w->copy) return copy_write(w, n);
	make_batch(w, n, w->cell->nkits);
	if(kg_pg__write(w->pg, w->recs, n, w->status)) return -1;
	for(i = 0; i < n; i++){
		if(w->status[i] != KG_PG_ROW_OK) return -1;
	}
	w->rows += n;
	return 0;
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct cell *c = w->cell;

	for(;;){
		if(c->mode == MODE_LOCKSTEP){
			/* Both batches of the pair commit before the next pair starts. The serial thread
			 * decides whether to go on, the second wait publishes the decision to both. */
			if(!w->failed && write_batch(w, c->batch)) w->failed = 1;
			if(pthread_barrier_wait(&c->barrier) == PTHREAD_BARRIER_SERIAL_THREAD){
				c->stop = now_s() >= c->deadline || c->w[0].failed || c->w[1].failed;
			}
			pthread_barrier_wait(&c->barrier);
			if(c->stop) break;
		}else{
			if(write_batch(w, c->batch)){
				w->failed = 1;
				break;
			}
			if(now_s() >= c->deadline) break;
		}
	}
	return NULL;
}

/* ---- CPU accounting ---- */

/* utime + stime of process pid in seconds, or -1. */
static double proc_cpu_s(int pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut, st;
	FILE *f;
	size_t len;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if(!f) return -1;
	len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = '\0';
	p = strrchr(buf, ')'); /* comm may hold spaces */
	if(!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Busy and total jiffies of the whole machine (/proc/stat "cpu" line). */
static void machine_jiffies(unsigned long long *busy, unsigned long long *total)
{
	unsigned long long v[8] = {0};
	FILE *f = fopen("/proc/stat", "r");
	int i;

	*busy = *total = 0;
	if(!f) return;
	if(fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
			&v[5], &v[6], &v[7]) == 8){
		for(i = 0; i < 8; i++) *total += v[i];
		*busy = *total - v[3] - v[4]; /* minus idle and iowait */
	}
	fclose(f);
}

static double self_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec
		+ ru.ru_stime.tv_usec / 1e6;
}

/* ---- one cell ---- */

struct result {
	uint64_t rows;
	double secs, rate;
	double server_us_row;   /* backend CPU per row, -1 when /proc did not tell */
	double client_us_row;   /* this process's CPU per row (kg_pg__write + libpq + generation) */
	double machine_busy;    /* share of all CPUs busy during the cell (everyone's work) */
	int ok;
};

static PGconn *monitor_connect(const char *url)
{
	PGconn *c = PQconnectdb(url);

	if(PQstatus(c) != CONNECTION_OK){
		fprintf(stderr, "kitgate-pgbench: cannot connect: %s", PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	PQclear(PQexec(c, "SET application_name = 'kitgate-pgbench'"));
	PQclear(PQexec(c, "SET client_min_messages = warning"));
	return c;
}

static int exec_ok(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;

	if(!ok) fprintf(stderr, "kitgate-pgbench: %s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	return ok ? 0 : -1;
}

/* The backend pids of the kitgate writers connected to the monitor's database. */
static int writer_pids(PGconn *mon, int *pids, int max)
{
	PGresult *r = PQexec(mon, "SELECT pid FROM pg_stat_activity WHERE application_name = 'kitgate' "
			"AND datname = current_database()");
	int i, n = 0;

	if(PQresultStatus(r) == PGRES_TUPLES_OK){
		for(i = 0; i < PQntuples(r) && n < max; i++) pids[n++] = atoi(PQgetvalue(r, i, 0));
	}
	PQclear(r);
	return n;
}

static int run_cell(const struct opts *o, const char *url, enum mode mode, size_t batch, struct result *res)
{
	struct cell *c = calloc(1, sizeof(*c));
	PGconn *mon = monitor_connect(url);
	int pids[MAX_PIDS], npids, i, started = 0;
	double cpu0[MAX_PIDS], cpu_server = 0, self0, t0, t1;
	unsigned long long busy0, total0, busy1, total1;
	bool have_cpu = true;

	memset(res, 0, sizeof(*res));
	if(!c || !mon) goto out;
	c->mode = mode;
	c->batch = batch;
	c->nkits = o->nkits;
	c->nwriters = mode == MODE_ONE || mode == MODE_COPY ? 1 : 2;
	/* The same starting point for every cell: an empty table (index sizes alike). */
	if(exec_ok(mon, "TRUNCATE raw_measurements")) goto out;
	for(i = 0; i < c->nwriters; i++){
		struct writer *w = &c->w[i];

		w->cell = c;
		w->idx = i;
		w->seq = ((uint64_t)mode << 40) | ((uint64_t)batch << 20);
		w->recs = calloc(batch, sizeof(*w->recs));
		w->status = calloc(batch, 1);
		if(mode == MODE_COPY){
			w->copy = copy_connect(url);
		}else{
			w->pg = kg_pg__new(url);
		}
		/* Connect and warm the caches outside the timing. */
		if(!w->recs || !w->status || !(w->pg || w->copy) || write_batch(w, batch)) goto out;
		w->rows = 0;
	}
	/* Every backend of the writers (a writer may have more than one connection). */
	npids = writer_pids(mon, pids, MAX_PIDS);
	if(npids < c->nwriters) have_cpu = false;
	for(i = 0; i < npids; i++){
		cpu0[i] = proc_cpu_s(pids[i]);
		if(cpu0[i] < 0) have_cpu = false;
	}
	if(mode == MODE_LOCKSTEP) pthread_barrier_init(&c->barrier, NULL, 2);
	machine_jiffies(&busy0, &total0);
	self0 = self_cpu_s();
	t0 = now_s();
	c->deadline = t0 + (batch == 1 ? o->seconds / 2 : o->seconds);
	for(i = 0; i < c->nwriters; i++){
		if(pthread_create(&c->w[i].th, NULL, writer_main, &c->w[i])) break;
		started++;
	}
	if(started < c->nwriters && mode == MODE_LOCKSTEP){
		fprintf(stderr, "kitgate-pgbench: cannot start the lockstep pair\n");
		abort(); /* the started thread waits on the barrier forever */
	}
	for(i = 0; i < started; i++) pthread_join(c->w[i].th, NULL);
	t1 = now_s();
	machine_jiffies(&busy1, &total1);
	if(mode == MODE_LOCKSTEP) pthread_barrier_destroy(&c->barrier);
	for(i = 0; i < npids && have_cpu; i++){
		double v = proc_cpu_s(pids[i]);
		if(v < 0) have_cpu = false;
		cpu_server += v - cpu0[i];
	}
	res->ok = started == c->nwriters;
	for(i = 0; i < c->nwriters; i++){
		res->rows += c->w[i].rows;
		if(c->w[i].failed) res->ok = 0;
	}
	res->secs = t1 - t0;
	res->rate = res->secs > 0 ? (double)res->rows / res->secs : 0;
	res->server_us_row = have_cpu && res->rows ? cpu_server * 1e6 / (double)res->rows : -1;
	res->client_us_row = res->rows ? (self_cpu_s() - self0) * 1e6 / (double)res->rows : -1;
	res->machine_busy = total1 > total0 ? (double)(busy1 - busy0) / (double)(total1 - total0) : 0;
out:
	for(i = 0; c && i < c->nwriters; i++){
		kg_pg__free(c->w[i].pg);
		PQfinish(c->w[i].copy);
		free(c->w[i].buf.p);
		free(c->w[i].recs);
		free(c->w[i].status);
	}
	free(c);
	PQfinish(mon);
	return res->ok ? 0 : -1;
}

static int cmp_rate(const void *a, const void *b)
{
	double x = ((const struct result *)a)->rate, y = ((const struct result *)b)->rate;

	return (x > y) - (x < y);
}

#define MAX_RUNS 16

/* How many times each measurement runs: --repeat clamped to 1..MAX_RUNS. */
static int runs_of(const struct opts *o)
{
	return o->repeat < 1 ? 1 : o->repeat > MAX_RUNS ? MAX_RUNS : o->repeat;
}

/* run_cell o->repeat times; *res is the run with the median rate (its other columns are that
 * run's). Returns -1 when any run failed. */
static int run_median(const struct opts *o, const char *url, enum mode mode, size_t batch, struct result *res)
{
	struct result runs[MAX_RUNS];
	int i, n = runs_of(o), rc = 0;

	for(i = 0; i < n; i++){
		if(run_cell(o, url, mode, batch, &runs[i])) rc = -1;
	}
	qsort(runs, (size_t)n, sizeof(runs[0]), cmp_rate);
	*res = runs[n / 2];
	if(rc) res->ok = 0;
	return rc;
}

/* ---- PostgreSQL's own floor: the same rows inserted by one INSERT ... SELECT on the server ----
 *
 * No client, no protocol, no parameters: one statement in one transaction (rolled back, so the
 * table does not grow) inserts n generated rows of the seed into raw_measurements with the
 * writer's ON CONFLICT (id) DO NOTHING. The backend's CPU per row is what PostgreSQL itself needs
 * for a row of this schema, so nproc * 10^6 / (that) is the most rows/s any client could reach
 * with every CPU given to PostgreSQL. */

#define FLOOR_GEN \
	"CREATE TEMP TABLE kg_floor ON COMMIT DROP AS " \
	"SELECT gen_random_uuid() AS id, k * 10 + 1 + (g %% 3) AS peripheral_id, k AS kit_id, " \
	"k AS kit_configuration_id, (g %% 5) + 1 AS quantity_type_id, 20 + (g %% 1000) / 100.0::float8 AS value, " \
	"to_timestamp(1700000000 + g / 1000.0) AS datetime " \
	"FROM generate_series(1, %zu) AS g, LATERAL (SELECT 1 + (g %% %d)::int AS k) AS kk"
#define FLOOR_INSERT \
	"INSERT INTO raw_measurements (id, peripheral_id, kit_id, kit_configuration_id, quantity_type_id, value, datetime) " \
	"SELECT * FROM kg_floor ON CONFLICT (id) DO NOTHING"

/* 1 if pid is a PostgreSQL process of this machine (its /proc/<pid>/comm says postgres). */
static int is_postgres(int pid)
{
	char path[64], comm[64] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	f = fopen(path, "r");
	if(!f) return 0;
	if(!fgets(comm, sizeof(comm), f)) comm[0] = '\0';
	fclose(f);
	return !strncmp(comm, "postgres", 8);
}

/* Backend CPU µs per row of one floor insert of n rows into url's database; -2 when the backend
 * is not a process of this machine, -1 on failure. The rows are
 * generated into a temporary table first, outside the measurement. */
static double floor_us_row(const char *url, size_t n, int nkits)
{
	PGconn *c = monitor_connect(url);
	PGresult *r;
	char sql[1024];
	double cpu0, cpu1 = -1;
	int pid;

	if(!c) return -1;
	pid = PQbackendPID(c);
	if(!is_postgres(pid)){
		PQfinish(c);
		return -2; /* a remote server, or one in another pid namespace: not measurable here */
	}
	snprintf(sql, sizeof(sql), FLOOR_GEN, n, nkits);
	if(exec_ok(c, "BEGIN") == 0 && exec_ok(c, sql) == 0){
		cpu0 = proc_cpu_s(pid);
		r = PQexec(c, FLOOR_INSERT);
		if(PQresultStatus(r) == PGRES_COMMAND_OK && cpu0 >= 0) cpu1 = proc_cpu_s(pid) - cpu0;
		else fprintf(stderr, "kitgate-pgbench: floor insert: %s", PQerrorMessage(c));
		PQclear(r);
	}
	exec_ok(c, "ROLLBACK");
	PQfinish(c);
	return cpu1 < 0 ? -1 : cpu1 * 1e6 / (double)n;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median of o->repeat (1..16) floor runs (n rows each); -2 unmeasurable here, -1 failed. */
static double floor_median(const struct opts *o, const char *url, size_t n)
{
	double v[MAX_RUNS];
	int i, k = runs_of(o);

	for(i = 0; i < k; i++){
		v[i] = floor_us_row(url, n, o->nkits);
		if(v[i] < 0) return v[i];
	}
	qsort(v, (size_t)k, sizeof(v[0]), cmp_double);
	return v[k / 2];
}

/* Prints the floor lines; returns -1 when a measurement failed. */
static int print_floor(const struct opts *o)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	size_t n = 30000;
	double fk, nofk = -1;

	int runs = runs_of(o);

	fk = floor_median(o, o->url, n);
	if(fk == -2){
		printf("PostgreSQL alone (INSERT ... SELECT): not measured, the server's processes are not "
				"visible on this machine\n");
		return 0;
	}
	if(fk <= 0){
		printf("PostgreSQL alone (INSERT ... SELECT): measurement failed\n");
		return -1;
	}
	if(o->nofk_url) nofk = floor_median(o, o->nofk_url, n);
	printf("PostgreSQL alone (one INSERT ... SELECT of %zu generated rows, no client; backend CPU, "
			"median of %d): %.1f µs/row with the foreign keys", n, runs, fk);
	if(nofk > 0){
		printf(", %.1f µs/row without them (the four foreign-key checks: %.0f%% of the server's work)",
				nofk, 100.0 * (fk - nofk) / fk);
	}
	printf("\nceiling with all %ld CPUs given to PostgreSQL and none to the client or the broker: "
			"%.0f rows/s with the foreign keys", ncpu, (double)ncpu * 1e6 / fk);
	if(nofk > 0) printf(", %.0f without", (double)ncpu * 1e6 / nofk);
	printf("\n");
	return 0;
}

/* ---- main ---- */

static void usage(FILE *f)
{
	fprintf(f,
"usage: kitgate-pgbench --database-url URL [options]\n"
"\n"
"Benchmarks plugin/sinks/pgwriter.c alone (kg_pg__write, raw measurements) against a database loaded\n"
"with schema/astroplant.sql + schema/seed-test.sql (kits k-test-0001..N with peripherals i*10+1..3).\n"
"For each batch size it runs, for --seconds each (batch 1: half as long), on an emptied\n"
"raw_measurements table:\n"
"  1 connection                  one kg_pg, one thread\n"
"  2 connections, lockstep       two kg_pg on two threads; both batches commit before the next pair\n"
"  2 connections, independent    two kg_pg on two threads, each with its own batches and commits\n"
"and prints a markdown table: rows/s, the PostgreSQL backends' CPU per row (utime+stime from\n"
"/proc/<pid>/stat of the writers' backends, so the server must run on this machine), this\n"
"process's CPU per row, and how busy the whole machine was (everyone's work: a busy machine\n"
"makes every number provisional). With --nofk-url (the same schema without raw_measurements'\n"
"four foreign keys) it also runs 1 connection at the largest batch there, for the server's\n"
"per-row cost of the foreign keys. Last, 1 connection at the largest batch with the other\n"
"statement shape (COPY (FORMAT binary) into a temporary table, INSERT ... SELECT ... ON CONFLICT\n"
"(id) DO NOTHING, kit_last_seen upsert, COMMIT; a prototype inside this tool) for comparison.\n"
"Then PostgreSQL's own floor: the backend CPU per row of one INSERT ... SELECT of 30,000\n"
"generated rows on the server (no client; rolled back), with and without the foreign keys, and\n"
"the rows/s ceiling that gives with every CPU busy in PostgreSQL.\n"
"\n"
"  --database-url URL   libpq URI of the AstroPlant database (its raw_measurements is truncated)\n"
"  --nofk-url URL       a second database without the foreign keys on raw_measurements\n"
"  --seconds S          per cell (default 4)\n"
"  --sizes LIST         batch sizes (default 1,100,1000)\n"
"  --nkits N            kits in the seed (default: counted in the database)\n"
"  --repeat N           run every cell N times (max 16) and show the run with the median rate\n"
"  --min-rate R         exit 1 when 2 independent connections at the largest batch write\n"
"                       fewer than R rows/s (default 0: no check)\n"
"  --help\n");
}

static void print_row(const char *what, size_t batch, const struct result *r)
{
	char srv[32];

	if(r->server_us_row >= 0){
		snprintf(srv, sizeof(srv), "%.1f", r->server_us_row);
	}else{
		snprintf(srv, sizeof(srv), "n/a");
	}
	printf("| %s | %zu | %" PRIu64 " | %.1f | %s%.0f | %s | %.1f | %.0f%% |\n", what, batch, r->rows,
			r->secs, r->ok ? "" : "FAILED ", r->rate, srv, r->client_us_row, r->machine_busy * 100);
	fflush(stdout);
}

static int count_kits(const char *url)
{
	PGconn *c = monitor_connect(url);
	PGresult *r;
	int n = -1;

	if(!c) return -1;
	r = PQexec(c, "SELECT count(*) FROM kits k WHERE serial LIKE 'k-test-%' AND EXISTS "
			"(SELECT 1 FROM peripherals p WHERE p.id = k.id * 10 + 3 AND p.kit_id = k.id)");
	if(PQresultStatus(r) == PGRES_TUPLES_OK) n = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	PQfinish(c);
	return n;
}

static double loadavg1(void)
{
	double l = -1;
	FILE *f = fopen("/proc/loadavg", "r");

	if(f){
		if(fscanf(f, "%lf", &l) != 1) l = -1;
		fclose(f);
	}
	return l;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{"database-url", required_argument, NULL, 'u'}, {"nofk-url", required_argument, NULL, 'n'},
		{"seconds", required_argument, NULL, 's'}, {"sizes", required_argument, NULL, 'z'},
		{"nkits", required_argument, NULL, 'k'}, {"min-rate", required_argument, NULL, 'm'}, {"repeat", required_argument, NULL, 'r'},
		{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	struct opts o = {.seconds = 4, .sizes = {1, 100, 1000}, .nsizes = 3, .repeat = 1};
	struct result r, ind_big = {0}, lock_big = {0};
	int opt, failures = 0;
	size_t k, big = 0;
	enum mode m;
	char *p;

	while((opt = getopt_long(argc, argv, "h", lopts, NULL)) != -1){
		switch(opt){
			case 'u': o.url = optarg; break;
			case 'n': o.nofk_url = optarg; break;
			case 's': o.seconds = atof(optarg); break;
			case 'k': o.nkits = atoi(optarg); break;
			case 'm': o.min_rate = atof(optarg); break;
			case 'r': o.repeat = atoi(optarg); break;
			case 'z':
				for(p = optarg, o.nsizes = 0; *p && o.nsizes < MAX_SIZES; o.nsizes++){
					o.sizes[o.nsizes] = strtoul(p, &p, 10);
					if(!o.sizes[o.nsizes]){
						usage(stderr);
						return 2;
					}
					if(*p == ',') p++;
				}
				break;
			case 'h': usage(stdout); return 0;
			default: usage(stderr); return 2;
		}
	}
	if(!o.url || o.seconds <= 0 || !o.nsizes){
		usage(stderr);
		return 2;
	}
	kg_log__configure(quiet_log, KG_LOG_WARNING);
	run_id = (uint32_t)time(NULL) ^ ((uint32_t)getpid() << 16);
	if(!o.nkits) o.nkits = count_kits(o.url);
	if(o.nkits < 1){
		fprintf(stderr, "kitgate-pgbench: no seeded kits (load schema/seed-test.sql)\n");
		return 2;
	}
	for(k = 0; k < o.nsizes; k++) if(o.sizes[k] > big) big = o.sizes[k];

	printf("kitgate-pgbench: %ld CPUs, load average %.2f at start, %d kits, %.1f s per cell, "
			"median of %d\n\n", sysconf(_SC_NPROCESSORS_ONLN), loadavg1(), o.nkits, o.seconds, o.repeat);
	printf("| writer | batch | rows | s | rows/s | server µs/row | client µs/row | machine busy |\n");
	printf("|---|---:|---:|---:|---:|---:|---:|---:|\n");
	for(k = 0; k < o.nsizes; k++){
		for(m = 0; m < MODE_COUNT; m++){
			if(run_median(&o, o.url, m, o.sizes[k], &r)) failures++;
			print_row(mode_name[m], o.sizes[k], &r);
			if(o.sizes[k] == big && m == MODE_INDEPENDENT) ind_big = r;
			if(o.sizes[k] == big && m == MODE_LOCKSTEP) lock_big = r;
		}
	}
	if(run_median(&o, o.url, MODE_COPY, big, &r)) failures++;
	print_row(mode_name[MODE_COPY], big, &r);
	if(o.nofk_url){
		if(run_median(&o, o.nofk_url, MODE_ONE, big, &r)) failures++;
		print_row("1 connection, no foreign keys", big, &r);
		if(run_median(&o, o.url, MODE_ONE, big, &r) == 0){
			print_row("1 connection (again, with foreign keys)", big, &r);
		}else{
			failures++;
		}
	}
	printf("\n");
	if(print_floor(&o)) failures++;
	if(ind_big.rate > 0 && lock_big.rate > 0){
		printf("batch %zu: lockstep / independent = %.2f\n", big, lock_big.rate / ind_big.rate);
	}
	printf("load average %.2f at the end\n", loadavg1());
	if(o.min_rate > 0 && ind_big.rate < o.min_rate){
		printf("FAIL: 2 independent connections, batch %zu: %.0f rows/s < %.0f\n", big, ind_big.rate,
				o.min_rate);
		failures++;
	}
	return failures ? 1 : 0;
}
