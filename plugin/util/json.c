/* json.c -- JSON text output: the string escaper shared by every JSON writer, and the canonical
 * JSON of a RAW/AGGREGATE record (the Kafka value). Pure, any thread. */
#include <assert.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kitgate/json.h"
#include "kitgate/utf8.h"
#include "kitgate/numfmt.h"
#include "kitgate/uuid.h"

/* Contract in json.h. */
size_t kg_json__escape(char *out, size_t cap, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	assert(s || len == 0);
	assert(out || cap == 0);
	for(size_t i = 0; i < len; i++){
		unsigned char c = (unsigned char)s[i];
		char esc[6];
		size_t elen = 2;

		if(c >= 0x20 && c != '"' && c != '\\'){
			if(n < cap) out[n] = (char)c;
			n++;
			continue;
		}
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
		for(size_t k = 0; k < elen; k++, n++){
			if(n < cap) out[n] = esc[k];
		}
	}
	return n;
}

/* Bytes in the UTF-8 sequence led by c (1-4), 0 for a byte that cannot lead one. */
static size_t utf8_seq_len(unsigned char c)
{
	if(c < 0x80) return 1;
	if(c >= 0xc2 && c <= 0xdf) return 2;
	if(c >= 0xe0 && c <= 0xef) return 3;
	if(c >= 0xf0 && c <= 0xf4) return 4;
	return 0;
}

/* Contract in json.h. */
size_t kg_json__escape_bytes(char *out, size_t cap, const char *s)
{
	size_t n = 0;

	while(*s){
		unsigned char c = (unsigned char)*s;
		char tmp[8];
		const char *e = tmp;
		size_t elen, seq = utf8_seq_len(c);

		if(c == '"' || c == '\\'){
			tmp[0] = '\\';
			tmp[1] = (char)c;
			elen = 2;
		}else if(c < 0x20){
			elen = (size_t)snprintf(tmp, sizeof(tmp), "\\u%04x", c);
		}else if(seq == 1){
			tmp[0] = (char)c;
			elen = 1;
		}else if(seq > 1 && strnlen(s, seq) == seq && kg_utf8__valid((const uint8_t *)s, seq)){
			e = s;
			elen = seq;
		}else{
			e = "\\ufffd";
			elen = 6;
			seq = 1;
		}
		s += seq > 1 ? seq : 1;
		if(n + elen < cap) memcpy(out + n, e, elen);
		n += elen;
	}
	if(cap) out[n < cap ? n : cap - 1] = '\0';
	return n;
}

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

/* A JSON string literal of the NUL-terminated s, escaped by kg_json__escape. */
static void put_json_string(struct tbuf *t, const char *s)
{
	size_t room;

	put_str(t, "\"", 1);
	room = t->len < t->cap ? t->cap - t->len : 0;
	t->len += kg_json__escape(room ? t->buf + t->len : NULL, room, s, strlen(s));
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
	int n = kg_numfmt__double(v, num);
	put_str(t, num, (size_t)n);
}

/* Canonical JSON of a RAW/AGGREGATE record (see json.h); keys in the order of SPEC's examples,
 * aggregate values in their stored order. Returns the length of the text; when that is > cap - 1
 * buf holds its first cap - 1 bytes and a NUL (cap > 0); the caller retries with length + 1.
 * Returns 0 for a BRIDGE or unknown record (its Kafka value is the payload itself). No allocation,
 * any thread. */
size_t kg_json__record(const struct kg_record *rec, char *buf, size_t cap)
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
