/*
 * replay.h: replay protection for sealed frames.
 *
 * Two halves. The sliding window (as in IPsec, RFC 4303 section 3.4.3, and
 * WireGuard) remembers which of the last REPLAY_WINDOW_BITS counters of one
 * sender were accepted: a counter above the top is new, one inside the
 * window is new unless its bit is set, one below the window is "too old".
 * Frames may arrive reordered by up to the window width.
 *
 * The state file makes this survive a restart. It holds this node's send
 * counter *reservation* (the sender persists "next + R" before it uses
 * counters up to that value, and on restart skips to the reservation, so a
 * counter is never sealed twice even after kill -9) and, per peer, the top
 * of the receive window as of the last save (after a restart everything at
 * or below it is refused). Writes go through file_write_atomic().
 *
 * Not here: keys, sealing, who calls save and when (seal.h: the node picks
 * the path and the policy).
 */
#ifndef SOTTO_CRYPTO_REPLAY_H
#define SOTTO_CRYPTO_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define REPLAY_WINDOW_BITS    1024
#define REPLAY_PEER_KEY_BYTES 32
/* A state file is refused beyond this many peer records (config bound). */
#define REPLAY_STATE_MAX_PEERS 4096

/*
 * Errors (negative, distinct from -errno; values and messages in
 * util/err.h). Of replay_window_check():
 *   REPLAY_EREPLAYED  counter already accepted
 *   REPLAY_ETOOOLD    counter below the window (or 0)
 * Of replay_state_load():
 *   REPLAY_ECORRUPT   bad magic, version, size or checksum
 */

/*
 * Receive window of one sender. Counters start at 1; 0 is never valid.
 * bits[i / 64] bit (i % 64) is set when counter top - i was accepted.
 */
struct replay_window {
	uint64_t top; /* highest accepted counter; 0: nothing yet */
	uint64_t bits[REPLAY_WINDOW_BITS / 64];
};

/* A fresh window that refuses every counter <= floor (0: accept all >= 1). */
void replay_window_init(struct replay_window *w, uint64_t floor);

/*
 * Whether counter c would be new. Does not change the window: call it
 * before authenticating, and replay_window_update() only after the frame
 * authenticated, so forged frames cannot move the window. 0,
 * REPLAY_EREPLAYED or REPLAY_ETOOOLD.
 */
int replay_window_check(const struct replay_window *w, uint64_t c)
        __attribute__((warn_unused_result));
/* Marks c accepted (c must have passed replay_window_check()). */
void replay_window_update(struct replay_window *w, uint64_t c);

/* One receive floor of the state file. */
struct replay_peer_record {
	uint8_t peer[REPLAY_PEER_KEY_BYTES];
	uint64_t rx_top;
};

/*
 * Persistent replay state: the send counter reservation and the receive
 * tops. The file is small and binary: magic "SORP", version, the values,
 * and a BLAKE2b-128 checksum, so a damaged file is refused (REPLAY_ECORRUPT)
 * rather than silently reopening old counters.
 */
struct replay_state {
	uint64_t tx_reserved; /* counters below this may have been used */
	struct replay_peer_record *peers;
	size_t n_peers;
};

/*
 * Loads path into *st (caller's storage; replay_state_fini() it). A missing
 * file gives -ENOENT and an empty state (a first start). Other errors:
 * -errno, -EFBIG, REPLAY_ECORRUPT; *st is then empty.
 */
int replay_state_load(struct replay_state *st, const char *path)
        __attribute__((warn_unused_result));
/* Atomically replaces path (mode 0600). 0 or -errno. */
int replay_state_save(const struct replay_state *st, const char *path)
        __attribute__((warn_unused_result));
/* Serialises into buf (replay_state_size() bytes). For tests and fuzzing. */
size_t replay_state_size(size_t n_peers);
void replay_state_encode(uint8_t *buf, const struct replay_state *st);
/* Parses a state image; on success st->peers is malloc'd. */
int replay_state_decode(struct replay_state *st, const uint8_t *buf, size_t len)
        __attribute__((warn_unused_result));
/* Frees st->peers; accepts a zeroed state. */
void replay_state_fini(struct replay_state *st);

#endif
