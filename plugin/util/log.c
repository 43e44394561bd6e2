/* log.c -- levelled logging with a pluggable sink (stderr by default). */
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>

#include "kitgate/log.h"

static kg_log_sink_fn log_sink = NULL;
static int log_min_level = KG_LOG_INFO;

void kg_log__configure(kg_log_sink_fn sink, int min_level)
{
	log_sink = sink;
	log_min_level = min_level;
}

void kg_log(int level, const char *fmt, ...)
{
	char line[1000];
	va_list ap;

	if(level < log_min_level) return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if(log_sink){
		log_sink(level, line);
	}else{
		fprintf(stderr, "kitgate %s: %s\n", kg_log__level_name(level), line);
	}
}

int kg_log__parse_level(const char *s)
{
	if(!s) return -1;
	if(!strcasecmp(s, "DEBUG")) return KG_LOG_DEBUG;
	if(!strcasecmp(s, "INFO")) return KG_LOG_INFO;
	if(!strcasecmp(s, "WARNING") || !strcasecmp(s, "WARN")) return KG_LOG_WARNING;
	if(!strcasecmp(s, "ERROR")) return KG_LOG_ERROR;
	return -1;
}

const char *kg_log__level_name(int level)
{
	switch(level){
		case KG_LOG_DEBUG: return "DEBUG";
		case KG_LOG_INFO: return "INFO";
		case KG_LOG_WARNING: return "WARNING";
		default: return "ERROR";
	}
}
