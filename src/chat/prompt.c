/*
 * prompt.c - the prompts sent to the LLM, and the schema ranking that
 * decides which tables they show (prompt.h).
 *
 * The ranking works on word forms rather than text: every name (table,
 * its snake_case/camelCase pieces, columns and theirs) and every word of
 * the question becomes a canonical form (see canon(): plural and common
 * suffixes dropped, a final 'e' dropped, so "prices", "price" and
 * "pricing" agree) hashed to 32 bits, with the synonym groups it belongs
 * to.  A table's features are computed once per ranking, in one arena;
 * matching a question word is then integer comparisons.  Foreign keys are
 * resolved to table indexes through a small hash of "schema.name".
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "config.h"
#include "dc.h"
#include "phrase.h"
#include "prompt.h"

char *
dc_prompt_system(const char *dialect, const char *rules)
{
	char *s = NULL;

	if (asprintf(&s,
	    "You translate questions into SQL for a %s database.\n"
	    "Rules:\n"
	    "- Answer with exactly one read-only statement (SELECT or WITH ... "
	    "SELECT) in the %s dialect, and nothing else: no explanation.\n"
	    "- Never write INSERT, UPDATE, DELETE, DDL, transaction control, "
	    "SET, COPY or more than one statement.\n"
	    "- Use only the tables and columns listed in the schema.\n"
	    "%s"
	    "- Add a LIMIT of at most 100 rows unless the question asks for an "
	    "aggregate or a specific number of rows.\n"
	    "- Reply with the SQL in a ```sql fenced block.\n",
	    dialect, dialect, rules != NULL ? rules : "") < 0)
		return NULL;
	return s;
}

const struct dc_rank_weights dc_rank_defaults = {
	.name = 100, .piece = 60, .column = 20, .synonym = 50, .fk = 35,
	.fk_hops = 2, .inbound = 5, .rows = 1, .min_relevance = 25,
	.max_tables = 15,
};

#define CANON_MAX	48	/* bytes of a canonical form */
#define MAX_TERMS	24	/* question words (and pairs) ranked on */
#define PIECES_MAX	8	/* pieces of one name */

/*
 * Natural logarithm of x > 0, to five places: enough for weights, and
 * no libm.  ln x = k ln 2 + ln m, m in [1, 2), by the series of
 * ln((1 + y) / (1 - y)) with y = (m - 1) / (m + 1) <= 1/3.
 */
static double
ln(double x)
{
	double y, y2, sum = 0, p;
	int k = 0, i;

	if (x <= 0)
		return 0;
	while (x >= 2) {
		x /= 2;
		k++;
	}
	while (x < 1) {
		x *= 2;
		k--;
	}
	y = (x - 1) / (x + 1);
	y2 = y * y;
	for (i = 1, p = y; i < 16; i += 2, p *= y2)
		sum += p / i;
	return k * 0.69314718055994531 + 2 * sum;
}

/* --- word forms --- */

static int
consonant(char c)
{
	return isalpha((unsigned char)c) && strchr("aeiou", c) == NULL;
}

/*
 * The canonical form of a lower-case word: plural dropped ("categories"
 * "category", "orders" "order", but not "status" or "class"), "-ed",
 * "-ing" and "-ly" dropped when enough is left ("shipped" "ship",
 * "billing" "bill", "monthly" "month"), then a final 'e' ("prices" and
 * "pricing" are both "pric").  Crude, and the same for names and
 * questions, which is what matters.
 */
static void
canon(const char *w, size_t n, char *out)
{
	char b[CANON_MAX];

	if (n >= CANON_MAX)
		n = CANON_MAX - 1;
	memcpy(b, w, n);
	b[n] = '\0';
	if (n > 4 && strcmp(b + n - 3, "ies") == 0) {
		memcpy(b + n - 3, "y", 2);
		n -= 2;
	} else if (n > 3 && b[n - 1] == 's' && b[n - 2] != 's' &&
	    b[n - 2] != 'u' && b[n - 2] != 'i')
		b[--n] = '\0';
	else if (n > 5 && strcmp(b + n - 2, "ed") == 0 && n - 2 >= 3)
		b[n -= 2] = '\0';
	else if (n > 6 && strcmp(b + n - 3, "ing") == 0)
		b[n -= 3] = '\0';
	else if (n > 5 && strcmp(b + n - 2, "ly") == 0)
		b[n -= 2] = '\0';
	/* "shipp" from "shipped": one consonant */
	if (n > 3 && b[n - 1] == b[n - 2] && consonant(b[n - 1]) &&
	    b[n - 1] != 's' && b[n - 1] != 'l')
		b[--n] = '\0';
	if (n > 3 && b[n - 1] == 'e')
		b[--n] = '\0';
	memcpy(out, b, n + 1);
}

static uint32_t
hash32(const char *s)
{
	uint32_t h = 2166136261u;	/* FNV-1a */

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

/*
 * Synonym groups: words a question uses for what a schema names
 * otherwise.  A word may be in several.
 */
static const struct {
	const char	*word;
	unsigned	 groups;
} synonyms[] = {
#define G_MONEY		(1u << 0)
#define G_CUSTOMER	(1u << 1)
#define G_TIME		(1u << 2)
#define G_ORDER		(1u << 3)
#define G_PRODUCT	(1u << 4)
#define G_STAFF		(1u << 5)
#define G_QUANTITY	(1u << 6)
#define G_SUPPLIER	(1u << 7)
#define G_PLACE		(1u << 8)
#define G_RETURN	(1u << 9)
#define G_SHIPPING	(1u << 10)
	{ "revenue", G_MONEY | G_ORDER }, { "amount", G_MONEY }, { "price", G_MONEY },
	{ "total", G_MONEY }, { "cost", G_MONEY }, { "spend", G_MONEY },
	{ "spent", G_MONEY }, { "paid", G_MONEY }, { "value", G_MONEY },
	{ "sales", G_MONEY | G_ORDER }, { "income", G_MONEY },
	{ "gmv", G_MONEY }, { "subtotal", G_MONEY }, { "fee", G_MONEY },
	{ "charge", G_MONEY }, { "mrr", G_MONEY }, { "salary", G_MONEY },
	{ "customer", G_CUSTOMER }, { "client", G_CUSTOMER },
	{ "user", G_CUSTOMER }, { "buyer", G_CUSTOMER },
	{ "shopper", G_CUSTOMER }, { "member", G_CUSTOMER },
	{ "consumer", G_CUSTOMER },
	{ "date", G_TIME }, { "time", G_TIME }, { "at", G_TIME },
	{ "day", G_TIME }, { "week", G_TIME }, { "month", G_TIME },
	{ "quarter", G_TIME }, { "year", G_TIME }, { "timestamp", G_TIME },
	{ "when", G_TIME }, { "daily", G_TIME }, { "period", G_TIME },
	{ "hour", G_TIME },
	{ "order", G_ORDER }, { "purchase", G_ORDER }, { "sold", G_ORDER },
	{ "sell", G_ORDER }, { "buy", G_ORDER }, { "bought", G_ORDER },
	{ "transaction", G_ORDER },
	{ "product", G_PRODUCT }, { "item", G_PRODUCT }, { "sku", G_PRODUCT },
	{ "article", G_PRODUCT }, { "goods", G_PRODUCT },
	{ "employee", G_STAFF }, { "staff", G_STAFF }, { "agent", G_STAFF },
	{ "worker", G_STAFF }, { "rep", G_STAFF },
	{ "quantity", G_QUANTITY }, { "qty", G_QUANTITY },
	{ "units", G_QUANTITY },
	{ "supplier", G_SUPPLIER }, { "vendor", G_SUPPLIER },
	{ "provider", G_SUPPLIER },
	{ "region", G_PLACE }, { "country", G_PLACE }, { "city", G_PLACE },
	{ "location", G_PLACE }, { "territory", G_PLACE },
	{ "return", G_RETURN }, { "refund", G_RETURN }, { "rma", G_RETURN },
	{ "shipment", G_SHIPPING }, { "shipping", G_SHIPPING },
	{ "ship", G_SHIPPING }, { "delivery", G_SHIPPING },
	{ "deliver", G_SHIPPING }, { "dispatch", G_SHIPPING },
};

/* The synonyms' canonical forms, hashed once per process. */
static uint32_t syn_hash[DC_ARRAY_SIZE(synonyms)];

static unsigned
groups_of(uint32_t h)
{
	static int ready;
	char c[CANON_MAX];
	unsigned g = 0;
	size_t i;

	if (!ready) {
		for (i = 0; i < DC_ARRAY_SIZE(synonyms); i++) {
			canon(synonyms[i].word, strlen(synonyms[i].word), c);
			syn_hash[i] = hash32(c);
		}
		ready = 1;
	}
	for (i = 0; i < DC_ARRAY_SIZE(synonyms); i++)
		if (syn_hash[i] == h)
			g |= synonyms[i].groups;
	return g;
}

/* Words a question asks with but no schema names things by. */
static const char *const stopwords[] = {
	"a", "about", "across", "after", "all", "also", "an", "and", "any",
	"are", "as", "at", "be", "been", "before", "best", "between", "both",
	"by", "can", "could", "did", "do", "does", "each", "every", "few",
	"find", "first", "for", "from", "get", "give", "had", "has", "have",
	"how", "i", "if", "in", "into", "is", "it", "its", "just", "last",
	"least", "less", "list", "many", "me", "more", "most", "much", "my",
	"never", "no", "not", "of", "on", "only", "or", "our", "over", "per",
	"please", "show", "so", "some", "than", "that", "the", "their",
	"them", "then", "there", "these", "they", "this", "those", "to",
	"top", "under", "up", "us", "used", "use", "vs", "was", "we", "were",
	"what", "which", "while", "who", "whose", "why", "will", "with",
	"within", "without", "would", "you", "your", "biggest", "highest",
	"lowest", "largest", "smallest", "average", "avg", "sum", "number",
	"count", "show", "tell", "see", "using", "still", "ever", "but",
	"against", "during", "since", "until", "out", "one", "two", "three",
	NULL
};

static int
stopword(const char *w)
{
	int i;

	for (i = 0; stopwords[i] != NULL; i++)
		if (strcmp(w, stopwords[i]) == 0)
			return 1;
	return 0;
}

/*
 * The pieces of an identifier, lower case: split at '_', '.', '-',
 * spaces, digits and camelCase humps.  Returns how many (at most max).
 */
static int
pieces(const char *name, char out[][CANON_MAX], int max)
{
	const char *p = name;
	size_t n;
	int k = 0;

	while (*p != '\0' && k < max) {
		while (*p != '\0' && !isalpha((unsigned char)*p))
			p++;
		if (*p == '\0')
			break;
		n = 0;
		do {
			if (n + 1 < CANON_MAX)
				out[k][n++] = (char)tolower((unsigned char)*p);
			p++;
		} while (isalpha((unsigned char)*p) &&
		    !(isupper((unsigned char)*p) &&
		    islower((unsigned char)p[-1])));
		out[k][n] = '\0';
		k++;
	}
	return k;
}

/* --- a table's features --- */

enum feat_kind {
	FK_NAME = 0,		/* the whole table name */
	FK_NAME_PIECE,
	FK_COLUMN,		/* a whole column name */
	FK_COLUMN_PIECE,
};

struct feat {
	uint32_t	 h;
	unsigned	 groups;
	int		 kind;		/* enum feat_kind */
	int		 col;		/* the column, for the trace */
	int		 piece;		/* which piece of the table's name */
};

struct tinfo {
	int		 first, n;	/* its features in the arena */
	int		 npieces;	/* of its name */
	double		 direct;	/* relevance from its words */
	double		 bonus;		/* ... from its foreign keys */
	double		 central;
	int		 inbound;
	/* what matched best, for the trace */
	int		 best_kind, best_col, best_term, best_syn;
	double		 best;
	int		 via;		/* FK: the match it came from */
	int		 via_hops;
	double		 via_share;
};

struct arena {
	struct feat	*f;
	int		 n, cap;
};

static int
feat_add(struct arena *a, uint32_t h, int kind, int col, int piece)
{
	struct feat *nf;

	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 1024;
		if ((nf = realloc(a->f, sizeof(*nf) * (size_t)a->cap)) == NULL)
			return DC_ENOMEM;
		a->f = nf;
	}
	a->f[a->n].h = h;
	a->f[a->n].groups = groups_of(h);
	a->f[a->n].kind = kind;
	a->f[a->n].col = col;
	a->f[a->n].piece = piece;
	a->n++;
	return DC_OK;
}

/*
 * An identifier's whole form ("order_item") and its pieces; returns how
 * many pieces (0 when out of memory: every name has one).
 */
static int
ident_feats(struct arena *a, const char *name, int whole, int piece, int col)
{
	char p[PIECES_MAX][CANON_MAX], c[CANON_MAX], all[CANON_MAX * 2];
	size_t o = 0;
	int k, np = pieces(name, p, PIECES_MAX);

	all[0] = '\0';
	for (k = 0; k < np; k++) {
		canon(p[k], strlen(p[k]), c);
		o += (size_t)snprintf(all + o, o < sizeof(all) ?
		    sizeof(all) - o : 0, "%s%s", k ? "_" : "", c);
		if (np > 1 && feat_add(a, hash32(c), piece, col, k) != DC_OK)
			return 0;
	}
	if (np > 0 && o < sizeof(all) &&
	    feat_add(a, hash32(all), whole, col, -1) != DC_OK)
		return 0;
	return np > 0 ? np : 1;
}

/* --- the question's terms --- */

struct term {
	uint32_t	 h;
	unsigned	 groups;
	double		 weight;	/* 1, or 0.5 from the hint */
	double		 idf;
	char		 text[CANON_MAX];	/* as asked, for the trace */
};

static int
add_terms(struct term *t, int n, const char *text, double weight)
{
	struct dc_words *w;
	char c[CANON_MAX], prev[CANON_MAX], pair[CANON_MAX * 2];
	int i, k, have_prev = 0;

	if (text == NULL || (w = malloc(sizeof(*w))) == NULL)
		return n;
	dc_words_split(text, 0, w);
	for (i = 0; i < w->n && n < MAX_TERMS; i++) {
		if (stopword(w->w[i]) || dc_word_is_number(w->w[i]) ||
		    strlen(w->w[i]) < 2) {
			have_prev = 0;
			continue;
		}
		canon(w->w[i], strlen(w->w[i]), c);
		/* two words that name one thing: "order items" */
		if (have_prev && n < MAX_TERMS) {
			snprintf(pair, sizeof(pair), "%s_%s", prev, c);
			t[n].h = hash32(pair);
			t[n].groups = 0;
			t[n].weight = weight;
			snprintf(t[n].text, sizeof(t[n].text), "%s %s",
			    w->w[i - 1], w->w[i]);
			n++;
		}
		for (k = 0; k < n; k++)
			if (t[k].h == hash32(c))
				break;
		if (k == n && n < MAX_TERMS) {
			t[n].h = hash32(c);
			t[n].groups = groups_of(t[n].h);
			t[n].weight = weight;
			dc_strlcpy(t[n].text, w->w[i], sizeof(t[n].text));
			n++;
		}
		memcpy(prev, c, sizeof(prev));
		have_prev = 1;
	}
	free(w);
	return n;
}

/* What matching term t against feature f is worth (0: nothing). */
static double
feat_score(const struct dc_rank_weights *w, const struct term *t,
    const struct feat *f, int *syn)
{
	double v;

	switch (f->kind) {
	case FK_NAME:
		v = w->name;
		break;
	case FK_NAME_PIECE:
		v = w->piece;
		break;
	default:
		v = w->column;
		break;
	}
	*syn = 0;
	if (f->h == t->h)
		return v;
	if (t->groups & f->groups) {
		*syn = 1;
		return v * w->synonym / 100.0;
	}
	return 0;
}

/* --- foreign keys --- */

struct fkmap {
	uint32_t	*keys;
	int		*idx;
	size_t		 size;		/* a power of two */
};

static uint32_t
name_hash(const char *schema, const char *name)
{
	uint32_t h = hash32(schema);

	h ^= '.';
	h *= 16777619u;
	for (; *name != '\0'; name++) {
		h ^= (unsigned char)*name;
		h *= 16777619u;
	}
	return h;
}

static int
fkmap_init(struct fkmap *m, const struct dc_schema *s)
{
	size_t i, k;

	for (m->size = 16; m->size < (size_t)s->ntables * 2; m->size *= 2)
		;
	m->keys = calloc(m->size, sizeof(*m->keys));
	m->idx = malloc(m->size * sizeof(*m->idx));
	if (m->keys == NULL || m->idx == NULL)
		return DC_ENOMEM;
	for (i = 0; i < m->size; i++)
		m->idx[i] = -1;
	for (i = 0; i < (size_t)s->ntables; i++) {
		uint32_t h = name_hash(s->tables[i].schema, s->tables[i].name);

		for (k = h & (m->size - 1); m->idx[k] >= 0;
		    k = (k + 1) & (m->size - 1))
			;
		m->keys[k] = h;
		m->idx[k] = (int)i;
	}
	return DC_OK;
}

/* The table a foreign key of table from references ("t" or "s.t"). */
static int
fkmap_find(const struct fkmap *m, const struct dc_schema *s, int from,
    const char *ref)
{
	const char *dot = strchr(ref, '.');
	char schema[DC_WORD_LEN];
	const struct dc_schema_table *t;
	uint32_t h;
	size_t k;

	if (dot != NULL && (size_t)(dot - ref) < sizeof(schema)) {
		memcpy(schema, ref, (size_t)(dot - ref));
		schema[dot - ref] = '\0';
		ref = dot + 1;
	} else
		dc_strlcpy(schema, s->tables[from].schema, sizeof(schema));
	h = name_hash(schema, ref);
	for (k = h & (m->size - 1); m->idx[k] >= 0; k = (k + 1) & (m->size - 1)) {
		t = &s->tables[m->idx[k]];
		if (m->keys[k] == h && strcmp(t->name, ref) == 0 &&
		    strcmp(t->schema, schema) == 0)
			return m->idx[k];
	}
	return -1;
}

/* Edges both ways: nb[off[i] .. off[i+1]) are i's neighbours. */
struct graph {
	int	*off;
	int	*nb;
};

static int
graph_build(struct graph *g, const struct dc_schema *s, struct tinfo *ti)
{
	struct fkmap m = { NULL, NULL, 0 };
	int *from = NULL, *to = NULL, *fill = NULL, ne = 0, cap = 0, i, c, j;
	int rc = DC_ENOMEM;

	g->off = calloc((size_t)s->ntables + 1, sizeof(int));
	if (g->off == NULL || fkmap_init(&m, s) != DC_OK)
		goto out;
	for (i = 0; i < s->ntables; i++)
		for (c = 0; c < s->tables[i].ncols; c++) {
			const char *ref = s->tables[i].cols[c].foreign_table;

			if (ref == NULL || (j = fkmap_find(&m, s, i, ref)) < 0 ||
			    j == i)
				continue;
			if (ne == cap) {
				int *nf, *nt;

				cap = cap ? cap * 2 : 256;
				nf = realloc(from, sizeof(int) * (size_t)cap);
				if (nf != NULL)
					from = nf;
				nt = realloc(to, sizeof(int) * (size_t)cap);
				if (nt != NULL)
					to = nt;
				if (nf == NULL || nt == NULL)
					goto out;
			}
			from[ne] = i;
			to[ne] = j;
			ne++;
			ti[j].inbound++;
		}
	g->nb = malloc(sizeof(int) * (size_t)(2 * ne + 1));
	fill = calloc((size_t)s->ntables, sizeof(int));
	if (g->nb == NULL || fill == NULL)
		goto out;
	for (i = 0; i < ne; i++) {
		g->off[from[i] + 1]++;
		g->off[to[i] + 1]++;
	}
	for (i = 0; i < s->ntables; i++)
		g->off[i + 1] += g->off[i];
	for (i = 0; i < ne; i++) {
		g->nb[g->off[from[i]] + fill[from[i]]++] = to[i];
		g->nb[g->off[to[i]] + fill[to[i]]++] = from[i];
	}
	rc = DC_OK;
out:
	free(m.keys);
	free(m.idx);
	free(from);
	free(to);
	free(fill);
	return rc;
}

/*
 * Hand seed's score to the tables one and two foreign keys away (f and
 * f * f of it; a table reached both ways takes the larger), touched[]
 * remembering which got[] entries to clear.
 */
static void
spread(const struct graph *g, struct tinfo *ti, int seed, double f, int hops,
    double *got, int *touched)
{
	int a, b, k, l, nt = 0;
	double v;

	for (k = g->off[seed]; k < g->off[seed + 1]; k++) {
		a = g->nb[k];
		if (got[a] == 0)
			touched[nt++] = a;
		if (got[a] < f)
			got[a] = f;
		if (hops < 2)
			continue;
		for (l = g->off[a]; l < g->off[a + 1]; l++) {
			b = g->nb[l];
			if (got[b] == 0)
				touched[nt++] = b;
			if (got[b] < f * f)
				got[b] = f * f;
		}
	}
	for (k = 0; k < nt; k++) {
		a = touched[k];
		if (a != seed && got[a] > 0) {
			v = got[a] * ti[seed].direct;
			ti[a].bonus += v;
			if (v > ti[a].via_share) {
				ti[a].via_share = v;
				ti[a].via = seed;
				ti[a].via_hops = got[a] == f ? 1 : 2;
			}
		}
		got[a] = 0;
	}
}

/* --- the ranking --- */

static int
cmp_rank(const void *a, const void *b)
{
	const struct dc_rank *x = a, *y = b;

	if (x->tier != y->tier && (x->tier == DC_RANK_REST ||
	    y->tier == DC_RANK_REST))
		return x->tier == DC_RANK_REST ? 1 : -1;
	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return x->idx - y->idx;
}

static void
why_match(const struct dc_schema *s, const struct tinfo *t,
    const struct term *terms, struct dc_rank *r)
{
	const struct dc_schema_table *tb = &s->tables[r->idx];
	const char *what = t->best_kind == FK_NAME ? "name" :
	    t->best_kind == FK_NAME_PIECE ? "name part" : "column";

	if (t->best_kind >= FK_COLUMN)
		snprintf(r->why, sizeof(r->why), "%s %s %s \"%s\"", what,
		    tb->cols[t->best_col].name, t->best_syn ? "is like" :
		    "matches", terms[t->best_term].text);
	else
		snprintf(r->why, sizeof(r->why), "%s %s \"%s\"", what,
		    t->best_syn ? "is like" : "matches",
		    terms[t->best_term].text);
}

int
dc_prompt_rank(const struct dc_schema *s, const char *question,
    const char *hint, const struct dc_rank_weights *w, struct dc_rank **out)
{
	struct term terms[MAX_TERMS];
	struct arena a = { NULL, 0, 0 };
	struct graph g = { NULL, NULL };
	struct tinfo *ti = NULL;
	struct dc_rank *r = NULL;
	double *got = NULL, best_direct = 0, best = 0, v, f;
	int *touched = NULL, *df = NULL, nterms, i, k, c, syn, rc = DC_ENOMEM;
	int n = s != NULL ? s->ntables : 0;

	*out = NULL;
	if (w == NULL)
		w = &dc_rank_defaults;
	nterms = add_terms(terms, 0, question, 1.0);
	nterms = add_terms(terms, nterms, hint, 0.5);
	if ((r = calloc((size_t)n + 1, sizeof(*r))) == NULL ||
	    (ti = calloc((size_t)n + 1, sizeof(*ti))) == NULL ||
	    (got = calloc((size_t)n + 1, sizeof(*got))) == NULL ||
	    (touched = malloc(sizeof(int) * ((size_t)n + 1))) == NULL ||
	    (df = calloc(MAX_TERMS, sizeof(int))) == NULL)
		goto out;

	/* features: the name, its pieces, the columns and theirs */
	for (i = 0; i < n; i++) {
		const struct dc_schema_table *t = &s->tables[i];

		ti[i].first = a.n;
		ti[i].via = -1;
		if ((ti[i].npieces = ident_feats(&a, t->name, FK_NAME,
		    FK_NAME_PIECE, -1)) == 0)
			goto out;
		for (c = 0; c < t->ncols; c++)
			if (ident_feats(&a, t->cols[c].name, FK_COLUMN,
			    FK_COLUMN_PIECE, c) == 0)
				goto out;
		ti[i].n = a.n - ti[i].first;
	}

	/* a term many tables have says little about any of them */
	for (k = 0; k < nterms; k++) {
		for (i = 0; i < n; i++)
			for (c = ti[i].first; c < ti[i].first + ti[i].n; c++)
				if (feat_score(w, &terms[k], &a.f[c], &syn) > 0) {
					df[k]++;
					break;
				}
		terms[k].idf = ln(1.0 + (double)n / (df[k] > 0 ? df[k] : 1));
	}

	/*
	 * 1. the words: each term counts once per table, at its best.  A
	 * match on a piece of the name counts by how much of the name the
	 * question covers: "ad clicks" is all of ad_clicks but two thirds of
	 * stg_ad_clicks.
	 */
	for (i = 0; i < n; i++) {
		double pieces_sum = 0;
		unsigned covered = 0;

		for (k = 0; k < nterms; k++) {
			double tbest = 0;
			int tkind = 0, tcol = -1, tsyn = 0, tpiece = -1;

			for (c = ti[i].first; c < ti[i].first + ti[i].n; c++) {
				v = feat_score(w, &terms[k], &a.f[c], &syn);
				if (v > tbest) {
					tbest = v;
					tkind = a.f[c].kind;
					tcol = a.f[c].col;
					tpiece = a.f[c].piece;
					tsyn = syn;
				}
			}
			v = tbest * terms[k].idf * terms[k].weight;
			if (tkind == FK_NAME_PIECE && v > 0) {
				pieces_sum += v;
				if (tpiece >= 0 && tpiece < 32)
					covered |= 1u << tpiece;
				v = v * (double)__builtin_popcount(covered) /
				    ti[i].npieces;
			} else
				ti[i].direct += v;
			if (v > ti[i].best) {
				ti[i].best = v;
				ti[i].best_kind = tkind;
				ti[i].best_col = tcol;
				ti[i].best_term = k;
				ti[i].best_syn = tsyn;
			}
		}
		ti[i].direct += pieces_sum *
		    (double)__builtin_popcount(covered) / ti[i].npieces;
		if (ti[i].direct > best_direct)
			best_direct = ti[i].direct;
	}

	/* 2. the foreign keys, from the tables that matched well */
	if (n > 0 && graph_build(&g, s, ti) != DC_OK)
		goto out;
	f = w->fk / 100.0;
	if (w->fk_hops > 0 && f > 0 && best_direct > 0)
		for (i = 0; i < n; i++)
			if (ti[i].direct > 0 && ti[i].direct * 2 >= best_direct)
				spread(&g, ti, i, f, w->fk_hops, got, touched);

	/* 3. how central each is */
	for (i = 0; i < n; i++) {
		int64_t rows = s->tables[i].row_count;

		ti[i].central = (double)w->inbound * ti[i].inbound +
		    (double)w->rows * ln(1.0 + (double)(rows > 0 ? rows : 0)) /
		    2.302585092994046;	/* log10 */
		v = ti[i].direct + ti[i].bonus;
		if (v > best)
			best = v;
	}
	for (i = 0; i < n; i++) {
		r[i].idx = i;
		v = ti[i].direct + ti[i].bonus;
		if (v > 0 && v * 100 >= best * w->min_relevance) {
			/* near-ties go to the more central table */
			r[i].score = v + ti[i].central / 1000.0;
			r[i].tier = ti[i].direct * 100 >= best *
			    w->min_relevance || ti[i].via < 0 ? DC_RANK_MATCH :
			    DC_RANK_FK;
			if (r[i].tier == DC_RANK_MATCH)
				why_match(s, &ti[i], terms, &r[i]);
			else
				snprintf(r[i].why, sizeof(r[i].why),
				    "%s key to %s.%s", ti[i].via_hops == 1 ?
				    "foreign" : "two foreign", s->tables[
				    ti[i].via].schema, s->tables[ti[i].via].name);
		} else {
			r[i].tier = DC_RANK_REST;
			r[i].score = ti[i].central;
			snprintf(r[i].why, sizeof(r[i].why), "%d referencing, "
			    "~%lld rows", ti[i].inbound, (long long)
			    s->tables[i].row_count);
		}
	}
	if (n > 0)
		qsort(r, (size_t)n, sizeof(*r), cmp_rank);
	*out = r;
	r = NULL;
	rc = DC_OK;
out:
	free(a.f);
	free(g.off);
	free(g.nb);
	free(ti);
	free(r);
	free(got);
	free(touched);
	free(df);
	return rc;
}

/* --- the prompt --- */

/* One column as the prompt shows it: "customer_id integer FK->customers.id". */
static size_t
column_text(const struct dc_schema_column *c, int sep, char *buf, size_t sz)
{
	int n;

	if (c->is_fk && c->foreign_table != NULL)
		n = snprintf(buf, sz, "%s%s %s%s FK->%s.%s", sep ? ", " : "",
		    c->name, c->data_type, c->is_pk ? " PK" : "",
		    c->foreign_table, c->foreign_column != NULL ?
		    c->foreign_column : "?");
	else
		n = snprintf(buf, sz, "%s%s %s%s", sep ? ", " : "", c->name,
		    c->data_type, c->is_pk ? " PK" : "");
	return n < 0 ? 0 : (size_t)n < sz ? (size_t)n : sz - 1;
}

/*
 * A table's line, within room bytes: its columns as far as they fit,
 * then how many did not.  Returns the bytes written, 0 when not even
 * the name and one column fit (nothing is written then).
 */
static size_t
table_line(struct evbuffer *b, const struct dc_schema_table *t, size_t room)
{
	char head[320], col[600], more[48];
	size_t used, n;
	int i, k;

	if (t->row_count >= 0)
		snprintf(head, sizeof(head), "- %s.%s (~%lld rows): ",
		    t->schema, t->name, (long long)t->row_count);
	else
		snprintf(head, sizeof(head), "- %s.%s: ", t->schema, t->name);
	used = strlen(head) + 1;
	for (k = 0; k < t->ncols; k++) {
		n = column_text(&t->cols[k], k > 0, col, sizeof(col));
		/* room for saying how many are left out */
		if (used + n + (k + 1 < t->ncols ? sizeof(more) : 0) > room)
			break;
		used += n;
	}
	if (used > room || (k == 0 && t->ncols > 0))
		return 0;
	evbuffer_add(b, head, strlen(head));
	for (i = 0; i < k; i++) {
		n = column_text(&t->cols[i], i > 0, col, sizeof(col));
		evbuffer_add(b, col, n);
	}
	if (k < t->ncols) {
		n = (size_t)snprintf(more, sizeof(more), " (+%d more columns)",
		    t->ncols - k);
		evbuffer_add(b, more, n);
		used += n;
	}
	evbuffer_add(b, "\n", 1);
	return used;
}

char *
dc_prompt_build(const struct dc_prompt_in *in, struct dc_prompt_out *out)
{
	const struct dc_schema *s = in->schema;
	struct evbuffer *b = evbuffer_new();
	const struct dc_rank_weights *w = in->weights != NULL ? in->weights :
	    &dc_rank_defaults;
	struct dc_rank *rk = NULL;
	size_t used = 0, len, budget = in->budget, clen;
	char *text = NULL;
	int i, n = s != NULL ? s->ntables : 0, shown = 0, names = 0, more = 0;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	clen = in->context != NULL ? strlen(in->context) : 0;
	if (b == NULL)
		goto out;
	if (n > 0 && dc_prompt_rank(s, in->question, in->hint, w, &rk) != DC_OK)
		goto out;
	/* the conversation so far shares the budget with the schema */
	budget = clen < budget ? budget - clen : 0;
	evbuffer_add_printf(b, "Schema (live from the database; the tables "
	    "the question needs first):\n");
	for (i = 0; i < n && rk[i].tier != DC_RANK_REST && shown < w->max_tables;
	    i++) {
		/* relevance order is kept: a wide table loses columns, and
		   when even that does not fit the rest go by name */
		if ((len = table_line(b, &s->tables[rk[i].idx],
		    budget - used)) == 0)
			break;
		used += len;
		shown++;
	}
	/* the rest by name, most central first */
	used = 0;
	for (; i < n; i++) {
		const struct dc_schema_table *t = &s->tables[rk[i].idx];

		len = strlen(t->schema) + strlen(t->name) + 3;
		if (used + len > in->names_budget) {
			more = n - i;
			break;
		}
		evbuffer_add_printf(b, "%s%s.%s", names == 0 ? "Other tables "
		    "(names only): " : ", ", t->schema, t->name);
		used += len;
		names++;
	}
	if (names > 0)
		evbuffer_add_printf(b, "\n");
	if (more > 0)
		evbuffer_add_printf(b, "(%d more tables not shown)\n", more);
	if (clen > 0)
		evbuffer_add_printf(b, "\n%s", in->context);
	evbuffer_add_printf(b, "\nQuestion: %s\n", in->question);
	if (in->prev_sql != NULL)
		evbuffer_add_printf(b, "\nYour previous SQL:\n```sql\n%s\n```\n"
		    "failed with this error:\n%s\nWrite a corrected statement.\n",
		    in->prev_sql, in->error != NULL ? in->error : "(no message)");
	len = evbuffer_get_length(b);
	if ((text = malloc(len + 1)) == NULL)
		goto out;
	evbuffer_remove(b, text, len);
	text[len] = '\0';
	if (out != NULL) {
		out->ntables = shown;
		out->nnames = names;
		out->rank = rk;
		out->nrank = n;
		rk = NULL;
	}
out:
	free(rk);
	if (b != NULL)
		evbuffer_free(b);
	return text;
}

void
dc_prompt_configure(const struct dc_config *cfg, struct dc_rank_weights *w,
    struct dc_prompt_in *in)
{
	w->name = cfg->rank_name;
	w->piece = cfg->rank_piece;
	w->column = cfg->rank_column;
	w->synonym = cfg->rank_synonym;
	w->fk = cfg->rank_fk;
	w->fk_hops = cfg->rank_fk_hops;
	w->inbound = cfg->rank_inbound;
	w->rows = cfg->rank_rows;
	w->min_relevance = cfg->rank_min_relevance;
	w->max_tables = cfg->rank_max_tables;
	in->weights = w;
	in->budget = (size_t)cfg->prompt_schema_tokens *
	    DC_PROMPT_CHARS_PER_TOKEN;
	in->names_budget = (size_t)cfg->prompt_names_tokens *
	    DC_PROMPT_CHARS_PER_TOKEN;
}

const char *
dc_rank_tier_name(int tier)
{
	switch (tier) {
	case DC_RANK_MATCH:
		return "match";
	case DC_RANK_FK:
		return "fk";
	default:
		return "rest";
	}
}

char *
dc_prompt_user(const struct dc_schema *s, const char *question,
    const char *prev_sql, const char *error, size_t budget, int *ntables_out)
{
	struct dc_prompt_in in;
	struct dc_prompt_out po;
	char *text;

	memset(&in, 0, sizeof(in));
	in.schema = s;
	in.question = question;
	in.prev_sql = prev_sql;
	in.error = error;
	in.budget = budget;
	in.names_budget = DC_PROMPT_NAMES_TOKENS * DC_PROMPT_CHARS_PER_TOKEN;
	text = dc_prompt_build(&in, &po);
	if (text != NULL && ntables_out != NULL)
		*ntables_out = po.ntables;
	if (text != NULL)
		free(po.rank);
	return text;
}
