/*
 * err.h: sotto's one error space. A fallible function returns 0 or a
 * negative int, which is one of:
 *
 *   -1 .. -999       a -errno value (ENOENT, EFBIG, ...): what the system said;
 *   -1000 and below  a project code from ERR_TABLE below: what sotto decided.
 *
 * ERR_TABLE is the only place a project code is defined: its name, its value
 * and the message err_str() prints. The values are stable (docs, tests and
 * logs quote them): add a code with a new value, never renumber. Each module
 * keeps its own block of values (identity -1001.., file -1101.., learn -2001.., replay
 * -2101.., seal -2201.., msg -2301..), and its header includes this one, so
 * `#include "crypto/seal.h"` is still all a caller needs for SEAL_EFORGED.
 *
 * Not here: which function returns which code (each function's contract
 * comment says so), and anything about the modules themselves: util/ is the
 * bottom layer and includes none of their headers.
 */
#ifndef SOTTO_UTIL_ERR_H
#define SOTTO_UTIL_ERR_H

/* Project codes are <= -ERR_BASE; -1 .. -(ERR_BASE - 1) are -errno values. */
#define ERR_BASE 1000

/*
 * X(name, value, message). Messages are short, lower case, without a final
 * period, and distinct: a log line must say which code it was.
 */
/* clang-format off */
#define ERR_TABLE(X)                                                                               \
	/* crypto/identity.h: loading a key file, beyond -errno */                                 \
	X(IDENTITY_EMODE,    -1001, "key file is accessible by group or others")                   \
	X(IDENTITY_EFORMAT,  -1002, "not a sotto private key (one base64 line)")                   \
	X(IDENTITY_EOWNER,   -1003, "key file is owned by another user (not this one or root)")    \
	/* util/file.h: files that must be regular files */                                        \
	X(FILE_ENOTREG,      -1101,                                                                \
	  "not a regular file (a FIFO, device or directory is refused)")                           \
	/* learn/learn.h: datasets and checkpoints that are not what they claim */                 \
	X(LEARN_EMAGIC,      -2001, "wrong magic: not a sotto file of this kind")                  \
	X(LEARN_EVERSION,    -2002,                                                                \
	  "unsupported format version (written by another sotto version?)")                        \
	X(LEARN_ETRUNC,      -2003, "file is truncated")                                           \
	X(LEARN_ECORRUPT,    -2004, "file is corrupted (checksum mismatch or trailing data)")      \
	X(LEARN_EBOUNDS,     -2005, "a header field is out of range")                              \
	X(LEARN_EMISMATCH,   -2006, "does not match the model or data it is used with")            \
	/* crypto/replay.h: the window (seal.c maps these two to SEAL_E*) and the state file */    \
	X(REPLAY_EREPLAYED,  -2101, "counter already accepted")                                    \
	X(REPLAY_ETOOOLD,    -2102, "counter below the replay window")                             \
	X(REPLAY_ECORRUPT,   -2103, "replay state file is damaged")                                \
	/* crypto/seal.h: why seal_open() refused a frame */                                       \
	X(SEAL_EMALFORMED,   -2201, "malformed frame")                                             \
	X(SEAL_EVERSION,     -2202, "unsupported frame version")                                   \
	X(SEAL_EOVERSIZE,    -2203, "frame too large")                                             \
	X(SEAL_EMISDIRECTED, -2204, "frame addressed to another node")                             \
	X(SEAL_EUNKNOWN,     -2205, "sender not in the configuration")                             \
	X(SEAL_ENOROUNDKEY,  -2206, "no key for the frame's round")                                \
	X(SEAL_EREPLAYED,    -2207, "replayed frame")                                              \
	X(SEAL_ETOOOLD,      -2208, "frame too old (below the replay window)")                     \
	X(SEAL_EFORGED,      -2209, "authentication failed (tampered or wrong key)")               \
	/* protocol/msg.h: why msg_decode() refused a body */                                      \
	X(MSG_EMALFORMED,    -2301, "malformed message")                                           \
	X(MSG_EVERSION,      -2302, "unsupported protocol version")                                \
	X(MSG_ELIMIT,        -2303, "message exceeds a protocol limit")                            \
	X(MSG_EINVALID,      -2304, "inconsistent message")                                        \
	X(MSG_ETYPE,         -2305, "unknown message type")
/* clang-format on */

/* The codes as int constants: SEAL_EFORGED == -2209. */
#define ERR_ENUM_ROW(name, value, message) name = (value),
enum err_code { ERR_TABLE(ERR_ENUM_ROW) };
#undef ERR_ENUM_ROW

/* What err_str() says for a value that is neither 0, -errno nor in the table. */
#define ERR_STR_UNKNOWN "unknown error"

/*
 * A message for rc, never NULL, valid for the life of the process: "ok" for
 * 0, the table's message for a project code, strerror(-rc) for a -errno
 * value, ERR_STR_UNKNOWN otherwise (positive values, unknown project codes).
 * A -errno message comes from strerror(), and is as thread-safe as the C
 * library's strerror().
 */
const char *err_str(int rc);

#endif
