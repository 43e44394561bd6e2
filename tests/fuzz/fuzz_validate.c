/* fuzz_validate.c -- libFuzzer target for the JSON measurement validator (kg_validate__measurement).
 *
 * Input: one byte choosing the kind ('a' aggregate, anything else raw), then the payload as
 * published on kit/k-fuzz-0001/measurement/<kind>. Besides ASan/UBSan, every accepted payload must:
 *   - have no duplicate keys, top level or in "values" (SPEC: malformed -- a parser differential);
 *   - survive the record codec: encode -> decode -> encode gives the same bytes;
 *   - yield canonical JSON (kg_json__record) that cJSON parses and that validates again to the
 *     very same record. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "kitgate/json.h"
#include "kitgate/record.h"
#include "kitgate/validate.h"

#define SERIAL "k-fuzz-0001"
#define NOW_MS 1700000000000LL

#define CHECK(cond) do{ if(!(cond)){ fprintf(stderr, "fuzz_validate: invariant failed: %s (line %d)\n", \
	#cond, __LINE__); abort(); } }while(0)

/* 1 if two members of obj share a name. */
static int has_duplicate_keys(const cJSON *obj)
{
	for(const cJSON *a = obj ? obj->child : NULL; a; a = a->next){
		for(const cJSON *b = a->next; b; b = b->next){
			if(a->string && b->string && !strcmp(a->string, b->string)) return 1;
		}
	}
	return 0;
}

static size_t encode(const struct kg_record *rec, uint8_t *buf, size_t cap)
{
	size_t n = kg_record__encode(rec, buf, cap);

	CHECK(n > 0 && n <= cap);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct kg_limits lim = {16384, 86400000LL};
	struct kg_record rec, back, again;
	uint8_t enc[KG_RECORD_MAX_FIXED], enc2[KG_RECORD_MAX_FIXED];
	char json[8192];
	const char *detail = NULL;
	enum kg_reason r;
	size_t n, n2, jl;
	int kind;
	cJSON *root;

	if(size < 1) return 0;
	kind = data[0] == 'a' ? KG_KIND_AGGREGATE : KG_KIND_RAW;
	data++;
	size--;
	r = kg_validate__measurement(kind, SERIAL, strlen(SERIAL), size ? data : NULL, size, NOW_MS, &lim,
			&rec, &detail);
	CHECK((int)r >= 0 && r < KG_REASON_COUNT && r != KG_OVERLOAD);
	CHECK(detail != NULL);
	CHECK(strcmp(kg_reason__name(r), "unknown") != 0);
	if(r != KG_OK) return 0;

	/* no duplicate keys were accepted */
	root = cJSON_ParseWithLength((const char *)data, size);
	CHECK(root && cJSON_IsObject(root));
	CHECK(!has_duplicate_keys(root));
	if(kind == KG_KIND_AGGREGATE) CHECK(!has_duplicate_keys(cJSON_GetObjectItemCaseSensitive(root, "values")));
	cJSON_Delete(root);

	/* the codec */
	CHECK(rec.kind == kind && !strcmp(rec.serial, SERIAL));
	n = encode(&rec, enc, sizeof(enc));
	CHECK(kg_record__decode(enc, n, &back) == 0);
	n2 = encode(&back, enc2, sizeof(enc2));
	CHECK(n2 == n && !memcmp(enc, enc2, n));

	/* canonical JSON: valid, and validates to the same record */
	jl = kg_json__record(&rec, json, sizeof(json));
	CHECK(jl > 0 && jl < sizeof(json));
	root = cJSON_Parse(json);
	CHECK(root != NULL);
	cJSON_Delete(root);
	r = kg_validate__measurement(kind, SERIAL, strlen(SERIAL), json, jl, NOW_MS, &lim, &again, &detail);
	if(r != KG_OK) fprintf(stderr, "fuzz_validate: canonical JSON refused (%s, %s): %s\n", kg_reason__name(r), detail, json);
	CHECK(r == KG_OK);
	n2 = encode(&again, enc2, sizeof(enc2));
	CHECK(n2 == n && !memcmp(enc, enc2, n));
	return 0;
}
