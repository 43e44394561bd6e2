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
	enum kg_payload_format payload_format; /* default auto */
	/* authentication (SPEC "Authentication") */
	enum kg_auth_kind auth;       /* auth none|postgres, default none */
	int auth_refresh_s;           /* kits snapshot reload period, 1..86400, default 30 */
	int auth_cold_budget_ms;      /* ms of PBKDF2 per second for logins not in the login cache, 1..1000, default 250 */
	int auth_threads;             /* PBKDF2 worker threads for delayed logins (mosquitto 2.1), 1..256;
	                               * 0 = not set: the number of CPUs on 2.1 (an error on 2.0 when set) */
	/* per-kit rate limit (SPEC "Rate limit"): 0 = off (default) */
	int kit_rate_limit;           /* messages per second per kit, 1..1000000 */
	int kit_rate_burst;           /* bucket size, 1..1000000, default = kit_rate_limit */
};

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
