/*
 * log.h: the one logging module of sotto.
 *
 * Every line is "TIME LEVEL node=NAME [round=ID] message" on stderr, so that
 * a cluster's logs interleave readably and grep by node or round. It is not
 * a general logging framework: no sinks, no rotation (run under systemd or
 * redirect). Never pass key material to these functions.
 *
 * log_warn() appends ": strerror(errno)"; log_warnx() does not (OpenBSD).
 */
#ifndef SOTTO_UTIL_LOG_H
#define SOTTO_UTIL_LOG_H

#include <stdint.h>

enum log_level {
	LOG_LEVEL_DEBUG = 0,
	LOG_LEVEL_INFO = 1,
	LOG_LEVEL_WARN = 2,
	LOG_LEVEL_ERROR = 3,
	LOG_LEVEL_QUIET = 4,
};

/* Sets the node name shown on every line (copied; NULL clears it). */
void log_set_node(const char *name);
/* 1 if stderr is the systemd journal (JOURNAL_STREAM): lines then go without a
 * timestamp and with a <N> priority prefix. Looked up once. */
int log_to_journal(void);
/* Lines below this level are dropped. Default: LOG_LEVEL_INFO. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "debug", "info", "warn", "error", "quiet"; -1 if unknown. */
int log_level_parse(const char *s);
/* Sets the round id of the calling thread's lines; 0 means "no round". */
void log_set_round(uint64_t round_id);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Appends ": strerror(errno)", errno as it was on entry. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Errors that stop an operation; the caller decides what happens next. */
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_errorx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
