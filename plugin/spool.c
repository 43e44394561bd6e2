/* spool.c -- the durable spool: checksummed, append-only segment files plus an atomic checkpoint. */

/*
 * On disk, in spool_dir:
 *   <base>.kgs    segment files; <base> is the logical position (%020llu) of the file's first byte.
 *                 Segments are contiguous: a segment ends where the next one begins.
 *   checkpoint    "KGCP1 <pos> <crc32c of pos as 8 LE bytes, hex>\n", replaced atomically
 *                 (checkpoint.tmp, fsync, rename, fsync dir).
 *
 * A record frame (all integers little-endian):
 *   u32 magic 'KGS1' | u32 body length | u32 CRC32C(length bytes || body) | body
 * Logical positions count frame bytes; a record's "end" is the position just after its body.
 * A segment's data is its frames from offset 0; its file may be longer: the rest is zeros
 * (preallocation, see below). A segment's data ends where the next segment begins; the last
 * one's data ends at its last valid frame.
 *
 * Appending (the broker thread, before the PUBACK): the active segment is preallocated with
 * posix_fallocate to segment_bytes (real blocks, so a page fault into it can never need disk
 * space and SIGBUS the broker) and mapped MAP_SHARED; an append is a bounds check, a memcpy of the
 * frame into the mapping and an atomic store of the new end -- no syscall. The mapped pages are
 * the file's page cache, so a record is as safe as after write(2): it survives kill -9 of the
 * process, and a machine crash once kg_spool__sync has run (fdatasync on the fd, which on Linux
 * also writes back pages dirtied through a mapping). The frame is copied body first and magic
 * last, so a process killed part way leaves a frame without its magic, recognisably torn.
 * A record that does not fit in the rest of the mapping starts a new segment, preallocated to
 * max(segment_bytes, frame) -- a record larger than a segment gets a segment of its own. When
 * a segment cannot be preallocated or mapped (disk full, a filesystem without fallocate, the
 * test switch kg_spool__test_disable_mmap) the reason is logged and appends to that segment
 * use one pwritev(2) each, as before; the next segment tries the mapping again. kg_spool__close
 * cuts every mapped file back to its data, so a cleanly closed spool holds exactly its frames.
 *
 * Threads (who may touch what):
 *   - the appender (one thread at a time, serialised by the caller): kg_spool__append,
 *     kg_spool__end. It writes only the active (last) segment, through sp->active and its
 *     mapping (seg->map/map_len belong to the appender while the segment is active), and takes
 *     sp->lock only to add a segment when it rotates. No syscall, no malloc on the common path.
 *     After a rotation it never touches the old segment again; the old mapping stays until the
 *     segment is dropped.
 *   - the reader (one thread): kg_spool__read, kg_spool__sync, kg_spool__commit. It owns the
 *     read-ahead buffer, the scan buffer and the corrupt-count watermark, and is the only thread
 *     that removes segments (never the active one, so the appender's pointer and mapping stay
 *     valid): munmap, close, unlink. It reads with pread (the same page cache the mapping
 *     writes) and takes sp->lock to look segments up and to unlink them from the list.
 *   - any thread: kg_spool__stats, kg_spool__checkpoint, kg_spool__end (atomics only).
 *   - kg_spool__open / kg_spool__close: no other thread may use the spool.
 *   The reader only reads below a limit the caller got after an append returned (the end is
 *   stored with release after the memcpy), so it never reads bytes the appender is still writing.
 *
 * Recovery and counting: open scans every frame from the checkpoint to the end. In the last
 * segment, a region of only zeros after the last valid frame is the end of the data, not damage.
 * Any other bad region at the end of the last segment (no valid frame after it) is cut off with
 * ftruncate (the file is re-extended with zeros when it is mapped), counted in torn_tails when it
 * looks like an append that stopped part way -- the file ends inside the frame, the magic is
 * missing, or the frame's last bytes were never written (its end lies beyond the last non-zero
 * byte) -- and in corrupt_skipped when the frame is complete but fails its checksum. Bad regions
 * followed by valid frames stay in place; open counts each once in corrupt_skipped and the reader
 * skips them (resyncing on the next frame that validates).
 * The reader counts a bad region only if it starts at or beyond everything already counted (a
 * watermark), so reading the same bytes twice (at open and on replay) never double-counts.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "kitgate/log.h"
#include "kitgate/spool.h"

#define SPOOL_MAGIC 0x4B475331u /* 'KGS1' */
#define SPOOL_HDR 12u
#define SPOOL_MAX_BODY (16u * 1024u * 1024u)
#define SPOOL_DEFAULT_SEGMENT (64u * 1024u * 1024u)
#define SPOOL_RBUF (64u * 1024u)
#define SPOOL_SEG_SUFFIX ".kgs"
#define SPOOL_SEG_NAMELEN (20 + 4)

enum frame_result {
	FRAME_BAD = 0,   /* complete but wrong: magic, length or checksum */
	FRAME_OK = 1,
	FRAME_SHORT = 2, /* the bytes end before the frame does */
};

struct kg_seg {
	uint64_t base;
	int fd;
	_Atomic uint64_t size; /* data bytes (the file may be longer: preallocated zeros) */
	atomic_bool dirty;     /* written since the last sync */
	uint8_t *map;          /* MAP_SHARED mapping of the file's [0, map_len), or NULL: pwritev */
	size_t map_len;
};

struct kg_spool {
	char *dir;
	int dirfd;
	uint64_t segment_bytes;

	pthread_mutex_t lock;  /* guards segs/nsegs/cap */
	struct kg_seg **segs;  /* ascending base; the last one is the active one */
	size_t nsegs, cap;

	struct kg_seg *active; /* appender (and open) only */

	_Atomic uint64_t end;
	_Atomic uint64_t checkpoint;
	_Atomic uint64_t bytes;
	_Atomic uint64_t appended;
	_Atomic uint64_t append_errors;
	_Atomic uint64_t corrupt_skipped;
	_Atomic uint64_t torn_tails;
	atomic_bool dir_dirty; /* a segment was created since the last sync */

	/* appender only (and open) */
	struct timespec last_err_log;
	uint64_t errs_unlogged;
	bool map_fallback_logged;

	/* reader only (and open) */
	uint8_t *rbuf;         /* read-ahead of rbuf_seg bytes [rbuf_off, rbuf_off + rbuf_len) */
	struct kg_seg *rbuf_seg;
	uint64_t rbuf_off;
	size_t rbuf_len;
	uint8_t *scan;         /* resync scan buffer */
	uint64_t corrupt_mark; /* bad regions below this are already counted */
	struct kg_seg **tmp;   /* scratch list for sync/commit */
	size_t tmp_cap;
};

/* ---- CRC32C (Castagnoli), slicing-by-8 ---- */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static uint32_t crc32c_update(uint32_t crc, const void *buf, size_t n);

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
	assert(crc32c_update(0, "123456789", 9) == 0xE3069283u);
}

/* zlib-style running CRC32C: start with 0, feed pieces, the result is the CRC of their
 * concatenation. Pure. */
static uint32_t crc32c_update(uint32_t crc, const void *buf, size_t n)
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

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ---- small file helpers ---- */

/* pread until n bytes or end of file. Returns the bytes read or -errno. */
static ssize_t pread_full(int fd, void *buf, size_t n, uint64_t off)
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

/* mkdir -p. Returns 0 or -errno. */
static int mkdir_p(const char *dir)
{
	char *path = strdup(dir);
	int rc = 0;

	if(!path) return -ENOMEM;
	for(char *p = path + 1; ; p++){
		if(*p != '/' && *p != '\0') continue;
		char c = *p;
		*p = '\0';
		if(mkdir(path, 0700) < 0 && errno != EEXIST){
			rc = -errno;
			break;
		}
		*p = c;
		if(c == '\0') break;
	}
	free(path);
	return rc;
}

static void seg_name(char *buf, size_t n, uint64_t base)
{
	snprintf(buf, n, "%020llu" SPOOL_SEG_SUFFIX, (unsigned long long)base);
}

/* "%020llu.kgs" -> 1 and *base, else 0. */
static int parse_seg_name(const char *name, uint64_t *base)
{
	uint64_t v = 0;

	if(strlen(name) != SPOOL_SEG_NAMELEN || strcmp(name + 20, SPOOL_SEG_SUFFIX)) return 0;
	for(int i = 0; i < 20; i++){
		if(name[i] < '0' || name[i] > '9') return 0;
		unsigned d = (unsigned)(name[i] - '0');
		if(v > (UINT64_MAX - d) / 10) return 0;
		v = v * 10 + d;
	}
	*base = v;
	return 1;
}

static int cmp_seg(const void *a, const void *b)
{
	const struct kg_seg *x = *(struct kg_seg *const *)a, *y = *(struct kg_seg *const *)b;
	return x->base < y->base ? -1 : x->base > y->base;
}

/* Open (or with create, exclusively create) segment <base>. Returns the segment or NULL with
 * errno set. */
static struct kg_seg *seg_open(struct kg_spool *sp, uint64_t base, bool create)
{
	char name[64];
	struct kg_seg *seg;
	struct stat st;
	int fd, flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0);

	seg_name(name, sizeof(name), base);
	fd = openat(sp->dirfd, name, flags, 0600);
	if(fd < 0) return NULL;
	if(fstat(fd, &st) < 0 || !(seg = calloc(1, sizeof(*seg)))){
		int e = errno ? errno : ENOMEM;
		close(fd);
		if(create) unlinkat(sp->dirfd, name, 0);
		errno = e;
		return NULL;
	}
	seg->base = base;
	seg->fd = fd;
	atomic_init(&seg->size, (uint64_t)st.st_size);
	atomic_init(&seg->dirty, create);
	return seg;
}

/* ---- the memory-mapped append path ---- */

static atomic_int test_no_mmap;

/* TEST ONLY (not in spool.h; tests declare it themselves): while on is non-zero, segments that
 * become active are not mapped, so appends take the pwritev path. */
void kg_spool__test_disable_mmap(int on);
void kg_spool__test_disable_mmap(int on)
{
	atomic_store(&test_no_mmap, on);
}

/* Drop seg's mapping, if any. The pages stay in the page cache (dirty ones are written back as
 * usual). Whoever owns seg: the appender for the active one, else the reader or close. */
static void seg_unmap(struct kg_seg *seg)
{
	if(!seg->map) return;
	munmap(seg->map, seg->map_len);
	seg->map = NULL;
	seg->map_len = 0;
}

/* Preallocate seg's file with real blocks for at least need bytes past its data (and at least
 * segment_bytes in all) and map that much MAP_SHARED, replacing a smaller mapping. Returns 0, or
 * -errno with seg unmapped (appends use pwritev), the file cut back to its data and the reason
 * logged -- as an error when the disk is full, else once per spool. Appender thread (active
 * segment) or open. */
static int seg_map(struct kg_spool *sp, struct kg_seg *seg, uint64_t need)
{
	uint64_t data = atomic_load_explicit(&seg->size, memory_order_relaxed);
	uint64_t cap = data + need > sp->segment_bytes ? data + need : sp->segment_bytes;
	const char *what = "preallocate";
	void *m;
	int err;

	seg_unmap(seg);
	if(atomic_load_explicit(&test_no_mmap, memory_order_relaxed)){
		err = EOPNOTSUPP;
		what = "map (switched off by a test)";
		goto fallback;
	}
	if(cap > SIZE_MAX || cap > (uint64_t)INT64_MAX){
		err = EFBIG;
		goto fallback;
	}
	err = posix_fallocate(seg->fd, 0, (off_t)cap);
	if(err) goto fallback;
	what = "map";
	m = mmap(NULL, (size_t)cap, PROT_READ | PROT_WRITE, MAP_SHARED, seg->fd, 0);
	if(m == MAP_FAILED){
		err = errno;
		goto fallback;
	}
	seg->map = m;
	seg->map_len = (size_t)cap;
	return 0;
fallback:
	/* give back what a failed fallocate may have allocated; the data stays */
	if(ftruncate(seg->fd, (off_t)data) < 0 && !sp->map_fallback_logged){
		kg_log(KG_LOG_WARNING, "spool %s: cannot cut segment %llu back to its data: %s", sp->dir,
			(unsigned long long)seg->base, strerror(errno));
	}
	if(err == ENOSPC || err == EDQUOT){
		kg_log(KG_LOG_ERROR, "spool %s: cannot preallocate %llu bytes for segment %llu: %s (disk full); "
			"appending with write(2), which fails until space is freed", sp->dir, (unsigned long long)cap,
			(unsigned long long)seg->base, strerror(err));
	}else if(!sp->map_fallback_logged){
		kg_log(KG_LOG_WARNING, "spool %s: cannot %s segment %llu: %s; appending with write(2) instead "
			"(logged once)", sp->dir, what, (unsigned long long)seg->base, strerror(err));
	}
	sp->map_fallback_logged = true;
	return -err;
}

/* Copy one frame into seg's mapping at off, which has room for it: the body, then length and
 * checksum, then -- after a compiler barrier -- the magic, so a process killed part way leaves a
 * frame without its magic (see recovery). Cannot fail: the blocks are allocated. Appender. */
static void append_mapped(struct kg_seg *seg, uint64_t off, const uint8_t *hdr, const void *body, uint32_t len)
{
	uint8_t *p = seg->map + off;

	assert(seg->map && off + SPOOL_HDR + len <= seg->map_len);
	if(len) memcpy(p + SPOOL_HDR, body, len);
	memcpy(p + 4, hdr + 4, SPOOL_HDR - 4);
	atomic_signal_fence(memory_order_seq_cst);
	memcpy(p, hdr, 4);
}

/* Close, optionally unlink, and free a segment no other thread can reach. */
static void seg_drop(struct kg_spool *sp, struct kg_seg *seg, bool unlink_it)
{
	char name[64];

	if(unlink_it){
		seg_name(name, sizeof(name), seg->base);
		if(unlinkat(sp->dirfd, name, 0) < 0){
			kg_log(KG_LOG_WARNING, "spool %s: cannot delete segment %s: %s", sp->dir, name, strerror(errno));
		}
	}
	if(sp->rbuf_seg == seg) sp->rbuf_seg = NULL;
	seg_unmap(seg);
	close(seg->fd);
	free(seg);
}

/* Append seg to the list. Caller holds sp->lock (or is open). Returns 0 or -ENOMEM. */
static int seg_push(struct kg_spool *sp, struct kg_seg *seg)
{
	if(sp->nsegs == sp->cap){
		size_t cap = sp->cap ? sp->cap * 2 : 16;
		struct kg_seg **s = realloc(sp->segs, cap * sizeof(*s));
		if(!s) return -ENOMEM;
		sp->segs = s;
		sp->cap = cap;
	}
	sp->segs[sp->nsegs++] = seg;
	return 0;
}

/* Make sp->tmp hold at least n pointers. Reader thread. */
static int tmp_reserve(struct kg_spool *sp, size_t n)
{
	if(n <= sp->tmp_cap) return 0;
	struct kg_seg **t = realloc(sp->tmp, n * sizeof(*t));
	if(!t) return -ENOMEM;
	sp->tmp = t;
	sp->tmp_cap = n;
	return 0;
}

/* ---- checkpoint ---- */

/* Read the checkpoint: 1 and *pos if valid, 0 if missing, -1 if unreadable or corrupt (logged). */
static int checkpoint_read(struct kg_spool *sp, uint64_t *pos)
{
	char buf[128];
	unsigned long long v;
	unsigned crc;
	uint8_t le[8];
	ssize_t n;
	int fd;

	fd = openat(sp->dirfd, "checkpoint", O_RDONLY | O_CLOEXEC);
	if(fd < 0){
		if(errno == ENOENT) return 0;
		kg_log(KG_LOG_ERROR, "spool %s: cannot open checkpoint: %s", sp->dir, strerror(errno));
		return -1;
	}
	n = pread_full(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	if(n < 0){
		kg_log(KG_LOG_ERROR, "spool %s: cannot read checkpoint: %s", sp->dir, strerror((int)-n));
		return -1;
	}
	buf[n] = '\0';
	if(sscanf(buf, "KGCP1 %llu %8x", &v, &crc) != 2) goto corrupt;
	for(int i = 0; i < 8; i++) le[i] = (uint8_t)(v >> (8 * i));
	if(crc32c_update(0, le, 8) != crc) goto corrupt;
	*pos = v;
	return 1;
corrupt:
	kg_log(KG_LOG_ERROR, "spool %s: checkpoint is corrupt; replaying from the first segment", sp->dir);
	return -1;
}

/* Persist pos as the checkpoint: checkpoint.tmp, fsync, rename, fsync dir. Returns 0 or -errno
 * (logged). Reader thread (or open). */
static int checkpoint_write(struct kg_spool *sp, uint64_t pos)
{
	char buf[64];
	uint8_t le[8];
	int fd, len, rc = 0;

	for(int i = 0; i < 8; i++) le[i] = (uint8_t)(pos >> (8 * i));
	len = snprintf(buf, sizeof(buf), "KGCP1 %llu %08x\n", (unsigned long long)pos, crc32c_update(0, le, 8));
	fd = openat(sp->dirfd, "checkpoint.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if(fd < 0){
		rc = -errno;
		goto fail;
	}
	for(int done = 0; done < len; ){
		ssize_t w = write(fd, buf + done, (size_t)(len - done));
		if(w < 0 && errno == EINTR) continue;
		if(w <= 0){
			rc = w < 0 ? -errno : -EIO;
			close(fd);
			goto fail;
		}
		done += (int)w;
	}
	if(fsync(fd) < 0){
		rc = -errno;
		close(fd);
		goto fail;
	}
	if(close(fd) < 0 && errno != EINTR){
		rc = -errno;
		goto fail;
	}
	if(renameat(sp->dirfd, "checkpoint.tmp", sp->dirfd, "checkpoint") < 0 || fsync(sp->dirfd) < 0){
		rc = -errno;
		goto fail;
	}
	return 0;
fail:
	kg_log(KG_LOG_ERROR, "spool %s: cannot write checkpoint: %s", sp->dir, strerror(-rc));
	return rc;
}

/* ---- frames ---- */

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
	if(n >= SPOOL_RBUF / 2) return pread_full(seg->fd, dst, n, off);
	want = bound - off > SPOOL_RBUF ? SPOOL_RBUF : (size_t)(bound - off);
	sp->rbuf_seg = NULL;
	got = pread_full(seg->fd, sp->rbuf, want, off);
	if(got < 0) return got;
	sp->rbuf_seg = seg;
	sp->rbuf_off = off;
	sp->rbuf_len = (size_t)got;
	if((size_t)got < n) n = (size_t)got;
	memcpy(dst, sp->rbuf, n);
	return (ssize_t)n;
}

/* Validate the frame at file offset off of seg, reading nothing at or beyond bound. On FRAME_OK
 * *body is malloc'd (caller frees) and *len set. Returns a frame_result or -errno. */
static int frame_try(struct kg_spool *sp, struct kg_seg *seg, uint64_t off, uint64_t bound, uint8_t **body, uint32_t *len)
{
	uint8_t hdr[SPOOL_HDR], *b;
	uint32_t blen;
	ssize_t r;

	if(bound < off || bound - off < SPOOL_HDR) return FRAME_SHORT;
	r = read_bytes(sp, seg, off, hdr, SPOOL_HDR, bound);
	if(r < 0) return (int)r;
	if(r < (ssize_t)SPOOL_HDR) return FRAME_SHORT;
	blen = get_le32(hdr + 4);
	if(get_le32(hdr) != SPOOL_MAGIC || blen > SPOOL_MAX_BODY) return FRAME_BAD;
	if(bound - off - SPOOL_HDR < blen) return FRAME_SHORT;
	b = malloc(blen ? blen : 1);
	if(!b) return -ENOMEM;
	r = read_bytes(sp, seg, off + SPOOL_HDR, b, blen, bound);
	if(r < 0 || r < (ssize_t)blen){
		free(b);
		return r < 0 ? (int)r : FRAME_SHORT;
	}
	if(crc32c_update(crc32c_update(0, hdr + 4, 4), b, blen) != get_le32(hdr + 8)){
		free(b);
		return FRAME_BAD;
	}
	*body = b;
	*len = blen;
	return FRAME_OK;
}

/* Find the first file offset in (off, bound) where a valid frame starts. Returns 1 and *found,
 * 0 if there is none, or -errno. Reader thread (or open). */
static int frame_resync(struct kg_spool *sp, struct kg_seg *seg, uint64_t off, uint64_t bound, uint64_t *found)
{
	uint8_t magic[4];
	uint64_t at = off + 1;

	put_le32(magic, SPOOL_MAGIC);
	while(at < bound && bound - at >= SPOOL_HDR){
		size_t want = bound - at > SPOOL_RBUF ? SPOOL_RBUF : (size_t)(bound - at);
		ssize_t got = pread_full(seg->fd, sp->scan, want, at);
		if(got < 0) return (int)got;
		if(got < 4) return 0;
		for(size_t i = 0; i + 4 <= (size_t)got; i++){
			uint8_t *m = memmem(sp->scan + i, (size_t)got - i, magic, 4);
			uint8_t *b;
			uint32_t l;
			if(!m) break;
			i = (size_t)(m - sp->scan);
			int r = frame_try(sp, seg, at + i, bound, &b, &l);
			if(r < 0) return r;
			if(r == FRAME_OK){
				free(b);
				*found = at + i;
				return 1;
			}
		}
		if((size_t)got < want) return 0;
		at += (size_t)got - 3;
	}
	return 0;
}

/* Count the bad region [start, stop) unless it was counted already. Reader thread (or open). */
static void count_corrupt(struct kg_spool *sp, uint64_t start, uint64_t stop)
{
	if(start >= sp->corrupt_mark){
		atomic_fetch_add_explicit(&sp->corrupt_skipped, 1, memory_order_relaxed);
		kg_log(KG_LOG_WARNING, "spool %s: skipped corrupt data at [%llu, %llu)", sp->dir,
			(unsigned long long)start, (unsigned long long)stop);
	}
	if(stop > sp->corrupt_mark) sp->corrupt_mark = stop;
}

/* ---- open / recovery ---- */

/* The end of the last non-zero byte of seg's file in [off, bound) (off if there is none). Returns
 * 0 and *nz_end, or -errno. Open only. */
static int last_nonzero(struct kg_spool *sp, struct kg_seg *seg, uint64_t off, uint64_t bound, uint64_t *nz_end)
{
	*nz_end = off;
	while(off < bound){
		size_t want = bound - off > SPOOL_RBUF ? SPOOL_RBUF : (size_t)(bound - off), n;
		ssize_t got = pread_full(seg->fd, sp->scan, want, off);
		if(got < 0) return (int)got;
		n = (size_t)got;
		if(n && (sp->scan[0] || memcmp(sp->scan, sp->scan + 1, n - 1))){
			while(!sp->scan[n - 1]) n--;
			*nz_end = off + n;
		}
		if((size_t)got < want) break;
		off += (size_t)got;
	}
	return 0;
}

/* Is the bad tail [off, nz_end) of the last segment an append that stopped part way (torn), rather
 * than a complete frame that is damaged? kind is what frame_try said at off. Open only. */
static bool tail_is_torn(const struct kg_seg *seg, uint64_t off, uint64_t nz_end, int kind)
{
	uint8_t hdr[SPOOL_HDR];
	uint32_t magic, blen;

	if(kind == FRAME_SHORT) return true; /* the file ends inside the frame */
	if(pread_full(seg->fd, hdr, SPOOL_HDR, off) != (ssize_t)SPOOL_HDR) return true;
	magic = get_le32(hdr);
	blen = get_le32(hdr + 4);
	if(magic == 0) return true; /* the mapped path stores the magic last */
	/* a sound header whose frame reaches past the last byte ever written */
	return magic == SPOOL_MAGIC && blen <= SPOOL_MAX_BODY && off + SPOOL_HDR + blen > nz_end;
}

/* Verify every frame of segs[i] from logical position from on and set the segment's data size:
 * up to the next segment for all but the last; for the last, up to its last valid frame, where a
 * tail of zeros is the end and any other bad tail is counted and cut off. Returns 0 or -errno (I/O
 * errors only). Open only. */
static int recover_segment(struct kg_spool *sp, size_t i, uint64_t from)
{
	struct kg_seg *seg = sp->segs[i];
	bool last = i + 1 == sp->nsegs;
	uint64_t bound = atomic_load(&seg->size), off, nz_end = 0;

	/* a file reaching past the next segment's base holds preallocated zeros there: ignore them */
	if(!last && sp->segs[i + 1]->base - seg->base < bound) bound = sp->segs[i + 1]->base - seg->base;
	off = from > seg->base ? from - seg->base : 0;
	while(off < bound){
		uint8_t *b;
		uint32_t l;
		uint64_t found;
		int r = frame_try(sp, seg, off, bound, &b, &l), kind = r;

		if(r < 0) return r;
		if(r == FRAME_OK){
			free(b);
			off += SPOOL_HDR + l;
			continue;
		}
		if(last){
			if((r = last_nonzero(sp, seg, off, bound, &nz_end))) return r;
			if(nz_end == off) break; /* only zeros follow: the end of the data */
		}
		r = frame_resync(sp, seg, off, bound, &found);
		if(r < 0) return r;
		if(r == 1 || !last){
			count_corrupt(sp, seg->base + off, seg->base + (r == 1 ? found : bound));
			if(r == 0) break;
			off = found;
			continue;
		}
		/* a bad tail of the last segment: cut it off */
		bool torn = tail_is_torn(seg, off, nz_end, kind);
		if(ftruncate(seg->fd, (off_t)off) < 0) return -errno;
		kg_log(KG_LOG_WARNING, "spool %s: cut off %s tail of %llu bytes at %llu", sp->dir,
			torn ? "a torn" : "a corrupt", (unsigned long long)(nz_end - off),
			(unsigned long long)(seg->base + off));
		if(torn){
			atomic_fetch_add(&sp->torn_tails, 1);
		}else{
			count_corrupt(sp, seg->base + off, seg->base + nz_end);
		}
		atomic_store(&seg->dirty, true);
		break;
	}
	atomic_store(&seg->size, last && off < bound ? off : bound);
	return 0;
}

/* Load the segment files of sp->dir into sp->segs, sorted. Returns 0 or -errno (logged). */
static int load_segments(struct kg_spool *sp)
{
	struct dirent *de;
	DIR *d;
	int fd, rc = 0;

	fd = dup(sp->dirfd);
	if(fd < 0 || !(d = fdopendir(fd))){
		rc = -errno;
		if(fd >= 0) close(fd);
		kg_log(KG_LOG_ERROR, "spool %s: cannot list directory: %s", sp->dir, strerror(-rc));
		return rc;
	}
	rewinddir(d);
	while((de = readdir(d))){
		uint64_t base;
		struct kg_seg *seg;
		if(!parse_seg_name(de->d_name, &base)) continue;
		if(!(seg = seg_open(sp, base, false))){
			rc = -errno;
			kg_log(KG_LOG_ERROR, "spool %s: cannot open segment %s: %s", sp->dir, de->d_name, strerror(errno));
			break;
		}
		if((rc = seg_push(sp, seg))){
			seg_drop(sp, seg, false);
			break;
		}
	}
	closedir(d);
	if(sp->nsegs) qsort(sp->segs, sp->nsegs, sizeof(*sp->segs), cmp_seg);
	return rc;
}

/* Create a segment at base and make it the active one. Open only. Returns 0 or -errno. */
static int add_segment(struct kg_spool *sp, uint64_t base)
{
	struct kg_seg *seg = seg_open(sp, base, true);
	int rc;

	if(!seg){
		rc = -errno;
		kg_log(KG_LOG_ERROR, "spool %s: cannot create a segment: %s", sp->dir, strerror(errno));
		return rc;
	}
	if((rc = seg_push(sp, seg))){
		seg_drop(sp, seg, true);
		return rc;
	}
	atomic_store(&sp->dir_dirty, true);
	return 0;
}

/* See spool.h. segment_bytes 0 means 64 MiB. */
int kg_spool__open(struct kg_spool **out, const char *dir, uint64_t segment_bytes)
{
	struct kg_spool *sp;
	uint64_t cp = 0, end, bytes = 0;
	size_t keep;
	int rc, have_cp;

	assert(out);
	*out = NULL;
	pthread_once(&crc_once, crc_init);
	if(!dir || !*dir) return -EINVAL;

	sp = calloc(1, sizeof(*sp));
	if(!sp) return -ENOMEM;
	sp->dirfd = -1;
	sp->segment_bytes = segment_bytes ? segment_bytes : SPOOL_DEFAULT_SEGMENT;
	pthread_mutex_init(&sp->lock, NULL);
	sp->dir = strdup(dir);
	sp->rbuf = malloc(SPOOL_RBUF);
	sp->scan = malloc(SPOOL_RBUF);
	if(!sp->dir || !sp->rbuf || !sp->scan){
		rc = -ENOMEM;
		goto fail;
	}

	if((rc = mkdir_p(dir))){
		kg_log(KG_LOG_ERROR, "spool %s: cannot create directory: %s", dir, strerror(-rc));
		goto fail;
	}
	sp->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if(sp->dirfd < 0){
		rc = -errno;
		kg_log(KG_LOG_ERROR, "spool %s: cannot open directory: %s", dir, strerror(errno));
		goto fail;
	}
	unlinkat(sp->dirfd, "checkpoint.tmp", 0);
	if((rc = load_segments(sp))) goto fail;

	have_cp = checkpoint_read(sp, &cp);
	if(have_cp <= 0) cp = sp->nsegs ? sp->segs[0]->base : 0;
	if(sp->nsegs == 0){
		if((rc = add_segment(sp, cp))) goto fail;
	}else{
		struct kg_seg *last = sp->segs[sp->nsegs - 1];
		end = last->base + atomic_load(&last->size);
		if(cp < sp->segs[0]->base) cp = sp->segs[0]->base;
		if(cp > end){
			kg_log(KG_LOG_WARNING, "spool %s: checkpoint %llu is beyond the data (%llu); continuing at the checkpoint",
				dir, (unsigned long long)cp, (unsigned long long)end);
			if((rc = add_segment(sp, cp))) goto fail;
		}
	}

	/* drop segments wholly below the checkpoint (never the last) */
	for(keep = 0; keep + 1 < sp->nsegs && sp->segs[keep + 1]->base <= cp; keep++){
		seg_drop(sp, sp->segs[keep], true);
	}
	memmove(sp->segs, sp->segs + keep, (sp->nsegs - keep) * sizeof(*sp->segs));
	sp->nsegs -= keep;

	for(size_t i = 0; i < sp->nsegs; i++){
		if((rc = recover_segment(sp, i, cp))){
			kg_log(KG_LOG_ERROR, "spool %s: recovery failed: %s", dir, strerror(-rc));
			goto fail;
		}
	}
	sp->rbuf_seg = NULL; /* recovery may have truncated what the buffer holds */

	sp->active = sp->segs[sp->nsegs - 1];
	seg_map(sp, sp->active, 0); /* on failure the write(2) path is used (logged) */
	for(size_t i = 0; i < sp->nsegs; i++) bytes += atomic_load(&sp->segs[i]->size);
	end = sp->active->base + atomic_load(&sp->active->size);
	sp->corrupt_mark = end;
	atomic_store(&sp->end, end);
	atomic_store(&sp->bytes, bytes);
	atomic_store(&sp->checkpoint, cp);
	/* also proves the directory is writable */
	if((rc = checkpoint_write(sp, cp))) goto fail;

	kg_log(KG_LOG_INFO, "spool %s: open, %zu segment(s), checkpoint %llu, end %llu, %llu byte(s) to replay",
		dir, sp->nsegs, (unsigned long long)cp, (unsigned long long)end, (unsigned long long)(end - cp));
	*out = sp;
	return 0;
fail:
	kg_spool__close(sp);
	return rc;
}

/* ---- appender ---- */

/* Log an append failure at most about once a second. Appender thread. */
static void log_append_error(struct kg_spool *sp, const char *what, int err)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if(sp->last_err_log.tv_sec && now.tv_sec - sp->last_err_log.tv_sec < 1){
		sp->errs_unlogged++;
		return;
	}
	kg_log(KG_LOG_ERROR, "spool %s: %s: %s (%llu more error(s) not logged)", sp->dir, what, strerror(err),
		(unsigned long long)sp->errs_unlogged);
	sp->last_err_log = now;
	sp->errs_unlogged = 0;
}

/* Start a new segment at the append position, mapped with room for at least need bytes (or on
 * the pwritev path if that fails). Returns 0, or -errno with the current segment still active
 * (logged). Never touches the old segment after publishing the new one. Appender thread. */
static int rotate(struct kg_spool *sp, uint64_t need)
{
	uint64_t base = sp->active->base + atomic_load_explicit(&sp->active->size, memory_order_relaxed);
	struct kg_seg *seg = seg_open(sp, base, true);
	int rc;

	if(!seg){
		rc = -errno;
		log_append_error(sp, "cannot create a new segment", errno);
		return rc;
	}
	seg_map(sp, seg, need);
	pthread_mutex_lock(&sp->lock);
	rc = seg_push(sp, seg);
	pthread_mutex_unlock(&sp->lock);
	if(rc){
		/* the reader never saw it, so dropping it here is safe */
		char name[64];
		seg_name(name, sizeof(name), base);
		unlinkat(sp->dirfd, name, 0);
		seg_unmap(seg);
		close(seg->fd);
		free(seg);
		log_append_error(sp, "cannot add a new segment", -rc);
		return rc;
	}
	sp->active = seg;
	atomic_store_explicit(&sp->dir_dirty, true, memory_order_relaxed);
	return 0;
}

/* Write one frame at off of an unmapped segment with pwritev; on failure the file is cut back
 * to off so the segment stays well-formed. Returns 0 or -errno (not logged). Appender thread. */
static int append_write(struct kg_spool *sp, struct kg_seg *seg, uint64_t off, const uint8_t *hdr,
	const void *body, uint32_t len)
{
	struct iovec iov[2];
	int niov = len ? 2 : 1, err;
	size_t total = SPOOL_HDR + (size_t)len, done = 0;

	assert(!seg->map);
	iov[0].iov_base = (void *)hdr;
	iov[0].iov_len = SPOOL_HDR;
	iov[1].iov_base = (void *)body;
	iov[1].iov_len = len;
	for(;;){
		ssize_t w = pwritev(seg->fd, iov, niov, (off_t)(off + done));
		if(w < 0){
			if(errno == EINTR) continue;
			err = errno;
			break;
		}
		if(w == 0){
			err = ENOSPC;
			break;
		}
		done += (size_t)w;
		if(done == total) return 0;
		/* short write: continue with the rest */
		size_t skip = (size_t)w;
		while(skip){
			size_t k = skip < iov[0].iov_len ? skip : iov[0].iov_len;
			iov[0].iov_base = (uint8_t *)iov[0].iov_base + k;
			iov[0].iov_len -= k;
			skip -= k;
			if(iov[0].iov_len == 0 && niov == 2){
				iov[0] = iov[1];
				niov = 1;
			}
		}
	}
	if(ftruncate(seg->fd, (off_t)off) < 0){
		/* the next append overwrites from off anyway; a leftover tail is cut at the next open */
		log_append_error(sp, "cannot cut back a failed append", errno);
	}
	return -err;
}

/* See spool.h. The frame goes into the active segment's mapping (append_mapped) or, for a
 * segment that could not be mapped, through one pwritev (append_write). A mapped segment
 * rotates when the frame does not fit in the rest of its mapping, an unmapped one once it holds
 * segment_bytes; an empty mapped segment too small for the frame is re-mapped bigger instead.
 * If a mapped segment is full and no new segment can be created, the append fails. -EMSGSIZE for
 * a body over 16 MiB. */
int kg_spool__append(struct kg_spool *sp, const void *body, uint32_t len, uint64_t *end)
{
	struct kg_seg *seg = sp->active;
	uint8_t hdr[SPOOL_HDR];
	uint64_t off, e, total = SPOOL_HDR + (uint64_t)len;
	bool room;
	int rc = 0;

	if(len > SPOOL_MAX_BODY) return -EMSGSIZE;
	if(len && !body) return -EINVAL;

	off = atomic_load_explicit(&seg->size, memory_order_relaxed);
	room = seg->map ? total <= seg->map_len - off : off == 0 || off < sp->segment_bytes;
	if(!room){
		rc = off > 0 ? rotate(sp, total) : seg_map(sp, seg, total);
		seg = sp->active;
		off = atomic_load_explicit(&seg->size, memory_order_relaxed);
		if(rc && seg->map && total > seg->map_len - off) goto fail; /* full, and no new segment */
	}

	put_le32(hdr, SPOOL_MAGIC);
	put_le32(hdr + 4, len);
	put_le32(hdr + 8, crc32c_update(crc32c_update(0, hdr + 4, 4), body, len));
	if(seg->map){
		append_mapped(seg, off, hdr, body, len);
	}else if((rc = append_write(sp, seg, off, hdr, body, len))){
		log_append_error(sp, "append failed", -rc);
		goto fail;
	}

	e = seg->base + off + total;
	atomic_store_explicit(&seg->size, off + total, memory_order_relaxed);
	atomic_store_explicit(&seg->dirty, true, memory_order_relaxed);
	atomic_fetch_add_explicit(&sp->bytes, total, memory_order_relaxed);
	/* single writer: a plain load + store is enough */
	atomic_store_explicit(&sp->appended, atomic_load_explicit(&sp->appended, memory_order_relaxed) + 1,
		memory_order_relaxed);
	atomic_store_explicit(&sp->end, e, memory_order_release); /* publishes the frame's bytes */
	if(end) *end = e;
	return 0;
fail:
	atomic_fetch_add_explicit(&sp->append_errors, 1, memory_order_relaxed);
	return rc;
}

uint64_t kg_spool__end(const struct kg_spool *sp)
{
	return atomic_load_explicit(&sp->end, memory_order_acquire);
}

/* ---- reader ---- */

/* See spool.h. limit must be a record boundary (an end from append/read or kg_spool__end). */
int kg_spool__read(struct kg_spool *sp, uint64_t *pos, uint64_t limit, uint8_t **body, uint32_t *len)
{
	uint64_t end = kg_spool__end(sp);

	if(limit > end) limit = end; /* never look at bytes an append may still be writing */
	for(;;){
		uint64_t p = *pos, next = UINT64_MAX, hi, found;
		struct kg_seg *seg = NULL;
		size_t i;
		int r;

		if(p >= limit) return 0;
		pthread_mutex_lock(&sp->lock);
		for(i = sp->nsegs; i > 0; i--){
			if(sp->segs[i - 1]->base <= p) break;
		}
		if(i == 0){
			/* below the oldest segment (already deleted): jump to it */
			p = sp->nsegs ? sp->segs[0]->base : limit;
			pthread_mutex_unlock(&sp->lock);
			*pos = p > *pos ? p : limit;
			continue;
		}
		seg = sp->segs[i - 1];
		if(i < sp->nsegs) next = sp->segs[i]->base;
		pthread_mutex_unlock(&sp->lock);

		hi = next < limit ? next : limit;
		assert(hi > p);
		r = frame_try(sp, seg, p - seg->base, hi - seg->base, body, len);
		if(r < 0) return r;
		if(r == FRAME_OK){
			*pos = p + SPOOL_HDR + *len;
			return 1;
		}
		r = frame_resync(sp, seg, p - seg->base, hi - seg->base, &found);
		if(r < 0) return r;
		found = r ? seg->base + found : hi;
		count_corrupt(sp, p, found);
		*pos = found;
	}
}

/* See spool.h. The directory is fsync'ed too when a segment was created since the last sync. */
int kg_spool__sync(struct kg_spool *sp)
{
	size_t n;
	int rc = 0;

	pthread_mutex_lock(&sp->lock);
	n = sp->nsegs;
	if(tmp_reserve(sp, n)){
		pthread_mutex_unlock(&sp->lock);
		return -ENOMEM;
	}
	memcpy(sp->tmp, sp->segs, n * sizeof(*sp->segs));
	pthread_mutex_unlock(&sp->lock);

	/* only this thread frees segments, so the pointers stay valid without the lock */
	for(size_t i = 0; i < n; i++){
		struct kg_seg *seg = sp->tmp[i];
		if(!atomic_exchange(&seg->dirty, false)) continue;
		if(fdatasync(seg->fd) < 0){
			rc = -errno;
			atomic_store(&seg->dirty, true);
			kg_log(KG_LOG_ERROR, "spool %s: fdatasync of segment %llu failed: %s", sp->dir,
				(unsigned long long)seg->base, strerror(errno));
			return rc;
		}
	}
	if(atomic_exchange(&sp->dir_dirty, false) && fsync(sp->dirfd) < 0){
		rc = -errno;
		atomic_store(&sp->dir_dirty, true);
		kg_log(KG_LOG_ERROR, "spool %s: fsync of the directory failed: %s", sp->dir, strerror(errno));
	}
	return rc;
}

/* See spool.h. -EINVAL if pos is behind the checkpoint or beyond the end. */
int kg_spool__commit(struct kg_spool *sp, uint64_t pos)
{
	uint64_t cur = atomic_load(&sp->checkpoint);
	size_t k = 0;
	int rc;

	if(pos < cur || pos > kg_spool__end(sp)) return -EINVAL;
	if(pos == cur) return 0;
	if((rc = checkpoint_write(sp, pos))) return rc;
	atomic_store(&sp->checkpoint, pos);

	pthread_mutex_lock(&sp->lock);
	while(k + 1 < sp->nsegs && sp->segs[k + 1]->base <= pos) k++;
	if(k && tmp_reserve(sp, k)){
		pthread_mutex_unlock(&sp->lock);
		return 0; /* the checkpoint is safe; deletion waits for the next commit */
	}
	if(k) memcpy(sp->tmp, sp->segs, k * sizeof(*sp->segs));
	memmove(sp->segs, sp->segs + k, (sp->nsegs - k) * sizeof(*sp->segs));
	sp->nsegs -= k;
	pthread_mutex_unlock(&sp->lock);

	for(size_t i = 0; i < k; i++){
		atomic_fetch_sub(&sp->bytes, atomic_load(&sp->tmp[i]->size));
		seg_drop(sp, sp->tmp[i], true);
	}
	return 0;
}

uint64_t kg_spool__checkpoint(const struct kg_spool *sp)
{
	return atomic_load(&sp->checkpoint);
}

void kg_spool__stats(struct kg_spool *sp, struct kg_spool_stats *st)
{
	st->appended = atomic_load_explicit(&sp->appended, memory_order_relaxed);
	st->append_errors = atomic_load_explicit(&sp->append_errors, memory_order_relaxed);
	st->corrupt_skipped = atomic_load_explicit(&sp->corrupt_skipped, memory_order_relaxed);
	st->torn_tails = atomic_load_explicit(&sp->torn_tails, memory_order_relaxed);
	st->bytes = atomic_load_explicit(&sp->bytes, memory_order_relaxed);
	st->checkpoint = atomic_load(&sp->checkpoint);
	st->end = atomic_load(&sp->end);
}

/* See spool.h. Cuts mapped segment files back to their data. Accepts a half-opened spool (used by
 * open's error path) and NULL. */
void kg_spool__close(struct kg_spool *sp)
{
	if(!sp) return;
	for(size_t i = 0; i < sp->nsegs; i++){
		struct kg_seg *seg = sp->segs[i];
		if(seg->map){
			/* leave the file as the pwritev path would: exactly its data */
			seg_unmap(seg);
			if(ftruncate(seg->fd, (off_t)atomic_load(&seg->size)) < 0){
				kg_log(KG_LOG_WARNING, "spool %s: cannot cut segment %llu back to its data: %s", sp->dir,
					(unsigned long long)seg->base, strerror(errno));
			}
		}
		seg_drop(sp, seg, false);
	}
	if(sp->dirfd >= 0) close(sp->dirfd);
	pthread_mutex_destroy(&sp->lock);
	free(sp->segs);
	free(sp->tmp);
	free(sp->rbuf);
	free(sp->scan);
	free(sp->dir);
	free(sp);
}
