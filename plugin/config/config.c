/* config.c -- plugin_opt_* parsing with environment fallbacks and defaults (see config.h). */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kitgate/config.h"
#include "kitgate/log.h"
#include "kitgate/pbkdf2.h"
#include "kitgate/rdkconf.h"
#include "kitgate/access.h"


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
static int bad_value(char *err, size_t errlen, const char *key, const struct kg_opt_val *v, const char *expected)
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

/* Resolves a string option into a malloc'd copy of its value or of def (def NULL -> *out NULL).
 * An empty value is refused. */
static int get_str(const struct kg_opt_val *v, const char *key, const char *def, char **out, char *err, size_t errlen)
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
	const struct kg_opt_val v = {value, NULL};
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
	const struct kg_opt_val v = {value, NULL};
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
	const struct kg_opt_val v = {value, NULL};
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
		const struct kg_opt_val v = {"", NULL};
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
		const struct kg_opt_val v = {port, "KAFKA_PORT"};
		return bad_value(err, errlen, "kafka_brokers", &v, "a port 1..65535");
	}
	if(!port) port = "9092";
	if(!host) host = "localhost";
	if(split_list(host, &hosts, &nhosts)) return oom(err, errlen);
	for(i = 0; i < nhosts; i++){
		if(!hosts[i][0]){
			const struct kg_opt_val v = {host, "KAFKA_HOST"};
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

/* ---- Hooks: the options whose check or storage is not a plain string, integer or enum ------ */

static char **field_str(struct kg_config *cfg, const struct kg_option *o)
{
	return (char **)(void *)((char *)cfg + o->offset);
}

static int hook_database_url(struct kg_config *cfg, const struct kg_option *o, const char *key,
		const struct kg_opt_val *v, char *err, size_t errlen)
{
	(void)key;
	*field_str(cfg, o) = kg_config__normalize_db_url(v->value);
	return *field_str(cfg, o) ? 0 : bad_value(err, errlen, o->name, v, o->expected);
}

/* kafka_brokers: the option, else KAFKA_HOST/KAFKA_PORT, else the default. */
static int hook_kafka_brokers(struct kg_config *cfg, const struct kg_option *o, const char *key,
		const struct kg_opt_val *v, char *err, size_t errlen)
{
	char **out = field_str(cfg, o);

	(void)key;
	if(!v->is_default) return get_str(v, o->name, NULL, out, err, errlen);
	if(brokers_from_env(out, err, errlen)) return -1;
	if(!*out && !(*out = strdup(v->value))) return oom(err, errlen);
	return 0;
}

static int hook_service_users(struct kg_config *cfg, const struct kg_option *o, const char *key,
		const struct kg_opt_val *v, char *err, size_t errlen)
{
	size_t i;

	(void)key;
	if(split_list(v->value, &cfg->service_users, &cfg->nservice_users)) return oom(err, errlen);
	for(i = 0; i < cfg->nservice_users; i++){
		if(!kg_access__username_ok(cfg->service_users[i])) return bad_value(err, errlen, o->name, v, o->expected);
	}
	return 0;
}

/* A check before the string is stored: refuses what the row's `expected` does not describe. */
static int check_separator(struct kg_config *cfg, const struct kg_option *o, const char *key,
		const struct kg_opt_val *v, char *err, size_t errlen)
{
	(void)cfg;
	(void)key;
	if(strlen(v->value) != 1 || !(isalnum((unsigned char)v->value[0]) || strchr("._-", v->value[0]))){
		return bad_value(err, errlen, o->name, v, o->expected);
	}
	return 0;
}

static int check_listen(struct kg_config *cfg, const struct kg_option *o, const char *key,
		const struct kg_opt_val *v, char *err, size_t errlen)
{
	(void)cfg;
	(void)key;
	return listen_ok(v->value) ? 0 : bad_value(err, errlen, o->name, v, o->expected);
}

/* kit_rate_limit off | <messages/s>[:<burst>], integers 1..1000000; the burst defaults to the rate. */
static int hook_kit_rate(struct kg_config *cfg, const struct kg_option *o, const char *key,
		const struct kg_opt_val *v, char *err, size_t errlen)
{
	const char *colon;
	char rate[32];
	long long r, b;

	(void)key;
	cfg->kit_rate_limit = cfg->kit_rate_burst = 0;
	if(!v->value || !strcasecmp(v->value, "off")) return 0;
	colon = strchr(v->value, ':');
	if(!colon) colon = v->value + strlen(v->value);
	if((size_t)(colon - v->value) >= sizeof(rate)) return bad_value(err, errlen, o->name, v, o->expected);
	memcpy(rate, v->value, (size_t)(colon - v->value));
	rate[colon - v->value] = '\0';
	if(parse_ll(rate, 1, 1000000, &r) != 0) return bad_value(err, errlen, o->name, v, o->expected);
	b = r;
	if(*colon && parse_ll(colon + 1, 1, 1000000, &b) != 0) return bad_value(err, errlen, o->name, v, o->expected);
	cfg->kit_rate_limit = (int)r;
	cfg->kit_rate_burst = (int)b;
	return 0;
}

static int hook_bridge_topic(struct kg_config *cfg, const struct kg_option *o, const char *key,
		const struct kg_opt_val *v, char *err, size_t errlen)
{
	(void)o;
	(void)key;
	return add_bridge_topic(cfg, v->value, err, errlen);
}

static int hook_stats_topic(struct kg_config *cfg, const struct kg_option *o, const char *key,
		const struct kg_opt_val *v, char *err, size_t errlen)
{
	(void)o;
	(void)key;
	return add_stats_topic(cfg, v->value, err, errlen);
}

static int hook_ignore_rule(struct kg_config *cfg, const struct kg_option *o, const char *key,
		const struct kg_opt_val *v, char *err, size_t errlen)
{
	(void)o;
	(void)key;
	return add_ignore_rule(cfg, v->value, err, errlen);
}

static int hook_kafka_prop(struct kg_config *cfg, const struct kg_option *o, const char *key,
		const struct kg_opt_val *v, char *err, size_t errlen)
{
	(void)o;
	return add_kafka_prop(cfg, key, v->value, err, errlen);
}

/* ---- The option table (how to add an option: config.h) ------------------------------------ */

static const struct kg_opt_enum sink_values[] = {
	{"postgres", KG_SINK_POSTGRES, 0}, {"kafka", KG_SINK_KAFKA, 0}, {"none", KG_SINK_NONE, 0}, {NULL, 0, 0}};
static const struct kg_opt_enum other_topics_values[] = {
	{"defer", KG_OTHER_DEFER, 0}, {"allow", KG_OTHER_ALLOW, 0}, {"deny", KG_OTHER_DENY, 0}, {NULL, 0, 0}};
static const struct kg_opt_enum log_level_values[] = {
	{"DEBUG", KG_LOG_DEBUG, 0}, {"INFO", KG_LOG_INFO, 0}, {"WARNING", KG_LOG_WARNING, 0},
	{"ERROR", KG_LOG_ERROR, 0}, {"WARN", KG_LOG_WARNING, 1}, {NULL, 0, 0}};
static const struct kg_opt_enum payload_format_values[] = {
	{"auto", KG_PAYLOAD_AUTO, 0}, {"json", KG_PAYLOAD_JSON, 0}, {"capnp", KG_PAYLOAD_CAPNP, 0}, {NULL, 0, 0}};
static const struct kg_opt_enum auth_values[] = {
	{"none", KG_AUTH_NONE, 0}, {"postgres", KG_AUTH_POSTGRES, 0}, {NULL, 0, 0}};
static const struct kg_opt_enum sparkplug_values[] = {
	{"decode", KG_SPARKPLUG_DECODE, 0}, {"raw", KG_SPARKPLUG_RAW, 0}, {NULL, 0, 0}};

#define FIELD(f) .offset = offsetof(struct kg_config, f), .size = sizeof(((struct kg_config *)0)->f)
/* One-line rows for the common shapes; any other row spells its fields out. */
#define STR(nm, f, df, hlp) {.name = nm, .type = KG_OPT_STRING, .def = df, FIELD(f), .help = hlp}
#define INT(nm, f, df, lo, hi, hlp) {.name = nm, .type = KG_OPT_INT, .def = df, .min = lo, .max = hi, FIELD(f), .help = hlp}
#define ENUM(nm, f, df, vals, hlp) {.name = nm, .type = KG_OPT_ENUM, .def = df, .values = vals, FIELD(f), .help = hlp}
#define REPEAT(nm, fn, hlp) {.name = nm, .type = KG_OPT_REPEAT, .hook = fn, .help = hlp}

static const struct kg_option options[] = {
	{.name = "sink", .type = KG_OPT_ENUM, .env = "KITGATE_SINK", .def = "postgres", .values = sink_values, FIELD(sink),
		.help = "`postgres`, `kafka` or `none` (validate and enforce access only)"},
	{.name = "database_url", .type = KG_OPT_CUSTOM, .env = "DATABASE_URL",
		.def = "postgresql://astroplant:astroplant@localhost/astroplant", FIELD(database_url), .hook = hook_database_url,
		.expected = "a postgresql:// URI; postgres:// and SQLAlchemy postgresql+<driver>:// are accepted",
		.help = "libpq URI; `postgres://` and SQLAlchemy forms such as `postgres+psycopg2://…` are accepted. "
			"kitgate's connections send `options=-c statement_timeout=30000 -c lock_timeout=10000` (keepalives "
			"and `tcp_user_timeout 60000` too); the URI's own `options` (e.g. "
			"`?options=-c%20statement_timeout%3D60000`), or else `$PGOPTIONS`, are appended and win (a `service=` "
			"entry's `options` in `pg_service.conf` are not read: put them in the URI). Behind pgbouncer in "
			"transaction mode, which refuses the `options` startup parameter, add `options` to its "
			"`ignore_startup_parameters` and set the two timeouts on the role "
			"(`ALTER ROLE … SET statement_timeout = '30s'`)"},
	{.name = "kafka_brokers", .type = KG_OPT_CUSTOM, .env = "KAFKA_HOST, KAFKA_PORT", .def = "localhost:9092",
		FIELD(kafka_brokers), .flags = KG_OPT_HOOK_ENV, .hook = hook_kafka_brokers,
		.help = "bootstrap servers; from the environment: `KAFKA_HOST` (one host or a comma-separated list; "
			"an entry with its own port keeps it) and `KAFKA_PORT` (default 9092)"},
	{.name = "kafka_username", .type = KG_OPT_STRING, .env = "KAFKA_USERNAME", FIELD(kafka_username),
		.help = "SASL PLAIN user name; SASL is used when set"},
	{.name = "kafka_password", .type = KG_OPT_STRING, .env = "KAFKA_PASSWORD", FIELD(kafka_password),
		.help = "SASL PLAIN password"},
	STR("kafka_topic_raw", kafka_topic_raw, "raw", "Kafka topic for raw kit measurements"),
	STR("kafka_topic_aggregate", kafka_topic_aggregate, "aggregate", "Kafka topic for aggregate kit measurements"),
	{.name = "service_users", .type = KG_OPT_LIST, .def = "server", .hook = hook_service_users,
		.expected = "comma-separated non-empty usernames without '+', '#' or '/'",
		.help = "comma-separated usernames with full access to `kit/#`"},
	ENUM("other_topics", other_topics, "defer", other_topics_values,
		"topics outside `kit/`: `defer` (to `acl_file`/other plugins), `allow` or `deny`"),
	INT("queue_limit", queue_limit, "100000", 1, LLONG_MAX, "accepted messages held in memory before spilling to the spool"),
	INT("batch_size", batch_size, "1000", 1, 100000, "sink batch bound: records per batch"),
	INT("batch_ms", batch_ms, "10", 0, 60000,
		"sink batch bound: how long a batch may wait to fill, in milliseconds (10 rather than the 50 first "
		"specified: the linger dominated publish → committed-row latency)"),
	INT("pg_connections", pg_connections, "2", 1, 16, "independent PostgreSQL connections, each with its own batches and commits"),
	STR("spool_dir", spool_dir, "/var/lib/mosquitto/kitgate",
		"on-disk spool; must be writable by the user mosquitto runs as; `off` = memory only (explicit data-loss risk)"),
	INT("max_payload", max_payload, "16384", 1, 268435455, "bytes; larger measurement payloads are rejected"),
	/* at most 10 years (365-day), so max_clock_skew_s * 1000 (ms) cannot overflow int64 */
	INT("max_clock_skew_s", max_clock_skew_s, "86400", 0, 315360000,
		"seconds; measurement timestamps further in the future are rejected (at most 10 years)"),
	{.name = "log_level", .type = KG_OPT_ENUM, .env = "LOG_LEVEL", .def = "INFO", .values = log_level_values,
		FIELD(log_level), .help = "minimum level of the plugin's log lines (`WARN` is read as `WARNING`)"},
	{.name = "kafka_topic_separator", .type = KG_OPT_STRING, .def = "_", FIELD(kafka_topic_separator),
		.hook = check_separator, .expected = "one character from [A-Za-z0-9._-]",
		.help = "replaces `/` in bridged Kafka topic names"},
	STR("timestamp_attribute", timestamp_attribute, "timestamp",
		"top-level JSON number (epoch ms) used as the Kafka timestamp of bridged messages"),
	{.name = "spool_segment_mb", .type = KG_OPT_INT, .def = "64", .min = 1, .max = 4096, .scale = 1024 * 1024,
		FIELD(spool_segment_bytes), .help = "size of one spool segment file, in MiB"},
	INT("shutdown_timeout_ms", shutdown_timeout_ms, "5000", 0, 600000,
		"how long the workers drain at broker shutdown; the rest stays in the spool"),
	INT("stats_interval_s", stats_interval_s, "10", 0, 3600,
		"period of the retained status on `$SYS/broker/kitgate/status` (0 = off)"),
	STR("stats_field", stats_field, "value",
		"the JSON number field read from generic stats topics (a bare numeric payload always works)"),
	INT("stats_max_streams", stats_max_streams, "10000", 1, 10000000,
		"streams with statistics; past it the least recently updated one is evicted (counted) and its "
		"retained `…/stats…` message cleared"),
	INT("stats_max_samples", stats_max_samples, "1024", 2, 1000000,
		"samples kept per stream (12 bytes each); past it the oldest is dropped (counted)"),
	INT("stats_max_streams_per_kit", stats_max_streams_per_kit, "64", 1, 10000000,
		"streams per kit (peripheral × quantity type); past it the kit's least recently updated stream is "
		"evicted (counted as `kit_evicted`), so one kit cannot evict other kits' statistics"),
	{.name = "http_listen", .type = KG_OPT_STRING, FIELD(http_listen), .flags = KG_OPT_OFF, .hook = check_listen,
		.expected = "<address>:<port> (e.g. 127.0.0.1:8080) or off", .def_doc = "off",
		.help = "`<address>:<port>` of the HTTP endpoint (dashboard, API, `/metrics`); `off` = none"},
	STR("http_password_file", http_password_file, NULL,
		"a `mosquitto_passwd` file; when set, HTTP needs Basic credentials of a service user in it (and the "
		"test-measurement POST is refused without it)"),
	STR("http_allowed_hosts", http_allowed_hosts, NULL,
		"comma-separated extra names the HTTP endpoint answers in `Host` (besides the listen address, and "
		"`localhost` on loopback); others get 421 (DNS rebinding); `*` = any"),
	INT("live_max_kits", live_max_kits, "100000", 1, 10000000,
		"kits the live view tracks; past it the least recently seen offline kit is evicted and its retained "
		"status cleared"),
	ENUM("payload_format", payload_format, "auto", payload_format_values,
		"`auto` (first non-space byte `{` → JSON, else Cap'n Proto), `json` or `capnp` (packed, as AstroPlant kits send)"),
	ENUM("auth", auth, "none", auth_values, "`postgres`: kits log in against `kits.password_hash`"),
	INT("auth_refresh_s", auth_refresh_s, "30", 1, 86400,
		"period in seconds of the kits snapshot reload; with `schema/kitgate-notify.sql` changes also arrive at once"),
	INT("auth_cold_budget_ms", auth_cold_budget_ms, "250", 1, 1000,
		"milliseconds of broker-thread PBKDF2 per second, all kits together, for logins not in the login "
		"cache; over it a kit is refused unchecked and retries"),
	/* KG_AUTH_MAX_ITERATIONS_DEFAULT (pbkdf2.h); the ceiling is KG_PBKDF2_MAX_ITER */
	INT("auth_max_iterations", auth_max_iterations, "1000000", 1, KG_PBKDF2_MAX_ITER,
		"kits whose `kits.password_hash` needs more PBKDF2 iterations are refused unchecked with a log line "
		"naming the kit (one check would stall the broker: 10 M iterations take ~7 s); the default admits "
		"AstroPlant's 15000, go-auth's 100000 and OWASP's/Django's current 600000/1000000"),
	{.name = "auth_threads", .type = KG_OPT_INT, .min = 1, .max = 256, FIELD(auth_threads),
		.def_doc = "the number of CPUs (mosquitto 2.1)",
		.help = "PBKDF2 worker threads for delayed kit logins; mosquitto 2.1 only (on 2.0 logins are checked on "
			"the broker thread under `auth_cold_budget_ms`, and setting this option stops the start with a line "
			"saying so)"},
	{.name = "kit_rate_limit", .type = KG_OPT_LIST, .def = "off", .hook = hook_kit_rate, /* LIST: a hook, no char * field */
		.expected = "off or <messages/s>[:<burst>], integers 1..1000000",
		.help = "`<messages/s>[:<burst>]`: a token bucket per kit (the burst defaults to the rate); a kit's publish "
			"over it is refused (MQTT v5: 0x97 on mosquitto 2.1, 0x87 on 2.0), counted as `rate_limited`, never a "
			"disconnect; `off` = no limit"},
	ENUM("bridge_sparkplug", bridge_sparkplug, "decode", sparkplug_values,
		"Sparkplug B payloads on `spBv1.0/` bridge routes: `decode` to JSON or forward `raw`"),
	REPEAT("bridge_topics", hook_bridge_topic, "an MQTT filter whose topics are forwarded to Kafka"),
	REPEAT("ignored_attributes", hook_ignore_rule,
		"`<filter>=<path>[,<path>…]`: dot paths removed from bridged JSON of matching topics (every matching line applies)"),
	REPEAT("stats_topics", hook_stats_topic,
		"`<filter>[=<stats topic>]`: generic topics with rolling statistics (default output `<topic>/stats`)"),
	{.name = "kafka.", .type = KG_OPT_PREFIX, .hook = hook_kafka_prop,
		.help = "`kafka.<property>`: passed verbatim to librdkafka, after kitgate's defaults; an unknown property "
			"or a value librdkafka refuses (`kafka.acks banana`) stops the broker at start with one line naming it"},
};

#define NOPTIONS (sizeof(options) / sizeof(options[0]))
_Static_assert(KG_AUTH_MAX_ITERATIONS_DEFAULT == 1000000, "the auth_max_iterations row's default is pbkdf2.h's");

/* Contract in config.h. */
const struct kg_option *kg_config__options(size_t *n)
{
	*n = NOPTIONS;
	return options;
}

/* "a|b|c": an enum's listed words, for its error. */
static void enum_expected(const struct kg_opt_enum *e, char *out, size_t outlen)
{
	size_t len = 0;

	out[0] = '\0';
	for(; e->name; e++){
		if(e->alias) continue;
		len += (size_t)snprintf(out + len, len < outlen ? outlen - len : 0, "%s%s", len ? "|" : "", e->name);
	}
}

static int resolve_int(struct kg_config *cfg, const struct kg_option *o, const struct kg_opt_val *v,
		char *err, size_t errlen)
{
	char expected[80];
	long long n;
	void *field = (char *)cfg + o->offset;

	if(parse_ll(v->value, o->min, o->max, &n)){
		if(o->max == LLONG_MAX){
			snprintf(expected, sizeof(expected), "an integer %lld..", o->min);
		}else{
			snprintf(expected, sizeof(expected), "an integer %lld..%lld", o->min, o->max);
		}
		return bad_value(err, errlen, o->name, v, expected);
	}
	if(o->scale) n *= o->scale;
	if(o->size == sizeof(int)){
		int x = (int)n;
		memcpy(field, &x, sizeof(x));
	}else{
		int64_t x = (int64_t)n;
		assert(o->size == sizeof(x));
		memcpy(field, &x, sizeof(x));
	}
	return 0;
}

static int resolve_enum(struct kg_config *cfg, const struct kg_option *o, const struct kg_opt_val *v,
		char *err, size_t errlen)
{
	const struct kg_opt_enum *e;
	char expected[160];

	assert(o->size == sizeof(int));
	for(e = o->values; e->name; e++){
		if(!strcasecmp(v->value, e->name)){
			memcpy((char *)cfg + o->offset, &e->value, sizeof(int));
			return 0;
		}
	}
	enum_expected(o->values, expected, sizeof(expected));
	return bad_value(err, errlen, o->name, v, expected);
}

/* Resolves one non-repeatable row from its value (given, environment or default). 0 or -1. */
static int resolve_one(struct kg_config *cfg, const struct kg_option *o, const struct kg_opt_val *v,
		char *err, size_t errlen)
{
	if(o->type == KG_OPT_CUSTOM) return o->hook(cfg, o, NULL, v, err, errlen);
	if(!v->value) return 0; /* no value and no default: the field stays zero/NULL */
	switch(o->type){
		case KG_OPT_INT: return resolve_int(cfg, o, v, err, errlen);
		case KG_OPT_ENUM: return resolve_enum(cfg, o, v, err, errlen);
		case KG_OPT_LIST: return o->hook(cfg, o, NULL, v, err, errlen);
		case KG_OPT_STRING:
			if((o->flags & KG_OPT_OFF) && !strcasecmp(v->value, "off")) return 0;
			if(o->hook && o->hook(cfg, o, NULL, v, err, errlen)) return -1;
			return get_str(v, o->name, NULL, field_str(cfg, o), err, errlen);
		default: return 0;
	}
}

/* Contract in config.h. Options are walked in the order given (mosquitto passes them in file
 * order): a non-repeatable option given twice keeps its LAST value; repeatable ones and
 * kafka.<property> accumulate in order as they are read. Then every other row is resolved in
 * table order: the option's value, else its environment variable, else its default. cfg is
 * overwritten (not freed) on entry. */
int kg_config__parse(struct kg_config *cfg, const struct kg_opt *opts, int nopts, char *err, size_t errlen)
{
	struct kg_opt_val vals[NOPTIONS];
	size_t id;
	int i;

	assert(cfg);
	memset(cfg, 0, sizeof(*cfg));
	memset(vals, 0, sizeof(vals));
	if(err && errlen) err[0] = '\0';

	for(i = 0; opts && i < nopts; i++){
		const char *key = opts[i].key;
		struct kg_opt_val given = {opts[i].value ? opts[i].value : "", NULL, 0};
		const struct kg_option *o = NULL;

		if(!key) continue;
		for(id = 0; id < NOPTIONS; id++){
			o = &options[id];
			if(o->type == KG_OPT_PREFIX ? !strncmp(key, o->name, strlen(o->name)) : !strcmp(key, o->name)) break;
		}
		if(id == NOPTIONS){
			char shown[96];

			printable(shown, key);
			set_err(err, errlen, "kitgate: unknown option \"%s\" (plugin_opt_%s)", shown, shown);
			goto fail;
		}
		if(o->type == KG_OPT_PREFIX){
			/* the value as given (NULL stays NULL: the hook refuses it by name) */
			given.value = opts[i].value;
			if(o->hook(cfg, o, key + strlen(o->name), &given, err, errlen)) goto fail;
		}else if(o->type == KG_OPT_REPEAT){
			if(o->hook(cfg, o, key, &given, err, errlen)) goto fail;
		}else{
			vals[id] = given;
		}
	}

	for(id = 0; id < NOPTIONS; id++){
		const struct kg_option *o = &options[id];

		if(o->type == KG_OPT_REPEAT || o->type == KG_OPT_PREFIX) continue;
		if(!vals[id].value && o->env && !(o->flags & KG_OPT_HOOK_ENV)){
			vals[id].value = env_get(o->env);
			if(vals[id].value) vals[id].env = o->env;
		}
		if(!vals[id].value){
			vals[id].value = o->def;
			vals[id].is_default = 1;
		}
		if(resolve_one(cfg, o, &vals[id], err, errlen)) goto fail;
	}
	/* kafka.<property> values librdkafka refuses fail here, in plugin init, not in the worker */
	if(kg_rdkconf__validate(cfg, err, errlen)) goto fail;
	return 0;
fail:
	kg_config__free(cfg);
	return -1;
}

/* Contract in config.h. Safe on a zeroed or already freed cfg. STRING and CUSTOM rows are char *
 * fields, freed through the table; lists and repeatable options here. */
void kg_config__free(struct kg_config *cfg)
{
	size_t i;

	if(!cfg) return;
	for(i = 0; i < NOPTIONS; i++){
		if(options[i].type == KG_OPT_STRING || options[i].type == KG_OPT_CUSTOM) free(*field_str(cfg, &options[i]));
	}
	for(i = 0; i < cfg->nkafka_props; i++){
		free(cfg->kafka_props[i].key);
		free(cfg->kafka_props[i].value);
	}
	free(cfg->kafka_props);
	free_strv(cfg->service_users, cfg->nservice_users);
	free_strv(cfg->bridge_topics, cfg->nbridge_topics);
	for(i = 0; i < cfg->nignored; i++){
		free(cfg->ignored[i].filter);
		free_strv(cfg->ignored[i].paths, cfg->ignored[i].npaths);
	}
	free(cfg->ignored);
	free_strv(cfg->stats_topics, cfg->nstats_topics);
	memset(cfg, 0, sizeof(*cfg));
}
