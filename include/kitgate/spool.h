/* spool.h -- the append-only, checksummed on-disk log of accepted records, and its checkpoint.
 *
 * Positions are logical byte offsets across all segments (a segment file is named after the
 * offset of its first byte, like Kafka's). A record occupies [start, end); "end" positions are what
 * the caller stores and commits.
 *
 * Threads: one appender thread (the broker thread, serialised by the caller) and one reader
 * thread (the worker) may use a spool concurrently. The reader reads only below a limit that the
 * caller obtained after the append returned, so it never sees a half-written record. */
#ifndef KITGATE_SPOOL_H
#define KITGATE_SPOOL_H

#include <stddef.h>
#include <stdint.h>

struct kg_spool;

struct kg_spool_stats {
	uint64_t appended;        /* records appended since open */
	uint64_t append_errors;   /* failed appends (disk full, EIO, ...) */
	uint64_t corrupt_skipped; /* records skipped because the checksum or framing was bad */
	uint64_t torn_tails;      /* truncated last records found (and cut off) at open */
	uint64_t bytes;           /* data bytes in live segments (not preallocated space) */
	uint64_t checkpoint;      /* committed position */
	uint64_t end;             /* append position */
};

/* Open (creating dir if needed) and recover: read the checkpoint, scan from it to the end,
 * verifying checksums, cut off a torn tail, count corrupt records. Returns 0 or -errno (the
 * reason is logged with kg_log). segment_bytes: the active segment is preallocated to this
 * and mapped; a new one starts when the next record does not fit (a record larger than this gets
 * a segment of its own). Main thread, at start-up. */
int kg_spool__open(struct kg_spool **out, const char *dir, uint64_t segment_bytes);

/* Append one record body (<= 16 MiB): a memcpy into a shared mapping of the active segment (the
 * page cache), or one pwritev(2) for a segment that could not be preallocated and mapped; no
 * fsync. Survives a crash of the process, not of the machine until the next kg_spool__sync.
 * Returns 0 and sets *end, or -errno; after an error the spool stays usable (the partial write
 * is cut off). Appender thread. */
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
 * Deletes segments that lie wholly below pos. Reader thread. Returns 0 or -errno. */
int kg_spool__commit(struct kg_spool *sp, uint64_t pos);

uint64_t kg_spool__checkpoint(const struct kg_spool *sp);
void kg_spool__stats(struct kg_spool *sp, struct kg_spool_stats *st);

/* Unmap, cut preallocated files back to their data, close files and free. Does not commit.
 * Either thread, once the other has stopped. */
void kg_spool__close(struct kg_spool *sp);

#endif
