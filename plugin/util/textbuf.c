/* textbuf.c -- the growing text buffer (see textbuf.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kitgate/textbuf.h"

/* Contract in textbuf.h. */
void kg_text__put(struct kg_text *t, const char *s, size_t n)
{
	if(t->failed) return;
	if(n >= SIZE_MAX / 2 - t->len){
		t->failed = true;
		return;
	}
	if(t->len + n + 1 > t->cap){
		size_t ncap = t->cap ? t->cap : 1024;
		char *ns;

		while(ncap < t->len + n + 1) ncap *= 2;
		if(!(ns = realloc(t->s, ncap))){
			t->failed = true;
			return;
		}
		t->s = ns;
		t->cap = ncap;
	}
	memcpy(t->s + t->len, s, n);
	t->len += n;
	t->s[t->len] = '\0';
}

/* Contract in textbuf.h. */
void kg_text__puts(void *arg, const char *s)
{
	kg_text__put(arg, s, strlen(s));
}

/* Contract in textbuf.h. */
char *kg_text__done(struct kg_text *t)
{
	if(!t->failed && !t->s) kg_text__put(t, "", 0);
	if(t->failed){
		free(t->s);
		return NULL;
	}
	return t->s;
}
