/* log.h -- levelled logging shared by the plugin and the tools; the sink decides where lines go. */
#ifndef KITGATE_LOG_H
#define KITGATE_LOG_H


enum kg_log_level {
	KG_LOG_DEBUG = 0,
	KG_LOG_INFO = 1,
	KG_LOG_WARNING = 2,
	KG_LOG_ERROR = 3,
};

/* Receives one formatted line (no trailing newline). Called on whatever thread logged:
 * the plugin's sink routes worker-thread lines through the outbox (see plugin/broker/outbox.c). */
typedef void (*kg_log_sink_fn)(int level, const char *line);

/* Install the sink and the minimum level. Not thread-safe: call once at start-up, before any
 * other thread exists. A NULL sink writes "kitgate <LEVEL>: line" to stderr. */
void kg_log__configure(kg_log_sink_fn sink, int min_level);

/* Format and emit a line if level >= the configured minimum. Any thread. Lines are cut at
 * 1000 bytes. */
void kg_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "DEBUG"/"INFO"/"WARNING"/"ERROR" (case-insensitive, also "WARN") -> level; -1 if unknown. */
int kg_log__parse_level(const char *s);
const char *kg_log__level_name(int level);

#endif
