/* bench_main.c -- kitgate-bench: bare mosquitto vs mosquitto + kitgate (sink none/postgres/kafka):
 * throughput, latency, broker CPU and memory, and the sinks on their own (see --help). Options,
 * set-up and the order of the runs; the rest is in bench_harness.c, bench_runs.c, bench_report.c. */
#include "bench.h"

volatile sig_atomic_t g_interrupted;
struct bench *g_bench;

/* ------------------------------------------------------------------ main */

static void usage(FILE *f)
{
	fprintf(f,
"usage: kitgate-bench [options]\n"
"\n"
"Starts its own mosquitto brokers (temporary configs, free 127.0.0.1 ports) and measures, as\n"
"medians over --repeat runs:\n"
"  1. throughput: --kits clients publish --messages valid raw measurements at QoS 1 with --window\n"
"     messages in flight each; accepted (PUBACKed) msg/s for bare mosquitto and for mosquitto +\n"
"     kitgate with sink none / postgres / kafka (mock), each as a ratio to bare; the rate at which\n"
"     the sink settled them (last committed row or Kafka high watermark); broker CPU per message\n"
"     (/proc utime+stime of the process and of the broker thread); peak RSS (VmHWM); the plugin's\n"
"     own broker_thread_ns_per_msg from $SYS/broker/kitgate/status;\n"
"  2. latency at a fixed --rate for --latency-duration s: publish -> PUBACK p50/p99, publish ->\n"
"     committed row (pg_xact_commit_timestamp when track_commit_timestamp is on, else ingested_at)\n"
"     and publish -> consumed from the Kafka mock (an upper bound of delivery-report latency);\n"
"  3. the sinks alone: kg_pg__write rows/s and kg_kafka__produce msg/s at batch 1, 100, 1000.\n"
"Prints markdown tables and which goals were met.\n"
"\n"
"  --plugin PATH           mosquitto_kitgate.so (default ./build/plugin/mosquitto_kitgate.so)\n"
"  --mosquitto PATH        broker binary (default /usr/sbin/mosquitto)\n"
"  --mosquitto-passwd PATH (default mosquitto_passwd from PATH)\n"
"  --database-url URL      libpq URI of a SCRATCH database with schema/astroplant.sql and\n"
"                          schema/seed-test.sql (nkits >= --kits). The bench TRUNCATEs the\n"
"                          measurement tables and adds raw_measurements.ingested_at. Without it\n"
"                          the postgres configuration is skipped.\n"
"  --kafka-mock PATH       tools/kafka-mock (default: kafka-mock next to this program);\n"
"                          --no-kafka skips the kafka configuration\n"
"  --configs LIST          comma-separated subset of bare,none,postgres,kafka (default all)\n"
"  --no-sink-alone         skip part 3\n"
"  --kits N                kit clients (default 10)\n"
"  --window W              in-flight messages per kit (default 100)\n"
"  --messages N            messages per throughput run (default 100000)\n"
"  --repeat R              runs per measurement; medians are reported (default 3)\n"
"  --rate R                msg/s of the latency runs (default 5000)\n"
"  --latency-duration S    seconds per latency run (default 5)\n"
"  --sink-seconds S        seconds per sink-alone point (default 2)\n"
"  --broker-opt LINE       extra line for the plugin configurations, e.g.\n"
"                          \"plugin_opt_batch_size 500\" (repeatable)\n"
"  --keep                  keep the temporary directory (configs, logs)\n"
"  --verbose               print every status JSON\n"
"  --help                  this text\n"
"Exit status: 0 when every run happened (goals missed are reported, not an error), 1 otherwise.\n");
}

static void on_signal(int sig)
{
	(void)sig;
	g_interrupted = 1;
}

static int parse_configs(struct opts *o, const char *s)
{
	char buf[128], *tok, *save = NULL;
	int i, found;

	memset(o->enabled, 0, sizeof(o->enabled));
	snprintf(buf, sizeof(buf), "%s", s);
	for(tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)){
		found = 0;
		for(i = 0; i < C_N; i++){
			if(!strcmp(tok, cfg_name[i])){
				o->enabled[i] = 1;
				found = 1;
			}
		}
		if(!found){
			fprintf(stderr, "kitgate-bench: unknown configuration \"%s\"\n", tok);
			return -1;
		}
	}
	return 0;
}

static int make_passwd(struct bench *b)
{
	char plain[300];
	FILE *f;
	int i;
	char *argv[] = {(char *)b->o.mosquitto_passwd, "-U", b->passwd, NULL};

	snprintf(b->passwd, sizeof(b->passwd), "%s/passwd", b->tmp);
	snprintf(plain, sizeof(plain), "%s", b->passwd);
	f = fopen(plain, "w");
	if(!f) return -1;
	fprintf(f, "server:pw\n");
	for(i = 1; i <= b->o.kits; i++) fprintf(f, "k-test-%04d:pw\n", i);
	fclose(f);
	if(bench_run_cmd(argv) != 0){
		fprintf(stderr, "bench: %s -U %s failed\n", b->o.mosquitto_passwd, b->passwd);
		return -1;
	}
	chmod(b->passwd, 0644);
	return 0;
}

int main(int argc, char **argv)
{
	enum { O_PLUGIN = 256, O_MOSQ, O_MPASSWD, O_DB, O_KMOCK, O_NOKAFKA, O_CONFIGS, O_NOALONE, O_KITS,
		O_WINDOW, O_MESSAGES, O_REPEAT, O_RATE, O_LATDUR, O_SINKSEC, O_BOPT, O_KEEP, O_VERBOSE, O_HELP };
	static const struct option lopts[] = {
		{"plugin", required_argument, NULL, O_PLUGIN}, {"mosquitto", required_argument, NULL, O_MOSQ},
		{"mosquitto-passwd", required_argument, NULL, O_MPASSWD},
		{"database-url", required_argument, NULL, O_DB}, {"kafka-mock", required_argument, NULL, O_KMOCK},
		{"no-kafka", no_argument, NULL, O_NOKAFKA}, {"configs", required_argument, NULL, O_CONFIGS},
		{"no-sink-alone", no_argument, NULL, O_NOALONE}, {"kits", required_argument, NULL, O_KITS},
		{"window", required_argument, NULL, O_WINDOW}, {"messages", required_argument, NULL, O_MESSAGES},
		{"repeat", required_argument, NULL, O_REPEAT}, {"rate", required_argument, NULL, O_RATE},
		{"latency-duration", required_argument, NULL, O_LATDUR},
		{"sink-seconds", required_argument, NULL, O_SINKSEC},
		{"broker-opt", required_argument, NULL, O_BOPT}, {"keep", no_argument, NULL, O_KEEP},
		{"verbose", no_argument, NULL, O_VERBOSE}, {"help", no_argument, NULL, O_HELP},
		{NULL, 0, NULL, 0},
	};
	static struct bench bench;
	struct bench *b = &bench;
	struct sigaction sa;
	char self[PATH_MAX], kmock[PATH_MAX + 16];
	int ch, cfg, r, i, ok = 1;
	ssize_t sl;

	g_bench = b;
	b->o.plugin = "./build/plugin/mosquitto_kitgate.so";
	b->o.mosquitto = "/usr/sbin/mosquitto";
	b->o.mosquitto_passwd = "mosquitto_passwd";
	b->o.kits = 10;
	b->o.window = 100;
	b->o.messages = 100000;
	b->o.repeat = 3;
	b->o.rate = 5000;
	b->o.lat_duration = 5;
	b->o.sink_seconds = 2;
	b->o.sink_alone = 1;
	for(i = 0; i < C_N; i++) b->o.enabled[i] = 1;
	sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if(sl > 0){
		self[sl] = '\0';
		*strrchr(self, '/') = '\0';
		snprintf(kmock, sizeof(kmock), "%s/kafka-mock", self);
		b->o.kafka_mock = kmock;
	}else{
		b->o.kafka_mock = "kafka-mock";
	}
	while((ch = getopt_long(argc, argv, "", lopts, NULL)) != -1){
		switch(ch){
		case O_PLUGIN: b->o.plugin = optarg; break;
		case O_MOSQ: b->o.mosquitto = optarg; break;
		case O_MPASSWD: b->o.mosquitto_passwd = optarg; break;
		case O_DB: b->o.database_url = optarg; break;
		case O_KMOCK: b->o.kafka_mock = optarg; break;
		case O_NOKAFKA: b->o.enabled[C_KAFKA] = 0; break;
		case O_CONFIGS: if(parse_configs(&b->o, optarg)) return 1; break;
		case O_NOALONE: b->o.sink_alone = 0; break;
		case O_KITS: b->o.kits = atoi(optarg); break;
		case O_WINDOW: b->o.window = atoi(optarg); break;
		case O_MESSAGES: b->o.messages = strtoull(optarg, NULL, 10); break;
		case O_REPEAT: b->o.repeat = atoi(optarg); break;
		case O_RATE: b->o.rate = strtod(optarg, NULL); break;
		case O_LATDUR: b->o.lat_duration = strtod(optarg, NULL); break;
		case O_SINKSEC: b->o.sink_seconds = strtod(optarg, NULL); break;
		case O_BOPT:
			if(b->o.nbroker_opts >= (int)(sizeof(b->o.broker_opts) / sizeof(b->o.broker_opts[0]))) return 1;
			b->o.broker_opts[b->o.nbroker_opts++] = optarg;
			break;
		case O_KEEP: b->o.keep = 1; break;
		case O_VERBOSE: b->o.verbose = 1; break;
		case O_HELP: usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if(optind < argc || b->o.kits < 1 || b->o.kits > 9999 || b->o.window < 1 || b->o.messages < 1
			|| b->o.repeat < 1 || b->o.repeat > MAXREP || b->o.rate <= 0 || b->o.lat_duration <= 0
			|| b->o.sink_seconds <= 0){
		usage(stderr);
		return 1;
	}
	b->nruns = b->o.repeat;
	if(!b->o.database_url && b->o.enabled[C_PG]){
		b->o.enabled[C_PG] = 0;
		bench_note(b, "no --database-url: sink postgres not measured");
	}
	if((b->o.enabled[C_NONE] || b->o.enabled[C_PG] || b->o.enabled[C_KAFKA]) && access(b->o.plugin, R_OK)){
		fprintf(stderr, "kitgate-bench: no plugin at %s (--plugin)\n", b->o.plugin);
		return 1;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	mosquitto_lib_init();

	snprintf(b->tmp, sizeof(b->tmp), "/tmp/kitgate-bench.XXXXXX");
	if(!mkdtemp(b->tmp)){
		perror("kitgate-bench: mkdtemp");
		return 1;
	}
	chmod(b->tmp, 0755);
	bench_loadavg(b->load_start, sizeof(b->load_start));
	if(make_passwd(b)) goto fail;
	if(b->o.database_url && bench_pg_setup(b)) goto fail;
	if(b->o.enabled[C_KAFKA]){
		if(bench_kafka_start(b) || bench_kafka_consumer(b)){
			bench_note(b, "kafka mock unavailable: sink kafka not measured");
			bench_kafka_stop(b);
			b->o.enabled[C_KAFKA] = 0;
		}else{
			fprintf(stderr, "bench: kafka mock at %s (%d partitions of topic raw)\n", b->bootstrap, b->kparts);
		}
	}

	/* 1. throughput; runs of the configurations interleaved so drift hits them alike */
	for(r = 0; r < b->nruns && !g_interrupted; r++){
		for(cfg = 0; cfg < C_N && !g_interrupted; cfg++){
			if(!b->o.enabled[cfg]) continue;
			if(bench_throughput_run(b, (enum cfgid)cfg, r)) ok = 0;
			else b->have_tp[cfg] = 1;
		}
	}
	/* 2. latency at a fixed rate */
	for(r = 0; r < b->nruns && !g_interrupted; r++){
		for(cfg = 0; cfg < C_N && !g_interrupted; cfg++){
			if(!b->o.enabled[cfg]) continue;
			if(bench_latency_run(b, (enum cfgid)cfg, r)) ok = 0;
			else b->have_lat[cfg] = 1;
		}
	}
	/* 3. sinks alone */
	if(b->o.sink_alone){
		for(r = 0; r < b->nruns && !g_interrupted; r++){
			for(i = 0; i < 3; i++){
				if(b->o.database_url){
					b->pg_alone[i][r] = bench_pg_alone_run(b, batch_sizes[i], b->o.sink_seconds);
					fprintf(stderr, "bench: postgres alone batch %d: %.0f rows/s\n", batch_sizes[i], b->pg_alone[i][r]);
					b->have_pg_alone = 1;
				}
				if(b->o.enabled[C_KAFKA]){
					b->kafka_alone[i][r] = bench_kafka_alone_run(b, batch_sizes[i], b->o.sink_seconds);
					fprintf(stderr, "bench: kafka alone batch %d: %.0f msg/s\n", batch_sizes[i], b->kafka_alone[i][r]);
					b->have_kafka_alone = 1;
				}
			}
		}
	}
	if(g_interrupted) bench_note(b, "interrupted: results are partial");
	bench_report(b);
	goto done;
fail:
	ok = 0;
done:
	bench_kafka_stop(b);
	if(b->pg) PQfinish(b->pg);
	if(!b->o.keep) bench_rm_rf(b->tmp);
	else fprintf(stderr, "bench: kept %s\n", b->tmp);
	mosquitto_lib_cleanup();
	return ok && !g_interrupted ? 0 : 1;
}
