/*
 * pgguard.h - the guard in front of every statement sent to a PostgreSQL
 * target, built on PostgreSQL's own grammar (libpg_query, the server's
 * parser as a library).
 *
 * dc_pgguard_parse() admits exactly one statement of a read-only kind
 * (SELECT or VALUES without INTO or a locking clause, WITH without a
 * data-modifying CTE, TABLE, SHOW, EXPLAIN of an admitted statement) and
 * walks its whole parse tree.  Every node type must be one a read-only
 * query is made of; anything else (an INSERT inside a CTE, a utility
 * statement, a node this code does not know) is refused by name.
 *
 * What the grammar alone cannot judge is collected as references: every
 * function call, every field selection that PostgreSQL may read as a
 * function call ((x).f and x.f, both f(x) when f is a function), every
 * operator (written, or implied by ORDER BY, GROUP BY, DISTINCT, IN,
 * CASE, joins USING...), every cast target type, every relation and
 * TABLESAMPLE method.  pgpolicy.h judges them against the target's own
 * catalog.  Nothing here needs a connection: it is pure and unit-tested.
 */
#ifndef DC_PGGUARD_H
#define DC_PGGUARD_H

#include <stddef.h>
#include <stdint.h>

#define DC_PG_NAME_MAX	64	/* NAMEDATALEN: identifiers are cut to 63 */

enum dc_pg_stmt_kind {
	DC_PGSTMT_SELECT = 1,	/* SELECT, VALUES, TABLE, WITH ... SELECT */
	DC_PGSTMT_EXPLAIN,
	DC_PGSTMT_SHOW,
};

enum dc_pgref_kind {
	DC_PGREF_FUNC = 1,	/* f(...): name, nargs */
	DC_PGREF_FIELD,		/* x.f or (x).f: a call f(x) if f is one */
	DC_PGREF_OP,		/* an operator: nargs 1 prefix, 2 infix */
	DC_PGREF_TYPE,		/* the target type of a cast */
	DC_PGREF_REL,		/* a relation read (view, table...) */
	DC_PGREF_TSM,		/* a TABLESAMPLE method */
};

struct dc_pgref {
	int		 kind;		/* enum dc_pgref_kind */
	int		 nargs;		/* FUNC, OP; -1 unknown */
	int		 anyargs;	/* FUNC: VARIADIC or named arguments:
					   match any overload by name */
	int		 implicit;	/* OP: implied, not written */
	int		 pos;		/* byte offset in the statement, -1 */
	char		 schema[DC_PG_NAME_MAX];	/* "" unqualified */
	char		 name[DC_PG_NAME_MAX];
};

/*
 * A refusal: which node and why.  The reason is a sentence of its own
 * (no "SQL rejected:" prefix) so each route can phrase its answer.
 */
struct dc_pg_refusal {
	char		 node[48];	/* "FuncCall pg_sleep", "InsertStmt" */
	int		 pos;		/* byte offset, -1 unknown */
	char		 reason[320];
};

/* An admitted statement and what it refers to. */
struct dc_pgstmt {
	int		 kind;		/* enum dc_pg_stmt_kind */
	size_t		 len;		/* bytes to send: no trailing ';' */
	int		 nrefs;
	struct dc_pgref	*refs;
};

/*
 * Parse sql (len bytes, need not be NUL terminated).  Returns 0 with
 * *out (free with dc_pgguard_free), DC_EINVAL with ref filled, or
 * DC_ENOMEM.
 */
int		 dc_pgguard_parse(const char *sql, size_t len,
		     struct dc_pgstmt **out, struct dc_pg_refusal *ref);
void		 dc_pgguard_free(struct dc_pgstmt *st);

/*
 * The parser's verdict alone, in the lexical guards' form (sqlguard.h):
 * the PostgreSQL dialect's guard (driver.h).  It cannot judge functions
 * (that takes the target's catalog, sqlcheck.h), so a statement that
 * reaches a target goes through dc_sql_check() instead.  0 admitted,
 * DC_EINVAL refused (v->reason), DC_ENOMEM.
 */
struct dc_sql_verdict;
int		 dc_pgguard_verdict(const char *sql, size_t len,
		     struct dc_sql_verdict *v);

/*
 * Make s fit for JSON and logs in place: control characters and bytes
 * that are not UTF-8 become '?' (a refusal may quote the statement).
 */
void		 dc_pgguard_clean(char *s);

/* "node (position N): reason" into buf, for logs and details. */
void		 dc_pgguard_describe(const struct dc_pg_refusal *ref,
		     char *buf, size_t bufsz);

/*
 * The verdict cache.  A statement's shape is its text with each plain
 * integer and '...' string literal replaced by a marker; two statements
 * of one shape differ only in constant values, which no check here or
 * in pgpolicy.h looks at, so they share a verdict.  The shape is only
 * computed for text a tiny scanner reads exactly as PostgreSQL does: no
 * comment, no quoted identifier, no dollar quote, no backslash, no
 * prefixed string (E'', U&'', B'', X'', N''), no control byte; any
 * other statement goes through the parser every time.
 *
 * Shape of sql into out (outsz bytes): its length, or -1 when the
 * statement has no shape (or it does not fit).
 */
int		 dc_pgguard_shape(const char *sql, size_t len, char *out,
		     size_t outsz);

/*
 * Admitted verdicts by (catalog generation, shape), a fixed number of
 * entries replaced oldest first.  Only admissions are kept: a refusal
 * is worked out again, with positions in its own text.
 */
struct dc_pgcache;

struct dc_pgcache *dc_pgcache_new(int capacity);
void		 dc_pgcache_free(struct dc_pgcache *c);

/* 1 (kind and unusual filled) when shape was admitted under catgen. */
int		 dc_pgcache_get(struct dc_pgcache *c, uint64_t catgen,
		     const char *shape, size_t n, int *kind, int *unusual);
void		 dc_pgcache_put(struct dc_pgcache *c, uint64_t catgen,
		     const char *shape, size_t n, int kind, int unusual);

#endif /* DC_PGGUARD_H */
