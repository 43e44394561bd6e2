/* spool_internal.h -- the spool's private layout, shared by plugin/stream/spool*.c only (never by callers).
 *
 * On disk, in the spool directory:
 *   <base>.kgs    segment files; <base> is the logical position (%020llu) of the file's first byte.
 *                 Segments are contiguous: a segment's data ends where the next one begins.
 *   next.tmp      the segment the worker prepared ahead of need (preallocated, no data yet); the
 *                 appender renames it to <base>.kgs when it switches to it. Deleted at open.
 *   checkpoint    "KGCP1 <pos> <crc32c of pos as 8 LE bytes, hex>\n", replaced atomically
 *                 (checkpoint.tmp, fsync, rename, fsync dir).
 *   LOCK          flock(LOCK_EX) by the process that appends; holds its pid as text.
 *
 * A record frame (all integers little-endian):
 *   u32 magic 'KGS1' | u32 body length | u32 CRC32C(length bytes || body) | body
 * Logical positions count frame bytes; a record's "end" is the position just after its body.
 * A segment's file may be longer than its data: the rest is zeros (preallocation).
 *
 * Which file does what (each calls only files listed below it: no circle):
 *   spool.c             kg_spool__open/close, stats
 *   spool_maintain.c    kg_spool__maintain: preparing the next segment, a deleted directory, retries
 *   spool_recover.c     open-time scan: torn tails, corrupt regions, zero tails
 *   spool_read.c        kg_spool__read, kg_spool__sync
 *   spool_checkpoint.c  the checkpoint file, kg_spool__commit
 *   spool_append.c      kg_spool__append: mapped path, segment switch, pwritev fallback
 *   spool_segment.c     segment files: open/map/drop, the segment list
 *   spool_util.c        monotonic ms, the per-cause rate-limited log, mkdir -p, the LOCK file
 *   spool_frame.c       CRC32C, frame encoding/validation, buffered reads, resync
 */
#ifndef KITGATE_SPOOL_INTERNAL_H
#define KITGATE_SPOOL_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "kitgate/log.h"
#include "kitgate/ratelimit.h"
#include "kitgate/spool.h"

#define SPOOL_MAGIC 0x4B475331u /* 'KGS1' */
#define SPOOL_HDR 12u
#define SPOOL_MAX_BODY KG_SPOOL_MAX_BODY
#define SPOOL_DEFAULT_SEGMENT (64u * 1024u * 1024u)
#define SPOOL_RBUF (64u * 1024u)
#define SPOOL_SEG_SUFFIX ".kgs"
#define SPOOL_SEG_NAMELEN (20 + 4)
#define SPOOL_NEXT_NAME "next.tmp"
#define SPOOL_LOCK_NAME "LOCK"
#define SPOOL_ENOTREG ENODEV /* errno of kg_spool_seg_open for a name that is not a regular file */

enum kg_spool_frame_result {
	KG_FRAME_BAD = 0,   /* complete but wrong: magic, length or checksum */
	KG_FRAME_OK = 1,
	KG_FRAME_SHORT = 2, /* the bytes end before the frame does */
};

/* Log causes, each rate-limited on its own (see kg_spool_log). */
enum kg_spool_cause {
	KG_CAUSE_APPEND,     /* appender: a failed append */
	KG_CAUSE_FALLBACK,   /* appender: switched to a plain (write(2)) segment */
	KG_CAUSE_PREPARE,    /* maintainer: cannot prepare the next segment */
	KG_CAUSE_DIR,        /* maintainer: the directory vanished / cannot be recreated */
	KG_CAUSE_CHECKPOINT, /* reader: cannot write the checkpoint */
	KG_CAUSE_SYNC,       /* reader: fdatasync failed */
	KG_CAUSE_DELETE,     /* reader: cannot delete a segment */
	KG_CAUSE_N
};

struct kg_seg {
	uint64_t base;
	int fd;
	_Atomic uint64_t size; /* data bytes (the file may be longer: preallocated zeros) */
	atomic_bool dirty;     /* written since the last sync */
	atomic_bool orphan;    /* its directory was deleted: never unlink by name */
	uint8_t *map;          /* MAP_SHARED mapping of the file's [0, map_len), or NULL: pwritev */
	size_t map_len;
};

struct kg_spool {
	char *dir;
	int dirfd;             /* dup2'ed onto a recreated directory by the maintainer */
	int lockfd;
	bool readonly;
	uint64_t segment_bytes;

	pthread_mutex_t lock;  /* guards segs/nsegs/cap and next */
	struct kg_seg **segs;  /* ascending base; the last one is the active one */
	size_t nsegs, cap;
	struct kg_seg *next;   /* prepared segment (named next.tmp), or NULL; under lock */
	atomic_bool next_ready;   /* next != NULL, readable without the lock */

	struct kg_seg *active; /* appender (and open) only */

	_Atomic uint64_t end;
	_Atomic uint64_t checkpoint;
	_Atomic uint64_t bytes;
	_Atomic uint64_t appended;
	_Atomic uint64_t append_errors;
	_Atomic uint64_t corrupt_skipped;
	_Atomic uint64_t torn_tails;
	_Atomic uint64_t plain_segments;
	_Atomic uint64_t refused_segments;    /* names like segments that are not ones (open) */
	_Atomic uint64_t missing_bytes;       /* gaps in the log found at open */
	_Atomic uint64_t missing_records_est; /* their estimate in records */
	uint64_t recover_frames, recover_frame_bytes; /* valid frames seen by open's scan */
	atomic_bool dir_dirty;    /* a segment was created since the last sync */
	atomic_int dir_error;     /* errno while the directory is gone: appends fail; 0 = fine */
	atomic_bool want_switch;  /* maintainer: move off the active segment at the next append */
	atomic_bool checkpoint_stale; /* the checkpoint could not be written: retry in maintain */

	/* one limiter per cause; each cause is logged from one thread only */
	struct kg_ratelimit rl[KG_CAUSE_N];

	/* maintainer only */
	int64_t last_dircheck_ms;
	int64_t last_prepare_fail_ms;
	int64_t last_cp_retry_ms;

	/* reader only (and open) */
	uint8_t *rbuf;         /* read-ahead of rbuf_seg bytes [rbuf_off, rbuf_off + rbuf_len) */
	struct kg_seg *rbuf_seg;
	uint64_t rbuf_off;
	size_t rbuf_len;
	uint8_t *scan;         /* resync scan buffer */
	uint64_t corrupt_mark; /* bad regions below this are already counted */
	struct kg_seg **tmp;   /* scratch list for sync/commit */
	size_t tmp_cap;
};

/* spool_util.c */
/* Log a line for cause at most once a second, once a minute after a busy minute (kg_ratelimit;
 * the held-back count is appended). The thread that owns the cause (see enum kg_spool_cause). */
void kg_spool_log(struct kg_spool *sp, enum kg_spool_cause cause, int level, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
int kg_spool_mkdir_p(const char *dir);
/* Take the directory's LOCK (created if needed) with flock LOCK_EX|LOCK_NB and write our pid.
 * Returns the fd, or -errno: -EWOULDBLOCK when another process holds it (logged with its pid). */
int kg_spool_lock_dir(const char *dir, int dirfd);
/* Read-only opening: refuse (-EWOULDBLOCK, logged) if a process holds the LOCK, unless force.
 * Takes no lock itself (a broker starting meanwhile is not hindered). Returns 0 or -errno. */
int kg_spool_check_unlocked(const char *dir, int dirfd, bool force);

/* spool_frame.c */
uint32_t kg_spool_crc32c(uint32_t crc, const void *buf, size_t n);
/* The same CRC from the tables, whatever the CPU (tests compare it with the hardware's). */
uint32_t kg_spool_crc32c_sw(uint32_t crc, const void *buf, size_t n);
/* 1 if kg_spool_crc32c uses the CPU's CRC32C instruction (SSE4.2), 0 if the tables. */
int kg_spool_crc32c_hw(void);
void kg_spool_put_le32(uint8_t *p, uint32_t v);
uint32_t kg_spool_get_le32(const uint8_t *p);
void kg_spool_frame_header(uint8_t hdr[SPOOL_HDR], const void *body, uint32_t len);
ssize_t kg_spool_pread_full(int fd, void *buf, size_t n, uint64_t off);
/* Validate the frame at file offset off of seg, reading nothing at or beyond bound. On
 * KG_FRAME_OK with body non-NULL *body is malloc'd (caller frees); *len is set. Returns a
 * kg_spool_frame_result or -errno. Reader thread (or open). */
int kg_spool_frame_try(struct kg_spool *sp, struct kg_seg *seg, uint64_t off, uint64_t bound,
	uint8_t **body, uint32_t *len);
/* First file offset in (off, bound) where a valid frame starts: 1 and *found, 0 if none, -errno. */
int kg_spool_frame_resync(struct kg_spool *sp, struct kg_seg *seg, uint64_t off, uint64_t bound, uint64_t *found);

/* spool_segment.c */
void kg_spool_seg_name(char *buf, size_t n, uint64_t base);
int kg_spool_seg_parse_name(const char *name, uint64_t *base);
struct kg_seg *kg_spool_seg_open(struct kg_spool *sp, const char *name, uint64_t base, bool create);
int kg_spool_seg_map(struct kg_spool *sp, struct kg_seg *seg, uint64_t need, enum kg_spool_cause cause);
void kg_spool_seg_unmap(struct kg_seg *seg);
void kg_spool_seg_drop(struct kg_spool *sp, struct kg_seg *seg, bool unlink_it);
int kg_spool_seg_push(struct kg_spool *sp, struct kg_seg *seg);
int kg_spool_tmp_reserve(struct kg_spool *sp, size_t n);
extern atomic_int kg_spool_test_no_mmap;

/* spool_maintain.c */
/* Close the prepared segment and delete next.tmp. Close only. */
void kg_spool_seg_drop_next(struct kg_spool *sp);

/* spool_checkpoint.c */
int kg_spool_checkpoint_read(struct kg_spool *sp, uint64_t *pos);
int kg_spool_checkpoint_write(struct kg_spool *sp, uint64_t pos);
void kg_spool_drop_consumed(struct kg_spool *sp);

/* spool_recover.c */
int kg_spool_recover_load(struct kg_spool *sp);
int kg_spool_recover_segment(struct kg_spool *sp, size_t i, uint64_t from);
void kg_spool_note_gap(struct kg_spool *sp, uint64_t start, uint64_t stop, const char *what);
void kg_spool_estimate_missing(struct kg_spool *sp);

/* spool_read.c */
void kg_spool_count_corrupt(struct kg_spool *sp, uint64_t start, uint64_t stop);

#endif
