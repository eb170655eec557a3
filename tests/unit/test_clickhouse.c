/*
 * test_clickhouse.c - unit tests for what the ClickHouse driver decides
 * without a server: its URL forms (drivers/clickhouse), how it binds the
 * catalog query's parameters, its type names, how it reads a streamed
 * TabSeparatedWithNamesAndTypes response (split anywhere, escapes, the
 * row cap, an exception after rows), and the ClickHouse reading of the
 * lexical guard (dc_sql_guard_clickhouse).  Statements are handed over in
 * buffers of exactly their length, without a NUL, so ASan sees any read
 * past the end.
 */
#include <stdlib.h>
#include <string.h>

#include "t.h"
#include "dc.h"
#include "drv_clickhouse.h"
#include "rows.h"
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
	rc = dc_sql_guard_clickhouse(buf, len, v);
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
test_guard(void)
{
	ADMIT("SELECT 1", DC_SQL_SELECT);
	ADMIT("select `id`, \"order\" from shop.orders where x = 'a;b'",
	    DC_SQL_SELECT);
	ADMIT("SELECT 'it\\'s', 'c''d', \"we\\\"ird\" -- ; DROP TABLE t\n",
	    DC_SQL_SELECT);
	ADMIT("SELECT /* ALTER TABLE t DELETE WHERE 1; */ 2", DC_SQL_SELECT);
	ADMIT("WITH 1 AS x SELECT x", DC_SQL_SELECT);
	ADMIT("WITH c AS (SELECT 1 AS n) SELECT n FROM c", DC_SQL_SELECT);
	ADMIT("SELECT toStartOfMonth(d) AS m, countIf(x > 1), uniq(u) FROM t "
	    "GROUP BY m ORDER BY m LIMIT 10;", DC_SQL_SELECT);
	ADMIT("SELECT arrayMap(x -> x * 2, [1, 2]) AS a, URLHash('h')",
	    DC_SQL_SELECT);
	ADMIT("SELECT format, settings FROM t", DC_SQL_SELECT);
	ADMIT("SELECT 1 AS format", DC_SQL_SELECT);
	ADMIT("SELECT * FROM system.numbers LIMIT 3", DC_SQL_SELECT);
	ADMIT("SHOW TABLES", DC_SQL_SHOW);
	ADMIT("SHOW CREATE TABLE t", DC_SQL_SHOW);
	ADMIT("DESCRIBE TABLE t", DC_SQL_SHOW);
	ADMIT("DESC t", DC_SQL_SHOW);
	ADMIT("EXISTS TABLE t", DC_SQL_SHOW);

	REFUSE("INSERT INTO t VALUES (1)", "statement type INSERT");
	REFUSE("INSERT INTO t SELECT * FROM t", "statement type INSERT");
	REFUSE("ALTER TABLE t DELETE WHERE 1", "statement type ALTER");
	REFUSE("ALTER TABLE t UPDATE x = 1 WHERE 1", "statement type ALTER");
	REFUSE("SYSTEM SHUTDOWN", "statement type SYSTEM");
	REFUSE("SYSTEM DROP DNS CACHE", "statement type SYSTEM");
	REFUSE("KILL QUERY WHERE 1", "statement type KILL");
	REFUSE("OPTIMIZE TABLE t FINAL", "statement type OPTIMIZE");
	REFUSE("DROP TABLE t", "statement type DROP");
	REFUSE("TRUNCATE TABLE t", "statement type TRUNCATE");
	REFUSE("CREATE TABLE e (x Int8) ENGINE = Memory", "statement type "
	    "CREATE");
	REFUSE("RENAME TABLE t TO u", "statement type RENAME");
	REFUSE("DETACH TABLE t", "statement type DETACH");
	REFUSE("ATTACH TABLE t", "statement type ATTACH");
	REFUSE("SET readonly = 0", "statement type SET");
	REFUSE("USE system", "statement type USE");
	REFUSE("EXPLAIN SELECT 1", "statement type EXPLAIN");
	REFUSE("SELECT 1; DROP TABLE t", "only one statement");
	REFUSE("SELECT * FROM url('http://h/', CSV, 'a String')",
	    "function url()");
	REFUSE("SELECT * FROM URL('http://h/', CSV, 'a String')",
	    "function url()");
	REFUSE("SELECT * FROM file('/etc/passwd', TSV, 'a String')",
	    "function file()");
	REFUSE("SELECT * FROM remote('h:9000', system.one)",
	    "function remote()");
	REFUSE("SELECT * FROM remoteSecure('h:9440', system.one)",
	    "function remotesecure()");
	REFUSE("SELECT * FROM s3('http://h/b/k', 'CSV')", "function s3()");
	REFUSE("SELECT * FROM s3Cluster('c', 'http://h/b/k')",
	    "function s3cluster()");
	REFUSE("SELECT * FROM mysql('h:3306', 'db', 't', 'u', 'p')",
	    "function mysql()");
	REFUSE("SELECT * FROM t WHERE x IN (SELECT a FROM cluster('c', "
	    "system.one))", "function cluster()");
	REFUSE("SELECT * FROM executable('x.sh', TSV, 'a String')",
	    "function executable()");
	REFUSE("SELECT \"url\"('http://h/')", "quoted function name");
	REFUSE("SELECT `file`('/etc/passwd')", "quoted function name");
	REFUSE("SELECT 1 SETTINGS readonly = 0", "SETTINGS");
	REFUSE("SELECT 1 SETTINGS max_execution_time=0", "SETTINGS");
	REFUSE("SELECT 1 FORMAT JSON", "FORMAT");
	REFUSE("SELECT 1 FORMAT `JSON`;", "FORMAT");
	REFUSE("SELECT 1 FORMAT TSV SETTINGS x = 1", "FORMAT");
	REFUSE("SELECT * FROM t INTO OUTFILE '/tmp/x'", "INTO");
	REFUSE("SELECT 1 # '\n, url('x')", "'#'");
	REFUSE("SELECT $$ ' $$, 1", "'$'");
	REFUSE("SELECT a$b FROM t", "'$'");
	REFUSE("SELECT 1 /* /* */ ; DROP TABLE t */", "inside a comment");
	REFUSE("SELECT 'unterminated", "unterminated");
	REFUSE("SELECT (INSERT INTO t VALUES (1))", "data-modifying");
	REFUSE("", "empty");
	REFUSE(";", "empty");
}

static void
test_url(void)
{
	struct dc_ch_url u;
	char err[200];

	CHECK(dc_ch_url_parse("clickhouse://h/", &u, err, sizeof(err)) == 0);
	CHECK_STR(u.host, "h");
	CHECK(u.port == 8123 && !u.tls && u.verify);
	CHECK_STR(u.user, "default");
	CHECK_STR(u.password, "");
	CHECK_STR(u.db, "default");
	CHECK(dc_ch_url_parse("clickhouse://u%40x:p%3Aw@db.example:9123/an%20"
	    "alytics", &u, err, sizeof(err)) == 0);
	CHECK_STR(u.user, "u@x");
	CHECK_STR(u.password, "p:w");
	CHECK_STR(u.host, "db.example");
	CHECK(u.port == 9123);
	CHECK_STR(u.db, "an alytics");
	CHECK(dc_ch_url_parse("clickhouse://u:p@[::1]:8124/d", &u, err,
	    sizeof(err)) == 0);
	CHECK_STR(u.host, "::1");
	CHECK(u.port == 8124);
	CHECK(dc_ch_url_parse("clickhouse+native://u:p@h/d", &u, err,
	    sizeof(err)) == 0 && !u.tls);
	CHECK(dc_ch_url_parse("clickhouses://h/d", &u, err, sizeof(err)) == 0);
	CHECK(u.tls && u.port == 8443);
	CHECK(dc_ch_url_parse("clickhouse+https://h/d", &u, err,
	    sizeof(err)) == 0 && u.tls && u.port == 8443);
	CHECK(dc_ch_url_parse("clickhouse://h/d?secure=true&verify=false", &u,
	    err, sizeof(err)) == 0);
	CHECK(u.tls && !u.verify && u.port == 8443);
	CHECK(dc_ch_url_parse("clickhouse://h:8123/d?secure=1", &u, err,
	    sizeof(err)) == 0 && u.tls && u.port == 8123);
	CHECK(dc_ch_url_parse("clickhouse://u:secret@h/d?compress=1", &u, err,
	    sizeof(err)) == DC_EINVAL);
	CHECK(strstr(err, "compress") != NULL && strstr(err, "secret") == NULL);
	CHECK(dc_ch_url_parse("clickhouse://h/d?secure=maybe", &u, err,
	    sizeof(err)) == DC_EINVAL);
	CHECK(dc_ch_url_parse("clickhouse://u:secret@/d", &u, err,
	    sizeof(err)) == DC_EINVAL);
	CHECK(strstr(err, "host") != NULL && strstr(err, "secret") == NULL);
	CHECK(dc_ch_url_parse("clickhouse://h:0/d", &u, err, sizeof(err)) ==
	    DC_EINVAL);
	CHECK(dc_ch_url_parse("clickhouse://h:80x/d", &u, err, sizeof(err)) ==
	    DC_EINVAL);
	CHECK(dc_ch_url_parse("clickhouse://h%2fx/d", &u, err, sizeof(err)) ==
	    DC_EINVAL);
	CHECK(dc_ch_url_parse("clickhouse://h/a/b", &u, err, sizeof(err)) ==
	    DC_EINVAL);
	CHECK(dc_ch_url_parse("clickhouse://u:p%zz@h/d", &u, err,
	    sizeof(err)) == DC_EINVAL);
	CHECK(dc_ch_url_parse("mysql://h/d", &u, err, sizeof(err)) ==
	    DC_EINVAL);
}

static void
test_bind_types_errors(void)
{
	const char *params[3] = { "a'b", NULL, "true" };
	char *s, out[200];

	s = dc_ch_bind("x = $1 AND y = $2 OR $3 = 'true'", 3, params);
	CHECK_STR(s, "x = unhex('612762') AND y = NULL OR unhex('74727565') "
	    "= 'true'");
	free(s);
	CHECK(dc_ch_bind("$4", 3, params) == NULL);

	CHECK(dc_ch_vtype("UInt64") == DC_VT_INT);
	CHECK(dc_ch_vtype("Nullable(Int8)") == DC_VT_INT);
	CHECK(dc_ch_vtype("LowCardinality(Nullable(String))") == DC_VT_TEXT);
	CHECK(dc_ch_vtype("FixedString(3)") == DC_VT_TEXT);
	CHECK(dc_ch_vtype("Float64") == DC_VT_FLOAT);
	CHECK(dc_ch_vtype("Decimal(12, 2)") == DC_VT_DECIMAL);
	CHECK(dc_ch_vtype("Date") == DC_VT_DATE);
	CHECK(dc_ch_vtype("DateTime('UTC')") == DC_VT_TIMESTAMP);
	CHECK(dc_ch_vtype("DateTime64(3)") == DC_VT_TIMESTAMP);
	CHECK(dc_ch_vtype("UUID") == DC_VT_UUID);
	CHECK(dc_ch_vtype("Enum8('a' = 1)") == DC_VT_TEXT);
	CHECK(dc_ch_vtype("Array(UInt8)") == DC_VT_INT);
	CHECK(dc_ch_vflags("Array(UInt8)") == (DC_COL_ARRAY | DC_COL_ARRAY_CH));
	CHECK(dc_ch_vtype("Array(Array(Nullable(String)))") == DC_VT_TEXT);
	CHECK(dc_ch_vflags("Array(Array(Nullable(String)))") ==
	    (DC_COL_ARRAY | DC_COL_ARRAY_CH));
	CHECK(dc_ch_vflags("Array(Float32)") ==
	    (DC_COL_ARRAY | DC_COL_ARRAY_CH | DC_COL_FLOAT4));
	CHECK(dc_ch_vflags("Float32") == DC_COL_FLOAT4);
	CHECK(dc_ch_vflags("Nullable(Float64)") == 0);
	CHECK(dc_ch_vtype("Array(Tuple(UInt8, String))") == DC_VT_OTHER);
	CHECK(dc_ch_vflags("Array(Tuple(UInt8, String))") == 0);
	CHECK(dc_ch_vtype("Array(") == DC_VT_OTHER);
	CHECK(dc_ch_vtype("Array()") == DC_VT_OTHER);
	CHECK(dc_ch_vtype("Nullable(Nothing)") == DC_VT_OTHER);
	CHECK(dc_ch_vtype("Int") == DC_VT_OTHER);
	CHECK(dc_ch_vtype("Int640") == DC_VT_OTHER);

	CHECK(dc_ch_error("Code: 60, e.displayText() = DB::Exception: Table "
	    "d.t doesn't exist., e.what() = DB::Exception\n", 95, out,
	    sizeof(out)) == 60);
	CHECK_STR(out, "Code: 60. DB::Exception: Table d.t doesn't exist.");
	CHECK(dc_ch_error("Code: 159. DB::Exception: Timeout\n", 34, out,
	    sizeof(out)) == 159);
	CHECK_STR(out, "Code: 159. DB::Exception: Timeout");
	CHECK(dc_ch_error("Bad\nthing", 9, out, sizeof(out)) == 0);
	CHECK_STR(out, "Bad thing");
}

/* Feed s in pieces of step bytes; the result of dc_ch_tsv_end. */
static int
feed(struct dc_ch_tsv *p, const char *s, size_t step)
{
	size_t n = strlen(s), i, k;
	char *piece;
	int rc;

	for (i = 0; i < n; i += k) {
		k = n - i < step ? n - i : step;
		/* an exact-length copy: ASan sees reads past it */
		if ((piece = malloc(k)) == NULL)
			abort();
		memcpy(piece, s + i, k);
		rc = dc_ch_tsv_feed(p, piece, k);
		free(piece);
		if (rc != DC_OK)
			return rc;
	}
	return dc_ch_tsv_end(p);
}

static void
test_tsv(void)
{
	static const char resp[] =
	    "n\\tame\tf\tfs\ts\td\n"
	    "UInt64\tNullable(Float64)\tFixedString(4)\tString\tDate\n"
	    "1\tinf\tab\\0\\0\ta\\tb\\\\c\\nd\t2024-02-29\n"
	    "2\t\\N\tabcd\tx\\0y\t1970-01-01\n"
	    "3\t-1.5\t\\0\\0\\0\\0\t\t2000-01-01\n";
	struct dc_ch_tsv p;
	const struct dc_rows *r;
	size_t step;

	for (step = 1; step <= sizeof(resp); step += step < 8 ? 1 : 17) {
		memset(&p, 0, sizeof(p));
		CHECK(feed(&p, resp, step) == DC_OK);
		r = p.rows;
		CHECK(r != NULL && r->ncols == 5 && r->nrows == 3);
		if (r == NULL || r->nrows != 3)
			break;
		CHECK_STR(r->cols[0].name, "n\tame");
		CHECK(r->cols[0].type == DC_VT_INT);
		CHECK(r->cols[1].type == DC_VT_FLOAT);
		CHECK(r->cols[2].type == DC_VT_TEXT);
		CHECK(r->cols[4].type == DC_VT_DATE);
		CHECK_STR(dc_rows_cell(r, 0, 1)->v, "Infinity");
		CHECK_STR(dc_rows_cell(r, 0, 2)->v, "ab");
		CHECK(dc_rows_cell(r, 0, 3)->len == 7);
		CHECK(memcmp(dc_rows_cell(r, 0, 3)->v, "a\tb\\c\nd", 7) == 0);
		CHECK(dc_rows_cell(r, 1, 1)->v == NULL);
		CHECK_STR(dc_rows_cell(r, 1, 2)->v, "abcd");
		CHECK_STR(dc_rows_cell(r, 1, 3)->v, "x\xef\xbf\xbdy");
		CHECK_STR(dc_rows_cell(r, 2, 2)->v, "");
		CHECK_STR(dc_rows_cell(r, 2, 3)->v, "");
		CHECK_STR(dc_rows_cell(r, 2, 4)->v, "2000-01-01");
		dc_ch_tsv_reset(&p);
	}

	/* the cap: max_rows + 1 kept, then capped */
	memset(&p, 0, sizeof(p));
	p.max_rows = 2;
	CHECK(feed(&p, "x\nUInt8\n1\n2\n3\n4\n5\n", 3) == DC_OK);
	CHECK(p.capped && p.rows->nrows == 3 && p.past_cap > 0);
	dc_ch_tsv_reset(&p);
	memset(&p, 0, sizeof(p));
	p.max_rows = 2;
	CHECK(feed(&p, "x\nUInt8\n1\n2\n3\n", 64) == DC_OK);
	CHECK(!p.capped && p.rows->nrows == 3);
	dc_ch_tsv_reset(&p);

	/* the server's exception after some rows */
	memset(&p, 0, sizeof(p));
	CHECK(feed(&p, "x\ty\nUInt8\tString\n1\ta\nCode: 159, e.displayText() "
	    "= DB::Exception: Timeout exceeded: elapsed 1.0 seconds, e.what() "
	    "= DB::Exception\n", 5) == DC_ERR);
	CHECK(p.code == 159);
	CHECK_STR(p.error, "Code: 159. DB::Exception: Timeout exceeded: "
	    "elapsed 1.0 seconds");
	dc_ch_tsv_reset(&p);
	/* a one-column string that only looks like one is a row */
	memset(&p, 0, sizeof(p));
	CHECK(feed(&p, "s\nString\nCode: 1 is fine\nCode: 2\nlast\n", 4) ==
	    DC_OK);
	CHECK(p.rows->nrows == 3);
	CHECK_STR(dc_rows_cell(p.rows, 1, 0)->v, "Code: 2");
	CHECK_STR(dc_rows_cell(p.rows, 2, 0)->v, "last");
	dc_ch_tsv_reset(&p);

	/* malformed */
	memset(&p, 0, sizeof(p));
	CHECK(feed(&p, "x\ty\nUInt8\tUInt8\n1\n", 64) == DC_EINVAL);
	CHECK(strstr(p.error, "columns") != NULL);
	dc_ch_tsv_reset(&p);
	memset(&p, 0, sizeof(p));
	CHECK(feed(&p, "x\nUInt8\n1", 64) == DC_EINVAL);
	dc_ch_tsv_reset(&p);
	memset(&p, 0, sizeof(p));
	CHECK(feed(&p, "x\ty\nUInt8\n", 64) == DC_EINVAL);
	dc_ch_tsv_reset(&p);
	/* no result at all */
	memset(&p, 0, sizeof(p));
	CHECK(feed(&p, "", 64) == DC_OK && p.rows->ncols == 0);
	dc_ch_tsv_reset(&p);
}

int
main(void)
{
	test_guard();
	test_url();
	test_bind_types_errors();
	test_tsv();
	T_DONE();
}
