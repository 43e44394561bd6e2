/* spool_recover.c -- what kg_spool__open finds on disk: the segment list, and per segment the
 * scan that verifies every frame from the checkpoint on, recognises the end of the data, cuts a
 * torn tail and counts corrupt regions.
 *
 * In the last segment, a region of only zeros after the last valid frame is the end of the data
 * (preallocation), not damage. Any other bad region at the end of the last segment (no valid frame
 * after it) is cut off with ftruncate (not on a read-only spool: there the data just ends), counted
 * in torn_tails when it looks like an append that stopped part way -- the file ends inside the
 * frame, the magic is missing (the mapped path stores it last), or the frame's last bytes were
 * never written (its end lies beyond the last non-zero byte) -- and in corrupt_skipped when the
 * frame is complete but fails its checksum. Bad regions followed by valid frames stay in place;
 * open counts each once and the reader skips them (resyncing on the next frame that validates).
 * Open only: no other thread uses the spool yet. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool_internal.h"

static int cmp_seg(const void *a, const void *b)
{
	const struct kg_seg *x = *(struct kg_seg *const *)a, *y = *(struct kg_seg *const *)b;
	return x->base < y->base ? -1 : x->base > y->base;
}

/* A directory entry named like a segment that is not one we may read: not a regular file (a FIFO
 * would block open and read, a directory fails them) or a base whose data would pass 2^63 (a name
 * like 18446744073709551615.kgs wrapped the end offset). Skipped with a warning and counted
 * (refused_segments); a writable spool renames an overflowing file to <name>.refused, out of the
 * way and kept for the operator. Returns 1 if refused. */
static int refuse_entry(struct kg_spool *sp, const char *name, uint64_t base)
{
	struct stat st;
	const char *why = NULL;
	char to[300];

	if(fstatat(sp->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) return 0; /* open reports it */
	if(!S_ISREG(st.st_mode)){
		why = S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a FIFO" :
			S_ISLNK(st.st_mode) ? "a symbolic link" : "not a regular file";
	}else if(base > (uint64_t)INT64_MAX || (uint64_t)st.st_size > (uint64_t)INT64_MAX - base){
		why = "a base whose data would pass 2^63 (not a segment this spool wrote)";
	}
	if(!why) return 0;
	atomic_fetch_add(&sp->refused_segments, 1);
	if(!sp->readonly && S_ISREG(st.st_mode)){
		snprintf(to, sizeof(to), "%s.refused", name);
		if(renameat(sp->dirfd, name, sp->dirfd, to) == 0){
			kg_log(KG_LOG_WARNING, "spool %s: %s is %s: not read, renamed to %s", sp->dir, name, why, to);
			return 1;
		}
	}
	kg_log(KG_LOG_WARNING, "spool %s: %s is %s: skipped", sp->dir, name, why);
	return 1;
}

/* Load the segment files of the directory into sp->segs, sorted. Returns 0 or -errno (logged). */
int kg_spool_recover_load(struct kg_spool *sp)
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
		if(!kg_spool_seg_parse_name(de->d_name, &base)) continue;
		if(refuse_entry(sp, de->d_name, base)) continue;
		if(!(seg = kg_spool_seg_open(sp, de->d_name, base, false))){
			if(errno == SPOOL_ENOTREG){ /* replaced by a non-file since refuse_entry looked */
				atomic_fetch_add(&sp->refused_segments, 1);
				kg_log(KG_LOG_WARNING, "spool %s: %s is not a regular file: skipped", sp->dir, de->d_name);
				continue;
			}
			rc = -errno;
			kg_log(KG_LOG_ERROR, "spool %s: cannot open segment %s: %s", sp->dir, de->d_name, strerror(errno));
			break;
		}
		if((rc = kg_spool_seg_push(sp, seg))){
			kg_spool_seg_drop(sp, seg, false);
			break;
		}
	}
	closedir(d);
	if(sp->nsegs) qsort(sp->segs, sp->nsegs, sizeof(*sp->segs), cmp_seg);
	return rc;
}

/* Record bytes of the log that no segment holds: [start, stop) is a gap (before the first
 * segment but after the checkpoint, or between a segment's data and the next one's base: a
 * missing, empty or truncated segment). Counted in missing_bytes and logged; open estimates the
 * records once its scan is done (kg_spool_estimate_missing). Open only. */
void kg_spool_note_gap(struct kg_spool *sp, uint64_t start, uint64_t stop, const char *what)
{
	if(stop <= start) return;
	atomic_fetch_add(&sp->missing_bytes, stop - start);
	kg_log(KG_LOG_ERROR, "spool %s: %s: %llu bytes of records are missing at [%llu, %llu)", sp->dir,
		what, (unsigned long long)(stop - start), (unsigned long long)start, (unsigned long long)stop);
}

/* After open's scan: the missing bytes in records, at the average size of the records seen (one
 * line). Open only. */
void kg_spool_estimate_missing(struct kg_spool *sp)
{
	uint64_t n = atomic_load(&sp->missing_bytes), avg, est;

	if(!n) return;
	if(!sp->recover_frames){
		kg_log(KG_LOG_ERROR, "spool %s: %llu bytes of records are missing in all (no record left to "
			"estimate how many)", sp->dir, (unsigned long long)n);
		return;
	}
	avg = sp->recover_frame_bytes / sp->recover_frames;
	est = (n + avg - 1) / avg;
	atomic_store(&sp->missing_records_est, est);
	kg_log(KG_LOG_ERROR, "spool %s: %llu bytes of records are missing in all: about %llu records (at "
		"the average %llu bytes a record)", sp->dir, (unsigned long long)n, (unsigned long long)est,
		(unsigned long long)avg);
}

/* The end of the last non-zero byte of seg's file in [off, bound) (off if there is none). Returns
 * 0 and *nz_end, or -errno. */
static int last_nonzero(struct kg_spool *sp, struct kg_seg *seg, uint64_t off, uint64_t bound, uint64_t *nz_end)
{
	*nz_end = off;
	while(off < bound){
		size_t want = bound - off > SPOOL_RBUF ? SPOOL_RBUF : (size_t)(bound - off), n;
		ssize_t got = kg_spool_pread_full(seg->fd, sp->scan, want, off);
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
 * than a complete frame that is damaged? kind is what frame_try said at off. */
static bool tail_is_torn(const struct kg_seg *seg, uint64_t off, uint64_t nz_end, int kind)
{
	uint8_t hdr[SPOOL_HDR];
	uint32_t magic, blen;

	if(kind == KG_FRAME_SHORT) return true; /* the file ends inside the frame */
	if(kg_spool_pread_full(seg->fd, hdr, SPOOL_HDR, off) != (ssize_t)SPOOL_HDR) return true;
	magic = kg_spool_get_le32(hdr);
	blen = kg_spool_get_le32(hdr + 4);
	if(magic == 0) return true; /* the mapped path stores the magic last */
	/* a sound header whose frame reaches past the last byte ever written */
	return magic == SPOOL_MAGIC && blen <= SPOOL_MAX_BODY && off + SPOOL_HDR + blen > nz_end;
}

/* Verify every frame of segs[i] from logical position from on and set the segment's data size:
 * up to the next segment for all but the last; for the last, up to its last valid frame, where a
 * tail of zeros is the end and any other bad tail is counted and (unless read-only) cut off.
 * Returns 0 or -errno (I/O errors only). */
int kg_spool_recover_segment(struct kg_spool *sp, size_t i, uint64_t from)
{
	struct kg_seg *seg = sp->segs[i];
	bool last = i + 1 == sp->nsegs;
	uint64_t bound = atomic_load(&seg->size), off, nz_end = 0;

	uint64_t span = last ? 0 : sp->segs[i + 1]->base - seg->base, file = bound;

	/* a file reaching past the next segment's base holds preallocated zeros there: ignore them */
	if(!last && span < bound) bound = span;
	off = from > seg->base ? from - seg->base : 0;
	while(off < bound){
		uint32_t l = 0;
		uint64_t found = 0;
		int r = kg_spool_frame_try(sp, seg, off, bound, NULL, &l), kind = r;

		if(r < 0) return r;
		if(r == KG_FRAME_OK){
			off += SPOOL_HDR + l;
			sp->recover_frames++;
			sp->recover_frame_bytes += SPOOL_HDR + l;
			continue;
		}
		if(last){
			if((r = last_nonzero(sp, seg, off, bound, &nz_end))) return r;
			if(nz_end == off) break; /* only zeros follow: the end of the data */
		}
		r = kg_spool_frame_resync(sp, seg, off, bound, &found);
		if(r < 0) return r;
		if(r == 1 || !last){
			kg_spool_count_corrupt(sp, seg->base + off, seg->base + (r == 1 ? found : bound));
			if(r == 0) break;
			off = found;
			continue;
		}
		/* a bad tail of the last segment: cut it off */
		bool torn = tail_is_torn(seg, off, nz_end, kind);
		if(!sp->readonly && ftruncate(seg->fd, (off_t)off) < 0) return -errno;
		kg_log(sp->readonly ? KG_LOG_INFO : KG_LOG_WARNING, "spool %s: %s %s tail of %llu bytes at %llu",
			sp->dir, sp->readonly ? "found" : "cut off", torn ? "a torn" : "a corrupt",
			(unsigned long long)(nz_end - off), (unsigned long long)(seg->base + off));
		if(torn){
			atomic_fetch_add(&sp->torn_tails, 1);
		}else{
			kg_spool_count_corrupt(sp, seg->base + off, seg->base + nz_end);
		}
		atomic_store(&seg->dirty, true);
		break;
	}
	atomic_store(&seg->size, last && off < bound ? off : bound);
	/* a segment that ends before the next one begins lost its end (or all of it, when empty) */
	if(!last && file < span){
		char what[96];
		snprintf(what, sizeof(what), "segment %llu is %s", (unsigned long long)seg->base,
			file ? "truncated" : "empty");
		kg_spool_note_gap(sp, seg->base + (from > seg->base + file ? from - seg->base : file), seg->base + span, what);
	}
	return 0;
}
