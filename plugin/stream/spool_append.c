/* spool_append.c -- kg_spool__append, the broker thread's one I/O: a memcpy into the active
 * segment's mapping; when it is full, a switch to the segment kg_spool__maintain prepared (a
 * rename, no allocation); only when none is ready, one pwritev(2) per record into a plain file.
 *
 * The mapped pages are the file's page cache, so a record is as safe as after write(2): it
 * survives kill -9 of the process, and a machine crash once kg_spool__sync has run. The frame is
 * copied body first and magic last, so a process killed part way leaves a frame without its magic,
 * recognisably torn (see spool_recover.c).
 *
 * When to move to another segment (the "switch"):
 *   - the mapped active segment has no room for the frame;
 *   - the active segment is a plain file (no segment was ready when the last one filled) holding
 *     data, and a prepared one is ready now -- back to the mapped path as soon as possible;
 *   - a plain active segment holds segment_bytes;
 *   - the maintainer asks for it (want_switch): it recreated a deleted directory, or no segment
 *     can be prepared (disk full) and the active one is wholly delivered, so it must be left for
 *     the reader to delete it and free its space.
 * The switch takes the prepared segment if it is ready and big enough (a record larger than a
 * segment is not), else creates a plain file. An empty mapped segment too small for a huge record
 * is unmapped and written with pwritev instead. Appender thread only. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "spool_internal.h"

/* Copy one frame into seg's mapping at off, which has room for it: the body, then length and
 * checksum, then -- after a compiler barrier -- the magic. Cannot fail: the blocks are allocated. */
static void append_mapped(struct kg_seg *seg, uint64_t off, const uint8_t *hdr, const void *body, uint32_t len)
{
	uint8_t *p = seg->map + off;

	assert(seg->map && off + SPOOL_HDR + len <= seg->map_len);
	if(len) memcpy(p + SPOOL_HDR, body, len);
	memcpy(p + 4, hdr + 4, SPOOL_HDR - 4);
	atomic_signal_fence(memory_order_seq_cst);
	memcpy(p, hdr, 4);
}

/* Write one frame at off of an unmapped segment with pwritev; on failure the file is cut back
 * to off so the segment stays well-formed. Returns 0 or -errno (not logged). */
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
		kg_spool_log(sp, KG_CAUSE_APPEND, KG_LOG_ERROR, "cannot cut back a failed append: %s", strerror(errno));
	}
	return -err;
}

/* Make seg (created for base) the active segment. The old one is never touched again by the
 * appender (the reader may drop it as soon as it is not the last). */
static int activate(struct kg_spool *sp, struct kg_seg *seg)
{
	int rc;

	pthread_mutex_lock(&sp->lock);
	rc = kg_spool_seg_push(sp, seg);
	pthread_mutex_unlock(&sp->lock);
	if(rc) return rc;
	sp->active = seg;
	atomic_store_explicit(&sp->dir_dirty, true, memory_order_relaxed);
	atomic_store(&sp->want_switch, false);
	atomic_store(&sp->dir_error, 0);
	return 0;
}

/* Move the append position to a new segment starting at the current end, with room for need
 * bytes: the prepared one if ready and big enough, else a plain file. Returns 0, or -errno with
 * the current segment still active (logged). */
static int switch_segment(struct kg_spool *sp, uint64_t need)
{
	uint64_t base = sp->active->base + atomic_load_explicit(&sp->active->size, memory_order_relaxed);
	char name[64];
	struct kg_seg *seg = NULL;
	int rc;

	kg_spool_seg_name(name, sizeof(name), base);
	if(atomic_load_explicit(&sp->next_ready, memory_order_acquire)){
		pthread_mutex_lock(&sp->lock);
		if(sp->next && sp->next->map_len >= need){
			if(renameat(sp->dirfd, SPOOL_NEXT_NAME, sp->dirfd, name) == 0){
				seg = sp->next;
				sp->next = NULL;
				atomic_store(&sp->next_ready, false);
				seg->base = base;
				rc = kg_spool_seg_push(sp, seg);
				if(rc){
					/* give it back under its old name: nothing was written to it */
					renameat(sp->dirfd, name, sp->dirfd, SPOOL_NEXT_NAME);
					sp->next = seg;
					atomic_store(&sp->next_ready, true);
					pthread_mutex_unlock(&sp->lock);
					return rc;
				}
				pthread_mutex_unlock(&sp->lock);
				sp->active = seg;
				atomic_store_explicit(&sp->dir_dirty, true, memory_order_relaxed);
				atomic_store(&sp->want_switch, false);
				atomic_store(&sp->dir_error, 0);
				return 0;
			}
			kg_spool_log(sp, KG_CAUSE_APPEND, KG_LOG_ERROR, "cannot rename the prepared segment: %s", strerror(errno));
		}
		pthread_mutex_unlock(&sp->lock);
	}
	/* none ready: a plain file, written with pwritev */
	seg = kg_spool_seg_open(sp, name, base, true);
	if(!seg){
		rc = -errno;
		kg_spool_log(sp, KG_CAUSE_APPEND, KG_LOG_ERROR, "cannot create segment %s: %s", name, strerror(-rc));
		return rc;
	}
	if((rc = activate(sp, seg))){
		unlinkat(sp->dirfd, name, 0);
		close(seg->fd);
		free(seg);
		return rc;
	}
	atomic_fetch_add_explicit(&sp->plain_segments, 1, memory_order_relaxed);
	kg_spool_log(sp, KG_CAUSE_FALLBACK, KG_LOG_WARNING, "no prepared segment was ready: appending to %s "
		"with write(2)%s", name, atomic_load_explicit(&kg_spool_test_no_mmap, memory_order_relaxed) ? ""
		: " (is kg_spool__maintain called? is the disk full?)");
	return 0;
}

/* See spool.h. */
int kg_spool__append(struct kg_spool *sp, const void *body, uint32_t len, uint64_t *end)
{
	struct kg_seg *seg;
	uint8_t hdr[SPOOL_HDR];
	uint64_t off, e, total = SPOOL_HDR + (uint64_t)len;
	bool move, want;
	int rc = 0, derr;

	if(len > SPOOL_MAX_BODY) return -EMSGSIZE;
	if(len && !body) return -EINVAL;
	if(sp->readonly) return -EROFS;

	derr = atomic_load_explicit(&sp->dir_error, memory_order_relaxed);
	want = atomic_load_explicit(&sp->want_switch, memory_order_relaxed);
	if(derr && !want){
		rc = -derr;
		goto fail;
	}
	seg = sp->active;
	off = atomic_load_explicit(&seg->size, memory_order_relaxed);
	if(seg->map){
		move = total > seg->map_len - off;
	}else{
		move = off > 0 && (off >= sp->segment_bytes
			|| atomic_load_explicit(&sp->next_ready, memory_order_relaxed));
	}
	/* want: the maintainer asks for a new segment (recreated directory, or the active one is
	 * delivered and must go to free its space); never at the active one's own base */
	if((want && (off > 0 || derr)) || (move && off > 0)){
		rc = switch_segment(sp, total);
		if(rc && derr) goto fail;
		seg = sp->active;
		off = atomic_load_explicit(&seg->size, memory_order_relaxed);
	}
	if(seg->map && total > seg->map_len - off){
		if(off > 0){
			if(!rc) rc = -ENOSPC;
			goto fail; /* full, and no new segment */
		}
		kg_spool_seg_unmap(seg); /* an empty segment too small for a huge record: pwritev it */
	}

	kg_spool_frame_header(hdr, body, len);
	if(seg->map){
		append_mapped(seg, off, hdr, body, len);
	}else if((rc = append_write(sp, seg, off, hdr, body, len))){
		kg_spool_log(sp, KG_CAUSE_APPEND, KG_LOG_ERROR, "append failed: %s", strerror(-rc));
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
	return atomic_load_explicit(&((struct kg_spool *)sp)->end, memory_order_acquire);
}
