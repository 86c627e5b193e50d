/*
 * learn.c: learn_strerror (now err_str under its old name) and the BLAS
 * thread knob. Not here: the messages themselves (util/err.h).
 */
#include "learn/learn.h"

#include "util/err.h"

#include <cblas.h>

/* Kept for compatibility with callers not yet on err_str(). */
const char *learn_strerror(int rc)
{
	return err_str(rc);
}

void learn_set_threads(int n)
{
	openblas_set_num_threads(n > 0 ? n : 1);
}
