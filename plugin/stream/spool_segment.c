/* spool_segment.c -- the spool's segment files: naming, opening, preallocating and mapping,
 * dropping, the segment list. kg_spool__maintain, which prepares the NEXT segment with these so
 * that the broker thread never preallocates or maps anything, is in spool_maintain.c. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool_internal.h"


atomic_int kg_spool_test_no_mmap;

/* TEST ONLY (not in spool.h; tests declare it themselves): while on is non-zero, no segment is
 * mapped (open and kg_spool__maintain), so appends take the pwritev path into plain files. */
void kg_spool__test_disable_mmap(int on);
void kg_spool__test_disable_mmap(int on)
{
	atomic_store(&kg_spool_test_no_mmap, on);
}

void kg_spool_seg_name(char *buf, size_t n, uint64_t base)
{
	snprintf(buf, n, "%020llu" SPOOL_SEG_SUFFIX, (unsigned long long)base);
}

/* "%020llu.kgs" -> 1 and *base, else 0. Pure. */
int kg_spool_seg_parse_name(const char *name, uint64_t *base)
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

/* Open (or with create, exclusively create) the segment file name in the directory as base.
 * Read-only spools open read-only. Returns the segment or NULL with errno set (SPOOL_ENOTREG: not
 * a regular file). Any thread that owns the result. */
struct kg_seg *kg_spool_seg_open(struct kg_spool *sp, const char *name, uint64_t base, bool create)
{
	struct kg_seg *seg;
	struct stat st;
	/* O_NONBLOCK: a FIFO named like a segment must not block the open (no effect on files) */
	int fd, flags = (sp->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK |
		(create ? O_CREAT | O_EXCL : 0);

	fd = openat(sp->dirfd, name, flags, 0600);
	if(fd < 0) return NULL;
	errno = 0;
	if(fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || !(seg = calloc(1, sizeof(*seg)))){
		int e = errno ? errno : S_ISREG(st.st_mode) ? ENOMEM : SPOOL_ENOTREG;
		close(fd);
		if(create) unlinkat(sp->dirfd, name, 0);
		errno = e;
		return NULL;
	}
	seg->base = base;
	seg->fd = fd;
	atomic_init(&seg->size, (uint64_t)st.st_size);
	atomic_init(&seg->dirty, create);
	atomic_init(&seg->orphan, false);
	return seg;
}

/* Drop seg's mapping, if any. The pages stay in the page cache (dirty ones are written back as
 * usual). Whoever owns seg. */
void kg_spool_seg_unmap(struct kg_seg *seg)
{
	if(!seg->map) return;
	munmap(seg->map, seg->map_len);
	seg->map = NULL;
	seg->map_len = 0;
}

/* Preallocate seg's file with real blocks for at least need bytes past its data (and at least
 * segment_bytes in all) and map that much MAP_SHARED. Real blocks: a page fault into the mapping
 * can never need disk space and SIGBUS the broker. Returns 0, or -errno with seg unmapped, the
 * file cut back to its data and the reason logged under cause. The maintainer (next.tmp) or open
 * (the active segment). */
int kg_spool_seg_map(struct kg_spool *sp, struct kg_seg *seg, uint64_t need, enum kg_spool_cause cause)
{
	uint64_t data = atomic_load_explicit(&seg->size, memory_order_relaxed);
	uint64_t cap = data + need > sp->segment_bytes ? data + need : sp->segment_bytes;
	const char *what = "preallocate";
	void *m;
	int err;

	assert(!sp->readonly);
	kg_spool_seg_unmap(seg);
	if(atomic_load_explicit(&kg_spool_test_no_mmap, memory_order_relaxed)){
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
	if(ftruncate(seg->fd, (off_t)data) < 0) err = err ? err : errno;
	kg_spool_log(sp, cause, err == ENOSPC || err == EDQUOT ? KG_LOG_ERROR : KG_LOG_WARNING,
		"cannot %s %llu bytes for a segment: %s%s", what, (unsigned long long)cap, strerror(err),
		err == ENOSPC || err == EDQUOT ? " (disk full; retried every second)" : "");
	return -err;
}

/* Close, optionally unlink (never an orphan: its name now belongs to the recreated directory),
 * and free a segment no other thread can reach. Reader thread, open or close. */
void kg_spool_seg_drop(struct kg_spool *sp, struct kg_seg *seg, bool unlink_it)
{
	char name[64];

	if(unlink_it && !atomic_load(&seg->orphan) && !sp->readonly){
		kg_spool_seg_name(name, sizeof(name), seg->base);
		if(unlinkat(sp->dirfd, name, 0) < 0 && errno != ENOENT){
			kg_spool_log(sp, KG_CAUSE_DELETE, KG_LOG_WARNING, "cannot delete segment %s: %s", name, strerror(errno));
		}
	}
	if(sp->rbuf_seg == seg) sp->rbuf_seg = NULL;
	kg_spool_seg_unmap(seg);
	close(seg->fd);
	free(seg);
}

/* Append seg to the list. Caller holds sp->lock (or is open). Returns 0 or -ENOMEM. */
int kg_spool_seg_push(struct kg_spool *sp, struct kg_seg *seg)
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
int kg_spool_tmp_reserve(struct kg_spool *sp, size_t n)
{
	if(n <= sp->tmp_cap) return 0;
	struct kg_seg **t = realloc(sp->tmp, n * sizeof(*t));
	if(!t) return -ENOMEM;
	sp->tmp = t;
	sp->tmp_cap = n;
	return 0;
}
