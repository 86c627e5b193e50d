/*
 * log.c: timestamped, leveled log lines on stderr.
 *
 * When stderr is the systemd journal (JOURNAL_STREAM names stderr's device
 * and inode, see systemd.exec(5)), a line carries its level as a syslog
 * priority prefix (<7> debug, <6> info, <4> warn, <3> error, sd-daemon(3))
 * and no timestamp: the journal keeps its own.
 *
 * One fprintf per line (the line is formatted into a stack buffer first)
 * so that lines from the worker thread and the event loop never interleave
 * mid-line. Not async-signal-safe: do not log from signal handlers.
 */
#include "util/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static char log_node[64];
/* Set by the loop (a reload may change it), read by every thread. */
static _Atomic int log_level = LOG_LEVEL_INFO;
static _Thread_local uint64_t log_round;

static const char *const level_names[] = {"debug", "info", "warn", "error", "quiet"};
static const char *const level_prio[] = {"<7>", "<6>", "<4>", "<3>", "<3>"};
static int log_journal = -1; /* -1: not looked at yet */

int log_to_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (log_journal >= 0)
		return log_journal;
	log_journal = js != NULL && sscanf(js, "%llu:%llu", &dev, &ino) == 2 &&
	              fstat(2, &st) == 0 && (unsigned long long)st.st_dev == dev &&
	              (unsigned long long)st.st_ino == ino;
	return log_journal;
}

void log_set_node(const char *name)
{
	(void)log_to_journal(); /* looked up here, before other threads log */
	if (name == NULL) {
		log_node[0] = '\0';
		return;
	}
	snprintf(log_node, sizeof(log_node), "%s", name);
}

void log_set_level(enum log_level level)
{
	atomic_store(&log_level, (int)level);
}

enum log_level log_get_level(void)
{
	return (enum log_level)atomic_load(&log_level);
}

int log_level_parse(const char *s)
{
	for (int i = 0; i <= LOG_LEVEL_QUIET; i++) {
		if (strcmp(s, level_names[i]) == 0)
			return i;
	}
	return -1;
}

void log_set_round(uint64_t round_id)
{
	log_round = round_id;
}

__attribute__((format(printf, 3, 0))) static void log_vline(enum log_level level, int errnum,
                                                            const char *fmt, va_list ap)
{
	char line[1024];
	size_t n = 0;
	struct timespec ts;
	struct tm tm;
	int r;

	if ((int)level < atomic_load(&log_level))
		return;
	if (log_to_journal()) {
		r = snprintf(line, sizeof(line), "%s%s", level_prio[level], level_names[level]);
	} else {
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
		r = snprintf(line + n, sizeof(line) - n, ".%03ldZ %-5s", ts.tv_nsec / 1000000L,
		             level_names[level]);
	}
	if (r > 0)
		n += (size_t)r;
	if (log_node[0] != '\0' && n < sizeof(line)) {
		r = snprintf(line + n, sizeof(line) - n, " node=%s", log_node);
		if (r > 0)
			n += (size_t)r;
	}
	if (log_round != 0 && n < sizeof(line)) {
		r = snprintf(line + n, sizeof(line) - n, " round=%016llx",
		             (unsigned long long)log_round);
		if (r > 0)
			n += (size_t)r;
	}
	if (n < sizeof(line) - 1) {
		line[n++] = ' ';
		r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		if (r > 0)
			n += (size_t)r;
	}
	if (n >= sizeof(line))
		n = sizeof(line) - 1;
	if (errnum != 0 && n < sizeof(line) - 1) {
		r = snprintf(line + n, sizeof(line) - n, ": %s", strerror(errnum));
		if (r > 0)
			n += (size_t)r;
		if (n >= sizeof(line))
			n = sizeof(line) - 1;
	}
	fprintf(stderr, "%.*s\n", (int)n, line);
}

#define LOG_FN(fn, level, use_errno)                                                               \
	void fn(const char *fmt, ...)                                                              \
	{                                                                                          \
		int saved = errno;                                                                 \
		va_list ap;                                                                        \
		va_start(ap, fmt);                                                                 \
		log_vline(level, (use_errno) ? saved : 0, fmt, ap);                                \
		va_end(ap);                                                                        \
		errno = saved;                                                                     \
	}

LOG_FN(log_debug, LOG_LEVEL_DEBUG, 0)
LOG_FN(log_info, LOG_LEVEL_INFO, 0)
LOG_FN(log_warn, LOG_LEVEL_WARN, 1)
LOG_FN(log_warnx, LOG_LEVEL_WARN, 0)
LOG_FN(log_error, LOG_LEVEL_ERROR, 1)
LOG_FN(log_errorx, LOG_LEVEL_ERROR, 0)
