/* record.c -- kg_record binary encoding carried by the hand-off queue and the spool (pure, any thread). */
#include <assert.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "kitgate/record.h"
#include "kitgate/utf8.h"

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

/* See record.h. The one reset the JSON validator, the Cap'n Proto decoder and kg_record__decode share. */
void kg_record__reset(struct kg_record *rec, uint8_t kind)
{
	assert(rec);
	rec->kind = kind;
	rec->datetime_ms = 0;
	rec->value = 0;
	rec->start_ms = 0;
	rec->end_ms = 0;
	rec->nvalues = 0;
	rec->topic = NULL;
	rec->topic_len = 0;
	rec->payload = NULL;
	rec->payload_len = 0;
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
 * successful decode, kg_json__record always yields valid JSON. *out is undefined on failure.
 * BRIDGE views point into buf. No allocation, any thread. */
int kg_record__decode(const uint8_t *buf, size_t len, struct kg_record *out)
{
	struct rbuf r = {buf, buf ? len : 0};
	uint64_t u;
	uint8_t kind;

	assert(out);
	if(get_bytes(&r, &kind, 1)) return -1;
	kg_record__reset(out, kind);
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

/* Contract in record.h. */
size_t kg_record__used(const struct kg_record *rec)
{
	size_t n = offsetof(struct kg_record, values);

	if(rec->kind == KG_KIND_AGGREGATE) n += (size_t)(rec->nvalues <= KG_AGG_MAX ? rec->nvalues : KG_AGG_MAX) * sizeof(rec->values[0]);
	return n;
}

/* Contract in record.h. */
size_t kg_record__stored(const struct kg_record *rec)
{
	size_t a = _Alignof(struct kg_record);

	return (kg_record__used(rec) + a - 1) / a * a;
}

/* Contract in record.h. */
size_t kg_record__store(void *dst, const struct kg_record *src)
{
	size_t a = _Alignof(struct kg_record), n = kg_record__used(src);

	memcpy(dst, src, n);
	return (n + a - 1) / a * a;
}

/* Contract in record.h. */
void kg_record__copy(struct kg_record *dst, const struct kg_record *src)
{
	memcpy(dst, src, kg_record__used(src));
}
