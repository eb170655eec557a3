/*
 * intent.h - the intent gate: what a chat message is before anything is
 * asked of a database or an LLM.
 *
 * DataChat answers some messages itself (orchestrator.py,
 * _classify_intent_gate and its _is_*_intent helpers; the same phrasings
 * in utils/pattern_matcher.py): a goodbye ends the session, "help" gets
 * setup help, a greeting gets a hello with example questions, a request
 * for something else (a joke, the weather) is declined, an
 * acknowledgement ("ok", "thanks") gets a clarifying question.  Only
 * data questions go on.  datachatd keeps DataChat's categories, their
 * phrasings and answer texts in one table, dc_intent_categories[], and
 * answers these without the LLM and without touching a target, so they
 * work when neither is configured.
 *
 * A message is read the way a person reads it: acknowledgements and
 * greetings in front of a question do not hide it ("thanks, now list
 * tables" is a data question, "hi, what can you do?" is setup help);
 * a greeting, an acknowledgement or a goodbye alone is what it is.
 *
 * The gate also reads a reply to a clarifying question that asked for a
 * table ("customers" after "Which table should I list columns for?")
 * and merges it with the question it answers, as DataChat's
 * _merge_query_with_table_hint does: "show columns" + "customers" is
 * "Show columns in customers".
 *
 * Pure: no I/O.  Unit-tested in tests/unit/test_intent.c.
 */
#ifndef DC_INTENT_H
#define DC_INTENT_H

#include <stddef.h>

enum dc_intent_kind {
	DC_INTENT_DATA_QUERY = 0,	/* goes on: catalog plan or the LLM */
	DC_INTENT_EXIT,
	DC_INTENT_DATAPOINT_HELP,
	DC_INTENT_SETUP_HELP,
	DC_INTENT_OUT_OF_SCOPE,
	DC_INTENT_SMALL_TALK,
	DC_INTENT_CLARIFY,
	DC_INTENT_NKINDS
};

/* Vetoes: a phrase of the category does not count when... */
enum dc_intent_flags {
	DC_INTENT_F_NOT_DATA = 1 << 0,	   /* the message has data words */
	DC_INTENT_F_NOT_CATALOG = 1 << 1,  /* it is a catalog question */
	DC_INTENT_F_WHOLE = 1 << 2,	   /* also matched before lead-ins */
};

struct dc_intent_category {
	int		 kind;		/* enum dc_intent_kind */
	const char	*name;		/* DataChat's intent_gate value */
	const char	*source;	/* answer_source */
	const char	*confidence;	/* answer_confidence, as JSON */
	const char	*answer;	/* NULL: the question goes on */
	const char	*question;	/* clarifying question, or NULL */
	unsigned	 flags;		/* enum dc_intent_flags */
	const char *const *phrases;	/* phrase.h patterns */
	const char *const *unless;	/* words that veto it, or NULL */
};

/* The table, indexed by kind. */
extern const struct dc_intent_category dc_intent_categories[DC_INTENT_NKINDS];

struct dc_intent {
	const struct dc_intent_category *cat;
	const char	*why;		/* the phrase, or how it was decided */
};

/* Classify message (NULL or "" is non-actionable: clarify). */
void		 dc_intent_classify(const char *message, struct dc_intent *out);

/*
 * DataChat's intent_gate decision for a data question: whether a catalog
 * plan answers it ("data_query_fast_path") or not ("data_query").
 */
#define DC_INTENT_FAST_PATH	"data_query_fast_path"

/* --- replies to clarifying questions --- */

/*
 * Whether questions (clarifying questions asked last, n of them) asked
 * for a table: DataChat merges a short reply only then.
 */
int		 dc_intent_asked_table(const char *const *questions, int n);

/*
 * A short reply that names something (DataChat's _is_short_followup and
 * _clean_hint): at most five words, none of show/list/count/select/
 * describe/rows/columns/help, cleaned of filler ("the", "table", "use")
 * into one name; several words are joined with '_' ("order items" is
 * order_items).  'Regarding "Which table ...?": sales' is "sales".
 * Returns 1 with the name in hint, or 0.
 */
int		 dc_intent_reply_hint(const char *message, char *hint,
		     size_t hintsz);

/*
 * The question the reply completes (DataChat's
 * _merge_query_with_table_hint): "Show N rows from T" (N from "first
 * N rows", at most 10), "Show 3 rows from T", "Show columns in T",
 * "How many rows are in T?", else the question with " Use table T.".
 * Malloc'ed, NULL when out of memory.
 */
char		*dc_intent_merge_table(const char *previous, const char *hint);

#endif /* DC_INTENT_H */
