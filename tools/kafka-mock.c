/* kafka-mock.c -- an in-process librdkafka mock Kafka cluster for tests, controlled over stdin. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static void usage(FILE *out)
{
	fprintf(out,
		"usage: kafka-mock [--brokers N] [--partitions P] [--topics t1,t2,...]\n"
		"Starts a librdkafka mock cluster (N brokers, default 3; ids 1..N) and prints one line\n"
		"  bootstrap=<host:port,...>\n"
		"on stdout. Topics (default raw,aggregate) are created with P partitions (default 4);\n"
		"others are auto-created on first use. Then reads commands from stdin, one per line:\n"
		"  down all|<id>   disconnect broker(s) and refuse connections\n"
		"  up all|<id>     accept connections again\n"
		"  quit            exit\n"
		"Each command is answered with \"ok <command>\" (or \"error <command>: <why>\").\n"
		"Exits on quit, end of input, SIGTERM or SIGINT.\n");
}

/* Parse "all" (-1) or a broker id 1..nbrokers. 0 or -1. */
static int parse_broker(const char *s, int nbrokers, int32_t *id)
{
	char *end;
	long v;

	if(!strcmp(s, "all")){
		*id = -1;
		return 0;
	}
	errno = 0;
	v = strtol(s, &end, 10);
	if(errno || end == s || *end || v < 1 || v > nbrokers) return -1;
	*id = (int32_t)v;
	return 0;
}

/* Execute one command line; prints the answer. Returns 1 on quit, else 0. */
static int run_command(rd_kafka_mock_cluster_t *mc, int nbrokers, char *line)
{
	char verb[16], arg[32];
	int32_t id;
	rd_kafka_resp_err_t rc;
	int n;

	line[strcspn(line, "\r")] = '\0';
	n = sscanf(line, "%15s %31s", verb, arg);
	if(n <= 0) return 0; /* blank line */
	if(!strcmp(verb, "quit")){
		printf("ok %s\n", line);
		fflush(stdout);
		return 1;
	}
	if(n != 2 || (strcmp(verb, "down") && strcmp(verb, "up"))){
		printf("error %s: unknown command\n", line);
		fflush(stdout);
		return 0;
	}
	if(parse_broker(arg, nbrokers, &id)){
		printf("error %s: broker is \"all\" or 1..%d\n", line, nbrokers);
		fflush(stdout);
		return 0;
	}
	if(!strcmp(verb, "down")){
		rc = rd_kafka_mock_broker_set_down(mc, id);
	}else{
		rc = rd_kafka_mock_broker_set_up(mc, id);
	}
	if(rc){
		printf("error %s: %s\n", line, rd_kafka_err2str(rc));
	}else{
		printf("ok %s\n", line);
	}
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"brokers", required_argument, NULL, 'b'},
		{"partitions", required_argument, NULL, 'p'},
		{"topics", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int nbrokers = 3, npartitions = 4, c;
	const char *topics = "raw,aggregate";
	char errstr[512];
	rd_kafka_conf_t *conf;
	rd_kafka_t *rk;
	rd_kafka_mock_cluster_t *mc;
	sigset_t all, stopset;
	int sfd, quit = 0;
	char buf[4096];
	size_t used = 0;

	while((c = getopt_long(argc, argv, "b:p:t:h", longopts, NULL)) != -1){
		switch(c){
		case 'b':
			nbrokers = atoi(optarg);
			break;
		case 'p':
			npartitions = atoi(optarg);
			break;
		case 't':
			topics = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if(optind != argc || nbrokers < 1 || nbrokers > 100 || npartitions < 1 || npartitions > 1000){
		usage(stderr);
		return 2;
	}

	/* Every thread librdkafka starts inherits this mask; the main thread takes SIGTERM/SIGINT
	 * through a signalfd. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, NULL);
	sigemptyset(&stopset);
	sigaddset(&stopset, SIGTERM);
	sigaddset(&stopset, SIGINT);
	sfd = signalfd(-1, &stopset, SFD_CLOEXEC);
	if(sfd < 0){
		perror("kafka-mock: signalfd");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);

	conf = rd_kafka_conf_new();
	/* The handle only anchors the cluster; keep it from trying to connect anywhere. */
	if(rd_kafka_conf_set(conf, "bootstrap.servers", "", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK
			|| rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK){
		fprintf(stderr, "kafka-mock: %s\n", errstr);
		return 1;
	}
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if(!rk){
		fprintf(stderr, "kafka-mock: rd_kafka_new: %s\n", errstr);
		return 1;
	}
	mc = rd_kafka_mock_cluster_new(rk, nbrokers);
	if(!mc){
		fprintf(stderr, "kafka-mock: cannot create mock cluster\n");
		rd_kafka_destroy(rk);
		return 1;
	}
	{
		char *list = strdup(topics);
		char *save = NULL, *t;
		int rf = nbrokers < 3 ? nbrokers : 3;

		if(!list){
			fprintf(stderr, "kafka-mock: out of memory\n");
			return 1;
		}
		for(t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)){
			rd_kafka_resp_err_t rc;

			if(!*t) continue;
			rc = rd_kafka_mock_topic_create(mc, t, npartitions, rf);
			if(rc){
				fprintf(stderr, "kafka-mock: topic %s: %s\n", t, rd_kafka_err2str(rc));
				free(list);
				rd_kafka_mock_cluster_destroy(mc);
				rd_kafka_destroy(rk);
				return 1;
			}
		}
		free(list);
	}
	printf("bootstrap=%s\n", rd_kafka_mock_cluster_bootstraps(mc));
	fflush(stdout);

	while(!quit){
		struct pollfd pfd[2] = {
			{.fd = STDIN_FILENO, .events = POLLIN},
			{.fd = sfd, .events = POLLIN},
		};
		ssize_t r;
		char *nl;

		if(poll(pfd, 2, -1) < 0){
			if(errno == EINTR) continue;
			perror("kafka-mock: poll");
			break;
		}
		if(pfd[1].revents) break; /* SIGTERM/SIGINT */
		if(!pfd[0].revents) continue;
		r = read(STDIN_FILENO, buf + used, sizeof(buf) - 1 - used);
		if(r < 0 && errno == EINTR) continue;
		if(r <= 0) break; /* EOF or error */
		used += (size_t)r;
		buf[used] = '\0';
		while(!quit && (nl = strchr(buf, '\n')) != NULL){
			*nl = '\0';
			quit = run_command(mc, nbrokers, buf);
			used -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, used + 1);
		}
		if(used == sizeof(buf) - 1) used = 0; /* absurdly long line: drop it */
	}

	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(rk);
	close(sfd);
	return 0;
}
