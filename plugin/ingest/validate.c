/* validate.c -- measurement payload validation (SPEC "Measurement payloads (JSON)"). */
#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kitgate/jscan.h"
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
	[KG_RATE_LIMITED] = "rate_limited",
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

/* The latest acceptable measurement time: now_ms plus the allowed clock skew, INT64_MAX when
 * that would overflow. */
static int64_t time_limit(int64_t now_ms, const struct kg_limits *limits)
{
	if(now_ms > 0 && limits->max_clock_skew_ms > INT64_MAX - now_ms) return INT64_MAX;
	return now_ms + limits->max_clock_skew_ms;
}

/* 1 if the nlen bytes at name (nlen >= 1 checked here) are valid UTF-8 of at most KG_AGG_NAME_MAX
 * characters: an aggregate value's name. */
static int agg_name_ok(const char *name, size_t nlen)
{
	return nlen >= 1 && kg_utf8__valid((const uint8_t *)name, nlen) && kg_utf8__chars(name, nlen) <= KG_AGG_NAME_MAX;
}

struct vctx {
	const struct kg_jscan *js;
	const char **detail;
};

static enum kg_reason fail(struct vctx *c, enum kg_reason r, const char *detail)
{
	if(c->detail) *c->detail = detail;
	return r;
}

/* The top-level members the rules read (every one of them is also checked for duplicates by
 * bit mask; any other name goes through the scanner's name list). */
enum { F_ID, F_KIT_SERIAL, F_DATETIME, F_DATETIME_START, F_DATETIME_END, F_PERIPHERAL,
	F_QUANTITY_TYPE, F_VALUE, F_VALUES, F_COUNT };
static const struct kg_jname field_names[F_COUNT] = {
	[F_ID] = KG_JNAME("id"), [F_KIT_SERIAL] = KG_JNAME("kitSerial"), [F_DATETIME] = KG_JNAME("datetime"),
	[F_DATETIME_START] = KG_JNAME("datetimeStart"), [F_DATETIME_END] = KG_JNAME("datetimeEnd"),
	[F_PERIPHERAL] = KG_JNAME("peripheral"), [F_QUANTITY_TYPE] = KG_JNAME("quantityType"),
	[F_VALUE] = KG_JNAME("value"), [F_VALUES] = KG_JNAME("values"),
};
_Static_assert(F_COUNT <= KG_JSCAN_FIELDS_MAX, "jscan captures too few fields");

/* A required field, or NULL with *r set to KG_MISSING_FIELD. */
static const struct kg_jval *field(struct vctx *c, int f, enum kg_reason *r)
{
	const struct kg_jval *it = &c->js->field[f];

	if(it->type == KG_J_NONE){
		*r = fail(c, KG_MISSING_FIELD, field_names[f].s);
		return NULL;
	}
	return it;
}

/* Epoch-ms time field: number (else bad_type), integral, >= 0 and <= limit_ms (else bad_time). */
static enum kg_reason get_time(struct vctx *c, int f, int64_t limit_ms, int64_t *out)
{
	enum kg_reason r = KG_OK;
	const struct kg_jval *it = field(c, f, &r);
	double d;

	if(!it) return r;
	if(it->type != KG_J_NUMBER) return fail(c, KG_BAD_TYPE, field_names[f].s);
	d = kg_jscan__number(&it->text);
	if(!is_integral(d) || d < 0) return fail(c, KG_BAD_TIME, field_names[f].s);
	*out = (int64_t)d;
	if(*out > limit_ms) return fail(c, KG_BAD_TIME, field_names[f].s);
	return KG_OK;
}

/* Positive int32 id field (peripheral, quantityType): anything else is bad_type. */
static enum kg_reason get_id32(struct vctx *c, int f, int32_t *out)
{
	enum kg_reason r = KG_OK;
	const struct kg_jval *it = field(c, f, &r);
	double d;

	if(!it) return r;
	if(it->type != KG_J_NUMBER) return fail(c, KG_BAD_TYPE, field_names[f].s);
	d = kg_jscan__number(&it->text);
	if(!is_integral(d) || d < 1 || d > INT32_MAX) return fail(c, KG_BAD_TYPE, field_names[f].s);
	*out = (int32_t)d;
	return KG_OK;
}

/* "values" of an aggregate: object (else bad_type) of 1..KG_AGG_MAX finite numbers whose names
 * are 1..KG_AGG_NAME_MAX characters (else bad_value). Stored in document order; the scanner
 * listed its first KG_AGG_MAX members in members[] (names decoded) and counted them all. */
static enum kg_reason get_values(struct vctx *c, const struct kg_jmember *members, struct kg_record *out)
{
	enum kg_reason r = KG_OK;
	const struct kg_jval *obj = field(c, F_VALUES, &r);
	size_t n = c->js->nmembers;

	if(!obj) return r;
	if(obj->type != KG_J_OBJECT) return fail(c, KG_BAD_TYPE, "values");
	if(n == 0 || n > KG_AGG_MAX) return fail(c, KG_BAD_VALUE, "values");
	for(size_t i = 0; i < n; i++){
		const struct kg_jmember *m = &members[i];
		size_t nlen = m->name.len;
		double d;

		if(m->val.type != KG_J_NUMBER) return fail(c, KG_BAD_VALUE, "values");
		d = kg_jscan__number(&m->val.text);
		if(!isfinite(d)) return fail(c, KG_BAD_VALUE, "values");
		/* The name is the decoded text of validated UTF-8 or of checked \u escapes; check again
		 * rather than trust the reader for what we store. */
		if(nlen > KG_AGG_NAME_MAX * 4 || !agg_name_ok(m->name.p, nlen)) return fail(c, KG_BAD_VALUE, "values");
		memcpy(out->values[i].name, m->name.p, nlen);
		out->values[i].name[nlen] = '\0';
		out->values[i].value = d;
	}
	out->nvalues = (uint8_t)n;
	return KG_OK;
}

/* Checks of the scanned object, in field order; the first failure wins. */
static enum kg_reason check_object(struct vctx *c, int kind, const char *serial, size_t serial_len,
		int64_t limit_ms, const struct kg_jmember *members, struct kg_record *out)
{
	enum kg_reason r = KG_OK;
	const struct kg_jval *it;
	char buf[KG_SERIAL_MAX + 1];
	size_t n;

	it = field(c, F_ID, &r);
	if(!it) return r;
	if(it->type != KG_J_STRING) return fail(c, KG_BAD_TYPE, "id");
	n = kg_jscan__string(&it->text, buf, sizeof(buf));
	if(n > sizeof(buf) || kg_uuid__parse(buf, n, out->id)) return fail(c, KG_BAD_TYPE, "id");

	it = &c->js->field[F_KIT_SERIAL];
	if(it->type != KG_J_NONE){
		if(it->type != KG_J_STRING) return fail(c, KG_BAD_TYPE, "kitSerial");
		n = kg_jscan__string(&it->text, buf, sizeof(buf));
		if(n > 0 && (n != serial_len || memcmp(buf, serial, n) != 0)){
			return fail(c, KG_SERIAL_MISMATCH, "kitSerial");
		}
	}
	memcpy(out->serial, serial, serial_len);
	out->serial[serial_len] = '\0';

	if(kind == KG_KIND_RAW){
		if((r = get_time(c, F_DATETIME, limit_ms, &out->datetime_ms)) != KG_OK) return r;
	}else{
		if((r = get_time(c, F_DATETIME_START, limit_ms, &out->start_ms)) != KG_OK) return r;
		if((r = get_time(c, F_DATETIME_END, limit_ms, &out->end_ms)) != KG_OK) return r;
		if(out->end_ms < out->start_ms) return fail(c, KG_BAD_TIME, "datetimeEnd");
	}
	if((r = get_id32(c, F_PERIPHERAL, &out->peripheral)) != KG_OK) return r;
	if((r = get_id32(c, F_QUANTITY_TYPE, &out->quantity_type)) != KG_OK) return r;

	if(kind == KG_KIND_RAW){
		double d;

		it = field(c, F_VALUE, &r);
		if(!it) return r;
		if(it->type != KG_J_NUMBER) return fail(c, KG_BAD_TYPE, "value");
		d = kg_jscan__number(&it->text);
		if(!isfinite(d)) return fail(c, KG_BAD_VALUE, "value");
		out->value = d;
		return KG_OK;
	}
	return get_values(c, members, out);
}

/* See validate.h. Order: too_large (before anything is read), then the topic serial, then
 * malformed (empty, UTF-8, NUL bytes, then jscan's: JSON syntax, trailing bytes, not an object,
 * duplicate names, \u0000 escapes), then the fields in document order of the SPEC example. One
 * pass over the text (jscan.c), no tree; allocates only for objects of many members or many
 * escaped names, freed before returning. Broker thread (any thread). */
enum kg_reason kg_validate__measurement(int kind, const char *serial, size_t serial_len,
		const void *payload, size_t len, int64_t now_ms, const struct kg_limits *limits,
		struct kg_record *out, const char **detail)
{
	struct kg_jmember members[KG_AGG_MAX];
	struct kg_jscan js;
	struct vctx c = {&js, detail};
	int64_t limit_ms;
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
	/* A NUL byte is not JSON outside strings and a control character inside them; refused
	 * before parsing under its own name (cJSON's C strings used to end there). */
	if(memchr(payload, '\0', len)) return fail(&c, KG_MALFORMED, "nul byte");

	js.fields = field_names;
	js.nfields = F_COUNT;
	/* SPEC: duplicate keys (object and aggregate values) and NUL escapes are malformed, so that
	 * subscribers and sinks never read different values from one message (found by fuzz_validate) */
	js.list_field = kind == KG_KIND_AGGREGATE ? F_VALUES : -1;
	js.members = members;
	js.members_cap = KG_AGG_MAX;
	switch(kg_jscan__object(&js, payload, len)){
	case KG_JSCAN_OK: r = KG_OK; break;
	case KG_JSCAN_TRAILING: r = fail(&c, KG_MALFORMED, "trailing data"); break;
	case KG_JSCAN_NOT_OBJECT: r = fail(&c, KG_MALFORMED, "not an object"); break;
	case KG_JSCAN_DUPLICATE: r = fail(&c, KG_MALFORMED, "duplicate key"); break;
	case KG_JSCAN_NUL_ESCAPE: r = fail(&c, KG_MALFORMED, "nul byte"); break;
	case KG_JSCAN_NOMEM: r = fail(&c, KG_OVERLOAD, "out of memory"); break; /* the broker's fault, not the kit's */
	default: r = fail(&c, KG_MALFORMED, "json"); break;
	}
	if(r != KG_OK){
		kg_jscan__done(&js);
		return r;
	}

	limit_ms = time_limit(now_ms, limits);
	kg_record__reset(out, (uint8_t)kind);
	r = check_object(&c, kind, serial, serial_len, limit_ms, members, out);
	kg_jscan__done(&js);
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
	limit_ms = time_limit(now_ms, limits);
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

		if(nlen == sizeof(rec->values[i].name) || !agg_name_ok(name, nlen) || !isfinite(rec->values[i].value)){
			return fail(&c, KG_BAD_VALUE, "values");
		}
	}
	return KG_OK;
}
