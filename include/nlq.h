/*
 * nlq.h - the pure steps of the natural-language pipeline: recognising
 * catalog questions and planning their SQL the way DataChat's
 * CatalogIntelligence does (database/catalog.py: list tables, list
 * columns, sample rows, row count, answered by a statement datachatd
 * writes, never by the LLM), the answer texts DataChat's executor writes
 * for them, finding the table a question names in a schema snapshot,
 * pulling one SQL statement out of an LLM reply, and finding table names
 * close to a misspelt one.  No I/O here, so all of it is unit-tested.
 */
#ifndef DC_NLQ_H
#define DC_NLQ_H

#include <stddef.h>

struct dc_dialect;
struct dc_schema;
struct dc_schema_table;

enum dc_nlq_kind {
	DC_NLQ_NONE = 0,	/* not a catalog question: ask the LLM */
	DC_NLQ_LIST_TABLES,
	DC_NLQ_COLUMNS,		/* columns of table */
	DC_NLQ_ROW_COUNT,	/* rows in table */
	DC_NLQ_SAMPLE,		/* first n rows of table */
};

/* DataChat caps a sample at 10 rows and shows 3 when not told. */
#define DC_NLQ_SAMPLE_DEFAULT	3
#define DC_NLQ_SAMPLE_MAX	10

#define DC_NLQ_NAME_MAX		130	/* "schema.table", NUL included */

struct dc_nlq_intent {
	int		 kind;
	char		 table[DC_NLQ_NAME_MAX];	/* as written, maybe
					   schema.table; "" when none */
	int		 limit;		/* DC_NLQ_SAMPLE */
};

/*
 * Classify a question.  Always succeeds; kind NONE means "ask the LLM".
 * A catalog question that names no table has kind set and table "".
 */
void		 dc_nlq_classify(const char *message, struct dc_nlq_intent *in);

/* DataChat's operation name for kind: "list_tables", "list_columns",
   "sample_rows", "row_count" (NULL for NONE). */
const char	*dc_nlq_operation(int kind);

/* DataChat's clarifying question when kind names no table, or NULL. */
const char	*dc_nlq_question(int kind);

/*
 * The statement answering kind for table (in schema; NULL only where
 * the engine has no schemas, and never for columns), into *out
 * (malloc'ed).  0, DC_EINVAL (a name the statement cannot carry safely)
 * or DC_ENOMEM.
 */
int		 dc_nlq_sql(const struct dc_dialect *d, int kind,
		     const char *schema, const char *table, int limit,
		     char **out);

/*
 * schema.table as DataChat's statements write it: each part bare when it
 * is a lower-case identifier that is not reserved, else quoted.
 */
void		 dc_nlq_qualify(const struct dc_dialect *d,
		     const char *schema, const char *table, char *out,
		     size_t outsz);

/*
 * The answer text DataChat's executor writes for a catalog statement's
 * result (_generate_deterministic_summary): nrows rows; names (n of
 * them, the first ten are enough) are the tables ("schema.table") or the
 * columns listed; value is the count.  table is the name shown.
 * Malloc'ed.
 */
char		*dc_nlq_answer(int kind, const char *table, int nrows,
		     const char *const *names, int n, const char *value);

/* What dc_nlq_find() found. */
enum dc_nlq_found {
	DC_NLQ_FOUND = 0,
	DC_NLQ_MISSING,		/* no table of that name */
	DC_NLQ_AMBIGUOUS,	/* several schemas have one: *out is the
				   first, *nmatch says how many */
};

/*
 * The table name ("t" or "schema.t", case-insensitive) means in s: a
 * qualified name is that table; a bare one is the table of that name
 * in default_schema ("public"; may be NULL), else the only table of
 * that name in any schema.
 */
int		 dc_nlq_find(const struct dc_schema *s, const char *name,
		     const char *default_schema,
		     const struct dc_schema_table **out, int *nmatch);

/*
 * Extract the SQL from an LLM reply: a JSON object with a "sql" field, a
 * fenced ```sql block, or the plain text.  Returns a malloc'ed string
 * (trimmed, without a trailing ';') or NULL when there is none.
 */
char		*dc_nlq_extract_sql(const char *reply);

/* Edit distance, case-insensitive, capped at 64 characters per side. */
int		 dc_nlq_distance(const char *a, const char *b);

#endif /* DC_NLQ_H */
