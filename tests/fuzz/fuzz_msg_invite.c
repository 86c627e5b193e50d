/*
 * fuzz_msg_invite.c: libFuzzer harness for the decoders of the round invitation (members,
 * deadlines, the codec block, nested 4 deep). Shared body and oracle: fuzz_msg.h. Seeds:
 * corpus/fuzz_msg_invite/.
 */
#define FUZZ_MSG_TYPES MSG_INVITE
#include "fuzz_msg.h"
