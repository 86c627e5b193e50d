/*
 * fuzz_msg_vector.c: libFuzzer harness for the decoders of bit-packed vectors (MASKED, RESULT,
 * PART, PART_SUM). Shared body and oracle: fuzz_msg.h. Seeds: corpus/fuzz_msg_vector/.
 */
#define FUZZ_MSG_TYPES MSG_MASKED, MSG_RESULT, MSG_PART, MSG_PART_SUM
#include "fuzz_msg.h"
