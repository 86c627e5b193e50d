/*
 * transport.h: sealed messages between pinned peers over NNG, driven by
 * the node's libev loop.
 *
 * Pattern: every node listens on ONE pull0 socket (its mailbox, the
 * config's Listen address) and holds one push0 socket per peer, dialed to
 * that peer's Endpoint. Messages of a round are one-way and asynchronous
 * (a reply may come much later, or never when a member dies), which is
 * exactly pipeline semantics: no request/reply lockstep to break, no
 * per-peer listener. Who sent a frame is never taken from NNG: the seal
 * layer authenticates the sender key inside the frame, so a pull socket
 * fair-queuing all pipes is enough. docs/protocol.md discusses the choice.
 *
 * Everything runs on the loop thread. NNG's receive and send poll
 * descriptors (NNG_OPT_RECVFD / NNG_OPT_SENDFD, readable when a receive or
 * a send can proceed) are watched with ev_io; all NNG calls are
 * non-blocking. A send encodes and seals straight into an nng_msg and
 * queues it per peer (bounded in frames and bytes); the queue drains when
 * the peer's push socket can take a message, and NNG's I/O threads write
 * the bytes, so a 50 MB vector never blocks the loop. Dialers reconnect
 * with exponential backoff (NNG_OPT_RECONNMINT/MAXT); the pull socket
 * refuses frames above the maximum (NNG_OPT_RECVMAXSZ).
 *
 * Incoming connections (the pull socket's pipes) are admitted and timed
 * on the node's terms, because anyone who reaches Listen can open them:
 * at most max_conns_in at once, derived from the descriptor limit minus a
 * reserve for the checkpoint and replay state; at most a few
 * unauthenticated ones per source address; and one that has not delivered
 * an authenticated frame within auth_timeout_ms is closed. So that a
 * legitimate link is never that one, even at 100 kbit/s with a large frame
 * waiting, every push connection sends a small PING (seq 0) before any other
 * frame each time it comes up. docs/protocol.md, "Transport", has the
 * rules, their defaults and what they cannot see.
 *
 * Not here: what the messages mean (the round: node/round.h), keys
 * (crypto/seal.h), message bodies (protocol/msg.h).
 */
#ifndef SOTTO_NODE_TRANSPORT_H
#define SOTTO_NODE_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/seal.h"

struct ev_loop;
struct msg;
struct node_status;
struct transport;

struct transport_options {
	const char *listen_url; /* tcp://host:port or ipc:///path */
	/* Largest frame sent or received; 0: seal_max_frame() of the seal ctx. */
	size_t max_frame;
	int reconnect_min_ms;    /* 0: 100 */
	int reconnect_max_ms;    /* 0: 5000 */
	size_t queue_max_frames; /* per peer; 0: 256 */
	size_t queue_max_bytes;  /* per peer; 0: 256 MiB */
	unsigned recv_batch;     /* frames handled per loop wake-up; 0: 16 */
	/*
	 * Incoming connections. One that has not delivered an authenticated
	 * frame after auth_timeout_ms is closed; authenticated ones never are.
	 * At most max_conns_in are open at once, in any state (0: derived at
	 * transport_start from RLIMIT_NOFILE, the descriptors open then,
	 * fd_reserve, the peers, and 512 MiB / max_frame; never more than
	 * the descriptors allow). At most conns_per_addr + 2 per configured
	 * peer whose endpoint is at that address may be unauthenticated at
	 * once per source address (IPv4 address, IPv6 /64; loopback, IPC and
	 * inproc count as one address, "local").
	 */
	int auth_timeout_ms;   /* 0: 10000 */
	size_t max_conns_in;   /* 0: derived, see above */
	size_t conns_per_addr; /* 0: 8 */
	size_t fd_reserve;     /* descriptors kept free for files, status; 0: 32 */
};

/* A received, authenticated and decoded message, valid during the callback. */
struct transport_rx {
	const uint8_t *sender;         /* the sender's identity key (32 bytes) */
	const char *sender_name;       /* as given to transport_peer_add */
	const struct seal_header *hdr; /* hdr->flags & SEAL_FLAG_ROUND: round-sealed */
	const struct msg *msg;         /* byte strings point into the frame */
	size_t frame_bytes;
};

/*
 * Called on the loop thread for every message that opened and decoded,
 * including each peer's PING with seq 0 when its connection comes up. It
 * may call transport_send(); it must not call transport_free().
 */
typedef void (*transport_recv_cb)(void *arg, const struct transport_rx *rx);

/*
 * Called on the loop thread when the connection to a peer (its push socket's
 * last pipe) goes away: the peer process died, restarted, or the network
 * dropped. NNG keeps redialing; frames sent meanwhile wait in the queue.
 */
typedef void (*transport_lost_cb)(void *arg, const uint8_t *peer, const char *name);

struct transport_stats {
	uint64_t frames_in, bytes_in;   /* accepted frames */
	uint64_t frames_out, bytes_out; /* frames handed to NNG */
	uint64_t dropped_seal;          /* refused by seal_open (reasons in .seal) */
	uint64_t dropped_decode;        /* authenticated, but the body did not decode */
	uint64_t dropped_version;       /* of those: another protocol version */
	uint64_t dropped_mismatch;      /* body type or round differs from the header */
	uint64_t queue_full;            /* transport_send refused: peer queue full */
	uint64_t send_errors;           /* NNG refused a frame for good */
	uint64_t fault_dropped, fault_duplicated, fault_delayed;
	uint64_t peers_lost; /* connections to peers that went away */
	/*
	 * Incoming connections. Frames above max_frame never reach seal_open
	 * (so .seal.oversized stays 0 here): NNG closes the connection on the
	 * length prefix, which counts as conns_no_frame.
	 */
	uint64_t conns_in;                  /* open now */
	uint64_t conns_in_max;              /* the limit in force */
	uint64_t conns_refused_per_address; /* refused at connect: address over its limit */
	uint64_t conns_refused_limit;       /* refused at connect: conns_in_max open */
	uint64_t conns_auth_timeout;        /* closed: no authenticated frame in time */
	uint64_t conns_no_frame;            /* closed by the remote or NNG before any frame came */
	struct seal_stats seal;
};

/*
 * Creates the transport (nothing is opened yet). loop and seal are
 * borrowed and must outlive it. -ENOMEM or -EINVAL.
 */
int transport_alloc(struct transport **out, struct ev_loop *loop, struct seal_ctx *seal,
                    const struct transport_options *opt, transport_recv_cb cb, void *arg)
        __attribute__((warn_unused_result));

/*
 * Adds a peer: pins its key in the seal ctx (if not already) and, once
 * started, dials url. name is for logs (copied; may be NULL). -EEXIST,
 * -EINVAL (bad key or URL), -ENOMEM. Peers may be added after start.
 */
int transport_peer_add(struct transport *t, const uint8_t pk[SEAL_KEY_BYTES], const char *url,
                       const char *name) __attribute__((warn_unused_result));

/*
 * Removes a peer (a config reload dropped it or changed its key or
 * endpoint): unpins its key in the seal ctx, so its frames are refused from
 * now on; drops what is queued for it; closes its push socket (in the
 * background); and treats the incoming connections its frames had
 * authenticated as unauthenticated again, so they are closed within the
 * authentication timeout unless a frame opens. Sends to it fail with
 * SEAL_EUNKNOWN afterwards. 0, -ENOENT (not a peer), -ENOMEM.
 */
int transport_peer_remove(struct transport *t, const uint8_t pk[SEAL_KEY_BYTES]);
/* Renames a peer (its log lines and status entry). 0, -ENOENT. */
int transport_peer_set_name(struct transport *t, const uint8_t pk[SEAL_KEY_BYTES],
                            const char *name);

/*
 * Listens on listen_url and starts dialing every peer (in the background:
 * a peer that is down is retried with backoff). Fixes the limit on incoming
 * connections (logged) from the peers added so far. Returns 0, or
 * -errno-style if the listener cannot be opened (-EADDRINUSE, -EINVAL...).
 */
int transport_start(struct transport *t) __attribute__((warn_unused_result));

/*
 * Encodes m, seals it to peer and queues it; returns without blocking. The
 * message's byte strings are copied, so the caller may reuse them at once.
 * 0; MSG_E* (m invalid); SEAL_EUNKNOWN (not a peer); -EMSGSIZE (frame over
 * max_frame); -ENOBUFS (the peer's queue is full, counted); -ENOMEM.
 * Delivery is not acknowledged: the round protocol has its own deadlines.
 */
int transport_send(struct transport *t, const uint8_t peer[SEAL_KEY_BYTES], const struct msg *m)
        __attribute__((warn_unused_result));

/* Frames queued for peer, or for all peers if peer is NULL (not yet in NNG). */
size_t transport_pending(const struct transport *t, const uint8_t *peer);

/* The callback for lost connections (none by default). */
void transport_set_lost_cb(struct transport *t, transport_lost_cb cb, void *arg);
/* Whether the push socket to this peer is connected now. */
bool transport_peer_connected(const struct transport *t, const uint8_t peer[SEAL_KEY_BYTES]);
void transport_stats_get(const struct transport *t, struct transport_stats *out);
/* Copies the counters into a status snapshot (bytes, messages, rejections). */
void transport_status_fill(const struct transport *t, struct node_status *s);

/* Closes every socket, drops queued frames, frees; accepts NULL. */
void transport_free(struct transport *t);

/*
 * Fault injection for the chaos harness; off unless set. Each outgoing
 * frame is dropped, duplicated (the copy is a replay the receiver must
 * refuse) or delayed by up to delay_max_s with the given probabilities,
 * drawn from a seeded generator, until budget faults were injected. At
 * most 256 frames are held back at once. NULL turns it off.
 */
struct transport_fault {
	double drop, dup, delay; /* probabilities, each in [0, 1] */
	double delay_max_s;
	uint64_t seed;
	uint64_t budget;
};
int transport_set_fault(struct transport *t, const struct transport_fault *f)
        __attribute__((warn_unused_result));

#endif
