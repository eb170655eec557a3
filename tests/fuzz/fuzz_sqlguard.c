/*
 * fuzz_sqlguard.c - statement text -> verdict of the lexical guards
 * (sqlguard.c), kept for engines without a parser library: the
 * PostgreSQL reading, MySQL/MariaDB's (dc_sql_guard_mysql) and
 * ClickHouse's (dc_sql_guard_clickhouse), each on every input.
 *
 * Invariants, for each guard: an admitted statement has no NUL, a
 * known kind and a length within the input; the bytes up to that length
 * (what the driver sends) are admitted in their own right, as the same
 * kind; it is one statement: a second one after a new line is refused;
 * a refusal has a reason, a C string.  The identifier check takes any
 * string.
 */
#include <string.h>

#include "fuzz.h"
#include "dc.h"
#include "sqlguard.h"

typedef int (*guard_fn)(const char *, size_t, struct dc_sql_verdict *);

static const struct {
	const char	*name;
	guard_fn	 fn;
} guards[] = {
	{ "postgresql", dc_sql_guard },
	{ "mysql", dc_sql_guard_mysql },
	{ "clickhouse", dc_sql_guard_clickhouse },
	{ NULL, NULL }
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

static void
check(guard_fn guard, const char *name, const uint8_t *data, size_t size)
{
	static const char more[] = "\n;SELECT 1";
	struct dc_sql_verdict	 v, again;
	char			*two;

	if (guard((const char *)data, size, &v) != DC_OK) {
		FUZZ_ASSERT(v.ok == 0 && v.reason[0] != '\0' &&
		    memchr(v.reason, '\0', sizeof(v.reason)) != NULL);
		return;
	}
	FUZZ_ASSERT(v.ok == 1 && v.len > 0 && v.len <= size);
	FUZZ_ASSERT(v.kind >= DC_SQL_SELECT && v.kind <= DC_SQL_SHOW);
	FUZZ_ASSERT(memchr(data, '\0', size) == NULL);
	/*
	 * What the driver sends (the first v.len bytes) is admitted in its
	 * own right, as the same kind.  It may end sooner: MySQL reads a
	 * "--" at the very end as a comment, "----" not.
	 */
	if (guard((const char *)data, v.len, &again) != DC_OK ||
	    again.len > v.len || again.kind != v.kind) {
		fprintf(stderr, "guard %s: admitted with length %zu, kind %d; "
		    "those %zu bytes alone: length %zu, kind %d, %s\n", name,
		    v.len, v.kind, v.len, again.len, again.kind,
		    again.ok ? "admitted" : again.reason);
		abort();
	}
	/* exactly one statement: no second one can hide behind it */
	if ((two = malloc(size + sizeof(more))) == NULL)
		abort();
	memcpy(two, data, size);
	memcpy(two + size, more, sizeof(more) - 1);
	if (guard(two, size + sizeof(more) - 1, &again) == DC_OK) {
		fprintf(stderr, "guard %s admitted two statements: %.*s\n",
		    name,
		    (int)(size + sizeof(more) - 1), two);
		abort();
	}
	free(two);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	*s;
	int	 i;

	for (i = 0; guards[i].name != NULL; i++)
		check(guards[i].fn, guards[i].name, data, size);
	s = fuzz_cstring(data, size);
	(void)dc_sql_ident_ok(s);
	free(s);
	return 0;
}
