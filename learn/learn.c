/*
 * learn.c: the BLAS thread knob. Not here: error messages (util/err.h).
 */
#include "learn/learn.h"

#include <cblas.h>

void learn_set_threads(int n)
{
	openblas_set_num_threads(n > 0 ? n : 1);
}
