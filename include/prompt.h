/*
 * prompt.h - what the LLM is told: the dialect, the rules (one read-only
 * statement), the live schema of the chosen target ranked by relevance to
 * the question and trimmed to a budget, the conversation so far, and on a
 * correction round the failed SQL with the database's error.  Pure text
 * building, unit-tested.
 */
#ifndef DC_PROMPT_H
#define DC_PROMPT_H

#include <stddef.h>

#include "schema.h"

/* Rough characters per token, for budgets given in tokens. */
#define DC_PROMPT_CHARS_PER_TOKEN	4
#define DC_PROMPT_SCHEMA_TOKENS		6000

/*
 * The system prompt for a target of this dialect (driver.h: its name and
 * its own rules, "- ...\n" lines, may be NULL).  Malloc'ed.
 */
char		*dc_prompt_system(const char *dialect, const char *rules);

/*
 * The user prompt: schema context (at most budget characters of it, most
 * relevant tables first), the question, and when prev_sql is given the
 * correction request with error.  Malloc'ed.  *ntables_out (optional)
 * says how many tables made it into the budget.
 */
char		*dc_prompt_user(const struct dc_schema *s, const char *question,
		     const char *prev_sql, const char *error, size_t budget,
		     int *ntables_out);

/*
 * The same with the conversation so far (context, from convo.h; NULL:
 * none) between the schema and the question, counted in budget, and
 * tables also ranked by rank_hint (what the question follows up on).
 */
char		*dc_prompt_user_ctx(const struct dc_schema *s,
		     const char *question, const char *context,
		     const char *rank_hint, size_t budget, int *ntables_out);

/* Relevance of one table to a question (higher first); for the tests. */
int		 dc_prompt_score(const struct dc_schema_table *t,
		     const char *question);

#endif /* DC_PROMPT_H */
