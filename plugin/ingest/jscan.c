/* jscan.c -- the measurement payload's JSON reader (contract in jscan.h): one strict pass, no tree.
 *
 * Why not cJSON here: on the broker thread, cJSON's parse of a 180-byte measurement (a tree of
 * about 17 allocations, strtod with localeconv per number) and the lookups, duplicate scans and
 * \u0000 rescan around it cost more than the whole per-message budget (1.5 us); cJSON stays the
 * reference the fuzz target tests/fuzz/fuzz_jscan.c compares this reader with. */
#include <assert.h>
#include <errno.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kitgate/jscan.h"

#define INLINE_NAMES 32  /* names of one object compared without allocating */

/* A list of decoded names, for the duplicate check. */
struct names {
	struct kg_jstr *v;
	size_t n, cap;
	struct kg_jstr inl[INLINE_NAMES];
};

struct scan {
	struct kg_jscan *js;
	const char *end;
	int nul_escape;   /* a \u0000 seen in any string */
	int nomem;
};

static const char *ws(const char *p, const char *end)
{
	while(p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
	return p;
}

static int hexval(unsigned char c)
{
	if(c >= '0' && c <= '9') return c - '0';
	c |= 0x20;
	if(c >= 'a' && c <= 'f') return c - 'a' + 10;
	return -1;
}

/* The 4 hex digits at p (p + 4 <= end checked by the caller), or -1. */
static long hex4(const char *p)
{
	long v = 0;
	for(int i = 0; i < 4; i++){
		int h = hexval((unsigned char)p[i]);
		if(h < 0) return -1;
		v = v << 4 | h;
	}
	return v;
}

/* 1 for the bytes that end a run of plain string bytes: '"', '\\' and control characters. */
static const uint8_t string_special[256] = {
	[0x00] = 1, [0x01] = 1, [0x02] = 1, [0x03] = 1, [0x04] = 1, [0x05] = 1, [0x06] = 1, [0x07] = 1,
	[0x08] = 1, [0x09] = 1, [0x0A] = 1, [0x0B] = 1, [0x0C] = 1, [0x0D] = 1, [0x0E] = 1, [0x0F] = 1,
	[0x10] = 1, [0x11] = 1, [0x12] = 1, [0x13] = 1, [0x14] = 1, [0x15] = 1, [0x16] = 1, [0x17] = 1,
	[0x18] = 1, [0x19] = 1, [0x1A] = 1, [0x1B] = 1, [0x1C] = 1, [0x1D] = 1, [0x1E] = 1, [0x1F] = 1,
	['"'] = 1, ['\\'] = 1,
};

/* A string whose opening quote is at p. Returns the position after its closing quote, or NULL.
 * Sets *escaped if it holds a backslash; s->nul_escape for \u0000. Escapes as cJSON accepts them:
 * the eight one-character ones and \uXXXX, a high surrogate only followed by \u and a low one. */
static const char *scan_string(struct scan *s, const char *p, uint8_t *escaped)
{
	const char *end = s->end;

	p++;
	for(;;){
		unsigned char c;

		while(p < end && !string_special[(unsigned char)*p]) p++;
		if(p >= end) return NULL;
		c = (unsigned char)*p;
		if(c == '"') return p + 1;
		if(c < 0x20) return NULL;
		*escaped = 1;
		if(end - p < 2) return NULL;
		switch(p[1]){
		case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
			p += 2;
			break;
		case 'u': {
			long u;
			if(end - p < 6 || (u = hex4(p + 2)) < 0) return NULL;
			p += 6;
			if(u >= 0xDC00 && u <= 0xDFFF) return NULL;
			if(u >= 0xD800 && u <= 0xDBFF){
				long lo;
				if(end - p < 6 || p[0] != '\\' || p[1] != 'u') return NULL;
				lo = hex4(p + 2);
				if(lo < 0xDC00 || lo > 0xDFFF) return NULL;
				p += 6;
			}
			if(u == 0) s->nul_escape = 1;
			break;
		}
		default:
			return NULL;
		}
	}
}

/* The longest RFC 8259 number at p (what follows it is the next token's business). Returns its
 * end, or NULL if there is none. */
static const char *scan_number(const char *p, const char *end)
{
	const char *q = p, *good;

	if(q < end && *q == '-') q++;
	if(q >= end || *q < '0' || *q > '9') return NULL;
	if(*q == '0') q++;
	else while(q < end && *q >= '0' && *q <= '9') q++;
	good = q;
	if(q < end && *q == '.'){
		q++;
		if(q >= end || *q < '0' || *q > '9') return good;
		while(q < end && *q >= '0' && *q <= '9') q++;
		good = q;
	}
	if(q < end && (*q == 'e' || *q == 'E')){
		q++;
		if(q < end && (*q == '+' || *q == '-')) q++;
		if(q >= end || *q < '0' || *q > '9') return good;
		while(q < end && *q >= '0' && *q <= '9') q++;
		good = q;
	}
	return good;
}

/* A scalar at p (not a container): its end and type, or NULL. */
static const char *scan_scalar(struct scan *s, const char *p, struct kg_jval *v)
{
	const char *end = s->end;
	const char *q;

	switch(*p){
	case '"':
		v->type = KG_J_STRING;
		v->text.escaped = 0;
		q = scan_string(s, p, &v->text.escaped);
		if(!q) return NULL;
		v->text.p = p + 1;
		v->text.len = (uint32_t)(q - p - 2);
		return q;
	case 't':
		v->type = KG_J_TRUE;
		return end - p >= 4 && !memcmp(p, "true", 4) ? p + 4 : NULL;
	case 'f':
		v->type = KG_J_FALSE;
		return end - p >= 5 && !memcmp(p, "false", 5) ? p + 5 : NULL;
	case 'n':
		v->type = KG_J_NULL;
		return end - p >= 4 && !memcmp(p, "null", 4) ? p + 4 : NULL;
	default:
		v->type = KG_J_NUMBER;
		q = scan_number(p, end);
		if(!q) return NULL;
		v->text.p = p;
		v->text.len = (uint32_t)(q - p);
		v->text.escaped = 0;
		return q;
	}
}

/* A member's name at p (its opening quote) and the ':' after it: *name is a view of the name's
 * text (escapes not decoded). Returns the position of the value (whitespace skipped), or NULL. */
static const char *scan_name(struct scan *s, const char *p, struct kg_jstr *name)
{
	const char *end = s->end;

	if(p >= end || *p != '"') return NULL;
	name->escaped = 0;
	name->p = p + 1;
	p = scan_string(s, p, &name->escaped);
	if(!p) return NULL;
	name->len = (uint32_t)(p - name->p - 1);
	p = ws(p, end);
	if(p >= end || *p != ':') return NULL;
	return ws(p + 1, end);
}

/* One value of any kind at p (after whitespace) inside depth open containers; iterative, so the
 * nesting limit costs no stack. Returns its end, or NULL. v gets the type (and a scalar's view). */
static const char *skip_value(struct scan *s, const char *p, int depth, struct kg_jval *v)
{
	const char *end = s->end;
	uint64_t is_array[(KG_JSCAN_MAX_DEPTH + 63) / 64];
	const int base = depth;
	struct kg_jval tmp;
	struct kg_jstr name;

	if(p >= end) return NULL;
	if(*p != '{' && *p != '[') return scan_scalar(s, p, v);
	v->type = *p == '{' ? KG_J_OBJECT : KG_J_ARRAY;
	for(;;){
		/* a value starts at p */
		if(p >= end) return NULL;
		if(*p == '{' || *p == '['){
			int arr = *p == '[';
			int lvl;

			if(depth >= KG_JSCAN_MAX_DEPTH) return NULL;
			lvl = depth - base;
			if(arr) is_array[lvl / 64] |= (uint64_t)1 << (lvl % 64);
			else is_array[lvl / 64] &= ~((uint64_t)1 << (lvl % 64));
			depth++;
			p = ws(p + 1, end);
			if(p < end && *p == (arr ? ']' : '}')){
				p++;
				depth--;
			}else if(arr){
				continue;           /* its first element */
			}else{
				goto member;        /* its first member */
			}
		}else{
			p = scan_scalar(s, p, &tmp);
			if(!p) return NULL;
		}
		/* after a value: close containers, or go on to the next element/member */
		for(;;){
			int lvl;

			if(depth == base) return p;
			lvl = depth - 1 - base;
			p = ws(p, end);
			if(p >= end) return NULL;
			if(*p == ','){
				p = ws(p + 1, end);
				if(is_array[lvl / 64] >> (lvl % 64) & 1) break;  /* next element */
				goto member;
			}
			if(*p != ((is_array[lvl / 64] >> (lvl % 64) & 1) ? ']' : '}')) return NULL;
			p++;
			depth--;
		}
		continue;
member:
		p = scan_name(s, p, &name);
		if(!p) return NULL;
	}
}

/* ---- names: decoding and the duplicate check ---- */

/* See jscan.h. */
size_t kg_jscan__string(const struct kg_jstr *s, char *out, size_t cap)
{
	const char *p = s->p, *end = s->p + s->len;
	size_t n = 0;

#define PUT(c) do{ char c_ = (char)(c); if(n < cap) out[n] = c_; n++; }while(0)
	if(!s->escaped){
		memcpy(out, p, s->len < cap ? s->len : cap);
		return s->len;
	}
	while(p < end){
		unsigned long u;

		if(*p != '\\'){
			PUT(*p++);
			continue;
		}
		switch(p[1]){
		case 'b': PUT('\b'); p += 2; continue;
		case 'f': PUT('\f'); p += 2; continue;
		case 'n': PUT('\n'); p += 2; continue;
		case 'r': PUT('\r'); p += 2; continue;
		case 't': PUT('\t'); p += 2; continue;
		case 'u': break;
		default: PUT(p[1]); p += 2; continue;  /* " \ / */
		}
		u = (unsigned long)hex4(p + 2);
		p += 6;
		if(u >= 0xD800 && u <= 0xDBFF){
			u = 0x10000 + ((u - 0xD800) << 10) + ((unsigned long)hex4(p + 2) - 0xDC00);
			p += 6;
		}
		if(u < 0x80){
			PUT(u);
		}else if(u < 0x800){
			PUT(0xC0 | u >> 6);
			PUT(0x80 | (u & 0x3F));
		}else if(u < 0x10000){
			PUT(0xE0 | u >> 12);
			PUT(0x80 | (u >> 6 & 0x3F));
			PUT(0x80 | (u & 0x3F));
		}else{
			PUT(0xF0 | u >> 18);
			PUT(0x80 | (u >> 12 & 0x3F));
			PUT(0x80 | (u >> 6 & 0x3F));
			PUT(0x80 | (u & 0x3F));
		}
	}
#undef PUT
	return n;
}

/* The name as cJSON compares it: decoded, up to its first NUL. Escape-free names stay views into
 * the text; others are decoded into the scan's scratch (at most the document's length in all). */
static int plain_name(struct scan *s, struct kg_jstr *name)
{
	struct kg_jscan *js = s->js;
	size_t n;
	char *nul;

	if(!name->escaped) return 0;
	if(!js->scratch){
		js->scratch_cap = (size_t)(s->end - name->p);
		js->scratch = malloc(js->scratch_cap);
		if(!js->scratch) return -1;
	}
	assert(js->scratch_used + name->len <= js->scratch_cap); /* decoding never lengthens */
	n = kg_jscan__string(name, js->scratch + js->scratch_used, name->len);
	nul = memchr(js->scratch + js->scratch_used, '\0', n);
	if(nul) n = (size_t)(nul - (js->scratch + js->scratch_used));
	name->p = js->scratch + js->scratch_used;
	name->len = (uint32_t)n;
	name->escaped = 0;
	js->scratch_used += n;
	return 0;
}

static int names_add(struct names *l, struct kg_jstr name)
{
	if(l->n == l->cap){
		size_t cap = l->cap * 2;
		struct kg_jstr *v = l->v == l->inl ? malloc(cap * sizeof(*v)) : realloc(l->v, cap * sizeof(*v));

		if(!v) return -1;
		if(l->v == l->inl) memcpy(v, l->inl, sizeof(l->inl));
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = name;
	return 0;
}

static void names_init(struct names *l)
{
	l->v = l->inl;
	l->n = 0;
	l->cap = INLINE_NAMES;
}

static void names_free(struct names *l)
{
	if(l->v != l->inl) free(l->v);
}

static int cmp_name(const void *a, const void *b)
{
	const struct kg_jstr *x = a, *y = b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->p, y->p, n);

	if(c) return c;
	return x->len < y->len ? -1 : x->len > y->len;
}

/* 1 if two names of l are equal: pairwise up to INLINE_NAMES, sorted (in place) beyond. */
static int names_dup(struct names *l)
{
	if(l->n <= INLINE_NAMES){
		for(size_t i = 0; i < l->n; i++){
			for(size_t k = i + 1; k < l->n; k++){
				if(l->v[i].len == l->v[k].len && !memcmp(l->v[i].p, l->v[k].p, l->v[i].len)) return 1;
			}
		}
		return 0;
	}
	qsort(l->v, l->n, sizeof(l->v[0]), cmp_name);
	for(size_t i = 1; i < l->n; i++){
		if(!cmp_name(&l->v[i - 1], &l->v[i])) return 1;
	}
	return 0;
}

/* Index of name (len >= 1) among the fields, or -1. */
static int field_index(const struct kg_jscan *js, const struct kg_jstr *name)
{
	for(int i = 0; i < js->nfields; i++){
		const struct kg_jname *f = &js->fields[i];
		if(f->len == name->len && f->s[0] == name->p[0] && !memcmp(f->s, name->p, f->len)) return i;
	}
	return -1;
}

/* ---- objects ---- */

/* The members of an object whose '{' is at p, at depth (its own level included), listed into
 * js->members (all names into l for the duplicate check). Returns its end, or NULL. */
static const char *list_object(struct scan *s, const char *p, int depth, struct names *l)
{
	struct kg_jscan *js = s->js;
	const char *end = s->end;

	p = ws(p + 1, end);
	if(p < end && *p == '}') return p + 1;
	for(;;){
		struct kg_jmember m;

		p = scan_name(s, p, &m.name);
		if(!p) return NULL;
		p = skip_value(s, p, depth, &m.val);
		if(!p) return NULL;
		if(plain_name(s, &m.name) || names_add(l, m.name)){
			s->nomem = 1;
			return NULL;
		}
		if(js->nmembers < js->members_cap) js->members[js->nmembers] = m;
		js->nmembers++;
		p = ws(p, end);
		if(p >= end) return NULL;
		if(*p == '}') return p + 1;
		if(*p != ',') return NULL;
		p = ws(p + 1, end);
	}
}

/* The top-level object at p ('{'). *dup is set for a repeated name (known fields by a bit mask,
 * the others in l). Returns its end, or NULL. */
static const char *top_object(struct scan *s, const char *p, struct names *l, struct names *listed, int *dup)
{
	struct kg_jscan *js = s->js;
	const char *end = s->end;
	uint32_t seen = 0;

	p = ws(p + 1, end);
	if(p < end && *p == '}') return p + 1;
	for(;;){
		struct kg_jstr name;
		struct kg_jval v, *dst = &v;
		int f;

		p = scan_name(s, p, &name);
		if(!p) return NULL;
		if(plain_name(s, &name)){
			s->nomem = 1;
			return NULL;
		}
		f = name.len ? field_index(js, &name) : -1;
		if(f >= 0){
			if(seen & (uint32_t)1 << f) *dup = 1;
			else dst = &js->field[f];
			seen |= (uint32_t)1 << f;
		}else if(names_add(l, name)){
			s->nomem = 1;
			return NULL;
		}
		if(f >= 0 && f == js->list_field && dst != &v && p < end && *p == '{'){
			dst->type = KG_J_OBJECT;
			p = list_object(s, p, 2, listed);
		}else{
			p = skip_value(s, p, 1, dst);
		}
		if(!p) return NULL;
		p = ws(p, end);
		if(p >= end) return NULL;
		if(*p == '}') return p + 1;
		if(*p != ',') return NULL;
		p = ws(p + 1, end);
	}
}

/* See jscan.h. */
enum kg_jscan_result kg_jscan__object(struct kg_jscan *js, const char *text, size_t len)
{
	struct scan s = {js, text + len, 0, 0};
	struct names l, listed;
	struct kg_jval top;
	const char *p, *q;
	int dup = 0;
	enum kg_jscan_result r;

	assert(js && js->nfields >= 0 && js->nfields <= KG_JSCAN_FIELDS_MAX);
	assert(js->list_field < js->nfields && (js->list_field < 0 || js->members));
	memset(js->field, 0, (size_t)js->nfields * sizeof(js->field[0]));
	js->nmembers = 0;
	js->scratch = NULL;
	js->scratch_used = js->scratch_cap = 0;
	names_init(&l);
	names_init(&listed);
	p = ws(text, s.end);
	if(p < s.end && *p == '{'){
		q = top_object(&s, p, &l, &listed, &dup);
	}else{
		q = skip_value(&s, p, 0, &top);
	}
	if(!q){
		r = s.nomem ? KG_JSCAN_NOMEM : KG_JSCAN_SYNTAX;
	}else if(ws(q, s.end) != s.end){
		r = KG_JSCAN_TRAILING;
	}else if(*p != '{'){
		r = KG_JSCAN_NOT_OBJECT;
	}else if(dup || names_dup(&l) || names_dup(&listed)){
		r = KG_JSCAN_DUPLICATE;
	}else if(s.nul_escape){
		r = KG_JSCAN_NUL_ESCAPE;
	}else{
		r = KG_JSCAN_OK;
	}
	names_free(&l);
	names_free(&listed);
	return r;
}

/* See jscan.h. */
void kg_jscan__done(struct kg_jscan *js)
{
	free(js->scratch);
	js->scratch = NULL;
}

/* ---- numbers ---- */

static const double pow10_exact[23] = {
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

static locale_t c_numeric;               /* "C" for LC_NUMERIC, made once; (locale_t)0 if that failed */
static pthread_once_t c_numeric_once = PTHREAD_ONCE_INIT;

static void make_c_numeric(void)
{
	c_numeric = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

/* strtod_l in the "C" locale on a NUL-terminated copy: JSON's decimal point is '.' whatever the
 * broker's LC_NUMERIC (a locale whose point is several bytes, e.g. ps_AF's U+066B, would otherwise
 * cut numbers short silently). errno is left as it was. */
static double slow_number(const struct kg_jstr *s)
{
	char stack[64];
	char *buf = s->len < sizeof(stack) ? stack : malloc((size_t)s->len + 1);
	int saved = errno;
	double d;

	if(!buf) return NAN;  /* refused by every rule that reads a number */
	memcpy(buf, s->p, s->len);
	buf[s->len] = '\0';
	pthread_once(&c_numeric_once, make_c_numeric);
	d = c_numeric ? strtod_l(buf, NULL, c_numeric) : NAN; /* no "C" locale: refuse, never misread */
	errno = saved;
	if(buf != stack) free(buf);
	return d;
}

/* See jscan.h. Clinger's fast path: a significand w <= 2^53 and 10^|e| with |e| <= 22 are both
 * exact doubles, so one IEEE multiplication or division is the correctly rounded result. */
double kg_jscan__number(const struct kg_jstr *s)
{
	const char *p = s->p, *end = s->p + s->len;
	uint64_t w = 0;
	int digits = 0, neg = 0, frac = 0;
	long e = 0;

	if(p < end && *p == '-'){
		neg = 1;
		p++;
	}
	for(; p < end && *p >= '0' && *p <= '9'; p++){
		if(w == 0 && *p == '0') continue;   /* leading zeros are not significant */
		if(++digits > 19) return slow_number(s);
		w = w * 10 + (uint64_t)(*p - '0');
	}
	if(p < end && *p == '.'){
		for(p++; p < end && *p >= '0' && *p <= '9'; p++){
			frac++;
			if(w == 0 && *p == '0') continue;
			if(++digits > 19) return slow_number(s);
			w = w * 10 + (uint64_t)(*p - '0');
		}
	}
	if(p < end && (*p == 'e' || *p == 'E')){
		int eneg = 0;
		p++;
		if(p < end && (*p == '+' || *p == '-')) eneg = *p++ == '-';
		for(; p < end && *p >= '0' && *p <= '9'; p++){
			if(e > 100000) return slow_number(s);
			e = e * 10 + (*p - '0');
		}
		if(eneg) e = -e;
	}
	e -= frac;
#if FLT_EVAL_METHOD == 0
	if(w <= ((uint64_t)1 << 53) && e >= -22 && e <= 22){
		double d = (double)w;

		if(e >= 0) d *= pow10_exact[e];
		else d /= pow10_exact[-e];
		return neg ? -d : d;
	}
#endif
	if(w == 0) return neg ? -0.0 : 0.0;
	return slow_number(s);
}
