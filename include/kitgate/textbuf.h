/* textbuf.h -- a growing NUL-terminated text buffer for documents built piece by piece (the
 * /metrics text, the kit directory's JSON lists). Out of memory is sticky: later puts do nothing
 * and kg_text__done frees the text and returns NULL. One owner at a time; any thread. */
#ifndef KITGATE_TEXTBUF_H
#define KITGATE_TEXTBUF_H

#include <stdbool.h>
#include <stddef.h>

struct kg_text {
	char *s;                 /* NUL-terminated once anything was put; NULL before */
	size_t len, cap;
	bool failed;
};

/* Appends n bytes of s. */
void kg_text__put(struct kg_text *t, const char *s, size_t n);

/* Appends the string s; arg is a struct kg_text (the shape of the status model's put callback). */
void kg_text__puts(void *arg, const char *s);

/* The text (malloc'ed, the caller frees it; "" when nothing was put), or NULL when a put failed. */
char *kg_text__done(struct kg_text *t);

#endif
