/* outbox.c -- the plugin's log sink: broker-thread lines go straight to mosquitto's log, lines from
 * any other thread wait in a bounded, locked outbox drained by MOSQ_EVT_TICK on the broker thread
 * (mosquitto_log_printf is not thread-safe in 2.0.11). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "broker_api.h"

#include "kitgate/log.h"
#include "kitgate_internal.h"


#define OUTBOX_MAX 1024          /* lines held; beyond this new lines are counted and dropped */
#define OUTBOX_DRAIN_PER_TICK 64

struct outbox_line {
	int level;
	char text[1000];
};

static pthread_mutex_t outbox_lock = PTHREAD_MUTEX_INITIALIZER;
static struct outbox_line *outbox_ring;   /* OUTBOX_MAX slots */
static size_t outbox_head, outbox_count;
static unsigned long outbox_dropped;
static pthread_t outbox_main;
static int outbox_ready;

static int mosq_level(int level)
{
	switch(level){
		case KG_LOG_DEBUG: return MOSQ_LOG_DEBUG;
		case KG_LOG_INFO: return MOSQ_LOG_INFO;
		case KG_LOG_WARNING: return MOSQ_LOG_WARNING;
		default: return MOSQ_LOG_ERR;
	}
}

static void outbox_sink(int level, const char *line)
{
	if(!outbox_ready || pthread_equal(pthread_self(), outbox_main)){
		mosquitto_log_printf(mosq_level(level), "kitgate: %s", line);
		return;
	}
	pthread_mutex_lock(&outbox_lock);
	if(outbox_count < OUTBOX_MAX){
		struct outbox_line *l = &outbox_ring[(outbox_head + outbox_count) % OUTBOX_MAX];
		l->level = level;
		strncpy(l->text, line, sizeof(l->text) - 1);
		l->text[sizeof(l->text) - 1] = '\0';
		outbox_count++;
	}else{
		outbox_dropped++;
	}
	pthread_mutex_unlock(&outbox_lock);
}

int kg_outbox__init(int min_level)
{
	outbox_ring = calloc(OUTBOX_MAX, sizeof(*outbox_ring));
	if(!outbox_ring) return -1;
	outbox_main = pthread_self();
	outbox_head = outbox_count = 0;
	outbox_dropped = 0;
	outbox_ready = 1;
	kg_log__configure(outbox_sink, min_level);
	return 0;
}

void kg_outbox__drain(int all)
{
	struct outbox_line line;
	unsigned long dropped;
	int n = 0;

	if(!outbox_ready) return;
	for(;;){
		pthread_mutex_lock(&outbox_lock);
		if(outbox_count == 0 || (!all && n >= OUTBOX_DRAIN_PER_TICK)){
			dropped = outbox_dropped;
			outbox_dropped = 0;
			pthread_mutex_unlock(&outbox_lock);
			break;
		}
		line = outbox_ring[outbox_head];
		outbox_head = (outbox_head + 1) % OUTBOX_MAX;
		outbox_count--;
		pthread_mutex_unlock(&outbox_lock);
		mosquitto_log_printf(mosq_level(line.level), "kitgate: %s", line.text);
		n++;
	}
	if(dropped){
		mosquitto_log_printf(MOSQ_LOG_WARNING, "kitgate: %lu log lines from the worker were dropped "
				"(outbox full)", dropped);
	}
}

void kg_outbox__cleanup(void)
{
	kg_outbox__drain(1);
	kg_log__configure(NULL, KG_LOG_INFO);
	outbox_ready = 0;
	free(outbox_ring);
	outbox_ring = NULL;
}
