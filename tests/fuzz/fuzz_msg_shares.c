/*
 * fuzz_msg_shares.c: libFuzzer harness for the decoders of lists of opaque share blobs (SHARES,
 * UNMASK response). Shared body and oracle: fuzz_msg.h. Seeds: corpus/fuzz_msg_shares/.
 */
#define FUZZ_MSG_TYPES MSG_SHARES, MSG_UNMASK_RESP
#include "fuzz_msg.h"
