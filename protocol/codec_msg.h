/*
 * codec_msg.h: struct codec_params <-> the INVITE's struct msg_codec.
 *
 * Not here: the codec (protocol/codec.h) or the wire format (protocol/msg.h).
 */
#ifndef SOTTO_PROTOCOL_CODEC_MSG_H
#define SOTTO_PROTOCOL_CODEC_MSG_H

#include "protocol/codec.h"
#include "protocol/msg.h"

/*
 * Fills m from p (every public field; per segment the clip the value bits
 * imply). 0, or -EINVAL if p does not check or has too many segments.
 */
int codec_to_msg(struct msg_codec *m, const struct codec_params *p)
        __attribute__((warn_unused_result));
/*
 * Fills p from m, refusing what the codec would not reproduce exactly (a
 * quantum that is not a float, a clip that is not the one the bits imply,
 * widths or lengths out of range). 0 or -EINVAL.
 */
int codec_from_msg(struct codec_params *p, const struct msg_codec *m)
        __attribute__((warn_unused_result));

#endif
