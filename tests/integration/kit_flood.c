/* kit_flood.c -- test helper: one MQTT client (a service user) publishes one valid raw measurement
 * for each of N kit serials <prefix><index, 5 digits>, QoS 1, and waits for every PUBACK; so a test
 * can make the live view track tens of thousands of kits in seconds.
 *   kit_flood PORT USER PASSWORD PREFIX COUNT [FIRST] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>

static volatile int acked;

static void on_publish(struct mosquitto *m, void *obj, int mid)
{
	(void)m;
	(void)obj;
	(void)mid;
	acked++;
}

int main(int argc, char **argv)
{
	struct mosquitto *m;
	int count, first, i, waited = 0;
	struct timespec ts;
	char topic[200], payload[300];

	if(argc < 6){
		fprintf(stderr, "usage: kit_flood PORT USER PASSWORD PREFIX COUNT [FIRST]\n");
		return 2;
	}
	count = atoi(argv[5]);
	first = argc > 6 ? atoi(argv[6]) : 0;
	mosquitto_lib_init();
	m = mosquitto_new(NULL, true, NULL);
	if(!m) return 1;
	mosquitto_username_pw_set(m, argv[2], argv[3]);
	mosquitto_max_inflight_messages_set(m, 200);
	mosquitto_publish_callback_set(m, on_publish);
	if(mosquitto_connect(m, "127.0.0.1", atoi(argv[1]), 60) != MOSQ_ERR_SUCCESS){
		fprintf(stderr, "kit_flood: cannot connect\n");
		return 1;
	}
	mosquitto_loop_start(m);
	clock_gettime(CLOCK_REALTIME, &ts);
	for(i = 0; i < count; i++){
		int n = first + i;
		long long now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;

		snprintf(topic, sizeof(topic), "kit/%s%05d/measurement/raw", argv[4], n);
		snprintf(payload, sizeof(payload), "{\"id\":\"00000000-0000-4000-8000-%012x\",\"kitSerial\":\"\","
				"\"datetime\":%lld,\"peripheral\":1,\"quantityType\":1,\"value\":%d}", n, now, n);
		while(i - acked > 1000) usleep(1000); /* bound what waits in the client */
		mosquitto_publish(m, NULL, topic, (int)strlen(payload), payload, 1, false);
	}
	while(acked < count && waited < 60000){
		usleep(1000);
		waited++;
	}
	printf("acked %d of %d\n", acked, count);
	mosquitto_disconnect(m);
	mosquitto_loop_stop(m, false);
	mosquitto_destroy(m);
	mosquitto_lib_cleanup();
	return acked == count ? 0 : 1;
}
