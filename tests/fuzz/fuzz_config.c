/*
 * fuzz_config.c: libFuzzer harness for the config parser. Any byte string
 * must parse to "OK" or to a list of errors, never crash, leak or hang.
 */
#include "config/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config cfg;
	char *text;

	if (size > 64 * 1024)
		return 0;
	text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0'; /* the loader reads files; embedded NULs end the text here */
	(void)config_load_string(&cfg, "fuzz.conf", text);
	config_fini(&cfg);
	free(text);
	return 0;
}
