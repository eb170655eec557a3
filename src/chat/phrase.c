/*
 * phrase.c - words of a question and the word-pattern matcher (phrase.h).
 *
 * Patterns are short (a handful of words) and messages are cut at
 * DC_WORDS_MAX words, so the matcher simply backtracks: a pattern is
 * split into its words on each call and tried at each start position.
 */
#include <ctype.h>
#include <string.h>

#include "dc.h"
#include "phrase.h"

#define PAT_MAX		16	/* words of one pattern */
#define PAT_WORD	64

static int
word_char(unsigned char c, int keep_dots)
{
	/* bytes of UTF-8 sequences belong to the word they are in */
	return isalnum(c) || c == '_' || c >= 0x80 || (keep_dots && c == '.');
}

static int
apostrophe(const char *s)
{
	if (*s == '\'' || *s == '`')
		return 1;
	if ((unsigned char)s[0] == 0xe2 && (unsigned char)s[1] == 0x80 &&
	    ((unsigned char)s[2] == 0x99 || (unsigned char)s[2] == 0x98))
		return 3;	/* ’ and ‘ */
	return 0;
}

void
dc_words_split(const char *text, int keep_dots, struct dc_words *out)
{
	const char *s = text != NULL ? text : "";
	size_t len;
	int k, i;

	out->n = 0;
	while (*s != '\0' && out->n < DC_WORDS_MAX) {
		while (*s != '\0' && !word_char((unsigned char)*s, 0))
			s++;
		if (*s == '\0')
			break;
		len = 0;
		for (;;) {
			if ((k = apostrophe(s)) > 0 && len > 0 &&
			    word_char((unsigned char)s[k], 0)) {
				s += k;		/* "let's" -> "lets" */
				continue;
			}
			if (*s == '\0' || !word_char((unsigned char)*s,
			    keep_dots))
				break;
			if (len + 1 < DC_WORD_LEN)
				out->w[out->n][len++] = (char)tolower(
				    (unsigned char)*s);
			s++;
		}
		while (len > 0 && out->w[out->n][len - 1] == '.')
			len--;		/* a sentence's full stop */
		out->w[out->n][len] = '\0';
		if (len > 0)
			out->n++;
	}
	/* "data point(s)" is DataChat's "datapoint(s)" */
	for (i = 0; i + 1 < out->n; i++) {
		if (strcmp(out->w[i], "data") != 0 ||
		    (strcmp(out->w[i + 1], "point") != 0 &&
		    strcmp(out->w[i + 1], "points") != 0))
			continue;
		dc_strlcpy(out->w[i], out->w[i + 1][5] == 's' ? "datapoints" :
		    "datapoint", DC_WORD_LEN);
		memmove(&out->w[i + 1], &out->w[i + 2],
		    sizeof(out->w[0]) * (size_t)(out->n - i - 2));
		out->n--;
	}
}

int
dc_word_is_number(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return 1;
}

struct pat {
	int	 n;
	int	 anchor_start, anchor_end;
	char	 t[PAT_MAX][PAT_WORD];
};

static void
pat_parse(const char *pattern, struct pat *p)
{
	const char *s = pattern;
	size_t len;

	p->n = 0;
	p->anchor_start = p->anchor_end = 0;
	while (*s != '\0' && p->n < PAT_MAX) {
		while (*s == ' ')
			s++;
		if (*s == '\0')
			break;
		for (len = 0; s[len] != '\0' && s[len] != ' '; len++)
			;
		if (len == 1 && *s == '^' && p->n == 0)
			p->anchor_start = 1;
		else if (len == 1 && *s == '$')
			p->anchor_end = 1;
		else {
			if (len >= PAT_WORD)
				len = PAT_WORD - 1;
			memcpy(p->t[p->n], s, len);
			p->t[p->n][len] = '\0';
			p->n++;
		}
		s += len;
		while (*s != '\0' && *s != ' ')
			s++;	/* the rest of an over-long word */
	}
}

/* Whether word is one of the alternatives of tok ("a|b|c", maybe "?"). */
static int
alt_match(const char *tok, const char *word)
{
	const char *a = tok, *bar;
	size_t len, wl = strlen(word);

	for (;;) {
		bar = strchr(a, '|');
		len = bar != NULL ? (size_t)(bar - a) : strlen(a);
		if (bar == NULL && len > 0 && a[len - 1] == '?')
			len--;
		if (len == wl && memcmp(a, word, len) == 0)
			return 1;
		if (bar == NULL)
			return 0;
		a = bar + 1;
	}
}

/* Match p->t[pi..] at w->w[wi..]; the end index, or -1. */
static int
match(const struct pat *p, int pi, const struct dc_words *w, int wi,
    int *cap)
{
	const char *tok;
	size_t tl;
	int k, e;

	if (pi == p->n)
		return !p->anchor_end || wi == w->n ? wi : -1;
	tok = p->t[pi];
	tl = strlen(tok);
	if (strcmp(tok, "*") == 0) {
		for (k = wi; k <= w->n; k++)
			if ((e = match(p, pi + 1, w, k, cap)) >= 0)
				return e;
		return -1;
	}
	if (wi < w->n) {
		int ok;

		if (strcmp(tok, "#") == 0)
			ok = dc_word_is_number(w->w[wi]);
		else if (strcmp(tok, "@") == 0)
			ok = !dc_word_is_number(w->w[wi]);
		else
			ok = alt_match(tok, w->w[wi]);
		if (ok && (e = match(p, pi + 1, w, wi + 1, cap)) >= 0) {
			/* unwinding: the first # or @ is set last */
			if (strcmp(tok, "@") == 0 || strcmp(tok, "#") == 0)
				*cap = wi;
			return e;
		}
	}
	if (tl > 1 && tok[tl - 1] == '?')
		return match(p, pi + 1, w, wi, cap);
	return -1;
}

int
dc_phrase_find(const char *pattern, const struct dc_words *w, int from,
    int *end, char *capture, size_t capsz)
{
	struct pat p;
	int start, e, cap;

	pat_parse(pattern, &p);
	if (capture != NULL && capsz > 0)
		capture[0] = '\0';
	for (start = from; start <= w->n; start++) {
		cap = -1;
		if ((e = match(&p, 0, w, start, &cap)) >= 0 &&
		    (e > start || p.n == 0 || p.anchor_end)) {
			if (end != NULL)
				*end = e;
			if (cap >= 0 && capture != NULL)
				dc_strlcpy(capture, w->w[cap], capsz);
			return start;
		}
		if (p.anchor_start)
			break;
	}
	return -1;
}

int
dc_phrase_any(const char *const *patterns, const struct dc_words *w,
    const char **which)
{
	int i;

	for (i = 0; patterns != NULL && patterns[i] != NULL; i++)
		if (dc_phrase_find(patterns[i], w, 0, NULL, NULL, 0) >= 0) {
			if (which != NULL)
				*which = patterns[i];
			return 1;
		}
	return 0;
}
