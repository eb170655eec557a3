/*
 * test_mysql.c - unit tests for what the MySQL/MariaDB driver decides
 * without a server: its URL forms (drivers/mysql), how it binds the
 * catalog query's parameters, and the MySQL reading of the lexical guard
 * (dc_sql_guard_mysql): admitted kinds, refused kinds, and the lexical
 * tricks MySQL adds (# and -- comments, executable comments, backslashes
 * and double quotes under every sql_mode).  Statements are handed over in
 * buffers of exactly their length, without a NUL, so ASan sees any read
 * past the end.
 */
#include <stdlib.h>
#include <string.h>

#include "t.h"
#include "dc.h"
#include "drv_mysql.h"
#include "sqlguard.h"

static int
guard(const char *sql, struct dc_sql_verdict *v)
{
	size_t	 len = strlen(sql);
	char	*buf;
	int	 rc;

	if ((buf = malloc(len ? len : 1)) == NULL)
		abort();
	memcpy(buf, sql, len);
	rc = dc_sql_guard_mysql(buf, len, v);
	free(buf);
	return rc;
}

static void
admit_at(int line, const char *sql, int kind)
{
	struct dc_sql_verdict	 v;
	int			 failures = t_failures;

	CHECK(guard(sql, &v) == 0);
	CHECK(v.ok == 1 && v.kind == kind);
	if (t_failures != failures)
		fprintf(stderr, "  line %d: [%s] kind %d: %s\n", line, sql,
		    v.kind, v.reason);
}

static void
refuse_at(int line, const char *sql, const char *want)
{
	struct dc_sql_verdict	 v;
	int			 failures = t_failures;

	CHECK(guard(sql, &v) == DC_EINVAL);
	CHECK(v.ok == 0 && strstr(v.reason, want) != NULL);
	if (t_failures != failures)
		fprintf(stderr, "  line %d: [%s]: \"%s\" wanted \"%s\"\n", line,
		    sql, v.reason, want);
}

#define ADMIT(sql, kind)	admit_at(__LINE__, (sql), (kind))
#define REFUSE(sql, want)	refuse_at(__LINE__, (sql), (want))

static void
test_admitted(void)
{
	struct dc_sql_verdict v;

	ADMIT("SELECT 1", DC_SQL_SELECT);
	ADMIT("select `id`, `order` from `shop`.`orders` where x = 'a;b'",
	    DC_SQL_SELECT);
	ADMIT("SELECT * FROM t WHERE name = \"it's\" -- trailing\n",
	    DC_SQL_SELECT);
	ADMIT("SELECT 1 # a comment; DROP TABLE t\n", DC_SQL_SELECT);
	ADMIT("SELECT 1--1", DC_SQL_SELECT);
	ADMIT("SELECT 'a\\\\b', 'c''d'", DC_SQL_SELECT);
	REFUSE("SELECT 'a\\'b', 'c''d'", "ambiguous");
	ADMIT("SELECT `we``ird`", DC_SQL_SELECT);
	ADMIT("SELECT /* update t set x = 1; */ 2", DC_SQL_SELECT);
	ADMIT("WITH c AS (SELECT 1 AS n) SELECT n FROM c", DC_SQL_SELECT);
	ADMIT("(SELECT 1) UNION (SELECT 2)", DC_SQL_SELECT);
	ADMIT("SELECT SLEEP(1)", DC_SQL_SELECT);
	ADMIT("SELECT @@version, @x", DC_SQL_SELECT);
	ADMIT("SELECT /*!40001 SQL_NO_CACHE */ 1", DC_SQL_SELECT);
	ADMIT("select count(*) as row_count from `db_1`.`orders`;",
	    DC_SQL_SELECT);
	ADMIT("EXPLAIN SELECT * FROM t", DC_SQL_EXPLAIN);
	ADMIT("EXPLAIN FORMAT=JSON SELECT 1", DC_SQL_EXPLAIN);
	ADMIT("EXPLAIN EXTENDED SELECT 1", DC_SQL_EXPLAIN);
	ADMIT("DESCRIBE orders", DC_SQL_SHOW);
	ADMIT("DESC `shop`.`orders` `id`", DC_SQL_SHOW);
	ADMIT("describe orders;", DC_SQL_SHOW);
	ADMIT("SHOW TABLES", DC_SQL_SHOW);
	ADMIT("SHOW CREATE TABLE orders", DC_SQL_SHOW);
	ADMIT("SHOW COLUMNS FROM orders", DC_SQL_SHOW);
	/* the statement's length, without the trailing ';' */
	CHECK(guard("SELECT 1 ; ", &v) == 0 && v.len == 8);
}

static void
test_refused(void)
{
	REFUSE("", "empty");
	REFUSE("INSERT INTO t VALUES (1)", "INSERT");
	REFUSE("INSERT INTO t SELECT * FROM u", "INSERT");
	REFUSE("REPLACE INTO t VALUES (1)", "REPLACE");
	REFUSE("UPDATE t SET x = 1", "UPDATE");
	REFUSE("DELETE FROM t", "DELETE");
	REFUSE("DROP TABLE t", "DROP");
	REFUSE("CREATE TABLE t (x int)", "CREATE");
	REFUSE("TRUNCATE t", "TRUNCATE");
	REFUSE("ALTER TABLE t ADD y int", "ALTER");
	REFUSE("SET GLOBAL max_connections = 1", "SET");
	REFUSE("SET SESSION max_statement_time = 0", "SET");
	REFUSE("SET STATEMENT max_statement_time=0 FOR SELECT 1", "SET");
	REFUSE("LOAD DATA INFILE '/etc/passwd' INTO TABLE t", "LOAD");
	REFUSE("LOAD DATA LOCAL INFILE 'x' INTO TABLE t", "LOAD");
	REFUSE("START TRANSACTION", "START");
	REFUSE("COMMIT", "COMMIT");
	REFUSE("CALL p()", "CALL");
	REFUSE("DO SLEEP(1)", "DO");
	REFUSE("HANDLER t OPEN", "HANDLER");
	REFUSE("LOCK TABLES t WRITE", "LOCK");
	REFUSE("GRANT ALL ON *.* TO u", "GRANT");
	REFUSE("KILL 5", "KILL");
	REFUSE("PREPARE s FROM 'DELETE FROM t'", "PREPARE");
	REFUSE("SELECT 1; SELECT 2", "one statement");
	REFUSE("SELECT 1; DROP TABLE t", "one statement");
	REFUSE("SELECT * FROM t INTO OUTFILE '/tmp/x'", "INTO");
	REFUSE("SELECT * INTO DUMPFILE '/tmp/x' FROM t", "INTO");
	REFUSE("SELECT 1 INTO @x", "INTO");
	REFUSE("SELECT @x := 1", ":=");
	REFUSE("SELECT * FROM t FOR UPDATE", "FOR UPDATE");
	REFUSE("SELECT * FROM t LOCK IN SHARE MODE", "LOCK IN SHARE MODE");
	REFUSE("SELECT LOAD_FILE('/etc/passwd')", "load_file");
	REFUSE("SELECT `load_file`('/etc/passwd')", "load_file");
	REFUSE("SELECT load_file /* x */ ('/etc/passwd')", "load_file");
	REFUSE("SELECT GET_LOCK('a', 10)", "get_lock");
	REFUSE("SELECT sys_exec('id')", "sys_exec");
	REFUSE("SELECT NEXT VALUE FOR s", "NEXT VALUE");
	REFUSE("SELECT NEXTVAL(s)", "nextval");
	REFUSE("SELECT 1 FROM t PROCEDURE ANALYSE()", "PROCEDURE");
	REFUSE("WITH c AS (SELECT 1) UPDATE t SET x = 1", "UPDATE");
	REFUSE("SELECT (DELETE FROM t)", "data-modifying");
	REFUSE("EXPLAIN UPDATE t SET x = 1", "EXPLAIN");
	REFUSE("EXPLAIN ANALYZE DELETE FROM t", "EXPLAIN");
	REFUSE("DESCRIBE INSERT INTO t VALUES (1)", "EXPLAIN");
	REFUSE("EXPLAIN FOR CONNECTION 5", "EXPLAIN");
	REFUSE("SELECT /*+ MAX_EXECUTION_TIME(0) */ 1", "optimizer hints");
	REFUSE("SELECT /*+ SET_VAR(max_execution_time=0) */ 1",
	    "optimizer hints");
	REFUSE("SELECT 1 /* not closed", "unterminated");
	REFUSE("SELECT 'not closed", "unterminated");
	REFUSE("SELECT `not closed", "unterminated");
}

/* Lexical tricks that hide code from a PostgreSQL reading. */
static void
test_tricks(void)
{
	struct dc_sql_verdict v;

	/* executable comments are code */
	REFUSE("SELECT 1 /*! ; DROP TABLE t */", "one statement");
	REFUSE("SELECT 1 /*!50000 ; DROP TABLE t */", "one statement");
	REFUSE("SELECT 1 /*M!100000 ; DROP TABLE t */", "one statement");
	REFUSE("/*!50000 UPDATE t SET x = 1 */", "UPDATE");
	REFUSE("SELECT 1 /*! INTO OUTFILE '/tmp/x' */", "INTO");
	REFUSE("SELECT 1 /*! a /*! b */ */", "nested");
	REFUSE("SELECT 1 /*! FROM t", "unterminated");
	/* an executable comment's content keeps its strings */
	ADMIT("SELECT /*! 'a*/b' */ 1", DC_SQL_SELECT);
	/* comments do not nest in MySQL: the rest is code */
	REFUSE("SELECT 1 /* /* */ ; DROP TABLE t */", "one statement");
	/* # ends at the end of the line, not of the statement */
	REFUSE("SELECT 1 # x\n; DROP TABLE t", "one statement");
	/* "--x" is no comment */
	REFUSE("SELECT 1 --x\n; DROP TABLE t", "one statement");
	/* a backslash escapes a quote, unless NO_BACKSLASH_ESCAPES */
	REFUSE("SELECT 'a\\'; DROP TABLE t; -- '", "ambiguous");
	/*
	 * Found by fuzz_sqlguard: every sql_mode reading admits it, but
	 * with backslash escapes the statement ends after 'a\'' and the
	 * rest is a comment, without them it runs to the end: the bytes
	 * the driver sends (v.len) would mean something else.
	 */
	REFUSE("SELECT 'a\\'' # '''", "ends elsewhere");
	/* the closing of an executable comment is part of what is sent */
	CHECK(dc_sql_guard_mysql("SELECT /*! 1 */ -- x", 20, &v) == 0 &&
	    v.len == 15);
	REFUSE("SELECT 'a\\' ; DELETE FROM t", "");
	/* "..." is a string, unless ANSI_QUOTES makes it a name */
	REFUSE("SELECT \"a\\\"; DROP TABLE t; -- \"", "");
	ADMIT("SELECT \"plain\"", DC_SQL_SELECT);
	/* PostgreSQL's quoting does not exist here */
	REFUSE("SELECT $$ ; DROP TABLE t; $$", "one statement");
}

static void
test_url(void)
{
	struct dc_mysql_url u;
	char err[200];

	CHECK(dc_mysql_url_parse("mysql://u:p%40ss@db.example:3307/shop", &u,
	    err, sizeof(err)) == DC_OK);
	CHECK_STR(u.host, "db.example");
	CHECK(u.port == 3307);
	CHECK_STR(u.user, "u");
	CHECK_STR(u.password, "p@ss");
	CHECK_STR(u.db, "shop");
	CHECK(u.tls == DC_MY_TLS_PREFERRED);
	/* DataChat's defaults: root, 3306, no database */
	CHECK(dc_mysql_url_parse("mysql+pymysql://h", &u, err,
	    sizeof(err)) == DC_OK);
	CHECK_STR(u.user, "root");
	CHECK(u.port == 3306);
	CHECK_STR(u.db, "");
	CHECK(dc_mysql_url_parse("mariadb://u@[::1]:3306/d?ssl_mode=REQUIRED"
	    "&charset=utf8mb4", &u, err, sizeof(err)) == DC_OK);
	CHECK_STR(u.host, "::1");
	CHECK_STR(u.password, "");
	CHECK(u.tls == DC_MY_TLS_REQUIRED);
	CHECK(dc_mysql_url_parse("mysql://u:p@h/d?ssl=false", &u, err,
	    sizeof(err)) == DC_OK && u.tls == DC_MY_TLS_DISABLED);
	CHECK(dc_mysql_url_parse("mysql://u:p@h/d?sslmode=verify_ca", &u, err,
	    sizeof(err)) == DC_OK && u.tls == DC_MY_TLS_VERIFY_CA);
	/* refused, never echoing the password */
	CHECK(dc_mysql_url_parse("mysql://u:secret@h/d?ssl_mode=maybe", &u,
	    err, sizeof(err)) == DC_EINVAL && strstr(err, "secret") == NULL);
	CHECK(dc_mysql_url_parse("mysql://u:secret@h/d?unix_socket=/tmp/s",
	    &u, err, sizeof(err)) == DC_EINVAL);
	CHECK(strstr(err, "unix_socket") != NULL);
	CHECK(dc_mysql_url_parse("mysql://u:secret@/d", &u, err,
	    sizeof(err)) == DC_EINVAL && strstr(err, "host") != NULL);
	CHECK(dc_mysql_url_parse("mysql://u:secret@h:99999/d", &u, err,
	    sizeof(err)) == DC_EINVAL && strstr(err, "port") != NULL);
	CHECK(dc_mysql_url_parse("mysql://u:se%ZZ@h/d", &u, err,
	    sizeof(err)) == DC_EINVAL);
	CHECK(dc_mysql_url_parse("postgresql://u@h/d", &u, err,
	    sizeof(err)) == DC_EINVAL);
	CHECK(dc_mysql_url_parse("mysql://h/a/b", &u, err,
	    sizeof(err)) == DC_EINVAL);
}

static void
test_bind(void)
{
	const char *p[3] = { "shop", NULL, "it's" };
	char *s;

	s = dc_mysql_bind("a = $1 AND b = $2 OR c = $3", 3, p);
	CHECK_STR(s, "a = _utf8mb4 X'73686F70' AND b = NULL OR c = "
	    "_utf8mb4 X'69742773'");
	free(s);
	s = dc_mysql_bind("$1$1", 1, p);
	CHECK_STR(s, "_utf8mb4 X'73686F70'_utf8mb4 X'73686F70'");
	free(s);
	CHECK(dc_mysql_bind("x = $2", 1, p) == NULL);
	s = dc_mysql_bind("cost $ 5", 0, NULL);
	CHECK_STR(s, "cost $ 5");
	free(s);
}

int
main(void)
{
	test_admitted();
	test_refused();
	test_tricks();
	test_url();
	test_bind();
	T_DONE();
}
