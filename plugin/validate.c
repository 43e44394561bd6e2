/* validate.c -- measurement payload validation (SPEC "Measurement payloads (JSON)"). */
#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "kitgate/record.h"
#include "kitgate/uuid.h"
#include "kitgate/utf8.h"
#include "kitgate/validate.h"

static const char *const reason_names[KG_REASON_COUNT] = {
	[KG_OK] = "ok",
	[KG_TOO_LARGE] = "too_large",
	[KG_MALFORMED] = "malformed",
	[KG_MISSING_FIELD] = "missing_field",
	[KG_BAD_TYPE] = "bad_type",
	[KG_SERIAL_MISMATCH] = "serial_mismatch",
	[KG_BAD_TIME] = "bad_time",
	[KG_BAD_VALUE] = "bad_value",
	[KG_OVERLOAD] = "overload",
	[KG_FOREIGN_PERIPHERAL] = "foreign_peripheral",
	[KG_UNKNOWN_PERIPHERAL] = "unknown_peripheral",
	[KG_UNKNOWN_QUANTITY_TYPE] = "unknown_quantity_type",
};

const char *kg_reason__name(enum kg_reason r)
{
	if((int)r < 0 || r >= KG_REASON_COUNT) return "unknown";
	return reason_names[r];
}

#define TWO_POW_53 9007199254740992.0

/* 1 if d is an integer that a double represents exactly (|d| <= 2^53). */
static int is_integral(double d)
{
	return isfinite(d) && d == trunc(d) && d >= -TWO_POW_53 && d <= TWO_POW_53;
}

struct vctx {
	const cJSON *root;
	const char **detail;
};

static enum kg_reason fail(struct vctx *c, enum kg_reason r, const char *detail)
{
	if(c->detail) *c->detail = detail;
	return r;
}

/* A required field, or NULL with *r set to KG_MISSING_FIELD. */
static const cJSON *field(struct vctx *c, const char *name, enum kg_reason *r)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(c->root, name);
	if(!it) *r = fail(c, KG_MISSING_FIELD, name);
	return it;
}

/* Epoch-ms time field: number (else bad_type), integral, >= 0 and <= limit_ms (else bad_time). */
static enum kg_reason get_time(struct vctx *c, const char *name, int64_t limit_ms, int64_t *out)
{
	enum kg_reason r = KG_OK;
	const cJSON *it = field(c, name, &r);
	double d;

	if(!it) return r;
	if(!cJSON_IsNumber(it)) return fail(c, KG_BAD_TYPE, name);
	d = it->valuedouble;
	if(!is_integral(d) || d < 0) return fail(c, KG_BAD_TIME, name);
	*out = (int64_t)d;
	if(*out > limit_ms) return fail(c, KG_BAD_TIME, name);
	return KG_OK;
}

/* Positive int32 id field (peripheral, quantityType): anything else is bad_type. */
static enum kg_reason get_id32(struct vctx *c, const char *name, int32_t *out)
{
	enum kg_reason r = KG_OK;
	const cJSON *it = field(c, name, &r);
	double d;

	if(!it) return r;
	if(!cJSON_IsNumber(it)) return fail(c, KG_BAD_TYPE, name);
	d = it->valuedouble;
	if(!is_integral(d) || d < 1 || d > INT32_MAX) return fail(c, KG_BAD_TYPE, name);
	*out = (int32_t)d;
	return KG_OK;
}

/* "values" of an aggregate: object (else bad_type) of 1..KG_AGG_MAX finite numbers whose names
 * are 1..KG_AGG_NAME_MAX characters (else bad_value). Stored in document order. */
static enum kg_reason get_values(struct vctx *c, struct kg_record *out)
{
	enum kg_reason r = KG_OK;
	const cJSON *obj = field(c, "values", &r);
	const cJSON *it;
	int n = 0;

	if(!obj) return r;
	if(!cJSON_IsObject(obj)) return fail(c, KG_BAD_TYPE, "values");
	cJSON_ArrayForEach(it, obj){
		size_t nlen;

		if(n >= KG_AGG_MAX) return fail(c, KG_BAD_VALUE, "values");
		if(!it->string || !cJSON_IsNumber(it) || !isfinite(it->valuedouble)){
			return fail(c, KG_BAD_VALUE, "values");
		}
		/* The name came out of validated UTF-8 or a \u escape cJSON checked; check again
		 * rather than trust the library for what we store. */
		nlen = strlen(it->string);
		if(nlen < 1 || nlen > KG_AGG_NAME_MAX * 4
				|| !kg_utf8__valid((const uint8_t *)it->string, nlen)
				|| kg_utf8__chars(it->string, nlen) > KG_AGG_NAME_MAX){
			return fail(c, KG_BAD_VALUE, "values");
		}
		memcpy(out->values[n].name, it->string, nlen + 1);
		out->values[n].value = it->valuedouble;
		n++;
	}
	if(n == 0) return fail(c, KG_BAD_VALUE, "values");
	out->nvalues = (uint8_t)n;
	return KG_OK;
}

/* Checks of the parsed object, in field order; the first failure wins. */
static enum kg_reason check_object(struct vctx *c, int kind, const char *serial, size_t serial_len,
		int64_t limit_ms, struct kg_record *out)
{
	enum kg_reason r = KG_OK;
	const cJSON *it;

	it = field(c, "id", &r);
	if(!it) return r;
	if(!cJSON_IsString(it) || kg_uuid__parse(it->valuestring, strlen(it->valuestring), out->id)){
		return fail(c, KG_BAD_TYPE, "id");
	}

	it = cJSON_GetObjectItemCaseSensitive(c->root, "kitSerial");
	if(it){
		size_t n;
		if(!cJSON_IsString(it)) return fail(c, KG_BAD_TYPE, "kitSerial");
		n = strlen(it->valuestring);
		if(n > 0 && (n != serial_len || memcmp(it->valuestring, serial, n) != 0)){
			return fail(c, KG_SERIAL_MISMATCH, "kitSerial");
		}
	}
	memcpy(out->serial, serial, serial_len);
	out->serial[serial_len] = '\0';

	if(kind == KG_KIND_RAW){
		if((r = get_time(c, "datetime", limit_ms, &out->datetime_ms)) != KG_OK) return r;
	}else{
		if((r = get_time(c, "datetimeStart", limit_ms, &out->start_ms)) != KG_OK) return r;
		if((r = get_time(c, "datetimeEnd", limit_ms, &out->end_ms)) != KG_OK) return r;
		if(out->end_ms < out->start_ms) return fail(c, KG_BAD_TIME, "datetimeEnd");
	}
	if((r = get_id32(c, "peripheral", &out->peripheral)) != KG_OK) return r;
	if((r = get_id32(c, "quantityType", &out->quantity_type)) != KG_OK) return r;

	if(kind == KG_KIND_RAW){
		it = field(c, "value", &r);
		if(!it) return r;
		if(!cJSON_IsNumber(it)) return fail(c, KG_BAD_TYPE, "value");
		if(!isfinite(it->valuedouble)) return fail(c, KG_BAD_VALUE, "value");
		out->value = it->valuedouble;
		return KG_OK;
	}
	return get_values(c, out);
}

/* ---- parser differentials: what cJSON reads differently from other JSON parsers ---- */

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

#define DUP_QUADRATIC_MAX 32

/* 1 if two members of obj have the same name (cJSON keeps both and finds the first; most other
 * parsers keep the last), 0 if not, -1 on out of memory. Pairwise for the few members a
 * measurement has; sorted (one allocation, O(n log n)) beyond DUP_QUADRATIC_MAX, so a payload of
 * thousands of keys costs the broker thread no more than parsing it. */
static int duplicate_names(const cJSON *obj)
{
	const cJSON *a, *b;
	const char **names;
	size_t n = 0, i;
	int dup = 0;

	for(a = obj->child; a; a = a->next) n++;
	if(n <= DUP_QUADRATIC_MAX){
		for(a = obj->child; a; a = a->next){
			for(b = a->next; b; b = b->next){
				if(!strcmp(a->string, b->string)) return 1;
			}
		}
		return 0;
	}
	names = malloc(n * sizeof(*names));
	if(!names) return -1;
	for(i = 0, a = obj->child; a; a = a->next) names[i++] = a->string;
	qsort(names, n, sizeof(*names), cmp_names);
	for(i = 1; i < n && !dup; i++) dup = !strcmp(names[i - 1], names[i]);
	free(names);
	return dup;
}

/* 1 if a string of the (syntactically valid) JSON text holds the escape \u0000: cJSON's C
 * strings end there ("k-1\u0000x" would read as "k-1"), other parsers keep the rest. */
static int has_escaped_nul(const char *text, size_t len)
{
	int in_string = 0;

	if(!memmem(text, len, "\\u0000", 6)) return 0; /* the common case: one fast scan */
	for(size_t i = 0; i < len; i++){
		if(text[i] == '"'){
			in_string = !in_string;
		}else if(in_string && text[i] == '\\'){
			if(i + 5 < len && !memcmp(text + i + 1, "u0000", 5)) return 1;
			i++; /* the escaped character: never a closing quote */
		}
	}
	return 0;
}

/* See validate.h. Order: too_large (before anything is read), then the topic serial, then
 * malformed (empty, UTF-8, JSON syntax, trailing bytes, not an object), then the fields in
 * document order of the SPEC example. cJSON allocates during the call; everything is freed before
 * returning. Broker thread (any thread). */
enum kg_reason kg_validate__measurement(int kind, const char *serial, size_t serial_len,
		const void *payload, size_t len, int64_t now_ms, const struct kg_limits *limits,
		struct kg_record *out, const char **detail)
{
	struct vctx c = {NULL, detail};
	const char *text = payload;
	const char *end = NULL;
	int64_t limit_ms;
	cJSON *root;
	enum kg_reason r;

	assert(limits && out);
	assert(kind == KG_KIND_RAW || kind == KG_KIND_AGGREGATE);
	if(detail) *detail = "";
	if(len > limits->max_payload) return fail(&c, KG_TOO_LARGE, "payload");
	/* A topic serial the record cannot hold is not the publisher's payload's fault and not a
	 * kitSerial disagreement either: the topic itself is unusable, so the message is malformed.
	 * The ACL layer normally refuses such topics before we get here. */
	if(serial_len > KG_SERIAL_MAX) return fail(&c, KG_MALFORMED, "serial too long");
	if(!serial || serial_len == 0) return fail(&c, KG_MALFORMED, "serial empty");
	if(len == 0 || !payload) return fail(&c, KG_MALFORMED, "empty");
	if(!kg_utf8__valid(payload, len)) return fail(&c, KG_MALFORMED, "utf8");
	/* cJSON keeps raw NUL bytes inside strings but its C strings end there: refuse them. */
	if(memchr(payload, '\0', len)) return fail(&c, KG_MALFORMED, "nul byte");

	/* Not require_null_terminated: with a length, cJSON 1.7.15 then demands a NUL inside that
	 * length, which a non-NUL-terminated payload never has. Trailing bytes are checked here. */
	root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	if(!root) return fail(&c, KG_MALFORMED, "json");
	assert(end >= text && end <= text + len);
	while(end < text + len && (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')) end++;
	if(end != text + len){
		cJSON_Delete(root);
		return fail(&c, KG_MALFORMED, "trailing data");
	}
	if(!cJSON_IsObject(root)){
		cJSON_Delete(root);
		return fail(&c, KG_MALFORMED, "not an object");
	}
	/* SPEC: duplicate keys (object and aggregate values) and NUL escapes are malformed, so that
	 * subscribers and sinks never read different values from one message (found by fuzz_validate) */
	r = duplicate_names(root) ? KG_MALFORMED : KG_OK; /* out of memory (-1) refuses too */
	if(r == KG_OK && kind == KG_KIND_AGGREGATE){
		const cJSON *vals = cJSON_GetObjectItemCaseSensitive(root, "values");
		if(cJSON_IsObject(vals) && duplicate_names(vals)) r = KG_MALFORMED;
	}
	if(r != KG_OK){
		cJSON_Delete(root);
		return fail(&c, KG_MALFORMED, "duplicate key");
	}
	if(has_escaped_nul(text, len)){
		cJSON_Delete(root);
		return fail(&c, KG_MALFORMED, "nul byte");
	}

	if(now_ms > 0 && limits->max_clock_skew_ms > INT64_MAX - now_ms){
		limit_ms = INT64_MAX;
	}else{
		limit_ms = now_ms + limits->max_clock_skew_ms;
	}
	kg_record__reset(out, (uint8_t)kind);
	c.root = root;
	r = check_object(&c, kind, serial, serial_len, limit_ms, out);
	cJSON_Delete(root);
	if(r == KG_OK && detail) *detail = "";
	return r;
}

/* See validate.h. The rules that do not depend on the wire format, in the SPEC's field order;
 * used by decoders that fill a record from a typed format (Cap'n Proto), which map what does
 * not fit the record to values these rules refuse (a time over INT64_MAX to -1, an unusable
 * aggregate value list to nvalues 0). Pure, any thread. */
enum kg_reason kg_validate__record(const struct kg_record *rec, int64_t now_ms,
		const struct kg_limits *limits, const char **detail)
{
	struct vctx c = {NULL, detail};
	int64_t limit_ms;

	assert(rec && limits);
	if(now_ms > 0 && limits->max_clock_skew_ms > INT64_MAX - now_ms) limit_ms = INT64_MAX;
	else limit_ms = now_ms + limits->max_clock_skew_ms;
	if(rec->kind == KG_KIND_RAW){
		if(rec->datetime_ms < 0 || rec->datetime_ms > limit_ms) return fail(&c, KG_BAD_TIME, "datetime");
	}else{
		if(rec->start_ms < 0 || rec->start_ms > limit_ms) return fail(&c, KG_BAD_TIME, "datetimeStart");
		if(rec->end_ms < 0 || rec->end_ms > limit_ms) return fail(&c, KG_BAD_TIME, "datetimeEnd");
		if(rec->end_ms < rec->start_ms) return fail(&c, KG_BAD_TIME, "datetimeEnd");
	}
	if(rec->peripheral < 1) return fail(&c, KG_BAD_TYPE, "peripheral");
	if(rec->quantity_type < 1) return fail(&c, KG_BAD_TYPE, "quantityType");
	if(rec->kind == KG_KIND_RAW){
		if(!isfinite(rec->value)) return fail(&c, KG_BAD_VALUE, "value");
		return KG_OK;
	}
	if(rec->nvalues < 1 || rec->nvalues > KG_AGG_MAX) return fail(&c, KG_BAD_VALUE, "values");
	for(int i = 0; i < rec->nvalues; i++){
		const char *name = rec->values[i].name;
		size_t nlen = strnlen(name, sizeof(rec->values[i].name));

		if(nlen < 1 || nlen == sizeof(rec->values[i].name)
				|| !kg_utf8__valid((const uint8_t *)name, nlen)
				|| kg_utf8__chars(name, nlen) > KG_AGG_NAME_MAX
				|| !isfinite(rec->values[i].value)){
			return fail(&c, KG_BAD_VALUE, "values");
		}
	}
	return KG_OK;
}
