/*
 * test_sqlguard.c - unit tests for the lexical SQL guard (sqlguard.c):
 * every admitted kind, every refused kind, and the lexical tricks that
 * try to hide a second statement or a write inside strings, comments,
 * dollar quotes and CTEs.  Each statement is handed to the guard in a
 * buffer of exactly its length, without a NUL, so ASan sees any read past
 * the end.
 */
#include <stdlib.h>
#include <string.h>

#include "t.h"
#include "dc.h"
#include "sqlguard.h"

#define ANY_LEN		((size_t)-1)

#define RO_KINDS	"only read-only queries (SELECT, WITH ... SELECT, " \
			"VALUES, TABLE, EXPLAIN, SHOW) are allowed"

static int
guard(const char *sql, size_t len, struct dc_sql_verdict *v)
{
	char	*buf;
	int	 rc;

	if ((buf = malloc(len ? len : 1)) == NULL)
		abort();
	memcpy(buf, sql, len);
	rc = dc_sql_guard(buf, len, v);
	free(buf);
	return rc;
}

/* sql (len bytes) is admitted as kind, with verdict length want_len. */
static void
admit_at(int line, const char *sql, size_t len, int kind, size_t want_len)
{
	struct dc_sql_verdict	 v;
	int			 failures = t_failures;

	CHECK(guard(sql, len, &v) == 0);
	CHECK(v.ok == 1);
	CHECK(v.kind == kind);
	CHECK_STR(v.reason, "");
	CHECK(v.len == (want_len == ANY_LEN ? len : want_len));
	if (t_failures != failures)
		fprintf(stderr, "  line %d: [%.*s] kind %d len %zu: %s\n",
		    line, (int)len, sql, v.kind, v.len, v.reason);
}

/* sql (len bytes) is refused and the reason contains want. */
static void
refuse_at(int line, const char *sql, size_t len, const char *want)
{
	struct dc_sql_verdict	 v;
	int			 failures = t_failures;

	CHECK(guard(sql, len, &v) == DC_EINVAL);
	CHECK(v.ok == 0);
	CHECK(strlen(v.reason) > 0 && strlen(v.reason) < sizeof(v.reason));
	CHECK(strstr(v.reason, want) != NULL);
	if (t_failures != failures)
		fprintf(stderr, "  line %d: [%.*s] wanted \"%s\", got \"%s\"\n",
		    line, (int)len, sql, want, v.reason);
}

#define ADMIT(sql, kind)	admit_at(__LINE__, sql, strlen(sql), kind, \
				    ANY_LEN)
#define ADMIT_LEN(sql, kind, n)	admit_at(__LINE__, sql, strlen(sql), kind, n)
#define REFUSE(sql, want)	refuse_at(__LINE__, sql, strlen(sql), want)

static void
test_admitted(void)
{
	ADMIT("SELECT 1", DC_SQL_SELECT);
	ADMIT("select 1", DC_SQL_SELECT);
	ADMIT("SeLeCt * FROM t WHERE a > 1 ORDER BY 1 LIMIT 10", DC_SQL_SELECT);
	ADMIT_LEN("SELECT 1;", DC_SQL_SELECT, 8);
	ADMIT_LEN("SELECT 1 ;  -- done\n /* bye /* nested */ */ \n",
	    DC_SQL_SELECT, 8);
	ADMIT_LEN("SELECT * FROM t WHERE a = 'x' -- ; DROP TABLE t",
	    DC_SQL_SELECT, 29);
	ADMIT("-- leading\n/* comment */ SELECT 1", DC_SQL_SELECT);
	ADMIT("WITH x AS (SELECT 1) SELECT * FROM x", DC_SQL_SELECT);
	ADMIT("WITH RECURSIVE r AS (SELECT 1 UNION ALL SELECT n+1 FROM r) "
	    "SELECT * FROM r", DC_SQL_SELECT);
	ADMIT("WITH a AS MATERIALIZED (SELECT 1), b AS NOT MATERIALIZED "
	    "(SELECT 2) SELECT * FROM a, b", DC_SQL_SELECT);
	ADMIT("WITH x AS (SELECT 1) (SELECT * FROM x) UNION (SELECT 2)",
	    DC_SQL_SELECT);
	ADMIT("VALUES (1),(2)", DC_SQL_SELECT);
	ADMIT("TABLE t", DC_SQL_SELECT);
	ADMIT("(SELECT 1)", DC_SQL_SELECT);
	ADMIT("(SELECT 1) UNION (SELECT 2)", DC_SQL_SELECT);
	ADMIT("((VALUES (1)))", DC_SQL_SELECT);
	ADMIT("(WITH x AS (SELECT 1) SELECT * FROM x)", DC_SQL_SELECT);
	ADMIT("EXPLAIN SELECT 1", DC_SQL_EXPLAIN);
	ADMIT("EXPLAIN ANALYZE SELECT * FROM t", DC_SQL_EXPLAIN);
	ADMIT("explain analyse verbose select 1", DC_SQL_EXPLAIN);
	ADMIT("EXPLAIN (ANALYZE, FORMAT JSON) SELECT 1", DC_SQL_EXPLAIN);
	ADMIT("EXPLAIN (ANALYZE true, BUFFERS) WITH x AS (SELECT 1) "
	    "SELECT * FROM x", DC_SQL_EXPLAIN);
	ADMIT("EXPLAIN (SELECT 1)", DC_SQL_EXPLAIN);
	ADMIT("EXPLAIN VALUES (1)", DC_SQL_EXPLAIN);
	ADMIT("SHOW search_path", DC_SQL_SHOW);
	ADMIT_LEN("SHOW ALL;", DC_SQL_SHOW, 8);

	/* Keywords and semicolons inside strings, identifiers, comments. */
	ADMIT("SELECT 'DELETE FROM t'", DC_SQL_SELECT);
	ADMIT("SELECT \"delete\" FROM t", DC_SQL_SELECT);
	ADMIT("SELECT \"a\"\"; DROP TABLE t\" FROM t", DC_SQL_SELECT);
	ADMIT("SELECT ';' AS semi, \";\" FROM t", DC_SQL_SELECT);
	ADMIT("SELECT $$; DELETE$$", DC_SQL_SELECT);
	ADMIT("SELECT $a$ $$ ; $a$", DC_SQL_SELECT);
	ADMIT("SELECT $tag$it's; DROP TABLE t$tag$, 'x'", DC_SQL_SELECT);
	ADMIT("SELECT E'\\'; DELETE FROM t; --'", DC_SQL_SELECT);
	ADMIT("SELECT e'a\\\\b'", DC_SQL_SELECT);
	ADMIT("SELECT 'it''s; DELETE'", DC_SQL_SELECT);
	ADMIT("SELECT U&'d\\0061t\\+000061; DROP'", DC_SQL_SELECT);
	ADMIT("SELECT B'0101', X'1F'", DC_SQL_SELECT);
	ADMIT("SELECT 'a'\n  'b; DELETE FROM t'", DC_SQL_SELECT);
	ADMIT("SELECT 'C:\\path'", DC_SQL_SELECT);
	ADMIT("/* nested /* */ DELETE */ SELECT 1", DC_SQL_SELECT);
	ADMIT_LEN("SELECT 1 -- ; DELETE FROM t\n", DC_SQL_SELECT, 8);

	/* Things that look like the forbidden words but are not. */
	ADMIT("SELECT * FROM t WHERE id = $1 AND name = $2", DC_SQL_SELECT);
	ADMIT("SELECT updated_at FROM t", DC_SQL_SELECT);
	ADMIT("SELECT deleted FROM t", DC_SQL_SELECT);
	ADMIT("SELECT insert_count, for_x, into_y FROM t", DC_SQL_SELECT);
	ADMIT("SELECT t.into, t.for FROM t", DC_SQL_SELECT);
	ADMIT("SELECT substring('abc' FROM 1 FOR 2)", DC_SQL_SELECT);
	ADMIT("SELECT * FROM t FOR READ ONLY", DC_SQL_SELECT);
	ADMIT("SELECT current_setting('search_path')", DC_SQL_SELECT);
	ADMIT("SELECT set_config_x(1), my_dblink FROM t", DC_SQL_SELECT);
	ADMIT("SELECT \"SET_CONFIG\"('a', 'b', false)", DC_SQL_SELECT);
	ADMIT("SELECT 1 AS set_config", DC_SQL_SELECT);
	ADMIT("SELECT foo$bar, 1.5e3, .5, 0x1F, 1_000 FROM t", DC_SQL_SELECT);
	ADMIT("SELECT a[1:2] FROM t WHERE b::text ~ '^x'", DC_SQL_SELECT);

	/* The length given, not the NUL, ends the statement. */
	admit_at(__LINE__, "SELECT 1; DELETE FROM t", 9, DC_SQL_SELECT, 8);
}

static void
test_refused_kinds(void)
{
	static const char *const stmts[][2] = {
		{ "INSERT INTO t VALUES (1)", "INSERT" },
		{ "update t set a = 1", "UPDATE" },
		{ "DELETE FROM t", "DELETE" },
		{ "MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE",
		    "MERGE" },
		{ "TRUNCATE t", "TRUNCATE" },
		{ "CREATE TABLE x (a int)", "CREATE" },
		{ "ALTER TABLE t ADD COLUMN b int", "ALTER" },
		{ "DROP TABLE t", "DROP" },
		{ "GRANT SELECT ON t TO u", "GRANT" },
		{ "REVOKE SELECT ON t FROM u", "REVOKE" },
		{ "BEGIN", "BEGIN" },
		{ "START TRANSACTION READ WRITE", "START" },
		{ "COMMIT", "COMMIT" },
		{ "END", "END" },
		{ "ROLLBACK", "ROLLBACK" },
		{ "SAVEPOINT s", "SAVEPOINT" },
		{ "RELEASE SAVEPOINT s", "RELEASE" },
		{ "ABORT", "ABORT" },
		{ "SET search_path = evil", "SET" },
		{ "set transaction read write", "SET" },
		{ "RESET ALL", "RESET" },
		{ "COPY t TO STDOUT", "COPY" },
		{ "DO $$BEGIN DELETE FROM t; END$$", "DO" },
		{ "CALL p()", "CALL" },
		{ "LOCK t", "LOCK" },
		{ "LISTEN c", "LISTEN" },
		{ "NOTIFY c", "NOTIFY" },
		{ "UNLISTEN *", "UNLISTEN" },
		{ "PREPARE p AS SELECT 1", "PREPARE" },
		{ "EXECUTE p", "EXECUTE" },
		{ "DEALLOCATE p", "DEALLOCATE" },
		{ "VACUUM", "VACUUM" },
		{ "ANALYZE t", "ANALYZE" },
		{ "CLUSTER t", "CLUSTER" },
		{ "REINDEX TABLE t", "REINDEX" },
		{ "DISCARD ALL", "DISCARD" },
		{ "CHECKPOINT", "CHECKPOINT" },
		{ "/* hello */ -- there\n  delete from t", "DELETE" },
		{ "(DELETE FROM t)", "DELETE" },
		{ "WITH x AS (SELECT 1) DELETE FROM t", "DELETE" },
		{ "WITH x AS (SELECT 1), y AS (SELECT 2) UPDATE t SET a = 1",
		    "UPDATE" },
		{ "SELECT$$; DELETE FROM t; --$$", "SELECT$$" },
	};
	struct dc_sql_verdict	 v;
	char			 want[160];
	size_t			 i;

	for (i = 0; i < DC_ARRAY_SIZE(stmts); i++) {
		snprintf(want, sizeof(want), "statement type %s is not "
		    "allowed: " RO_KINDS, stmts[i][1]);
		refuse_at(__LINE__, stmts[i][0], strlen(stmts[i][0]), want);
	}

	/* The whole reason, as the API returns it. */
	CHECK(guard("DELETE FROM t", 13, &v) == DC_EINVAL);
	CHECK_STR(v.reason, "statement type DELETE is not allowed: only "
	    "read-only queries (SELECT, WITH ... SELECT, VALUES, TABLE, "
	    "EXPLAIN, SHOW) are allowed");
	CHECK(v.ok == 0 && v.kind == 0 && v.len == 0);

	/* A long first word is cut, and the reason still fits. */
	REFUSE("ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMNOPQRSTUVWXYZ FROM t",
	    "statement type ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEF is not allowed: "
	    RO_KINDS);
	REFUSE("1", "a statement must start with SELECT");
	REFUSE("\"select\" 1", "a statement must start with SELECT");
}

static void
test_refused_statements(void)
{
	struct dc_sql_verdict	 v;
	char			 deep[700];

	/* Empty. */
	refuse_at(__LINE__, "", 0, "empty statement");
	REFUSE("  \n -- comment only", "empty statement");
	REFUSE("/* only a comment */", "empty statement");
	REFUSE(" ; ", "empty statement");
	CHECK(dc_sql_guard(NULL, 0, &v) == DC_EINVAL);
	CHECK_STR(v.reason, "empty statement");

	/* More than one statement. */
	REFUSE("SELECT 1; DELETE FROM t", "only one statement is allowed");
	REFUSE("SELECT 1;--\nDELETE FROM t", "only one statement is allowed");
	REFUSE("SELECT 1 /* ; */ ; DROP TABLE t",
	    "only one statement is allowed");
	REFUSE("SELECT 1;;", "only one statement is allowed");
	REFUSE("; SELECT 1", "only one statement is allowed");
	REFUSE("SELECT 1; SELECT 2", "only one statement is allowed");
	REFUSE("SELECT E'\\'' ; DELETE FROM t", "only one statement");
	REFUSE("SELECT 'a' 'b'; DELETE FROM t", "only one statement");
	/* The continued part of an E'' string is read as an E'' string. */
	REFUSE("SELECT E'x'\n'\\' , ' ; DELETE FROM t; --'",
	    "only one statement is allowed");
	/* After a slash-star comment a quote starts a new '' string. */
	REFUSE("SELECT E'x' /* */\n'\\' ; DELETE FROM t; --'",
	    "only one statement is allowed");
	/* A server with standard_conforming_strings off sees two. */
	REFUSE("SELECT 'a\\' , 'b; DELETE FROM t; --'", "ambiguous backslash");
	REFUSE("SELECT '\\'", "ambiguous backslash");

	/* Writes inside WITH. */
	REFUSE("WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x",
	    "data-modifying statement inside WITH is not allowed");
	REFUSE("WITH x AS (SELECT 1), y AS (INSERT INTO t VALUES (1) "
	    "RETURNING *) SELECT 1", "data-modifying statement inside WITH");
	REFUSE("with x as materialized (update t set a = 1 returning *) "
	    "select 1", "data-modifying statement inside WITH");
	REFUSE("WITH x AS ((DELETE FROM t RETURNING *)) SELECT 1",
	    "data-modifying statement");
	REFUSE("WITH a AS (WITH b AS (SELECT 1) DELETE FROM t RETURNING *) "
	    "SELECT * FROM a", "data-modifying statement inside WITH");
	REFUSE("SELECT * FROM (WITH y AS (SELECT 1) MERGE INTO t USING y "
	    "ON true WHEN MATCHED THEN DELETE) s",
	    "data-modifying statement inside WITH");
	REFUSE("SELECT * FROM (DELETE FROM t RETURNING *) s",
	    "data-modifying statement in a subquery");

	/* SELECT ... INTO. */
	REFUSE("select * into newtable from t", "SELECT ... INTO is not allowed");
	REFUSE("SELECT 1 INTO TEMP x", "SELECT ... INTO is not allowed");
	REFUSE("SELECT 1 /* c */ InTo x", "SELECT ... INTO is not allowed");
	REFUSE("SELECT 1for UPDATE", "FOR UPDATE/SHARE");

	/* Row locks at any depth. */
	REFUSE("SELECT * FROM t FOR UPDATE",
	    "SELECT ... FOR UPDATE/SHARE is not allowed");
	REFUSE("SELECT * FROM t FOR NO KEY UPDATE", "FOR UPDATE/SHARE");
	REFUSE("SELECT * FROM t FOR SHARE", "FOR UPDATE/SHARE");
	REFUSE("SELECT * FROM t FOR KEY SHARE NOWAIT", "FOR UPDATE/SHARE");
	REFUSE("SELECT * FROM t for /* c */ update of t", "FOR UPDATE/SHARE");
	REFUSE("SELECT * FROM (SELECT * FROM t FOR UPDATE) s",
	    "FOR UPDATE/SHARE");
	REFUSE("WITH x AS (SELECT * FROM t FOR SHARE) SELECT * FROM x",
	    "FOR UPDATE/SHARE");

	/* Functions that change state or read server files. */
	REFUSE("SELECT set_config('x','y',false)",
	    "function set_config() is not allowed");
	REFUSE("SELECT pg_catalog.set_config('x','y',false)",
	    "function set_config()");
	REFUSE("SELECT \"pg_catalog\".\"set_config\"('x','y',false)",
	    "function set_config()");
	REFUSE("SELECT SET_CONFIG /* c */ ('x','y',false)",
	    "function set_config()");
	REFUSE("SELECT U&\"set\\005fconfig\"('x','y',false)",
	    "function set_config()");
	REFUSE("SELECT U&\"set!005fconfig\" UESCAPE '!' ('x','y',false)",
	    "function set_config()");
	REFUSE("SELECT pg_terminate_backend(42)", "pg_terminate_backend()");
	REFUSE("SELECT pg_cancel_backend(pid) FROM pg_stat_activity",
	    "pg_cancel_backend()");
	REFUSE("SELECT pg_reload_conf()", "pg_reload_conf()");
	REFUSE("SELECT pg_read_file('/etc/passwd')", "pg_read_file()");
	REFUSE("SELECT pg_read_binary_file('x')", "pg_read_binary_file()");
	REFUSE("SELECT * FROM pg_ls_dir('.')", "pg_ls_dir()");
	REFUSE("SELECT lo_import('/etc/passwd')", "lo_import()");
	REFUSE("SELECT lo_export(1, '/tmp/x')", "lo_export()");
	REFUSE("SELECT * FROM dblink('db', 'DELETE FROM t') AS x(a int)",
	    "dblink()");
	REFUSE("SELECT dblink_exec('db', 'DELETE FROM t')", "dblink_exec()");
	REFUSE("SELECT query_to_xml('SELECT set_config(1)', true, false, '')",
	    "query_to_xml()");
	REFUSE("SELECT pg_advisory_lock(1)", "pg_advisory_lock()");
	REFUSE("EXPLAIN ANALYZE SELECT set_config('a', 'b', false)",
	    "function set_config()");

	/* EXPLAIN of anything but a query. */
	REFUSE("EXPLAIN ANALYZE DELETE FROM t", "EXPLAIN ANALYZE of DELETE is "
	    "not allowed: only read-only queries can be explained");
	REFUSE("EXPLAIN (ANALYZE) INSERT INTO t VALUES (1)",
	    "EXPLAIN ANALYZE of INSERT");
	REFUSE("EXPLAIN (FORMAT JSON, ANALYZE on) UPDATE t SET a = 1",
	    "EXPLAIN ANALYZE of UPDATE");
	REFUSE("EXPLAIN (ANALYZE false) DELETE FROM t", "EXPLAIN of DELETE");
	REFUSE("EXPLAIN DELETE FROM t", "EXPLAIN of DELETE");
	REFUSE("EXPLAIN ANALYZE CREATE TABLE x AS SELECT 1",
	    "EXPLAIN ANALYZE of CREATE");
	REFUSE("EXPLAIN ANALYZE EXECUTE p", "EXPLAIN ANALYZE of EXECUTE");
	REFUSE("EXPLAIN ANALYZE SELECT * INTO x FROM t", "SELECT ... INTO");
	REFUSE("EXPLAIN ANALYZE WITH x AS (DELETE FROM t RETURNING *) "
	    "SELECT 1", "data-modifying statement inside WITH");
	REFUSE("EXPLAIN", "EXPLAIN needs a read-only query");
	REFUSE("EXPLAIN (ANALYZE", "EXPLAIN options are not closed");

	/* Unterminated things. */
	REFUSE("'abc", "unterminated quoted string");
	REFUSE("SELECT 'abc", "unterminated quoted string");
	REFUSE("SELECT 'it''s", "unterminated quoted string");
	REFUSE("SELECT E'abc\\'", "unterminated quoted string");
	REFUSE("SELECT E'abc\\", "unterminated quoted string");
	REFUSE("SELECT \"abc", "unterminated quoted identifier");
	REFUSE("SELECT $$abc", "unterminated dollar-quoted string");
	REFUSE("SELECT $a$abc$b$", "unterminated dollar-quoted string");
	REFUSE("SELECT 1 /* abc", "unterminated /* comment");
	REFUSE("SELECT 1 /* /* */", "unterminated /* comment");
	REFUSE("SELECT 1; /* trailing", "unterminated /* comment");

	/* Structure. */
	REFUSE("SELECT (1", "unbalanced parentheses");
	REFUSE("SELECT 1)", "unbalanced parentheses");
	refuse_at(__LINE__, "SELECT 1\0; DELETE FROM t", 24, "NUL byte");
	memset(deep, '(', sizeof(deep));
	memcpy(deep + 300, "SELECT 1", 8);
	memset(deep + 308, ')', 300);
	refuse_at(__LINE__, deep, 608, "nested too deeply");
}

static void
test_ident(void)
{
	char	 name[80];

	CHECK(dc_sql_ident_ok("users") == 1);
	CHECK(dc_sql_ident_ok("Users_2") == 1);
	CHECK(dc_sql_ident_ok("_x$1") == 1);
	CHECK(dc_sql_ident_ok("") == 0);
	CHECK(dc_sql_ident_ok(NULL) == 0);
	CHECK(dc_sql_ident_ok("1abc") == 0);
	CHECK(dc_sql_ident_ok("a-b") == 0);
	CHECK(dc_sql_ident_ok("a b") == 0);
	CHECK(dc_sql_ident_ok("a\"b") == 0);
	CHECK(dc_sql_ident_ok("t;drop") == 0);
	CHECK(dc_sql_ident_ok("caf\xc3\xa9") == 0);
	memset(name, 'a', 63);
	name[63] = '\0';
	CHECK(dc_sql_ident_ok(name) == 1);
	name[63] = 'a';
	name[64] = '\0';
	CHECK(dc_sql_ident_ok(name) == 0);
}

int
main(void)
{
	test_admitted();
	test_refused_kinds();
	test_refused_statements();
	test_ident();
	T_DONE();
}
