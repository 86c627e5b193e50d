/*
 * learn.c: error messages of learn/ and the BLAS thread knob.
 */
#include "learn/learn.h"

#include <cblas.h>
#include <string.h>

const char *learn_strerror(int rc)
{
	switch (rc) {
	case 0:
		return "success";
	case LEARN_EMAGIC:
		return "wrong magic: not a sotto file of this kind";
	case LEARN_EVERSION:
		return "unsupported format version (written by another sotto version?)";
	case LEARN_ETRUNC:
		return "file is truncated";
	case LEARN_ECORRUPT:
		return "file is corrupted (checksum mismatch or trailing data)";
	case LEARN_EBOUNDS:
		return "a header field is out of range";
	case LEARN_EMISMATCH:
		return "does not match the model or data it is used with";
	default:
		return rc < 0 ? strerror(-rc) : "unknown error";
	}
}

void learn_set_threads(int n)
{
	openblas_set_num_threads(n > 0 ? n : 1);
}
