/*
 * sbuf.h: a growable text buffer for building output with printf formats
 * (status pages, /metrics, export sidecars, prediction CSVs). A failed
 * allocation or format is remembered and reported once, at the end.
 */
#ifndef SOTTO_UTIL_SBUF_H
#define SOTTO_UTIL_SBUF_H

#include <stdbool.h>
#include <stddef.h>

struct sbuf {
	char *p; /* NUL-terminated after every successful sb_printf */
	size_t len, cap;
	bool failed;
};

/* Starts an empty buffer (4 KiB). false if out of memory (nothing to free). */
bool sb_init(struct sbuf *b) __attribute__((warn_unused_result));
/* Appends the formatted text; on failure marks the buffer failed. */
void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The text (the caller frees it), or NULL if any append failed (freed here). */
char *sb_finish(struct sbuf *b);

#endif
