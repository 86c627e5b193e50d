/*
 * err.c: err_str(), the one message function for every error sotto returns.
 * The cases are generated from ERR_TABLE, so two codes with the same value
 * do not compile (duplicate case), and neither does a code outside the
 * project range (the static assertions below).
 *
 * Not here: logging (util/log.h) or deciding what is an error.
 */
#include "util/err.h"

#include <string.h>

#define ERR_RANGE_CHECK(name, value, message)                                                      \
	_Static_assert((value) <= -ERR_BASE, #name " is inside the -errno range");
ERR_TABLE(ERR_RANGE_CHECK)
#undef ERR_RANGE_CHECK

const char *err_str(int rc)
{
	switch (rc) {
	case 0:
		return "ok";
#define ERR_CASE(name, value, message)                                                             \
	case name:                                                                                 \
		return message;
		ERR_TABLE(ERR_CASE)
#undef ERR_CASE
	default:
		break;
	}
	if (rc < 0 && rc > -ERR_BASE)
		return strerror(-rc);
	return ERR_STR_UNKNOWN;
}
