/* pubengine.h -- flow-controlled MQTT publisher engine: N kit clients driven by one thread, used by
 * kitgate-loadgen and kitgate-bench.
 *
 * Threads: one engine run happens on the calling thread; the only thing another thread (or a
 * signal handler) may touch is the int pointed to by opts.stop. */
#ifndef KITGATE_PUBENGINE_H
#define KITGATE_PUBENGINE_H

#include <stddef.h>
#include <stdint.h>

/* Why the publisher sends an invalid message, in the order --invalid-every cycles through them. */
enum kg_pe_invalid {
	KG_PE_INV_MALFORMED = 0,  /* not JSON */
	KG_PE_INV_BAD_TIME,       /* datetime negative */
	KG_PE_INV_BAD_VALUE,      /* value 1e999 (not finite) */
	KG_PE_INV_SERIAL_MISMATCH,/* kitSerial of another kit */
	KG_PE_INV_MISSING_FIELD,  /* no "value" */
	KG_PE_INV_BAD_TYPE,       /* "peripheral" is a string */
	KG_PE_INV_COUNT
};

/* A snapshot of the counters, passed to the progress callback and part of the result. */
struct kg_pe_counts {
	uint64_t sent;      /* PUBLISH handed to libmosquitto */
	uint64_t acked;     /* PUBACK/PUBCOMP with reason < 0x80 (QoS 0: written to the socket) */
	uint64_t rejected;  /* reason >= 0x80 (kitgate answers 0x87 for an invalid measurement) */
	uint64_t failed;    /* sent but never answered (connection lost, or drain timeout) */
	uint64_t invalid_sent, aggregate_sent;
	uint64_t disconnects, reconnects;
	double elapsed_s;   /* first publish .. last answer (or now, while running) */
};

typedef void (*kg_pe_progress_fn)(void *ud, const struct kg_pe_counts *c);

struct kg_pe_opts {
	const char *host;          /* default "127.0.0.1" */
	int port;                  /* default 1883 */
	int nkits;                 /* clients, default 10 */
	int start_kit;             /* first kit index i (serial k-test-%04d), default 1 */
	const char *password;      /* default "pw" */
	int qos;                   /* 0, 1 (default) or 2 */
	int window;                /* in-flight messages per client, default 100 */
	double rate;               /* total messages/s, evenly paced; 0 = as fast as the window allows */
	uint64_t messages;         /* total to send; 0 = until duration_s */
	double duration_s;         /* publishing time limit; 0 = until messages (one of them is needed) */
	double drain_timeout_s;    /* after the last publish, wait this long for answers; default 30 */
	int v311;                  /* MQTT v3.1.1 instead of v5 (no reason codes: every answer is "acked") */
	int invalid_every;         /* every K-th message of a kit is invalid (cycling the reasons); 0 = never */
	int aggregate_every;       /* every K-th message of a kit is an aggregate; 0 = never */
	const char *acked_log;     /* append the UUID of every acked message, one per line; NULL = no */
	int reconnect;             /* on a lost connection reconnect (with backoff) instead of ending */
	int keepalive;             /* seconds, default 60 */
	volatile int *stop;        /* if non-NULL and becomes non-zero: stop publishing and drain */
	kg_pe_progress_fn progress;/* called about once per second from the engine thread; may be NULL */
	void *progress_ud;
};

struct kg_pe_result {
	struct kg_pe_counts c;
	int connection_broke;      /* a client lost its connection (and --reconnect was off, or it did) */
	int connect_failed;        /* a client could not connect at all (refused, wrong password) */
	char error[256];           /* first error, for the user */
	uint32_t *lat_us;          /* publish -> answer latency of every answered message, microseconds */
	size_t nlat;
	int64_t first_pub_realtime_ms; /* wall clock of the first publish (CLOCK_REALTIME) */
	int64_t last_ack_realtime_ms;  /* wall clock of the last answer */
};

/* Fill o with the defaults listed above. */
void kg_pe__defaults(struct kg_pe_opts *o);

/* Connect o->nkits clients, publish until o->messages or o->duration_s (or *o->stop), wait for
 * the outstanding answers, disconnect. Returns 0 when every client connected (the run may still
 * have broken: see res->connection_broke and res->c.failed), -1 when the options are invalid or
 * a client could not connect (res->error says why). res is always filled and must be released
 * with kg_pe__result_free. Calling thread; mosquitto_lib_init() must have been called. */
int kg_pe__run(const struct kg_pe_opts *o, struct kg_pe_result *res);

void kg_pe__result_free(struct kg_pe_result *res);

/* The p-th percentile (0..100) of lat[0..n) in milliseconds, nearest-rank; sorts lat in place.
 * Returns 0 when n == 0. Pure. */
double kg_pe__percentile_ms(uint32_t *lat, size_t n, double p);

/* Build the payload of message number seq (1-based) of kit index kit into buf: a valid raw or
 * aggregate measurement, or the invalid kind inv (KG_PE_INV_COUNT = valid). id receives the
 * message's UUID. now_ms is the datetime. Returns the length (NUL-terminated; < cap) or -1 when
 * cap is too small. Pure apart from the random UUID source. */
int kg_pe__payload(char *buf, size_t cap, int kit, uint64_t seq, int aggregate, int inv,
		int64_t now_ms, uint8_t id[16]);

#endif
