/*
 * external.h: the trainer socket of [Model] Type = external.
 *
 * The node leaves training to a local process (a PyTorch loop, say) that
 * attaches to DataDir/trainer.sock (mode 0600 in the 0700 DataDir; its
 * uid must be the node's). The first trainer's hello declares the layout,
 * which is the node's model from then on; a later trainer must declare the
 * same one. The trainer pushes its parameters (params) whenever it likes;
 * the node keeps the latest as the model it would put into a round (the
 * built-in worker's published snapshot), and hands every applied result
 * back as a delta to add (result), so the steps the trainer took during
 * the round are kept. Frames are protocol/trainer_msg.h's.
 *
 * Everything runs on the node's libev loop with non-blocking I/O: a slow
 * or stuck trainer never blocks it. While no trainer is attached, or the
 * attached one has not folded the last result in yet, ext_snapshot says so
 * and the core takes no part in rounds (ext_state says why, for status).
 * Memory is bounded: one frame being read, one being written, and the
 * results not yet written summed into one delta.
 *
 * Whether the trainer trained since the last result: the node keeps what
 * the parameters would be without training (the last folded push plus the
 * deltas sent since; for a trainer that just attached, the core's last
 * result). A push within 1e-6 (relative L2) of that adds no training step,
 * so the core sees its input as the result it applied and known; any other
 * folded push counts one step. The count starts, at every attach, at the
 * core's known steps (saved in the state file), so "known" is right in both
 * directions across restarts and new trainers. The trainer's word is not
 * taken.
 *
 * A round that began with a previous trainer's push and ends after a new
 * trainer attached: its delta was computed against the old trainer's
 * parameters, so it is not handed to the new one (whose model is the
 * node's from its attach on), and the new trainer's count goes above
 * every count handed out: the last result is now one it never had, so
 * nothing it pushes may be known against it.
 */
#ifndef SOTTO_NODE_EXTERNAL_H
#define SOTTO_NODE_EXTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "node/worker.h"
#include "protocol/trainer_msg.h"

struct ev_loop;
struct ext;

struct ext_ops {
	/*
	 * The first accepted hello: make the model (0), or refuse it (-1, with
	 * a line in why for the trainer and the log).
	 */
	int (*on_layout)(void *arg, const struct tmsg_hello *h, uint64_t hash, char *why,
	                 size_t len);
	/*
	 * For the welcome and a new trainer's start: completed rounds, the
	 * core's known steps (gossip_known_steps) and the round in flight (0:
	 * none); returns the last averaged model (or NULL).
	 */
	const float *(*last)(void *arg, uint64_t *rounds, uint64_t *known_steps,
	                     uint64_t *round_in_flight);
	/* Events were queued (ext_events). */
	void (*wake)(void *arg);
	void *arg;
};

/*
 * Listens on path (a stale socket there is replaced; one that answers is
 * another node's: -EADDRINUSE). node: this node's name, for the welcome.
 * 0 or -errno.
 */
int ext_open(struct ext **out, struct ev_loop *loop, const char *path, const char *node,
             const struct ext_ops *ops) __attribute__((warn_unused_result));
/* Closes the trainer's connection and the socket; NULL-safe. */
void ext_free(struct ext *x);

/* Whether a layout was accepted; its size and hash. */
bool ext_has_layout(const struct ext *x);
uint64_t ext_n_params(const struct ext *x);
uint64_t ext_layout_hash(const struct ext *x);
/*
 * The latest parameters into out (ext_n_params floats), the training steps
 * they contain (counted by the node, above), and the seq of the last
 * result they include. UINT64_MAX, and nothing copied, when there are none
 * usable: no trainer attached, or no push since it attached.
 */
uint64_t ext_snapshot(struct ext *x, float *out, uint64_t *steps);
/* Whether the trainer said its training is over (or FINISH came). */
bool ext_training_done(const struct ext *x);
/*
 * A result was applied (and checkpointed with ckpt_rc): the trainer gets
 * avg - snapshot to add. Queues the APPLIED event.
 */
void ext_apply(struct ext *x, uint64_t seq, uint64_t round_id, const float *avg,
               const float *snapshot, int ckpt_rc);
/* No more training (the core settled): the trainer is told. */
void ext_finish(struct ext *x);
/* Moves up to cap queued events (worker.h's) into ev. */
size_t ext_events(struct ext *x, struct worker_event *ev, size_t cap);
/*
 * One line for `sotto status`: attached or not, and why the node declines
 * rounds if it does. Counters: frames refused, trainers attached.
 */
void ext_state(const struct ext *x, char *buf, size_t len, uint64_t *refused, uint64_t *attaches);

/*
 * DataDir/external.state, written after every applied result and at stop:
 * "SOTTOXS1", the hello's body length (u32 little endian), the hello body
 * (the layout, as the trainer declared it), then the core's checkpoint
 * extra (gossip_checkpoint_extra: counters, push-sum weight, the last
 * averaged model). head: 0 or -ENOMEM (the node makes it once, at the
 * layout, and writes it and each extra as two parts); decode: 0 or
 * -EINVAL, with *extra pointing into buf. The extra is checked by the core (or export).
 */
#define EXT_STATE_FILE  "external.state"
#define EXT_STATE_MAGIC "SOTTOXS1"
/* The file up to the extra: magic, length and hello body; the extra follows it. */
int ext_statefile_head(uint8_t **out, size_t *len, const struct tmsg_hello *h)
        __attribute__((warn_unused_result));
int ext_statefile_decode(const uint8_t *buf, size_t len, struct tmsg_hello *h,
                         const uint8_t **extra, size_t *extra_len)
        __attribute__((warn_unused_result));

#endif
