/* spool_frame.c -- the spool's record framing: CRC32C (Castagnoli), frame headers, validating a
 * frame in a segment file through the read-ahead buffer, and resynchronising after damage. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool_internal.h"

/* ---- CRC32C: the SSE4.2 instruction where the CPU has it (checked once at run time), else
 * slicing-by-8 tables; both give the same values (test_spool compares them) ---- */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static uint32_t (*crc_fn)(uint32_t crc, const void *buf, size_t n) = kg_spool_crc32c_sw;

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <nmmintrin.h>
#define KG_CRC_HW 1

__attribute__((target("sse4.2")))
static uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	uint64_t c = ~crc;

	while(n >= 8){
		uint64_t w;
		memcpy(&w, p, 8);
		c = _mm_crc32_u64(c, w);
		p += 8;
		n -= 8;
	}
	while(n--) c = _mm_crc32_u8((uint32_t)c, *p++);
	return ~(uint32_t)c;
}
#endif

static void crc_init(void)
{
	for(uint32_t i = 0; i < 256; i++){
		uint32_t c = i;
		for(int k = 0; k < 8; k++){
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		}
		crc_table[0][i] = c;
	}
	for(uint32_t i = 0; i < 256; i++){
		for(int k = 1; k < 8; k++){
			crc_table[k][i] = (crc_table[k - 1][i] >> 8) ^ crc_table[0][crc_table[k - 1][i] & 0xff];
		}
	}
	assert(kg_spool_crc32c_sw(0, "123456789", 9) == 0xE3069283u);
#ifdef KG_CRC_HW
	__builtin_cpu_init();
	if(__builtin_cpu_supports("sse4.2")) crc_fn = crc32c_hw;
	assert(crc_fn(0, "123456789", 9) == 0xE3069283u);
#endif
}

/* The table version, whatever the CPU (spool_internal.h; for the tests). Pure; any thread, after
 * the first kg_spool_crc32c call or kg_spool_crc32c_hw. */
uint32_t kg_spool_crc32c_sw(uint32_t crc, const void *buf, size_t n)
{
	const uint8_t *p = buf;

	crc = ~crc;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	while(n >= 8){
		uint64_t w;
		memcpy(&w, p, 8);
		w ^= crc;
		crc = crc_table[7][w & 0xff] ^ crc_table[6][(w >> 8) & 0xff]
			^ crc_table[5][(w >> 16) & 0xff] ^ crc_table[4][(w >> 24) & 0xff]
			^ crc_table[3][(w >> 32) & 0xff] ^ crc_table[2][(w >> 40) & 0xff]
			^ crc_table[1][(w >> 48) & 0xff] ^ crc_table[0][w >> 56];
		p += 8;
		n -= 8;
	}
#endif
	while(n--){
		crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	}
	return ~crc;
}

/* See spool_internal.h. */
int kg_spool_crc32c_hw(void)
{
	pthread_once(&crc_once, crc_init);
	return crc_fn != kg_spool_crc32c_sw;
}

/* zlib-style running CRC32C: start with 0, feed pieces, the result is the CRC of their
 * concatenation. Pure; any thread. */
uint32_t kg_spool_crc32c(uint32_t crc, const void *buf, size_t n)
{
	pthread_once(&crc_once, crc_init);
	return crc_fn(crc, buf, n);
}

void kg_spool_put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

uint32_t kg_spool_get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The 12-byte header of a frame holding body[0, len). Pure. */
void kg_spool_frame_header(uint8_t hdr[SPOOL_HDR], const void *body, uint32_t len)
{
	kg_spool_put_le32(hdr, SPOOL_MAGIC);
	kg_spool_put_le32(hdr + 4, len);
	kg_spool_put_le32(hdr + 8, kg_spool_crc32c(kg_spool_crc32c(0, hdr + 4, 4), body, len));
}

/* pread until n bytes or end of file. Returns the bytes read or -errno. */
ssize_t kg_spool_pread_full(int fd, void *buf, size_t n, uint64_t off)
{
	size_t done = 0;

	while(done < n){
		ssize_t r = pread(fd, (uint8_t *)buf + done, n - done, (off_t)(off + done));
		if(r < 0){
			if(errno == EINTR) continue;
			return -errno;
		}
		if(r == 0) break;
		done += (size_t)r;
	}
	return (ssize_t)done;
}

/* Copy seg bytes [off, off + n) into dst through the read-ahead buffer; never reads at or beyond
 * bound (a file offset the caller knows is fully written). Returns bytes copied (short at end of
 * file) or -errno. Reader thread (or open). */
static ssize_t read_bytes(struct kg_spool *sp, struct kg_seg *seg, uint64_t off, void *dst, size_t n, uint64_t bound)
{
	ssize_t got;
	size_t want;

	assert(off + n <= bound);
	if(n == 0) return 0;
	if(sp->rbuf_seg == seg && off >= sp->rbuf_off && off + n <= sp->rbuf_off + sp->rbuf_len){
		memcpy(dst, sp->rbuf + (off - sp->rbuf_off), n);
		return (ssize_t)n;
	}
	if(n >= SPOOL_RBUF / 2) return kg_spool_pread_full(seg->fd, dst, n, off);
	want = bound - off > SPOOL_RBUF ? SPOOL_RBUF : (size_t)(bound - off);
	sp->rbuf_seg = NULL;
	got = kg_spool_pread_full(seg->fd, sp->rbuf, want, off);
	if(got < 0) return got;
	sp->rbuf_seg = seg;
	sp->rbuf_off = off;
	sp->rbuf_len = (size_t)got;
	if((size_t)got < n) n = (size_t)got;
	memcpy(dst, sp->rbuf, n);
	return (ssize_t)n;
}

/* See spool_internal.h. */
int kg_spool_frame_try(struct kg_spool *sp, struct kg_seg *seg, uint64_t off, uint64_t bound,
	uint8_t **body, uint32_t *len)
{
	uint8_t hdr[SPOOL_HDR], *b;
	uint32_t blen;
	ssize_t r;

	if(bound < off || bound - off < SPOOL_HDR) return KG_FRAME_SHORT;
	r = read_bytes(sp, seg, off, hdr, SPOOL_HDR, bound);
	if(r < 0) return (int)r;
	if(r < (ssize_t)SPOOL_HDR) return KG_FRAME_SHORT;
	blen = kg_spool_get_le32(hdr + 4);
	if(kg_spool_get_le32(hdr) != SPOOL_MAGIC || blen > SPOOL_MAX_BODY) return KG_FRAME_BAD;
	if(bound - off - SPOOL_HDR < blen) return KG_FRAME_SHORT;
	b = malloc(blen ? blen : 1);
	if(!b) return -ENOMEM;
	r = read_bytes(sp, seg, off + SPOOL_HDR, b, blen, bound);
	if(r < 0 || r < (ssize_t)blen){
		free(b);
		return r < 0 ? (int)r : KG_FRAME_SHORT;
	}
	if(kg_spool_crc32c(kg_spool_crc32c(0, hdr + 4, 4), b, blen) != kg_spool_get_le32(hdr + 8)){
		free(b);
		return KG_FRAME_BAD;
	}
	if(body){
		*body = b;
	}else{
		free(b);
	}
	*len = blen;
	return KG_FRAME_OK;
}

/* See spool_internal.h. Reader thread (or open). */
int kg_spool_frame_resync(struct kg_spool *sp, struct kg_seg *seg, uint64_t off, uint64_t bound, uint64_t *found)
{
	uint8_t magic[4];
	uint64_t at = off + 1;

	kg_spool_put_le32(magic, SPOOL_MAGIC);
	while(at < bound && bound - at >= SPOOL_HDR){
		size_t want = bound - at > SPOOL_RBUF ? SPOOL_RBUF : (size_t)(bound - at);
		ssize_t got = kg_spool_pread_full(seg->fd, sp->scan, want, at);
		if(got < 0) return (int)got;
		if(got < 4) return 0;
		for(size_t i = 0; i + 4 <= (size_t)got; i++){
			uint8_t *m = memmem(sp->scan + i, (size_t)got - i, magic, 4);
			uint32_t l;
			if(!m) break;
			i = (size_t)(m - sp->scan);
			int r = kg_spool_frame_try(sp, seg, at + i, bound, NULL, &l);
			if(r < 0) return r;
			if(r == KG_FRAME_OK){
				*found = at + i;
				return 1;
			}
		}
		if((size_t)got < want) return 0;
		at += (size_t)got - 3;
	}
	return 0;
}
