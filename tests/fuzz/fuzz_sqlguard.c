/*
 * fuzz_sqlguard.c - statement text -> verdict of the lexical guard
 * (sqlguard.c), kept for engines without a parser library.
 *
 * Invariants: an admitted statement's length is within the input and
 * its kind is known; a refusal has a reason; the identifier check takes
 * any string.
 */
#include <string.h>

#include "fuzz.h"
#include "dc.h"
#include "sqlguard.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dc_sql_verdict	 v;
	char			*s;

	if (dc_sql_guard((const char *)data, size, &v) == DC_OK) {
		FUZZ_ASSERT(v.ok == 1 && v.len <= size);
		FUZZ_ASSERT(v.kind >= DC_SQL_SELECT && v.kind <= DC_SQL_SHOW);
	} else
		FUZZ_ASSERT(v.ok == 0 && v.reason[0] != '\0' &&
		    memchr(v.reason, '\0', sizeof(v.reason)) != NULL);
	s = fuzz_cstring(data, size);
	(void)dc_sql_ident_ok(s);
	free(s);
	return 0;
}
