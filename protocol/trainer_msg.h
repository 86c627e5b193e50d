/*
 * trainer_msg.h: the messages of the trainer socket ([Model] Type =
 * external), between a node and the local process that trains its model.
 *
 * A frame is a 4-byte big-endian length and one msgpack map with string
 * keys; "t" names the message. Byte strings of float32 values are little
 * endian (the machine's own order on every platform sotto runs on).
 *
 *   trainer -> node
 *     hello   v (TMSG_VERSION), layout [[name, [dims...]], ...], dtype
 *             "float32", rows (training rows: the push-sum weight)
 *     params  applied (the last result seq folded into x, 0: none), epochs
 *             (trained so far), done (training over), x (bin, n_params
 *             float32), and optionally accuracy, loss (a test evaluation)
 *   node -> trainer
 *     welcome v, n_params, layout (the hash, 16 hex digits), node (name),
 *             rounds (completed), last (bin: the last averaged model, if
 *             the node has one)
 *     result  seq, round, delta (bin: what to add to the parameters)
 *     finish  training is over for this node (it settled): stop training
 *     error   msg (why the last message was refused; nothing changed)
 *
 * Decoding scans the frame first (msg_scan: bounded depth and objects, no
 * allocation), then checks every field; a refused frame fills nothing.
 * Not here: the socket (node/extern.h).
 */
#ifndef SOTTO_PROTOCOL_TRAINER_MSG_H
#define SOTTO_PROTOCOL_TRAINER_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TMSG_VERSION     1
#define TMSG_MAX_TENSORS 254        /* a model's segments (learn/model.h) */
#define TMSG_MAX_NAME    96         /* bytes of a tensor name, printable ASCII */
#define TMSG_MAX_DIMS    8          /* dimensions of a tensor (0: a scalar) */
#define TMSG_MAX_PARAMS  (1u << 26) /* what one secure round carries (MSG_MAX_VALUES) */
#define TMSG_MAX_HELLO   (1u << 20) /* bytes of a frame before the layout is known */
#define TMSG_MAX_TEXT    256        /* an error message */
#define TMSG_FRAME_EXTRA 4096       /* a params frame: 4 * n_params + this at most */

enum tmsg_type {
	TMSG_HELLO = 1,
	TMSG_PARAMS,
	TMSG_WELCOME,
	TMSG_RESULT,
	TMSG_FINISH,
	TMSG_ERROR,
};

struct tmsg_tensor {
	char name[TMSG_MAX_NAME + 1];
	uint32_t ndim;
	uint32_t shape[TMSG_MAX_DIMS];
	uint64_t numel;
};

struct tmsg_hello {
	uint32_t version;
	size_t n_tensors;
	struct tmsg_tensor tensors[TMSG_MAX_TENSORS];
	uint64_t n_params; /* sum of numel, 1..TMSG_MAX_PARAMS */
	uint64_t rows;     /* 1..2^32 */
};

struct tmsg_params {
	uint64_t applied;
	double epochs; /* finite, >= 0 */
	bool done;
	bool has_eval;
	double accuracy, loss; /* has_eval: accuracy in [0, 1], loss finite >= 0 */
	const uint8_t *x;      /* borrowed from the frame: n_params * 4 bytes */
	size_t x_len;
};

/*
 * Decodes one frame body (without its length prefix) from the trainer.
 * n_params: the layout's size once known (params is refused before, and
 * must then carry exactly that many values); 0 before. Only hello and
 * params are accepted. Returns the type, or a negative MSG_E* code with why
 * (may be NULL) set to a line for the error reply. h may be NULL when the
 * caller already has a layout and will refuse a new hello anyway.
 */
int tmsg_decode(const uint8_t *buf, size_t len, uint64_t n_params, struct tmsg_hello *h,
                struct tmsg_params *p, char *why, size_t why_len)
        __attribute__((warn_unused_result));

/*
 * The layout's hash: BLAKE2b-64 over the names and shapes (and dtype), as
 * 16 lowercase hex digits on the wire and in logs. Equal layouts, equal
 * hashes; the hash travels in a round's INVITE.
 */
uint64_t tmsg_layout_hash(const struct tmsg_hello *h);

/*
 * Encoders of node -> trainer frames, length prefix included, into a
 * malloc'd buffer (*out, *len). 0 or -ENOMEM. Floats are copied as they are.
 */
int tmsg_encode_welcome(uint8_t **out, size_t *len, uint64_t n_params, uint64_t layout_hash,
                        const char *node, uint64_t rounds, const float *last)
        __attribute__((warn_unused_result));
int tmsg_encode_result(uint8_t **out, size_t *len, uint64_t seq, uint64_t round, const float *delta,
                       uint64_t n_params) __attribute__((warn_unused_result));
int tmsg_encode_finish(uint8_t **out, size_t *len) __attribute__((warn_unused_result));
int tmsg_encode_error(uint8_t **out, size_t *len, const char *msg)
        __attribute__((warn_unused_result));

/* Test and fuzz helper: a hello or params frame body as a trainer sends it. */
int tmsg_encode_hello(uint8_t **out, size_t *len, const struct tmsg_hello *h)
        __attribute__((warn_unused_result));
int tmsg_encode_params(uint8_t **out, size_t *len, const struct tmsg_params *p)
        __attribute__((warn_unused_result));

#endif
