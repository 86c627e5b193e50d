/*
 * sbuf.c: see sbuf.h.
 */
#include "util/sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

bool sb_init(struct sbuf *b)
{
	b->cap = 4096;
	b->len = 0;
	b->failed = false;
	b->p = malloc(b->cap);
	if (b->p != NULL)
		b->p[0] = '\0';
	return b->p != NULL;
}

void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = true;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap * 2 + (size_t)n;
		char *np = realloc(b->p, cap);
		if (np == NULL) {
			b->failed = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
}

char *sb_finish(struct sbuf *b)
{
	if (b->failed) {
		free(b->p);
		b->p = NULL;
		return NULL;
	}
	return b->p;
}
