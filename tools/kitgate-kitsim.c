/* kitgate-kitsim.c -- simulates N AstroPlant kits as deployed (paho defaults: MQTT 3.1.1, clean
 * session, random client id; username = serial): packed Cap'n Proto raw measurements at QoS 0 and
 * aggregates of them at QoS 2, 5 streams per kit, printing every message it sends (see --help).
 *
 * Threads: one libmosquitto network thread per kit (mosquitto_loop_start); the main thread builds
 * and publishes every message and is the only one that prints "sent" lines. The callbacks only
 * update the counters under g_lock.
 * --fleet (thousands of kits, ci/bench-fleet): no extra thread at all; the main thread drives every
 * kit's socket under epoll (mosquitto_socket + mosquitto_loop_read/write/misc), starts the kits
 * staggered, gives each kit its own phase, reconnects with backoff and counts instead of printing. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>

#include "kitgate/capnp.h"
#include "kitgate/numfmt.h"
#include "kitgate/record.h"
#include "kitgate/uuid.h"

#define MAX_STREAMS 16

struct stream_def {
	int peripheral;   /* absolute id, or the offset from kit*10 when relative */
	int relative;     /* written "+N": peripheral = kit*10 + N (schema/seed-test.sql layout) */
	int quantity_type;
};

struct stream {
	int32_t peripheral, quantity_type;
	double level;                 /* random walk of the raw value */
	uint64_t count;               /* raw values since the last aggregate */
	double sum, min, max;
	int64_t window_start_ms;
};

struct kit {
	int index;
	char serial[KG_SERIAL_MAX + 1];
	char password[512];
	char topic_raw[128], topic_agg[128];
	struct mosquitto *mosq;
	int connected;                /* g_lock */
	int refused;                  /* g_lock: CONNACK refused */
	struct stream st[MAX_STREAMS];
	int nst;
	int invalid_seq;              /* cycles through the invalid kinds */
	/* --fleet only (main thread): */
	int fd;                       /* registered in the epoll set, or -1 */
	uint32_t ev;                  /* its registered events */
	int fstate;                   /* FK_DOWN, FK_CONNECTING, FK_UP */
	int attempts;                 /* failed connects since the last CONNACK 0 (backoff) */
	int ever_up;
	double retry_at, connect_at, next_raw, next_agg, next_misc;
	int agg_mid[4 * MAX_STREAMS]; /* mids of the QoS 2 aggregates in flight */
	int nagg_mid;
};
enum { FK_DOWN, FK_CONNECTING, FK_UP };

enum invalid_kind { INV_MALFORMED, INV_BAD_TIME, INV_BAD_VALUE, INV_SERIAL_MISMATCH, INV_BAD_TYPE, INV_COUNT };
static const char *const invalid_names[INV_COUNT] = {"malformed", "bad_time", "bad_value", "serial_mismatch", "bad_type"};

static struct {
	const char *host;
	int port, nkits, start_kit, v5, json, keepalive, fleet;
	double ramp, backoff_max;
	const char *status_file;
	const char *serial_format, *password, *password_file;
	double raw_interval, agg_interval, duration, invalid_ratio;
	struct stream_def defs[MAX_STREAMS];
	int ndefs;
} g_o = {"127.0.0.1", 1883, 3, 1, 0, 0, 60, 0, 0, 32, NULL, "k-test-%04d", "pw", NULL, 10, 60, 0, 0, {{0}}, 0};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t g_published, g_done, g_rejected; /* g_lock: handed to libmosquitto, written/acked, reason >= 0x80 */
static volatile sig_atomic_t g_stop;
static uint64_t g_nraw, g_nagg, g_ninv, g_failed; /* main thread: "sent" lines printed, publish failures */
/* --fleet (main thread): completed raw (QoS 0 written) / aggregates (PUBCOMP), connections */
static uint64_t g_raw_done, g_agg_done, g_connects, g_conn_lost, g_conn_refused;
static volatile sig_atomic_t g_paused;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static void on_pause(int sig)
{
	g_paused = sig == SIGUSR1;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: kitgate-kitsim [options]\n"
"\n"
"Simulates AstroPlant kits as deployed: each kit is one MQTT client like the kit's paho client\n"
"(MQTT 3.1.1, clean session, random client id, keepalive 60, username = serial) that sends, for\n"
"each of its streams (peripheral, quantity type), a raw measurement every --raw-interval on\n"
"kit/<serial>/measurement/raw at QoS 0 and, every --agg-interval, the aggregate of the raw values\n"
"of that window (count, average, minimum, maximum; none for a window without raw values) on\n"
"kit/<serial>/measurement/aggregate at QoS 2. Payloads are packed Cap'n Proto with kitSerial \"\"\n"
"(as real kits send them), or JSON with --json. Ids are random v4 UUIDs, datetimes now in ms.\n"
"\n"
"  -h, --host HOST        broker address (default 127.0.0.1)\n"
"  -p, --port PORT        broker port (default 1883)\n"
"  --kits N               number of kits (default 3)\n"
"  --start-kit I          first kit index (default 1)\n"
"  --serial-format FMT    printf format of the serial from the kit index (default k-test-%%04d)\n"
"  --password PW          every kit's password (default pw)\n"
"  --password-file FILE   one line: every kit's password; or lines <serial>:<password> (a kit\n"
"                         missing from the file uses --password)\n"
"  --streams LIST         comma-separated <peripheral>:<quantityType>; a peripheral written +N is\n"
"                         kit index * 10 + N (the test seed layout: kit i owns i*10+1 .. i*10+3,\n"
"                         quantity types 1-5). Default +1:1,+1:2,+2:3,+2:4,+3:5 (5 streams)\n"
"  --raw-interval S       seconds between raw measurements of a stream (default 10)\n"
"  --agg-interval S       seconds between aggregates (default 60)\n"
"  --duration S           run for S seconds, then wait for the QoS 2 handshakes and disconnect\n"
"                         (default: until SIGINT/SIGTERM)\n"
"  --json                 JSON payloads instead of Cap'n Proto\n"
"  --invalid-ratio R      a fraction R (0..1) of the messages is invalid on purpose, cycling per\n"
"                         kit through malformed (truncated), bad_time (10 days ahead), bad_value\n"
"                         (NaN / 1e999), serial_mismatch (another kit's serial), bad_type\n"
"                         (peripheral 0)\n"
"  --v5                   MQTT v5 (kitgate then answers 0x87 to an invalid QoS 2 aggregate)\n"
"  --fleet                many kits from one thread (epoll; thousands of kits per process): kits\n"
"                         start staggered over --ramp, each with a random phase in its raw and\n"
"                         aggregate periods, measure only while connected, reconnect after a\n"
"                         lost or refused connection with exponential backoff (1 s doubling to\n"
"                         --backoff-max, random 50-100%% of it; no CONNACK in 30 s is a failure);\n"
"                         nothing is printed per message (counters, see below). The open-file\n"
"                         limit must exceed --kits\n"
"  --ramp S               --fleet: connect the kits evenly over S seconds (default 0)\n"
"  --backoff-max S        --fleet: the longest reconnect delay (default 32)\n"
"  --status-file FILE     --fleet: rewritten every 0.5 s with one line of counters:\n"
"                         kits= connected= raw_sent= raw_done= aggregate_sent= aggregate_done=\n"
"                         inflight= dropped= connects= lost= failed= paused=\n"
"                         (connects: CONNACKs 0; lost: connections lost after one; failed:\n"
"                         attempts refused or failed before a CONNACK 0)\n"
"                         SIGUSR1 pauses: no new measurements, connections kept (and restored);\n"
"                         SIGUSR2 resumes\n"
"  --help                 this text\n"
"\n"
"Output (stdout), one line per message handed to the client library:\n"
"  sent <serial> raw <uuid> <peripheral> <quantityType> <datetime> <value> [invalid=<reason>]\n"
"  sent <serial> aggregate <uuid> <peripheral> <quantityType> <start> <end> count=<n>\n"
"       average=<x> minimum=<x> maximum=<x> [invalid=<reason>]\n"
"and at the end:\n"
"  kitsim: kits=N raw=N aggregate=N invalid=N completed=N rejected=N dropped=N\n"
"(completed: QoS 0 written to the socket / QoS 2 PUBCOMP; rejected: a v5 reason >= 0x80;\n"
"dropped: not handed over because the connection was down, not printed as sent).\n"
"With --fleet, raw_done counts raw measurements written whole to the socket (QoS 0: nothing\n"
"more is known; on loopback to a live broker each one arrives), aggregate_done the PUBCOMPs;\n"
"ids are random v4 UUIDs, so a fresh table's row count is the count of distinct ids landed.\n"
"The end line gains: kitsim: fleet raw_done=N aggregate_done=N connects=N lost=N failed=N.\n"
"Exit status: 0 done, 1 bad usage or a kit could not connect, 2 messages left unanswered.\n");
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* xorshift64*, seeded once from getrandom(2). Main thread only. */
static uint64_t g_rng;
static uint64_t rnd(void)
{
	g_rng ^= g_rng >> 12;
	g_rng ^= g_rng << 25;
	g_rng ^= g_rng >> 27;
	return g_rng * 0x2545F4914F6CDD1DULL;
}
static double rnd01(void)
{
	return (double)(rnd() >> 11) / 9007199254740992.0;
}

static void uuid4(uint8_t id[16])
{
	uint64_t a = rnd(), b = rnd();
	memcpy(id, &a, 8);
	memcpy(id + 8, &b, 8);
	id[6] = (uint8_t)((id[6] & 0x0f) | 0x40);
	id[8] = (uint8_t)((id[8] & 0x3f) | 0x80);
}

static void on_connect(struct mosquitto *m, void *obj, int rc, int flags, const mosquitto_property *props)
{
	struct kit *k = obj;
	(void)m; (void)flags; (void)props;
	pthread_mutex_lock(&g_lock);
	if(rc == 0) k->connected = 1;
	else k->refused = rc;
	pthread_mutex_unlock(&g_lock);
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc, const mosquitto_property *props)
{
	struct kit *k = obj;
	(void)m; (void)rc; (void)props;
	pthread_mutex_lock(&g_lock);
	k->connected = 0;
	pthread_mutex_unlock(&g_lock);
}

static void on_publish(struct mosquitto *m, void *obj, int mid, int reason, const mosquitto_property *props)
{
	struct kit *k = obj;
	(void)m; (void)props;
	if(g_o.fleet){ /* one thread: an aggregate's mid is in agg_mid, anything else was raw (QoS 0) */
		int agg = 0;
		for(int i = 0; i < k->nagg_mid; i++){
			if(k->agg_mid[i] == mid){
				k->agg_mid[i] = k->agg_mid[--k->nagg_mid];
				agg = 1;
				break;
			}
		}
		if(agg) g_agg_done++;
		else g_raw_done++;
	}
	pthread_mutex_lock(&g_lock);
	g_done++;
	if(reason >= 0x80) g_rejected++;
	pthread_mutex_unlock(&g_lock);
}

static int parse_streams(const char *s)
{
	char *copy = strdup(s), *save = NULL, *tok;
	int n = 0;

	if(!copy) return -1;
	for(tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)){
		struct stream_def *d = &g_o.defs[n];
		char *colon = strchr(tok, ':'), *end;

		if(n >= MAX_STREAMS || !colon) goto bad;
		d->relative = tok[0] == '+';
		d->peripheral = (int)strtol(tok + d->relative, &end, 10);
		if(end != colon) goto bad;
		d->quantity_type = (int)strtol(colon + 1, &end, 10);
		if(*end || colon[1] == '\0') goto bad;
		n++;
	}
	free(copy);
	if(n == 0) return -1;
	g_o.ndefs = n;
	return 0;
bad:
	free(copy);
	return -1;
}

/* --password-file: one line for every kit, or <serial>:<password> lines. */
static int kit_password(struct kit *k)
{
	char line[512];
	FILE *f;
	int lines = 0, found = 0;

	snprintf(k->password, sizeof(k->password), "%s", g_o.password);
	if(!g_o.password_file) return 0;
	if(!(f = fopen(g_o.password_file, "r"))){
		fprintf(stderr, "kitsim: %s: %s\n", g_o.password_file, strerror(errno));
		return -1;
	}
	while(fgets(line, sizeof(line), f)){
		size_t sl = strlen(k->serial);
		line[strcspn(line, "\r\n")] = '\0';
		if(!line[0]) continue;
		lines++;
		if(!strncmp(line, k->serial, sl) && line[sl] == ':'){
			snprintf(k->password, sizeof(k->password), "%s", line + sl + 1);
			found = 1;
		}else if(lines == 1 && !strchr(line, ':')){
			snprintf(k->password, sizeof(k->password), "%s", line);
		}
	}
	fclose(f);
	(void)found;
	return 0;
}

/* JSON text of rec (canonical, kitSerial ""), or with the invalid change applied. */
static size_t to_json(const struct kg_record *rec, int inv, char *buf, size_t cap)
{
	char id[37], v[32];
	size_t n;

	kg_uuid__format(rec->id, id);
	if(rec->kind == KG_KIND_RAW){
		if(inv == INV_BAD_VALUE) snprintf(v, sizeof(v), "1e999");
		else kg_numfmt__double(rec->value, v);
		n = (size_t)snprintf(buf, cap, "{\"id\":\"%s\",\"kitSerial\":\"%s\",\"datetime\":%" PRId64
				",\"peripheral\":%d,\"quantityType\":%d,\"value\":%s}", id, rec->serial, rec->datetime_ms,
				rec->peripheral, rec->quantity_type, v);
	}else{
		char vals[512];
		size_t off = 0;
		for(int i = 0; i < rec->nvalues; i++){
			if(inv == INV_BAD_VALUE && i == 0) snprintf(v, sizeof(v), "1e999");
			else kg_numfmt__double(rec->values[i].value, v);
			off += (size_t)snprintf(vals + off, sizeof(vals) - off, "%s\"%s\":%s", i ? "," : "",
					rec->values[i].name, v);
		}
		n = (size_t)snprintf(buf, cap, "{\"id\":\"%s\",\"kitSerial\":\"%s\",\"datetimeStart\":%" PRId64
				",\"datetimeEnd\":%" PRId64 ",\"peripheral\":%d,\"quantityType\":%d,\"values\":{%s}}", id,
				rec->serial, rec->start_ms, rec->end_ms, rec->peripheral, rec->quantity_type, vals);
	}
	return n < cap ? n : 0;
}

/* Builds the payload of rec (made invalid when inv >= 0), publishes it, prints the "sent" line. */
static int send_record(struct kit *k, struct kg_record *rec, int inv)
{
	uint8_t buf[4096];
	char id[37], extra[48] = "";
	size_t n;
	int rc, mid = 0, qos = rec->kind == KG_KIND_RAW ? 0 : 2;

	rec->serial[0] = '\0'; /* kits send "" */
	if(inv == INV_BAD_TIME){
		if(rec->kind == KG_KIND_RAW) rec->datetime_ms += 10LL * 86400000;
		else rec->end_ms += 10LL * 86400000;
	}else if(inv == INV_BAD_VALUE && !g_o.json){
		if(rec->kind == KG_KIND_RAW) rec->value = NAN;
		else rec->values[0].value = NAN;
	}else if(inv == INV_SERIAL_MISMATCH){
		snprintf(rec->serial, sizeof(rec->serial), g_o.serial_format, k->index + 1000);
	}else if(inv == INV_BAD_TYPE){
		rec->peripheral = 0;
	}
	if(g_o.json) n = to_json(rec, inv, (char *)buf, sizeof(buf));
	else n = kg_capnp__encode(rec, buf, sizeof(buf));
	if(n == 0 || n > sizeof(buf)) return -1;
	if(inv == INV_MALFORMED) n = n * 2 / 3; /* truncated */

	pthread_mutex_lock(&g_lock);
	g_published++;
	pthread_mutex_unlock(&g_lock);
	if(g_o.fleet && qos == 2 && k->nagg_mid >= (int)(sizeof(k->agg_mid) / sizeof(k->agg_mid[0]))){
		pthread_mutex_lock(&g_lock);
		g_published--;
		pthread_mutex_unlock(&g_lock);
		g_failed++; /* the kit's QoS 2 window is full (broker not answering): dropped like the kit would */
		return 0;
	}
	rc = mosquitto_publish(k->mosq, &mid, rec->kind == KG_KIND_RAW ? k->topic_raw : k->topic_agg,
			(int)n, buf, qos, false);
	/* libmosquitto queued a QoS 2 message it could not write (connection just lost): it sends it
	 * after the reconnect and its PUBCOMP completes it, so it is sent and tracked */
	if(g_o.fleet && qos == 2 && rc == MOSQ_ERR_NO_CONN) rc = MOSQ_ERR_SUCCESS;
	if(rc != MOSQ_ERR_SUCCESS){
		pthread_mutex_lock(&g_lock);
		g_published--;
		pthread_mutex_unlock(&g_lock);
		/* Like the kit: a message that cannot be handed over (connection down) is lost, the
		 * kit carries on and libmosquitto reconnects. Not printed as sent. */
		if(!g_o.fleet) fprintf(stderr, "kitsim: %s: publish failed (%s); message dropped\n", k->serial, mosquitto_strerror(rc));
		g_failed++;
		return 0;
	}
	if(g_o.fleet){ /* counted, not printed */
		if(qos == 2) k->agg_mid[k->nagg_mid++] = mid;
		if(inv >= 0) g_ninv++;
		if(rec->kind == KG_KIND_RAW) g_nraw++;
		else g_nagg++;
		return 0;
	}
	kg_uuid__format(rec->id, id);
	if(inv >= 0){
		snprintf(extra, sizeof(extra), " invalid=%s", invalid_names[inv]);
		g_ninv++;
	}
	if(rec->kind == KG_KIND_RAW){
		char v[32];
		kg_numfmt__double(rec->value, v);
		printf("sent %s raw %s %d %d %" PRId64 " %s%s\n", k->serial, id, rec->peripheral, rec->quantity_type,
				rec->datetime_ms, isfinite(rec->value) ? v : "nan", extra);
		g_nraw++;
	}else{
		char c[32], a[32], mi[32], ma[32];
		kg_numfmt__double(rec->values[0].value, c);
		kg_numfmt__double(rec->values[1].value, a);
		kg_numfmt__double(rec->values[2].value, mi);
		kg_numfmt__double(rec->values[3].value, ma);
		printf("sent %s aggregate %s %d %d %" PRId64 " %" PRId64 " count=%s average=%s minimum=%s maximum=%s%s\n",
				k->serial, id, rec->peripheral, rec->quantity_type, rec->start_ms, rec->end_ms,
				isfinite(rec->values[0].value) ? c : "nan", a, mi, ma, extra);
		g_nagg++;
	}
	return 0;
}

/* -1 (valid) or the invalid kind of the next message of k. */
static int pick_invalid(struct kit *k)
{
	if(g_o.invalid_ratio <= 0 || rnd01() >= g_o.invalid_ratio) return -1;
	return k->invalid_seq++ % INV_COUNT;
}

static int send_raw(struct kit *k, int64_t t)
{
	for(int s = 0; s < k->nst; s++){
		struct stream *st = &k->st[s];
		struct kg_record rec;
		int inv = pick_invalid(k);

		memset(&rec, 0, sizeof(rec));
		rec.kind = KG_KIND_RAW;
		uuid4(rec.id);
		rec.datetime_ms = t;
		rec.peripheral = st->peripheral;
		rec.quantity_type = st->quantity_type;
		st->level += (rnd01() - 0.5);
		rec.value = round(st->level * 1000) / 1000;
		if(inv < 0){ /* the kit aggregates what it measured (and sent) */
			if(st->count == 0 || rec.value < st->min) st->min = rec.value;
			if(st->count == 0 || rec.value > st->max) st->max = rec.value;
			st->sum += rec.value;
			st->count++;
		}
		if(send_record(k, &rec, inv)) return -1;
	}
	return 0;
}

static int send_aggregates(struct kit *k, int64_t t)
{
	static const char *const names[4] = {"count", "average", "minimum", "maximum"};

	for(int s = 0; s < k->nst; s++){
		struct stream *st = &k->st[s];
		struct kg_record rec;
		int inv;

		if(st->count == 0){
			st->window_start_ms = t;
			continue;
		}
		inv = pick_invalid(k);
		memset(&rec, 0, sizeof(rec));
		rec.kind = KG_KIND_AGGREGATE;
		uuid4(rec.id);
		rec.start_ms = st->window_start_ms;
		rec.end_ms = t;
		rec.peripheral = st->peripheral;
		rec.quantity_type = st->quantity_type;
		rec.nvalues = 4;
		for(int i = 0; i < 4; i++) snprintf(rec.values[i].name, sizeof(rec.values[i].name), "%s", names[i]);
		rec.values[0].value = (double)st->count;
		rec.values[1].value = st->sum / (double)st->count;
		rec.values[2].value = st->min;
		rec.values[3].value = st->max;
		st->count = 0;
		st->sum = 0;
		st->window_start_ms = t;
		if(send_record(k, &rec, inv)) return -1;
	}
	return 0;
}

static void sleep_s(double s)
{
	struct timespec ts;
	if(s <= 0) return;
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
}

/* ---------------------------------------------------------------- --fleet: one thread, epoll */

static int g_ep = -1;

static void fleet_status(int nkits, int connected)
{
	char tmp[4096];
	FILE *f;
	uint64_t inflight;

	if(!g_o.status_file) return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", g_o.status_file);
	if(!(f = fopen(tmp, "w"))) return;
	pthread_mutex_lock(&g_lock);
	inflight = g_published - g_done;
	pthread_mutex_unlock(&g_lock);
	fprintf(f, "kits=%d connected=%d raw_sent=%" PRIu64 " raw_done=%" PRIu64 " aggregate_sent=%" PRIu64
			" aggregate_done=%" PRIu64 " inflight=%" PRIu64 " dropped=%" PRIu64 " connects=%" PRIu64
			" lost=%" PRIu64 " failed=%" PRIu64 " paused=%d\n", nkits, connected, g_nraw, g_raw_done, g_nagg,
			g_agg_done, inflight, g_failed, g_connects, g_conn_lost, g_conn_refused, (int)g_paused);
	if(fclose(f) == 0) rename(tmp, g_o.status_file);
}

/* The kit's connection is gone (lost, refused, timed out): retry after the backoff. */
static void fleet_down(struct kit *k, double now)
{
	double d = 1;

	if(k->fd >= 0) epoll_ctl(g_ep, EPOLL_CTL_DEL, k->fd, NULL); /* EBADF when libmosquitto closed it */
	k->fd = -1;
	k->ev = 0;
	if(k->fstate == FK_UP) g_conn_lost++;
	else g_conn_refused++;
	mosquitto_disconnect(k->mosq); /* closes the socket if libmosquitto has not */
	/* QoS 2 aggregates in flight stay in agg_mid: libmosquitto sends them again after the
	 * reconnect and their PUBCOMP completes them then */
	pthread_mutex_lock(&g_lock);
	k->connected = 0;
	k->refused = 0;
	pthread_mutex_unlock(&g_lock);
	for(int i = 0; i < k->attempts && d < g_o.backoff_max; i++) d *= 2;
	if(d > g_o.backoff_max) d = g_o.backoff_max;
	k->attempts++;
	k->fstate = FK_DOWN;
	k->retry_at = now + d * (0.5 + 0.5 * rnd01());
}

/* After every libmosquitto call on k: follow its socket and its wish to write. */
static void fleet_sync(struct kit *k, double now)
{
	int fd = mosquitto_socket(k->mosq), refused, connected;
	uint32_t ev;

	pthread_mutex_lock(&g_lock);
	refused = k->refused;
	connected = k->connected;
	pthread_mutex_unlock(&g_lock);
	if(k->fstate == FK_DOWN) return;
	if(fd < 0 || refused){
		fleet_down(k, now);
		return;
	}
	if(k->fstate == FK_CONNECTING && connected){
		k->fstate = FK_UP;
		k->attempts = 0;
		g_connects++;
		if(!k->ever_up){ /* the kit's own phase in its periods */
			k->ever_up = 1;
			k->next_raw = now + rnd01() * g_o.raw_interval;
			k->next_agg = k->next_raw + g_o.agg_interval;
		}
	}
	ev = EPOLLIN | (mosquitto_want_write(k->mosq) ? EPOLLOUT : 0);
	if(fd != k->fd){
		struct epoll_event e = {.events = ev, .data.ptr = k};
		if(k->fd >= 0) epoll_ctl(g_ep, EPOLL_CTL_DEL, k->fd, NULL);
		if(epoll_ctl(g_ep, EPOLL_CTL_ADD, fd, &e) != 0){
			fprintf(stderr, "kitsim: epoll_ctl: %s\n", strerror(errno));
			fleet_down(k, now);
			return;
		}
		k->fd = fd;
		k->ev = ev;
	}else if(ev != k->ev){
		struct epoll_event e = {.events = ev, .data.ptr = k};
		epoll_ctl(g_ep, EPOLL_CTL_MOD, fd, &e);
		k->ev = ev;
	}
}

static void fleet_connect(struct kit *k, double now)
{
	int rc;

	pthread_mutex_lock(&g_lock);
	k->connected = 0;
	k->refused = 0;
	pthread_mutex_unlock(&g_lock);
	k->fstate = FK_CONNECTING;
	k->connect_at = now;
	k->next_misc = now + 1;
	rc = mosquitto_connect_async(k->mosq, g_o.host, g_o.port, g_o.keepalive);
	if(rc != MOSQ_ERR_SUCCESS){
		fleet_down(k, now);
		return;
	}
	fleet_sync(k, now);
}

/* Raw measurements and aggregates that are due; missed periods (while down or paused) are skipped. */
static int fleet_measure(struct kit *k, double now)
{
	int64_t t = now_ms();

	if(mosquitto_socket(k->mosq) < 0) return 0; /* lost since the last sync: fleet_sync follows */

	if(k->next_raw <= now){
		while(k->next_raw <= now) k->next_raw += g_o.raw_interval;
		if(!g_paused && send_raw(k, t)) return -1;
	}
	if(k->next_agg <= now){
		while(k->next_agg <= now) k->next_agg += g_o.agg_interval;
		if(!g_paused && send_aggregates(k, t)) return -1;
	}
	return 0;
}

static int fleet_run(struct kit *kits)
{
	struct epoll_event evs[512];
	double t0 = mono_s(), end = g_o.duration > 0 ? t0 + g_o.duration : INFINITY;
	double next_scan = 0, next_status = 0, drain_until = 0;
	int draining = 0, rc = 0;

	if((g_ep = epoll_create1(EPOLL_CLOEXEC)) < 0){
		fprintf(stderr, "kitsim: epoll_create1: %s\n", strerror(errno));
		return 1;
	}
	for(int i = 0; i < g_o.nkits; i++){
		kits[i].fd = -1;
		kits[i].fstate = FK_DOWN;
		kits[i].retry_at = t0 + g_o.ramp * i / g_o.nkits;
	}
	for(;;){
		double now = mono_s();
		int n;

		if(!draining && (g_stop || now >= end)){
			draining = 1;
			g_paused = 1;
			drain_until = now + 30;
		}
		if(draining){
			uint64_t left;
			pthread_mutex_lock(&g_lock);
			left = g_published - g_done;
			pthread_mutex_unlock(&g_lock);
			if(left == 0) break;
			if(now > drain_until){
				fprintf(stderr, "kitsim: %" PRIu64 " messages unanswered at the drain timeout\n", left);
				rc = 2;
				break;
			}
		}
		if(now >= next_scan){ /* every 10 ms: connects, measurements, keepalive, CONNACK timeouts */
			int up = 0;
			next_scan = now + 0.01;
			for(int i = 0; i < g_o.nkits; i++){
				struct kit *k = &kits[i];
				if(k->fstate == FK_DOWN){
					if(!draining && now >= k->retry_at) fleet_connect(k, now);
					continue;
				}
				if(k->fstate == FK_CONNECTING && now - k->connect_at > 30){
					fleet_down(k, now);
					continue;
				}
				if(k->fstate == FK_UP){
					up++;
					if(!draining && fleet_measure(k, now)){
						rc = 2;
						g_stop = 1;
					}
				}
				if(now >= k->next_misc){
					k->next_misc = now + 1;
					mosquitto_loop_misc(k->mosq);
				}
				fleet_sync(k, now);
			}
			if(now >= next_status){
				next_status = now + 0.5;
				fleet_status(g_o.nkits, up);
			}
		}
		n = epoll_wait(g_ep, evs, (int)(sizeof(evs) / sizeof(evs[0])), 10);
		if(n < 0 && errno != EINTR){
			fprintf(stderr, "kitsim: epoll_wait: %s\n", strerror(errno));
			rc = 1;
			break;
		}
		now = mono_s();
		for(int i = 0; i < n; i++){
			struct kit *k = evs[i].data.ptr;
			if(k->fstate == FK_DOWN) continue;
			if(evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)){
				if(mosquitto_loop_read(k->mosq, 16) != MOSQ_ERR_SUCCESS){
					fleet_down(k, now);
					continue;
				}
			}
			if(k->fstate != FK_DOWN && (evs[i].events & EPOLLOUT)){
				if(mosquitto_loop_write(k->mosq, 16) != MOSQ_ERR_SUCCESS){
					fleet_down(k, now);
					continue;
				}
			}
			fleet_sync(k, now);
		}
	}
	for(int i = 0; i < g_o.nkits; i++){
		if(kits[i].fstate != FK_DOWN) mosquitto_disconnect(kits[i].mosq);
		if(kits[i].fd >= 0) mosquitto_loop_write(kits[i].mosq, 1);
	}
	fleet_status(g_o.nkits, 0);
	close(g_ep);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"host", required_argument, NULL, 'h'}, {"port", required_argument, NULL, 'p'},
		{"kits", required_argument, NULL, 'k'}, {"start-kit", required_argument, NULL, 's'},
		{"serial-format", required_argument, NULL, 'F'}, {"password", required_argument, NULL, 'P'},
		{"password-file", required_argument, NULL, 'f'}, {"streams", required_argument, NULL, 'S'},
		{"raw-interval", required_argument, NULL, 'r'}, {"agg-interval", required_argument, NULL, 'a'},
		{"duration", required_argument, NULL, 'd'}, {"json", no_argument, NULL, 'j'},
		{"invalid-ratio", required_argument, NULL, 'i'}, {"v5", no_argument, NULL, '5'},
		{"fleet", no_argument, NULL, 'L'}, {"ramp", required_argument, NULL, 'R'},
		{"backoff-max", required_argument, NULL, 'B'}, {"status-file", required_argument, NULL, 'T'},
		{"help", no_argument, NULL, 'H'}, {NULL, 0, NULL, 0},
	};
	struct kit *kits;
	double t0, next_raw, next_agg, end, wait_until;
	int c, rc = 0;

	if(parse_streams("+1:1,+1:2,+2:3,+2:4,+3:5")) return 1;
	while((c = getopt_long(argc, argv, "h:p:", lo, NULL)) != -1){
		switch(c){
		case 'h': g_o.host = optarg; break;
		case 'p': g_o.port = atoi(optarg); break;
		case 'k': g_o.nkits = atoi(optarg); break;
		case 's': g_o.start_kit = atoi(optarg); break;
		case 'F': g_o.serial_format = optarg; break;
		case 'P': g_o.password = optarg; break;
		case 'f': g_o.password_file = optarg; break;
		case 'S':
			if(parse_streams(optarg)){
				fprintf(stderr, "kitsim: --streams: expected <peripheral>:<quantityType>[,...] (at most %d)\n", MAX_STREAMS);
				return 1;
			}
			break;
		case 'r': g_o.raw_interval = atof(optarg); break;
		case 'a': g_o.agg_interval = atof(optarg); break;
		case 'd': g_o.duration = atof(optarg); break;
		case 'j': g_o.json = 1; break;
		case 'i': g_o.invalid_ratio = atof(optarg); break;
		case '5': g_o.v5 = 1; break;
		case 'L': g_o.fleet = 1; break;
		case 'R': g_o.ramp = atof(optarg); break;
		case 'B': g_o.backoff_max = atof(optarg); break;
		case 'T': g_o.status_file = optarg; break;
		case 'H': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if(optind < argc || g_o.nkits < 1 || g_o.nkits > 100000 || g_o.port < 1 || g_o.port > 65535
			|| !(g_o.raw_interval > 0) || !(g_o.agg_interval > 0) || g_o.duration < 0
			|| g_o.invalid_ratio < 0 || g_o.invalid_ratio > 1 || g_o.ramp < 0 || !(g_o.backoff_max >= 1)){
		usage(stderr);
		return 1;
	}
	if(getrandom(&g_rng, sizeof(g_rng), 0) != (ssize_t)sizeof(g_rng) || g_rng == 0) g_rng = (uint64_t)time(NULL) | 1;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGUSR1, on_pause);
	signal(SIGUSR2, on_pause);
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	mosquitto_lib_init();

	kits = calloc((size_t)g_o.nkits, sizeof(*kits));
	if(!kits) return 1;
	for(int i = 0; i < g_o.nkits; i++){
		struct kit *k = &kits[i];
		int64_t t = now_ms();

		k->index = g_o.start_kit + i;
		snprintf(k->serial, sizeof(k->serial), g_o.serial_format, k->index);
		snprintf(k->topic_raw, sizeof(k->topic_raw), "kit/%s/measurement/raw", k->serial);
		snprintf(k->topic_agg, sizeof(k->topic_agg), "kit/%s/measurement/aggregate", k->serial);
		if(kit_password(k)) return 1;
		k->nst = g_o.ndefs;
		for(int s = 0; s < k->nst; s++){
			k->st[s].peripheral = g_o.defs[s].relative ? k->index * 10 + g_o.defs[s].peripheral : g_o.defs[s].peripheral;
			k->st[s].quantity_type = g_o.defs[s].quantity_type;
			k->st[s].level = 20 + 10 * rnd01();
			k->st[s].window_start_ms = t;
		}
		/* paho's mqtt.Client(): clean session, random client id (libmosquitto makes one for NULL) */
		k->mosq = mosquitto_new(NULL, true, k);
		if(!k->mosq) return 1;
		mosquitto_int_option(k->mosq, MOSQ_OPT_PROTOCOL_VERSION, g_o.v5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
		mosquitto_username_pw_set(k->mosq, k->serial, k->password);
		mosquitto_reconnect_delay_set(k->mosq, 1, 128, true); /* the kit's reconnect_delay_set */
		mosquitto_connect_v5_callback_set(k->mosq, on_connect);
		mosquitto_disconnect_v5_callback_set(k->mosq, on_disconnect);
		mosquitto_publish_v5_callback_set(k->mosq, on_publish);
		if(g_o.fleet) continue; /* fleet_run connects */
		if((c = mosquitto_connect(k->mosq, g_o.host, g_o.port, g_o.keepalive)) != MOSQ_ERR_SUCCESS){
			fprintf(stderr, "kitsim: %s: connect to %s:%d: %s\n", k->serial, g_o.host, g_o.port,
					c == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(c));
			return 1;
		}
		mosquitto_loop_start(k->mosq);
	}
	if(g_o.fleet){
		rc = fleet_run(kits);
		goto out;
	}
	/* Wait for every CONNACK (10 s). */
	wait_until = mono_s() + 10;
	for(;;){
		int up = 0, refused = 0;
		pthread_mutex_lock(&g_lock);
		for(int i = 0; i < g_o.nkits; i++){
			up += kits[i].connected;
			if(kits[i].refused && !refused){
				refused = 1;
				fprintf(stderr, "kitsim: %s: connection refused: %s\n", kits[i].serial,
						g_o.v5 ? mosquitto_reason_string(kits[i].refused) : mosquitto_connack_string(kits[i].refused));
			}
		}
		pthread_mutex_unlock(&g_lock);
		if(refused){
			rc = 1;
			goto out;
		}
		if(up == g_o.nkits) break;
		if(mono_s() > wait_until || g_stop){
			fprintf(stderr, "kitsim: only %d of %d kits connected\n", up, g_o.nkits);
			rc = 1;
			goto out;
		}
		sleep_s(0.01);
	}

	t0 = mono_s();
	next_raw = t0;
	next_agg = t0 + g_o.agg_interval;
	end = g_o.duration > 0 ? t0 + g_o.duration : INFINITY;
	while(!g_stop){
		double now = mono_s(), next = next_raw < next_agg ? next_raw : next_agg;

		if(next >= end) break;
		if(now < next){
			sleep_s(next - now > 0.2 ? 0.2 : next - now);
			continue;
		}
		if(next_raw <= now){
			int64_t t = now_ms();
			for(int i = 0; i < g_o.nkits; i++){
				if(send_raw(&kits[i], t)) goto out_err;
			}
			next_raw += g_o.raw_interval;
		}
		if(next_agg <= now){
			int64_t t = now_ms();
			for(int i = 0; i < g_o.nkits; i++){
				if(send_aggregates(&kits[i], t)) goto out_err;
			}
			next_agg += g_o.agg_interval;
		}
	}
	goto drain;
out_err:
	rc = 2;
drain:
	/* Every QoS 0 message written and every QoS 2 handshake done (30 s). */
	wait_until = mono_s() + 30;
	for(;;){
		uint64_t left;
		pthread_mutex_lock(&g_lock);
		left = g_published - g_done;
		pthread_mutex_unlock(&g_lock);
		if(left == 0) break;
		if(mono_s() > wait_until){
			fprintf(stderr, "kitsim: %" PRIu64 " messages unanswered at the drain timeout\n", left);
			rc = 2;
			break;
		}
		sleep_s(0.01);
	}
out:
	for(int i = 0; i < g_o.nkits; i++){
		if(!kits[i].mosq) continue;
		if(!g_o.fleet){
			mosquitto_disconnect(kits[i].mosq);
			mosquitto_loop_stop(kits[i].mosq, false);
		}
		mosquitto_destroy(kits[i].mosq);
	}
	pthread_mutex_lock(&g_lock);
	printf("kitsim: kits=%d raw=%" PRIu64 " aggregate=%" PRIu64 " invalid=%" PRIu64 " completed=%" PRIu64
			" rejected=%" PRIu64 " dropped=%" PRIu64 "\n", g_o.nkits, g_nraw, g_nagg, g_ninv, g_done, g_rejected,
			g_failed);
	if(g_o.fleet)
		printf("kitsim: fleet raw_done=%" PRIu64 " aggregate_done=%" PRIu64 " connects=%" PRIu64 " lost=%" PRIu64
				" failed=%" PRIu64 "\n", g_raw_done, g_agg_done, g_connects, g_conn_lost, g_conn_refused);
	pthread_mutex_unlock(&g_lock);
	free(kits);
	mosquitto_lib_cleanup();
	return rc;
}
