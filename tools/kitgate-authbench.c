/* kitgate-authbench.c -- what `auth postgres` costs: kit logins per second (cold = PBKDF2, warm =
 * login cache) for AstroPlant's and mosquitto-go-auth's hash parameters, and the broker's message
 * latency while many kits log in at once (PBKDF2 runs on the broker thread in mosquitto 2.0.11).
 *
 *   kitgate-authbench cpu [seconds]
 *   kitgate-authbench hash sha256|sha512 ITERATIONS SALT SECRET
 *   kitgate-authbench storm -p PORT -n KITS [-k PREFIX] [-s SECRET] [-u SERVICE_USER] [-P SERVICE_PW]
 *                           [-c CYCLES] [-q PING_QOS] [-w]
 *   kitgate-authbench attack -p PORT -n KITS [-f FIRST] [-k PREFIX] [-t SECONDS] [-j CONNECTIONS]
 *                            [-u SERVICE_USER] [-P SERVICE_PW] [-b SOURCE_ADDRESS]
 *
 * storm: kits PREFIX0001..PREFIXnnnn (default k-test-) must have SECRET behind their password_hash;
 * a service client round-trips pings (QoS PING_QOS, default 1) on kit/authbench/ping every 2 ms; each
 * cycle connects all kits at once, waits for every CONNACK, disconnects them. Cycle 1 is cold
 * (PBKDF2), the next are warm (login cache). Prints p50/p99/max of the ping round trip before and
 * during each storm. -w: a refused kit reconnects after 1 s, as kits do, and the cycle lasts until
 * every kit is admitted (at most 120 s): the time to admit the whole fleet.
 *
 * attack: J threads log in with wrong secrets, as fast as the broker answers, for SECONDS, cycling
 * over kits PREFIX<FIRST>..PREFIX<FIRST+KITS-1> (from SOURCE_ADDRESS when given), while the service client pings as in storm. Prints
 * the attempts per second and the ping round trip before and during the attack. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <mosquitto.h>

#include "kitgate/logincache.h"
#include "kitgate/pbkdf2.h"

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---------------------------------------------------------------- cpu */

static void bench_one(const char *label, enum kg_pbkdf2_alg alg, uint32_t iter, size_t klen, double secs)
{
	const char *secret = "q7!Rm@x#T$v%W&z2Kp9LbN4c";
	char hash[512];
	struct kg_pbkdf2 h;
	struct kg_logincache *c = kg_logincache__new(16384);
	int64_t t0, cold_n = 0, warm_n = 0, cold_ns, warm_ns;

	if(!c || kg_pbkdf2__format(alg, iter, "Z416JHE8vSmaiamV5TRz", secret, klen, hash, sizeof(hash))
			|| kg_pbkdf2__parse(hash, &h, NULL)){
		fprintf(stderr, "setup failed\n");
		exit(1);
	}
	t0 = cpu_ns();
	do{
		if(kg_pbkdf2__verify(&h, secret, strlen(secret)) != 1) exit(2);
		cold_n++;
	}while(cpu_ns() - t0 < (int64_t)(secs * 1e9));
	cold_ns = cpu_ns() - t0;
	kg_logincache__add(c, "k-test-0001", secret, strlen(secret), hash);
	t0 = cpu_ns();
	do{
		for(int i = 0; i < 1000; i++){
			if(kg_logincache__hit(c, "k-test-0001", secret, strlen(secret), hash) != 1) exit(3);
		}
		warm_n += 1000;
	}while(cpu_ns() - t0 < (int64_t)(secs * 1e9));
	warm_ns = cpu_ns() - t0;
	printf("%-28s cold %8.0f logins/s (%7.2f ms CPU each)   warm %9.0f logins/s (%5.2f us each)\n", label,
			cold_n / (cold_ns / 1e9), cold_ns / 1e6 / cold_n, warm_n / (warm_ns / 1e9), warm_ns / 1e3 / warm_n);
	kg_logincache__free(c);
}

static int cmd_cpu(int argc, char **argv)
{
	double secs = argc > 2 ? atof(argv[2]) : 2.0;

	if(secs <= 0) secs = 2.0;
	printf("one thread, CPU time per login (the broker thread pays this in BASIC_AUTH)\n");
	bench_one("sha256/15000 (AstroPlant)", KG_PBKDF2_SHA256, 15000, 32, secs);
	bench_one("sha512/100000 (go-auth)", KG_PBKDF2_SHA512, 100000, 64, secs);
	return 0;
}

static int cmd_hash(int argc, char **argv)
{
	char out[512];
	enum kg_pbkdf2_alg alg;

	if(argc != 6) return 2;
	if(!strcmp(argv[2], "sha256")) alg = KG_PBKDF2_SHA256;
	else if(!strcmp(argv[2], "sha512")) alg = KG_PBKDF2_SHA512;
	else return 2;
	if(kg_pbkdf2__format(alg, (uint32_t)strtoul(argv[3], NULL, 10), argv[4], argv[5],
				alg == KG_PBKDF2_SHA512 ? 64 : 32, out, sizeof(out))){
		fprintf(stderr, "bad arguments\n");
		return 1;
	}
	puts(out);
	return 0;
}

/* ---------------------------------------------------------------- storm */

#define MAX_SAMPLES 200000

static struct {
	int port;
	const char *prefix, *secret, *svc_user, *svc_pw;
	int nkits, cycles, qos, wait_all;
} opt = { 0, "k-test-", NULL, "server", "pw", 100, 2, 1, 0 };

static pthread_mutex_t lat_lock = PTHREAD_MUTEX_INITIALIZER;
struct sample {
	int64_t sent, rtt;         /* monotonic ns */
};
static struct sample *lat;    /* every round trip, in arrival order */
static size_t nlat;
/* Counters shared with the kit processes (storm forks one per KITS_PER_PROC kits: libmosquitto's
 * select() cannot watch descriptors past 1023 and each client holds three). */
#define KITS_PER_PROC 250
static _Atomic int *shared;        /* [0] admitted, [1] refused, [2] cycle over */
#define connected_kits (shared[0])
#define refused_kits (shared[1])
#define cycle_over (shared[2])
static _Atomic int ping_ready;

static void on_ping(struct mosquitto *m, void *ud, const struct mosquitto_message *msg)
{
	int64_t sent;

	(void)m;
	(void)ud;
	if(msg->payloadlen != sizeof(sent)) return;
	memcpy(&sent, msg->payload, sizeof(sent));
	pthread_mutex_lock(&lat_lock);
	if(nlat < MAX_SAMPLES){
		lat[nlat].sent = sent;
		lat[nlat++].rtt = mono_ns() - sent;
	}
	pthread_mutex_unlock(&lat_lock);
}

static void on_ping_connect(struct mosquitto *m, void *ud, int rc)
{
	(void)ud;
	if(rc == 0) mosquitto_subscribe(m, NULL, "kit/authbench/ping", opt.qos);
}

static void on_ping_subscribe(struct mosquitto *m, void *ud, int mid, int n, const int *q)
{
	(void)m; (void)ud; (void)mid; (void)n; (void)q;
	atomic_store(&ping_ready, 1);
}

static void on_kit_connect(struct mosquitto *m, void *ud, int rc)
{
	(void)m;
	(void)ud;
	if(rc == 0) atomic_fetch_add(&connected_kits, 1);
	else atomic_fetch_add(&refused_kits, 1);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Percentiles of the round trips of pings SENT in [from, to) (wherever they came back). */
static void report(const char *phase, int64_t from, int64_t to)
{
	int64_t *v;
	size_t n = 0, i;

	pthread_mutex_lock(&lat_lock);
	v = malloc((nlat ? nlat : 1) * sizeof(*v));
	for(i = 0; v && i < nlat; i++){
		if(lat[i].sent >= from && lat[i].sent < to) v[n++] = lat[i].rtt;
	}
	pthread_mutex_unlock(&lat_lock);
	if(!v) return;
	qsort(v, n, sizeof(*v), cmp_i64);
	if(n == 0){
		printf("  %-44s no pings sent\n", phase);
	}else{
		printf("  %-44s %6zu pings  p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms\n", phase, n,
				v[n / 2] / 1e6, v[(n * 99) / 100] / 1e6, v[n - 1] / 1e6);
	}
	free(v);
}

static void *pinger(void *arg)
{
	struct mosquitto *m = arg;
	struct timespec pause = { 0, 2000000 };

	while(atomic_load(&ping_ready) >= 0){
		int64_t now = mono_ns();
		mosquitto_publish(m, NULL, "kit/authbench/ping", sizeof(now), &now, opt.qos, false);
		nanosleep(&pause, NULL);
	}
	return NULL;
}

/* The service client: connects as opt.svc_user, subscribes to the ping topic (waits up to 5 s for
 * the SUBACK) and starts the pinger thread in *pt. NULL (after a message on stderr) on failure. */
static struct mosquitto *start_pinger(pthread_t *pt)
{
	struct mosquitto *ping = mosquitto_new("authbench-ping", true, NULL);
	int i;

	if(!ping) return NULL;
	mosquitto_username_pw_set(ping, opt.svc_user, opt.svc_pw);
	mosquitto_connect_callback_set(ping, on_ping_connect);
	mosquitto_subscribe_callback_set(ping, on_ping_subscribe);
	mosquitto_message_callback_set(ping, on_ping);
	if(mosquitto_connect(ping, "127.0.0.1", opt.port, 30) != MOSQ_ERR_SUCCESS || mosquitto_loop_start(ping)){
		fprintf(stderr, "service client cannot connect to port %d\n", opt.port);
		return NULL;
	}
	for(i = 0; i < 500 && !atomic_load(&ping_ready); i++) usleep(10000);
	if(!atomic_load(&ping_ready)){
		fprintf(stderr, "service client: no SUBACK\n");
		return NULL;
	}
	pthread_create(pt, NULL, pinger, ping);
	return ping;
}

static int cmd_storm(int argc, char **argv)
{
	struct mosquitto *ping, **kits;
	pthread_t pt;
	pid_t *pids;
	int o, i, cyc, p, nproc;
	char user[128], phase[96];

	while((o = getopt(argc - 1, argv + 1, "p:n:k:s:u:P:c:q:w")) != -1){
		switch(o){
			case 'p': opt.port = atoi(optarg); break;
			case 'n': opt.nkits = atoi(optarg); break;
			case 'k': opt.prefix = optarg; break;
			case 's': opt.secret = optarg; break;
			case 'u': opt.svc_user = optarg; break;
			case 'P': opt.svc_pw = optarg; break;
			case 'c': opt.cycles = atoi(optarg); break;
			case 'q': opt.qos = atoi(optarg); break;
			case 'w': opt.wait_all = 1; break;
			default: return 2;
		}
	}
	if(!opt.port || !opt.secret || opt.nkits < 1 || opt.cycles < 1 || opt.qos < 0 || opt.qos > 2) return 2;
	lat = malloc(MAX_SAMPLES * sizeof(*lat));   /* 2 ms pings: ~6 minutes */
	kits = calloc((size_t)opt.nkits, sizeof(*kits));
	pids = calloc((size_t)(opt.nkits + KITS_PER_PROC - 1) / KITS_PER_PROC, sizeof(*pids));
	shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if(!lat || !kits || !pids || shared == MAP_FAILED) return 1;
	mosquitto_lib_init();
	if(!(ping = start_pinger(&pt))) return 1;
	printf("%d kits log in at once, %d cycle(s)%s; service client pings (QoS %d) every 2 ms\n", opt.nkits,
			opt.cycles, opt.wait_all ? ", refused kits retry after 1 s until all are in" : "", opt.qos);
	for(cyc = 1; cyc <= opt.cycles; cyc++){
		int64_t t0, t_all = 0;

		usleep(1000000);
		atomic_store(&connected_kits, 0);
		atomic_store(&refused_kits, 0);
		atomic_store(&cycle_over, 0);
		t0 = mono_ns();
		nproc = (opt.nkits + KITS_PER_PROC - 1) / KITS_PER_PROC;
		for(p = 0; p < nproc; p++){
			int first = p * KITS_PER_PROC, last = first + KITS_PER_PROC;

			if(last > opt.nkits) last = opt.nkits;
			pids[p] = fork();
			if(pids[p] < 0){
				perror("fork");
				return 1;
			}
			if(pids[p] > 0) continue;
			/* a kit process: its slice of kits, connected until the cycle is over */
			for(i = first; i < last; i++){
				snprintf(user, sizeof(user), "%s%04d", opt.prefix, i + 1);
				kits[i] = mosquitto_new(NULL, true, NULL);
				mosquitto_username_pw_set(kits[i], user, opt.secret);
				mosquitto_connect_callback_set(kits[i], on_kit_connect);
				mosquitto_reconnect_delay_set(kits[i], 1, 1, false);
				mosquitto_connect_async(kits[i], "127.0.0.1", opt.port, 60);
				mosquitto_loop_start(kits[i]);
			}
			while(!atomic_load(&cycle_over)) usleep(10000);
			for(i = first; i < last; i++){
				mosquitto_disconnect(kits[i]);
				mosquitto_loop_stop(kits[i], false);
				mosquitto_destroy(kits[i]);
			}
			_exit(0);
		}
		while((opt.wait_all ? atomic_load(&connected_kits) < opt.nkits
				: atomic_load(&connected_kits) + atomic_load(&refused_kits) < opt.nkits) && mono_ns() - t0 < 120e9){
			usleep(1000);
		}
		t_all = mono_ns() - t0;
		usleep(1000000);   /* let the pings sent during the storm come back */
		snprintf(phase, sizeof(phase), "cycle %d: idle (1 s before)", cyc);
		report(phase, t0 - 1000000000, t0);
		snprintf(phase, sizeof(phase), "cycle %d: %s storm (until last CONNACK)", cyc, cyc == 1 ? "cold" : "warm");
		report(phase, t0, t0 + t_all);
		printf("  cycle %d: %d kits admitted, %d refusals, %s after %.1f ms (%.0f logins/s)\n", cyc,
				atomic_load(&connected_kits), atomic_load(&refused_kits), opt.wait_all ? "all admitted"
				: "all CONNACKs", t_all / 1e6,
				opt.nkits / (t_all / 1e9));
		atomic_store(&cycle_over, 1);
		for(p = 0; p < nproc; p++) waitpid(pids[p], NULL, 0);
	}
	atomic_store(&ping_ready, -1);
	pthread_join(pt, NULL);
	mosquitto_disconnect(ping);
	mosquitto_loop_stop(ping, false);
	mosquitto_destroy(ping);
	mosquitto_lib_cleanup();
	free(kits);
	free(pids);
	free(lat);
	return 0;
}

/* ---------------------------------------------------------------- attack */

static struct {
	int first, conns;
	double secs;
	int64_t until;
	_Atomic long next, attempts, refused, admitted, failed;
} atk = { 1, 16, 10.0, 0, 0, 0, 0, 0, 0 };
static const char *atk_bind;   /* the attackers' source address; NULL: the system's choice */

static void on_attack_connect(struct mosquitto *m, void *ud, int rc)
{
	int *done = ud;

	(void)m;
	*done = rc == 0 ? 1 : 2;
}

/* One attacker: connect with a wrong secret, wait for the CONNACK (or the connection's end), again. */
static void *attacker(void *arg)
{
	char user[128], pw[64];
	long k;
	int done, i;

	(void)arg;
	while(mono_ns() < atk.until){
		struct mosquitto *m;

		k = atomic_fetch_add(&atk.next, 1);
		snprintf(user, sizeof(user), "%s%04ld", opt.prefix, atk.first + k % opt.nkits);
		snprintf(pw, sizeof(pw), "wrong-secret-%ld", k);
		done = 0;
		m = mosquitto_new(NULL, true, &done);
		if(!m) break;
		mosquitto_username_pw_set(m, user, pw);
		mosquitto_connect_callback_set(m, on_attack_connect);
		atomic_fetch_add(&atk.attempts, 1);
		if(mosquitto_connect_bind(m, "127.0.0.1", opt.port, 30, atk_bind) == MOSQ_ERR_SUCCESS){
			for(i = 0; i < 600 && !done; i++){
				if(mosquitto_loop(m, 100, 1) != MOSQ_ERR_SUCCESS) break;
			}
		}
		if(done == 1) atomic_fetch_add(&atk.admitted, 1);
		else if(done == 2) atomic_fetch_add(&atk.refused, 1);
		else atomic_fetch_add(&atk.failed, 1);
		if(done == 1) mosquitto_disconnect(m);
		mosquitto_destroy(m);
	}
	return NULL;
}

static int cmd_attack(int argc, char **argv)
{
	struct mosquitto *ping;
	pthread_t pt, *th;
	int o, i;
	int64_t t0, t1;

	while((o = getopt(argc - 1, argv + 1, "p:n:f:k:t:j:u:P:b:")) != -1){
		switch(o){
			case 'p': opt.port = atoi(optarg); break;
			case 'n': opt.nkits = atoi(optarg); break;
			case 'f': atk.first = atoi(optarg); break;
			case 'k': opt.prefix = optarg; break;
			case 't': atk.secs = atof(optarg); break;
			case 'j': atk.conns = atoi(optarg); break;
			case 'u': opt.svc_user = optarg; break;
			case 'P': opt.svc_pw = optarg; break;
			case 'b': atk_bind = optarg; break;
			default: return 2;
		}
	}
	if(!opt.port || opt.nkits < 1 || atk.conns < 1 || atk.secs <= 0) return 2;
	lat = malloc(MAX_SAMPLES * sizeof(*lat));
	th = calloc((size_t)atk.conns, sizeof(*th));
	if(!lat || !th) return 1;
	mosquitto_lib_init();
	if(!(ping = start_pinger(&pt))) return 1;
	usleep(1000000);
	t0 = mono_ns();
	atk.until = t0 + (int64_t)(atk.secs * 1e9);
	for(i = 0; i < atk.conns; i++) pthread_create(&th[i], NULL, attacker, NULL);
	for(i = 0; i < atk.conns; i++) pthread_join(th[i], NULL);
	t1 = mono_ns();
	usleep(500000);
	atomic_store(&ping_ready, -1);
	pthread_join(pt, NULL);
	printf("attack: %d connections, wrong secrets over %d kits, %.1f s: %ld attempts (%.0f/s), %ld refused, "
			"%ld admitted, %ld without CONNACK\n", atk.conns, opt.nkits, (t1 - t0) / 1e9,
			atomic_load(&atk.attempts), atomic_load(&atk.attempts) / ((t1 - t0) / 1e9),
			atomic_load(&atk.refused), atomic_load(&atk.admitted), atomic_load(&atk.failed));
	report("ping: idle (1 s before)", t0 - 1000000000, t0);
	report("ping: during the attack", t0, t1);
	mosquitto_disconnect(ping);
	mosquitto_loop_stop(ping, false);
	mosquitto_destroy(ping);
	mosquitto_lib_cleanup();
	free(th);
	free(lat);
	return atomic_load(&atk.admitted) ? 3 : 0;
}

int main(int argc, char **argv)
{
	int rc = 2;

	if(argc >= 2 && !strcmp(argv[1], "cpu")) rc = cmd_cpu(argc, argv);
	else if(argc >= 2 && !strcmp(argv[1], "hash")) rc = cmd_hash(argc, argv);
	else if(argc >= 2 && !strcmp(argv[1], "storm")) rc = cmd_storm(argc, argv);
	else if(argc >= 2 && !strcmp(argv[1], "attack")) rc = cmd_attack(argc, argv);
	if(rc == 2){
		fprintf(stderr, "usage: %s cpu [seconds]\n"
				"       %s hash sha256|sha512 ITERATIONS SALT SECRET\n"
				"       %s storm -p PORT -n KITS [-k PREFIX] -s SECRET [-u USER] [-P PASSWORD] [-c CYCLES] [-q QOS] [-w]\n"
				"       %s attack -p PORT -n KITS [-f FIRST] [-k PREFIX] [-t SECONDS] [-j CONNECTIONS] [-u USER] "
				"[-P PASSWORD] [-b SOURCE_ADDRESS]\n", argv[0], argv[0], argv[0], argv[0]);
	}
	return rc;
}
