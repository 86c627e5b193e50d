/*
 * msg.h: the messages of sotto's wire protocol, as C structs, with strict
 * msgpack encoding and decoding.
 *
 * Every body is one msgpack array: [version, type, round_id, attempt,
 * fields...], the fields fixed per type (docs/protocol.md lists each, with
 * its limits, and the round's state machine). The round follows Bonawitz et
 * al., "Practical Secure Aggregation for Privacy-Preserving Machine
 * Learning", CCS 2017, run inside a group of k members whose initiator (index
 * 0) plays the server's part:
 *
 *   INVITE   initiator -> member   round, members, deadlines, codec
 *   ACCEPT   member -> initiator   signed ephemeral keys (or DECLINE)
 *   KEYS     initiator -> members  every accepted member's signed keys
 *   SHARES   member -> initiator -> holder: encrypted secret shares
 *   MASKED   member -> initiator   the masked, bit-packed vector
 *   SPLIT    initiator -> members  who is alive, who dropped: sign it
 *   SPLIT_SIG member -> initiator  my signature on that split
 *   UNMASK   initiator -> members  the split with every alive member's
 *                                  signature (request)
 *   UNMASK   member -> initiator   the shares that remove the masks (response)
 *   RESULT   initiator -> members  the ring sum and who is in it
 *   CHECKED  member -> initiator   my decode of the sum verified (else ABORT)
 *   COMMIT   initiator -> members  every counted member confirmed: apply
 *   ABORT    anyone -> anyone      the round is over for everyone
 *   PING / STATUS                  liveness and a peer's state
 *
 * Decoding is strict: exact msgpack types, exact array lengths, every size,
 * count and length bounded by the MSG_MAX_* limits below, nesting at most
 * MSG_MAX_DEPTH, and no trailing bytes. A body is first walked by a bounded
 * scanner, so no input can make the decoder allocate more than a small
 * multiple of MSG_MAX_OBJECTS, read out of bounds or recurse without bound.
 * Decoded messages BORROW: byte strings (vectors, shares) point into the
 * input buffer, which must outlive the struct; nothing is allocated.
 *
 * Not here: what the bytes mean (the codec: protocol/codec.h; shares and
 * masks: crypto/), sealing (crypto/seal.h), sockets (node/transport.h).
 */
#ifndef SOTTO_PROTOCOL_MSG_H
#define SOTTO_PROTOCOL_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/*
 * Version of the protocol: message bodies and what a round computes. A
 * different one is refused, with a log line. 2: masks read keystream in
 * word-aligned lanes (crypto/mask.h), so version-1 masks would not cancel.
 * 3: the signed split (SPLIT, SPLIT_SIG, signatures in the UNMASK request)
 * and a flags byte in the signed round keys: a version-2 member would
 * reveal shares under rules a dishonest initiator can defeat
 * (docs/security.md, "Versions affected"). 4: DECLINE says how long the
 * decliner expects to stay busy (busy_ms), for link-paced scheduling.
 * 5: INVITE carries the initiator's [Model] settings (type, hidden sizes,
 * seed), so a member whose settings differ names the one that does.
 * 6: rounds over feature statistics before training (Standardize =
 * federated), marked by MSG_MODEL_TYPE_STATS in the INVITE's settings.
 * 7 and 8: see docs/protocol.md ("Versions"). 9: [Model] Type = external
 * (msg_model.type 3): the model is a layout a local trainer declared, and
 * msg_model.seed carries its hash (protocol/trainer_msg.h), which every
 * member must share; a version-8 node would compare it as a Seed.
 * 10: a low-rank sketch round's codec has centred segments
 * (CODEC_SEG_CENTERED, protocol/codec.h), which a version-9 node refuses
 * as an unknown segment mode.
 */
#define MSG_VERSION 10

/* --- limits (docs/protocol.md, "Limits") ---------------------------------- */
#define MSG_MIN_MEMBERS      3           /* k >= 3: a sum of two reveals the other input */
#define MSG_MAX_MEMBERS      32          /* k <= 32 */
#define MSG_KEY_BYTES        32          /* identity (Ed25519) and ephemeral (X25519) keys */
#define MSG_SIG_BYTES        64          /* Ed25519 signature */
#define MSG_COMMIT_BYTES     32          /* commitment to a self-mask seed */
#define MSG_MAX_SEGMENTS     256         /* codec segments */
#define MSG_MAX_VALUES       (1u << 26)  /* ring elements of one vector (64 Mi) */
#define MSG_MAX_VECTOR_BYTES (64u << 20) /* packed bytes of one vector (64 MiB) */
#define MSG_MAX_SHARE_BYTES  512         /* one encrypted or revealed share */
#define MSG_MAX_TEXT_BYTES   128         /* reason texts: printable ASCII */
#define MSG_MAX_HIDDEN       8           /* [Model] Hidden sizes in an INVITE */
#define MSG_MAX_MODEL_TYPE   63          /* [Model] Type codes (config's enum) */
/*
 * msg_model.type of a round over feature statistics (Standardize =
 * federated, before training): not a [Model] Type; its seed field holds
 * the number of features.
 */
#define MSG_MODEL_TYPE_STATS 32
#define MSG_MAX_DEPTH        4       /* msgpack nesting */
#define MSG_MAX_BUSY_MS      3600000 /* a DECLINE's busy_ms: an hour */
#define MSG_MAX_OBJECTS      4096    /* msgpack objects in one body */
/* Largest body: a vector plus a generous allowance for the rest. */
#define MSG_MAX_BODY_BYTES ((size_t)MSG_MAX_VECTOR_BYTES + 65536)

/*
 * Decoder errors (negative, distinct from -errno and the SEAL_E* codes;
 * values and messages in util/err.h):
 *   MSG_EMALFORMED  not msgpack, wrong type or shape, trailing bytes
 *   MSG_EVERSION    a protocol version this build does not speak
 *   MSG_ELIMIT      a size, count, length or depth over its limit
 *   MSG_EINVALID    well formed but inconsistent (duplicates, ranges)
 *   MSG_ETYPE       unknown message type
 */

enum msg_type {
	MSG_INVITE = 1,
	MSG_ACCEPT = 2,
	MSG_DECLINE = 3,
	MSG_KEYS = 4,
	MSG_SHARES = 5,
	MSG_MASKED = 6,
	MSG_UNMASK_REQ = 7,
	MSG_UNMASK_RESP = 8,
	MSG_RESULT = 9,
	MSG_ABORT = 10,
	MSG_PING = 11,
	MSG_STATUS = 12,
	MSG_CHECKED = 13,
	MSG_COMMIT = 14,
	MSG_SPLIT = 15,
	MSG_SPLIT_SIG = 16,
	MSG_PART = 17,     /* scatter path: member -> aggregator */
	MSG_SEEDS = 18,    /* scatter path: initiator -> each alive member */
	MSG_PART_SUM = 19, /* scatter path: aggregator -> each alive member */
};
#define MSG_TYPE_MIN MSG_INVITE
#define MSG_TYPE_MAX MSG_PART_SUM
/* Messages of a round (nonzero round_id): INVITE..ABORT, CHECKED..SPLIT_SIG. */
#define MSG_TYPE_IN_ROUND(t) ((t) <= MSG_ABORT || (t) >= MSG_CHECKED)

/* Why a member declines or anyone aborts. Unknown codes decode (as "other"). */
enum msg_reason {
	MSG_REASON_OTHER = 0,
	MSG_REASON_BUSY = 1,         /* already in a round */
	MSG_REASON_PARAMS = 2,       /* codec or group parameters refused */
	MSG_REASON_UNKNOWN_PEER = 3, /* a member is not pinned in my config */
	MSG_REASON_TIMEOUT = 4,      /* a phase deadline passed */
	MSG_REASON_TOO_FEW = 5,      /* fewer than t members left */
	MSG_REASON_BAD_MESSAGE = 6,  /* a message failed a check (signature, share) */
	MSG_REASON_REFUSED = 7,      /* an unmask request that would reveal an input */
	MSG_REASON_SHUTDOWN = 8,     /* the node is stopping */
	MSG_REASON_INTERNAL = 9,     /* local failure (memory, disk) */
	MSG_REASON_WRAP = 10,        /* a member's decode of the sum failed its checksum */
	MSG_REASON_PRIVACY = 11,     /* the sum would leave one unknown input alone */
};

/* A byte string inside a decoded body (borrowed) or to encode (not owned). */
struct msg_bytes {
	const uint8_t *ptr;
	size_t len;
};

/*
 * One codec segment, in vector order (offsets are the running sum of the
 * lengths). Maps onto protocol/codec.h's struct codec_segment.
 */
struct msg_segment {
	uint32_t length; /* coordinates, >= 1 */
	uint8_t bits;    /* value bits, 1..64 */
	uint8_t width;   /* ring width w (wire bits per value), 1..64 */
	uint8_t mode;    /* codec-defined (exact, modular or centred) */
	double scale;    /* quantum: one level, finite, > 0 */
	double clip;     /* values are clipped to [-clip, clip]; finite, > 0 */
};

/* The public codec parameters of a round, identical for every member. */
struct msg_codec {
	uint16_t id;          /* codec identifier (CODEC_ID_*) */
	uint16_t version;     /* that codec's parameter version */
	uint16_t k;           /* group size the ring widths are sized for, 1..255 */
	uint32_t flags;       /* codec-defined feature bits */
	uint32_t keep_ppm;    /* subsampled fraction, parts per million, 1..10^6 */
	uint64_t sample_seed; /* public seed of the shared subsample */
	uint64_t dither_seed; /* public seed of a shared dither */
	uint8_t weight_bits;  /* push-sum weight segment (0: none) */
	uint8_t weight_width; /* 0..64 */
	double weight_scale;  /* finite, >= 0 */
	uint16_t n_segments;  /* 1..MSG_MAX_SEGMENTS */
	struct msg_segment segments[MSG_MAX_SEGMENTS];
};

/*
 * The [Model] settings every member of a group must share (public config,
 * nothing learnt from data): a member compares them with its own before it
 * joins, and a DECLINE names the one that differs.
 */
struct msg_model {
	uint8_t type;     /* config_model_type: 0..MSG_MAX_MODEL_TYPE */
	uint8_t n_hidden; /* 0..MSG_MAX_HIDDEN */
	uint32_t hidden[MSG_MAX_HIDDEN];
	uint64_t seed;
};

/*
 * The data path of a round (INVITE). STAR: every masked vector goes to the
 * initiator, which sends the sum back (RESULT). SCATTER: MASKED carries no
 * vector; once the split is signed each alive member sends the p-th range
 * of its masked vector to the p-th alive member (PART), the initiator sends
 * every alive member the mask keys the unmasking needs (SEEDS), and each
 * aggregator sends the sum of its range to every alive member (PART_SUM).
 */
#define MSG_LR_NONE     0
#define MSG_LR_BASIS    1
#define MSG_LR_SKETCH   2
#define MSG_LR_PROJECT  3
#define MSG_MAX_LR_RANK 64

#define MSG_PATH_STAR    0
#define MSG_PATH_SCATTER 1

/* INVITE: initiator -> each invited member. */
struct msg_invite {
	uint8_t n_members; /* k: MSG_MIN_MEMBERS..MSG_MAX_MEMBERS */
	uint8_t threshold; /* t: k/2 + 1 .. k (a majority, so no minority can unmask) */
	/* Identity keys, index order; [0] is the initiator; no duplicates. */
	uint8_t members[MSG_MAX_MEMBERS][MSG_KEY_BYTES];
	uint32_t phase_timeout_ms; /* each phase's deadline from its start, 1..3600000 */
	uint64_t deadline_unix_ms; /* the round's end, initiator's wall clock */
	struct msg_codec codec;
	struct msg_model model;
	uint8_t path; /* MSG_PATH_* */
	/*
	 * Low-rank averaging (docs/codec.md): which round of a chain this is.
	 * MSG_LR_NONE: an ordinary round (rank and ref 0). BASIS: the vector
	 * is the model with each large matrix W projected on Q0 = a public
	 * random basis from seed `ref`; SKETCH: W^T (W Q0 - mean) of the BASIS
	 * round `ref` (same members); PROJECT: W Q, Q the basis the SKETCH
	 * round `ref` gave (same members).
	 */
	uint8_t lr_kind; /* MSG_LR_* */
	uint8_t lr_rank; /* 1..MSG_MAX_LR_RANK with a kind, else 0 */
	uint64_t lr_ref;
};

/*
 * Statements a member signs with its round keys. KNOWN: its input is the
 * last result it applied, unchanged (it has not trained since), so the
 * members of that earlier round know it already (docs/security.md, "What a
 * small group leaks").
 */
#define MSG_EPH_F_KNOWN 0x01u
#define MSG_EPH_F_ALL   MSG_EPH_F_KNOWN

/* A member's round keys, signed with its identity (crypto/seal.h seal_eph_sign). */
struct msg_eph_keys {
	uint8_t flags;                         /* MSG_EPH_F_* */
	uint8_t mask_pk[MSG_KEY_BYTES];        /* X25519, pairwise masks */
	uint8_t share_pk[MSG_KEY_BYTES];       /* X25519, share encryption */
	uint8_t seed_commit[MSG_COMMIT_BYTES]; /* commitment to the self-mask seed */
	uint8_t sig[MSG_SIG_BYTES];
};

/* ACCEPT: member -> initiator. */
struct msg_accept {
	uint8_t index; /* the sender's index in the INVITE */
	struct msg_eph_keys keys;
};

/* DECLINE: member -> initiator; ABORT: anyone -> anyone. */
struct msg_reason_text {
	uint8_t reason;                    /* enum msg_reason */
	char text[MSG_MAX_TEXT_BYTES + 1]; /* printable ASCII, NUL-terminated */
	/*
	 * DECLINE only (not sent in ABORT): how long the decliner expects to stay
	 * busy, in ms (0: unknown, or not busy); at most MSG_MAX_BUSY_MS.
	 */
	uint32_t busy_ms;
};

/* KEYS: initiator -> every accepted member: the round's roster. */
struct msg_keys {
	uint8_t n; /* MSG_MIN_MEMBERS..MSG_MAX_MEMBERS entries, indices ascending */
	struct {
		uint8_t index;
		struct msg_eph_keys keys;
	} entries[MSG_MAX_MEMBERS];
};

/*
 * SHARES: member i -> initiator (every entry from == i), and initiator ->
 * holder j (every entry to == j). Blobs are opaque (crypto/shamir.h boxes).
 */
struct msg_share {
	uint8_t from, to;      /* member indices, from != to */
	struct msg_bytes blob; /* 1..MSG_MAX_SHARE_BYTES */
};
struct msg_shares {
	uint8_t n; /* 1..MSG_MAX_MEMBERS */
	struct msg_share entries[MSG_MAX_MEMBERS];
};

/* MASKED: member -> initiator. */
struct msg_masked {
	uint8_t index;
	uint32_t n_values;       /* ring elements packed in vector, <= MSG_MAX_VALUES */
	double weight;           /* plaintext push-sum weight (0 if it is in the vector), >= 0 */
	struct msg_bytes vector; /* bit-packed ring elements, <= MSG_MAX_VECTOR_BYTES */
};

/*
 * SPLIT: initiator -> each alive member: who is alive (MASKED arrived) and
 * who dropped (shared keys, sent no input). Disjoint, each ascending.
 */
struct msg_split {
	uint8_t n_alive; /* >= 1 */
	uint8_t n_dropped;
	uint8_t alive[MSG_MAX_MEMBERS];
	uint8_t dropped[MSG_MAX_MEMBERS];
};

/* SPLIT_SIG: member -> initiator; also an entry of the UNMASK request. */
struct msg_split_sig {
	uint8_t index;              /* the signer */
	uint8_t sig[MSG_SIG_BYTES]; /* crypto/seal.h seal_split_sign */
};

/* UNMASK request: initiator -> each alive member. */
struct msg_unmask_req {
	struct msg_split split;
	uint8_t n_sigs; /* signers ascending, 1..MSG_MAX_MEMBERS */
	struct msg_split_sig sigs[MSG_MAX_MEMBERS];
};

/* UNMASK response: member -> initiator: one revealed share per owner. */
struct msg_unmask_resp {
	uint8_t index;
	uint8_t n; /* 0..MSG_MAX_MEMBERS, owners ascending */
	struct {
		uint8_t owner; /* whose secret this is a share of */
		struct msg_bytes share;
	} entries[MSG_MAX_MEMBERS];
};

/* RESULT: initiator -> every counted member. */
struct msg_result {
	uint8_t n_counted; /* members whose input is in the sum, ascending */
	uint8_t counted[MSG_MAX_MEMBERS];
	uint32_t n_values;
	double weight;        /* total push-sum weight (plaintext part) */
	struct msg_bytes sum; /* bit-packed ring sum */
};

/*
 * PART (scatter path): alive member index -> the part-th alive member: values
 * [first, first + n_values) of its masked ring vector. PART_SUM: that
 * aggregator -> every alive member: the unmasked sum of the range.
 */
struct msg_part {
	uint8_t index; /* the sender */
	uint8_t part;  /* the range's number, 0..MSG_MAX_MEMBERS-1 */
	uint32_t first, n_values;
	struct msg_bytes vector; /* bit-packed ring elements of the range */
};

/*
 * SEEDS (scatter path): initiator -> each alive member, after the unmasking
 * shares: what the initiator of a star round would use to unmask the sum,
 * so that each aggregator can unmask its range. SELF: an alive member's
 * reconstructed self-mask seed (checked against its commitment); PAIR_SK: a
 * dropped member's reconstructed mask secret key (checked against its
 * public key). Owners ascending. Secrets: wiped wherever they are copied.
 */
#define MSG_SEED_SELF    0
#define MSG_SEED_PAIR_SK 1
struct msg_seeds {
	uint8_t n; /* 1..MSG_MAX_MEMBERS */
	struct {
		uint8_t owner;
		uint8_t kind; /* MSG_SEED_* */
		uint8_t key[MSG_KEY_BYTES];
	} entries[MSG_MAX_MEMBERS];
};

/*
 * CHECKED: counted member -> initiator; COMMIT: initiator -> counted
 * members. digest: BLAKE2b-256 of the packed sum the sender decoded (CHECKED)
 * or that every CHECKED named (COMMIT): the initiator commits only if all
 * agree, and a member applies a COMMIT only for the sum it decoded.
 */
struct msg_ack {
	uint8_t index; /* the sender's index (0 for COMMIT) */
	uint8_t digest[MSG_KEY_BYTES];
};

/* PING: anyone -> anyone; answered by STATUS with the same seq. */
struct msg_ping {
	uint64_t seq;
	uint64_t time_ms; /* sender's clock, echoed back for a round-trip time */
};

struct msg_status {
	uint64_t seq;     /* the PING's seq (0: unsolicited) */
	uint64_t time_ms; /* the PING's time_ms */
	bool busy;        /* in a round (its id is the message's round_id) */
	uint64_t rounds_ok, rounds_aborted;
	uint64_t uptime_s;
};

/* One message: the common fields and one body per type. */
struct msg {
	enum msg_type type;
	uint64_t round_id; /* random, nonzero for INVITE..ABORT; any for PING/STATUS */
	uint32_t attempt;  /* retry number of this round id */
	union {
		struct msg_invite invite;
		struct msg_accept accept;
		struct msg_reason_text decline;
		struct msg_keys keys;
		struct msg_shares shares;
		struct msg_masked masked;
		struct msg_split split;
		struct msg_split_sig split_sig;
		struct msg_unmask_req unmask_req;
		struct msg_unmask_resp unmask_resp;
		struct msg_result result;
		struct msg_reason_text abort;
		struct msg_ping ping;
		struct msg_status status;
		struct msg_ack ack;   /* CHECKED and COMMIT */
		struct msg_part part; /* PART and PART_SUM */
		struct msg_seeds seeds;
	} u;
};

/*
 * Checks m against every rule the decoder enforces. 0 or MSG_E*. The
 * encoder runs it, so sotto never sends what it would itself refuse.
 */
int msg_validate(const struct msg *m) __attribute__((warn_unused_result));

/* Exact encoded size of m (which must validate); 0 if it does not. */
size_t msg_encoded_size(const struct msg *m);

/*
 * Encodes m into out (cap bytes; msg_encoded_size(m) is enough) and sets
 * *len. Does not allocate. 0, MSG_E* (m invalid) or -ENOBUFS.
 */
int msg_encode(uint8_t *out, size_t cap, size_t *len, const struct msg *m)
        __attribute__((warn_unused_result));

/*
 * Walks exactly one msgpack object spanning all of buf without allocating:
 * depth at most MSG_MAX_DEPTH, at most MSG_MAX_OBJECTS objects, every
 * length inside buf, no trailing bytes. 0, MSG_EMALFORMED or MSG_ELIMIT.
 * msg_decode runs it first; other decoders of msgpack (the trainer
 * socket's, protocol/trainer_msg.h) do too, before msgpack-c sees the bytes.
 */
int msg_scan(const uint8_t *buf, size_t len) __attribute__((warn_unused_result));

/*
 * Decodes exactly len bytes of buf into *m. On success byte strings in *m
 * point into buf. A different protocol version gives MSG_EVERSION and a
 * warning in the log; other failures MSG_E* with *m unspecified. Never
 * allocates more than a bounded parse tree (freed before returning).
 */
int msg_decode(struct msg *m, const uint8_t *buf, size_t len) __attribute__((warn_unused_result));

const char *msg_type_name(int type);
const char *msg_reason_name(int reason);

#endif
