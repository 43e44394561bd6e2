/* spool_read.c -- the spool's reader side: kg_spool__read (records in order, skipping and counting
 * corrupt regions once) and kg_spool__sync (fdatasync of what was appended). Reader thread. */
#include <assert.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "spool_internal.h"

/* Count the bad region [start, stop) unless it was counted already (a watermark, so reading the
 * same bytes at open and again on replay never double-counts). Reader thread (or open). */
void kg_spool_count_corrupt(struct kg_spool *sp, uint64_t start, uint64_t stop)
{
	if(start >= sp->corrupt_mark){
		atomic_fetch_add_explicit(&sp->corrupt_skipped, 1, memory_order_relaxed);
		kg_log(KG_LOG_WARNING, "spool %s: skipped corrupt data at [%llu, %llu)", sp->dir,
			(unsigned long long)start, (unsigned long long)stop);
	}
	if(stop > sp->corrupt_mark) sp->corrupt_mark = stop;
}

/* See spool.h. limit must be a record boundary (an end from append/read or kg_spool__end). */
int kg_spool__read(struct kg_spool *sp, uint64_t *pos, uint64_t limit, uint8_t **body, uint32_t *len)
{
	uint64_t end = kg_spool__end(sp);

	if(limit > end) limit = end; /* never look at bytes an append may still be writing */
	for(;;){
		uint64_t p = *pos, next = UINT64_MAX, hi, found = 0;
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
		r = kg_spool_frame_try(sp, seg, p - seg->base, hi - seg->base, body, len);
		if(r < 0) return r;
		if(r == KG_FRAME_OK){
			*pos = p + SPOOL_HDR + *len;
			return 1;
		}
		r = kg_spool_frame_resync(sp, seg, p - seg->base, hi - seg->base, &found);
		if(r < 0) return r;
		found = r ? seg->base + found : hi;
		kg_spool_count_corrupt(sp, p, found);
		*pos = found;
	}
}

/* See spool.h. The directory is fsync'ed too when a segment was created since the last sync. */
int kg_spool__sync(struct kg_spool *sp)
{
	size_t n;
	int rc = 0;

	if(sp->readonly) return 0;
	pthread_mutex_lock(&sp->lock);
	n = sp->nsegs;
	if(kg_spool_tmp_reserve(sp, n)){
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
			kg_spool_log(sp, KG_CAUSE_SYNC, KG_LOG_ERROR, "fdatasync of segment %llu failed: %s",
				(unsigned long long)seg->base, strerror(-rc));
			return rc;
		}
	}
	if(atomic_exchange(&sp->dir_dirty, false) && fsync(sp->dirfd) < 0){
		rc = -errno;
		atomic_store(&sp->dir_dirty, true);
		kg_spool_log(sp, KG_CAUSE_SYNC, KG_LOG_ERROR, "fsync of the directory failed: %s", strerror(-rc));
	}
	return rc;
}
