/* config.h -- plugin and tool configuration: plugin_opt_* keys, environment fallbacks, defaults. */
#ifndef KITGATE_CONFIG_H
#define KITGATE_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include "kitgate/access.h"

/* Same layout as mosquitto's struct mosquitto_opt, so the plugin can pass its array as is. */
struct kg_opt {
	char *key;
	char *value;
};

enum kg_sink_kind { KG_SINK_POSTGRES = 0, KG_SINK_KAFKA, KG_SINK_NONE };
enum kg_auth_kind { KG_AUTH_NONE = 0, KG_AUTH_POSTGRES };

/* payload_format: auto (first non-space byte '{' is JSON, anything else Cap'n Proto), json, capnp. */
enum kg_payload_format { KG_PAYLOAD_AUTO = 0, KG_PAYLOAD_JSON, KG_PAYLOAD_CAPNP };

/* bridge_sparkplug: Sparkplug B payloads on spBv1.0/ bridge routes decoded to JSON, or raw. */
enum kg_sparkplug_mode { KG_SPARKPLUG_DECODE = 0, KG_SPARKPLUG_RAW };

struct kg_kv {
	char *key;
	char *value;
};

/* ignored_attributes <filter>=<path>[,<path>...] : one entry per line. */
struct kg_ignore_rule {
	char *filter;
	char **paths;   /* dot paths, e.g. "meta.debug" */
	size_t npaths;
};

struct kg_config {
	enum kg_sink_kind sink;
	char *database_url;           /* already normalised to a libpq URI */
	char *kafka_brokers;
	char *kafka_username, *kafka_password; /* NULL when unset */
	struct kg_kv *kafka_props;    /* kafka.<property> options, in order */
	size_t nkafka_props;
	char *kafka_topic_raw, *kafka_topic_aggregate;
	char **service_users;
	size_t nservice_users;
	enum kg_other_topics other_topics;
	size_t queue_limit;
	int batch_size;
	int batch_ms;
	int pg_connections;           /* independent PostgreSQL writer connections, default 2 */
	char *spool_dir;
	size_t max_payload;
	int64_t max_clock_skew_s;
	int log_level;                /* enum kg_log_level */
	/* bridge routes */
	char **bridge_topics;
	size_t nbridge_topics;
	char *kafka_topic_separator;
	struct kg_ignore_rule *ignored;
	size_t nignored;
	char *timestamp_attribute;
	enum kg_sparkplug_mode bridge_sparkplug;
	/* durability */
	uint64_t spool_segment_bytes; /* spool_segment_mb, default 64 MiB */
	int shutdown_timeout_ms;      /* drain deadline at cleanup, default 5000 */
	int stats_interval_s;         /* $SYS status publishing period, default 10 */
	/* live view: rolling statistics and the HTTP endpoint (stats.h, http.h) */
	char **stats_topics;          /* "<filter>" or "<filter>=<stats topic>", checked */
	size_t nstats_topics;
	char *stats_field;            /* JSON number field of generic stats topics, default "value" */
	size_t stats_max_streams;     /* default 10000 */
	size_t stats_max_samples;     /* per stream, default 1024 */
	size_t stats_max_streams_per_kit; /* default 64; past it the kit's own oldest stream is evicted */
	char *http_listen;            /* "<address>:<port>"; NULL = off (default) */
	char *http_password_file;     /* mosquitto_passwd file; NULL = no authentication */
	char *http_allowed_hosts;     /* comma-separated extra Host names the endpoint answers ("*" = any); NULL = none */
	size_t live_max_kits;         /* kits the live view tracks, default 100000; offline ones evicted past it */
	enum kg_payload_format payload_format; /* default auto */
	/* authentication (SPEC "Authentication") */
	enum kg_auth_kind auth;       /* auth none|postgres, default none */
	int auth_refresh_s;           /* kits snapshot reload period, 1..86400, default 30 */
	int auth_cold_budget_ms;      /* ms of PBKDF2 per second for logins not in the login cache, 1..1000, default 250 */
	int auth_max_iterations;      /* kits whose hash needs more PBKDF2 iterations are refused unchecked,
	                               * 1..KG_PBKDF2_MAX_ITER, default KG_AUTH_MAX_ITERATIONS_DEFAULT */
	int auth_threads;             /* PBKDF2 worker threads for delayed logins (mosquitto 2.1), 1..256;
	                               * 0 = not set: the number of CPUs on 2.1 (an error on 2.0 when set) */
	/* per-kit rate limit (SPEC "Rate limit"): 0 = off (default) */
	int kit_rate_limit;           /* messages per second per kit, 1..1000000 */
	int kit_rate_burst;           /* bucket size, 1..1000000, default = kit_rate_limit */
};

/* ---- The option table ---------------------------------------------------------------------
 * Every option is ONE row of kg_config__options() (plugin/config/config.c, table `options`):
 * name, type, environment fallback, default, range or enum values, where it is stored, help.
 * kg_config__parse resolves every row the same way: the option's value (last one given wins),
 * else the environment variable, else the default, then checks it against the row and stores it.
 * docs/configuration.md is printed from the same table (tools/kitgate-options.c; the ctest
 * `config_reference` fails when the committed file differs).
 *
 * To add an option:
 *   1. add its field to struct kg_config below (int, size_t, int64_t, uint64_t, an enum, char *);
 *   2. add one row to `options` in config.c, e.g.
 *        INT("auth_threads", auth_threads, "2", 1, 64, "PBKDF2 worker threads (2.1 only)"),
 *        ENUM("mode", mode, "fast", mode_values, "what it does"),
 *        STR("some_file", some_file, NULL, "a path; unset when not given"),
 *      (a char * field is freed by kg_config__free through the table; list/repeatable options
 *      need a hook, see service_users and bridge_topics);
 *   3. regenerate the docs: `build/tools/kitgate-options > docs/configuration.md`.
 * Rows are resolved in table order: with several bad values, the first row's error is reported. */
enum kg_opt_type {
	KG_OPT_STRING = 0, /* char *: malloc'd copy; an empty value is refused */
	KG_OPT_INT,        /* integer field of `size` bytes, [min, max], times `scale` when non-zero */
	KG_OPT_ENUM,       /* int-sized enum field: one of `values` (case-insensitive) */
	KG_OPT_LIST,       /* comma-separated list, resolved by `hook` */
	KG_OPT_REPEAT,     /* repeatable: every line is handed to `hook` as it is read */
	KG_OPT_PREFIX,     /* `name` is a prefix (kafka.): every line handed to `hook` */
	KG_OPT_CUSTOM,     /* one value resolved by `hook` (its own check or conversion) */
};

/* An enum option's accepted word and the value it stores; alias words are accepted but not
 * listed in errors or docs. The array ends with a {NULL} row. */
struct kg_opt_enum {
	const char *name;
	int value;
	int alias;
};

/* A resolved value: the text (NULL = no value and no default), and where it came from. */
struct kg_opt_val {
	const char *value;
	const char *env;    /* the environment variable it was read from, or NULL */
	int is_default;     /* 1 when value is the row's default */
};

struct kg_config;
struct kg_option;
/* A row's hook: resolves v (or, for REPEAT/PREFIX, one line; key is the text after a PREFIX)
 * into cfg. 0, or -1 with one line in err. */
typedef int (*kg_opt_hook)(struct kg_config *cfg, const struct kg_option *o, const char *key,
		const struct kg_opt_val *v, char *err, size_t errlen);

#define KG_OPT_OFF      1u  /* STRING: the word "off" (any case) means unset */
#define KG_OPT_HOOK_ENV 2u  /* the hook reads the environment itself; `env` only documents it */

struct kg_option {
	const char *name;
	enum kg_opt_type type;
	const char *env;            /* environment fallback (docs: as written), or NULL */
	const char *def;            /* the default as the option's text, or NULL (unset) */
	long long min, max;         /* INT: accepted range (max LLONG_MAX = no upper bound) */
	long long scale;            /* INT: stored value = given * scale (0 = 1) */
	const struct kg_opt_enum *values; /* ENUM */
	size_t offset, size;        /* the field in struct kg_config: offsetof, sizeof */
	unsigned flags;             /* KG_OPT_* */
	kg_opt_hook hook;           /* LIST, REPEAT, PREFIX, CUSTOM; STRING: optional extra check */
	const char *expected;       /* STRING with a hook: the "expected ..." text of its error */
	const char *def_doc;        /* docs: the default's description when def alone misleads, or NULL */
	const char *help;           /* docs: one paragraph, markdown */
};

/* The option table, in resolution order; *n receives its length. Immutable, any thread. */
const struct kg_option *kg_config__options(size_t *n);

/* Fill cfg from opts (may be NULL/0), then the environment, then defaults. Unknown keys are an
 * error (a typo must not silently change behaviour). On error returns -1 and writes one line
 * naming the option and the problem into err; cfg is left freed. Main thread (reads getenv). */
int kg_config__parse(struct kg_config *cfg, const struct kg_opt *opts, int nopts, char *err, size_t errlen);
void kg_config__free(struct kg_config *cfg);

/* Accepts postgresql://, postgres://, and SQLAlchemy forms (postgresql+psycopg2://, postgres+x://).
 * Returns a malloc'd libpq URI, or NULL on a form it cannot read. */
char *kg_config__normalize_db_url(const char *url);

/* "postgres", "kafka" or "none": the sink's name in logs, status JSON and metrics. */
const char *kg_config__sink_name(enum kg_sink_kind k);

/* true if username is one of cfg->service_users. */
int kg_config__is_service(const struct kg_config *cfg, const char *username);

#endif
