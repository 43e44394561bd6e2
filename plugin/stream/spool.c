/* spool.c -- the durable spool's front: kg_spool__open (directory, LOCK, recovery) and close,
 * statistics. The top of the spool's files: nothing else calls into it (leaf helpers: spool_util.c).
 * The spool's layout on disk and the split into files: spool_internal.h. Threads: spool.h. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "spool_internal.h"

/* Create an empty segment at base and append it to the list. Open only. Needs an inode, no data
 * blocks (works on a full disk). Returns 0 or -errno. */
static int add_segment(struct kg_spool *sp, uint64_t base)
{
	char name[64];
	struct kg_seg *seg;
	int rc;

	kg_spool_seg_name(name, sizeof(name), base);
	if(!(seg = kg_spool_seg_open(sp, name, base, true))){
		rc = -errno;
		kg_log(KG_LOG_ERROR, "spool %s: cannot create a segment: %s", sp->dir, strerror(errno));
		return rc;
	}
	if((rc = kg_spool_seg_push(sp, seg))){
		kg_spool_seg_drop(sp, seg, true);
		return rc;
	}
	atomic_store(&sp->dir_dirty, true);
	return 0;
}

static int open_spool(struct kg_spool **out, const char *dir, uint64_t segment_bytes, bool readonly, bool force)
{
	struct kg_spool *sp;
	uint64_t cp = 0, end, bytes = 0, gap_from = UINT64_MAX;
	size_t keep;
	int rc, have_cp;

	assert(out);
	*out = NULL;
	if(!dir || !*dir) return -EINVAL;
	kg_spool_crc32c(0, "", 0); /* initialise the tables before other threads exist */

	sp = calloc(1, sizeof(*sp));
	if(!sp) return -ENOMEM;
	sp->dirfd = -1;
	sp->lockfd = -1;
	sp->readonly = readonly;
	sp->segment_bytes = segment_bytes ? segment_bytes : SPOOL_DEFAULT_SEGMENT;
	pthread_mutex_init(&sp->lock, NULL);
	sp->dir = strdup(dir);
	sp->rbuf = malloc(SPOOL_RBUF);
	sp->scan = malloc(SPOOL_RBUF);
	if(!sp->dir || !sp->rbuf || !sp->scan){
		rc = -ENOMEM;
		goto fail;
	}

	if(!readonly && (rc = kg_spool_mkdir_p(dir))){
		kg_log(KG_LOG_ERROR, "spool %s: cannot create the directory: %s", dir, strerror(-rc));
		goto fail;
	}
	sp->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if(sp->dirfd < 0){
		rc = -errno;
		kg_log(KG_LOG_ERROR, "spool %s: cannot open the directory: %s", dir, strerror(errno));
		goto fail;
	}
	if(readonly){
		if((rc = kg_spool_check_unlocked(dir, sp->dirfd, force))) goto fail;
	}else{
		if((sp->lockfd = kg_spool_lock_dir(dir, sp->dirfd)) < 0){
			rc = sp->lockfd;
			goto fail;
		}
		unlinkat(sp->dirfd, "checkpoint.tmp", 0);
		unlinkat(sp->dirfd, SPOOL_NEXT_NAME, 0);
	}
	if((rc = kg_spool_recover_load(sp))) goto fail;

	have_cp = kg_spool_checkpoint_read(sp, &cp);
	if(have_cp <= 0) cp = sp->nsegs ? sp->segs[0]->base : 0;
	if(sp->nsegs && cp < sp->segs[0]->base){
		/* records after the checkpoint that no segment holds: a missing first segment (noted
		 * after the scan, which gives the average record size for the estimate) */
		gap_from = cp;
		cp = sp->segs[0]->base;
	}
	if(sp->nsegs == 0){
		if(!readonly && (rc = add_segment(sp, cp))) goto fail;
	}else{
		struct kg_seg *last = sp->segs[sp->nsegs - 1];
		end = last->base + atomic_load(&last->size);
		if(cp > end){
			kg_log(KG_LOG_WARNING, "spool %s: checkpoint %llu is beyond the data (%llu); continuing at the checkpoint",
				dir, (unsigned long long)cp, (unsigned long long)end);
			if(!readonly && (rc = add_segment(sp, cp))) goto fail;
		}
	}

	/* segments wholly below the checkpoint are done: delete them (never the last) */
	for(keep = 0; keep + 1 < sp->nsegs && sp->segs[keep + 1]->base <= cp; keep++){
		kg_spool_seg_drop(sp, sp->segs[keep], !readonly);
	}
	memmove(sp->segs, sp->segs + keep, (sp->nsegs - keep) * sizeof(*sp->segs));
	sp->nsegs -= keep;

	for(size_t i = 0; i < sp->nsegs; i++){
		if((rc = kg_spool_recover_segment(sp, i, cp))){
			kg_log(KG_LOG_ERROR, "spool %s: recovery failed: %s", dir, strerror(-rc));
			goto fail;
		}
	}
	sp->rbuf_seg = NULL; /* recovery may have truncated what the buffer holds */
	if(gap_from < cp) kg_spool_note_gap(sp, gap_from, cp, "the segment(s) after the checkpoint are missing");
	kg_spool_estimate_missing(sp);

	end = cp;
	if(sp->nsegs){
		struct kg_seg *last = sp->segs[sp->nsegs - 1];
		end = last->base + atomic_load(&last->size);
		if(end < cp) end = cp; /* read-only, checkpoint beyond the data */
	}
	if(!readonly){
		sp->active = sp->segs[sp->nsegs - 1];
		/* no free space needed to open: on failure appends use pwritev until maintain prepares one */
		kg_spool_seg_map(sp, sp->active, 0, KG_CAUSE_PREPARE);
	}
	for(size_t i = 0; i < sp->nsegs; i++) bytes += atomic_load(&sp->segs[i]->size);
	sp->corrupt_mark = end;
	atomic_store(&sp->end, end);
	atomic_store(&sp->bytes, bytes);
	atomic_store(&sp->checkpoint, cp);
	/* a full disk must not stop the open: a failure is logged and retried by kg_spool__maintain */
	if(!readonly) kg_spool_checkpoint_write(sp, cp);

	kg_log(KG_LOG_INFO, "spool %s: open%s, %zu segment(s), checkpoint %llu, end %llu, %llu byte(s) to replay",
		dir, readonly ? " read-only" : "", sp->nsegs, (unsigned long long)cp, (unsigned long long)end,
		(unsigned long long)(end - cp));
	*out = sp;
	return 0;
fail:
	kg_spool__close(sp);
	return rc;
}

/* See spool.h. segment_bytes 0 means 64 MiB. */
int kg_spool__open(struct kg_spool **out, const char *dir, uint64_t segment_bytes)
{
	return open_spool(out, dir, segment_bytes, false, false);
}

/* See spool.h. */
int kg_spool__open_readonly(struct kg_spool **out, const char *dir, bool force)
{
	return open_spool(out, dir, 0, true, force);
}

void kg_spool__stats(struct kg_spool *sp, struct kg_spool_stats *st)
{
	st->appended = atomic_load_explicit(&sp->appended, memory_order_relaxed);
	st->append_errors = atomic_load_explicit(&sp->append_errors, memory_order_relaxed);
	st->corrupt_skipped = atomic_load_explicit(&sp->corrupt_skipped, memory_order_relaxed);
	st->torn_tails = atomic_load_explicit(&sp->torn_tails, memory_order_relaxed);
	st->plain_segments = atomic_load_explicit(&sp->plain_segments, memory_order_relaxed);
	st->refused_segments = atomic_load_explicit(&sp->refused_segments, memory_order_relaxed);
	st->missing_bytes = atomic_load_explicit(&sp->missing_bytes, memory_order_relaxed);
	st->missing_records_est = atomic_load_explicit(&sp->missing_records_est, memory_order_relaxed);
	st->bytes = atomic_load_explicit(&sp->bytes, memory_order_relaxed);
	st->checkpoint = atomic_load(&sp->checkpoint);
	st->end = atomic_load(&sp->end);
	pthread_mutex_lock(&sp->lock);
	st->segments = sp->nsegs;
	pthread_mutex_unlock(&sp->lock);
	st->healthy = !atomic_load(&sp->dir_error);
}

/* See spool.h. Cuts mapped segment files back to their data. Accepts a half-opened spool (used by
 * open's error path) and NULL. */
void kg_spool__close(struct kg_spool *sp)
{
	if(!sp) return;
	if(!sp->readonly && sp->dirfd >= 0) kg_spool_seg_drop_next(sp);
	for(size_t i = 0; i < sp->nsegs; i++){
		struct kg_seg *seg = sp->segs[i];
		if(seg->map){
			/* leave the file as the pwritev path would: exactly its data */
			kg_spool_seg_unmap(seg);
			if(ftruncate(seg->fd, (off_t)atomic_load(&seg->size)) < 0){
				kg_log(KG_LOG_WARNING, "spool %s: cannot cut segment %llu back to its data: %s", sp->dir,
					(unsigned long long)seg->base, strerror(errno));
			}
		}
		kg_spool_seg_drop(sp, seg, false);
	}
	if(sp->lockfd >= 0) close(sp->lockfd); /* releases the flock */
	if(sp->dirfd >= 0) close(sp->dirfd);
	pthread_mutex_destroy(&sp->lock);
	free(sp->segs);
	free(sp->tmp);
	free(sp->rbuf);
	free(sp->scan);
	free(sp->dir);
	free(sp);
}
