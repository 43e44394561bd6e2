/* pubengine.c -- flow-controlled MQTT publisher engine: N kit clients, one thread, one poll(2) over
 * every socket, libmosquitto's loop_read/loop_write per ready socket (see pubengine.h). */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "pubengine.h"

#define NS_PER_S 1000000000LL

/* One message waiting for its answer, in a client's open-addressing table keyed by mid. */
struct slot {
	uint16_t mid;
	uint8_t used;
	int64_t t_ns;
	uint8_t id[16];
};

struct engine;

struct client {
	struct engine *e;
	struct mosquitto *mosq;
	int kit;
	char serial[24];
	char topic_raw[64], topic_agg[64];
	int connected;       /* CONNACK success seen, not lost since */
	int lost;            /* connection lost (waiting for a reconnect, or for good) */
	uint64_t seq;        /* messages this kit has published */
	int inflight;
	struct slot *slots;
	size_t cap;          /* power of two */
	int64_t reconnect_at_ns;
	int backoff_ms;
	/* the publish in progress: QoS 0 answers arrive inside mosquitto_publish */
	int in_publish, pub_answered, pub_mid;
	int64_t pub_t_ns;
	uint8_t pub_id[16];
};

struct engine {
	const struct kg_pe_opts *o;
	struct kg_pe_result *res;
	struct client *cl;
	int n;
	FILE *acklog;
	int acklog_dirty;
	int closing;
	int connacks, connack_fail;
	int broke;
	int64_t t_first_ns, t_last_ans_ns;
	size_t latcap;
	int started;
};

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static int64_t real_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* xoshiro256** per thread, seeded from getrandom(2). */
static __thread uint64_t rng_s[4];
static __thread int rng_seeded;

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(void)
{
	uint64_t r, t;

	if(!rng_seeded){
		if(getrandom(rng_s, sizeof(rng_s), 0) != (ssize_t)sizeof(rng_s)){
			rng_s[0] = (uint64_t)mono_ns() ^ 0x9e3779b97f4a7c15ULL;
			rng_s[1] = (uint64_t)getpid() * 0xbf58476d1ce4e5b9ULL;
			rng_s[2] = (uint64_t)real_ms() * 0x94d049bb133111ebULL;
			rng_s[3] = 0x2545f4914f6cdd1dULL;
		}
		rng_seeded = 1;
	}
	r = rotl(rng_s[1] * 5, 7) * 9;
	t = rng_s[1] << 17;
	rng_s[2] ^= rng_s[0];
	rng_s[3] ^= rng_s[1];
	rng_s[1] ^= rng_s[2];
	rng_s[0] ^= rng_s[3];
	rng_s[2] ^= t;
	rng_s[3] = rotl(rng_s[3], 45);
	return r;
}

/* A random version 4 UUID. Any thread. */
static void uuid4(uint8_t id[16])
{
	uint64_t a = rng_next(), b = rng_next();

	memcpy(id, &a, 8);
	memcpy(id + 8, &b, 8);
	id[6] = (uint8_t)((id[6] & 0x0f) | 0x40);
	id[8] = (uint8_t)((id[8] & 0x3f) | 0x80);
}

static void uuid_str(const uint8_t id[16], char out[37])
{
	static const char hex[] = "0123456789abcdef";
	int i, j = 0;

	for(i = 0; i < 16; i++){
		if(i == 4 || i == 6 || i == 8 || i == 10) out[j++] = '-';
		out[j++] = hex[id[i] >> 4];
		out[j++] = hex[id[i] & 15];
	}
	out[j] = '\0';
}

void kg_pe__defaults(struct kg_pe_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->host = "127.0.0.1";
	o->port = 1883;
	o->nkits = 10;
	o->start_kit = 1;
	o->password = "pw";
	o->qos = 1;
	o->window = 100;
	o->drain_timeout_s = 30;
	o->keepalive = 60;
}

int kg_pe__payload(char *buf, size_t cap, int kit, uint64_t seq, int aggregate, int inv,
		int64_t now_ms, uint8_t id[16])
{
	char ids[37], serial[24];
	const char *ks;
	int peripheral = kit * 10 + 1 + (int)(seq % 3);
	int qt = 1 + (int)((seq / 3) % 3);
	int n;

	uuid4(id);
	uuid_str(id, ids);
	snprintf(serial, sizeof(serial), "k-test-%04d", kit);
	ks = (seq % 2) ? serial : "";   /* AstroPlant kits send ""; half of ours name themselves */
	switch(inv){
	case KG_PE_INV_MALFORMED:
		n = snprintf(buf, cap, "{\"id\":\"%s\",\"kitSerial\":\"%s\",\"datetime\":%" PRId64 ",", ids, ks, now_ms);
		break;
	case KG_PE_INV_BAD_TIME:
		n = snprintf(buf, cap, "{\"id\":\"%s\",\"kitSerial\":\"%s\",\"datetime\":-1,\"peripheral\":%d,"
				"\"quantityType\":%d,\"value\":%" PRIu64 "}", ids, ks, peripheral, qt, seq);
		break;
	case KG_PE_INV_BAD_VALUE:
		n = snprintf(buf, cap, "{\"id\":\"%s\",\"kitSerial\":\"%s\",\"datetime\":%" PRId64 ",\"peripheral\":%d,"
				"\"quantityType\":%d,\"value\":1e999}", ids, ks, now_ms, peripheral, qt);
		break;
	case KG_PE_INV_SERIAL_MISMATCH:
		n = snprintf(buf, cap, "{\"id\":\"%s\",\"kitSerial\":\"k-other-%04d\",\"datetime\":%" PRId64 ",\"peripheral\":%d,"
				"\"quantityType\":%d,\"value\":%" PRIu64 "}", ids, kit, now_ms, peripheral, qt, seq);
		break;
	case KG_PE_INV_MISSING_FIELD:
		n = snprintf(buf, cap, "{\"id\":\"%s\",\"kitSerial\":\"%s\",\"datetime\":%" PRId64 ",\"peripheral\":%d,"
				"\"quantityType\":%d}", ids, ks, now_ms, peripheral, qt);
		break;
	case KG_PE_INV_BAD_TYPE:
		n = snprintf(buf, cap, "{\"id\":\"%s\",\"kitSerial\":\"%s\",\"datetime\":%" PRId64 ",\"peripheral\":\"%d\","
				"\"quantityType\":%d,\"value\":%" PRIu64 "}", ids, ks, now_ms, peripheral, qt, seq);
		break;
	default:
		if(aggregate){
			n = snprintf(buf, cap, "{\"id\":\"%s\",\"kitSerial\":\"%s\",\"datetimeStart\":%" PRId64
					",\"datetimeEnd\":%" PRId64 ",\"peripheral\":%d,\"quantityType\":%d,"
					"\"values\":{\"count\":%" PRIu64 ",\"average\":%" PRIu64 ".5,\"minimum\":%" PRIu64
					",\"maximum\":%" PRIu64 "}}",
					ids, ks, now_ms - 60000, now_ms, peripheral, qt, seq, seq, seq, seq + 1);
		}else{
			n = snprintf(buf, cap, "{\"id\":\"%s\",\"kitSerial\":\"%s\",\"datetime\":%" PRId64 ",\"peripheral\":%d,"
					"\"quantityType\":%d,\"value\":%" PRIu64 "}", ids, ks, now_ms, peripheral, qt, seq);
		}
		break;
	}
	if(n < 0 || (size_t)n >= cap) return -1;
	return n;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

double kg_pe__percentile_ms(uint32_t *lat, size_t n, double p)
{
	size_t rank;

	if(n == 0) return 0;
	qsort(lat, n, sizeof(*lat), cmp_u32);
	rank = (size_t)ceil(p / 100.0 * (double)n);
	if(rank < 1) rank = 1;
	if(rank > n) rank = n;
	return lat[rank - 1] / 1000.0;
}

/* --- the per-client table of messages waiting for an answer (linear probing, backward-shift
 * deletion) --- */

static struct slot *slot_find(struct client *c, int mid)
{
	size_t i = (size_t)mid & (c->cap - 1);

	while(c->slots[i].used){
		if(c->slots[i].mid == (uint16_t)mid) return &c->slots[i];
		i = (i + 1) & (c->cap - 1);
	}
	return NULL;
}

/* Insert; the table never fills because inflight <= window < cap/2. */
static struct slot *slot_insert(struct client *c, int mid)
{
	size_t i = (size_t)mid & (c->cap - 1);

	while(c->slots[i].used){
		assert(c->slots[i].mid != (uint16_t)mid);
		i = (i + 1) & (c->cap - 1);
	}
	c->slots[i].used = 1;
	c->slots[i].mid = (uint16_t)mid;
	return &c->slots[i];
}

static void slot_remove(struct client *c, struct slot *s)
{
	size_t mask = c->cap - 1, i = (size_t)(s - c->slots), j = i, home;

	c->slots[i].used = 0;
	for(;;){
		j = (j + 1) & mask;
		if(!c->slots[j].used) return;
		home = (size_t)c->slots[j].mid & mask;
		/* move j back to i when i lies cyclically in [home, j) */
		if((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))){
			c->slots[i] = c->slots[j];
			c->slots[j].used = 0;
			i = j;
		}
	}
}

/* Count one answer (acked when reason < 0x80): latency, acked log. Engine thread. */
static void answer(struct client *c, int64_t t_pub_ns, const uint8_t id[16], int reason)
{
	struct engine *e = c->e;
	struct kg_pe_result *r = e->res;
	int64_t now = mono_ns();
	int64_t us = (now - t_pub_ns) / 1000;
	char ids[37];

	if(reason >= 0x80){
		r->c.rejected++;
	}else{
		r->c.acked++;
		if(e->acklog){
			uuid_str(id, ids);
			fputs(ids, e->acklog);
			fputc('\n', e->acklog);
			e->acklog_dirty = 1;
		}
	}
	if(r->nlat == e->latcap){
		size_t ncap = e->latcap ? e->latcap * 2 : 65536;
		uint32_t *p = realloc(r->lat_us, ncap * sizeof(*p));

		if(p){
			r->lat_us = p;
			e->latcap = ncap;
		}
	}
	if(r->nlat < e->latcap) r->lat_us[r->nlat++] = (uint32_t)(us < 0 ? 0 : (us > UINT32_MAX ? UINT32_MAX : us));
	e->t_last_ans_ns = now;
	r->last_ack_realtime_ms = real_ms();
	c->inflight--;
	assert(c->inflight >= 0);
}

static void on_publish(struct mosquitto *mosq, void *obj, int mid, int reason_code, const mosquitto_property *props)
{
	struct client *c = obj;
	struct slot *s;

	(void)mosq;
	(void)props;
	s = slot_find(c, mid);
	if(s){
		answer(c, s->t_ns, s->id, reason_code);
		slot_remove(c, s);
		return;
	}
	if(c->in_publish && !c->pub_answered && mid == c->pub_mid){
		/* QoS 0 written inside mosquitto_publish, before the slot existed */
		c->pub_answered = 1;
		answer(c, c->pub_t_ns, c->pub_id, reason_code);
	}
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc, int flags, const mosquitto_property *props)
{
	struct client *c = obj;
	struct engine *e = c->e;

	(void)mosq;
	(void)flags;
	(void)props;
	if(rc != 0){
		e->connack_fail++;
		if(!e->res->error[0]){
			snprintf(e->res->error, sizeof(e->res->error), "%s: connection refused: %s",
					c->serial, e->o->v311 ? mosquitto_connack_string(rc) : mosquitto_reason_string(rc));
		}
		return;
	}
	if(c->lost){
		e->res->c.reconnects++;
		c->lost = 0;
	}
	c->connected = 1;
	c->backoff_ms = 0;
	e->connacks++;
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc, const mosquitto_property *props)
{
	struct client *c = obj;
	struct engine *e = c->e;

	(void)mosq;
	(void)props;
	if(e->closing && rc == 0) return;
	c->connected = 0;
	if(c->lost) return;
	c->lost = 1;
	e->res->c.disconnects++;
	if(!e->res->error[0]){
		snprintf(e->res->error, sizeof(e->res->error), "%s: connection lost (%s)", c->serial,
				rc == MOSQ_ERR_CONN_LOST ? "the broker closed it" : mosquitto_strerror(rc));
	}
	if(!e->o->reconnect){
		e->broke = 1;
	}else{
		c->backoff_ms = c->backoff_ms ? (c->backoff_ms * 2 > 2000 ? 2000 : c->backoff_ms * 2) : 100;
		c->reconnect_at_ns = mono_ns() + (int64_t)c->backoff_ms * 1000000;
	}
}

/* Publish the next message of c. Returns 0, or -1 when libmosquitto refused it (the client is
 * then treated as lost). Engine thread, outside callbacks. */
static int publish_one(struct engine *e, struct client *c)
{
	const struct kg_pe_opts *o = e->o;
	char payload[512];
	uint64_t seq = ++c->seq;
	int inv = KG_PE_INV_COUNT, agg = 0, len, rc;
	struct slot *s;

	if(o->invalid_every > 0 && seq % (uint64_t)o->invalid_every == 0){
		inv = (int)((seq / (uint64_t)o->invalid_every - 1) % KG_PE_INV_COUNT);
	}else if(o->aggregate_every > 0 && seq % (uint64_t)o->aggregate_every == 0){
		agg = 1;
	}
	len = kg_pe__payload(payload, sizeof(payload), c->kit, seq, agg, inv, real_ms(), c->pub_id);
	assert(len > 0);
	c->in_publish = 1;
	c->pub_answered = 0;
	c->pub_mid = 0;
	c->pub_t_ns = mono_ns();
	if(e->t_first_ns == 0){
		e->t_first_ns = c->pub_t_ns;
		e->res->first_pub_realtime_ms = real_ms();
	}
	c->inflight++;
	e->res->c.sent++;
	if(inv != KG_PE_INV_COUNT) e->res->c.invalid_sent++;
	if(agg) e->res->c.aggregate_sent++;
	rc = mosquitto_publish_v5(c->mosq, &c->pub_mid, agg ? c->topic_agg : c->topic_raw, len, payload,
			o->qos, false, NULL);
	c->in_publish = 0;
	if(rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_NO_CONN && rc != MOSQ_ERR_CONN_LOST && rc != MOSQ_ERR_ERRNO){
		c->inflight--;
		e->res->c.sent--;
		if(!e->res->error[0]){
			snprintf(e->res->error, sizeof(e->res->error), "%s: publish: %s", c->serial, mosquitto_strerror(rc));
		}
		return -1;
	}
	if(!c->pub_answered){
		/* queued or in flight (also when the write failed: libmosquitto keeps QoS > 0 messages
		 * for a reconnect; a lost QoS 0 message is counted as failed) */
		s = slot_insert(c, c->pub_mid);
		s->t_ns = c->pub_t_ns;
		memcpy(s->id, c->pub_id, 16);
	}
	return 0;
}

static int can_publish(const struct client *c, int window)
{
	return c->connected && c->inflight < window;
}

/* Serve every socket that poll(2) found ready, then keepalives. Engine thread. */
static void serve(struct engine *e, struct pollfd *pfd, int *pidx, int64_t timeout_ns, int misc)
{
	struct timespec ts;
	int i, nfds = 0;

	for(i = 0; i < e->n; i++){
		int fd = mosquitto_socket(e->cl[i].mosq);

		pidx[i] = -1;
		if(fd < 0) continue;
		pfd[nfds].fd = fd;
		pfd[nfds].events = POLLIN | (mosquitto_want_write(e->cl[i].mosq) ? POLLOUT : 0);
		pfd[nfds].revents = 0;
		pidx[i] = nfds++;
	}
	if(timeout_ns < 0) timeout_ns = 0;
	ts.tv_sec = timeout_ns / NS_PER_S;
	ts.tv_nsec = timeout_ns % NS_PER_S;
	if(ppoll(pfd, (nfds_t)nfds, &ts, NULL) < 0 && errno != EINTR) return;
	for(i = 0; i < e->n; i++){
		struct client *c = &e->cl[i];
		short re;

		if(pidx[i] < 0) continue;
		re = pfd[pidx[i]].revents;
		if(re & (POLLIN | POLLERR | POLLHUP)){
			errno = 0; /* loop_read stops at the first packet when errno is a stale EAGAIN */
			mosquitto_loop_read(c->mosq, 1);
		}
		if((re & POLLOUT) && mosquitto_socket(c->mosq) >= 0){
			errno = 0;
			mosquitto_loop_write(c->mosq, 1);
		}
		if(misc && mosquitto_socket(c->mosq) >= 0) mosquitto_loop_misc(c->mosq);
	}
}

static void snapshot(struct engine *e, int64_t now)
{
	struct kg_pe_counts *k = &e->res->c;
	int64_t end = e->t_last_ans_ns > e->t_first_ns ? e->t_last_ans_ns : now;

	if(e->t_first_ns == 0){
		k->elapsed_s = 0;
		return;
	}
	if(e->started) end = now;
	k->elapsed_s = (double)(end - e->t_first_ns) / 1e9;
}

static int check_opts(const struct kg_pe_opts *o, char *err, size_t errlen)
{
	if(!o->host || o->port <= 0 || o->port > 65535){
		snprintf(err, errlen, "bad host or port");
	}else if(o->nkits < 1 || o->nkits > 9999 || o->start_kit < 1 || o->start_kit + o->nkits - 1 > 9999){
		snprintf(err, errlen, "kits must lie in 1..9999");
	}else if(o->qos < 0 || o->qos > 2){
		snprintf(err, errlen, "qos must be 0, 1 or 2");
	}else if(o->window < 1 || o->window > 30000){
		snprintf(err, errlen, "window must lie in 1..30000");
	}else if(o->rate < 0 || !isfinite(o->rate)){
		snprintf(err, errlen, "rate must be >= 0");
	}else if(o->messages == 0 && o->duration_s <= 0){
		snprintf(err, errlen, "give a message count or a duration");
	}else if(o->invalid_every < 0 || o->aggregate_every < 0){
		snprintf(err, errlen, "--invalid-every/--aggregate-every must be >= 0");
	}else{
		return 0;
	}
	return -1;
}

static int setup_clients(struct engine *e)
{
	const struct kg_pe_opts *o = e->o;
	char cid[64];
	int i, rc;

	for(i = 0; i < e->n; i++){
		struct client *c = &e->cl[i];

		c->e = e;
		c->kit = o->start_kit + i;
		snprintf(c->serial, sizeof(c->serial), "k-test-%04d", c->kit);
		snprintf(c->topic_raw, sizeof(c->topic_raw), "kit/%s/measurement/raw", c->serial);
		snprintf(c->topic_agg, sizeof(c->topic_agg), "kit/%s/measurement/aggregate", c->serial);
		for(c->cap = 16; c->cap < (size_t)o->window * 2 + 2; c->cap *= 2){}
		c->slots = calloc(c->cap, sizeof(*c->slots));
		snprintf(cid, sizeof(cid), "%s-lg%d", c->serial, (int)getpid());
		c->mosq = mosquitto_new(cid, true, c);
		if(!c->slots || !c->mosq){
			snprintf(e->res->error, sizeof(e->res->error), "out of memory");
			return -1;
		}
		mosquitto_int_option(c->mosq, MOSQ_OPT_PROTOCOL_VERSION, o->v311 ? MQTT_PROTOCOL_V311 : MQTT_PROTOCOL_V5);
		mosquitto_int_option(c->mosq, MOSQ_OPT_TCP_NODELAY, 1);
		/* v5: libmosquitto obeys the broker's Receive Maximum from CONNACK. v3.1.1 announces no
		 * limit, and mosquitto drops a v3 client with more than max_inflight_messages (20)
		 * unfinished incoming QoS 2 messages, so keep libmosquitto's 20 for QoS 2 (the rest of
		 * the window waits in the client) and let the window be the only limit for QoS 0/1. */
		if(o->qos < 2) mosquitto_max_inflight_messages_set(c->mosq, 0);
		mosquitto_username_pw_set(c->mosq, c->serial, o->password);
		mosquitto_connect_v5_callback_set(c->mosq, on_connect);
		mosquitto_disconnect_v5_callback_set(c->mosq, on_disconnect);
		mosquitto_publish_v5_callback_set(c->mosq, on_publish);
		rc = mosquitto_connect(c->mosq, o->host, o->port, o->keepalive);
		if(rc != MOSQ_ERR_SUCCESS){
			snprintf(e->res->error, sizeof(e->res->error), "%s: connect to %s:%d: %s", c->serial, o->host,
					o->port, rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
			return -1;
		}
	}
	return 0;
}

int kg_pe__run(const struct kg_pe_opts *o, struct kg_pe_result *res)
{
	struct engine e;
	struct pollfd *pfd = NULL;
	int *pidx = NULL;
	int64_t now, deadline, t_start = 0, next_misc, drain_deadline = 0;
	int publishing = 1, i, rc = -1;
	uint64_t outstanding;
	size_t rr = 0;

	memset(res, 0, sizeof(*res));
	memset(&e, 0, sizeof(e));
	e.o = o;
	e.res = res;
	if(check_opts(o, res->error, sizeof(res->error))) return -1;
	e.n = o->nkits;
	e.cl = calloc((size_t)e.n, sizeof(*e.cl));
	pfd = calloc((size_t)e.n, sizeof(*pfd));
	pidx = calloc((size_t)e.n, sizeof(*pidx));
	if(!e.cl || !pfd || !pidx){
		snprintf(res->error, sizeof(res->error), "out of memory");
		goto out;
	}
	if(o->acked_log){
		e.acklog = fopen(o->acked_log, "a");
		if(!e.acklog){
			snprintf(res->error, sizeof(res->error), "%s: %s", o->acked_log, strerror(errno));
			goto out;
		}
	}
	if(setup_clients(&e)) goto out;

	/* wait for every CONNACK */
	deadline = mono_ns() + 10 * NS_PER_S;
	while(e.connacks + e.connack_fail < e.n && !e.broke && mono_ns() < deadline){
		serve(&e, pfd, pidx, 50000000, 0);
	}
	if(e.connacks < e.n){
		if(!res->error[0]) snprintf(res->error, sizeof(res->error), "timed out waiting for CONNACK");
		res->connect_failed = 1;
		goto out;
	}

	e.started = 1;
	t_start = mono_ns();
	next_misc = t_start + NS_PER_S;
	for(;;){
		now = mono_ns();
		if(publishing){
			if((o->stop && *o->stop) || (o->messages && res->c.sent >= o->messages)
					|| (o->duration_s > 0 && (double)(now - t_start) / 1e9 >= o->duration_s) || e.broke){
				publishing = 0;
				drain_deadline = now + (int64_t)(o->drain_timeout_s * 1e9);
			}
		}
		outstanding = res->c.sent - res->c.acked - res->c.rejected;
		if(!publishing && (outstanding == 0 || now >= drain_deadline || e.broke)) break;
		if(o->stop && *o->stop > 1) break; /* asked twice: do not wait for the answers */

		int64_t wait_ns = 100000000;
		if(publishing){
			uint64_t allowed = UINT64_MAX;
			int progress = 1;

			if(o->rate > 0){
				uint64_t due = (uint64_t)((double)(now - t_start) / 1e9 * o->rate) + 1;

				allowed = due > res->c.sent ? due - res->c.sent : 0;
			}
			if(o->messages && o->messages - res->c.sent < allowed) allowed = o->messages - res->c.sent;
			while(allowed > 0 && progress){
				progress = 0;
				for(i = 0; i < e.n && allowed > 0; i++){
					struct client *c = &e.cl[rr];

					rr = (rr + 1) % (size_t)e.n;
					if(!can_publish(c, o->window)) continue;
					if(publish_one(&e, c)){
						c->connected = 0;
						if(!c->lost){
							c->lost = 1;
							res->c.disconnects++;
							if(!o->reconnect) e.broke = 1;
							else c->reconnect_at_ns = now + 100000000;
						}
						continue;
					}
					allowed--;
					progress = 1;
				}
			}
			int any_ready = 0;

			for(i = 0; i < e.n && !any_ready; i++) any_ready = can_publish(&e.cl[i], o->window);
			if(o->rate > 0 && any_ready){
				/* sleep until the next message is due; with every window full, an answer
				 * (socket readable) is what can let us go on, so poll without spinning */
				int64_t next_due = t_start + (int64_t)((double)res->c.sent / o->rate * 1e9);

				wait_ns = next_due - mono_ns();
				if(wait_ns > 100000000) wait_ns = 100000000;
			}
		}
		now = mono_ns();
		serve(&e, pfd, pidx, wait_ns, now >= next_misc);
		if(e.acklog_dirty){
			fflush(e.acklog);
			e.acklog_dirty = 0;
		}
		now = mono_ns();
		if(o->reconnect){
			for(i = 0; i < e.n; i++){
				struct client *c = &e.cl[i];

				if(c->lost && !c->connected && now >= c->reconnect_at_ns && mosquitto_socket(c->mosq) < 0){
					if(mosquitto_reconnect(c->mosq) != MOSQ_ERR_SUCCESS){
						c->backoff_ms = c->backoff_ms ? (c->backoff_ms * 2 > 2000 ? 2000 : c->backoff_ms * 2) : 100;
						c->reconnect_at_ns = now + (int64_t)c->backoff_ms * 1000000;
					}
				}
			}
		}
		if(now >= next_misc){
			next_misc = now + NS_PER_S;
			if(o->progress){
				snapshot(&e, now);
				res->c.failed = 0;
				o->progress(o->progress_ud, &res->c);
			}
		}
	}
	rc = 0;
out:
	e.started = 0;
	snapshot(&e, mono_ns());
	res->c.failed = res->c.sent - res->c.acked - res->c.rejected;
	res->connection_broke = e.broke || (res->c.disconnects > 0);
	if(e.acklog) fclose(e.acklog);
	e.closing = 1;
	if(e.cl){
		for(i = 0; i < e.n; i++){
			if(!e.cl[i].mosq) continue;
			if(e.cl[i].connected) mosquitto_disconnect_v5(e.cl[i].mosq, 0, NULL);
			mosquitto_destroy(e.cl[i].mosq);
			free(e.cl[i].slots);
		}
	}
	free(e.cl);
	free(pfd);
	free(pidx);
	return rc;
}

void kg_pe__result_free(struct kg_pe_result *res)
{
	free(res->lat_us);
	res->lat_us = NULL;
	res->nlat = 0;
}
