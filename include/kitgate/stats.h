/* stats.h -- rolling 1/5/30-minute exact means per stream (a kit's peripheral and quantity type, or
 * a generic stats_topics topic), with bounded memory. Pure: no I/O, no mosquitto_*; one owner
 * thread (the broker thread in the plugin), no locking inside.
 *
 * Windows end at `now` and include both ends: a sample at time t is in the W-window iff
 * now - W <= t (t = now - 60000 is in the 1-minute window, now - 61000 is not). Samples stamped
 * in the future (kits may be up to max_clock_skew_s ahead) count from arrival.
 *
 * Memory: each stream holds its samples of the last 30 minutes in a ring of 12 bytes a sample
 * (the double and a 32-bit ms offset from the ring's base; 16 bytes while the stream's samples
 * span more than 24 days, e.g. one stamped far in the future) that grows by a quarter (from 8
 * slots) up to max_samples, and shrinks to twice what it holds when under a quarter full (to none
 * when empty), plus at most 256 bytes of struct and its key. So a stream of one sample every 10 s
 * costs ~2.5 KB once its 30-minute window is full (181 samples), and at most
 * 16 * max_samples + 256 + strlen(key) bytes (16.6 KiB at the default 1024); the whole table at
 * most max_streams times that (counter ring_bytes: the rings' bytes now). Past max_samples the oldest sample of the
 * stream is dropped (counted in `samples_dropped`): the windows then hold the newest max_samples
 * samples only, and count_30min shows it. Past max_streams the least recently updated stream is
 * evicted (counted in `evicted`). Streams may belong to a group (a key prefix: a kit's
 * "kit/<serial>/"), capped at max_per_group streams: a new stream in a full group evicts the
 * group's least recently updated one (counted in `group_evicted`), so one kit cycling peripheral
 * ids only evicts its own streams. Evicted keys wait (at most max_streams of them; past that the
 * oldest is forgotten, counted in `clear_dropped`) until kg_stats__drain_evicted hands them to the
 * caller, which clears their retained messages.
 *
 * Cost: kg_stats__add is O(1) amortized for samples arriving in time order (an out-of-order sample
 * is inserted in place: O(samples newer than it)); expiry is amortized into add and flush, and a
 * flush visits only the streams changed or due (see kg_stats__flush), not every stream. */
#ifndef KITGATE_STATS_H
#define KITGATE_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KG_STATS_WINDOWS 3
extern const int64_t kg_stats_window_ms[KG_STATS_WINDOWS]; /* 60000, 300000, 1800000 */

struct kg_stats;

/* What a stream shows at a given time. count[w] == 0 means the window is empty (avg is then
 * meaningless and printed as null). key is owned by the table, valid until the next add/flush. */
struct kg_stats_view {
	const char *key;
	uint64_t count[KG_STATS_WINDOWS];
	double avg[KG_STATS_WINDOWS];
	bool has_latest;
	double latest;
	int64_t latest_at;     /* ms: measurement time (kit streams) or arrival time (generic) */
};

struct kg_stats_counters {
	uint64_t streams;          /* live streams */
	uint64_t samples;          /* samples held over all streams */
	uint64_t added;            /* samples accepted into a stream */
	uint64_t too_old;          /* samples older than 30 minutes at arrival: not held */
	uint64_t samples_dropped;  /* oldest samples dropped because a stream reached max_samples */
	uint64_t evicted;          /* streams evicted because max_streams was reached */
	uint64_t group_evicted;    /* streams evicted because their group reached max_per_group */
	uint64_t clear_dropped;    /* evicted keys forgotten before kg_stats__drain_evicted ran */
	uint64_t ignored;          /* non-numeric payloads on stats topics (counted by the caller) */
	uint64_t published;        /* views handed to the flush callback */
	uint64_t ring_bytes;       /* bytes of the sample rings held (every stream, excluding structs) */
	uint64_t flushes;          /* kg_stats__flush(_at) calls */
	uint64_t flush_visits;     /* streams those flushes looked at (dirty ones, and the wheel's in the
	                            * slots of the ticks they covered): their cost, not O(streams) */
};

/* A table of at most max_streams (>= 1) streams of at most max_samples (>= 2) samples.
 * Returns NULL on out of memory. */
struct kg_stats *kg_stats__new(size_t max_streams, size_t max_samples);
void kg_stats__free(struct kg_stats *st);

/* Add value at time t_ms to the stream named key (created, evicting the least recently updated
 * stream when full). Windows are first expired to now_ms. Returns 0, 1 when the sample was older
 * than 30 minutes (not held; "latest" unchanged), -1 on out of memory (nothing changed). */
int kg_stats__add(struct kg_stats *st, const char *key, int64_t t_ms, double value, int64_t now_ms);

/* Cap streams per group at max_per_group (0 = no cap, the default). */
void kg_stats__set_group_limit(struct kg_stats *st, size_t max_per_group);

/* kg_stats__add for a stream whose group is the first group_len bytes of key (0: no group). */
int kg_stats__add_grouped(struct kg_stats *st, const char *key, size_t group_len, int64_t t_ms,
		double value, int64_t now_ms);

/* Call cb once with the key of every stream evicted since the last call (oldest first), except
 * keys that are live streams again; then forget them. The plugin publishes an empty retained
 * message on each (clearing the stale statistics). Returns how many were handed out. */
size_t kg_stats__drain_evicted(struct kg_stats *st, void (*cb)(const char *key, void *arg), void *arg);

/* Count a non-numeric payload on a stats topic (counters.ignored). */
void kg_stats__ignored(struct kg_stats *st);

/* Expire every stream to now_ms; for each stream whose windows or latest value changed since it
 * was last handed out, and that was last handed out at least min_interval_ms ago, call cb once,
 * most recently updated first. Returns how many were handed out. Cost: O(changed + due), not
 * O(streams): it visits only the streams changed since they were handed out and those whose
 * oldest sample of a window has left it by now_ms (a timer wheel keyed by that time, on now_ms's
 * clock; counters.flush_visits). now_ms may step back (nothing is then due; what was filed
 * comes when now_ms reaches it) or forward (everything due by now_ms is expired). */
size_t kg_stats__flush(struct kg_stats *st, int64_t now_ms, int64_t min_interval_ms,
		void (*cb)(const struct kg_stats_view *v, void *arg), void *arg);

/* kg_stats__flush with the windows ending at now_ms (wall: samples carry wall times) and the
 * per-stream min_interval_ms measured on mono_ms (kg_clock__mono_ms()), so a wall clock step
 * back does not hold streams back. kg_stats__flush(st, now, ...) is flush_at(st, now, now, ...):
 * use one or the other for a table, never both. */
size_t kg_stats__flush_at(struct kg_stats *st, int64_t now_ms, int64_t mono_ms, int64_t min_interval_ms,
		void (*cb)(const struct kg_stats_view *v, void *arg), void *arg);

/* Call cb for every stream as of its last expiry (add or flush), most recently updated first. */
void kg_stats__foreach(const struct kg_stats *st, void (*cb)(const struct kg_stats_view *v, void *arg), void *arg);

void kg_stats__counters(const struct kg_stats *st, struct kg_stats_counters *out);

/* The retained JSON: {"avg_1min":…,"avg_5min":…,"avg_30min":…,"count_1min":…,"count_5min":…,
 * "count_30min":…,"latest":…,"latest_at":…} (empty window and no latest -> null). Returns the
 * length (NUL-terminated), or the length needed when it does not fit in cap. */
size_t kg_stats__format_json(const struct kg_stats_view *v, char *buf, size_t cap);

/* The number a stats_topics payload carries: a bare number ("21.5", surrounding blanks allowed) or
 * the top-level JSON number `field` of an object. Returns 0 and sets *out, or -1 when there is no
 * finite number, or when len > max_len (0 = no limit; the plugin passes max_payload, so the
 * broker thread never parses a larger JSON). payload need not be NUL-terminated. */
int kg_stats__parse_value(const void *payload, size_t len, size_t max_len, const char *field, double *out);

#endif
