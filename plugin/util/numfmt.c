/* numfmt.c -- numbers as text: the shortest round-tripping form of a double (pure, any thread). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kitgate/numfmt.h"

/* Shortest of %.15g, %.16g, %.17g that parses back to v (%.17g always does). Non-finite values,
 * which validation never lets through, are written as "null" so JSON output stays valid. Returns
 * the length. Any thread (C locale assumed, as in mosquitto). */
int kg_numfmt__double(double v, char out[32])
{
	int n = 0;

	if(!isfinite(v)){
		memcpy(out, "null", 5);
		return 4;
	}
	for(int prec = 15; prec <= 17; prec++){
		n = snprintf(out, 32, "%.*g", prec, v);
		if(prec == 17 || strtod(out, NULL) == v) break;
	}
	return n;
}
