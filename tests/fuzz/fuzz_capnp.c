/* fuzz_capnp.c -- libFuzzer target for the packed Cap'n Proto decoder (kg_capnp__decode) and the
 * payload_format auto dispatch. The first input byte picks the kind (raw/aggregate); the rest is
 * the payload. Invariants checked: no crash, no exception escaping, and an accepted record always
 * satisfies the format-independent rules and re-encodes to a message that decodes to the same
 * record.
 *
 * Until KITGATE_FUZZ is in the CMake, build by hand (after a normal build made build/schema/):
 *   F='-g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Ibuild/schema -D_GNU_SOURCE'
 *   clang $F -fsanitize=fuzzer-no-link -c plugin/ingest/validate.c plugin/ingest/payload.c plugin/util/uuid.c plugin/util/utf8.c
 *   clang $F -c tests/fuzz/fuzz_capnp.c
 *   clang++ $F -std=c++17 -c plugin/ingest/capnp_decode.cpp build/schema/astroplant.capnp.c++
 *   clang++ $F *.o -o fuzz_capnp -lcapnp -lkj -lcjson -lm
 *   ./fuzz_capnp -max_len=2048 tests/fuzz/corpus/fuzz_capnp
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kitgate/capnp.h"
#include "kitgate/config.h"
#include "kitgate/payload.h"
#include "kitgate/record.h"
#include "kitgate/validate.h"

#define SERIAL "k-test-0001"
#define NOW 1700000000000LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct kg_limits lim = {16384, 86400000LL};
	struct kg_record rec, again;
	const char *detail = NULL;
	static uint8_t buf[1 << 16];
	enum kg_reason r;
	int kind;
	size_t n;

	if(size < 1) return 0;
	kind = (data[0] & 1) ? KG_KIND_AGGREGATE : KG_KIND_RAW;
	data++;
	size--;

	r = kg_capnp__decode(kind, SERIAL, strlen(SERIAL), data, size, NOW, &lim, &rec, &detail);
	if(!detail) abort();
	if(r != KG_OK){
		if(r >= KG_OVERLOAD) abort(); /* the decoder never says overload */
		return 0;
	}
	if(rec.kind != kind || strcmp(rec.serial, SERIAL) != 0) abort();
	if(kg_validate__record(&rec, NOW, &lim, NULL) != KG_OK) abort();
	/* Re-encode and decode: the same record. */
	n = kg_capnp__encode(&rec, buf, sizeof(buf));
	if(n == 0 || n > sizeof(buf)) abort();
	if(kg_capnp__decode(kind, SERIAL, strlen(SERIAL), buf, n, NOW, &lim, &again, NULL) != KG_OK) abort();
	if(memcmp(again.id, rec.id, 16) || again.peripheral != rec.peripheral
			|| again.quantity_type != rec.quantity_type || again.nvalues != rec.nvalues) abort();
	if(kind == KG_KIND_RAW && (again.datetime_ms != rec.datetime_ms
				|| memcmp(&again.value, &rec.value, sizeof(double)))) abort();
	if(kind == KG_KIND_AGGREGATE){
		if(again.start_ms != rec.start_ms || again.end_ms != rec.end_ms) abort();
		for(int i = 0; i < rec.nvalues; i++){
			if(strcmp(again.values[i].name, rec.values[i].name)) abort();
		}
	}
	/* auto dispatch agrees whenever the payload does not look like JSON. */
	if(!kg_payload__is_json(data, size)){
		if(kg_payload__validate(KG_PAYLOAD_AUTO, kind, SERIAL, strlen(SERIAL), data, size, NOW, &lim,
					&again, NULL) != KG_OK) abort();
	}
	return 0;
}
