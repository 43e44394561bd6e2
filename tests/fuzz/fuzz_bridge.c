/* fuzz_bridge.c -- libFuzzer target for the bridge routes: Kafka topic naming
 * (kg_bridge__kafka_topic), route selection (kg_bridge__wanted) and the ignored_attributes /
 * timestamp_attribute transform (kg_bridge__transform).
 *
 * Input, '\n'-separated: kafka_topic_separator, one ignored_attributes value, timestamp_attribute,
 * the MQTT topic, then the payload (the rest, any bytes). Configuration that kg_config__parse
 * refuses still exercises the naming with the default separator. Invariants, besides ASan/UBSan:
 *   - a Kafka topic name is 1..249 bytes of [A-Za-z0-9._-], not "." or "..";
 *   - bridge_topics "#" wants every topic not starting with '$';
 *   - the transform returns the payload itself unless it removed something; a rewritten value is
 *     valid JSON in which no removed path's final key is left where the path pointed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "kitgate/bridge.h"
#include "kitgate/config.h"
#include "kitgate/topic.h"

#define CHECK(cond) do{ if(!(cond)){ fprintf(stderr, "fuzz_bridge: invariant failed: %s (line %d)\n", \
	#cond, __LINE__); abort(); } }while(0)

/* The next '\n'-terminated field of [*p, end) as a malloc'd C string (NULL when input ran out). */
static char *next_field(const uint8_t **p, const uint8_t *end)
{
	const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
	size_t n;
	char *s;

	if(!nl) return NULL;
	n = (size_t)(nl - *p);
	s = malloc(n + 1);
	if(!s) return NULL;
	memcpy(s, *p, n);
	s[n] = '\0';
	*p = nl + 1;
	return s;
}

static void check_kafka_name(const char *topic, const char *sep)
{
	char out[250];
	int n = kg_bridge__kafka_topic(topic, sep, out);

	CHECK(n == -1 || (n >= 1 && n <= 249));
	if(n < 0) return;
	CHECK(strlen(out) == (size_t)n);
	CHECK(strspn(out, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == (size_t)n);
	CHECK(strcmp(out, ".") && strcmp(out, ".."));
}

/* The member the dot path points at in root still exists (walking as remove_path does). */
static int path_present(const cJSON *root, const char *path)
{
	char *copy = strdup(path), *seg, *dot;
	const cJSON *cur = root;
	int present;

	if(!copy) return 0;
	seg = copy;
	while((dot = strchr(seg, '.')) != NULL){
		*dot = '\0';
		cur = cJSON_GetObjectItemCaseSensitive(cur, seg);
		if(!cur || !cJSON_IsObject(cur)){
			free(copy);
			return 0;
		}
		seg = dot + 1;
	}
	present = cJSON_GetObjectItemCaseSensitive(cur, seg) != NULL;
	free(copy);
	return present;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *end = data + size;
	char *sep = next_field(&p, end);
	char *ignored = next_field(&p, end);
	char *tsattr = next_field(&p, end);
	char *topic = next_field(&p, end);
	struct kg_opt opts[6];
	int nopts = 0;
	struct kg_config cfg;
	char err[512];

	if(!sep || !ignored || !tsattr || !topic || strlen(topic) == 0) goto out;
	check_kafka_name(topic, sep);
	check_kafka_name(topic, NULL);
	opts[nopts++] = (struct kg_opt){"sink", "none"};
	opts[nopts++] = (struct kg_opt){"bridge_topics", "#"};
	if(sep[0]) opts[nopts++] = (struct kg_opt){"kafka_topic_separator", sep};
	if(ignored[0]) opts[nopts++] = (struct kg_opt){"ignored_attributes", ignored};
	if(tsattr[0]) opts[nopts++] = (struct kg_opt){"timestamp_attribute", tsattr};
	if(kg_config__parse(&cfg, opts, nopts, err, sizeof(err)) == 0){
		const uint8_t *value;
		size_t value_len;
		int owned;
		int64_t ts;

		CHECK(kg_bridge__wanted(&cfg, topic) == (topic[0] != '$'));
		check_kafka_name(topic, cfg.kafka_topic_separator);
		if(kg_bridge__transform(&cfg, topic, p, (size_t)(end - p), &value, &value_len, &owned, &ts) == 0){
			CHECK(ts >= 0);
			if(!owned){
				CHECK(value == p && value_len == (size_t)(end - p));
			}else{
				cJSON *j = cJSON_ParseWithLength((const char *)value, value_len);

				CHECK(j != NULL);
				for(size_t i = 0; i < cfg.nignored; i++){
					if(!kg_topic__matches(cfg.ignored[i].filter, topic)) continue;
					for(size_t k = 0; k < cfg.ignored[i].npaths; k++){
						CHECK(!path_present(j, cfg.ignored[i].paths[k]));
					}
				}
				cJSON_Delete(j);
				free((void *)value);
			}
		}
		kg_config__free(&cfg);
	}else{
		CHECK(err[0] != '\0' && !strchr(err, '\n'));
	}
out:
	free(sep);
	free(ignored);
	free(tsattr);
	free(topic);
	return 0;
}
