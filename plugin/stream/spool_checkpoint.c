/* spool_checkpoint.c -- the spool's checkpoint file (everything before it is delivered) and
 * kg_spool__commit, which advances it and deletes the segments wholly below it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool_internal.h"

/* Read the checkpoint: 1 and *pos if valid, 0 if missing, -1 if unreadable or corrupt (logged).
 * Open only. */
int kg_spool_checkpoint_read(struct kg_spool *sp, uint64_t *pos)
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
	n = kg_spool_pread_full(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	if(n < 0){
		kg_log(KG_LOG_ERROR, "spool %s: cannot read checkpoint: %s", sp->dir, strerror((int)-n));
		return -1;
	}
	buf[n] = '\0';
	if(sscanf(buf, "KGCP1 %llu %8x", &v, &crc) != 2) goto corrupt;
	for(int i = 0; i < 8; i++) le[i] = (uint8_t)(v >> (8 * i));
	if(kg_spool_crc32c(0, le, 8) != crc) goto corrupt;
	*pos = v;
	return 1;
corrupt:
	kg_log(KG_LOG_ERROR, "spool %s: checkpoint is corrupt; replaying from the first segment", sp->dir);
	return -1;
}

/* Persist pos as the checkpoint: checkpoint.tmp, fsync, rename, fsync dir. Returns 0 or -errno
 * (logged at most once a second). Reader thread (or open). */
int kg_spool_checkpoint_write(struct kg_spool *sp, uint64_t pos)
{
	char buf[64];
	uint8_t le[8];
	int fd, len, rc = 0;

	for(int i = 0; i < 8; i++) le[i] = (uint8_t)(pos >> (8 * i));
	len = snprintf(buf, sizeof(buf), "KGCP1 %llu %08x\n", (unsigned long long)pos, kg_spool_crc32c(0, le, 8));
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
	atomic_store(&sp->checkpoint_stale, false);
	return 0;
fail:
	unlinkat(sp->dirfd, "checkpoint.tmp", 0);
	atomic_store(&sp->checkpoint_stale, true);
	kg_spool_log(sp, KG_CAUSE_CHECKPOINT, KG_LOG_ERROR, "cannot write checkpoint %llu: %s",
		(unsigned long long)pos, strerror(-rc));
	return rc;
}

/* See spool.h. -EINVAL if pos is behind the checkpoint or beyond the end. When the checkpoint
 * file cannot be written (disk full), the checkpoint still advances in memory and the segments
 * below it are still deleted -- that frees space, and a crash then replays from the oldest
 * remaining segment, which loses nothing -- and kg_spool__maintain retries the write; the error
 * is returned. */
int kg_spool__commit(struct kg_spool *sp, uint64_t pos)
{
	uint64_t cur = atomic_load(&sp->checkpoint);
	int rc = 0;

	if(sp->readonly) return -EROFS;
	if(pos < cur || pos > kg_spool__end(sp)) return -EINVAL;
	if(pos > cur){
		rc = kg_spool_checkpoint_write(sp, pos);
		atomic_store(&sp->checkpoint, pos);
	}
	kg_spool_drop_consumed(sp);
	return rc;
}

/* Delete the segments wholly below the checkpoint (never the last one). Reader thread. */
void kg_spool_drop_consumed(struct kg_spool *sp)
{
	uint64_t pos = atomic_load(&sp->checkpoint);
	size_t k = 0;

	pthread_mutex_lock(&sp->lock);
	while(k + 1 < sp->nsegs && sp->segs[k + 1]->base <= pos) k++;
	if(k == 0 || kg_spool_tmp_reserve(sp, k)){
		pthread_mutex_unlock(&sp->lock);
		return; /* nothing to do, or deletion waits for the next call */
	}
	memcpy(sp->tmp, sp->segs, k * sizeof(*sp->segs));
	memmove(sp->segs, sp->segs + k, (sp->nsegs - k) * sizeof(*sp->segs));
	sp->nsegs -= k;
	pthread_mutex_unlock(&sp->lock);

	for(size_t i = 0; i < k; i++){
		atomic_fetch_sub(&sp->bytes, atomic_load(&sp->tmp[i]->size));
		kg_spool_seg_drop(sp, sp->tmp[i], true);
	}
	/* The checkpoint on disk is behind the segments just deleted (it could not be written: disk
	 * full). Their space is free now: write it at once, so that a crash finds no checkpoint
	 * before the first segment, which open reports as missing records. */
	if(atomic_load(&sp->checkpoint_stale)) kg_spool_checkpoint_write(sp, pos);
}

uint64_t kg_spool__checkpoint(const struct kg_spool *sp)
{
	return atomic_load(&((struct kg_spool *)sp)->checkpoint);
}
