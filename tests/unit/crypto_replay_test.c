/*
 * crypto_replay_test.c: the sliding window against a naive reference model
 * (random reordering, duplicates, jumps across word boundaries), the floor
 * after a restart, and the state file (round trip, every damaged byte
 * refused, missing file).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "crypto/replay.h"
#include "util/rng.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_window_basics(void **state)
{
	struct replay_window w;
	(void)state;
	replay_window_init(&w, 0);
	assert_int_equal(replay_window_check(&w, 0), REPLAY_ETOOOLD);
	assert_int_equal(replay_window_check(&w, 1), 0);
	replay_window_update(&w, 1);
	assert_int_equal(replay_window_check(&w, 1), REPLAY_EREPLAYED);
	/* Reordered within the window. */
	assert_int_equal(replay_window_check(&w, 5), 0);
	replay_window_update(&w, 5);
	assert_int_equal(replay_window_check(&w, 3), 0);
	replay_window_update(&w, 3);
	assert_int_equal(replay_window_check(&w, 3), REPLAY_EREPLAYED);
	assert_int_equal(replay_window_check(&w, 2), 0);
	assert_int_equal(replay_window_check(&w, 4), 0);
	/* A jump of exactly the window width: 5 falls out. */
	replay_window_update(&w, 5 + REPLAY_WINDOW_BITS);
	assert_int_equal(replay_window_check(&w, 5), REPLAY_ETOOOLD);
	assert_int_equal(replay_window_check(&w, 6), 0);
	assert_int_equal(replay_window_check(&w, 5 + REPLAY_WINDOW_BITS), REPLAY_EREPLAYED);
	/* Near the top of the counter space. */
	replay_window_update(&w, UINT64_MAX);
	assert_int_equal(replay_window_check(&w, UINT64_MAX), REPLAY_EREPLAYED);
	assert_int_equal(replay_window_check(&w, UINT64_MAX - 1), 0);
	assert_int_equal(replay_window_check(&w, 1000), REPLAY_ETOOOLD);
}

static void test_window_floor(void **state)
{
	struct replay_window w;
	(void)state;
	replay_window_init(&w, 5000);
	assert_int_equal(replay_window_check(&w, 5000), REPLAY_EREPLAYED);
	assert_int_equal(replay_window_check(&w, 4999), REPLAY_EREPLAYED);
	assert_int_equal(replay_window_check(&w, 1), REPLAY_ETOOOLD);
	assert_int_equal(replay_window_check(&w, 5001), 0);
	replay_window_update(&w, 5003);
	assert_int_equal(replay_window_check(&w, 5001), 0);
	assert_int_equal(replay_window_check(&w, 5000), REPLAY_EREPLAYED);
}

#define MODEL_MAX 8000000

/* The reference: a plain array of accepted flags and the top. */
static int model_check(const uint8_t *seen, uint64_t top, uint64_t c)
{
	if (c == 0 || (c <= top && top - c >= REPLAY_WINDOW_BITS))
		return REPLAY_ETOOOLD;
	return seen[c] ? REPLAY_EREPLAYED : 0;
}

static void test_window_against_model(void **state)
{
	uint8_t *seen = calloc(MODEL_MAX + 1, 1);
	struct replay_window w;
	uint64_t s = 12345, top = 0, next = 1; /* s: a splitmix64 stream (util/rng.h) */
	int accepted = 0, refused = 0;
	(void)state;
	assert_non_null(seen);
	replay_window_init(&w, 0);
	for (int i = 0; i < 200000; i++) {
		uint64_t r = rng_splitmix64(&s), c;
		int want, got;
		/* Mostly near the front, some far back, some big jumps. */
		switch (r % 8) {
		case 0:
			c = next + rng_splitmix64(&s) % 200; /* jumps of up to 3 words */
			break;
		case 1:
			c = top > 2000 ? top - 2000 + rng_splitmix64(&s) % 2000
			               : 1 + rng_splitmix64(&s) % 2000;
			break;
		case 2:
			c = top + 1 + rng_splitmix64(&s) % 63;
			break;
		default:
			c = top >= 1100 ? top - rng_splitmix64(&s) % 1100
			                : 1 + rng_splitmix64(&s) % 1100;
			break;
		}
		if (c > MODEL_MAX)
			break;
		want = model_check(seen, top, c);
		got = replay_window_check(&w, c);
		assert_int_equal(got, want);
		if (got == 0) {
			replay_window_update(&w, c);
			seen[c] = 1;
			if (c > top)
				top = c;
			next = top + 1;
			accepted++;
		} else {
			refused++;
		}
	}
	assert_true(accepted > 1000 && refused > 1000);
	free(seen);
}

static void test_state_round_trip(void **state)
{
	struct replay_peer_record recs[3];
	struct replay_state st = {
	        .tx_reserved = 0x1122334455667788ULL, .peers = recs, .n_peers = 3};
	struct replay_state back;
	size_t len = replay_state_size(3);
	uint8_t *buf = malloc(len);
	(void)state;
	assert_non_null(buf);
	for (int i = 0; i < 3; i++) {
		memset(recs[i].peer, 0x50 + i, 32);
		recs[i].rx_top = 1000u * (uint64_t)(i + 1);
	}
	replay_state_encode(buf, &st);
	assert_int_equal(replay_state_decode(&back, buf, len), 0);
	assert_true(back.tx_reserved == st.tx_reserved);
	assert_int_equal(back.n_peers, 3);
	assert_memory_equal(back.peers, recs, sizeof(recs));
	replay_state_fini(&back);
	/* Every single damaged byte is refused, and so is every truncation. */
	for (size_t i = 0; i < len; i++) {
		buf[i] ^= 0x01;
		assert_int_equal(replay_state_decode(&back, buf, len), REPLAY_ECORRUPT);
		assert_null(back.peers);
		buf[i] ^= 0x01;
	}
	for (size_t cut = 0; cut < len; cut++)
		assert_int_equal(replay_state_decode(&back, buf, cut), REPLAY_ECORRUPT);
	free(buf);
	replay_state_fini(NULL);
}

static void test_state_file(void **state)
{
	char dir[] = "/tmp/sotto-replay-XXXXXX", path[64];
	struct replay_state st = {.tx_reserved = 65536}, back;
	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/replay.state", dir);
	assert_int_equal(replay_state_load(&back, path), -ENOENT);
	assert_int_equal(back.n_peers, 0);
	assert_int_equal(replay_state_save(&st, path), 0);
	assert_int_equal(replay_state_load(&back, path), 0);
	assert_true(back.tx_reserved == 65536);
	assert_int_equal(back.n_peers, 0);
	replay_state_fini(&back);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_window_basics),
	        cmocka_unit_test(test_window_floor),
	        cmocka_unit_test(test_window_against_model),
	        cmocka_unit_test(test_state_round_trip),
	        cmocka_unit_test(test_state_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
