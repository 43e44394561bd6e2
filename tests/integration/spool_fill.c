/* spool_fill.c -- test helper: write a spool without a broker. `spool_fill DIR NRAW NBRIDGE
 * [SEGMENT_BYTES]` appends NRAW raw measurements (kit k-fill-0001, values 0..NRAW-1) and then
 * NBRIDGE bridge records (topic fill/<i>, payload {"i":<i>}) and closes the spool cleanly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kitgate/record.h"
#include "kitgate/spool.h"

static int put(struct kg_spool *sp, const struct kg_record *rec)
{
	uint8_t buf[8192];
	size_t n = kg_record__encode(rec, buf, sizeof(buf));
	if(n > sizeof(buf)) return -1;
	kg_spool__maintain(sp);
	return kg_spool__append(sp, buf, (uint32_t)n, NULL);
}

int main(int argc, char **argv)
{
	struct kg_spool *sp;
	long nraw, nbridge;

	if(argc < 4){
		fprintf(stderr, "usage: spool_fill DIR NRAW NBRIDGE [SEGMENT_BYTES]\n");
		return 2;
	}
	nraw = atol(argv[2]);
	nbridge = atol(argv[3]);
	if(kg_spool__open(&sp, argv[1], argc > 4 ? strtoull(argv[4], NULL, 10) : 0)) return 1;
	for(long i = 0; i < nraw; i++){
		struct kg_record r;
		memset(&r, 0, sizeof(r));
		r.kind = KG_KIND_RAW;
		for(int k = 0; k < 16; k++) r.id[k] = (uint8_t)(i >> (8 * (k % 4))) ^ (uint8_t)k;
		r.id[6] = 0x40 | (r.id[6] & 0x0f);
		r.id[8] = 0x80 | (r.id[8] & 0x3f);
		strcpy(r.serial, "k-fill-0001");
		r.peripheral = 7;
		r.quantity_type = 1;
		r.datetime_ms = 1700000000000 + i * 1000;
		r.value = (double)i;
		if(put(sp, &r)) return 1;
	}
	for(long i = 0; i < nbridge; i++){
		struct kg_record r;
		char topic[64], payload[64];
		memset(&r, 0, sizeof(r));
		r.kind = KG_KIND_BRIDGE;
		r.topic_len = (uint16_t)snprintf(topic, sizeof(topic), "fill/%ld", i);
		r.topic = topic;
		r.payload_len = (uint32_t)snprintf(payload, sizeof(payload), "{\"i\":%ld}", i);
		r.payload = (const uint8_t *)payload;
		if(put(sp, &r)) return 1;
	}
	kg_spool__close(sp);
	return 0;
}
