/*
 * fuzz_msg_keys.c: libFuzzer harness for the decoders of signed ephemeral keys (ACCEPT, and the
 * KEYS roster). Shared body and oracle: fuzz_msg.h. Seeds: corpus/fuzz_msg_keys/.
 */
#define FUZZ_MSG_TYPES MSG_ACCEPT, MSG_KEYS
#include "fuzz_msg.h"
