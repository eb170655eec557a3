/*
 * fuzz_config.c - the config file parser (config.c): every line of a
 * config file, and what a reload does with it.
 *
 * The input is parsed as a file's text onto defaults, then applied as a
 * reload onto a second default config.  Validation is left out: it reads
 * files the input names.  Invariants: every problem is reported with a
 * line within the text; nothing leaks; a SECRET value never appears in
 * a message (the input sets credentials_key to a marker, which the rest
 * of the input does not hold).
 */
#include <string.h>

#include "fuzz.h"
#include "dc.h"
#include "config.h"

#define MARKER	"FUZZ-SECRET-MARKER-9f1c"

struct seen {
	int	 lines;
	int	 marked;	/* the input holds the marker itself */
};

static void
report(void *arg, const char *file, int line, const char *msg)
{
	struct seen	*s = arg;

	FUZZ_ASSERT(line >= 0 && line <= s->lines + 1);
	FUZZ_ASSERT(s->marked || strstr(msg, MARKER) == NULL);
	(void)file;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dc_config	 a, b;
	struct seen		 s = { 1, 0 };
	char			*text, *full;
	size_t			 i;

	text = fuzz_cstring(data, size);
	s.marked = strstr(text, MARKER) != NULL;
	for (i = 0; i < size; i++)
		if (data[i] == '\n')
			s.lines++;
	/* the secret first, so a message quoting it would show */
	if ((full = malloc(size + 64)) == NULL)
		abort();
	snprintf(full, size + 64, "credentials_key = " MARKER "\n%s", text);
	s.lines++;
	if (dc_config_defaults(&a) != DC_OK) {
		free(full);
		free(text);
		return 0;
	}
	(void)dc_config_parse_text(&a, "fuzz.conf", full, report, &s);
	if (dc_config_defaults(&b) == DC_OK) {
		(void)dc_config_apply_reload(&b, &a, report, &s);
		dc_config_free(&b);
	}
	dc_config_free(&a);
	free(full);
	free(text);
	return 0;
}
