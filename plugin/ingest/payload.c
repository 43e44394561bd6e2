/* payload.c -- payload_format dispatch: JSON (validate.c) or packed Cap'n Proto (capnp_decode.cpp). */
#include "kitgate/capnp.h"
#include "kitgate/payload.h"

int kg_payload__is_json(const void *payload, size_t len)
{
	const unsigned char *p = payload;

	for(size_t i = 0; i < len; i++){
		if(p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r') continue;
		return p[i] == '{';
	}
	return 0;
}

/* See payload.h. */
enum kg_reason kg_payload__validate(enum kg_payload_format format, int kind, const char *serial,
		size_t serial_len, const void *payload, size_t len, int64_t now_ms,
		const struct kg_limits *limits, struct kg_record *out, const char **detail)
{
	if(format == KG_PAYLOAD_CAPNP || (format == KG_PAYLOAD_AUTO && len > 0 && !kg_payload__is_json(payload, len))){
		return kg_capnp__decode(kind, serial, serial_len, payload, len, now_ms, limits, out, detail);
	}
	return kg_validate__measurement(kind, serial, serial_len, payload, len, now_ms, limits, out, detail);
}
