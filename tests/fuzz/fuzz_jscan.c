/* fuzz_jscan.c -- differential libFuzzer target: kg_validate__measurement (jscan, one strict pass)
 * against the validator it replaced (cJSON's tree; tests/fuzz/ref_validate_cjson.inc), with
 * jansson as the judge of RFC 8259 where they disagree.
 *
 * Input: one byte choosing the kind ('a' aggregate, anything else raw), then the payload as
 * published on kit/k-fuzz-0001/measurement/<kind>. Invariants:
 *   - where both agree on the reason, the detail is the same, and an accepted record encodes to
 *     the same bytes (every number bit for bit as strtod reads it);
 *   - where they disagree, the new validator refuses the payload as malformed and jansson refuses
 *     it as JSON too: the only differences allowed are cJSON's leniencies (byte order mark,
 *     control characters as whitespace or in strings, leading zeros, '1.', '-.5', invalid \u
 *     escapes read as NUL). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ref_validate_cjson.inc"

#define SERIAL "k-fuzz-0001"
#define NOW_MS 1700000000000LL

#define CHECK(cond) do{ if(!(cond)){ fprintf(stderr, "fuzz_jscan: invariant failed: %s (line %d)\n", \
	#cond, __LINE__); abort(); } }while(0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct kg_limits lim = {16384, 86400000LL};
	struct kg_record rn, ro;
	uint8_t en[KG_RECORD_MAX_FIXED], eo[KG_RECORD_MAX_FIXED];
	const char *dn = NULL, *dold = NULL;
	enum kg_reason r_new, r_old;
	int kind;

	if(size < 1) return 0;
	kind = data[0] == 'a' ? KG_KIND_AGGREGATE : KG_KIND_RAW;
	data++;
	size--;
	r_new = kg_validate__measurement(kind, SERIAL, strlen(SERIAL), size ? data : NULL, size, NOW_MS, &lim, &rn, &dn);
	r_old = ref_validate__measurement(kind, SERIAL, strlen(SERIAL), size ? data : NULL, size, NOW_MS, &lim, &ro, &dold);
	CHECK(dn != NULL && dold != NULL);
	if(r_new == r_old && !strcmp(dn, dold)){
		if(r_new == KG_OK){
			size_t nn = kg_record__encode(&rn, en, sizeof(en)), no = kg_record__encode(&ro, eo, sizeof(eo));
			CHECK(nn > 0 && nn <= sizeof(en) && nn == no);
			if(memcmp(en, eo, nn)){
				fprintf(stderr, "fuzz_jscan: accepted by both, records differ\n");
				abort();
			}
		}
		return 0;
	}
	/* a difference: only where the old validator was lenient about RFC 8259 */
	{
		json_error_t err;
		json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);

		if(r_new != KG_MALFORMED || j){
			fprintf(stderr, "fuzz_jscan: new %s (%s), old %s (%s), jansson %s\n", kg_reason__name(r_new), dn,
					kg_reason__name(r_old), dold, j ? "accepts it" : "refuses it");
		}
		CHECK(r_new == KG_MALFORMED);
		CHECK(j == NULL);
	}
	return 0;
}
