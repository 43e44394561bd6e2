/* spool_maintain.c -- the spool's maintainer (kg_spool__maintain, the worker's thread): prepares the
 * next segment ahead of the appender, notices a deleted spool directory and recreates it, retries a
 * stale checkpoint, asks for a switch so that a full disk can give space back. Above segments and
 * checkpoints in the spool's call order (spool.c -> maintain -> checkpoint -> segment -> util). */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kitgate/clock.h"
#include "spool_internal.h"

#define DIRCHECK_MS 250   /* how often maintain looks whether the directory still exists */
#define RETRY_MS 1000     /* how often maintain retries a failed preparation or checkpoint */

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
	int64_t now = kg_clock__mono_ms();
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
