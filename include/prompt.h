/*
 * prompt.h - what the LLM is told: the dialect, the rules (one read-only
 * statement), the live schema of the chosen target ranked by what the
 * question needs, the conversation so far, and on a correction round the
 * failed SQL with the database's error.  Pure text building,
 * unit-tested.
 *
 * Ranking.  Every table of the snapshot gets a relevance to the question:
 *
 *   1. its words: a question word (singular or plural, "ordered" is
 *      "order", "monthly" is "month") that is the table's name, a piece
 *      of it (snake_case and camelCase pieces: order_items is "order"
 *      and "item"; two question words may name it together, "order
 *      items"), a column's name or a piece of it; a synonym counts at a
 *      fraction (revenue/amount/price/total/sales, customer/client/user,
 *      date/time/at/month/..., and a few more groups), and a word that
 *      many tables have counts less (its weight falls with the number of
 *      tables it matches, as in information retrieval's idf);
 *   2. its foreign keys: a table one foreign key away from a table that
 *      matched, in either direction, gets a share of that table's score
 *      (rank_fk percent), two keys away the share of the share, summed
 *      over the tables that matched, so the table that joins two matches
 *      ranks next to them;
 *   3. the rest have no relevance and are ordered by how central they are
 *      (tables referencing them, then rows).
 *
 * Tables whose relevance is at least rank_min_relevance percent of the
 * best one are written with their columns, most relevant first, at most
 * rank_max_tables of them and within the budget (a wide table loses
 * columns rather than its place); the others follow as names only, the
 * relevant ones first, then the most central, within a budget of their
 * own, and the prompt says how many it left out.  The
 * weights and both budgets come from the configuration (rank_* and
 * prompt_* keys, datachatd.conf(5)).
 */
#ifndef DC_PROMPT_H
#define DC_PROMPT_H

#include <stddef.h>

#include "schema.h"

/* Rough characters per token, for budgets given in tokens. */
#define DC_PROMPT_CHARS_PER_TOKEN	4
#define DC_PROMPT_SCHEMA_TOKENS		6000
#define DC_PROMPT_NAMES_TOKENS		1000

/* The ranking's weights; the configuration's rank_* keys. */
struct dc_rank_weights {
	int	 name;		/* a question word is the table's name */
	int	 piece;		/* ... a piece of the table's name */
	int	 column;	/* ... a column's name or a piece of it */
	int	 synonym;	/* percent of the above for a synonym */
	int	 fk;		/* percent of a match's score per FK hop */
	int	 fk_hops;	/* 0, 1 or 2 */
	int	 inbound;	/* centrality per table referencing it */
	int	 rows;		/* centrality per power of ten of rows */
	int	 min_relevance;	/* percent of the best: columns shown */
	int	 max_tables;	/* most tables shown with their columns */
};

extern const struct dc_rank_weights dc_rank_defaults;

struct dc_config;
struct dc_prompt_in;

/*
 * The weights, the budgets (in characters) and the rest of in's tuning
 * from the configuration's rank_* and prompt_* keys; w is where the
 * weights are kept (in->weights points at it).
 */
void		 dc_prompt_configure(const struct dc_config *cfg,
		     struct dc_rank_weights *w, struct dc_prompt_in *in);

/* "match", "fk" or "rest", for the trace. */
const char	*dc_rank_tier_name(int tier);

enum dc_rank_tier {
	DC_RANK_MATCH = 1,	/* the question's words match it */
	DC_RANK_FK,		/* linked to matches by foreign keys */
	DC_RANK_REST,		/* neither: by centrality */
};

/* One table's place. */
struct dc_rank {
	int		 idx;		/* into the snapshot's tables */
	int		 tier;		/* enum dc_rank_tier */
	double		 score;		/* relevance, or centrality (REST) */
	char		 why[120];	/* what put it there, for the trace */
};

/*
 * Rank the tables of s for question, with hint (what the question
 * follows up on: the previous question and its SQL; may be NULL) at
 * half weight.  *out gets s->ntables entries (malloc'ed), best first;
 * w NULL means dc_rank_defaults.  0 or DC_ENOMEM.
 */
int		 dc_prompt_rank(const struct dc_schema *s, const char *question,
		     const char *hint, const struct dc_rank_weights *w,
		     struct dc_rank **out);

/*
 * The system prompt for a target of this dialect (driver.h: its name and
 * its own rules, "- ...\n" lines, may be NULL).  Malloc'ed.
 */
char		*dc_prompt_system(const char *dialect, const char *rules);

struct dc_prompt_in {
	const struct dc_schema *schema;		/* may be NULL */
	const char	*question;
	const char	*hint;		/* for the ranking, or NULL */
	const char	*context;	/* conversation so far, or NULL */
	const char	*prev_sql;	/* correction round, or NULL */
	const char	*error;		/* ... and its error */
	size_t		 budget;	/* characters: tables with columns,
					   and the context */
	size_t		 names_budget;	/* characters: names only */
	const struct dc_rank_weights *weights;	/* NULL: the defaults */
};

struct dc_prompt_out {
	int		 ntables;	/* tables written with columns */
	int		 nnames;	/* tables written by name only */
	struct dc_rank	*rank;		/* the ranking (malloc'ed), or NULL */
	int		 nrank;
};

/*
 * The user prompt: the schema ranked as above, the context, the
 * question, and when prev_sql is given the correction request with
 * error.  Malloc'ed, NULL when out of memory.  out (optional) says what
 * went in; free out->rank.
 */
char		*dc_prompt_build(const struct dc_prompt_in *in,
		     struct dc_prompt_out *out);

/*
 * The same with the default weights, budget characters for the tables
 * with columns and DC_PROMPT_NAMES_TOKENS for names.  *ntables_out
 * (optional) says how many tables went in with their columns.
 */
char		*dc_prompt_user(const struct dc_schema *s, const char *question,
		     const char *prev_sql, const char *error, size_t budget,
		     int *ntables_out);

#endif /* DC_PROMPT_H */
