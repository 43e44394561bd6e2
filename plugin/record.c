/* record.c -- kg_record binary encoding (hand-off queue, spool), canonical JSON, UUID/time/number text. */
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kitgate/record.h"
#include "kitgate/validate.h"

/* Encoded layout, all integers little-endian:
 *   u8 kind
 *   RAW:       id[16], u8 serial_len, serial, i32 peripheral, i32 quantity_type, i64 datetime_ms, f64 value
 *   AGGREGATE: id[16], u8 serial_len, serial, i32 peripheral, i32 quantity_type, i64 start_ms, i64 end_ms,
 *              u8 n (1..16), n x (u8 name_len (1..200), name, f64 value)
 *   BRIDGE:    u16 topic_len (>= 1), topic, u32 payload_len, payload
 */
#define NAME_BYTES_MAX (KG_AGG_NAME_MAX * 4)
#define ENCODED_MAX_AGG (1 + 16 + 1 + KG_SERIAL_MAX + 4 + 4 + 8 + 8 + 1 + KG_AGG_MAX * (1 + NAME_BYTES_MAX + 8))

_Static_assert(ENCODED_MAX_AGG <= KG_RECORD_MAX_FIXED, "KG_RECORD_MAX_FIXED too small for an aggregate");
_Static_assert(sizeof(((struct kg_agg_value *)0)->name) == NAME_BYTES_MAX + 1, "name buffer size");

/* ---- little-endian writer: counts every byte, stores only what fits ---- */

struct wbuf {
	uint8_t *buf;
	size_t cap;
	size_t len;
};

static void put_bytes(struct wbuf *w, const void *p, size_t n)
{
	if(w->len <= w->cap && n <= w->cap - w->len && n > 0){
		memcpy(w->buf + w->len, p, n);
	}
	w->len += n;
}

static void put_u8(struct wbuf *w, uint8_t v)
{
	put_bytes(w, &v, 1);
}

static void put_le(struct wbuf *w, uint64_t v, int nbytes)
{
	uint8_t b[8];
	for(int i = 0; i < nbytes; i++){
		b[i] = (uint8_t)(v >> (8 * i));
	}
	put_bytes(w, b, (size_t)nbytes);
}

static void put_f64(struct wbuf *w, double d)
{
	uint64_t u;
	memcpy(&u, &d, sizeof(u));
	put_le(w, u, 8);
}

/* ---- bounds-checked reader ---- */

struct rbuf {
	const uint8_t *p;
	size_t left;
};

static int get_bytes(struct rbuf *r, void *out, size_t n)
{
	if(n > r->left) return -1;
	if(n > 0) memcpy(out, r->p, n);
	r->p += n;
	r->left -= n;
	return 0;
}

static int get_le(struct rbuf *r, int nbytes, uint64_t *out)
{
	uint64_t v = 0;
	if((size_t)nbytes > r->left) return -1;
	for(int i = 0; i < nbytes; i++){
		v |= (uint64_t)r->p[i] << (8 * i);
	}
	r->p += nbytes;
	r->left -= (size_t)nbytes;
	*out = v;
	return 0;
}

static int get_f64(struct rbuf *r, double *out)
{
	uint64_t u;
	if(get_le(r, 8, &u)) return -1;
	memcpy(out, &u, sizeof(*out));
	return 0;
}


/* A string field of a decoded record: valid UTF-8 without NUL (it is stored NUL-terminated). */
static int text_ok(const char *s, size_t n)
{
	return memchr(s, '\0', n) == NULL && kg_utf8__valid((const uint8_t *)s, n);
}

/* Encode the id/serial/peripheral/quantity_type head shared by RAW and AGGREGATE. Returns -1 when
 * the serial is not NUL-terminated within KG_SERIAL_MAX bytes. */
static int put_head(struct wbuf *w, const struct kg_record *rec)
{
	size_t slen = strnlen(rec->serial, sizeof(rec->serial));
	if(slen > KG_SERIAL_MAX) return -1;
	put_bytes(w, rec->id, 16);
	put_u8(w, (uint8_t)slen);
	put_bytes(w, rec->serial, slen);
	put_le(w, (uint32_t)rec->peripheral, 4);
	put_le(w, (uint32_t)rec->quantity_type, 4);
	return 0;
}

/* Encode rec into buf (see record.h). Returns the encoded length, which may exceed cap (then only a
 * prefix, or nothing, was written). Returns 0 -- never a valid length -- when rec cannot be encoded:
 * unknown kind, serial over KG_SERIAL_MAX bytes, nvalues outside 1..KG_AGG_MAX, an empty or
 * unterminated value name, or a BRIDGE record without a topic. No allocation, any thread. */
size_t kg_record__encode(const struct kg_record *rec, uint8_t *buf, size_t cap)
{
	struct wbuf w = {buf, buf ? cap : 0, 0};

	assert(rec);
	put_u8(&w, rec->kind);
	switch(rec->kind){
	case KG_KIND_RAW:
		if(put_head(&w, rec)) return 0;
		put_le(&w, (uint64_t)rec->datetime_ms, 8);
		put_f64(&w, rec->value);
		break;
	case KG_KIND_AGGREGATE:
		if(rec->nvalues < 1 || rec->nvalues > KG_AGG_MAX) return 0;
		if(put_head(&w, rec)) return 0;
		put_le(&w, (uint64_t)rec->start_ms, 8);
		put_le(&w, (uint64_t)rec->end_ms, 8);
		put_u8(&w, rec->nvalues);
		for(int i = 0; i < rec->nvalues; i++){
			const struct kg_agg_value *v = &rec->values[i];
			size_t nlen = strnlen(v->name, sizeof(v->name));
			if(nlen < 1 || nlen > NAME_BYTES_MAX) return 0;
			put_u8(&w, (uint8_t)nlen);
			put_bytes(&w, v->name, nlen);
			put_f64(&w, v->value);
		}
		break;
	case KG_KIND_BRIDGE:
		if(!rec->topic || rec->topic_len == 0) return 0;
		if(!rec->payload && rec->payload_len > 0) return 0;
		put_le(&w, rec->topic_len, 2);
		put_bytes(&w, rec->topic, rec->topic_len);
		put_le(&w, rec->payload_len, 4);
		put_bytes(&w, rec->payload, rec->payload_len);
		break;
	default:
		return 0;
	}
	assert(rec->kind == KG_KIND_BRIDGE || w.len <= KG_RECORD_MAX_FIXED);
	return w.len;
}

static int get_head(struct rbuf *r, struct kg_record *out)
{
	uint64_t u;
	uint8_t slen;

	if(get_bytes(r, out->id, 16)) return -1;
	if(get_bytes(r, &slen, 1)) return -1;
	if(slen > KG_SERIAL_MAX) return -1;
	if(get_bytes(r, out->serial, slen)) return -1;
	out->serial[slen] = '\0';
	if(!text_ok(out->serial, slen)) return -1;
	if(get_le(r, 4, &u)) return -1;
	out->peripheral = (int32_t)(uint32_t)u;
	if(get_le(r, 4, &u)) return -1;
	out->quantity_type = (int32_t)(uint32_t)u;
	return 0;
}

/* Decode len bytes (see record.h). Rejects (-1) a truncated record, trailing bytes, an unknown
 * kind, an over-long serial or name, nvalues outside 1..KG_AGG_MAX, strings that are not NUL-free
 * UTF-8, value names outside 1..50 characters, non-finite values and empty bridge topics: after a
 * successful decode, kg_record__to_json always yields valid JSON. *out is undefined on failure.
 * BRIDGE views point into buf. No allocation, any thread. */
int kg_record__decode(const uint8_t *buf, size_t len, struct kg_record *out)
{
	struct rbuf r = {buf, buf ? len : 0};
	uint64_t u;
	uint8_t kind;

	assert(out);
	if(get_bytes(&r, &kind, 1)) return -1;
	out->kind = kind;
	out->topic = NULL;
	out->topic_len = 0;
	out->payload = NULL;
	out->payload_len = 0;
	out->datetime_ms = 0;
	out->value = 0;
	out->start_ms = 0;
	out->end_ms = 0;
	out->nvalues = 0;
	switch(kind){
	case KG_KIND_RAW:
		if(get_head(&r, out)) return -1;
		if(get_le(&r, 8, &u)) return -1;
		out->datetime_ms = (int64_t)u;
		if(get_f64(&r, &out->value)) return -1;
		if(!isfinite(out->value)) return -1;
		break;
	case KG_KIND_AGGREGATE:
		if(get_head(&r, out)) return -1;
		if(get_le(&r, 8, &u)) return -1;
		out->start_ms = (int64_t)u;
		if(get_le(&r, 8, &u)) return -1;
		out->end_ms = (int64_t)u;
		if(get_bytes(&r, &out->nvalues, 1)) return -1;
		if(out->nvalues < 1 || out->nvalues > KG_AGG_MAX) return -1;
		for(int i = 0; i < out->nvalues; i++){
			struct kg_agg_value *v = &out->values[i];
			uint8_t nlen;
			if(get_bytes(&r, &nlen, 1)) return -1;
			if(nlen < 1 || nlen > NAME_BYTES_MAX) return -1;
			if(get_bytes(&r, v->name, nlen)) return -1;
			v->name[nlen] = '\0';
			if(!text_ok(v->name, nlen) || kg_utf8__chars(v->name, nlen) > KG_AGG_NAME_MAX) return -1;
			if(get_f64(&r, &v->value)) return -1;
			if(!isfinite(v->value)) return -1;
		}
		break;
	case KG_KIND_BRIDGE:
		if(get_le(&r, 2, &u)) return -1;
		if(u == 0 || u > r.left) return -1;
		out->topic_len = (uint16_t)u;
		out->topic = (const char *)r.p;
		r.p += u;
		r.left -= u;
		if(get_le(&r, 4, &u)) return -1;
		if(u > r.left) return -1;
		out->payload_len = (uint32_t)u;
		out->payload = r.p;
		r.p += u;
		r.left -= u;
		break;
	default:
		return -1;
	}
	return r.left == 0 ? 0 : -1;
}

/* ---- JSON text ---- */

struct tbuf {
	char *buf;
	size_t cap; /* bytes usable for text, excluding the NUL */
	size_t len;
};

/* Appends n bytes; what does not fit is counted but dropped, so buf holds a prefix of the text. */
static void put_str(struct tbuf *t, const char *s, size_t n)
{
	if(t->len < t->cap && n > 0){
		size_t room = t->cap - t->len;
		memcpy(t->buf + t->len, s, n < room ? n : room);
	}
	t->len += n;
}

static void put_cstr(struct tbuf *t, const char *s)
{
	put_str(t, s, strlen(s));
}

/* A JSON string literal: '"', '\\' and control characters escaped; other bytes (valid UTF-8) as is. */
static void put_json_string(struct tbuf *t, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const char *run = s;

	put_str(t, "\"", 1);
	for(; *s; s++){
		unsigned char c = (unsigned char)*s;
		char esc[6];
		size_t elen = 2;

		if(c >= 0x20 && c != '"' && c != '\\') continue;
		put_str(t, run, (size_t)(s - run));
		run = s + 1;
		esc[0] = '\\';
		switch(c){
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			esc[1] = 'u'; esc[2] = '0'; esc[3] = '0';
			esc[4] = hex[c >> 4]; esc[5] = hex[c & 0xF];
			elen = 6;
			break;
		}
		put_str(t, esc, elen);
	}
	put_str(t, run, (size_t)(s - run));
	put_str(t, "\"", 1);
}

static void put_i64(struct tbuf *t, int64_t v)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%" PRId64, v);
	put_str(t, num, (size_t)n);
}

static void put_double(struct tbuf *t, double v)
{
	char num[32];
	int n = kg_double__format(v, num);
	put_str(t, num, (size_t)n);
}

/* Canonical JSON of a RAW/AGGREGATE record (see record.h); keys in the order of SPEC's examples,
 * aggregate values in their stored order. Returns the length of the text; when that is > cap - 1
 * buf holds its first cap - 1 bytes and a NUL (cap > 0); the caller retries with length + 1.
 * Returns 0 for a BRIDGE or unknown record (its Kafka value is the payload itself). No allocation,
 * any thread. */
size_t kg_record__to_json(const struct kg_record *rec, char *buf, size_t cap)
{
	struct tbuf t = {buf, (buf && cap > 0) ? cap - 1 : 0, 0};
	char uuid[37];

	assert(rec);
	if(rec->kind != KG_KIND_RAW && rec->kind != KG_KIND_AGGREGATE){
		if(buf && cap > 0) buf[0] = '\0';
		return 0;
	}
	kg_uuid__format(rec->id, uuid);
	put_cstr(&t, "{\"id\":\"");
	put_str(&t, uuid, 36);
	put_cstr(&t, "\",\"kitSerial\":");
	put_json_string(&t, rec->serial);
	if(rec->kind == KG_KIND_RAW){
		put_cstr(&t, ",\"datetime\":");
		put_i64(&t, rec->datetime_ms);
	}else{
		put_cstr(&t, ",\"datetimeStart\":");
		put_i64(&t, rec->start_ms);
		put_cstr(&t, ",\"datetimeEnd\":");
		put_i64(&t, rec->end_ms);
	}
	put_cstr(&t, ",\"peripheral\":");
	put_i64(&t, rec->peripheral);
	put_cstr(&t, ",\"quantityType\":");
	put_i64(&t, rec->quantity_type);
	if(rec->kind == KG_KIND_RAW){
		put_cstr(&t, ",\"value\":");
		put_double(&t, rec->value);
	}else{
		int n = rec->nvalues > KG_AGG_MAX ? KG_AGG_MAX : rec->nvalues;
		put_cstr(&t, ",\"values\":{");
		for(int i = 0; i < n; i++){
			if(i > 0) put_str(&t, ",", 1);
			put_json_string(&t, rec->values[i].name);
			put_str(&t, ":", 1);
			put_double(&t, rec->values[i].value);
		}
		put_str(&t, "}", 1);
	}
	put_str(&t, "}", 1);
	if(buf && cap > 0) buf[t.len <= t.cap ? t.len : t.cap] = '\0';
	return t.len;
}

/* ---- UUID, time, number ---- */

void kg_uuid__format(const uint8_t id[16], char out[37])
{
	static const char hex[] = "0123456789abcdef";
	char *o = out;

	for(int i = 0; i < 16; i++){
		if(i == 4 || i == 6 || i == 8 || i == 10) *o++ = '-';
		*o++ = hex[id[i] >> 4];
		*o++ = hex[id[i] & 0xF];
	}
	*o = '\0';
}

static int hexval(char c)
{
	if(c >= '0' && c <= '9') return c - '0';
	if(c >= 'a' && c <= 'f') return c - 'a' + 10;
	if(c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

/* Parse exactly 36 bytes "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (hex of either case). Returns 0,
 * or -1 (id untouched). Any thread. */
int kg_uuid__parse(const char *s, size_t len, uint8_t id[16])
{
	uint8_t tmp[16];
	size_t pos = 0;

	if(!s || len != 36) return -1;
	for(int i = 0; i < 16; i++){
		int hi, lo;
		if(pos == 8 || pos == 13 || pos == 18 || pos == 23){
			if(s[pos] != '-') return -1;
			pos++;
		}
		hi = hexval(s[pos]);
		lo = hexval(s[pos + 1]);
		if(hi < 0 || lo < 0) return -1;
		tmp[i] = (uint8_t)(hi << 4 | lo);
		pos += 2;
	}
	assert(pos == 36);
	memcpy(id, tmp, 16);
	return 0;
}

/* PostgreSQL timestamptz text of epoch milliseconds (UTC), e.g. "2023-11-14 22:13:20.123+00".
 * Negative ms are floored correctly. Returns the length, or -1 (out = "") when the year cannot be
 * represented. Any thread. */
int kg_time__format_pg(int64_t ms, char out[40])
{
	int64_t secs = ms / 1000;
	int64_t rem = ms % 1000;
	time_t tt;
	struct tm tm;
	int n;

	if(rem < 0){
		rem += 1000;
		secs -= 1;
	}
	tt = (time_t)secs;
	if(!gmtime_r(&tt, &tm)){
		out[0] = '\0';
		return -1;
	}
	n = snprintf(out, 40, "%04d-%02d-%02d %02d:%02d:%02d.%03d+00", tm.tm_year + 1900, tm.tm_mon + 1,
			tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)rem);
	if(n < 0 || n >= 40){
		out[0] = '\0';
		return -1;
	}
	return n;
}

/* Shortest of %.15g, %.16g, %.17g that parses back to v (%.17g always does). Non-finite values,
 * which validation never lets through, are written as "null" so JSON output stays valid. Returns
 * the length. Any thread (C locale assumed, as in mosquitto). */
int kg_double__format(double v, char out[32])
{
	int n = 0;

	if(!isfinite(v)){
		memcpy(out, "null", 5);
		return 4;
	}
	for(int prec = 15; prec <= 17; prec++){
		n = snprintf(out, 32, "%.*g", prec, v);
		if(prec == 17 || strtod(out, NULL) == v) break;
	}
	return n;
}
