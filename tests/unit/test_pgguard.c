/*
 * test_pgguard.c - unit tests for the parser-based guard (pgguard.c):
 * the statements it admits and what each one refers to, the statements
 * and nodes it refuses (with the node named), and the tricks that hide a
 * call from a name-based check: attribute notation, operators, casts,
 * quoting, nesting, CTEs, set operations, LATERAL.  Each statement is
 * handed over in a buffer of exactly its length, without a NUL, so ASan
 * sees any read past the end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t.h"
#include "dc.h"
#include "pgguard.h"
#include "sqlguard.h"

static int
parse(const char *sql, size_t len, struct dc_pgstmt **st,
    struct dc_pg_refusal *ref)
{
	char	*buf;
	int	 rc;

	if ((buf = malloc(len ? len : 1)) == NULL)
		abort();
	if (len > 0)
		memcpy(buf, sql, len);
	rc = dc_pgguard_parse(sql != NULL ? buf : NULL, len, st, ref);
	free(buf);
	return rc;
}

/*
 * The references as one string: F schema.name/nargs (F* when any
 * overload), f field, O op/nargs (o implied), T type, R relation,
 * S sampling method; separated by spaces.
 */
static void
refs_string(const struct dc_pgstmt *st, char *buf, size_t sz)
{
	const struct dc_pgref *r;
	size_t	 o = 0;
	int	 i;
	char	 c;

	buf[0] = '\0';
	for (i = 0; i < st->nrefs && o < sz; i++) {
		r = &st->refs[i];
		switch (r->kind) {
		case DC_PGREF_FUNC:	c = r->anyargs ? '*' : 'F'; break;
		case DC_PGREF_FIELD:	c = 'f'; break;
		case DC_PGREF_OP:	c = r->implicit ? 'o' : 'O'; break;
		case DC_PGREF_TYPE:	c = 'T'; break;
		case DC_PGREF_REL:	c = 'R'; break;
		default:		c = 'S'; break;
		}
		o += (size_t)snprintf(buf + o, sz - o, "%s%c %s%s%s", i ? " " :
		    "", c, r->schema, r->schema[0] ? "." : "", r->name);
		if (o < sz && (r->kind == DC_PGREF_FUNC ||
		    (r->kind == DC_PGREF_OP && !r->implicit)))
			o += (size_t)snprintf(buf + o, sz - o, "/%d", r->nargs);
	}
}

/* sql is admitted as kind and refers to exactly refs. */
static void
admit_at(int line, const char *sql, int kind, const char *refs)
{
	struct dc_pgstmt	*st = NULL;
	struct dc_pg_refusal	 ref;
	char			 got[2048];
	int			 failures = t_failures;

	CHECK(parse(sql, strlen(sql), &st, &ref) == DC_OK);
	if (st != NULL) {
		CHECK(st->kind == kind);
		refs_string(st, got, sizeof(got));
		if (refs != NULL)
			CHECK_STR(got, refs);
	}
	if (t_failures != failures)
		fprintf(stderr, "  line %d: [%s]: %s: %s\n", line, sql,
		    ref.node, ref.reason);
	dc_pgguard_free(st);
}

/* sql is refused at node, with want in the reason. */
static void
refuse_at(int line, const char *sql, const char *node, const char *want)
{
	struct dc_pgstmt	*st = NULL;
	struct dc_pg_refusal	 ref;
	int			 failures = t_failures;

	CHECK(parse(sql, strlen(sql), &st, &ref) == DC_EINVAL);
	CHECK(st == NULL);
	CHECK_STR(ref.node, node);
	CHECK(strstr(ref.reason, want) != NULL);
	if (t_failures != failures)
		fprintf(stderr, "  line %d: [%s]: %s: %s\n", line, sql,
		    ref.node, ref.reason);
	dc_pgguard_free(st);
}

#define ADMIT(sql, kind, refs)	admit_at(__LINE__, sql, kind, refs)
#define REFUSE(sql, node, want)	refuse_at(__LINE__, sql, node, want)
#define SEL			DC_PGSTMT_SELECT

static void
test_kinds(void)
{
	ADMIT("SELECT 1", SEL, "");
	ADMIT("select 1;", SEL, "");
	ADMIT("  SELECT 1 ; -- done", SEL, "");
	ADMIT("VALUES (1), (2)", SEL, "");
	ADMIT("TABLE t", SEL, "R t");
	ADMIT("(SELECT 1)", SEL, "");
	ADMIT("WITH x AS (SELECT 1) SELECT * FROM x", SEL, "R x");
	ADMIT("WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t "
	    "WHERE n < 5) SELECT n FROM t", SEL,
	    "R t O +/2 R t O </2");
	ADMIT("SHOW work_mem", DC_PGSTMT_SHOW, "");
	ADMIT("SHOW ALL", DC_PGSTMT_SHOW, "");
	ADMIT("EXPLAIN SELECT 1", DC_PGSTMT_EXPLAIN, "");
	ADMIT("EXPLAIN (ANALYZE, FORMAT JSON, BUFFERS off) SELECT now()",
	    DC_PGSTMT_EXPLAIN, "F now/0");
	ADMIT("explain analyze verbose select 1", DC_PGSTMT_EXPLAIN, "");
	ADMIT("SELECT * FROM ONLY s.t AS x(a, b)", SEL, "R s.t");
}

static void
test_statement_length(void)
{
	struct dc_pgstmt	*st;
	struct dc_pg_refusal	 ref;

	CHECK(parse("SELECT 1;  ", 11, &st, &ref) == DC_OK);
	CHECK(st->len == 8);
	dc_pgguard_free(st);
	CHECK(parse("SELECT 1", 8, &st, &ref) == DC_OK);
	CHECK(st->len == 8);
	dc_pgguard_free(st);
	CHECK(parse("/* c */ SELECT 'a;b' -- x", 25, &st, &ref) == DC_OK);
	CHECK(st->len == 25);
	dc_pgguard_free(st);
	CHECK(parse(NULL, 0, &st, &ref) == DC_EINVAL);
	CHECK(strstr(ref.reason, "empty statement") != NULL);
	CHECK(parse("SELECT\0 1", 9, &st, &ref) == DC_EINVAL);
	CHECK(strstr(ref.reason, "NUL byte") != NULL);
}

static void
test_refs(void)
{
	ADMIT("SELECT lower(name), pg_catalog.now(), count(*) FROM users",
	    SEL, "F lower/1 F pg_catalog.now/0 F count/0 R users");
	ADMIT("SELECT f(a => 1), g(VARIADIC ARRAY[1])", SEL,
	    "* f/1 * g/1");
	ADMIT("SELECT count(DISTINCT x) FROM t", SEL,
	    "F count/1 R t o = o <");
	ADMIT("SELECT a FROM t ORDER BY a DESC", SEL, "R t o < o >");
	ADMIT("SELECT a FROM t ORDER BY a USING ~<~", SEL, "R t O ~<~/2");
	ADMIT("SELECT a FROM t GROUP BY a", SEL, "R t o = o <");
	ADMIT("SELECT DISTINCT a FROM t", SEL, "R t o = o <");
	ADMIT("SELECT 1 UNION SELECT 2", SEL, "o = o <");
	ADMIT("SELECT 1 UNION ALL SELECT 2", SEL, "");
	ADMIT("SELECT * FROM a JOIN b USING (id)", SEL, "R a R b o =");
	ADMIT("SELECT * FROM a NATURAL JOIN b", SEL, "R a R b o =");
	ADMIT("SELECT 1 + 2, -a, 1 OPERATOR(pg_catalog.*) 2", SEL,
	    "O +/2 O -/1 O pg_catalog.*/2");
	ADMIT("SELECT a BETWEEN 1 AND 2", SEL, "O >=/2 O <=/2 o < o >");
	ADMIT("SELECT a IN (1, 2), b NOT IN (3)", SEL, "O =/2 O <>/2");
	ADMIT("SELECT a IN (SELECT 1)", SEL, "o =");
	ADMIT("SELECT a = ANY (ARRAY[1])", SEL, "O =/2");
	ADMIT("SELECT a IS DISTINCT FROM b, NULLIF(a, b)", SEL,
	    "O =/2 O =/2");
	ADMIT("SELECT a LIKE 'x%', a SIMILAR TO 'y'", SEL,
	    "O ~~/2 O ~/2 F pg_catalog.similar_to_escape/1");
	ADMIT("SELECT CASE a WHEN 1 THEN 2 END", SEL, "o =");
	ADMIT("SELECT CASE WHEN a THEN 2 END", SEL, "");
	ADMIT("SELECT GREATEST(1, 2)", SEL, "o < o >");
	ADMIT("SELECT 1::int, CAST(x AS varchar(10)), 'a'::regclass, "
	    "int4 '5', x::text[]", SEL,
	    "T pg_catalog.int4 T pg_catalog.varchar T regclass T int4 T text");
	ADMIT("SELECT a AT TIME ZONE 'utc', EXTRACT(year FROM now())", SEL,
	    "F pg_catalog.timezone/2 F pg_catalog.extract/2 F now/0");
	ADMIT("SELECT * FROM t TABLESAMPLE bernoulli (5)", SEL,
	    "S bernoulli R t");
	ADMIT("SELECT * FROM t, LATERAL generate_series(1, t.n) g", SEL,
	    "R t F generate_series/2 f n");
	ADMIT("SELECT * FROM ROWS FROM (f(1), g(2)) AS x", SEL,
	    "F f/1 F g/1");
	ADMIT("SELECT x FROM XMLTABLE('/r' PASSING d COLUMNS a int PATH 'a')",
	    SEL, "T pg_catalog.int4");
	ADMIT("SELECT row_number() OVER (PARTITION BY a ORDER BY b) FROM t",
	    SEL, "F row_number/0 R t o = o < o >");
	ADMIT("SELECT current_user, current_date, (1, 2) < (3, 4)", SEL,
	    "O </2");
	ADMIT("SELECT (SELECT max(a) FROM t), EXISTS (SELECT 1)", SEL,
	    "F max/1 R t");
}

static void
test_attribute_notation(void)
{
	/* each of these calls the function with no "name(" in the text */
	ADMIT("SELECT (1).pg_advisory_lock", SEL, "f pg_advisory_lock");
	ADMIT("SELECT (pid).pg_terminate_backend FROM pg_stat_activity", SEL,
	    "f pg_terminate_backend R pg_stat_activity");
	ADMIT("SELECT s.pid.pg_cancel_backend FROM pg_stat_activity s", SEL,
	    "f pid f pg_cancel_backend R pg_stat_activity");
	ADMIT("SELECT x.setseed FROM (SELECT 0.5 AS x) s", SEL, "f setseed");
	ADMIT("SELECT (x).a.\"set_config\" FROM t", SEL,
	    "f a f set_config R t");
	ADMIT("SELECT (a)[1].\"Quoted\" FROM t", SEL, "f Quoted R t");
	ADMIT("SELECT \"PG_SLEEP\"(1), \"pg_sleep\"(1)", SEL,
	    "F PG_SLEEP/1 F pg_sleep/1");
	ADMIT("SELECT U&\"pg\\005fsleep\"(1)", SEL, "F pg_sleep/1");
}

static void
test_hidden(void)
{
	/* calls nested and quoted every way still come out as references */
	ADMIT("SELECT * FROM ts_stat('SELECT 1')", SEL, "F ts_stat/1");
	ADMIT("SELECT 1 WHERE EXISTS (SELECT pg_reload_conf())", SEL,
	    "F pg_reload_conf/0");
	ADMIT("SELECT (SELECT (SELECT set_config('a', 'b', false)))", SEL,
	    "F set_config/3");
	ADMIT("WITH a AS (SELECT pg_sleep(1)) SELECT * FROM a", SEL,
	    "R a F pg_sleep/1");
	ADMIT("SELECT 1 UNION SELECT nextval('s')", SEL,
	    "F nextval/1 o = o <");
	ADMIT("SELECT * FROM t, LATERAL (SELECT lo_import('/etc/passwd')) x",
	    SEL, "R t F lo_import/1");
	ADMIT("SELECT 1 ORDER BY pg_catalog.pg_advisory_lock(1)", SEL,
	    "F pg_catalog.pg_advisory_lock/1 o < o >");
	ADMIT("SELECT $$pg_sleep(1)$$, 'nextval(1)', /* setseed(0) */ 1", SEL,
	    "");
	ADMIT("SELECT mydb.public.mark_seen()", SEL, "F public.mark_seen/0");
	ADMIT("SELECT 1 FROM t GROUP BY ROLLUP (a, b)", SEL,
	    "R t o = o <");
}

static void
test_refused(void)
{
	REFUSE("", "statement", "empty statement");
	REFUSE(" ; -- nothing", "statement", "empty statement");
	REFUSE("SELECT 1; SELECT 2", "statement", "only one statement");
	REFUSE("SELECT 1; DROP TABLE t", "statement", "only one statement");
	REFUSE("INSERT INTO t VALUES (1)", "InsertStmt", "not allowed");
	REFUSE("UPDATE t SET a = 1", "UpdateStmt", "not allowed");
	REFUSE("DELETE FROM t", "DeleteStmt", "not allowed");
	REFUSE("MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE",
	    "MergeStmt", "not allowed");
	REFUSE("DROP TABLE t", "DropStmt", "not allowed");
	REFUSE("CREATE TEMP TABLE t (a int)", "CreateStmt", "not allowed");
	REFUSE("COPY t TO '/tmp/x'", "CopyStmt", "not allowed");
	REFUSE("SET work_mem = '1GB'", "VariableSetStmt", "not allowed");
	REFUSE("RESET ALL", "VariableSetStmt", "not allowed");
	REFUSE("BEGIN", "TransactionStmt", "not allowed");
	REFUSE("COMMIT", "TransactionStmt", "not allowed");
	REFUSE("LISTEN x", "ListenStmt", "not allowed");
	REFUSE("NOTIFY x", "NotifyStmt", "not allowed");
	REFUSE("PREPARE p AS SELECT 1", "PrepareStmt", "not allowed");
	REFUSE("DECLARE c CURSOR WITH HOLD FOR SELECT 1", "DeclareCursorStmt",
	    "not allowed");
	REFUSE("DO $$BEGIN PERFORM 1; END$$", "DoStmt", "not allowed");
	REFUSE("CALL p()", "CallStmt", "not allowed");
	REFUSE("LOCK TABLE t", "LockStmt", "not allowed");
	REFUSE("DISCARD ALL", "DiscardStmt", "not allowed");
	REFUSE("LOAD 'x'", "LoadStmt", "not allowed");
	REFUSE("VACUUM t", "VacuumStmt", "not allowed");
	REFUSE("SELECT * INTO new_t FROM t", "IntoClause", "creates a table");
	REFUSE("SELECT * FROM t FOR UPDATE", "LockingClause", "FOR UPDATE");
	REFUSE("SELECT * FROM t FOR KEY SHARE", "LockingClause", "FOR UPDATE");
	REFUSE("SELECT 1 UNION SELECT * FROM t FOR SHARE", "LockingClause",
	    "FOR UPDATE");
	REFUSE("WITH a AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * "
	    "FROM a", "InsertStmt", "inside WITH");
	REFUSE("WITH a AS (DELETE FROM t RETURNING *) SELECT 1", "DeleteStmt",
	    "inside WITH");
	REFUSE("WITH a AS (SELECT 1) DELETE FROM t", "DeleteStmt",
	    "not allowed");
	REFUSE("EXPLAIN ANALYZE DELETE FROM t", "DeleteStmt",
	    "only read-only queries can be explained");
	REFUSE("EXPLAIN ANALYZE INSERT INTO t SELECT 1", "InsertStmt",
	    "only read-only queries can be explained");
	REFUSE("EXPLAIN ANALYZE CREATE TABLE x AS SELECT 1", "CreateTableAsStmt",
	    "only read-only queries can be explained");
	REFUSE("EXPLAIN ANALYZE WITH a AS (UPDATE t SET x = 1 RETURNING 1) "
	    "SELECT 1", "UpdateStmt", "inside WITH");
	REFUSE("EXPLAIN EXECUTE p", "ExecuteStmt",
	    "only read-only queries can be explained");
	REFUSE("SELECT 1 FROM", "syntax", "syntax error");
	REFUSE("SELEC 1", "syntax", "syntax error");
	REFUSE("DESCRIBE t", "syntax", "syntax error");
	REFUSE("SELECT 'unterminated", "syntax", "unterminated");
	REFUSE("SELECT 'a\\' , pg_sleep(1), ''", "A_Const",
	    "standard_conforming_strings");
	REFUSE("SELECT 'it\\''s'", "A_Const", "standard_conforming_strings");
}

static void
test_backslashes(void)
{
	/* backslashes that read the same either way are fine */
	ADMIT("SELECT E'a\\'b'", SEL, "");
	ADMIT("SELECT 'C:\\path'", SEL, "");
	ADMIT("SELECT $$a\\'b$$", SEL, "");
	ADMIT("SELECT \"a\\\" FROM t", SEL, "R t");
	ADMIT("SELECT 'x' -- a \\' in a comment", SEL, "");
}

static void
test_deep(void)
{
	struct dc_pgstmt	*st;
	struct dc_pg_refusal	 ref;
	char			*buf;
	size_t			 i, n = 5000, o = 0;

	/* nesting PostgreSQL refuses, or the walk refuses: never a crash */
	buf = malloc(n * 3 + 16);
	o += (size_t)sprintf(buf, "SELECT ");
	for (i = 0; i < n; i++) {
		buf[o++] = 'f';
		buf[o++] = '(';
	}
	buf[o++] = '1';
	for (i = 0; i < n; i++)
		buf[o++] = ')';
	CHECK(parse(buf, o, &st, &ref) == DC_EINVAL);
	CHECK(ref.reason[0] != '\0');
	free(buf);
}

static void
test_describe(void)
{
	struct dc_pgstmt	*st;
	struct dc_pg_refusal	 ref;
	char			 buf[512];

	CHECK(parse("SELECT 1; INSERT INTO t VALUES (1)", 34, &st, &ref) ==
	    DC_EINVAL);
	dc_pgguard_describe(&ref, buf, sizeof(buf));
	CHECK_STR(buf, "statement (at character 10): only one statement is "
	    "allowed");
	CHECK(parse("SELECT 1 FROM FROM", 18, &st, &ref) == DC_EINVAL);
	CHECK(ref.pos == 15);
	CHECK_STR(ref.node, "syntax");
	/* PostgreSQL counts characters, not bytes */
	CHECK(parse("SELECT 'é', 1 FORM t", 21, &st, &ref) == DC_EINVAL);
	CHECK(ref.pos == 20);
}

static void
test_clean(void)
{
	char	 a[] = "caf\xc3\xa9 \x01 \xff\xfe \xe2\x82 x \xed\xa0\x80 \xf0\x9f\x98\x80";
	char	 b[] = "\xc3";

	dc_pgguard_clean(a);
	CHECK_STR(a, "caf\xc3\xa9 ? ?? ?? x ??? \xf0\x9f\x98\x80");
	dc_pgguard_clean(b);
	CHECK_STR(b, "?");
}

static void
shape_is(int line, const char *sql, const char *want)
{
	char	 out[256];
	int	 n = dc_pgguard_shape(sql, strlen(sql), out, sizeof(out));

	if (want == NULL) {
		CHECK(n == -1);
		if (n != -1)
			fprintf(stderr, "  line %d: [%s] has a shape\n", line,
			    sql);
		return;
	}
	CHECK(n == (int)strlen(want));
	CHECK(n >= 0 && strcmp(out, want) == 0);
	if (n < 0 || strcmp(out, want) != 0)
		fprintf(stderr, "  line %d: [%s] shape [%s]\n", line, sql,
		    n < 0 ? "(none)" : out);
}

#define SHAPE(sql, want)	shape_is(__LINE__, sql, want)

static void
test_shape(void)
{
	SHAPE("SELECT abalance FROM pgbench_accounts WHERE aid = 12345",
	    "SELECT abalance FROM pgbench_accounts WHERE aid = \x01");
	SHAPE("SELECT 'it''s', 'a;b' , x FROM t;",
	    "SELECT \x01, \x01 , x FROM t;");
	/* kept as written: not a plain integer */
	SHAPE("SELECT t1.a2, 1.5, .5, 1e3, 0x1f, 1_000, 12abc, x.1",
	    "SELECT t1.a2, 1.5, .5, 1e3, 0x1f, 1_000, 12abc, x.1");
	SHAPE("SELECT -5, (7)", "SELECT -\x01, (\x01)");
	/* an exponent's sign belongs to its number, point first too */
	SHAPE("SELECT 5E-5, .5E-5, x.5e+5 - 3",
	    "SELECT 5E-5, .5E-5, x.5e+5 - \x01");
	/* what the tiny scanner does not read: no shape, the parser */
	SHAPE("SELECT E'a'", NULL);
	SHAPE("SELECT e'a'", NULL);
	SHAPE("SELECT U&'a'", NULL);
	SHAPE("SELECT B'01', X'1f', N'x'", NULL);
	SHAPE("SELECT 'a\\b'", NULL);
	SHAPE("SELECT \"x\"", NULL);
	SHAPE("SELECT $$x$$", NULL);
	SHAPE("SELECT $1", NULL);
	SHAPE("SELECT 1 -- c", NULL);
	SHAPE("SELECT /* c */ 1", NULL);
	SHAPE("SELECT 'unterminated", NULL);
	SHAPE("SELECT '\x01'", NULL);
	SHAPE("SELECT \x01", NULL);
}

static void
test_cache(void)
{
	struct dc_pgcache *c = dc_pgcache_new(2);
	int	 kind = 0, unusual = -1;

	CHECK(c != NULL);
	CHECK(dc_pgcache_get(c, 1, "a", 1, &kind, &unusual) == 0);
	dc_pgcache_put(c, 1, "a", 1, DC_PGSTMT_SELECT, 0);
	dc_pgcache_put(c, 1, "b", 1, DC_PGSTMT_SHOW, 1);
	CHECK(dc_pgcache_get(c, 1, "a", 1, &kind, &unusual) == 1);
	CHECK(kind == DC_PGSTMT_SELECT && unusual == 0);
	CHECK(dc_pgcache_get(c, 1, "b", 1, &kind, &unusual) == 1);
	CHECK(kind == DC_PGSTMT_SHOW && unusual == 1);
	/* another catalog: another verdict */
	CHECK(dc_pgcache_get(c, 2, "a", 1, &kind, &unusual) == 0);
	CHECK(dc_pgcache_get(c, 1, "ab", 2, &kind, &unusual) == 0);
	/* oldest first out */
	dc_pgcache_put(c, 2, "c", 1, DC_PGSTMT_EXPLAIN, 0);
	CHECK(dc_pgcache_get(c, 1, "a", 1, &kind, &unusual) == 0);
	CHECK(dc_pgcache_get(c, 2, "c", 1, &kind, &unusual) == 1);
	dc_pgcache_free(c);
	CHECK(dc_pgcache_new(0) == NULL);
}

/* The dialect's guard: the parser's verdict in the lexical guards' form. */
static void
test_verdict(void)
{
	static const char bad[] = "SELECT \x01\xff FROM";
	struct dc_sql_verdict v;

	CHECK(dc_pgguard_verdict("SELECT 1;  ", 11, &v) == DC_OK);
	CHECK(v.ok == 1 && v.kind == DC_SQL_SELECT && v.len == 8);
	CHECK(dc_pgguard_verdict("EXPLAIN SELECT 1", 16, &v) == DC_OK);
	CHECK(v.kind == DC_SQL_EXPLAIN && v.len == 16);
	CHECK(dc_pgguard_verdict("SHOW work_mem", 13, &v) == DC_OK);
	CHECK(v.kind == DC_SQL_SHOW);
	CHECK(dc_pgguard_verdict("DELETE FROM t", 13, &v) == DC_EINVAL);
	CHECK(v.ok == 0 && strncmp(v.reason, "DeleteStmt: ", 12) == 0);
	/* the grammar alone: functions take the catalog (sqlcheck.h) */
	CHECK(dc_pgguard_verdict("SELECT mark_seen()", 18, &v) == DC_OK);
	CHECK(dc_pgguard_verdict("SELECT 1; SELECT 2", 18, &v) == DC_EINVAL);
	CHECK(strstr(v.reason, "only one statement") != NULL);
	/* a reason that quotes bad bytes is still fit for JSON */
	CHECK(dc_pgguard_verdict(bad, strlen(bad), &v) == DC_EINVAL);
	CHECK(strchr(v.reason, '\x01') == NULL);
}

int
main(void)
{
	test_clean();
	test_shape();
	test_cache();
	test_kinds();
	test_statement_length();
	test_refs();
	test_attribute_notation();
	test_hidden();
	test_refused();
	test_backslashes();
	test_deep();
	test_describe();
	test_verdict();
	T_DONE();
}
