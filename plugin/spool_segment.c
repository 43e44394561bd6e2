/* spool_segment.c -- the spool's segment files: naming, opening, preallocating and mapping,
 * dropping; and kg_spool__maintain, the worker's half of appending: it prepares the NEXT segment
 * (next.tmp, preallocated and mapped) ahead of need, watches the directory and retries what
 * failed, so that the broker thread never preallocates or maps anything. */
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

#define DIRCHECK_MS 250   /* how often maintain looks whether the directory still exists */
#define RETRY_MS 1000     /* how often maintain retries a failed preparation or checkpoint */

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
 * Read-only spools open read-only. Returns the segment or NULL with errno set. Any thread that
 * owns the result. */
struct kg_seg *kg_spool_seg_open(struct kg_spool *sp, const char *name, uint64_t base, bool create)
{
	struct kg_seg *seg;
	struct stat st;
	int fd, flags = (sp->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0);

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

/* Take the prepared segment out of the slot and close it (not unlinking: the caller knows whether
 * its name is still ours). Maintainer or close. */
static void drop_next(struct kg_spool *sp, bool unlink_it)
{
	struct kg_seg *seg;

	pthread_mutex_lock(&sp->lock);
	seg = sp->next;
	sp->next = NULL;
	atomic_store(&sp->next_ready, false);
	pthread_mutex_unlock(&sp->lock);
	if(!seg) return;
	if(unlink_it) unlinkat(sp->dirfd, SPOOL_NEXT_NAME, 0);
	kg_spool_seg_unmap(seg);
	close(seg->fd);
	free(seg);
}

/* Create next.tmp, preallocate and map segment_bytes, and publish it in the slot. Returns 0 or
 * -errno (logged, rate-limited). Maintainer. */
static int prepare_next(struct kg_spool *sp)
{
	struct kg_seg *seg;
	int rc;

	unlinkat(sp->dirfd, SPOOL_NEXT_NAME, 0); /* a leftover of a failed attempt */
	seg = kg_spool_seg_open(sp, SPOOL_NEXT_NAME, 0, true);
	if(!seg){
		rc = -errno;
		kg_spool_log(sp, KG_CAUSE_PREPARE, KG_LOG_ERROR, "cannot create the next segment: %s", strerror(-rc));
		return rc;
	}
	if((rc = kg_spool_seg_map(sp, seg, 0, KG_CAUSE_PREPARE))){
		unlinkat(sp->dirfd, SPOOL_NEXT_NAME, 0);
		close(seg->fd);
		free(seg);
		return rc;
	}
	pthread_mutex_lock(&sp->lock);
	assert(!sp->next);
	sp->next = seg;
	atomic_store(&sp->next_ready, true);
	pthread_mutex_unlock(&sp->lock);
	return 0;
}

/* Is sp->dirfd still the directory named sp->dir? */
static bool dir_present(struct kg_spool *sp)
{
	struct stat a, b;

	if(fstat(sp->dirfd, &a) < 0 || a.st_nlink == 0) return false;
	if(stat(sp->dir, &b) < 0) return false;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* The directory was deleted (or replaced) under us: fail appends, orphan every segment (their
 * names are gone), then recreate the directory, lock it and prepare a segment there; the next
 * append switches to it and clears the error. Returns 0 once recreated, else -errno. Maintainer. */
static int dir_lost(struct kg_spool *sp)
{
	int fd, lockfd, rc;

	if(!atomic_load(&sp->dir_error)){
		uint64_t pending = atomic_load(&sp->end) - atomic_load(&sp->checkpoint);
		atomic_store(&sp->want_switch, false); /* set again once recreated */
		atomic_store(&sp->dir_error, ENOENT);
		pthread_mutex_lock(&sp->lock);
		for(size_t i = 0; i < sp->nsegs; i++) atomic_store(&sp->segs[i]->orphan, true);
		pthread_mutex_unlock(&sp->lock);
		drop_next(sp, false);
		kg_spool_log(sp, KG_CAUSE_DIR, KG_LOG_ERROR, "the spool directory was deleted: appends fail until "
			"it is recreated; %llu byte(s) not yet delivered now exist only in deleted files",
			(unsigned long long)pending);
	}
	if((rc = kg_spool_mkdir_p(sp->dir))){
		kg_spool_log(sp, KG_CAUSE_DIR, KG_LOG_ERROR, "cannot recreate the spool directory: %s", strerror(-rc));
		return rc;
	}
	fd = open(sp->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if(fd < 0){
		rc = -errno;
		kg_spool_log(sp, KG_CAUSE_DIR, KG_LOG_ERROR, "cannot open the recreated spool directory: %s", strerror(-rc));
		return rc;
	}
	lockfd = kg_spool_lock_dir(sp->dir, fd);
	if(lockfd < 0){
		close(fd);
		return lockfd;
	}
	/* the appender may use dirfd concurrently (rename, create): dup2 swaps it atomically */
	if(dup2(fd, sp->dirfd) < 0 || dup2(lockfd, sp->lockfd) < 0){
		rc = -errno;
		close(fd);
		close(lockfd);
		return rc;
	}
	close(fd);
	close(lockfd);
	atomic_store(&sp->checkpoint_stale, true);
	atomic_store(&sp->dir_dirty, true);
	if((rc = prepare_next(sp))) return rc;
	atomic_store(&sp->want_switch, true);
	kg_spool_log(sp, KG_CAUSE_DIR, KG_LOG_WARNING, "recreated the spool directory; appends resume");
	return 0;
}

/* No segment could be prepared (disk full?): if the last (active) segment holds data that is all
 * delivered, ask the appender to move to a new (plain) segment, so that the next commit can delete
 * the old one and give its space -- including its preallocation -- back. Without this a spool
 * whose only segment filled the disk could never free anything. Maintainer. */
static void request_release(struct kg_spool *sp)
{
	uint64_t cp = atomic_load(&sp->checkpoint);
	bool consumed;

	pthread_mutex_lock(&sp->lock);
	struct kg_seg *last = sp->nsegs ? sp->segs[sp->nsegs - 1] : NULL;
	consumed = last && atomic_load(&last->size) > 0 && cp >= last->base + atomic_load(&last->size);
	pthread_mutex_unlock(&sp->lock);
	if(consumed) atomic_store(&sp->want_switch, true);
}

/* See spool.h. */
int kg_spool__maintain(struct kg_spool *sp)
{
	int64_t now = kg_spool_now_ms();
	int rc = 0;

	if(sp->readonly) return -EROFS;
	if(atomic_load(&sp->dir_error) || now - sp->last_dircheck_ms >= DIRCHECK_MS){
		sp->last_dircheck_ms = now;
		if(atomic_load(&sp->dir_error) || !dir_present(sp)){
			if(atomic_load(&sp->dir_error) && atomic_load(&sp->want_switch)) return -EAGAIN; /* waits for the appender */
			if((rc = dir_lost(sp))) return rc;
			return 0;
		}
	}
	kg_spool_drop_consumed(sp); /* after a switch asked for by request_release */
	if(atomic_load(&sp->checkpoint_stale) && now - sp->last_cp_retry_ms >= RETRY_MS){
		sp->last_cp_retry_ms = now;
		rc = kg_spool_checkpoint_write(sp, atomic_load(&sp->checkpoint));
	}
	if(!atomic_load(&sp->next_ready) && now - sp->last_prepare_fail_ms >= RETRY_MS){
		int r = prepare_next(sp);
		if(r){
			sp->last_prepare_fail_ms = now;
			rc = r;
			request_release(sp);
		}
	}
	return rc;
}

/* Close the prepared segment and delete next.tmp. Close only. */
void kg_spool_seg_drop_next(struct kg_spool *sp)
{
	drop_next(sp, !atomic_load(&sp->dir_error));
}
