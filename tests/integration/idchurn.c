/* idchurn.c -- helper for test_clientids.sh: one kit making many MQTT v5 CONNECT/DISCONNECT cycles
 * with fresh client ids (the client-id eviction attack of issue 19). Each cycle: connect with id
 * churn-<thread>-<n> (clean start), wait for the CONNACK, publish one QoS 0 message on the kit's own
 * topic (so the broker sees the login succeed), disconnect.
 *   idchurn PORT USER PASSWORD CYCLES THREADS
 * Prints "<cycles> cycles: <admitted> admitted, <refused> refused, <failed> failed"; exit 0 when
 * every cycle was admitted. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <mosquitto.h>

static int port, cycles, threads;
static const char *user, *pw;
static _Atomic long next, admitted, refused, failed;

static void on_connect(struct mosquitto *m, void *ud, int rc)
{
	(void)m;
	*(int *)ud = rc == 0 ? 1 : 2;
}

static void *churn(void *arg)
{
	char id[64], topic[128];
	long n;
	int t = (int)(intptr_t)arg, done, i;

	snprintf(topic, sizeof(topic), "kit/%s/churn", user);
	while((n = atomic_fetch_add(&next, 1)) < cycles){
		struct mosquitto *m;

		snprintf(id, sizeof(id), "churn-%d-%ld", t, n);
		done = 0;
		m = mosquitto_new(id, true, &done);
		if(!m){
			atomic_fetch_add(&failed, 1);
			continue;
		}
		mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
		mosquitto_username_pw_set(m, user, pw);
		mosquitto_connect_callback_set(m, on_connect);
		if(mosquitto_connect(m, "127.0.0.1", port, 60) == MOSQ_ERR_SUCCESS){
			for(i = 0; i < 100 && !done; i++){
				if(mosquitto_loop(m, 100, 1) != MOSQ_ERR_SUCCESS) break;
			}
		}
		if(done == 1){
			atomic_fetch_add(&admitted, 1);
			mosquitto_publish(m, NULL, topic, 1, "x", 0, false);
			mosquitto_loop(m, 0, 1);
			mosquitto_disconnect(m);
		}else if(done == 2){
			atomic_fetch_add(&refused, 1);
		}else{
			atomic_fetch_add(&failed, 1);
		}
		mosquitto_destroy(m);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t th[64];
	int i;

	if(argc != 6){
		fprintf(stderr, "usage: %s PORT USER PASSWORD CYCLES THREADS\n", argv[0]);
		return 2;
	}
	port = atoi(argv[1]);
	user = argv[2];
	pw = argv[3];
	cycles = atoi(argv[4]);
	threads = atoi(argv[5]);
	if(port <= 0 || cycles < 1 || threads < 1 || threads > 64) return 2;
	mosquitto_lib_init();
	for(i = 0; i < threads; i++) pthread_create(&th[i], NULL, churn, (void *)(intptr_t)i);
	for(i = 0; i < threads; i++) pthread_join(th[i], NULL);
	mosquitto_lib_cleanup();
	printf("%d cycles: %ld admitted, %ld refused, %ld failed\n", cycles, atomic_load(&admitted),
			atomic_load(&refused), atomic_load(&failed));
	return atomic_load(&admitted) == cycles ? 0 : 1;
}
