/*
 * testhooks.h: the test-only switches of `sotto run` (docs/testing.md).
 *
 * Read once from the environment at start-up; all off unless set. They let
 * the chaos harness kill a node at an exact protocol phase, inject faults
 * into the transport, make a member go silent, and record plaintext round
 * inputs for verification. A node with any of them on logs "TEST MODE".
 * Not a feature: nothing here is ever read from the config file.
 */
#ifndef SOTTO_NODE_TESTHOOKS_H
#define SOTTO_NODE_TESTHOOKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct transport_fault;

enum test_phase {
	TEST_PHASE_INVITED,
	TEST_PHASE_KEYS,
	TEST_PHASE_SHARES,
	TEST_PHASE_MASKED,
	TEST_PHASE_UNMASK,
	TEST_PHASE_INITIATED,
	TEST_PHASE_COLLECT,
	TEST_PHASE_RESULT,
	TEST_PHASE_APPLY,
	TEST_PHASE_CHECKPOINT,
	TEST_PHASE_SPLIT,     /* a member received the split to sign */
	TEST_PHASE_SPLITTING, /* the initiator sent the split for signing */
	TEST_PHASE_PARTS,     /* scatter: a member sent its parts */
	TEST_PHASE_PARTSUM,   /* scatter: an aggregator sent its part's sum */
	TEST_PHASE_COUNT,
};

/* Parses SOTTO_TEST_*. Returns 0, or -EINVAL with a message on stderr. */
int testhooks_init(void) __attribute__((warn_unused_result));
/* Logs what is on (call after logging is set up). */
void testhooks_log(void);

/* Kills the process with SIGKILL if phase is armed (and the coin says so). */
void testhook(enum test_phase phase);

bool testhooks_verify(void);
/* SOTTO_TEST_CLOSE_HANG=1: blocks forever where the node closes its NNG
 * sockets at shutdown, as libnng 1.5's close deadlock does (the close
 * watchdog must end the process). */
void testhook_close_hang(void);
bool testhooks_silent_after_accept(void);
/* The transport fault settings, if SOTTO_TEST_FAULT is set. */
bool testhooks_fault(struct transport_fault *out);

/* --- verification mode records (DataDir/verify/, docs/testing.md) ------- */

struct codec_params;

/* Creates DataDir/verify/ and writes `self`. 0 or -errno. */
int testhooks_verify_start(const char *data_dir, const uint8_t pk[32])
        __attribute__((warn_unused_result));
/* in-RID-A.u32 and layout-RID-A: this node's plaintext encoded input. */
void testhooks_record_input(uint64_t rid, uint32_t attempt, const struct codec_params *cp,
                            const uint32_t *ring);
/* applied-RID-A and sum-RID-A.u32: a result this node applies. */
void testhooks_record_applied(uint64_t rid, uint32_t attempt, const struct codec_params *cp,
                              const uint32_t *sum, const uint8_t (*counted)[32], size_t n);
/* outcome-RID-A: "done" or "aborted REASON". */
void testhooks_record_outcome(uint64_t rid, uint32_t attempt, const char *outcome);

#endif
