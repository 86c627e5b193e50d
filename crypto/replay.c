/*
 * replay.c: the sliding receive window and the replay state file.
 *
 * The window is a 1024-bit bitmap anchored at the highest accepted counter.
 * The state file is written whole with file_write_atomic() and checked with
 * a keyless BLAKE2b-128 on load (integrity against damage, not an attacker:
 * whoever can write DataDir can also read the key file).
 */
#include "crypto/replay.h"

#include "util/bytes.h"
#include "util/file.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define WORDS (REPLAY_WINDOW_BITS / 64)

void replay_window_init(struct replay_window *w, uint64_t floor)
{
	w->top = floor;
	/* Everything at or below the floor counts as seen. */
	memset(w->bits, floor > 0 ? 0xff : 0, sizeof(w->bits));
}

int replay_window_check(const struct replay_window *w, uint64_t c)
{
	uint64_t d;

	if (c == 0)
		return REPLAY_ETOOOLD;
	if (c > w->top)
		return 0;
	d = w->top - c;
	if (d >= REPLAY_WINDOW_BITS)
		return REPLAY_ETOOOLD;
	if ((w->bits[d / 64] >> (d % 64)) & 1u)
		return REPLAY_EREPLAYED;
	return 0;
}

/* bits[i] := bits[i - s]: counters move away from the top by s. */
static void window_shift(struct replay_window *w, uint64_t s)
{
	size_t ws, bs;

	if (s >= REPLAY_WINDOW_BITS) {
		memset(w->bits, 0, sizeof(w->bits));
		return;
	}
	ws = (size_t)(s / 64);
	bs = (size_t)(s % 64);
	for (size_t i = WORDS; i-- > 0;) {
		uint64_t v = 0;
		if (i >= ws) {
			v = w->bits[i - ws] << bs;
			if (bs != 0 && i >= ws + 1)
				v |= w->bits[i - ws - 1] >> (64 - bs);
		}
		w->bits[i] = v;
	}
}

void replay_window_update(struct replay_window *w, uint64_t c)
{
	uint64_t d;

	if (c > w->top) {
		window_shift(w, c - w->top);
		w->top = c;
		w->bits[0] |= 1u;
		return;
	}
	d = w->top - c;
	if (d < REPLAY_WINDOW_BITS)
		w->bits[d / 64] |= (uint64_t)1 << (d % 64);
}

/* --- state file ----------------------------------------------------------
 *
 * Layout (little-endian):
 *   0  4  magic "SORP"
 *   4  4  version (1)
 *   8  8  tx_reserved
 *  16  4  n (peer records)
 *  20  4  zero
 *  24  n * (32-byte peer key, 8-byte rx_top)
 *  ..  16 BLAKE2b-128 of all the bytes before it
 */
#define STATE_MAGIC   "SORP"
#define STATE_VERSION 1u
#define STATE_HEAD    24u
#define STATE_RECORD  40u
#define STATE_SUM     16u

size_t replay_state_size(size_t n_peers)
{
	return STATE_HEAD + n_peers * STATE_RECORD + STATE_SUM;
}

void replay_state_encode(uint8_t *buf, const struct replay_state *st)
{
	size_t off = STATE_HEAD;

	memcpy(buf, STATE_MAGIC, 4);
	bytes_put_le32(buf + 4, STATE_VERSION);
	bytes_put_le64(buf + 8, st->tx_reserved);
	bytes_put_le32(buf + 16, (uint32_t)st->n_peers);
	bytes_put_le32(buf + 20, 0);
	for (size_t i = 0; i < st->n_peers; i++) {
		memcpy(buf + off, st->peers[i].peer, REPLAY_PEER_KEY_BYTES);
		bytes_put_le64(buf + off + 32, st->peers[i].rx_top);
		off += STATE_RECORD;
	}
	crypto_generichash(buf + off, STATE_SUM, buf, off, NULL, 0);
}

int replay_state_decode(struct replay_state *st, const uint8_t *buf, size_t len)
{
	uint8_t sum[STATE_SUM];
	size_t n, off = STATE_HEAD;

	memset(st, 0, sizeof(*st));
	if (len < replay_state_size(0) || memcmp(buf, STATE_MAGIC, 4) != 0 ||
	    bytes_get_le32(buf + 4) != STATE_VERSION || bytes_get_le32(buf + 20) != 0)
		return REPLAY_ECORRUPT;
	n = bytes_get_le32(buf + 16);
	if (n > REPLAY_STATE_MAX_PEERS || len != replay_state_size(n))
		return REPLAY_ECORRUPT;
	crypto_generichash(sum, sizeof(sum), buf, len - STATE_SUM, NULL, 0);
	if (sodium_memcmp(sum, buf + len - STATE_SUM, STATE_SUM) != 0)
		return REPLAY_ECORRUPT;
	if (n > 0) {
		st->peers = calloc(n, sizeof(*st->peers));
		if (st->peers == NULL)
			return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		memcpy(st->peers[i].peer, buf + off, REPLAY_PEER_KEY_BYTES);
		st->peers[i].rx_top = bytes_get_le64(buf + off + 32);
		off += STATE_RECORD;
	}
	st->n_peers = n;
	st->tx_reserved = bytes_get_le64(buf + 8);
	return 0;
}

int replay_state_load(struct replay_state *st, const char *path)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	memset(st, 0, sizeof(*st));
	rc = file_read_all(path, replay_state_size(REPLAY_STATE_MAX_PEERS), &buf, &len);
	if (rc != 0)
		return rc;
	rc = replay_state_decode(st, buf, len);
	free(buf);
	return rc;
}

int replay_state_save(const struct replay_state *st, const char *path)
{
	size_t len;
	uint8_t *buf;
	int rc;

	if (st->n_peers > REPLAY_STATE_MAX_PEERS)
		return -E2BIG;
	len = replay_state_size(st->n_peers);
	buf = malloc(len);
	if (buf == NULL)
		return -ENOMEM;
	replay_state_encode(buf, st);
	rc = file_write_atomic(path, buf, len, 0600);
	free(buf);
	return rc;
}

void replay_state_fini(struct replay_state *st)
{
	if (st == NULL)
		return;
	free(st->peers);
	st->peers = NULL;
	st->n_peers = 0;
}
