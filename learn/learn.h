/*
 * learn.h: what every part of learn/ shares: its error codes (defined with
 * their messages in util/err.h), and the BLAS thread setting.
 *
 * learn/ is the local learning engine: datasets, models over one flat
 * parameter vector, optimizers, training, evaluation, checkpoints. It uses
 * only util/, OpenBLAS and zlib; it knows nothing of configs or networks.
 * It keeps no global mutable state: every model, optimizer, trainer and RNG
 * is an instance the caller owns, so a node can train on a worker thread.
 * The one process-wide knob is OpenBLAS's thread count (learn_set_threads).
 */
#ifndef SOTTO_LEARN_LEARN_H
#define SOTTO_LEARN_LEARN_H

#include "util/err.h"

/*
 * Errors of learn/ are negative: -errno values for system failures, or one
 * of these for files that are not what they claim to be (values and
 * messages in util/err.h):
 *   LEARN_EMAGIC     not a sotto dataset / checkpoint
 *   LEARN_EVERSION   a newer (or older) format version
 *   LEARN_ETRUNC     the file ends early
 *   LEARN_ECORRUPT   checksum mismatch or trailing bytes
 *   LEARN_EBOUNDS    a header field is out of range
 *   LEARN_EMISMATCH  valid, but not for this model / data
 */

/*
 * Sets the number of threads OpenBLAS uses, process-wide (OpenBLAS has no
 * per-call setting). The node calls it once from its training worker.
 */
void learn_set_threads(int n);

#endif
