/* kitgate-loadgen.c -- publishes AstroPlant measurements as test kits k-test-NNNN with flow control
 * and reports throughput and publish -> PUBACK latency (see --help). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>

#include "pubengine.h"

static volatile int g_stop;

static void on_signal(int sig)
{
	(void)sig;
	g_stop++;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: kitgate-loadgen -h HOST -p PORT [options]\n"
"\n"
"Publishes valid AstroPlant raw measurements on kit/<serial>/measurement/raw as the test kits\n"
"k-test-NNNN (username = serial), one MQTT client per kit, all driven by one thread, and waits for\n"
"every PUBACK. Payloads: random v4 UUID, kitSerial \"\" or the serial (alternating), datetime = now\n"
"(ms), peripheral i*10+1..3 and quantityType 1..3 rotating, value = the kit's message sequence\n"
"number (1, 2, ... counting every message of that kit, so per-kit order can be checked).\n"
"\n"
"  -h, --host HOST          broker address (default 127.0.0.1)\n"
"  -p, --port PORT          broker port (default 1883)\n"
"  --kits N                 number of kit clients (default 10)\n"
"  --start-kit I            first kit index: serials k-test-I .. k-test-(I+N-1) (default 1)\n"
"  --messages TOTAL         messages to send in total (across all kits)\n"
"  --duration S             publish for S seconds (at least one of --messages/--duration;\n"
"                           with both, whichever comes first; default --messages 10000)\n"
"  --rate R                 total target rate in messages/s, evenly paced (default: as fast as\n"
"                           the window allows)\n"
"  --qos Q                  0, 1 (default) or 2\n"
"  --window W               messages in flight (unanswered) per client (default 100); with v5\n"
"                           libmosquitto also keeps to the broker's Receive Maximum (extra\n"
"                           messages wait in the client, and their wait counts as latency);\n"
"                           v3.1.1 at QoS 2 keeps at most 20 in flight (mosquitto's limit)\n"
"  --v311                   MQTT v3.1.1 instead of v5 (no reason codes: rejections are invisible)\n"
"  --invalid-every K        every K-th message of each kit is invalid, cycling through malformed,\n"
"                           bad_time, bad_value, serial_mismatch, missing_field, bad_type\n"
"  --aggregate-every K      every K-th message of each kit is an aggregate measurement on\n"
"                           kit/<serial>/measurement/aggregate\n"
"  --password PW            password of every kit (default pw)\n"
"  --acked-log FILE         append the id (UUID) of every acked message to FILE, one per line,\n"
"                           flushed after each batch of acks (rejected ids are not written)\n"
"  --reconnect              reconnect (with backoff) after a lost connection instead of ending\n"
"  --drain-timeout S        after the last publish, wait up to S s for answers (default 30)\n"
"  --keepalive S            MQTT keepalive (default 60)\n"
"  --quiet                  no progress line\n"
"  --help                   this text\n"
"\n"
"Every second a progress line goes to stderr: sent, acked, rejected, answers/s.\n"
"The final line on stdout is exactly:\n"
"  loadgen: sent=N acked=N rejected=N failed=N elapsed=S rate=R/s p50_ms=X p99_ms=Y\n"
"acked = PUBACK/PUBCOMP reason < 0x80 (QoS 0: written to the socket); rejected = reason >= 0x80\n"
"(kitgate answers 0x87 to an invalid measurement); failed = sent but never answered; elapsed =\n"
"first publish .. last answer; rate = (acked + rejected) / elapsed; p50/p99 = publish -> answer\n"
"latency. SIGINT/SIGTERM stop publishing and drain (twice: quit at once).\n"
"\n"
"Exit status: 0 every message was answered (acked or rejected); 1 bad usage or a client could\n"
"not connect (refused, wrong password, no broker); 2 a connection broke during the run;\n"
"3 answers still missing at the drain timeout.\n");
}

static void progress(void *ud, const struct kg_pe_counts *c)
{
	uint64_t *last = ud;
	uint64_t answered = c->acked + c->rejected;

	fprintf(stderr, "loadgen: [%.0fs] sent=%" PRIu64 " acked=%" PRIu64 " rejected=%" PRIu64 " rate=%" PRIu64 "/s\n",
			c->elapsed_s, c->sent, c->acked, c->rejected, answered - *last);
	*last = answered;
}

static int parse_num(const char *name, const char *s, double min, double max, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if(errno || end == s || *end || v < min || v > max){
		fprintf(stderr, "kitgate-loadgen: bad value \"%s\" for --%s\n", s, name);
		return -1;
	}
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	enum { O_KITS = 256, O_START, O_MESSAGES, O_DURATION, O_RATE, O_QOS, O_WINDOW, O_V311, O_INVALID,
		O_AGGREGATE, O_PASSWORD, O_ACKED, O_QUIET, O_RECONNECT, O_DRAIN, O_KEEPALIVE, O_HELP };
	static const struct option lopts[] = {
		{"host", required_argument, NULL, 'h'}, {"port", required_argument, NULL, 'p'},
		{"kits", required_argument, NULL, O_KITS}, {"start-kit", required_argument, NULL, O_START},
		{"messages", required_argument, NULL, O_MESSAGES}, {"duration", required_argument, NULL, O_DURATION},
		{"rate", required_argument, NULL, O_RATE}, {"qos", required_argument, NULL, O_QOS},
		{"window", required_argument, NULL, O_WINDOW}, {"v311", no_argument, NULL, O_V311},
		{"invalid-every", required_argument, NULL, O_INVALID},
		{"aggregate-every", required_argument, NULL, O_AGGREGATE},
		{"password", required_argument, NULL, O_PASSWORD}, {"acked-log", required_argument, NULL, O_ACKED},
		{"quiet", no_argument, NULL, O_QUIET}, {"reconnect", no_argument, NULL, O_RECONNECT},
		{"drain-timeout", required_argument, NULL, O_DRAIN}, {"keepalive", required_argument, NULL, O_KEEPALIVE},
		{"help", no_argument, NULL, O_HELP}, {NULL, 0, NULL, 0},
	};
	struct kg_pe_opts o;
	struct kg_pe_result res;
	struct sigaction sa;
	uint64_t last = 0;
	double v, p50, p99;
	int ch, quiet = 0, rc;

	kg_pe__defaults(&o);
	while((ch = getopt_long(argc, argv, "h:p:", lopts, NULL)) != -1){
		v = 0;
		switch(ch){
		case 'h': o.host = optarg; break;
		case 'p': if(parse_num("port", optarg, 1, 65535, &v)) return 1; o.port = (int)v; break;
		case O_KITS: if(parse_num("kits", optarg, 1, 9999, &v)) return 1; o.nkits = (int)v; break;
		case O_START: if(parse_num("start-kit", optarg, 1, 9999, &v)) return 1; o.start_kit = (int)v; break;
		case O_MESSAGES: if(parse_num("messages", optarg, 1, 1e15, &v)) return 1; o.messages = (uint64_t)v; break;
		case O_DURATION: if(parse_num("duration", optarg, 0.001, 1e9, &v)) return 1; o.duration_s = v; break;
		case O_RATE: if(parse_num("rate", optarg, 0, 1e9, &v)) return 1; o.rate = v; break;
		case O_QOS: if(parse_num("qos", optarg, 0, 2, &v)) return 1; o.qos = (int)v; break;
		case O_WINDOW: if(parse_num("window", optarg, 1, 30000, &v)) return 1; o.window = (int)v; break;
		case O_V311: o.v311 = 1; break;
		case O_INVALID: if(parse_num("invalid-every", optarg, 0, 1e9, &v)) return 1; o.invalid_every = (int)v; break;
		case O_AGGREGATE: if(parse_num("aggregate-every", optarg, 0, 1e9, &v)) return 1; o.aggregate_every = (int)v; break;
		case O_PASSWORD: o.password = optarg; break;
		case O_ACKED: o.acked_log = optarg; break;
		case O_QUIET: quiet = 1; break;
		case O_RECONNECT: o.reconnect = 1; break;
		case O_DRAIN: if(parse_num("drain-timeout", optarg, 0, 1e6, &v)) return 1; o.drain_timeout_s = v; break;
		case O_KEEPALIVE: if(parse_num("keepalive", optarg, 5, 65535, &v)) return 1; o.keepalive = (int)v; break;
		case O_HELP: usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if(optind < argc){
		fprintf(stderr, "kitgate-loadgen: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return 1;
	}
	if(o.messages == 0 && o.duration_s <= 0) o.messages = 10000;
	if(o.start_kit + o.nkits - 1 > 9999){
		fprintf(stderr, "kitgate-loadgen: --start-kit + --kits - 1 must be <= 9999\n");
		return 1;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	o.stop = &g_stop;
	if(!quiet){
		o.progress = progress;
		o.progress_ud = &last;
	}

	mosquitto_lib_init();
	rc = kg_pe__run(&o, &res);
	if(rc != 0 && res.c.sent == 0){
		fprintf(stderr, "kitgate-loadgen: %s\n", res.error);
		kg_pe__result_free(&res);
		mosquitto_lib_cleanup();
		return 1;
	}
	if(res.error[0]) fprintf(stderr, "kitgate-loadgen: %s\n", res.error);
	p50 = kg_pe__percentile_ms(res.lat_us, res.nlat, 50);
	p99 = kg_pe__percentile_ms(res.lat_us, res.nlat, 99);
	printf("loadgen: sent=%" PRIu64 " acked=%" PRIu64 " rejected=%" PRIu64 " failed=%" PRIu64
			" elapsed=%.3f rate=%.0f/s p50_ms=%.3f p99_ms=%.3f\n",
			res.c.sent, res.c.acked, res.c.rejected, res.c.failed, res.c.elapsed_s,
			res.c.elapsed_s > 0 ? (double)(res.c.acked + res.c.rejected) / res.c.elapsed_s : 0.0, p50, p99);
	fflush(stdout);
	if(res.c.failed == 0 && (!res.connection_broke || o.reconnect)) rc = 0;
	else if(res.connection_broke) rc = 2;
	else rc = 3;
	kg_pe__result_free(&res);
	mosquitto_lib_cleanup();
	return rc;
}
