/* fuzz_config.c -- libFuzzer target for the configuration parser (kg_config__parse), including
 * the kafka.<property> check by librdkafka (kg_rdkconf__validate).
 *
 * Input: lines "key value" (split at the first space; a line without one is a key with an empty
 * value), at most 64, passed as plugin_opt_* options in order. Invariants, besides ASan/UBSan and
 * LeakSanitizer: success or -1 with exactly one non-empty line of error; on failure cfg is all
 * zero; on success the parsed values respect their documented ranges, and parsing is
 * deterministic (a second parse gives the same answer). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kitgate/config.h"

#define CHECK(cond) do{ if(!(cond)){ fprintf(stderr, "fuzz_config: invariant failed: %s (line %d)\n", \
	#cond, __LINE__); abort(); } }while(0)

#define MAX_OPTS 64

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const env[] = {
		"KITGATE_SINK", "DATABASE_URL", "KAFKA_HOST", "KAFKA_PORT", "KAFKA_USERNAME", "KAFKA_PASSWORD", "LOG_LEVEL",
	};

	(void)argc;
	(void)argv;
	for(size_t i = 0; i < sizeof(env) / sizeof(env[0]); i++) unsetenv(env[i]); /* options only */
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kg_opt opts[MAX_OPTS];
	struct kg_config cfg, zero;
	char *text, *line, *save = NULL;
	char err[512], err2[512];
	int nopts = 0, rc, rc2;

	if(size > 8192) return 0;
	text = malloc(size + 1);
	if(!text) return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	for(line = strtok_r(text, "\n", &save); line && nopts < MAX_OPTS; line = strtok_r(NULL, "\n", &save)){
		char *sp = strchr(line, ' ');

		if(sp) *sp = '\0';
		opts[nopts].key = line;
		opts[nopts].value = sp ? sp + 1 : line + strlen(line);
		nopts++;
	}

	memset(&zero, 0, sizeof(zero));
	rc = kg_config__parse(&cfg, opts, nopts, err, sizeof(err));
	CHECK(rc == 0 || rc == -1);
	if(rc){
		CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
		CHECK(!memcmp(&cfg, &zero, sizeof(cfg)));
	}else{
		CHECK(cfg.sink == KG_SINK_POSTGRES || cfg.sink == KG_SINK_KAFKA || cfg.sink == KG_SINK_NONE);
		CHECK(cfg.batch_size >= 1 && cfg.batch_size <= 100000);
		CHECK(cfg.batch_ms >= 0 && cfg.batch_ms <= 60000);
		CHECK(cfg.queue_limit >= 1);
		CHECK(cfg.max_payload >= 1);
		CHECK(cfg.spool_dir && cfg.kafka_topic_raw && cfg.kafka_topic_aggregate && cfg.kafka_topic_separator);
		for(size_t i = 0; i < cfg.nservice_users; i++) CHECK(cfg.service_users[i][0] != '\0');
		kg_config__free(&cfg);
	}
	rc2 = kg_config__parse(&cfg, opts, nopts, err2, sizeof(err2));
	CHECK(rc2 == rc);
	if(rc2 == 0) kg_config__free(&cfg);
	else CHECK(!strcmp(err, err2));
	free(text);
	return 0;
}
