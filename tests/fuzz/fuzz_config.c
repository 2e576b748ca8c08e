/*
 * libFuzzer harness for the configuration parser, including the key-path
 * locator that walks the raw text and the rules and audit sub-parsers.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <secretsfs/config.h>
#include <secretsfs/secmem.h>

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct cfg_err err;
	struct config *cfg;
	char *text;

	if (!ready) {
		secmem_install_json_allocator();
		ready = 1;
	}
	if (!(text = malloc(size + 1)))
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (config_load_string(text, "fuzz.json", &cfg, &err) == 0)
		config_free(cfg);
	else if (err.line < 0 || err.col < 0)
		abort();	/* positions are never negative */
	free(text);
	return 0;
}
