/*
 * util.h: the few helpers every module may use: an assert that stays on in
 * release builds, array length, bounded string-to-number parsing, the
 * monotonic clock and the descriptor limit. Nothing here allocates.
 */
#ifndef SOTTO_UTIL_UTIL_H
#define SOTTO_UTIL_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b)    ((a) < (b) ? (a) : (b))
#define MAX(a, b)    ((a) > (b) ? (a) : (b))

/* Invariant check that is never compiled out; aborts with file:line. */
#define SOTTO_ASSERT(cond)                                                                         \
	do {                                                                                       \
		if (!(cond))                                                                       \
			util_assert_fail(#cond, __FILE__, __LINE__);                               \
	} while (0)

_Noreturn void util_assert_fail(const char *cond, const char *file, int line);

/*
 * Parses all of s as a base-10 integer in [min, max]. Returns 0, or -EINVAL
 * (not a number, trailing junk) or -ERANGE. *out is untouched on error.
 */
int util_parse_i64(int64_t *out, const char *s, int64_t min, int64_t max)
        __attribute__((warn_unused_result));
/* Same for a finite double in [min, max]. */
int util_parse_double(double *out, const char *s, double min, double max)
        __attribute__((warn_unused_result));
/* Parses "yes/no/true/false/on/off/1/0" (case-insensitive). */
int util_parse_bool(bool *out, const char *s) __attribute__((warn_unused_result));

/* Monotonic clock in seconds. */
double util_now(void);

/*
 * Raises the soft RLIMIT_NOFILE to the hard limit, so that a daemon holding
 * one descriptor per connection is not stopped by a distribution's low
 * default (often 1024) when the system allows more. Returns the soft limit
 * in force afterwards (unchanged if raising failed), or -errno if the limit
 * cannot be read. Call it once at start, before descriptors are budgeted.
 */
long util_nofile_raise(void);

#endif
