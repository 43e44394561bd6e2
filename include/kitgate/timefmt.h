/* timefmt.h -- timestamps as text; pure, any thread. */
#ifndef KITGATE_TIMEFMT_H
#define KITGATE_TIMEFMT_H

#include <stdint.h>

/* "YYYY-MM-DD HH:MM:SS.mmm+00" for a PostgreSQL timestamptz; out must hold 40 bytes.
 * Millisecond exact for any ms >= 0. Returns the length, or -1 (out = "") when the year cannot
 * be represented. */
int kg_timefmt__pg(int64_t ms, char out[40]);

#endif
