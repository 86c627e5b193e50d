/*
 * util_err_test.c: the one error space. Every code of ERR_TABLE has its own
 * value and its own non-empty message; every module's code still has the
 * value and the message the module's old *_strerror printed (copied below
 * from seal.c, msg.c and learn.c before they became wrappers, so a changed
 * word fails here); -errno values still read as strerror(); anything else
 * reads as the generic text.
 *
 * Not here: which function returns which code (each module's own tests).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "crypto/identity.h"
#include "crypto/replay.h"
#include "crypto/seal.h"
#include "learn/learn.h"
#include "protocol/msg.h"
#include "util/err.h"
#include "util/util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

struct row {
	const char *name;
	int code;
};

#define ROW(name, value, message) {#name, name},
static const struct row table[] = {ERR_TABLE(ROW)};
#undef ROW

static void test_table_distinct(void **state)
{
	(void)state;
	assert_true(ARRAY_LEN(table) >= 25);
	for (size_t i = 0; i < ARRAY_LEN(table); i++) {
		const char *m = err_str(table[i].code);

		if (table[i].code > -ERR_BASE)
			fail_msg("%s = %d is in the -errno range", table[i].name, table[i].code);
		if (m == NULL || m[0] == '\0')
			fail_msg("%s has no message", table[i].name);
		if (strcmp(m, ERR_STR_UNKNOWN) == 0 || strcmp(m, "ok") == 0)
			fail_msg("%s reads as \"%s\"", table[i].name, m);
		for (size_t j = 0; j < i; j++) {
			if (table[j].code == table[i].code)
				fail_msg("%s and %s are both %d", table[j].name, table[i].name,
				         table[i].code);
			if (strcmp(err_str(table[j].code), m) == 0)
				fail_msg("%s and %s both read \"%s\"", table[j].name, table[i].name,
				         m);
		}
	}
}

/*
 * What seal_strerror, msg_strerror and learn_strerror returned before
 * err_str existed, with the values the headers defined (docs and logs quote
 * them). REPLAY_ECORRUPT was printed by seal_strerror.
 */
static const struct {
	int code, value;
	const char *old;
} before[] = {
        {SEAL_EMALFORMED, -2201, "malformed frame"},
        {SEAL_EVERSION, -2202, "unsupported frame version"},
        {SEAL_EOVERSIZE, -2203, "frame too large"},
        {SEAL_EMISDIRECTED, -2204, "frame addressed to another node"},
        {SEAL_EUNKNOWN, -2205, "sender not in the configuration"},
        {SEAL_ENOROUNDKEY, -2206, "no key for the frame's round"},
        {SEAL_EREPLAYED, -2207, "replayed frame"},
        {SEAL_ETOOOLD, -2208, "frame too old (below the replay window)"},
        {SEAL_EFORGED, -2209, "authentication failed (tampered or wrong key)"},
        {REPLAY_ECORRUPT, -2103, "replay state file is damaged"},
        {MSG_EMALFORMED, -2301, "malformed message"},
        {MSG_EVERSION, -2302, "unsupported protocol version"},
        {MSG_ELIMIT, -2303, "message exceeds a protocol limit"},
        {MSG_EINVALID, -2304, "inconsistent message"},
        {MSG_ETYPE, -2305, "unknown message type"},
        {LEARN_EMAGIC, -2001, "wrong magic: not a sotto file of this kind"},
        {LEARN_EVERSION, -2002, "unsupported format version (written by another sotto version?)"},
        {LEARN_ETRUNC, -2003, "file is truncated"},
        {LEARN_ECORRUPT, -2004, "file is corrupted (checksum mismatch or trailing data)"},
        {LEARN_EBOUNDS, -2005, "a header field is out of range"},
        {LEARN_EMISMATCH, -2006, "does not match the model or data it is used with"},
};

/* Codes no *_strerror knew (printed as "Unknown error N"): values only. */
static const struct {
	int code, value;
} unprinted[] = {
        {IDENTITY_EMODE, -1001},   {IDENTITY_EFORMAT, -1002},
        {IDENTITY_EOWNER, -1003}, /* new in issue 17 */
        {FILE_ENOTREG, -1101},    /* new in issue 17 */
        {REPLAY_EREPLAYED, -2101}, {REPLAY_ETOOOLD, -2102},
};

static void test_same_as_before(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(before); i++) {
		assert_int_equal(before[i].code, before[i].value);
		assert_string_equal(err_str(before[i].code), before[i].old);
	}
	for (size_t i = 0; i < ARRAY_LEN(unprinted); i++)
		assert_int_equal(unprinted[i].code, unprinted[i].value);
	/* Every code is either in before[] or in unprinted[]. */
	assert_int_equal(ARRAY_LEN(before) + ARRAY_LEN(unprinted), ARRAY_LEN(table));
	assert_string_equal(err_str(0), "ok");
}

static void test_errno(void **state)
{
	static const int errs[] = {ENOENT, EACCES, EFBIG, EINVAL, EADDRINUSE, ENOMEM};
	char want[256];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(errs); i++) {
		snprintf(want, sizeof(want), "%s", strerror(errs[i]));
		assert_string_equal(err_str(-errs[i]), want);
	}
}

static void test_unknown(void **state)
{
	static const int codes[] = {1,     2101,  INT_MAX, -ERR_BASE, -2000,
	                            -2007, -2999, -9999,   INT_MIN};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(codes); i++)
		assert_string_equal(err_str(codes[i]), ERR_STR_UNKNOWN);
	assert_string_equal(ERR_STR_UNKNOWN, "unknown error");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_table_distinct),
	        cmocka_unit_test(test_same_as_before),
	        cmocka_unit_test(test_errno),
	        cmocka_unit_test(test_unknown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
