/*
 * util_log_test.c: where log lines go. On a terminal or a file a line is
 * "TIMESTAMP LEVEL message"; when stderr is the systemd journal
 * (JOURNAL_STREAM names stderr's device and inode) it is "<PRIO>LEVEL
 * message", without the timestamp; a JOURNAL_STREAM that names another
 * file is not the journal. Each case runs in a child process, since the
 * lookup is made once per process.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

enum stream { PLAIN, JOURNAL, OTHER_FILE };

/* What a child logs with stderr on a file, and JOURNAL_STREAM as `how` says. */
static void child_log(enum stream how, char *out, size_t cap)
{
	char path[] = "/tmp/sotto-log-test-XXXXXX";
	int fd = mkstemp(path), status;
	pid_t pid;
	FILE *f;
	size_t n;

	assert_true(fd >= 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct stat st;
		char env[64];

		if (dup2(fd, 2) < 0 || fstat(fd, &st) != 0)
			_exit(1);
		snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
		         (unsigned long long)st.st_ino + (how == OTHER_FILE ? 1 : 0));
		if (how == PLAIN)
			unsetenv("JOURNAL_STREAM");
		else
			setenv("JOURNAL_STREAM", env, 1);
		log_set_level(LOG_LEVEL_DEBUG);
		log_info("hello %d", 1);
		log_warnx("careful");
		log_errorx("broken");
		log_debug("detail");
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	f = fdopen(fd, "r");
	assert_non_null(f);
	rewind(f);
	n = fread(out, 1, cap - 1, f);
	out[n] = '\0';
	fclose(f);
	unlink(path);
}

static void test_journal(void **state)
{
	char out[4096];

	(void)state;
	child_log(JOURNAL, out, sizeof(out));
	assert_string_equal(out, "<6>info hello 1\n<4>warn careful\n<3>error broken\n"
	                         "<7>debug detail\n");
}

static void test_plain(void **state)
{
	enum stream cases[] = {PLAIN, OTHER_FILE};
	char out[4096];

	(void)state;
	for (size_t c = 0; c < 2; c++) {
		int y, mo, d, h, mi, s, ms;
		char z;

		child_log(cases[c], out, sizeof(out));
		/* 2026-12-06T03:57:03.123Z info  hello 1 */
		assert_int_equal(sscanf(out, "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &y, &mo, &d, &h, &mi,
		                        &s, &ms, &z),
		                 8);
		assert_int_equal(z, 'Z');
		assert_non_null(strstr(out, "Z info  hello 1\n"));
		assert_non_null(strstr(out, "Z warn  careful\n"));
		assert_null(strchr(out, '<'));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_journal),
	        cmocka_unit_test(test_plain),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
