/* spool.h -- the append-only, checksummed on-disk log of accepted records, and its checkpoint.
 *
 * Positions are logical byte offsets across all segments (a segment file is named after the
 * offset of its first byte, like Kafka's). A record occupies [start, end); "end" positions are what
 * the caller stores and commits.
 *
 * Files on disk, the frame format and which source file does what: plugin/stream/spool_internal.h.
 *
 * Threads (libuv style: who may call what)
 *   function                    | thread
 *   ----------------------------+-------------------------------------------------------------
 *   kg_spool__open/open_readonly| any, before other threads use the spool
 *   kg_spool__append            | the APPENDER (the broker thread; one at a time, the caller
 *                               | serialises)
 *   kg_spool__maintain          | the MAINTAINER = the READER (the worker thread)
 *   kg_spool__read/sync/commit  | the READER (the worker thread)
 *   kg_spool__end/checkpoint    | any (atomics)
 *   kg_spool__stats             | any (atomics, and the list lock for the segment count)
 *   kg_spool__close             | any, once no other thread uses the spool
 *
 * Shared between the appender and the maintainer/reader
 *   object                       | protection      | written by            | read by
 *   -----------------------------+-----------------+-----------------------+------------------
 *   segment list (segs, nsegs)   | mutex sp->lock  | appender (adds at a   | reader (lookup,
 *                                |                 | switch), reader (drops| drops), stats
 *                                |                 | done ones, never last)|
 *   prepared segment slot (next) | mutex sp->lock  | maintainer (fills),   | appender
 *                                | + next_ready    | appender (takes)      |
 *   end                          | atomic, release | appender              | everyone, acquire
 *   segment size, dirty          | atomics         | appender (active seg) | reader, sync
 *   checkpoint                   | atomic          | reader (commit)       | everyone
 *   dir_error, want_switch       | atomics         | maintainer sets,      | appender
 *                                |                 | appender clears       |
 *   counters (appended, errors,  | atomics         | appender / reader     | stats
 *   corrupt, torn, bytes)        |                 |                       |
 *   dirfd                        | dup2 (atomic fd | maintainer (recreated | both (openat,
 *                                | replacement)    | directory)            | renameat)
 * The appender takes sp->lock only at a segment switch (once per segment_bytes); its common path
 * is a bounds check, a memcpy into the mapping and an atomic store. The reader reads only below a
 * limit obtained after an append returned (end is stored with release after the copy), so it
 * never sees a half-written record. */
#ifndef KITGATE_SPOOL_H
#define KITGATE_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kg_spool;

/* The largest record body kg_spool__append takes (-EMSGSIZE beyond it). */
#define KG_SPOOL_MAX_BODY (16u * 1024u * 1024u)

struct kg_spool_stats {
	uint64_t appended;        /* records appended since open */
	uint64_t append_errors;   /* failed appends (disk full, EIO, ...) */
	uint64_t corrupt_skipped; /* records skipped because the checksum or framing was bad */
	uint64_t torn_tails;      /* truncated last records found (and cut off) at open */
	uint64_t bytes;           /* data bytes in live segments (not preallocated space) */
	uint64_t checkpoint;      /* committed position */
	uint64_t end;             /* append position */
	uint64_t segments;        /* segment files in use */
	uint64_t plain_segments;  /* segments started without a prepared one (pwritev path) */
	uint64_t refused_segments;    /* *.kgs names skipped at open: not a regular file, or a base
	                               * whose data would pass 2^63 (renamed *.refused when writable) */
	uint64_t missing_bytes;       /* bytes of the log no segment holds, found at open: after the
	                               * checkpoint before the first segment, or a missing, empty or
	                               * truncated segment before the next one */
	uint64_t missing_records_est; /* those bytes in records, estimated from the average record */
	int healthy;              /* 0 while the directory is gone and appends fail */
};

/* Open (creating dir if needed), lock and recover: take an exclusive flock on <dir>/LOCK (our
 * pid written in it), read the checkpoint, scan from it to the end verifying checksums, cut off a
 * torn tail, count corrupt records. Needs no free space: the active segment is preallocated and
 * mapped if possible, else appends use pwritev until kg_spool__maintain succeeds; a checkpoint
 * that cannot be written is logged and retried by maintain. Returns 0 or -errno, each with one
 * line logged naming dir: -EWOULDBLOCK when another process holds the lock (the line names its
 * pid), -ENOTDIR / -EACCES / -EROFS ... for an unusable directory, -EINVAL for an empty name.
 * segment_bytes (0 = 64 MiB): the size segments are preallocated to; a new one starts when the
 * next record does not fit (a record larger than this gets a segment of its own). Any thread,
 * at start-up. */
int kg_spool__open(struct kg_spool **out, const char *dir, uint64_t segment_bytes);

/* Open dir for inspection (kitgate-spool): never creates, truncates, locks or writes anything.
 * A torn tail is counted and ends the data instead of being cut. -EWOULDBLOCK (logged) when a
 * live process holds the LOCK, unless force. append/commit/maintain return -EROFS; read works.
 * Then kg_spool__stats and kg_spool__read from kg_spool__checkpoint to kg_spool__end show what
 * is pending. */
int kg_spool__open_readonly(struct kg_spool **out, const char *dir, bool force);

/* The worker's half of appending; call it from the worker loop on every iteration (at least every
 * 100 ms, and right after kg_spool__open before appends start if possible). Cheap when there is
 * nothing to do (two atomic loads and a clock read). It
 *  - prepares the NEXT segment (next.tmp: created, preallocated to segment_bytes with real blocks,
 *    mapped) whenever none is ready, so a full active segment is replaced by a rename on the
 *    broker thread -- never an fallocate or mmap there. At 15 MB/s of appends a 64 MiB segment
 *    lasts 4 s; maintain must run well within that, or appends fall back to pwritev;
 *  - retries what failed, at most once a second each: the preparation (disk full: the spool
 *    resumes on the mapped path by itself when space returns), the checkpoint write;
 *  - deletes delivered segments; when no segment can be prepared and the active one is wholly
 *    delivered, has the appender move to a new one so that it can be deleted and its space (and
 *    preallocation) freed -- a spool that filled the disk frees it without new commits;
 *  - every 250 ms checks that the directory still exists; if it was deleted, appends fail with
 *    -ENOENT until maintain has recreated it (with its LOCK) and the next append switched to a
 *    segment there. Records appended before and not yet delivered live on in the open (deleted)
 *    files until delivered; a crash loses them (logged).
 * Returns 0, or -errno of what is still failing (already logged, rate-limited). Reader thread. */
int kg_spool__maintain(struct kg_spool *sp);

/* Append one record body (<= 16 MiB): a memcpy into a shared mapping of the active segment (the
 * page cache); when it is full, a switch (rename) to the segment kg_spool__maintain prepared;
 * only if none is ready, one pwritev(2) per record into a plain segment file. No fsync, no
 * allocation, no fallocate/mmap. Survives a crash of the process, not of the machine until the
 * next kg_spool__sync. Returns 0 and sets *end, or -errno: -ENOSPC/-EDQUOT/-EFBIG/-EIO (disk),
 * -ENOENT (directory deleted), -EMSGSIZE (body over 16 MiB), -EROFS (read-only open). After an
 * error nothing of the record is in the spool and the spool stays usable; it resumes by itself
 * (see kg_spool__maintain). Failures are logged at most once a second. Appender thread. */
int kg_spool__append(struct kg_spool *sp, const void *body, uint32_t len, uint64_t *end);

/* Append position (the end of the last appended record). Appender thread, or any thread holding
 * the lock the caller serialises appends with. */
uint64_t kg_spool__end(const struct kg_spool *sp);

/* Read the record starting at *pos if it ends at or before limit. Returns 1 and copies the body
 * into a malloc'd *body (caller frees) with *len, advancing *pos to its end; 0 when *pos >= limit;
 * corrupt records on the way are skipped and counted. -errno on I/O error. Reader thread. */
int kg_spool__read(struct kg_spool *sp, uint64_t *pos, uint64_t limit, uint8_t **body, uint32_t *len);

/* fdatasync the segments written since the last sync (this also writes back pages dirtied
 * through the mapping). Reader thread. Returns 0 or -errno. */
int kg_spool__sync(struct kg_spool *sp);

/* Persist the checkpoint (everything before pos is done): write a temporary file, fsync, rename.
 * Deletes segments that lie wholly below pos. When the file cannot be written (disk full) the
 * checkpoint still advances in memory and the segments are still deleted (a crash then replays
 * from the oldest kept segment: nothing is lost), kg_spool__maintain retries the write, and the
 * error is returned (logged at most once a second). Reader thread. Returns 0 or -errno. */
int kg_spool__commit(struct kg_spool *sp, uint64_t pos);

uint64_t kg_spool__checkpoint(const struct kg_spool *sp);
void kg_spool__stats(struct kg_spool *sp, struct kg_spool_stats *st);

/* Unmap, cut preallocated files back to their data, close files and free. Does not commit.
 * Either thread, once the other has stopped. */
void kg_spool__close(struct kg_spool *sp);

#endif
