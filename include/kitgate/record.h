/* record.h -- an accepted message as the broker thread hands it on: decoded form and the compact
 * binary encoding that the hand-off queue and the spool carry. */
#ifndef KITGATE_RECORD_H
#define KITGATE_RECORD_H

#include <stddef.h>
#include <stdint.h>

enum kg_kind {
	KG_KIND_RAW = 1,       /* kit/<serial>/measurement/raw */
	KG_KIND_AGGREGATE = 2, /* kit/<serial>/measurement/aggregate */
	KG_KIND_BRIDGE = 3,    /* any other topic matched by bridge_topics: forwarded verbatim */
};

#define KG_SERIAL_MAX 64    /* bytes; AstroPlant serials are varchar(20) */
#define KG_AGG_MAX 16       /* aggregate "values" entries */
#define KG_AGG_NAME_MAX 50  /* characters per aggregate value name */
#define KG_RECORD_MAX_FIXED 4096 /* upper bound of an encoded RAW/AGGREGATE record (worst case 3451) */

struct kg_agg_value {
	char name[KG_AGG_NAME_MAX * 4 + 1]; /* UTF-8, NUL-terminated; <= 50 characters */
	double value;
};

/* Decoded record. For RAW/AGGREGATE every field is inline. For BRIDGE, topic and payload are
 * views into the buffer the record was decoded from (valid only while that buffer lives). */
struct kg_record {
	uint8_t kind;                      /* enum kg_kind */
	uint8_t id[16];                    /* UUID bytes, RFC 4122 order */
	char serial[KG_SERIAL_MAX + 1];    /* kit serial (from the topic when the payload had none) */
	int32_t peripheral;
	int32_t quantity_type;
	int64_t datetime_ms;               /* RAW */
	double value;                      /* RAW */
	int64_t start_ms, end_ms;          /* AGGREGATE */
	uint8_t nvalues;                   /* AGGREGATE, 1..KG_AGG_MAX */
	const char *topic;                 /* BRIDGE: view, not NUL-terminated */
	uint16_t topic_len;
	const uint8_t *payload;            /* BRIDGE: view */
	uint32_t payload_len;
	/* last, so that a record's used bytes are a prefix (kg_record__used): about 3.2 KB of the
	 * struct's 3.6 KB are these inline names, and only an AGGREGATE uses its first nvalues */
	struct kg_agg_value values[KG_AGG_MAX];
};

/* Bytes of rec in use: everything before `values`, plus nvalues entries of it for an AGGREGATE
 * (about 130 bytes for a RAW or BRIDGE record instead of sizeof(struct kg_record)). Pure. */
size_t kg_record__used(const struct kg_record *rec);

/* Copies the bytes of src in use (kg_record__used) into dst: what a batch keeps of a record, at a
 * fraction of a struct copy. dst's other values entries are left as they were. Pure. */
void kg_record__copy(struct kg_record *dst, const struct kg_record *src);

/* Bytes a record stored sized to its data takes in an array of them: kg_record__used rounded up
 * so that the next one is aligned as a struct kg_record. Pure. */
size_t kg_record__stored(const struct kg_record *rec);

/* Copies src sized to its data to dst (which must be aligned as a struct kg_record and hold
 * kg_record__stored(src) bytes) and returns kg_record__stored(src): dst is then a record of which
 * only the used bytes exist, so read it through a pointer (never copy it by value, never read
 * values[] past nvalues). Pure. */
size_t kg_record__store(void *dst, const struct kg_record *src);

/* Set rec's kind and clear what not every kind writes: the RAW and AGGREGATE scalars, nvalues and
 * the BRIDGE views (id, serial, peripheral, quantity_type and the value names are left as they
 * are: every decoder writes them). Cheap (no memset of the value array). Pure, any thread. */
void kg_record__reset(struct kg_record *rec, uint8_t kind);

/* Encode rec into buf. Returns the encoded length; if it is > cap nothing useful was written and
 * the caller must retry with a buffer of that size. Pure, any thread. */
size_t kg_record__encode(const struct kg_record *rec, uint8_t *buf, size_t cap);

/* Decode len bytes. Returns 0, or -1 when the bytes are not a well-formed record. BRIDGE views
 * point into buf. Pure, any thread. */
int kg_record__decode(const uint8_t *buf, size_t len, struct kg_record *out);

#endif
