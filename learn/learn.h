/*
 * learn.h: what every part of learn/ shares: its error codes and their
 * messages, and the BLAS thread setting.
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

/*
 * Errors of learn/ are negative: -errno values for system failures, or one
 * of these for files that are not what they claim to be.
 */
#define LEARN_EMAGIC    (-2001) /* not a sotto dataset / checkpoint */
#define LEARN_EVERSION  (-2002) /* a newer (or older) format version */
#define LEARN_ETRUNC    (-2003) /* the file ends early */
#define LEARN_ECORRUPT  (-2004) /* checksum mismatch or trailing bytes */
#define LEARN_EBOUNDS   (-2005) /* a header field is out of range */
#define LEARN_EMISMATCH (-2006) /* valid, but not for this model / data */

/* A message for any error of learn/ (also plain -errno). Never NULL. */
const char *learn_strerror(int rc);

/*
 * Sets the number of threads OpenBLAS uses, process-wide (OpenBLAS has no
 * per-call setting). The node calls it once from its training worker.
 */
void learn_set_threads(int n);

#endif
