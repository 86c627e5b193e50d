/*
 * util_file_test.c: atomic writes replace whole files, bounded reads refuse
 * large files, and start-up cleanup removes only interrupted-write leftovers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "util/err.h"
#include "util/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/sotto-file-XXXXXX";

static void touch(const char *name)
{
	char p[128];
	FILE *f;
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "w");
	assert_non_null(f);
	fclose(f);
}

static bool exists(const char *name)
{
	char p[128];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return access(p, F_OK) == 0;
}

static void test_atomic_and_bounded(void **state)
{
	char p[128];
	uint8_t *buf = NULL;
	size_t len = 0;
	struct stat st;
	const void *parts[2] = {"hello ", "world"};
	size_t lens[2] = {6, 5};
	(void)state;
	snprintf(p, sizeof(p), "%s/f", dir);
	assert_int_equal(file_write_atomic(p, "old", 3, 0600), 0);
	assert_int_equal(file_write_atomic_parts(p, parts, lens, 2, 0640), 0);
	assert_int_equal(file_read_all(p, 100, &buf, &len), 0);
	assert_int_equal(len, 11);
	assert_string_equal((char *)buf, "hello world");
	free(buf);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	assert_int_equal(file_read_all(p, 10, &buf, &len), -EFBIG);
	assert_int_equal(file_read_all(dir, 10, &buf, &len), FILE_ENOTREG);
	/* A FIFO with no writer: refused at once, never waited on (issue 17). */
	snprintf(p, sizeof(p), "%s/fifo", dir);
	assert_int_equal(mkfifo(p, 0600), 0);
	assert_int_equal(file_read_all(p, 10, &buf, &len), FILE_ENOTREG);
	assert_int_equal(file_open_regular(p, O_RDONLY), FILE_ENOTREG);
	unlink(p);
	snprintf(p, sizeof(p), "%s/f", dir);
	{
		int fd = file_open_regular(p, O_RDONLY);
		assert_true(fd >= 0);
		assert_int_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
		close(fd);
	}
	snprintf(p, sizeof(p), "%s/none/f", dir);
	assert_int_equal(file_write_atomic(p, "x", 1, 0600), -ENOENT);
}

static void test_cleanup_tmp(void **state)
{
	(void)state;
	touch("checkpoint.tmp.AbC123");
	touch("replay.state.tmp.zzzzzz");
	touch("checkpoint");
	touch("notes.tmp.txt"); /* not mkstemp's pattern */
	touch(".tmp.abcdef");   /* no base name */
	touch("x.tmp.abcdefg"); /* seven characters */
	assert_int_equal(file_cleanup_tmp(dir), 2);
	assert_false(exists("checkpoint.tmp.AbC123"));
	assert_false(exists("replay.state.tmp.zzzzzz"));
	assert_true(exists("checkpoint"));
	assert_true(exists("notes.tmp.txt"));
	assert_true(exists(".tmp.abcdef"));
	assert_true(exists("x.tmp.abcdefg"));
	assert_int_equal(file_cleanup_tmp("/nonexistent-dir"), 0);
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[64];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_atomic_and_bounded),
	        cmocka_unit_test(test_cleanup_tmp),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
