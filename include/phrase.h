/*
 * phrase.h - words of a question, and word patterns over them.
 *
 * DataChat recognises what a message asks for with regular expressions
 * over its lower-cased text ("\bhow many rows\b", "^(show|list) data
 * ?points?").  datachatd keeps those phrasings in tables (intent.c,
 * nlq.c) written in a small pattern language over words instead, so
 * that a table reads like the phrasings it holds and one matcher serves
 * them all:
 *
 *   word        the word itself ("rows")
 *   a|b|c       any one of them
 *   word?       optional (also "a|b?")
 *   *           any number of words, none included (shortest first)
 *   #           a number ("10")
 *   @           a name (a table, "public.orders"): any word that is not
 *               a number
 *               (the word the first # or @ of a pattern matched is
 *               captured)
 *   ^  $        first / last: the match starts at the first word / ends
 *               at the last one
 *
 * Words are what dc_words_split() makes: lower case, apostrophes dropped
 * (so "let's" is "lets" and "i'm" is "im"), "data point(s)" joined into
 * "datapoint(s)", everything else that is not a letter, a digit or '_'
 * a separator, except '.' inside a word when dots are kept (names like
 * "information_schema.tables").  Pure, unit-tested in test_intent.c and
 * test_nlq.c.
 */
#ifndef DC_PHRASE_H
#define DC_PHRASE_H

#include <stddef.h>

#define DC_WORDS_MAX	96	/* words kept of a message */
#define DC_WORD_LEN	128	/* bytes of one word, NUL included */

struct dc_words {
	int	 n;
	char	 w[DC_WORDS_MAX][DC_WORD_LEN];
};

/* Split text into words (see above); keep_dots keeps '.' inside words. */
void		 dc_words_split(const char *text, int keep_dots,
		     struct dc_words *out);

/*
 * Find pattern in words w[from..n).  Returns the index of the first word
 * of the first match (the leftmost start), or -1.  *end (optional)
 * gets the index after its last word; the word the first # or @ matched
 * is copied into capture (optional, "" when none).
 */
int		 dc_phrase_find(const char *pattern, const struct dc_words *w,
		     int from, int *end, char *capture, size_t capsz);

/* Whether any pattern of a NULL-terminated list is found in w. */
int		 dc_phrase_any(const char *const *patterns,
		     const struct dc_words *w, const char **which);

/* Whether s is all digits (and not empty). */
int		 dc_word_is_number(const char *s);

#endif /* DC_PHRASE_H */
