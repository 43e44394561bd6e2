/* fuzz_sparkplug.c -- libFuzzer target for plugin/bridge/sparkplug.c: any bytes decode or are refused, never crash, and what decodes is valid JSON. */
/* Until KITGATE_FUZZ builds tests/fuzz/ (hygiene branch), build it by hand once
 * `cmake --build build --target kitgate_sparkplug_pb` has generated build/proto/sparkplug_b.pb-c.[ch]:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -Ibuild/proto \
 *     plugin/bridge/sparkplug.c plugin/util/utf8.c plugin/util/numfmt.c build/proto/sparkplug_b.pb-c.c \
 *     tests/fuzz/fuzz_sparkplug.c -lprotobuf-c -lcjson -lcrypto -lm -o fuzz_sparkplug
 *   ./fuzz_sparkplug -max_total_time=600 corpus/ tests/fuzz/corpus/fuzz_sparkplug/ */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "kitgate/sparkplug.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *json = NULL;
	size_t len = 0;
	int rc = kg_sparkplug__to_json(data, size, &json, &len);

	if(rc == 0){
		cJSON *back;

		/* the output is one JSON object, parsed back in full */
		if(!json || len != strlen(json)) abort();
		back = cJSON_ParseWithLength(json, len);
		if(!back || !cJSON_IsObject(back)) abort();
		cJSON_Delete(back);
		free(json);
	}else if(rc != KG_SPARKPLUG_INVALID && rc != KG_SPARKPLUG_NOMEM){
		abort();
	}else if(json || len){
		abort();
	}
	return 0;
}
