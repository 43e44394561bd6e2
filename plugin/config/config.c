/* config.c -- plugin_opt_* parsing with environment fallbacks and defaults (see config.h). */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kitgate/config.h"
#include "kitgate/log.h"
#include "kitgate/rdkconf.h"
#include "kitgate/access.h"

/* Every known option. The order of this enum is the order of opt_table. */
enum opt_id {
	O_SINK,
	O_DATABASE_URL,
	O_KAFKA_BROKERS,
	O_KAFKA_USERNAME,
	O_KAFKA_PASSWORD,
	O_KAFKA_TOPIC_RAW,
	O_KAFKA_TOPIC_AGGREGATE,
	O_SERVICE_USERS,
	O_OTHER_TOPICS,
	O_QUEUE_LIMIT,
	O_BATCH_SIZE,
	O_BATCH_MS,
	O_SPOOL_DIR,
	O_MAX_PAYLOAD,
	O_MAX_CLOCK_SKEW_S,
	O_LOG_LEVEL,
	O_BRIDGE_TOPICS,
	O_KAFKA_TOPIC_SEPARATOR,
	O_IGNORED_ATTRIBUTES,
	O_TIMESTAMP_ATTRIBUTE,
	O_SPOOL_SEGMENT_MB,
	O_SHUTDOWN_TIMEOUT_MS,
	O_STATS_INTERVAL_S,
	O_STATS_TOPICS,
	O_STATS_FIELD,
	O_STATS_MAX_STREAMS,
	O_STATS_MAX_SAMPLES,
	O_STATS_MAX_STREAMS_PER_KIT,
	O_HTTP_LISTEN,
	O_HTTP_PASSWORD_FILE,
	O_PG_CONNECTIONS,
	O_PAYLOAD_FORMAT,
	O_AUTH,
	O_AUTH_REFRESH_S,
	O_AUTH_COLD_BUDGET_MS,
	O_BRIDGE_SPARKPLUG,
	O_AUTH_THREADS,
	O_KIT_RATE_LIMIT,
	O_COUNT
};

struct opt_def {
	const char *key;
	const char *env;     /* fallback environment variable, or NULL */
};

static const struct opt_def opt_table[O_COUNT] = {
	[O_SINK] = {"sink", "KITGATE_SINK"},
	[O_DATABASE_URL] = {"database_url", "DATABASE_URL"},
	[O_KAFKA_BROKERS] = {"kafka_brokers", NULL}, /* KAFKA_HOST/KAFKA_PORT: see brokers_from_env */
	[O_KAFKA_USERNAME] = {"kafka_username", "KAFKA_USERNAME"},
	[O_KAFKA_PASSWORD] = {"kafka_password", "KAFKA_PASSWORD"},
	[O_KAFKA_TOPIC_RAW] = {"kafka_topic_raw", NULL},
	[O_KAFKA_TOPIC_AGGREGATE] = {"kafka_topic_aggregate", NULL},
	[O_SERVICE_USERS] = {"service_users", NULL},
	[O_OTHER_TOPICS] = {"other_topics", NULL},
	[O_QUEUE_LIMIT] = {"queue_limit", NULL},
	[O_BATCH_SIZE] = {"batch_size", NULL},
	[O_BATCH_MS] = {"batch_ms", NULL},
	[O_SPOOL_DIR] = {"spool_dir", NULL},
	[O_MAX_PAYLOAD] = {"max_payload", NULL},
	[O_MAX_CLOCK_SKEW_S] = {"max_clock_skew_s", NULL},
	[O_LOG_LEVEL] = {"log_level", "LOG_LEVEL"},
	[O_BRIDGE_TOPICS] = {"bridge_topics", NULL},
	[O_KAFKA_TOPIC_SEPARATOR] = {"kafka_topic_separator", NULL},
	[O_IGNORED_ATTRIBUTES] = {"ignored_attributes", NULL},
	[O_TIMESTAMP_ATTRIBUTE] = {"timestamp_attribute", NULL},
	[O_SPOOL_SEGMENT_MB] = {"spool_segment_mb", NULL},
	[O_SHUTDOWN_TIMEOUT_MS] = {"shutdown_timeout_ms", NULL},
	[O_STATS_INTERVAL_S] = {"stats_interval_s", NULL},
	[O_STATS_TOPICS] = {"stats_topics", NULL},
	[O_STATS_FIELD] = {"stats_field", NULL},
	[O_STATS_MAX_STREAMS] = {"stats_max_streams", NULL},
	[O_STATS_MAX_SAMPLES] = {"stats_max_samples", NULL},
	[O_STATS_MAX_STREAMS_PER_KIT] = {"stats_max_streams_per_kit", NULL},
	[O_HTTP_LISTEN] = {"http_listen", NULL},
	[O_HTTP_PASSWORD_FILE] = {"http_password_file", NULL},
	[O_PG_CONNECTIONS] = {"pg_connections", NULL},
	[O_PAYLOAD_FORMAT] = {"payload_format", NULL},
	[O_AUTH] = {"auth", NULL},
	[O_AUTH_REFRESH_S] = {"auth_refresh_s", NULL},
	[O_AUTH_COLD_BUDGET_MS] = {"auth_cold_budget_ms", NULL},
	[O_BRIDGE_SPARKPLUG] = {"bridge_sparkplug", NULL},
	[O_AUTH_THREADS] = {"auth_threads", NULL},
	[O_KIT_RATE_LIMIT] = {"kit_rate_limit", NULL},
};

#define KAFKA_PROP_PREFIX "kafka."
#define KIT_RATE_EXPECTED "off or <messages/s>[:<burst>], integers 1..1000000"

/* A resolved value and where it came from: env is the variable's name, or NULL for an option
 * (or a default, in which case value is NULL). */
struct val {
	const char *value;
	const char *env;
};

/* getenv, with an empty value counting as unset. */
static const char *env_get(const char *name)
{
	const char *v = getenv(name);

	return (v && v[0]) ? v : NULL;
}

/* Copy at most 80 bytes of s into out, replacing control characters so the message stays one
 * line. */
static void printable(char out[96], const char *s)
{
	size_t i;

	for(i = 0; s[i] && i < 80; i++){
		out[i] = (iscntrl((unsigned char)s[i])) ? '?' : s[i];
	}
	if(s[i]){
		memcpy(out + i, "...", 3);
		i += 3;
	}
	out[i] = '\0';
}

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if(!err || errlen == 0) return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Writes the one-line error for a malformed value and returns -1. */
static int bad_value(char *err, size_t errlen, const char *key, const struct val *v, const char *expected)
{
	char shown[96];

	printable(shown, v->value ? v->value : "");
	if(v->env){
		set_err(err, errlen, "kitgate: invalid value \"%s\" for option %s (from environment variable %s; expected %s)",
				shown, key, v->env, expected);
	}else{
		set_err(err, errlen, "kitgate: invalid value \"%s\" for option %s (expected %s)", shown, key, expected);
	}
	return -1;
}

static int oom(char *err, size_t errlen)
{
	set_err(err, errlen, "kitgate: out of memory while reading the configuration");
	return -1;
}

/* Strict integer: optional '-', digits only, whole string, within [min, max]. 0 or -1. */
static int parse_ll(const char *s, long long min, long long max, long long *out)
{
	char *end;
	long long n;

	if(!s || !(isdigit((unsigned char)s[0]) || (s[0] == '-' && isdigit((unsigned char)s[1])))) return -1;
	errno = 0;
	n = strtoll(s, &end, 10);
	if(errno || *end != '\0') return -1;
	if(n < min || n > max) return -1;
	*out = n;
	return 0;
}

/* Resolves an integer option (default when unset). Error message names the range. */
static int get_int(const struct val *v, const char *key, long long min, long long max, long long def,
		long long *out, char *err, size_t errlen)
{
	char expected[80];

	if(!v->value){
		*out = def;
		return 0;
	}
	if(parse_ll(v->value, min, max, out) == 0) return 0;
	if(max == LLONG_MAX){
		snprintf(expected, sizeof(expected), "an integer %lld..", min);
	}else{
		snprintf(expected, sizeof(expected), "an integer %lld..%lld", min, max);
	}
	return bad_value(err, errlen, key, v, expected);
}

/* Resolves a string option into a malloc'd copy of its value or of def (def NULL -> *out NULL).
 * An empty value is refused. */
static int get_str(const struct val *v, const char *key, const char *def, char **out, char *err, size_t errlen)
{
	const char *s = v->value ? v->value : def;

	*out = NULL;
	if(v->value && !v->value[0]) return bad_value(err, errlen, key, v, "a non-empty string");
	if(!s) return 0;
	*out = strdup(s);
	return *out ? 0 : oom(err, errlen);
}

/* MQTT filter syntax: non-empty; '#' only as the whole last level; '+' only as a whole level. */
static bool filter_ok(const char *f)
{
	const char *level = f;

	if(!f || !f[0]) return false;
	for(;;){
		size_t len = strcspn(level, "/");
		const char *w = memchr(level, '#', len);
		const char *p = memchr(level, '+', len);

		if(w && (len != 1 || level[len] != '\0')) return false;
		if(p && len != 1) return false;
		if(level[len] == '\0') break;
		level += len + 1;
	}
	return true;
}

/* Dot path: non-empty, no empty segments ("a", "a.b"; not ".a", "a..b", "a."). */
static bool path_ok(const char *p)
{
	size_t i;

	if(!p[0] || p[0] == '.') return false;
	for(i = 0; p[i]; i++){
		if(p[i] == '.' && (p[i + 1] == '.' || p[i + 1] == '\0')) return false;
	}
	return true;
}

/* malloc'd copy of [s, s+len) with leading and trailing blanks (space, tab) removed. */
static char *trimmed_dup(const char *s, size_t len)
{
	while(len && (*s == ' ' || *s == '\t')){
		s++;
		len--;
	}
	while(len && (s[len - 1] == ' ' || s[len - 1] == '\t')) len--;
	return strndup(s, len);
}

static void free_strv(char **v, size_t n)
{
	size_t i;

	if(!v) return;
	for(i = 0; i < n; i++) free(v[i]);
	free(v);
}

/* Appends item (ownership taken, freed on failure) to *v. 0 or -1 (out of memory). */
static int strv_push(char ***v, size_t *n, char *item)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(**v));

	if(!nv){
		free(item);
		return -1;
	}
	nv[(*n)++] = item;
	*v = nv;
	return 0;
}

/* Splits a comma-separated list (blanks trimmed) into a malloc'd vector. Empty items are kept as
 * empty strings so the caller can refuse them. 0 or -1 (out of memory). */
static int split_list(const char *s, char ***out, size_t *nout)
{
	*out = NULL;
	*nout = 0;
	for(;;){
		size_t len = strcspn(s, ",");
		char *item = trimmed_dup(s, len);

		if(!item || strv_push(out, nout, item)){
			free_strv(*out, *nout);
			*out = NULL;
			*nout = 0;
			return -1;
		}
		if(s[len] == '\0') return 0;
		s += len + 1;
	}
}

/* ignored_attributes "<filter>=<path>[,<path>...]". The filter ends at the LAST '=' (MQTT
 * topics may contain '=', attribute paths rarely do); blanks around the filter and each path are
 * trimmed. Appends one rule to cfg. 0 or -1 with err. */
static int add_ignore_rule(struct kg_config *cfg, const char *value, char *err, size_t errlen)
{
	static const char expected[] = "<filter>=<path>[,<path>...] with a valid MQTT filter and non-empty dot paths";
	const struct val v = {value, NULL};
	const char *eq = strrchr(value, '=');
	struct kg_ignore_rule rule = {0};
	struct kg_ignore_rule *nr;
	size_t i;

	if(!eq) return bad_value(err, errlen, "ignored_attributes", &v, expected);
	rule.filter = trimmed_dup(value, (size_t)(eq - value));
	if(!rule.filter) return oom(err, errlen);
	if(split_list(eq + 1, &rule.paths, &rule.npaths)){
		free(rule.filter);
		return oom(err, errlen);
	}
	if(!filter_ok(rule.filter)) goto bad;
	for(i = 0; i < rule.npaths; i++){
		if(!path_ok(rule.paths[i])) goto bad;
	}
	nr = realloc(cfg->ignored, (cfg->nignored + 1) * sizeof(*nr));
	if(!nr){
		free(rule.filter);
		free_strv(rule.paths, rule.npaths);
		return oom(err, errlen);
	}
	nr[cfg->nignored++] = rule;
	cfg->ignored = nr;
	return 0;
bad:
	free(rule.filter);
	free_strv(rule.paths, rule.npaths);
	return bad_value(err, errlen, "ignored_attributes", &v, expected);
}

static int add_bridge_topic(struct kg_config *cfg, const char *value, char *err, size_t errlen)
{
	const struct val v = {value, NULL};
	char *copy;

	if(!filter_ok(value)) return bad_value(err, errlen, "bridge_topics", &v, "a valid MQTT topic filter");
	copy = strdup(value);
	if(!copy || strv_push(&cfg->bridge_topics, &cfg->nbridge_topics, copy)) return oom(err, errlen);
	return 0;
}

/* stats_topics "<filter>[=<stats topic>]": the filter ends at the first '='; the stats topic
 * must be a concrete topic (no wildcards). */
static int add_stats_topic(struct kg_config *cfg, const char *value, char *err, size_t errlen)
{
	const struct val v = {value, NULL};
	const char *eq = strchr(value, '=');
	char *filter = strndup(value, eq ? (size_t)(eq - value) : strlen(value));
	bool ok;
	char *copy;

	if(!filter) return oom(err, errlen);
	ok = filter_ok(filter) && (!eq || (eq[1] && !strpbrk(eq + 1, "+#")));
	free(filter);
	if(!ok) return bad_value(err, errlen, "stats_topics", &v, "<filter>[=<stats topic>] with a valid MQTT filter");
	copy = strdup(value);
	if(!copy || strv_push(&cfg->stats_topics, &cfg->nstats_topics, copy)) return oom(err, errlen);
	return 0;
}

/* "<address>:<port>" with a non-empty address and a port 1..65535 ("[::1]:8080" for IPv6). */
static bool listen_ok(const char *s)
{
	const char *colon = strrchr(s, ':');
	long long port;

	return colon && colon != s && parse_ll(colon + 1, 1, 65535, &port) == 0;
}

static int add_kafka_prop(struct kg_config *cfg, const char *key, const char *value, char *err, size_t errlen)
{
	struct kg_kv kv, *nkv;

	if(!key[0]){
		set_err(err, errlen, "kitgate: option kafka. needs a librdkafka property name (e.g. kafka.security.protocol)");
		return -1;
	}
	if(!value || !value[0]){
		const struct val v = {"", NULL};
		return bad_value(err, errlen, "kafka.<property>", &v, "a non-empty librdkafka property value");
	}
	kv.key = strdup(key);
	kv.value = strdup(value);
	nkv = (kv.key && kv.value) ? realloc(cfg->kafka_props, (cfg->nkafka_props + 1) * sizeof(*nkv)) : NULL;
	if(!nkv){
		free(kv.key);
		free(kv.value);
		return oom(err, errlen);
	}
	nkv[cfg->nkafka_props++] = kv;
	cfg->kafka_props = nkv;
	return 0;
}

/* Whether a single host entry already names a port: "h:1", "[::1]:1" (not "[::1]"). */
static bool host_has_port(const char *h)
{
	if(h[0] == '[') return strstr(h, "]:") != NULL;
	return strchr(h, ':') != NULL;
}

/* kafka_brokers from KAFKA_HOST (one host or a comma-separated list; an entry with its own port
 * keeps it) and KAFKA_PORT (default 9092), as AstroPlant's services read them. Sets *out to a
 * malloc'd "h1:p,h2:p" or NULL when neither variable is set. 0 or -1 with err. */
static int brokers_from_env(char **out, char *err, size_t errlen)
{
	const char *host = env_get("KAFKA_HOST");
	const char *port = env_get("KAFKA_PORT");
	char **hosts = NULL;
	size_t nhosts = 0, i, total = 1;
	long long n;
	char *s;

	*out = NULL;
	if(!host && !port) return 0;
	if(port && parse_ll(port, 1, 65535, &n)){
		const struct val v = {port, "KAFKA_PORT"};
		return bad_value(err, errlen, "kafka_brokers", &v, "a port 1..65535");
	}
	if(!port) port = "9092";
	if(!host) host = "localhost";
	if(split_list(host, &hosts, &nhosts)) return oom(err, errlen);
	for(i = 0; i < nhosts; i++){
		if(!hosts[i][0]){
			const struct val v = {host, "KAFKA_HOST"};
			free_strv(hosts, nhosts);
			return bad_value(err, errlen, "kafka_brokers", &v, "host[:port][,host[:port]...]");
		}
		total += strlen(hosts[i]) + strlen(port) + 2;
	}
	s = malloc(total);
	if(!s){
		free_strv(hosts, nhosts);
		return oom(err, errlen);
	}
	s[0] = '\0';
	for(i = 0; i < nhosts; i++){
		if(i) strcat(s, ",");
		strcat(s, hosts[i]);
		if(!host_has_port(hosts[i])){
			strcat(s, ":");
			strcat(s, port);
		}
	}
	free_strv(hosts, nhosts);
	*out = s;
	return 0;
}

/* Contract in config.h. Scheme matched case-insensitively: postgresql, postgres, and
 * postgresql+<driver> / postgres+<driver> (SQLAlchemy); the rest of the URL is kept verbatim. */
char *kg_config__normalize_db_url(const char *url)
{
	const char *sep, *plus;
	size_t base_len;
	char *out;

	if(!url) return NULL;
	sep = strstr(url, "://");
	if(!sep) return NULL;
	plus = memchr(url, '+', (size_t)(sep - url));
	base_len = (size_t)((plus ? plus : sep) - url);
	if(plus && plus + 1 == sep) return NULL; /* "postgresql+://" */
	if(!((base_len == 10 && !strncasecmp(url, "postgresql", 10))
				|| (base_len == 8 && !strncasecmp(url, "postgres", 8)))){
		return NULL;
	}
	if(asprintf(&out, "postgresql://%s", sep + 3) < 0) return NULL;
	return out;
}

/* Contract in config.h. Safe on a zeroed or already freed cfg. */
void kg_config__free(struct kg_config *cfg)
{
	size_t i;

	if(!cfg) return;
	free(cfg->database_url);
	free(cfg->kafka_brokers);
	free(cfg->kafka_username);
	free(cfg->kafka_password);
	for(i = 0; i < cfg->nkafka_props; i++){
		free(cfg->kafka_props[i].key);
		free(cfg->kafka_props[i].value);
	}
	free(cfg->kafka_props);
	free(cfg->kafka_topic_raw);
	free(cfg->kafka_topic_aggregate);
	free_strv(cfg->service_users, cfg->nservice_users);
	free(cfg->spool_dir);
	free_strv(cfg->bridge_topics, cfg->nbridge_topics);
	free(cfg->kafka_topic_separator);
	for(i = 0; i < cfg->nignored; i++){
		free(cfg->ignored[i].filter);
		free_strv(cfg->ignored[i].paths, cfg->ignored[i].npaths);
	}
	free(cfg->ignored);
	free(cfg->timestamp_attribute);
	free_strv(cfg->stats_topics, cfg->nstats_topics);
	free(cfg->stats_field);
	free(cfg->http_listen);
	free(cfg->http_password_file);
	memset(cfg, 0, sizeof(*cfg));
}

/* Contract in config.h. */
const char *kg_config__sink_name(enum kg_sink_kind k)
{
	return k == KG_SINK_POSTGRES ? "postgres" : k == KG_SINK_KAFKA ? "kafka" : "none";
}

int kg_config__is_service(const struct kg_config *cfg, const char *username)
{
	size_t i;

	if(!cfg || !username) return 0;
	for(i = 0; i < cfg->nservice_users; i++){
		if(!strcmp(cfg->service_users[i], username)) return 1;
	}
	return 0;
}

/* Resolves every non-repeatable option from vals into cfg. 0 or -1 with err. */
static int resolve(struct kg_config *cfg, struct val vals[O_COUNT], char *err, size_t errlen)
{
	const struct val *v;
	long long n;
	size_t i;

	/* sink */
	v = &vals[O_SINK];
	if(!v->value || !strcasecmp(v->value, "postgres")){
		cfg->sink = KG_SINK_POSTGRES;
	}else if(!strcasecmp(v->value, "kafka")){
		cfg->sink = KG_SINK_KAFKA;
	}else if(!strcasecmp(v->value, "none")){
		cfg->sink = KG_SINK_NONE;
	}else{
		return bad_value(err, errlen, "sink", v, "postgres|kafka|none");
	}

	/* database_url */
	v = &vals[O_DATABASE_URL];
	cfg->database_url = kg_config__normalize_db_url(v->value ? v->value
			: "postgresql://astroplant:astroplant@localhost/astroplant");
	if(!cfg->database_url){
		return bad_value(err, errlen, "database_url", v,
				"a postgresql:// URI; postgres:// and SQLAlchemy postgresql+<driver>:// are accepted");
	}

	/* kafka_brokers: option, else KAFKA_HOST/KAFKA_PORT, else default */
	v = &vals[O_KAFKA_BROKERS];
	if(v->value){
		if(get_str(v, "kafka_brokers", NULL, &cfg->kafka_brokers, err, errlen)) return -1;
	}else{
		if(brokers_from_env(&cfg->kafka_brokers, err, errlen)) return -1;
		if(!cfg->kafka_brokers && !(cfg->kafka_brokers = strdup("localhost:9092"))) return oom(err, errlen);
	}

	if(get_str(&vals[O_KAFKA_USERNAME], "kafka_username", NULL, &cfg->kafka_username, err, errlen)) return -1;
	if(get_str(&vals[O_KAFKA_PASSWORD], "kafka_password", NULL, &cfg->kafka_password, err, errlen)) return -1;
	if(get_str(&vals[O_KAFKA_TOPIC_RAW], "kafka_topic_raw", "raw", &cfg->kafka_topic_raw, err, errlen)) return -1;
	if(get_str(&vals[O_KAFKA_TOPIC_AGGREGATE], "kafka_topic_aggregate", "aggregate",
				&cfg->kafka_topic_aggregate, err, errlen)) return -1;

	/* service_users */
	v = &vals[O_SERVICE_USERS];
	if(split_list(v->value ? v->value : "server", &cfg->service_users, &cfg->nservice_users)) return oom(err, errlen);
	for(i = 0; i < cfg->nservice_users; i++){
		if(!kg_access__username_ok(cfg->service_users[i])){
			return bad_value(err, errlen, "service_users", v,
					"comma-separated non-empty usernames without '+', '#' or '/'");
		}
	}

	/* other_topics */
	v = &vals[O_OTHER_TOPICS];
	if(!v->value || !strcasecmp(v->value, "defer")){
		cfg->other_topics = KG_OTHER_DEFER;
	}else if(!strcasecmp(v->value, "allow")){
		cfg->other_topics = KG_OTHER_ALLOW;
	}else if(!strcasecmp(v->value, "deny")){
		cfg->other_topics = KG_OTHER_DENY;
	}else{
		return bad_value(err, errlen, "other_topics", v, "defer|allow|deny");
	}

	if(get_int(&vals[O_QUEUE_LIMIT], "queue_limit", 1, LLONG_MAX, 100000, &n, err, errlen)) return -1;
	cfg->queue_limit = (size_t)n;
	if(get_int(&vals[O_BATCH_SIZE], "batch_size", 1, 100000, 1000, &n, err, errlen)) return -1;
	cfg->batch_size = (int)n;
	if(get_int(&vals[O_BATCH_MS], "batch_ms", 0, 60000, 10, &n, err, errlen)) return -1;
	cfg->batch_ms = (int)n;
	if(get_int(&vals[O_PG_CONNECTIONS], "pg_connections", 1, 16, 2, &n, err, errlen)) return -1;
	cfg->pg_connections = (int)n;
	if(get_str(&vals[O_SPOOL_DIR], "spool_dir", "/var/lib/mosquitto/kitgate", &cfg->spool_dir, err, errlen)) return -1;
	if(get_int(&vals[O_MAX_PAYLOAD], "max_payload", 1, 268435455, 16384, &n, err, errlen)) return -1;
	cfg->max_payload = (size_t)n;
	/* At most 10 years (365-day), so max_clock_skew_s * 1000 (ms) cannot overflow int64. */
	if(get_int(&vals[O_MAX_CLOCK_SKEW_S], "max_clock_skew_s", 0, 315360000, 86400, &n, err, errlen)) return -1;
	cfg->max_clock_skew_s = (int64_t)n;

	/* log_level */
	v = &vals[O_LOG_LEVEL];
	cfg->log_level = v->value ? kg_log__parse_level(v->value) : KG_LOG_INFO;
	if(cfg->log_level < 0) return bad_value(err, errlen, "log_level", v, "DEBUG|INFO|WARNING|ERROR");

	/* kafka_topic_separator */
	v = &vals[O_KAFKA_TOPIC_SEPARATOR];
	if(v->value && (strlen(v->value) != 1
				|| !(isalnum((unsigned char)v->value[0]) || strchr("._-", v->value[0])))){
		return bad_value(err, errlen, "kafka_topic_separator", v, "one character from [A-Za-z0-9._-]");
	}
	if(get_str(v, "kafka_topic_separator", "_", &cfg->kafka_topic_separator, err, errlen)) return -1;

	if(get_str(&vals[O_TIMESTAMP_ATTRIBUTE], "timestamp_attribute", "timestamp",
				&cfg->timestamp_attribute, err, errlen)) return -1;
	if(get_int(&vals[O_SPOOL_SEGMENT_MB], "spool_segment_mb", 1, 4096, 64, &n, err, errlen)) return -1;
	cfg->spool_segment_bytes = (uint64_t)n * 1024u * 1024u;
	if(get_int(&vals[O_SHUTDOWN_TIMEOUT_MS], "shutdown_timeout_ms", 0, 600000, 5000, &n, err, errlen)) return -1;
	cfg->shutdown_timeout_ms = (int)n;
	if(get_int(&vals[O_STATS_INTERVAL_S], "stats_interval_s", 0, 3600, 10, &n, err, errlen)) return -1;
	cfg->stats_interval_s = (int)n;
	if(get_str(&vals[O_STATS_FIELD], "stats_field", "value", &cfg->stats_field, err, errlen)) return -1;
	if(get_int(&vals[O_STATS_MAX_STREAMS], "stats_max_streams", 1, 10000000, 10000, &n, err, errlen)) return -1;
	cfg->stats_max_streams = (size_t)n;
	if(get_int(&vals[O_STATS_MAX_SAMPLES], "stats_max_samples", 2, 1000000, 1024, &n, err, errlen)) return -1;
	cfg->stats_max_samples = (size_t)n;
	if(get_int(&vals[O_STATS_MAX_STREAMS_PER_KIT], "stats_max_streams_per_kit", 1, 10000000, 64, &n, err, errlen)) return -1;
	cfg->stats_max_streams_per_kit = (size_t)n;
	v = &vals[O_HTTP_LISTEN];
	if(v->value && strcasecmp(v->value, "off") && !listen_ok(v->value)){
		return bad_value(err, errlen, "http_listen", v, "<address>:<port> (e.g. 127.0.0.1:8080) or off");
	}
	if(v->value && strcasecmp(v->value, "off")){
		if(get_str(v, "http_listen", NULL, &cfg->http_listen, err, errlen)) return -1;
	}
	if(get_str(&vals[O_HTTP_PASSWORD_FILE], "http_password_file", NULL, &cfg->http_password_file, err, errlen)) return -1;

	/* payload_format */
	v = &vals[O_PAYLOAD_FORMAT];
	if(!v->value || !strcasecmp(v->value, "auto")){
		cfg->payload_format = KG_PAYLOAD_AUTO;
	}else if(!strcasecmp(v->value, "json")){
		cfg->payload_format = KG_PAYLOAD_JSON;
	}else if(!strcasecmp(v->value, "capnp")){
		cfg->payload_format = KG_PAYLOAD_CAPNP;
	}else{
		return bad_value(err, errlen, "payload_format", v, "auto|json|capnp");
	}
	/* auth, auth_refresh_s, auth_cold_budget_ms */
	v = &vals[O_AUTH];
	if(!v->value || !strcasecmp(v->value, "none")){
		cfg->auth = KG_AUTH_NONE;
	}else if(!strcasecmp(v->value, "postgres")){
		cfg->auth = KG_AUTH_POSTGRES;
	}else{
		return bad_value(err, errlen, "auth", v, "none|postgres");
	}
	if(get_int(&vals[O_AUTH_REFRESH_S], "auth_refresh_s", 1, 86400, 30, &n, err, errlen)) return -1;
	cfg->auth_refresh_s = (int)n;
	if(get_int(&vals[O_AUTH_COLD_BUDGET_MS], "auth_cold_budget_ms", 1, 1000, 250, &n, err, errlen)) return -1;
	cfg->auth_cold_budget_ms = (int)n;
	/* auth_threads: 0 = not set (the number of CPUs where delayed auth is used, mosquitto 2.1) */
	if(get_int(&vals[O_AUTH_THREADS], "auth_threads", 1, 256, 0, &n, err, errlen)) return -1;
	cfg->auth_threads = (int)n;
	/* kit_rate_limit <messages/s>[:<burst>], off by default; the burst defaults to the rate */
	v = &vals[O_KIT_RATE_LIMIT];
	cfg->kit_rate_limit = cfg->kit_rate_burst = 0;
	if(v->value && strcasecmp(v->value, "off") != 0){
		const char *colon = strchr(v->value, ':');
		char rate[32];
		long long r, b;

		if(!colon) colon = v->value + strlen(v->value);
		if((size_t)(colon - v->value) >= sizeof(rate)) return bad_value(err, errlen, "kit_rate_limit", v, KIT_RATE_EXPECTED);
		memcpy(rate, v->value, (size_t)(colon - v->value));
		rate[colon - v->value] = '\0';
		if(parse_ll(rate, 1, 1000000, &r) != 0) return bad_value(err, errlen, "kit_rate_limit", v, KIT_RATE_EXPECTED);
		b = r;
		if(*colon && parse_ll(colon + 1, 1, 1000000, &b) != 0) return bad_value(err, errlen, "kit_rate_limit", v, KIT_RATE_EXPECTED);
		cfg->kit_rate_limit = (int)r;
		cfg->kit_rate_burst = (int)b;
	}
	/* bridge_sparkplug */
	v = &vals[O_BRIDGE_SPARKPLUG];
	if(!v->value || !strcasecmp(v->value, "decode")){
		cfg->bridge_sparkplug = KG_SPARKPLUG_DECODE;
	}else if(!strcasecmp(v->value, "raw")){
		cfg->bridge_sparkplug = KG_SPARKPLUG_RAW;
	}else{
		return bad_value(err, errlen, "bridge_sparkplug", v, "decode|raw");
	}
	return 0;
}

/* Contract in config.h. Options are walked in the order given (mosquitto passes them in file
 * order): a non-repeatable option given twice keeps its LAST value; bridge_topics,
 * ignored_attributes and kafka.<property> accumulate in order. Only then are environment
 * variables consulted for options not given, then defaults. cfg is overwritten (not freed)
 * on entry. */
int kg_config__parse(struct kg_config *cfg, const struct kg_opt *opts, int nopts, char *err, size_t errlen)
{
	struct val vals[O_COUNT];
	int i, id;

	assert(cfg);
	memset(cfg, 0, sizeof(*cfg));
	memset(vals, 0, sizeof(vals));
	if(err && errlen) err[0] = '\0';

	for(i = 0; opts && i < nopts; i++){
		const char *key = opts[i].key;
		const char *value = opts[i].value;

		if(!key) continue;
		if(!strncmp(key, KAFKA_PROP_PREFIX, strlen(KAFKA_PROP_PREFIX))){
			if(add_kafka_prop(cfg, key + strlen(KAFKA_PROP_PREFIX), value, err, errlen)) goto fail;
			continue;
		}
		for(id = 0; id < O_COUNT; id++){
			if(!strcmp(key, opt_table[id].key)) break;
		}
		if(id == O_COUNT){
			char shown[96];

			printable(shown, key);
			set_err(err, errlen, "kitgate: unknown option \"%s\" (plugin_opt_%s)", shown, shown);
			goto fail;
		}
		if(id == O_BRIDGE_TOPICS){
			if(add_bridge_topic(cfg, value ? value : "", err, errlen)) goto fail;
		}else if(id == O_STATS_TOPICS){
			if(add_stats_topic(cfg, value ? value : "", err, errlen)) goto fail;
		}else if(id == O_IGNORED_ATTRIBUTES){
			if(add_ignore_rule(cfg, value ? value : "", err, errlen)) goto fail;
		}else{
			vals[id].value = value ? value : "";
			vals[id].env = NULL;
		}
	}

	for(id = 0; id < O_COUNT; id++){
		if(vals[id].value || !opt_table[id].env) continue;
		vals[id].value = env_get(opt_table[id].env);
		if(vals[id].value) vals[id].env = opt_table[id].env;
	}

	if(resolve(cfg, vals, err, errlen)) goto fail;
	/* kafka.<property> values librdkafka refuses fail here, in plugin init, not in the worker */
	if(kg_rdkconf__validate(cfg, err, errlen)) goto fail;
	return 0;
fail:
	kg_config__free(cfg);
	return -1;
}
