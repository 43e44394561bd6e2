/* numfmt.h -- numbers as text; pure, any thread. */
#ifndef KITGATE_NUMFMT_H
#define KITGATE_NUMFMT_H

/* Shortest "%.*g" text of a finite double that parses back to the same value; out >= 32 bytes.
 * Non-finite values become "null". Returns the length. */
int kg_numfmt__double(double v, char out[32]);

#endif
