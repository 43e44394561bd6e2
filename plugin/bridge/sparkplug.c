/* sparkplug.c -- Sparkplug B payloads decoded with protobuf-c and turned into JSON (UNS bridge shape, its bugs fixed). */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <protobuf-c/protobuf-c.h>

#include "sparkplug_b.pb-c.h"
#include "kitgate/numfmt.h"
#include "kitgate/sparkplug.h"
#include "kitgate/utf8.h"

typedef Org__Eclipse__Tahu__Protobuf__Payload SpPayload;
typedef Org__Eclipse__Tahu__Protobuf__Payload__Metric SpMetric;
typedef Org__Eclipse__Tahu__Protobuf__Payload__MetaData SpMetaData;
typedef Org__Eclipse__Tahu__Protobuf__Payload__PropertySet SpPropertySet;
typedef Org__Eclipse__Tahu__Protobuf__Payload__PropertySetList SpPropertySetList;
typedef Org__Eclipse__Tahu__Protobuf__Payload__PropertyValue SpPropertyValue;
typedef Org__Eclipse__Tahu__Protobuf__Payload__DataSet SpDataSet;
typedef Org__Eclipse__Tahu__Protobuf__Payload__DataSet__DataSetValue SpDataSetValue;
typedef Org__Eclipse__Tahu__Protobuf__Payload__Template SpTemplate;
typedef Org__Eclipse__Tahu__Protobuf__Payload__Template__Parameter SpParameter;

/* Sparkplug datatypes (spec 6.4.16; DataType enum of proto/sparkplug_b.proto). */
enum {
	DT_INT8 = 1, DT_INT16, DT_INT32, DT_INT64, DT_UINT8, DT_UINT16, DT_UINT32, DT_UINT64,
	DT_FLOAT, DT_DOUBLE, DT_BOOLEAN, DT_STRING, DT_DATETIME, DT_TEXT, DT_UUID, DT_DATASET,
	DT_BYTES, DT_FILE, DT_TEMPLATE, DT_PROPERTYSET, DT_PROPERTYSETLIST,
	DT_INT8ARRAY, DT_INT16ARRAY, DT_INT32ARRAY, DT_INT64ARRAY,
	DT_UINT8ARRAY, DT_UINT16ARRAY, DT_UINT32ARRAY, DT_UINT64ARRAY,
	DT_FLOATARRAY, DT_DOUBLEARRAY, DT_BOOLEANARRAY, DT_STRINGARRAY, DT_DATETIMEARRAY
};

/* One decoded oneof "value", whatever message it came from (Metric, Parameter, DataSetValue,
 * PropertyValue number their cases differently). */
enum val_kind { V_NONE = 0, V_INT, V_LONG, V_FLOAT, V_DOUBLE, V_BOOL, V_STRING, V_BYTES, V_OTHER };
struct val {
	enum val_kind kind;
	uint32_t u32;
	uint64_t u64;
	float f;
	double d;
	int b;
	const char *s;
	ProtobufCBinaryData bytes;
};

/* Status of the JSON building: the first error wins. */
struct ctx {
	int err;     /* 0, KG_SPARKPLUG_INVALID, KG_SPARKPLUG_NOMEM or KG_SPARKPLUG_TOO_BIG */
	size_t out;  /* bytes of JSON tree built so far (node_cost), bounded by KG_SPARKPLUG_OUTPUT_LIMIT */
};

static void fail(struct ctx *c, int err)
{
	if(!c->err) c->err = err;
}

/* ---- bounded protobuf-c allocation ------------------------------------------------------- */

/* Cumulative bytes handed to protobuf-c for one unpack; refused past the limit. Frees are not
 * subtracted: protobuf-c frees only on failure or in free_unpacked, both at the end. */
struct budget {
	size_t used, limit;
};

static void *budget_alloc(void *data, size_t size)
{
	struct budget *b = data;

	if(size > b->limit - b->used) return NULL;
	b->used += size;
	return malloc(size);
}

static void budget_free(void *data, void *ptr)
{
	(void)data;
	free(ptr);
}

/* ---- nesting pre-scan -------------------------------------------------------------------- */

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t r = 0;
	int shift;

	for(shift = 0; shift < 64 && *p < end; shift += 7){
		uint8_t c = *(*p)++;

		r |= (uint64_t)(c & 0x7F) << shift;
		if(!(c & 0x80)){
			*v = r;
			return 0;
		}
	}
	return -1;
}

/* Walk the wire format of one message of type desc, descending into the length-delimited fields
 * the descriptor says are messages, and fail past KG_SPARKPLUG_MAX_DEPTH. protobuf-c's unpack
 * (1.4.1) recurses once per nested message with no depth limit of its own: this keeps a payload
 * of nested headers (2 bytes a level) from exhausting the worker's stack. Recursion depth here is bounded by the same limit. String fields are checked
 * here too, where their wire length is known: strict UTF-8 without NUL (protobuf-c would hand
 * "a\0b" over as "a"; the JSON must be valid). Returns 0 or -1. */
static int scan_depth(const uint8_t *p, size_t len, const ProtobufCMessageDescriptor *desc, int depth)
{
	const uint8_t *end = p + len;

	if(depth > KG_SPARKPLUG_MAX_DEPTH) return -1;
	while(p < end){
		uint64_t key, v;

		if(read_varint(&p, end, &key)) return -1;
		switch(key & 7){
		case 0:
			if(read_varint(&p, end, &v)) return -1;
			break;
		case 1:
			if((size_t)(end - p) < 8) return -1;
			p += 8;
			break;
		case 5:
			if((size_t)(end - p) < 4) return -1;
			p += 4;
			break;
		case 2: {
			const ProtobufCFieldDescriptor *f;

			if(read_varint(&p, end, &v) || v > (uint64_t)(end - p)) return -1;
			f = (key >> 3) <= UINT32_MAX
				? protobuf_c_message_descriptor_get_field(desc, (unsigned)(key >> 3)) : NULL;
			if(f && f->type == PROTOBUF_C_TYPE_MESSAGE
					&& scan_depth(p, (size_t)v, f->descriptor, depth + 1)) return -1;
			if(f && f->type == PROTOBUF_C_TYPE_STRING
					&& (memchr(p, '\0', (size_t)v) || !kg_utf8__valid(p, (size_t)v))) return -1;
			p += v;
			break;
		}
		default: /* groups (3, 4) and invalid wire types: not in Sparkplug B */
			return -1;
		}
	}
	return 0;
}

/* ---- JSON leaves --------------------------------------------------------------------------- */

static cJSON *j_string(struct ctx *c, const char *s, size_t n)
{
	cJSON *item;

	if(!kg_utf8__valid((const uint8_t *)s, n) || memchr(s, '\0', n)){
		fail(c, KG_SPARKPLUG_INVALID);
		return NULL;
	}
	item = cJSON_CreateString(s);
	if(!item) fail(c, KG_SPARKPLUG_NOMEM);
	return item;
}

/* Decimal text of an integer; buf holds 21 bytes. Returns the length. */
static size_t fmt_u64(char *buf, uint64_t v)
{
	char tmp[20];
	size_t n = 0, i;

	do{
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	}while(v);
	for(i = 0; i < n; i++) buf[i] = tmp[n - 1 - i];
	buf[n] = '\0';
	return n;
}

static size_t fmt_i64(char *buf, int64_t v)
{
	if(v < 0){
		buf[0] = '-';
		return 1 + fmt_u64(buf + 1, (uint64_t)0 - (uint64_t)v);
	}
	return fmt_u64(buf, (uint64_t)v);
}

/* A JSON integer as raw number text: exact beyond 2^53 (cJSON would print 18446744073709551615
 * as 1.8446744073709552e+19), and cheap (cJSON prints every number with sprintf("%1.15g") and
 * checks it with sscanf: two thirds of the decoder's time on a typical payload). A raw node is
 * not cJSON_IsNumber: the top-level "timestamp" and "seq", which the bridge may read, are made
 * with j_number instead. */
static cJSON *j_u64(struct ctx *c, uint64_t v)
{
	char buf[24];
	cJSON *item;

	fmt_u64(buf, v);
	item = cJSON_CreateRaw(buf);
	if(!item) fail(c, KG_SPARKPLUG_NOMEM);
	return item;
}

static cJSON *j_i64(struct ctx *c, int64_t v)
{
	char buf[24];
	cJSON *item;

	fmt_i64(buf, v);
	item = cJSON_CreateRaw(buf);
	if(!item) fail(c, KG_SPARKPLUG_NOMEM);
	return item;
}

/* A cJSON number (readable with cJSON_IsNumber) when a double holds v exactly, else raw text. */
static cJSON *j_number(struct ctx *c, uint64_t v)
{
	cJSON *item;

	if(v > (UINT64_C(1) << 53)) return j_u64(c, v);
	item = cJSON_CreateNumber((double)v);
	if(!item) fail(c, KG_SPARKPLUG_NOMEM);
	return item;
}

/* Non-finite numbers have no JSON form: the protobuf JSON mapping's strings. */
static const char *nonfinite_name(double d)
{
	if(isnan(d)) return "NaN";
	return d > 0 ? "Infinity" : "-Infinity";
}

/* Shortest text that reads back as the same float (1.1f prints "1.1", not 1.100000023841858). */
static void float_text(float f, char buf[32])
{
	int prec;

	for(prec = 6; prec < 9; prec++){
		snprintf(buf, 32, "%.*g", prec, (double)f);
		if(strtof(buf, NULL) == f) return;
	}
	snprintf(buf, 32, "%.9g", (double)f);
}

static cJSON *j_float(struct ctx *c, float f)
{
	cJSON *item;

	if(!isfinite(f)){
		item = cJSON_CreateString(nonfinite_name(f));
	}else{
		char buf[32];

		float_text(f, buf);
		item = cJSON_CreateRaw(buf);
	}
	if(!item) fail(c, KG_SPARKPLUG_NOMEM);
	return item;
}

static cJSON *j_double(struct ctx *c, double d)
{
	cJSON *item;

	if(!isfinite(d)){
		item = cJSON_CreateString(nonfinite_name(d));
	}else{
		char buf[32];

		kg_numfmt__double(d, buf);
		item = cJSON_CreateRaw(buf);
	}
	if(!item) fail(c, KG_SPARKPLUG_NOMEM);
	return item;
}

static cJSON *j_bool(struct ctx *c, int b)
{
	cJSON *item = cJSON_CreateBool(b);

	if(!item) fail(c, KG_SPARKPLUG_NOMEM);
	return item;
}

static cJSON *j_base64(struct ctx *c, const uint8_t *data, size_t len)
{
	size_t outlen;
	char *buf;
	cJSON *item;

	if(len > (size_t)INT32_MAX / 2){
		fail(c, KG_SPARKPLUG_INVALID);
		return NULL;
	}
	outlen = 4 * ((len + 2) / 3) + 1;
	buf = malloc(outlen);
	if(!buf){
		fail(c, KG_SPARKPLUG_NOMEM);
		return NULL;
	}
	EVP_EncodeBlock((unsigned char *)buf, data, (int)len);
	item = cJSON_CreateString(buf);
	free(buf);
	if(!item) fail(c, KG_SPARKPLUG_NOMEM);
	return item;
}

/* What a node costs in memory: the cJSON struct and its allocation overhead, its string and its
 * key (children are charged when they are added to it). Every node of the tree is added through
 * put or push, which charge it: the decoded output, not only the input, is bounded (a StringArray
 * of 16 MiB of NULs is 16 Mi empty strings, ~120x its size as a tree). */
static size_t node_cost(const cJSON *item, const char *key)
{
	size_t n = sizeof(cJSON) + 16;

	if(item->valuestring) n += strlen(item->valuestring) + 1;
	if(key) n += strlen(key) + 1;
	return n;
}

/* Charge item (about to be added under key, or NULL); past the output limit the decode fails
 * with KG_SPARKPLUG_TOO_BIG and item is freed. Returns 0, or -1 when item was refused. */
static int charge(struct ctx *c, cJSON *item, const char *key)
{
	c->out += node_cost(item, key);
	if(c->out <= KG_SPARKPLUG_OUTPUT_LIMIT) return 0;
	cJSON_Delete(item);
	fail(c, KG_SPARKPLUG_TOO_BIG);
	return -1;
}

/* Add item under key to obj (both may be NULL after a failure, which is already recorded). */
static void put(struct ctx *c, cJSON *obj, const char *key, cJSON *item)
{
	if(!item || charge(c, item, key)) return;
	if(!obj || !cJSON_AddItemToObject(obj, key, item)){
		cJSON_Delete(item);
		fail(c, KG_SPARKPLUG_NOMEM);
	}
}

static void push(struct ctx *c, cJSON *arr, cJSON *item)
{
	if(!item || charge(c, item, NULL)) return;
	if(!arr || !cJSON_AddItemToArray(arr, item)){
		cJSON_Delete(item);
		fail(c, KG_SPARKPLUG_NOMEM);
	}
}

static cJSON *new_object(struct ctx *c)
{
	cJSON *o = cJSON_CreateObject();

	if(!o) fail(c, KG_SPARKPLUG_NOMEM);
	return o;
}

static cJSON *new_array(struct ctx *c)
{
	cJSON *a = cJSON_CreateArray();

	if(!a) fail(c, KG_SPARKPLUG_NOMEM);
	return a;
}

/* ---- array datatypes --------------------------------------------------------------------- */

static uint64_t le(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	while(n--) v = (v << 8) | p[n];
	return v;
}

/* Growable text buffer for the numeric arrays: one raw JSON node instead of one cJSON node per
 * element (an Int8Array of 1 MB would otherwise cost ~64 MB of nodes). */
struct text {
	char *buf;
	size_t len, cap;
	int over;   /* text_add refused to pass KG_SPARKPLUG_OUTPUT_LIMIT */
};

/* Returns 0, -1 out of memory, -2 past KG_SPARKPLUG_OUTPUT_LIMIT (a BooleanArray writes up to
 * 48 bytes of text per byte of payload). */
static int text_add(struct text *t, const char *s, size_t n)
{
	if(n >= KG_SPARKPLUG_OUTPUT_LIMIT - t->len){
		t->over = 1;
		return -2;
	}
	if(t->cap - t->len <= n){
		size_t cap = t->cap ? t->cap : 64;
		char *nb;

		while(cap - t->len <= n) cap *= 2;
		nb = realloc(t->buf, cap);
		if(!nb) return -1;
		t->buf = nb;
		t->cap = cap;
	}
	memcpy(t->buf + t->len, s, n);
	t->len += n;
	t->buf[t->len] = '\0';
	return 0;
}

/* The numeric array datatypes: element width in bytes (little-endian) and how it prints. */
enum elem_kind { EK_SIGNED, EK_UNSIGNED, EK_FLOAT, EK_DOUBLE };
struct elem_type {
	uint8_t width;
	uint8_t kind;
};
static const struct elem_type elem_types[DT_DATETIMEARRAY - DT_INT8ARRAY + 1] = {
	[DT_INT8ARRAY - DT_INT8ARRAY] = { 1, EK_SIGNED },
	[DT_INT16ARRAY - DT_INT8ARRAY] = { 2, EK_SIGNED },
	[DT_INT32ARRAY - DT_INT8ARRAY] = { 4, EK_SIGNED },
	[DT_INT64ARRAY - DT_INT8ARRAY] = { 8, EK_SIGNED },
	[DT_UINT8ARRAY - DT_INT8ARRAY] = { 1, EK_UNSIGNED },
	[DT_UINT16ARRAY - DT_INT8ARRAY] = { 2, EK_UNSIGNED },
	[DT_UINT32ARRAY - DT_INT8ARRAY] = { 4, EK_UNSIGNED },
	[DT_UINT64ARRAY - DT_INT8ARRAY] = { 8, EK_UNSIGNED },
	[DT_FLOATARRAY - DT_INT8ARRAY] = { 4, EK_FLOAT },
	[DT_DOUBLEARRAY - DT_INT8ARRAY] = { 8, EK_DOUBLE },
	[DT_DATETIMEARRAY - DT_INT8ARRAY] = { 8, EK_UNSIGNED }, /* epoch ms */
	/* BooleanArray, StringArray: width 0, decoded by boolean_array and string_array */
};

/* The JSON text of one element at p into buf; returns its length. Integers exact (signed ones
 * sign-extended from their width), non-finite floats as the protobuf JSON mapping's strings. */
static int elem_text(const struct elem_type *e, const uint8_t *p, char buf[32])
{
	uint64_t v = le(p, e->width);
	unsigned bits = 8u * e->width;

	switch(e->kind){
	case EK_SIGNED:
		if(bits < 64 && (v >> (bits - 1)) & 1) v |= ~UINT64_C(0) << bits;
		return (int)fmt_i64(buf, (int64_t)v);
	case EK_UNSIGNED:
		return (int)fmt_u64(buf, v);
	case EK_FLOAT: {
		uint32_t u = (uint32_t)v;
		float f;

		memcpy(&f, &u, sizeof f);
		if(!isfinite(f)) return snprintf(buf, 32, "\"%s\"", nonfinite_name(f));
		float_text(f, buf);
		return (int)strlen(buf);
	}
	case EK_DOUBLE: {
		double d;

		memcpy(&d, &v, sizeof d);
		if(!isfinite(d)) return snprintf(buf, 32, "\"%s\"", nonfinite_name(d));
		return kg_numfmt__double(d, buf);
	}
	}
	assert(0);
	return -1;
}

static int is_array_type(uint32_t dt)
{
	return dt >= DT_INT8ARRAY && dt <= DT_DATETIMEARRAY;
}

/* Ends t's array, makes it one raw JSON node and frees t's buffer. ok: nothing failed so far.
 * NULL (out of memory recorded in c) when anything failed. */
static cJSON *text_array(struct ctx *c, struct text *t, int ok)
{
	cJSON *item = ok && !text_add(t, "]", 1) ? cJSON_CreateRaw(t->buf) : NULL;

	if(t->over) fail(c, KG_SPARKPLUG_TOO_BIG);
	free(t->buf);
	if(!item) fail(c, KG_SPARKPLUG_NOMEM);
	return item;
}

/* Fixed-width numeric arrays: the byte count must be a multiple of the element width. */
static cJSON *numeric_array(struct ctx *c, uint32_t dt, const uint8_t *p, size_t len)
{
	const struct elem_type *e = &elem_types[dt - DT_INT8ARRAY];
	struct text t = {0};
	int ok;
	size_t i;

	assert(is_array_type(dt) && e->width);
	if(len % e->width){
		fail(c, KG_SPARKPLUG_INVALID);
		return NULL;
	}
	ok = !text_add(&t, "[", 1);
	for(i = 0; ok && i < len; i += e->width){
		char buf[32];
		int n = elem_text(e, p + i, buf);

		ok = (!i || !text_add(&t, ",", 1)) && n >= 0 && !text_add(&t, buf, (size_t)n);
	}
	return text_array(c, &t, ok);
}

/* BooleanArray: a uint32 LE count, then the values packed 8 per byte, most significant bit
 * first (spec: [false,false,true,true,false,true,false,false,true,true,false,true] is
 * 0C 00 00 00 34 D0). The packed bytes must hold count bits. */
static cJSON *boolean_array(struct ctx *c, const uint8_t *p, size_t len)
{
	uint64_t count, i;
	struct text t = {0};
	int ok;

	if(len < 4 || (le(p, 4) + 7) / 8 > len - 4){
		fail(c, KG_SPARKPLUG_INVALID);
		return NULL;
	}
	count = le(p, 4);
	ok = !text_add(&t, "[", 1);
	for(i = 0; ok && i < count; i++){
		int bit = (p[4 + i / 8] >> (7 - i % 8)) & 1;

		ok = (!i || !text_add(&t, ",", 1)) && !text_add(&t, bit ? "true" : "false", bit ? 4 : 5);
	}
	return text_array(c, &t, ok);
}

/* StringArray: UTF-8 strings each ended by a NUL; a last string without its NUL is kept. */
static cJSON *string_array(struct ctx *c, const uint8_t *p, size_t len)
{
	cJSON *arr = new_array(c);
	size_t i = 0;

	while(arr && i < len && !c->err){
		const uint8_t *nul = memchr(p + i, '\0', len - i);
		size_t n = nul ? (size_t)(nul - (p + i)) : len - i;
		char *s = malloc(n + 1);

		if(!s){
			fail(c, KG_SPARKPLUG_NOMEM);
			break;
		}
		memcpy(s, p + i, n);
		s[n] = '\0';
		push(c, arr, j_string(c, s, n));
		free(s);
		i += n + 1;
	}
	if(c->err){
		cJSON_Delete(arr);
		return NULL;
	}
	return arr;
}

static cJSON *array_value(struct ctx *c, uint32_t dt, const ProtobufCBinaryData *b)
{
	switch(dt){
	case DT_BOOLEANARRAY: return boolean_array(c, b->data, b->len);
	case DT_STRINGARRAY: return string_array(c, b->data, b->len);
	default: return numeric_array(c, dt, b->data, b->len);
	}
}

/* ---- values ------------------------------------------------------------------------------ */

/* The JSON of one oneof value read with datatype dt (0 when the message has none). Integers
 * of the signed datatypes are sign-extended from their width, whichever field carried them
 * (the spec puts Int8/16/32 in the uint32 int_value, Int64 in the uint64 long_value, as two's
 * complement). Returns NULL with no error for V_NONE and V_OTHER (extension values). */
static cJSON *value_json(struct ctx *c, uint32_t dt, const struct val *v)
{
	switch(v->kind){
	case V_INT:
	case V_LONG: {
		uint64_t u = v->kind == V_INT ? v->u32 : v->u64;

		switch(dt){
		case DT_INT8: return j_i64(c, (int8_t)(uint8_t)u);
		case DT_INT16: return j_i64(c, (int16_t)(uint16_t)u);
		case DT_INT32: return j_i64(c, (int32_t)(uint32_t)u);
		case DT_INT64: return j_i64(c, v->kind == V_INT ? (int32_t)(uint32_t)u : (int64_t)u);
		default: return j_u64(c, u);
		}
	}
	case V_FLOAT: return j_float(c, v->f);
	case V_DOUBLE: return j_double(c, v->d);
	case V_BOOL: return j_bool(c, v->b);
	case V_STRING: return j_string(c, v->s, strlen(v->s));
	case V_BYTES:
		if(is_array_type(dt)) return array_value(c, dt, &v->bytes);
		return j_base64(c, v->bytes.data, v->bytes.len);
	case V_NONE:
	case V_OTHER:
		return NULL;
	}
	return NULL;
}

static cJSON *dataset_json(struct ctx *c, const SpDataSet *ds);
static cJSON *template_json(struct ctx *c, const SpTemplate *t);
static cJSON *propertyset_json(struct ctx *c, const SpPropertySet *ps);
static cJSON *metric_json(struct ctx *c, const SpMetric *m);

static cJSON *string_list(struct ctx *c, char **s, size_t n)
{
	cJSON *arr = new_array(c);
	size_t i;

	for(i = 0; arr && i < n && !c->err; i++) push(c, arr, j_string(c, s[i], strlen(s[i])));
	return arr;
}

/* {"num_of_columns","columns","types","rows":[{"elements":[{"value"}]}]}; each element is read
 * with its column's type. */
static cJSON *dataset_json(struct ctx *c, const SpDataSet *ds)
{
	cJSON *o = new_object(c);
	size_t r, e;

	if(!o) return NULL;
	if(ds->has_num_of_columns) put(c, o, "num_of_columns", j_u64(c, ds->num_of_columns));
	if(ds->n_columns) put(c, o, "columns", string_list(c, ds->columns, ds->n_columns));
	if(ds->n_types){
		cJSON *types = new_array(c);

		for(e = 0; types && e < ds->n_types; e++) push(c, types, j_u64(c, ds->types[e]));
		put(c, o, "types", types);
	}
	if(ds->n_rows){
		cJSON *rows = new_array(c);

		for(r = 0; rows && r < ds->n_rows && !c->err; r++){
			const Org__Eclipse__Tahu__Protobuf__Payload__DataSet__Row *row = ds->rows[r];
			cJSON *ro = new_object(c);

			if(ro && row->n_elements){
				cJSON *els = new_array(c);

				for(e = 0; els && e < row->n_elements && !c->err; e++){
					const SpDataSetValue *dv = row->elements[e];
					uint32_t dt = e < ds->n_types ? ds->types[e] : 0;
					struct val v = {0};
					cJSON *eo = new_object(c);

					switch(dv->value_case){
					case ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__DATA_SET__DATA_SET_VALUE__VALUE_INT_VALUE:
						v.kind = V_INT; v.u32 = dv->int_value; break;
					case ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__DATA_SET__DATA_SET_VALUE__VALUE_LONG_VALUE:
						v.kind = V_LONG; v.u64 = dv->long_value; break;
					case ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__DATA_SET__DATA_SET_VALUE__VALUE_FLOAT_VALUE:
						v.kind = V_FLOAT; v.f = dv->float_value; break;
					case ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__DATA_SET__DATA_SET_VALUE__VALUE_DOUBLE_VALUE:
						v.kind = V_DOUBLE; v.d = dv->double_value; break;
					case ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__DATA_SET__DATA_SET_VALUE__VALUE_BOOLEAN_VALUE:
						v.kind = V_BOOL; v.b = dv->boolean_value; break;
					case ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__DATA_SET__DATA_SET_VALUE__VALUE_STRING_VALUE:
						v.kind = V_STRING; v.s = dv->string_value; break;
					default:
						v.kind = V_OTHER; break;
					}
					put(c, eo, "value", value_json(c, dt, &v));
					push(c, els, eo);
				}
				put(c, ro, "elements", els);
			}
			push(c, rows, ro);
		}
		put(c, o, "rows", rows);
	}
	return o;
}

/* {"version","metrics","parameters":[{"name","type","value"}],"template_ref","is_definition"} */
static cJSON *template_json(struct ctx *c, const SpTemplate *t)
{
	cJSON *o = new_object(c);
	size_t i;

	if(!o) return NULL;
	if(t->version) put(c, o, "version", j_string(c, t->version, strlen(t->version)));
	if(t->n_metrics){
		cJSON *ms = new_array(c);

		for(i = 0; ms && i < t->n_metrics && !c->err; i++) push(c, ms, metric_json(c, t->metrics[i]));
		put(c, o, "metrics", ms);
	}
	if(t->n_parameters){
		cJSON *ps = new_array(c);

		for(i = 0; ps && i < t->n_parameters && !c->err; i++){
			const SpParameter *p = t->parameters[i];
			cJSON *po = new_object(c);
			struct val v = {0};

			if(p->name) put(c, po, "name", j_string(c, p->name, strlen(p->name)));
			if(p->has_type) put(c, po, "type", j_u64(c, p->type));
			switch(p->value_case){
			case ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__TEMPLATE__PARAMETER__VALUE_INT_VALUE:
				v.kind = V_INT; v.u32 = p->int_value; break;
			case ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__TEMPLATE__PARAMETER__VALUE_LONG_VALUE:
				v.kind = V_LONG; v.u64 = p->long_value; break;
			case ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__TEMPLATE__PARAMETER__VALUE_FLOAT_VALUE:
				v.kind = V_FLOAT; v.f = p->float_value; break;
			case ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__TEMPLATE__PARAMETER__VALUE_DOUBLE_VALUE:
				v.kind = V_DOUBLE; v.d = p->double_value; break;
			case ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__TEMPLATE__PARAMETER__VALUE_BOOLEAN_VALUE:
				v.kind = V_BOOL; v.b = p->boolean_value; break;
			case ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__TEMPLATE__PARAMETER__VALUE_STRING_VALUE:
				v.kind = V_STRING; v.s = p->string_value; break;
			case ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__TEMPLATE__PARAMETER__VALUE__NOT_SET:
				break;
			default:
				v.kind = V_OTHER; break;
			}
			put(c, po, "value", value_json(c, p->has_type ? p->type : 0, &v));
			push(c, ps, po);
		}
		put(c, o, "parameters", ps);
	}
	if(t->template_ref) put(c, o, "template_ref", j_string(c, t->template_ref, strlen(t->template_ref)));
	if(t->has_is_definition) put(c, o, "is_definition", j_bool(c, t->is_definition));
	return o;
}

/* {"keys":[…],"values":[{"type","is_null","value"}]}; a PropertySetList value is
 * {"propertyset":[<property set>…]} (the protobuf field name, as the UNS bridge prints it). */
static cJSON *propertyset_json(struct ctx *c, const SpPropertySet *ps)
{
	cJSON *o = new_object(c);
	size_t i, j;

	if(!o) return NULL;
	if(ps->n_keys) put(c, o, "keys", string_list(c, ps->keys, ps->n_keys));
	if(ps->n_values){
		cJSON *vs = new_array(c);

		for(i = 0; vs && i < ps->n_values && !c->err; i++){
			const SpPropertyValue *pv = ps->values[i];
			cJSON *vo = new_object(c);
			cJSON *value = NULL;
			struct val v = {0};

			if(pv->has_type) put(c, vo, "type", j_u64(c, pv->type));
			if(pv->has_is_null) put(c, vo, "is_null", j_bool(c, pv->is_null));
			switch(pv->value_case){
			case ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__PROPERTY_VALUE__VALUE_INT_VALUE:
				v.kind = V_INT; v.u32 = pv->int_value; break;
			case ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__PROPERTY_VALUE__VALUE_LONG_VALUE:
				v.kind = V_LONG; v.u64 = pv->long_value; break;
			case ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__PROPERTY_VALUE__VALUE_FLOAT_VALUE:
				v.kind = V_FLOAT; v.f = pv->float_value; break;
			case ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__PROPERTY_VALUE__VALUE_DOUBLE_VALUE:
				v.kind = V_DOUBLE; v.d = pv->double_value; break;
			case ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__PROPERTY_VALUE__VALUE_BOOLEAN_VALUE:
				v.kind = V_BOOL; v.b = pv->boolean_value; break;
			case ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__PROPERTY_VALUE__VALUE_STRING_VALUE:
				v.kind = V_STRING; v.s = pv->string_value; break;
			case ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__PROPERTY_VALUE__VALUE_PROPERTYSET_VALUE:
				value = propertyset_json(c, pv->propertyset_value);
				break;
			case ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__PROPERTY_VALUE__VALUE_PROPERTYSETS_VALUE: {
				const SpPropertySetList *l = pv->propertysets_value;

				value = new_object(c);
				if(value && l->n_propertyset){
					cJSON *sets = new_array(c);

					for(j = 0; sets && j < l->n_propertyset && !c->err; j++)
						push(c, sets, propertyset_json(c, l->propertyset[j]));
					put(c, value, "propertyset", sets);
				}
				break;
			}
			case ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__PROPERTY_VALUE__VALUE__NOT_SET:
				break;
			default:
				v.kind = V_OTHER; break;
			}
			if(!value) value = value_json(c, pv->has_type ? pv->type : 0, &v);
			if(!value && !c->err && pv->has_is_null && pv->is_null){
				value = cJSON_CreateNull();
				if(!value) fail(c, KG_SPARKPLUG_NOMEM);
			}
			put(c, vo, "value", value);
			push(c, vs, vo);
		}
		put(c, o, "values", vs);
	}
	return o;
}

static cJSON *metadata_json(struct ctx *c, const SpMetaData *md)
{
	cJSON *o = new_object(c);

	if(!o) return NULL;
	if(md->has_is_multi_part) put(c, o, "is_multi_part", j_bool(c, md->is_multi_part));
	if(md->content_type) put(c, o, "content_type", j_string(c, md->content_type, strlen(md->content_type)));
	if(md->has_size) put(c, o, "size", j_u64(c, md->size));
	if(md->has_seq) put(c, o, "seq", j_u64(c, md->seq));
	if(md->file_name) put(c, o, "file_name", j_string(c, md->file_name, strlen(md->file_name)));
	if(md->file_type) put(c, o, "file_type", j_string(c, md->file_type, strlen(md->file_type)));
	if(md->md5) put(c, o, "md5", j_string(c, md->md5, strlen(md->md5)));
	if(md->description) put(c, o, "description", j_string(c, md->description, strlen(md->description)));
	return o;
}

/* One metric, fields in .proto order. is_null set and no value: "value": null. */
static cJSON *metric_json(struct ctx *c, const SpMetric *m)
{
	uint32_t dt = m->has_datatype ? m->datatype : 0;
	cJSON *o = new_object(c);
	cJSON *value = NULL;
	struct val v = {0};

	if(!o) return NULL;
	if(m->name) put(c, o, "name", j_string(c, m->name, strlen(m->name)));
	if(m->has_alias) put(c, o, "alias", j_u64(c, m->alias));
	if(m->has_timestamp) put(c, o, "timestamp", j_u64(c, m->timestamp));
	if(m->has_datatype) put(c, o, "datatype", j_u64(c, m->datatype));
	if(m->has_is_historical) put(c, o, "is_historical", j_bool(c, m->is_historical));
	if(m->has_is_transient) put(c, o, "is_transient", j_bool(c, m->is_transient));
	if(m->has_is_null) put(c, o, "is_null", j_bool(c, m->is_null));
	if(m->metadata) put(c, o, "metadata", metadata_json(c, m->metadata));
	if(m->properties) put(c, o, "properties", propertyset_json(c, m->properties));
	switch(m->value_case){
	case ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__METRIC__VALUE_INT_VALUE:
		v.kind = V_INT; v.u32 = m->int_value; break;
	case ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__METRIC__VALUE_LONG_VALUE:
		v.kind = V_LONG; v.u64 = m->long_value; break;
	case ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__METRIC__VALUE_FLOAT_VALUE:
		v.kind = V_FLOAT; v.f = m->float_value; break;
	case ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__METRIC__VALUE_DOUBLE_VALUE:
		v.kind = V_DOUBLE; v.d = m->double_value; break;
	case ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__METRIC__VALUE_BOOLEAN_VALUE:
		v.kind = V_BOOL; v.b = m->boolean_value; break;
	case ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__METRIC__VALUE_STRING_VALUE:
		v.kind = V_STRING; v.s = m->string_value; break;
	case ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__METRIC__VALUE_BYTES_VALUE:
		v.kind = V_BYTES; v.bytes = m->bytes_value; break;
	case ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__METRIC__VALUE_DATASET_VALUE:
		value = dataset_json(c, m->dataset_value);
		break;
	case ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__METRIC__VALUE_TEMPLATE_VALUE:
		value = template_json(c, m->template_value);
		break;
	case ORG__ECLIPSE__TAHU__PROTOBUF__PAYLOAD__METRIC__VALUE__NOT_SET:
		break;
	default:
		v.kind = V_OTHER; break;
	}
	if(!value) value = value_json(c, dt, &v);
	if(!value && !c->err && m->has_is_null && m->is_null){
		value = cJSON_CreateNull();
		if(!value) fail(c, KG_SPARKPLUG_NOMEM);
	}
	put(c, o, "value", value);
	return o;
}

static cJSON *payload_json(struct ctx *c, const SpPayload *pl)
{
	cJSON *o = new_object(c);
	size_t i;

	if(!o) return NULL;
	if(pl->has_timestamp) put(c, o, "timestamp", j_number(c, pl->timestamp));
	if(pl->n_metrics){
		cJSON *ms = new_array(c);

		for(i = 0; ms && i < pl->n_metrics && !c->err; i++) push(c, ms, metric_json(c, pl->metrics[i]));
		put(c, o, "metrics", ms);
	}
	if(pl->has_seq) put(c, o, "seq", j_number(c, pl->seq));
	if(pl->uuid) put(c, o, "uuid", j_string(c, pl->uuid, strlen(pl->uuid)));
	if(pl->has_body) put(c, o, "body", j_base64(c, pl->body.data, pl->body.len));
	return o;
}

/* ---- public ------------------------------------------------------------------------------ */

/* Contract in sparkplug.h. */
int kg_sparkplug__is_topic(const char *topic)
{
	const char *p;
	int levels = 1;

	if(!topic || strncmp(topic, "spBv1.0/", 8)) return 0;
	if(!strncmp(topic + 8, "STATE/", 6) || !strcmp(topic + 8, "STATE")) return 0;
	for(p = topic; *p; p++){
		if(*p == '/') levels++;
	}
	return levels >= 4;
}

/* Contract in sparkplug.h. Three steps: the nesting pre-scan, protobuf-c's unpack under the
 * allocation budget, the JSON walk (recursion bounded by the pre-scan's depth). */
int kg_sparkplug__decode(const uint8_t *payload, size_t len, cJSON **out)
{
	static const uint8_t none[1];
	struct budget b = {0, KG_SPARKPLUG_ALLOC_LIMIT};
	ProtobufCAllocator alloc = {budget_alloc, budget_free, &b};
	struct ctx c = {0};
	SpPayload *pl;
	cJSON *root;

	assert(out);
	*out = NULL;
	if(!payload){
		if(len) return KG_SPARKPLUG_INVALID;
		payload = none; /* no arithmetic on a null pointer below */
	}
	if(scan_depth(payload, len, &org__eclipse__tahu__protobuf__payload__descriptor, 1))
		return KG_SPARKPLUG_INVALID;
	pl = org__eclipse__tahu__protobuf__payload__unpack(&alloc, len, payload);
	if(!pl) return KG_SPARKPLUG_INVALID; /* also a refused allocation: not told apart */
	root = payload_json(&c, pl);
	org__eclipse__tahu__protobuf__payload__free_unpacked(pl, &alloc);
	if(c.err){
		cJSON_Delete(root);
		return c.err;
	}
	if(!root) return KG_SPARKPLUG_NOMEM;
	*out = root;
	return 0;
}

/* Contract in sparkplug.h. */
int kg_sparkplug__to_json(const uint8_t *payload, size_t len, char **json, size_t *json_len)
{
	cJSON *root;
	int rc;

	assert(json && json_len);
	*json = NULL;
	*json_len = 0;
	rc = kg_sparkplug__decode(payload, len, &root);
	if(rc) return rc;
	*json = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if(!*json) return KG_SPARKPLUG_NOMEM;
	*json_len = strlen(*json);
	return 0;
}
