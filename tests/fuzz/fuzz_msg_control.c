/*
 * fuzz_msg_control.c: libFuzzer harness for the decoders of reasons, member index lists and
 * liveness (DECLINE, ABORT, SPLIT, SPLIT_SIG, UNMASK request, PING, STATUS, CHECKED, COMMIT,
 * SEEDS).
 * Shared body and oracle: fuzz_msg.h. Seeds: corpus/fuzz_msg_control/.
 */
#define FUZZ_MSG_TYPES                                                                             \
	MSG_DECLINE, MSG_ABORT, MSG_SPLIT, MSG_SPLIT_SIG, MSG_UNMASK_REQ, MSG_PING, MSG_STATUS,    \
	        MSG_CHECKED, MSG_COMMIT, MSG_SEEDS
#include "fuzz_msg.h"
