/*
 * fuzz_pgguard.c - statement text -> verdict: the parser-based guard
 * (pgguard.c) and the function policy (pgpolicy.c) on a small catalog
 * that has a bit of everything (overloads, a deny-listed function, a
 * DBA's VOLATILE function, an operator, a domain, views).
 *
 * Invariants: a verdict is always given; an admitted statement's length
 * is within the input; a refusal names a node and a reason, both clean
 * UTF-8 without control characters (they reach JSON and logs).  And
 * the verdict cache's shape: each literal it stands for is one string
 * or number constant token of PostgreSQL's own scanner (digits too many
 * for an integer make a numeric one), so statements of one shape differ
 * only in constants.
 */
#include <string.h>

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include "fuzz.h"
#include "dc.h"
#include "pgguard.h"
#include "pgpolicy.h"

static struct dc_pgcat *cat;

static const char *const rows[][DC_PGCAT_COLUMNS] = {
	{ "p", "1", "pg_catalog", "now", "s", "f", "internal", "0", "0",
	  "0", "0", "0", NULL, NULL },
	{ "p", "2", "pg_catalog", "lower", "i", "f", "internal", "0", "0",
	  "1", "0", "0", NULL, NULL },
	{ "p", "3", "pg_catalog", "pg_advisory_lock", "v", "f", "internal",
	  "0", "0", "1", "0", "0", NULL, NULL },
	{ "p", "4", "pg_catalog", "count", "i", "a", "internal", "0", "0",
	  "1", "0", "0", "{5,0}", NULL },
	{ "p", "5", "pg_catalog", "int8inc", "i", "f", "internal", "0", "0",
	  "1", "0", "0", NULL, NULL },
	{ "p", "6", "pg_catalog", "int4eq", "i", "f", "internal", "0", "0",
	  "2", "0", "0", NULL, NULL },
	{ "p", "7", "pg_catalog", "concat", "s", "f", "internal", "0", "0",
	  "1", "0", "1", NULL, NULL },
	{ "p", "16384", "public", "mark_seen", "v", "f", "plpgsql", "1", "0",
	  "0", "0", "0", NULL, NULL },
	{ "p", "16385", "public", "lower", "s", "f", "sql", "1", "1",
	  "2", "1", "0", NULL, NULL },
	{ "o", "10", "pg_catalog", "=", "b", "6", NULL, NULL, NULL, NULL,
	  NULL, NULL, NULL, NULL },
	{ "o", "11", "pg_catalog", "<", "b", "6", NULL, NULL, NULL, NULL,
	  NULL, NULL, NULL, NULL },
	{ "o", "12", "pg_catalog", ">", "b", "6", NULL, NULL, NULL, NULL,
	  NULL, NULL, NULL, NULL },
	{ "o", "13", "pg_catalog", "<>", "b", "6", NULL, NULL, NULL, NULL,
	  NULL, NULL, NULL, NULL },
	{ "c", "20", NULL, NULL, "23", "16384", NULL, NULL, NULL, NULL, NULL,
	  NULL, NULL, NULL },
	{ "t", "23", "pg_catalog", "int4", "2", "0", NULL, NULL, NULL, NULL,
	  NULL, NULL, NULL, NULL },
	{ "t", "25", "pg_catalog", "text", "2", "0", NULL, NULL, NULL, NULL,
	  NULL, NULL, NULL, NULL },
	{ "t", "16390", "public", "posint", "2", "23", NULL, NULL, NULL, NULL,
	  NULL, NULL, NULL, "SELECT (VALUE > 0), (lower(VALUE) = 'x')" },
	{ "r", "16400", "public", "v", "v", NULL, NULL, NULL, NULL, NULL,
	  NULL, NULL, NULL, " SELECT now() AS n, * FROM w;" },
	{ "r", "16401", "public", "w", "v", NULL, NULL, NULL, NULL, NULL,
	  NULL, NULL, NULL, " SELECT pg_advisory_lock(1) FROM v;" },
	{ "r", "16402", "public", "ft", "f", NULL, NULL, NULL, NULL, NULL,
	  NULL, NULL, NULL, NULL },
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	size_t	 i;

	if ((cat = dc_pgcat_new()) == NULL)
		abort();
	for (i = 0; i < DC_ARRAY_SIZE(rows); i++)
		FUZZ_ASSERT(dc_pgcat_add_row(cat, rows[i]) == DC_OK);
	FUZZ_ASSERT(dc_pgcat_finish(cat) == DC_OK);
	return 0;
}

/* The end of the literal the shape marks at i (see dc_pgguard_shape). */
static size_t
literal_end(const char *s, size_t len, size_t i)
{
	if (s[i] == '\'') {
		for (i++; i < len; i++) {
			if (s[i] == '\'' && i + 1 < len && s[i + 1] == '\'')
				i++;
			else if (s[i] == '\'')
				return i + 1;
		}
		return len;
	}
	while (i < len && s[i] >= '0' && s[i] <= '9')
		i++;
	return i;
}

static void
check_shape(const uint8_t *data, size_t size)
{
	PgQueryScanResult	 sr;
	PgQuery__ScanResult	*scan;
	char			 shape[8192], *text;
	size_t			 i = 0, k, end, t;
	int			 n, found;

	if (size >= sizeof(shape) ||
	    (n = dc_pgguard_shape((const char *)data, size, shape,
	    sizeof(shape))) < 0)
		return;
	text = fuzz_cstring(data, size);
	sr = pg_query_scan(text);
	scan = sr.error == NULL ? pg_query__scan_result__unpack(NULL,
	    sr.pbuf.len, (const uint8_t *)sr.pbuf.data) : NULL;
	for (k = 0; k < (size_t)n; k++) {
		if (shape[k] != '\x01') {
			FUZZ_ASSERT(i < size && shape[k] == text[i]);
			i++;
			continue;
		}
		end = literal_end(text, size, i);
		if (scan != NULL) {
			for (t = 0, found = 0; t < scan->n_tokens; t++) {
				PgQuery__ScanToken *tk = scan->tokens[t];

				/* a string: inside one string constant ('a'
				   newline 'b' is one, in the shape too) */
				if (text[i] == '\'' &&
				    tk->token == PG_QUERY__TOKEN__SCONST &&
				    (size_t)tk->start <= i &&
				    end <= (size_t)tk->end)
					found = 1;
				if (text[i] != '\'' && (size_t)tk->start == i &&
				    (size_t)tk->end == end &&
				    (tk->token == PG_QUERY__TOKEN__ICONST ||
				    tk->token == PG_QUERY__TOKEN__FCONST))
					found = 1;
			}
			FUZZ_ASSERT(found);
		}
		i = end;
	}
	FUZZ_ASSERT(i == size);
	if (scan != NULL)
		pg_query__scan_result__free_unpacked(scan, NULL);
	pg_query_free_scan_result(sr);
	free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dc_pgstmt	*st = NULL;
	struct dc_pg_refusal	 ref;
	char			 buf[1024];
	int			 rc, unusual = -1;

	check_shape(data, size);
	rc = dc_pgguard_parse((const char *)data, size, &st, &ref);
	if (rc == DC_ENOMEM)
		return 0;
	if (rc == DC_OK) {
		FUZZ_ASSERT(st != NULL && st->len <= size);
		FUZZ_ASSERT(st->kind >= DC_PGSTMT_SELECT &&
		    st->kind <= DC_PGSTMT_SHOW);
		rc = dc_pgpolicy_check(cat, st, (const char *)data, size, &ref,
		    &unusual);
		FUZZ_ASSERT(rc == DC_OK || rc == DC_EINVAL || rc == DC_ENOENT);
		FUZZ_ASSERT(rc != DC_OK || unusual == 0 || unusual == 1);
		dc_pgguard_free(st);
		if (rc == DC_OK)
			return 0;
	}
	FUZZ_ASSERT(rc == DC_EINVAL || rc == DC_ENOENT);
	FUZZ_ASSERT(ref.node[0] != '\0' && ref.reason[0] != '\0');
	FUZZ_ASSERT(fuzz_clean_text(ref.node) && fuzz_clean_text(ref.reason));
	FUZZ_ASSERT(ref.pos >= 0 && (size_t)ref.pos <= size + 1);
	dc_pgguard_describe(&ref, buf, sizeof(buf));
	return 0;
}
