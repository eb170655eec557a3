/*
 * pgguard.c - the PostgreSQL guard: PostgreSQL 15's own parser
 * (libpg_query) and a walk of the whole parse tree (see pgguard.h).
 *
 * libpg_query returns the raw parse tree as JSON.  A node is an object
 * with one key, its type ({"FuncCall": {...}}); a field that points to a
 * struct of a fixed type (a SelectStmt's larg, a TypeCast's typeName) is
 * written without that wrapper, and a NULL list element is {}.  The walk
 * therefore visits every object and every array: a wrapped node must be
 * of a type in node_types[] (everything else is refused by name), and
 * some field names mean the same thing wherever they appear (intoClause,
 * lockingClause, groupClause...), so they are checked by name, wrapped or
 * not.  Field names start with a lower-case letter and node types with an
 * upper-case one, which is how the two are told apart.
 *
 * The walk collects what only the target's catalog can judge (functions,
 * field selections, operators, casts, relations); pgpolicy.c judges them.
 *
 * Both readings of backslashes: the server reads '...' with
 * standard_conforming_strings, which target connections set on, but a
 * proxy may drop that startup option.  A backslash next to a quote inside
 * a plain '...' literal is the one place the two readings split a
 * statement differently, so such a literal is refused (E'...' says what
 * it means in both).  The tokens come from libpg_query's scanner, and
 * only for statements that hold a backslash at all.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include "dc.h"
#include "pgguard.h"
#include "sqlguard.h"
#include "util.h"

#define GUARD_JSON_DEPTH	2000	/* nesting the JSON walk follows */
#define GUARD_SHOW_MAX		48	/* bytes of a name quoted in a reason */

/* Implied operators, each reported once per statement. */
enum {
	IMP_EQ = 1 << 0,	/* = : GROUP BY, DISTINCT, IN, CASE, USING... */
	IMP_NE = 1 << 1,	/* <> : NOT IN, CYCLE */
	IMP_LT = 1 << 2,	/* < and > : sorting, GREATEST, LEAST */
	IMP_GT = 1 << 3,
};

struct walk {
	const char	*sql;
	size_t		 len;
	struct dc_pgstmt *st;
	int		 cap;		/* room in st->refs */
	int		 implied;	/* IMP_* seen */
	struct dc_pg_refusal *ref;
	int		 oom;
};

/*
 * The node types a read-only query is made of.  A node of any other type
 * anywhere in the tree refuses the statement: a new PostgreSQL node is
 * refused until someone decides it is harmless.
 */
static const char *const node_types[] = {
	"A_ArrayExpr", "A_Const", "A_Expr", "A_Indices", "A_Indirection",
	"A_Star", "Alias", "BitString", "BoolExpr", "Boolean", "BooleanTest",
	"CaseExpr", "CaseWhen", "CoalesceExpr", "CollateClause", "ColumnDef",
	"ColumnRef", "CommonTableExpr", "CTECycleClause", "CTESearchClause",
	"Float", "FuncCall", "GroupingFunc", "GroupingSet", "Integer",
	"JoinExpr", "List", "MinMaxExpr", "NamedArgExpr", "NullTest",
	"ParamRef", "RangeFunction", "RangeSubselect", "RangeTableFunc",
	"RangeTableFuncCol", "RangeTableSample", "RangeVar", "ResTarget",
	"RowExpr", "SelectStmt", "SortBy", "SQLValueFunction", "String",
	"SubLink", "TypeCast", "TypeName", "WindowDef", "WithClause",
	"XmlExpr", "XmlSerialize",
};

/* EXPLAIN options that only change what is printed (and ANALYZE). */
static const char *const explain_options[] = {
	"analyze", "verbose", "costs", "settings", "buffers", "wal",
	"timing", "summary", "format",
};

static int	 refuse(struct walk *, const char *, int, const char *, ...)
		     DC_PRINTF(4, 5);

/* 1-based character position of byte offset off, 0 when unknown. */
static int
char_pos(const char *sql, size_t len, int off)
{
	size_t	 i;
	int	 n = 0;

	if (off < 0 || (size_t)off > len)
		return 0;
	for (i = 0; i < (size_t)off; i++)
		if (((unsigned char)sql[i] & 0xc0) != 0x80)
			n++;
	return n + 1;
}

void
dc_pgguard_clean(char *s)
{
	unsigned char	*p = (unsigned char *)s;
	int		 n, k;

	while (*p != '\0') {
		if (*p < 0x20 || *p == 0x7f) {
			*p++ = '?';
			continue;
		}
		if (*p < 0x80) {
			p++;
			continue;
		}
		n = *p >= 0xc2 && *p <= 0xdf ? 1 : *p >= 0xe0 && *p <= 0xef ?
		    2 : *p >= 0xf0 && *p <= 0xf4 ? 3 : 0;
		for (k = 1; k <= n; k++)
			if ((p[k] & 0xc0) != 0x80)
				break;
		/* overlong three- and four-byte forms, surrogates, > U+10FFFF */
		if (n == 0 || k <= n || (p[0] == 0xe0 && p[1] < 0xa0) ||
		    (p[0] == 0xed && p[1] > 0x9f) ||
		    (p[0] == 0xf0 && p[1] < 0x90) ||
		    (p[0] == 0xf4 && p[1] > 0x8f)) {
			*p++ = '?';
			continue;
		}
		p += n + 1;
	}
}

/* Printable ASCII only (the reason ends up in JSON and logs). */
static void
show(char *dst, size_t dstsz, const char *src)
{
	size_t		 i;
	unsigned char	 c;

	for (i = 0; src[i] != '\0' && i < GUARD_SHOW_MAX && i + 1 < dstsz;
	    i++) {
		c = (unsigned char)src[i];
		dst[i] = c < 0x20 || c > 0x7e ? '?' : (char)c;
	}
	dst[i] = '\0';
}

static int
refuse(struct walk *w, const char *node, int off, const char *fmt, ...)
{
	va_list	 ap;

	if (w->ref->reason[0] != '\0')
		return -1;	/* the first refusal is the one reported */
	show(w->ref->node, sizeof(w->ref->node), node);
	w->ref->pos = char_pos(w->sql, w->len, off);
	va_start(ap, fmt);
	vsnprintf(w->ref->reason, sizeof(w->ref->reason), fmt, ap);
	va_end(ap);
	dc_pgguard_clean(w->ref->reason);
	return -1;
}

static int
in_list(const char *s, const char *const *list, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return 1;
	return 0;
}

static int
location(struct json_object *body)
{
	struct json_object *o;

	if (body != NULL && json_object_object_get_ex(body, "location", &o) &&
	    json_object_is_type(o, json_type_int))
		return json_object_get_int(o);
	return -1;
}

/* The string of a {"String": {"sval": ...}} node, or NULL. */
static const char *
string_node(struct json_object *o)
{
	struct json_object *s, *v;

	if (o == NULL || !json_object_object_get_ex(o, "String", &s) ||
	    !json_object_is_type(s, json_type_object))
		return "";	/* {"String":{}} is the empty string */
	if (!json_object_object_get_ex(s, "sval", &v))
		return "";
	return json_object_get_string(v);
}

static int
is_string_node(struct json_object *o)
{
	return o != NULL && json_object_is_type(o, json_type_object) &&
	    json_object_object_get_ex(o, "String", NULL);
}

static struct dc_pgref *
add_ref(struct walk *w, int kind, int off)
{
	struct dc_pgref	*r;
	int		 ncap;

	if (w->st->nrefs == w->cap) {
		ncap = w->cap ? w->cap * 2 : 16;
		r = reallocarray(w->st->refs, (size_t)ncap, sizeof(*r));
		if (r == NULL) {
			w->oom = 1;
			return NULL;
		}
		w->st->refs = r;
		w->cap = ncap;
	}
	r = &w->st->refs[w->st->nrefs++];
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->nargs = -1;
	r->pos = off;
	return r;
}

/*
 * A name list (["schema", "name"], ["catalog", "schema", "name"]) into
 * r: the last element is the name, the one before it the schema.
 */
static int
ref_names(struct walk *w, struct dc_pgref *r, struct json_object *names,
    const char *node)
{
	size_t	 n;

	if (names == NULL || !json_object_is_type(names, json_type_array) ||
	    (n = json_object_array_length(names)) == 0)
		return refuse(w, node, r->pos, "a name the guard cannot read");
	if (!is_string_node(json_object_array_get_idx(names, n - 1)))
		return refuse(w, node, r->pos, "a name the guard cannot read");
	dc_strlcpy(r->name, string_node(json_object_array_get_idx(names,
	    n - 1)), sizeof(r->name));
	if (n >= 2) {
		if (!is_string_node(json_object_array_get_idx(names, n - 2)))
			return refuse(w, node, r->pos,
			    "a name the guard cannot read");
		dc_strlcpy(r->schema, string_node(json_object_array_get_idx(
		    names, n - 2)), sizeof(r->schema));
	}
	return 0;
}

static int
ref_named(struct walk *w, int kind, struct json_object *names, int off,
    int nargs, const char *node)
{
	struct dc_pgref	*r;

	if ((r = add_ref(w, kind, off)) == NULL)
		return -1;
	r->nargs = nargs;
	return ref_names(w, r, names, node);
}

static int
ref_plain(struct walk *w, int kind, const char *name, int off)
{
	struct dc_pgref	*r;

	if ((r = add_ref(w, kind, off)) == NULL)
		return -1;
	if (kind == DC_PGREF_FIELD)
		r->nargs = 1;
	dc_strlcpy(r->name, name, sizeof(r->name));
	return 0;
}

static struct json_object *
field(struct json_object *body, const char *key)
{
	struct json_object *o;

	if (body == NULL || !json_object_object_get_ex(body, key, &o))
		return NULL;
	return o;
}

static int
array_len(struct json_object *o)
{
	if (o == NULL || !json_object_is_type(o, json_type_array))
		return 0;
	return (int)json_object_array_length(o);
}

static int
flag(struct json_object *body, const char *key)
{
	struct json_object *o = field(body, key);

	return o != NULL && json_object_get_boolean(o);
}

static const char *
enum_value(struct json_object *body, const char *key)
{
	struct json_object *o = field(body, key);

	return o != NULL && json_object_is_type(o, json_type_string) ?
	    json_object_get_string(o) : "";
}

/* --- what each node refers to --- */

static int
func_call(struct walk *w, struct json_object *b)
{
	struct json_object *args = field(b, "args");
	struct dc_pgref	*r;
	int		 i, n = array_len(args), off = location(b);

	if ((r = add_ref(w, DC_PGREF_FUNC, off)) == NULL)
		return -1;
	r->nargs = flag(b, "agg_star") ? 0 : n;
	if (flag(b, "func_variadic"))
		r->anyargs = 1;
	for (i = 0; i < n; i++) {
		struct json_object *a = json_object_array_get_idx(args,
		    (size_t)i);

		if (a != NULL && json_object_object_get_ex(a, "NamedArgExpr",
		    NULL))
			r->anyargs = 1;
	}
	if (ref_names(w, r, field(b, "funcname"), "FuncCall") == -1)
		return -1;
	if (flag(b, "agg_distinct"))
		w->implied |= IMP_EQ | IMP_LT;
	return 0;
}

/*
 * x.f, x.f.g: every name after the first may be a function of one
 * argument (PostgreSQL reads column.f as f(column) when no column f
 * exists), so each one is a field reference.
 */
static int
column_ref(struct walk *w, struct json_object *b)
{
	struct json_object *fields = field(b, "fields");
	int		 i, n = array_len(fields), off = location(b);

	for (i = 1; i < n; i++) {
		struct json_object *f = json_object_array_get_idx(fields,
		    (size_t)i);

		if (is_string_node(f) &&
		    ref_plain(w, DC_PGREF_FIELD, string_node(f), off) == -1)
			return -1;
	}
	return 0;
}

/* (x).f, x[1].f: each field selection may be a call, as above. */
static int
indirection(struct walk *w, struct json_object *b)
{
	struct json_object *ind = field(b, "indirection");
	int		 i, n = array_len(ind), off = location(field(b, "arg"));

	for (i = 0; i < n; i++) {
		struct json_object *f = json_object_array_get_idx(ind,
		    (size_t)i);

		if (is_string_node(f) &&
		    ref_plain(w, DC_PGREF_FIELD, string_node(f), off) == -1)
			return -1;
	}
	return 0;
}

/* The operator name as written (maybe OPERATOR(schema.op)). */
static int
a_expr(struct walk *w, struct json_object *b)
{
	const char	*kind = enum_value(b, "kind");
	int		 off = location(b);
	int		 nargs = field(b, "lexpr") != NULL ? 2 : 1;

	if (strcmp(kind, "AEXPR_BETWEEN") == 0 ||
	    strcmp(kind, "AEXPR_BETWEEN_SYM") == 0 ||
	    strcmp(kind, "AEXPR_NOT_BETWEEN") == 0 ||
	    strcmp(kind, "AEXPR_NOT_BETWEEN_SYM") == 0) {
		/* becomes >= and <= (or < and >): the comparisons */
		w->implied |= IMP_LT | IMP_GT;
		if (ref_plain(w, DC_PGREF_OP, ">=", off) == -1 ||
		    ref_plain(w, DC_PGREF_OP, "<=", off) == -1)
			return -1;
		w->st->refs[w->st->nrefs - 1].nargs = 2;
		w->st->refs[w->st->nrefs - 2].nargs = 2;
		return 0;
	}
	return ref_named(w, DC_PGREF_OP, field(b, "name"), off, nargs,
	    "A_Expr");
}

static int
sub_link(struct walk *w, struct json_object *b)
{
	const char	*t = enum_value(b, "subLinkType");
	struct json_object *op = field(b, "operName");

	if (array_len(op) > 0)
		return ref_named(w, DC_PGREF_OP, op, location(b), 2,
		    "SubLink");
	if (strcmp(t, "ANY_SUBLINK") == 0 || strcmp(t, "ALL_SUBLINK") == 0 ||
	    strcmp(t, "ROWCOMPARE_SUBLINK") == 0)
		w->implied |= IMP_EQ;	/* x IN (SELECT ...) */
	return 0;
}

static int
sort_by(struct walk *w, struct json_object *b)
{
	struct json_object *op = field(b, "useOp");

	if (array_len(op) > 0)
		return ref_named(w, DC_PGREF_OP, op, location(b), 2, "SortBy");
	w->implied |= IMP_LT | IMP_GT;
	return 0;
}

/* A TypeName, written with or without its wrapper. */
static int
type_ref(struct walk *w, struct json_object *tn, int off)
{
	struct json_object *inner;

	if (tn == NULL || !json_object_is_type(tn, json_type_object))
		return 0;
	if (json_object_object_get_ex(tn, "TypeName", &inner))
		tn = inner;
	if (field(tn, "names") == NULL)
		return 0;
	if (off < 0)
		off = location(tn);
	return ref_named(w, DC_PGREF_TYPE, field(tn, "names"), off, -1,
	    "TypeCast");
}

static int
range_var(struct walk *w, struct json_object *b)
{
	struct dc_pgref	*r;
	struct json_object *o;

	if ((r = add_ref(w, DC_PGREF_REL, location(b))) == NULL)
		return -1;
	if ((o = field(b, "relname")) != NULL)
		dc_strlcpy(r->name, json_object_get_string(o), sizeof(r->name));
	if ((o = field(b, "schemaname")) != NULL)
		dc_strlcpy(r->schema, json_object_get_string(o),
		    sizeof(r->schema));
	return 0;
}

/* What a wrapped node of type t (body b) refers to. */
static int
node_refs(struct walk *w, const char *t, struct json_object *b)
{
	if (strcmp(t, "FuncCall") == 0)
		return func_call(w, b);
	if (strcmp(t, "ColumnRef") == 0)
		return column_ref(w, b);
	if (strcmp(t, "A_Indirection") == 0)
		return indirection(w, b);
	if (strcmp(t, "A_Expr") == 0)
		return a_expr(w, b);
	if (strcmp(t, "SubLink") == 0)
		return sub_link(w, b);
	if (strcmp(t, "SortBy") == 0)
		return sort_by(w, b);
	if (strcmp(t, "TypeCast") == 0)
		return type_ref(w, field(b, "typeName"), location(b));
	if (strcmp(t, "RangeTableFuncCol") == 0 ||
	    strcmp(t, "XmlSerialize") == 0)
		return type_ref(w, field(b, "typeName"), location(b));
	if (strcmp(t, "RangeVar") == 0)
		return range_var(w, b);
	if (strcmp(t, "RangeTableSample") == 0)
		return ref_named(w, DC_PGREF_TSM, field(b, "method"),
		    location(b), 1, "RangeTableSample");
	if (strcmp(t, "CaseExpr") == 0 && field(b, "arg") != NULL)
		w->implied |= IMP_EQ;	/* CASE x WHEN y: x = y */
	else if (strcmp(t, "MinMaxExpr") == 0)
		w->implied |= IMP_LT | IMP_GT;
	return 0;
}

/* --- the walk --- */

static int	 walk_value(struct walk *, struct json_object *, const char *,
		     int);

/*
 * Field names that mean the same wherever they appear, wrapped or not
 * (a set operation's branches are SelectStmts written without a wrapper).
 */
static int
check_key(struct walk *w, struct json_object *obj, const char *key,
    struct json_object *v)
{
	const char	*s;

	if (strcmp(key, "intoClause") == 0)
		return refuse(w, "IntoClause", location(obj),
		    "SELECT ... INTO creates a table; only read-only queries "
		    "are allowed");
	if (strcmp(key, "lockingClause") == 0 && array_len(v) > 0)
		return refuse(w, "LockingClause", location(obj),
		    "SELECT ... FOR UPDATE/SHARE locks rows; only read-only "
		    "queries are allowed");
	if ((strcmp(key, "groupClause") == 0 ||
	    strcmp(key, "distinctClause") == 0 ||
	    strcmp(key, "partitionClause") == 0) && array_len(v) > 0)
		w->implied |= IMP_EQ | IMP_LT;
	else if (strcmp(key, "usingClause") == 0 && array_len(v) > 0)
		w->implied |= IMP_EQ;
	else if (strcmp(key, "isNatural") == 0 && json_object_get_boolean(v))
		w->implied |= IMP_EQ;
	else if (strcmp(key, "cycle_clause") == 0)
		w->implied |= IMP_EQ | IMP_NE;
	else if (strcmp(key, "op") == 0 &&
	    json_object_is_type(v, json_type_string) &&
	    strncmp(s = json_object_get_string(v), "SETOP_", 6) == 0 &&
	    strcmp(s, "SETOP_NONE") != 0 && !flag(obj, "all"))
		w->implied |= IMP_EQ | IMP_LT;	/* UNION: duplicates removed */
	return 0;
}

static int
walk_fields(struct walk *w, struct json_object *obj, int depth)
{
	json_object_object_foreach(obj, key, v) {
		if (check_key(w, obj, key, v) == -1 ||
		    walk_value(w, v, key, depth + 1) == -1)
			return -1;
	}
	return 0;
}

/* A wrapped node {"Type": body}: its type, then what it refers to. */
static int
walk_node(struct walk *w, const char *t, struct json_object *b,
    const char *key, int depth)
{
	if (!in_list(t, node_types, DC_ARRAY_SIZE(node_types))) {
		if (key != NULL && strcmp(key, "ctequery") == 0)
			return refuse(w, t, location(b), "a data-modifying "
			    "statement inside WITH is not allowed: only "
			    "read-only queries are");
		return refuse(w, t, location(b), "%s is not part of a "
		    "read-only query", t);
	}
	if (node_refs(w, t, b) == -1)
		return -1;
	if (w->oom)
		return -1;
	return walk_fields(w, b, depth);
}

static int
walk_value(struct walk *w, struct json_object *o, const char *key, int depth)
{
	size_t	 i, n;

	if (depth > GUARD_JSON_DEPTH)
		return refuse(w, "statement", -1, "the statement is nested "
		    "too deeply");
	if (o == NULL)
		return 0;
	if (json_object_is_type(o, json_type_array)) {
		n = json_object_array_length(o);
		for (i = 0; i < n; i++)
			if (walk_value(w, json_object_array_get_idx(o, i), key,
			    depth + 1) == -1)
				return -1;
		return 0;
	}
	if (!json_object_is_type(o, json_type_object))
		return 0;
	if (json_object_object_length(o) == 1) {
		json_object_object_foreach(o, k, v) {
			if (k[0] >= 'A' && k[0] <= 'Z' &&
			    json_object_is_type(v, json_type_object))
				return walk_node(w, k, v, key, depth + 1);
		}
	}
	return walk_fields(w, o, depth);
}

static int
add_implied(struct walk *w)
{
	static const struct {
		int		 bit;
		const char	*op;
	} ops[] = {
		{ IMP_EQ, "=" }, { IMP_NE, "<>" }, { IMP_LT, "<" },
		{ IMP_GT, ">" },
	};
	size_t	 i;

	for (i = 0; i < DC_ARRAY_SIZE(ops); i++) {
		if (!(w->implied & ops[i].bit))
			continue;
		if (ref_plain(w, DC_PGREF_OP, ops[i].op, -1) == -1)
			return -1;
		w->st->refs[w->st->nrefs - 1].nargs = 2;
		w->st->refs[w->st->nrefs - 1].implicit = 1;
	}
	return 0;
}

/* The wrapped statement node of stmt: its type and body. */
static int
unwrap(struct json_object *node, const char **type, struct json_object **body)
{
	if (node == NULL || !json_object_is_type(node, json_type_object) ||
	    json_object_object_length(node) != 1)
		return -1;
	json_object_object_foreach(node, k, v) {
		*type = k;
		*body = v;
	}
	return json_object_is_type(*body, json_type_object) ? 0 : -1;
}

static int
explain(struct walk *w, struct json_object *b)
{
	struct json_object *opts = field(b, "options"), *q = field(b, "query");
	struct json_object *d, *body;
	const char	*t, *name;
	int		 i, n = array_len(opts);

	for (i = 0; i < n; i++) {
		d = json_object_array_get_idx(opts, (size_t)i);
		if (unwrap(d, &t, &body) == -1 || strcmp(t, "DefElem") != 0)
			return refuse(w, "ExplainStmt", -1, "an EXPLAIN option "
			    "the guard cannot read");
		name = enum_value(body, "defname");
		if (!in_list(name, explain_options,
		    DC_ARRAY_SIZE(explain_options)))
			return refuse(w, "DefElem", location(body), "EXPLAIN "
			    "option %.*s is not allowed", GUARD_SHOW_MAX, name);
		if (walk_value(w, field(body, "arg"), "arg", 1) == -1)
			return -1;
	}
	if (unwrap(q, &t, &body) == -1)
		return refuse(w, "ExplainStmt", -1, "EXPLAIN of nothing");
	/*
	 * EXPLAIN ANALYZE runs the statement: it is admitted only because
	 * the statement itself must pass every check a query passes.
	 */
	if (strcmp(t, "SelectStmt") != 0)
		return refuse(w, t, location(body), "EXPLAIN of %s is not "
		    "allowed: only read-only queries can be explained", t);
	return walk_node(w, t, body, "query", 1);
}

/* One statement's root node: its kind, then the walk. */
static int
walk_stmt(struct walk *w, struct json_object *stmt)
{
	const char	*t;
	struct json_object *body;

	if (unwrap(stmt, &t, &body) == -1)
		return refuse(w, "statement", -1, "a statement the guard "
		    "cannot read");
	if (strcmp(t, "SelectStmt") == 0) {
		w->st->kind = DC_PGSTMT_SELECT;
		if (walk_node(w, t, body, NULL, 0) == -1)
			return -1;
	} else if (strcmp(t, "ExplainStmt") == 0) {
		w->st->kind = DC_PGSTMT_EXPLAIN;
		if (explain(w, body) == -1)
			return -1;
	} else if (strcmp(t, "VariableShowStmt") == 0) {
		w->st->kind = DC_PGSTMT_SHOW;
		return 0;
	} else
		return refuse(w, t, location(body), "%s is not allowed: only "
		    "read-only queries (SELECT, WITH ... SELECT, VALUES, "
		    "TABLE, EXPLAIN, SHOW) are", t);
	return add_implied(w);
}

/*
 * A backslash next to a quote in a plain '...' literal: the one place
 * where standard_conforming_strings off would read the statement
 * differently.  Returns the offset of that literal, or -1.
 */
static int
ambiguous_backslash(const char *sql, size_t len, int *oom)
{
	PgQueryScanResult	 sr;
	PgQuery__ScanResult	*s;
	PgQuery__ScanToken	*t;
	size_t			 i;
	int			 at = -1, k;

	if (memchr(sql, '\\', len) == NULL)
		return -1;
	sr = pg_query_scan(sql);
	if (sr.error != NULL) {
		pg_query_free_scan_result(sr);
		return -1;	/* the parser reports the error itself */
	}
	s = pg_query__scan_result__unpack(NULL, sr.pbuf.len,
	    (const uint8_t *)sr.pbuf.data);
	if (s == NULL) {
		*oom = 1;
		pg_query_free_scan_result(sr);
		return -1;
	}
	for (i = 0; i < s->n_tokens && at < 0; i++) {
		t = s->tokens[i];
		if (t->token != PG_QUERY__TOKEN__SCONST || t->start < 0 ||
		    t->end > (int32_t)len || t->start >= t->end ||
		    sql[t->start] != '\'')
			continue;
		for (k = t->start; k + 1 < t->end; k++)
			if (sql[k] == '\\' && sql[k + 1] == '\'') {
				at = t->start;
				break;
			}
	}
	pg_query__scan_result__free_unpacked(s, NULL);
	pg_query_free_scan_result(sr);
	return at;
}

/* A parse error: PostgreSQL's message and position. */
static void
parse_error(struct walk *w, const PgQueryError *e, const char *text)
{
	size_t	 i;
	int	 ch, off = -1;

	/* cursorpos counts characters from 1; find the byte it means */
	for (i = 0, ch = 1; e->cursorpos > 0 && i <= strlen(text); i++) {
		if (((unsigned char)text[i] & 0xc0) == 0x80)
			continue;
		if (ch++ == e->cursorpos) {
			off = (int)i;
			break;
		}
	}
	refuse(w, "syntax", off, "%s", e->message != NULL ? e->message :
	    "the statement does not parse");
}

int
dc_pgguard_parse(const char *sql, size_t len, struct dc_pgstmt **out,
    struct dc_pg_refusal *ref)
{
	struct json_tokener	*tok = NULL;
	struct json_object	*root = NULL, *stmts, *s0, *o;
	struct walk		 w;
	PgQueryParseResult	 pr;
	char			*text = NULL;
	int			 rc = DC_EINVAL, at, loc, slen, oom = 0, parsed = 0;

	memset(ref, 0, sizeof(*ref));
	memset(&w, 0, sizeof(w));
	memset(&pr, 0, sizeof(pr));
	*out = NULL;
	w.sql = sql;
	w.len = len;
	w.ref = ref;
	if ((w.st = calloc(1, sizeof(*w.st))) == NULL)
		return DC_ENOMEM;
	if (sql == NULL || len == 0) {
		refuse(&w, "statement", -1, "empty statement");
		goto out;
	}
	if (memchr(sql, '\0', len) != NULL) {
		refuse(&w, "statement", -1, "the statement contains a NUL "
		    "byte");
		goto out;
	}
	if ((text = strndup(sql, len)) == NULL) {
		rc = DC_ENOMEM;
		goto out;
	}
	pr = pg_query_parse(text);
	parsed = 1;
	if (pr.error != NULL) {
		parse_error(&w, pr.error, text);
		goto out;
	}
	if ((tok = json_tokener_new_ex(GUARD_JSON_DEPTH)) == NULL) {
		rc = DC_ENOMEM;
		goto out;
	}
	root = json_tokener_parse_ex(tok, pr.parse_tree,
	    (int)strlen(pr.parse_tree));
	if (root == NULL) {
		if (json_tokener_get_error(tok) == json_tokener_error_depth)
			refuse(&w, "statement", -1, "the statement is nested "
			    "too deeply");
		else
			rc = DC_ENOMEM;
		goto out;
	}
	stmts = field(root, "stmts");
	if (array_len(stmts) == 0) {
		refuse(&w, "statement", -1, "empty statement");
		goto out;
	}
	if (array_len(stmts) > 1) {
		loc = location(json_object_array_get_idx(stmts, 1));
		o = field(json_object_array_get_idx(stmts, 1), "stmt_location");
		refuse(&w, "statement", o != NULL ? json_object_get_int(o) :
		    loc, "only one statement is allowed");
		goto out;
	}
	s0 = json_object_array_get_idx(stmts, 0);
	if (walk_stmt(&w, field(s0, "stmt")) == -1) {
		if (w.oom)
			rc = DC_ENOMEM;
		goto out;
	}
	if ((at = ambiguous_backslash(text, len, &oom)) >= 0 || oom) {
		if (oom)
			rc = DC_ENOMEM;
		else
			refuse(&w, "A_Const", at, "a backslash next to a quote "
			    "in a '...' string reads differently when "
			    "standard_conforming_strings is off: write it as "
			    "E'...' with the backslash doubled");
		goto out;
	}
	/* the statement without a trailing ';' (stmt_len 0: to the end) */
	loc = (o = field(s0, "stmt_location")) != NULL ?
	    json_object_get_int(o) : 0;
	slen = (o = field(s0, "stmt_len")) != NULL ? json_object_get_int(o) : 0;
	w.st->len = slen > 0 && (size_t)(loc + slen) <= len ?
	    (size_t)(loc + slen) : len;
	*out = w.st;
	w.st = NULL;
	rc = DC_OK;
out:
	if (root != NULL)
		json_object_put(root);
	if (tok != NULL)
		json_tokener_free(tok);
	if (parsed)
		pg_query_free_parse_result(pr);
	free(text);
	if (rc == DC_EINVAL && ref->reason[0] == '\0')
		refuse(&w, "statement", -1, "the statement was refused");
	if (rc == DC_ENOMEM)
		memset(ref, 0, sizeof(*ref));
	dc_pgguard_free(w.st);
	return rc;
}

void
dc_pgguard_free(struct dc_pgstmt *st)
{
	if (st == NULL)
		return;
	free(st->refs);
	free(st);
}

void
dc_pgguard_describe(const struct dc_pg_refusal *ref, char *buf, size_t bufsz)
{
	if (ref->pos > 0)
		snprintf(buf, bufsz, "%s (at character %d): %s", ref->node,
		    ref->pos, ref->reason);
	else
		snprintf(buf, bufsz, "%s: %s", ref->node, ref->reason);
}

int
dc_pgguard_verdict(const char *sql, size_t len, struct dc_sql_verdict *v)
{
	struct dc_pgstmt	*st;
	struct dc_pg_refusal	 ref;
	int			 rc;

	memset(v, 0, sizeof(*v));
	rc = dc_pgguard_parse(sql, len, &st, &ref);
	if (rc == DC_OK) {
		v->ok = 1;
		v->kind = st->kind == DC_PGSTMT_EXPLAIN ? DC_SQL_EXPLAIN :
		    st->kind == DC_PGSTMT_SHOW ? DC_SQL_SHOW : DC_SQL_SELECT;
		v->len = st->len;
		dc_pgguard_free(st);
	} else if (rc == DC_EINVAL) {
		dc_pgguard_describe(&ref, v->reason, sizeof(v->reason));
		dc_pgguard_clean(v->reason);
	} else
		dc_strlcpy(v->reason, "out of memory", sizeof(v->reason));
	return rc;
}

/* --- the verdict cache --- */

#define SHAPE_MARK	'\x01'	/* a literal was here */

static int
ident_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_' || c >= 0x80;
}

int
dc_pgguard_shape(const char *sql, size_t len, char *out, size_t outsz)
{
	size_t		 i = 0, o = 0, j;
	unsigned char	 c, prev = ' ';
	int		 lead_point;

	while (i < len) {
		c = (unsigned char)sql[i];
		if (c < 0x20 && c != ' ' && c != '\t' && c != '\n' &&
		    c != '\r')
			return -1;	/* control bytes, NUL, the marker */
		if (c == '\\' || c == '"' || c == '$' || c == 0x7f ||
		    (c == '-' && i + 1 < len && sql[i + 1] == '-') ||
		    (c == '/' && i + 1 < len && sql[i + 1] == '*'))
			return -1;	/* what the scanner does not read */
		if (c == '\'') {
			/* E'', N'', B'', X'', U&'': prefixed strings */
			if (ident_char(prev) || prev == '&')
				return -1;
			for (j = i + 1; j < len; j++) {
				if ((unsigned char)sql[j] < 0x20 &&
				    sql[j] != '\t' && sql[j] != '\n' &&
				    sql[j] != '\r')
					return -1;
				if (sql[j] == '\\')
					return -1;
				if (sql[j] == '\'' && j + 1 < len &&
				    sql[j + 1] == '\'')
					j++;
				else if (sql[j] == '\'')
					break;
			}
			if (j >= len || o + 1 >= outsz)
				return -1;	/* unterminated: the parser says */
			out[o++] = SHAPE_MARK;
			prev = '\'';
			i = j + 1;
			continue;
		}
		/*
		 * A number that starts with its point (".5E-5", also after
		 * an identifier: "x.5" is x then .5) is kept as written,
		 * whole, as below.
		 */
		lead_point = c == '.' && i + 1 < len && sql[i + 1] >= '0' &&
		    sql[i + 1] <= '9';
		if (lead_point || (c >= '0' && c <= '9' && !ident_char(prev) &&
		    prev != '.')) {
			for (j = i + lead_point; j < len && sql[j] >= '0' &&
			    sql[j] <= '9'; j++)
				;
			/* 1.5, 1e3, 0x1f, 1_000, 12abc: kept as written */
			if (!lead_point && (j == len ||
			    (!ident_char((unsigned char)sql[j]) &&
			    sql[j] != '.'))) {
				if (o + 1 >= outsz)
					return -1;
				out[o++] = SHAPE_MARK;
				prev = '0';
				i = j;
				continue;
			}
			/*
			 * Kept as written, whole: a number's exponent sign
			 * belongs to it ("5E-5" is one constant), so what
			 * follows is not a literal of its own.
			 */
			for (j = i + lead_point; j < len &&
			    (ident_char((unsigned char)sql[j]) || sql[j] == '.' ||
			    ((sql[j] == '-' || sql[j] == '+') &&
			    (sql[j - 1] == 'e' || sql[j - 1] == 'E'))); j++)
				;
			if (o + (j - i) >= outsz)
				return -1;
			memcpy(out + o, sql + i, j - i);
			o += j - i;
			prev = (unsigned char)sql[j - 1];
			i = j;
			continue;
		}
		if (o + 1 >= outsz)
			return -1;
		out[o++] = (char)c;
		prev = c;
		i++;
	}
	out[o] = '\0';
	return (int)o;
}

struct cache_ent {
	uint64_t	 catgen;
	uint64_t	 hash;
	char		*shape;		/* NULL: free */
	size_t		 n;
	int		 kind, unusual;
};

struct dc_pgcache {
	int		 cap, next;	/* next: the slot replaced next */
	struct cache_ent *e;
};

static uint64_t
shape_hash(uint64_t catgen, const char *s, size_t n)
{
	return dc_fnv1a(DC_FNV1A_INIT ^ catgen, s, n);
}

struct dc_pgcache *
dc_pgcache_new(int capacity)
{
	struct dc_pgcache *c;

	if (capacity <= 0 || (c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if ((c->e = calloc((size_t)capacity, sizeof(*c->e))) == NULL) {
		free(c);
		return NULL;
	}
	c->cap = capacity;
	return c;
}

void
dc_pgcache_free(struct dc_pgcache *c)
{
	int	 i;

	if (c == NULL)
		return;
	for (i = 0; i < c->cap; i++)
		free(c->e[i].shape);
	free(c->e);
	free(c);
}

/*
 * A linear scan: the cache is small (a few hundred entries) and the
 * hashes are compared first, so a miss costs a few hundred compares of
 * 64-bit words, a fraction of a parse.
 */
int
dc_pgcache_get(struct dc_pgcache *c, uint64_t catgen, const char *shape,
    size_t n, int *kind, int *unusual)
{
	uint64_t	 h = shape_hash(catgen, shape, n);
	int		 i;

	for (i = 0; i < c->cap; i++) {
		struct cache_ent *e = &c->e[i];

		if (e->shape == NULL || e->hash != h || e->catgen != catgen ||
		    e->n != n || memcmp(e->shape, shape, n) != 0)
			continue;
		*kind = e->kind;
		*unusual = e->unusual;
		return 1;
	}
	return 0;
}

void
dc_pgcache_put(struct dc_pgcache *c, uint64_t catgen, const char *shape,
    size_t n, int kind, int unusual)
{
	struct cache_ent *e = &c->e[c->next];
	char		*copy;

	if ((copy = malloc(n + 1)) == NULL)
		return;		/* a cache: nothing lost but time */
	memcpy(copy, shape, n);
	copy[n] = '\0';
	free(e->shape);
	e->shape = copy;
	e->n = n;
	e->catgen = catgen;
	e->hash = shape_hash(catgen, shape, n);
	e->kind = kind;
	e->unusual = unusual;
	c->next = (c->next + 1) % c->cap;
}
