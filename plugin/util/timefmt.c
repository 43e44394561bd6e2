/* timefmt.c -- timestamps as text: PostgreSQL timestamptz of epoch milliseconds (pure, any thread). */
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "kitgate/timefmt.h"

/* PostgreSQL timestamptz text of epoch milliseconds (UTC), e.g. "2023-11-14 22:13:20.123+00".
 * Negative ms are floored correctly. Returns the length, or -1 (out = "") when the year cannot be
 * represented. Any thread. */
int kg_timefmt__pg(int64_t ms, char out[40])
{
	int64_t secs = ms / 1000;
	int64_t rem = ms % 1000;
	time_t tt;
	struct tm tm;
	int n;

	if(rem < 0){
		rem += 1000;
		secs -= 1;
	}
	tt = (time_t)secs;
	if(!gmtime_r(&tt, &tm)){
		out[0] = '\0';
		return -1;
	}
	n = snprintf(out, 40, "%04d-%02d-%02d %02d:%02d:%02d.%03d+00", tm.tm_year + 1900, tm.tm_mon + 1,
			tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)rem);
	if(n < 0 || n >= 40){
		out[0] = '\0';
		return -1;
	}
	return n;
}
