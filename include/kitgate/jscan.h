/* jscan.h -- the measurement payload's JSON reader: one strict pass (RFC 8259) over a document that
 * must be one object, capturing a few named members as views into the text, with the rules the
 * validator adds (duplicate names and \u0000 escapes refused). No tree; allocates only for objects
 * of over 32 names of interest or for escaped names (kg_jscan__done frees it). */
#ifndef KITGATE_JSCAN_H
#define KITGATE_JSCAN_H

#include <stddef.h>
#include <stdint.h>

#define KG_JSCAN_FIELDS_MAX 16    /* names one scan captures */
#define KG_JSCAN_MAX_DEPTH 1000   /* open arrays/objects, as cJSON's CJSON_NESTING_LIMIT */

enum kg_jtype {
	KG_J_NONE = 0,   /* member absent */
	KG_J_NULL,
	KG_J_FALSE,
	KG_J_TRUE,
	KG_J_NUMBER,
	KG_J_STRING,
	KG_J_ARRAY,
	KG_J_OBJECT,
};

/* A view into the document: a string's raw bytes between its quotes (escaped: 1 if it holds a
 * backslash; then decode with kg_jscan__string), or a number's token. */
struct kg_jstr {
	const char *p;
	uint32_t len;
	uint8_t escaped;
};

struct kg_jval {
	uint8_t type;         /* enum kg_jtype */
	struct kg_jstr text;  /* KG_J_STRING: raw string; KG_J_NUMBER: token; else unset */
};

/* A member of the listed object: name is decoded (escaped 0), a view into the document or into
 * the scan's scratch memory (valid until kg_jscan__done). */
struct kg_jmember {
	struct kg_jstr name;
	struct kg_jval val;
};

enum kg_jscan_result {
	KG_JSCAN_OK = 0,
	KG_JSCAN_SYNTAX,       /* not one JSON text (or nested over KG_JSCAN_MAX_DEPTH) */
	KG_JSCAN_TRAILING,     /* one JSON value followed by more than whitespace */
	KG_JSCAN_NOT_OBJECT,   /* one JSON value, not an object */
	KG_JSCAN_DUPLICATE,    /* a name twice in the top-level object or in the listed object */
	KG_JSCAN_NUL_ESCAPE,   /* a string anywhere holds \u0000 */
	KG_JSCAN_NOMEM,
};

/* A name to capture, with its length: KG_JNAME("id"). */
struct kg_jname {
	const char *s;
	uint32_t len;
};
#define KG_JNAME(lit) { lit, sizeof(lit) - 1 }

struct kg_jscan {
	/* in: the top-level member names to capture (decoded, compared exactly), and which of them,
	 * when its value is an object, has its members listed (-1: none) into members[0, members_cap) */
	const struct kg_jname *fields;
	int nfields;
	int list_field;
	struct kg_jmember *members;
	size_t members_cap;
	/* out */
	struct kg_jval field[KG_JSCAN_FIELDS_MAX];  /* first occurrence of each; type NONE if absent */
	size_t nmembers;                            /* all members of the listed object */
	/* private */
	char *scratch;
	size_t scratch_used, scratch_cap;
};

/* Read text[0, len) (need not be NUL-terminated; must be valid UTF-8 without NUL bytes, as the
 * validator checks first). The result is the first that applies in this order: SYNTAX, TRAILING,
 * NOT_OBJECT, DUPLICATE (names compared as cJSON does, up to a \u0000), NUL_ESCAPE. Whitespace is
 * RFC 8259's four characters; numbers are RFC 8259's grammar; strings refuse control characters,
 * escapes other than RFC 8259's and unpaired surrogates. js->field and
 * js->members are filled whatever the result. Call kg_jscan__done(js) afterwards in every case.
 * Any thread. */
enum kg_jscan_result kg_jscan__object(struct kg_jscan *js, const char *text, size_t len);

/* Free what a scan allocated (only for very large objects or many escaped names). */
void kg_jscan__done(struct kg_jscan *js);

/* Decode a KG_J_STRING view into out[0, cap): returns the decoded length (bytes), which may be
 * larger than cap (then out holds a prefix). Not NUL-terminated. The view must come from a scan
 * that returned OK (its escapes are valid). Pure. */
size_t kg_jscan__string(const struct kg_jstr *s, char *out, size_t cap);

/* The double a KG_J_NUMBER token denotes: correctly rounded, as strtod (±HUGE_VAL on overflow).
 * Exact fast path for a significand up to 2^53 and |exponent| <= 22, strtod_l in the "C" locale
 * otherwise (whatever the process's LC_NUMERIC; allocates for a token over 63 characters and
 * returns NaN if that fails). Leaves errno alone. A token that is not a JSON number reads as its
 * longest valid prefix, never past s->len. Pure, any thread. */
double kg_jscan__number(const struct kg_jstr *s);

#endif
