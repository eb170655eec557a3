/*
 * nlq.h - the pure steps of the natural-language pipeline: recognising
 * catalog questions (answered from the target's catalog without an LLM),
 * pulling one SQL statement out of an LLM reply, and finding table names
 * close to a misspelt one.  No I/O here, so all of it is unit-tested.
 */
#ifndef DC_NLQ_H
#define DC_NLQ_H

#include <stddef.h>

enum dc_nlq_kind {
	DC_NLQ_NONE = 0,	/* not a catalog question: ask the LLM */
	DC_NLQ_LIST_TABLES,
	DC_NLQ_COLUMNS,		/* columns of table */
	DC_NLQ_ROW_COUNT,	/* rows in table */
	DC_NLQ_SAMPLE,		/* first n rows of table */
};

struct dc_nlq_intent {
	int		 kind;
	char		 table[128];	/* as the user wrote it, maybe schema.table */
	int		 limit;		/* DC_NLQ_SAMPLE */
};

/* Classify a question.  Always succeeds; kind NONE means "ask the LLM". */
void		 dc_nlq_classify(const char *message, struct dc_nlq_intent *in);

/*
 * Extract the SQL from an LLM reply: a JSON object with a "sql" field, a
 * fenced ```sql block, or the plain text.  Returns a malloc'ed string
 * (trimmed, without a trailing ';') or NULL when there is none.
 */
char		*dc_nlq_extract_sql(const char *reply);

/* Edit distance, case-insensitive, capped at 64 characters per side. */
int		 dc_nlq_distance(const char *a, const char *b);

#endif /* DC_NLQ_H */
