/*
 * intent.c - the intent gate (intent.h): DataChat's categories, their
 * phrasings and answer texts in one table, and the reading of a reply to
 * a clarifying question.
 *
 * Reading a message:
 *
 *   1. Lead-ins are set aside: greetings ("hi", "good morning", "how
 *      are you"), acknowledgements ("ok", "thanks", "sure") and filler
 *      ("now", "please", "so").  What is left is the request.
 *   2. The categories are tried in DataChat's order (exit, datapoint
 *      help, setup help, out of scope, small talk) on the request; exit
 *      also on the whole message, so "no more questions" is a goodbye.
 *      A category's vetoes apply (DataChat's: out of scope only without
 *      data words; datachatd's: a catalog question is never setup help).
 *   3. Nothing left after the lead-ins: a greeting is small talk, an
 *      acknowledgement is non-actionable (clarify).
 *   4. Anything else is a data question.
 *
 * The texts are DataChat's, with datachatd's ways of connecting a
 * database in the setup help and the truth about DataPoints (datachatd
 * has none: it answers from the live schema) in the DataPoint help.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc.h"
#include "intent.h"
#include "nlq.h"
#include "phrase.h"

/* DataChat's example questions, in every answer that suggests some. */
#define EXAMPLES	"list tables, show first 5 rows of a table, or total " \
	"sales last month."

static const char *const exit_phrases[] = {
	"^ exit|quit|bye|goodbye|stop|end $",
	"never mind", "nevermind",
	"im|were|we done",		/* i'm done, we're done */
	"i am done", "done for now", "done here", "thats all", "all set",
	"talk later", "talk|see you later",
	"no more|further questions",
	"end|stop|quit|exit * chat|conversation|session",
	NULL
};

/* DataChat: not when the message asks to explain or define something */
static const char *const datapoint_phrases[] = {
	"^ show|list|view all? datapoint|datapoints",
	"^ show|list|view approved|pending|managed datapoint|datapoints",
	"^ available datapoint|datapoints",
	"^ what datapoint|datapoints are available",
	"^ what datapoint|datapoints do i have",
	"^ datapoint|datapoints list|overview",
	NULL
};
static const char *const datapoint_unless[] = { "explain", "definition",
	"meaning", "calculate", "metric", "sql", "query", NULL };

static const char *const setup_phrases[] = {
	"^ help $", "^ help me $",
	"setup", "connect", "configure", "configuration", "install",
	"api key", "credential|credentials", "database url",
	"what can you do",
	NULL
};

static const char *const out_of_scope_phrases[] = {
	"joke", "weather", "news", "sports", "movie", "music", "stock",
	"recipe", "translate", "write * email", "compose * message", "poem",
	"story",
	NULL
};

/* also lead-ins: a greeting in front of a question does not hide it */
static const char *const small_talk_phrases[] = {
	"hi", "hello", "hey", "hiya", "howdy", "greetings",
	"how are you doing? today?", "hows|how it is? going", "whats up",
	"good morning|afternoon|evening|day", "nice to meet you",
	"is? anyone|anybody there|here",
	NULL
};

/* DataChat's non-actionable utterances; lead-ins too */
static const char *const clarify_phrases[] = {
	"ok", "okay", "k", "kk", "sure", "yes", "no", "cool", "fine", "great",
	"thanks", "thank you", "thx", "alright", "continue", "next", "go on",
	"got it", "perfect", "nice", "awesome", "yeah", "yep", "yup", "nope",
	"nah",
	NULL
};

/* Words that only join lead-ins to what follows. */
static const char *const filler_phrases[] = {
	"now", "so", "then", "well", "please", "and", "also", "there",
	"again", "datachat", "datachatd", "everyone", "all", "very much",
	"so much", "a lot",
	NULL
};

const struct dc_intent_category dc_intent_categories[DC_INTENT_NKINDS] = {
	[DC_INTENT_DATA_QUERY] = {
		DC_INTENT_DATA_QUERY, "data_query", NULL, NULL, NULL, NULL,
		0, NULL, NULL },
	[DC_INTENT_EXIT] = {
		DC_INTENT_EXIT, "exit", "system", "0.8",
		"Got it. Ending the session. If you need more, just start a "
		"new chat.", NULL,
		DC_INTENT_F_WHOLE | DC_INTENT_F_NOT_CATALOG, exit_phrases,
		NULL },
	[DC_INTENT_DATAPOINT_HELP] = {
		DC_INTENT_DATAPOINT_HELP, "datapoint_help", "system", "0.8",
		"datachatd works in live schema mode: it keeps no DataPoints, "
		"and answers come from the target database's live schema and "
		"query results. To see what is there, ask: list tables, show "
		"columns in a table, or show first 5 rows of a table.", NULL,
		0, datapoint_phrases, datapoint_unless },
	[DC_INTENT_SETUP_HELP] = {
		DC_INTENT_SETUP_HELP, "setup_help", "system", "0.8",
		"To connect a database, open Settings -> Database Manager in "
		"the web app, run `datachatctl add` on the server, or POST it "
		"to /api/v1/databases. Then ask questions like: " EXAMPLES,
		NULL, DC_INTENT_F_NOT_CATALOG, setup_phrases, NULL },
	[DC_INTENT_OUT_OF_SCOPE] = {
		DC_INTENT_OUT_OF_SCOPE, "out_of_scope", "system", "0.8",
		"I can help with questions about your connected data. Try: "
		EXAMPLES, NULL,
		DC_INTENT_F_NOT_DATA, out_of_scope_phrases, NULL },
	[DC_INTENT_SMALL_TALK] = {
		DC_INTENT_SMALL_TALK, "small_talk", "system", "0.8",
		"Hi! I can help you explore your connected data. Try: "
		EXAMPLES, NULL,
		DC_INTENT_F_NOT_DATA, small_talk_phrases, NULL },
	[DC_INTENT_CLARIFY] = {
		DC_INTENT_CLARIFY, "clarify", "clarification", "0.2",
		"I need a bit more detail to help you.\n"
		"- What would you like to do with your data?",
		"What would you like to do with your data?",
		0, clarify_phrases, NULL },
};

/* DataChat's data keywords (_contains_data_keywords), as whole words. */
static const char *const data_words[] = {
	"table", "column", "row", "schema", "database", "sql", "query",
	"count", "sum", "average", "avg", "min", "max", "join", "group",
	"order", "select", "from", "data", "dataset", "warehouse",
	NULL
};

/* w, or its singular ("tables", "queries"), is one of list. */
static int
word_in(const char *w, const char *const *list)
{
	char sing[DC_WORD_LEN];
	size_t n = strlen(w);
	int i;

	dc_strlcpy(sing, w, sizeof(sing));
	if (n > 3 && strcmp(w + n - 3, "ies") == 0)
		memcpy(sing + n - 3, "y", 2);
	else if (n > 1 && w[n - 1] == 's' && w[n - 2] != 's')
		sing[n - 1] = '\0';
	for (i = 0; list[i] != NULL; i++)
		if (strcmp(w, list[i]) == 0 || strcmp(sing, list[i]) == 0)
			return 1;
	return 0;
}

static int
has_words(const struct dc_words *w, const char *const *list)
{
	int i;

	for (i = 0; list != NULL && i < w->n; i++)
		if (word_in(w->w[i], list))
			return 1;
	return 0;
}

/* The longest phrase of list at exactly word p: its end, or p. */
static int
lead_in_at(const char *const *list, const struct dc_words *w, int p)
{
	char pat[128];
	int i, e, best = p;

	for (i = 0; list[i] != NULL; i++) {
		snprintf(pat, sizeof(pat), "^ %s", list[i]);
		if (dc_phrase_find(pat, w, p, &e, NULL, 0) == p && e > best)
			best = e;
	}
	return best;
}

/*
 * Set lead-ins aside: the index of the first word of the request
 * (w->n when there is none); *greeted says a greeting was among them.
 */
static int
skip_lead_ins(const struct dc_words *w, int *greeted)
{
	int p = 0, e;

	*greeted = 0;
	while (p < w->n) {
		if ((e = lead_in_at(small_talk_phrases, w, p)) > p) {
			*greeted = 1;
			p = e;
		} else if ((e = lead_in_at(clarify_phrases, w, p)) > p ||
		    (e = lead_in_at(filler_phrases, w, p)) > p)
			p = e;
		else
			break;
	}
	return p;
}

/* A phrase of category c in w from word from, vetoes aside. */
static const char *
category_phrase(const struct dc_intent_category *c, const struct dc_words *w,
    int from)
{
	int i;

	for (i = 0; c->phrases[i] != NULL; i++)
		if (dc_phrase_find(c->phrases[i], w, from, NULL, NULL, 0) >= 0)
			return c->phrases[i];
	return NULL;
}

void
dc_intent_classify(const char *message, struct dc_intent *out)
{
	static const int order[] = { DC_INTENT_EXIT, DC_INTENT_DATAPOINT_HELP,
	    DC_INTENT_SETUP_HELP, DC_INTENT_OUT_OF_SCOPE, DC_INTENT_SMALL_TALK };
	const struct dc_intent_category *c;
	struct dc_nlq_intent nlq;
	struct dc_words *w;
	const char *phrase;
	int start, greeted, catalog = -1, k;

	out->cat = &dc_intent_categories[DC_INTENT_DATA_QUERY];
	out->why = "a data question";
	if ((w = malloc(sizeof(*w))) == NULL)
		return;		/* the question goes on: nothing is lost */
	dc_words_split(message, 0, w);
	if (w->n == 0) {
		out->cat = &dc_intent_categories[DC_INTENT_CLARIFY];
		out->why = "nothing to act on";
		goto out;
	}
	start = skip_lead_ins(w, &greeted);
	for (k = 0; k < (int)DC_ARRAY_SIZE(order); k++) {
		c = &dc_intent_categories[order[k]];
		if ((phrase = category_phrase(c, w, start)) == NULL &&
		    (!(c->flags & DC_INTENT_F_WHOLE) ||
		    (phrase = category_phrase(c, w, 0)) == NULL))
			continue;
		if ((c->flags & DC_INTENT_F_NOT_DATA) && has_words(w, data_words))
			continue;
		if (c->unless != NULL && has_words(w, c->unless))
			continue;
		if (c->flags & DC_INTENT_F_NOT_CATALOG) {
			if (catalog < 0) {
				dc_nlq_classify(message, &nlq);
				catalog = nlq.kind != DC_NLQ_NONE;
			}
			if (catalog)
				continue;
		}
		out->cat = c;
		out->why = phrase;
		goto out;
	}
	if (start == w->n) {
		out->cat = &dc_intent_categories[greeted ? DC_INTENT_SMALL_TALK :
		    DC_INTENT_CLARIFY];
		out->why = greeted ? "a greeting alone" :
		    "an acknowledgement alone";
	}
out:
	free(w);
}

/* --- replies to clarifying questions --- */

int
dc_intent_asked_table(const char *const *questions, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (questions[i] != NULL && strcasestr(questions[i], "table"))
			return 1;
	return 0;
}

int
dc_intent_reply_hint(const char *message, char *hint, size_t hintsz)
{
	static const char *const disallowed[] = { "show", "list", "count",
	    "select", "describe", "rows", "columns", "help", NULL };
	static const char *const filler[] = { "table", "column", "field",
	    "use", "the", "a", "an", "any", "which", "what", "how", "should",
	    "show", "list", "rows", "columns", "for", "i", "to", "do", "we",
	    NULL };
	const char *colon, *text = message != NULL ? message : "";
	struct dc_words *w;
	size_t off = 0;
	int i, k, kept = 0, found = 0;

	if (hintsz > 0)
		hint[0] = '\0';
	/* 'Regarding "Which table should I use?": sales' */
	if ((colon = strrchr(text, ':')) != NULL)
		text = colon + 1;
	if ((w = malloc(sizeof(*w))) == NULL)
		return 0;
	dc_words_split(text, 1, w);
	if (w->n == 0 || w->n > 5)
		goto out;
	for (i = 0; i < w->n; i++)
		for (k = 0; disallowed[k] != NULL; k++)
			if (strcmp(w->w[i], disallowed[k]) == 0)
				goto out;
	for (i = 0; i < w->n; i++) {
		for (k = 0; filler[k] != NULL; k++)
			if (strcmp(w->w[i], filler[k]) == 0)
				break;
		if (filler[k] != NULL)
			continue;
		if (++kept > 3)
			goto out;
		off += (size_t)snprintf(hint + off, off < hintsz ?
		    hintsz - off : 0, "%s%s", kept > 1 ? "_" : "", w->w[i]);
	}
	found = kept > 0 && off < hintsz;
out:
	if (!found && hintsz > 0)
		hint[0] = '\0';
	free(w);
	return found;
}

char *
dc_intent_merge_table(const char *previous, const char *hint)
{
	struct dc_words *w;
	char num[DC_WORD_LEN], *out = NULL;
	const char *base = previous != NULL ? previous : "";
	size_t len;
	long n;
	int e, rc;

	if ((w = malloc(sizeof(*w))) == NULL)
		return NULL;
	dc_words_split(base, 1, w);
	if (dc_phrase_find("first|top|limit|show # row|rows", w, 0, &e, num,
	    sizeof(num)) >= 0) {
		n = strtol(num, NULL, 10);
		rc = asprintf(&out, "Show %ld rows from %s", n < 1 ? 1 :
		    n > 10 ? 10 : n, hint);
	} else if (dc_phrase_find("show|sample|preview * row|rows", w, 0, NULL,
	    NULL, 0) >= 0)
		rc = asprintf(&out, "Show 3 rows from %s", hint);
	else if (strcasestr(base, "column") || strcasestr(base, "fields"))
		rc = asprintf(&out, "Show columns in %s", hint);
	else if (dc_phrase_find("row count", w, 0, NULL, NULL, 0) >= 0 ||
	    dc_phrase_find("how many rows", w, 0, NULL, NULL, 0) >= 0 ||
	    dc_phrase_find("record|records", w, 0, NULL, NULL, 0) >= 0)
		rc = asprintf(&out, "How many rows are in %s?", hint);
	else {
		len = strlen(base);
		while (len > 0 && (base[len - 1] == '.' || base[len - 1] == ' '))
			len--;
		rc = asprintf(&out, "%.*s Use table %s.", (int)len, base, hint);
	}
	free(w);
	return rc < 0 ? NULL : out;
}
