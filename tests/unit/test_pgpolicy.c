/*
 * test_pgpolicy.c - unit tests for the function policy (pgpolicy.c) on
 * a small catalog written here row by row in dc_pgcat_sql's shape: what
 * the catalog says decides (volatility, language, aggregates' support
 * functions, operators' and casts' functions, views', policies' and
 * domain checks' SQL), every overload and same-named function counts,
 * the deny-list holds whatever the catalog says, and what is not built
 * in marks a statement unusual.  tests/integration/test_guard.py runs
 * the same policy on PostgreSQL 15's real catalog.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t.h"
#include "dc.h"
#include "pgguard.h"
#include "pgpolicy.h"

static struct dc_pgcat *cat;

static void
row(const char *k, const char *oid, const char *schema, const char *name,
    const char *a, const char *b, const char *c, const char *d,
    const char *e, const char *f, const char *g, const char *h,
    const char *arr, const char *def)
{
	const char *r[DC_PGCAT_COLUMNS] = { k, oid, schema, name, a, b, c, d,
	    e, f, g, h, arr, def };

	CHECK(dc_pgcat_add_row(cat, r) == DC_OK);
}

/* A function: oid, schema, name, volatility, nargs, language. */
static void
fn(const char *oid, const char *schema, const char *name, const char *vol,
    const char *nargs, const char *lang)
{
	row("p", oid, schema, name, vol, "f", lang,
	    strcmp(lang, "plpython3u") == 0 || strcmp(lang, "c") == 0 ||
	    strcmp(lang, "internal") == 0 ? "0" : "1", "0", nargs, "0", "0",
	    NULL, NULL);
}

static void
build(void)
{
	cat = dc_pgcat_new();
	/* built in */
	fn("1", "pg_catalog", "now", "s", "0", "internal");
	fn("2", "pg_catalog", "lower", "i", "1", "internal");
	fn("3", "pg_catalog", "random", "v", "0", "internal");
	fn("4", "pg_catalog", "pg_advisory_lock", "v", "1", "internal");
	fn("5", "pg_catalog", "table_to_xml", "s", "4", "internal");
	fn("6", "pg_catalog", "txid_current", "s", "0", "internal");
	fn("7", "pg_catalog", "ts_rewrite", "i", "3", "internal");
	fn("8", "pg_catalog", "ts_rewrite", "v", "2", "internal");
	fn("9", "pg_catalog", "pg_blocking_pids", "v", "1", "internal");
	fn("10", "pg_catalog", "int4pl", "i", "2", "internal");
	fn("11", "pg_catalog", "int4eq", "i", "2", "internal");
	fn("12", "pg_catalog", "int4in", "i", "1", "internal");
	fn("13", "pg_catalog", "name", "i", "1", "internal");
	fn("14", "pg_catalog", "bernoulli", "v", "1", "internal");
	fn("15", "pg_catalog", "int4lt", "i", "2", "internal");
	fn("16", "pg_catalog", "pg_database_size", "v", "1", "internal");
	/* coalesce-like: 1 to 3 arguments through defaults */
	row("p", "17", "pg_catalog", "make_thing", "i", "f", "internal", "0",
	    "0", "3", "2", "0", NULL, NULL);
	row("p", "18", "pg_catalog", "concat", "s", "f", "internal", "0",
	    "0", "1", "0", "1", NULL, NULL);
	row("p", "19", "pg_catalog", "count", "i", "a", "internal", "0", "0",
	    "0", "0", "0", "{20,0,0,0,0,0,0,0}", NULL);
	fn("20", "pg_catalog", "int8inc", "i", "1", "internal");
	/* a DBA's */
	fn("16400", "public", "mark_seen", "v", "0", "plpgsql");
	fn("16401", "public", "nice", "s", "1", "sql");
	fn("16402", "public", "lower", "v", "1", "plpgsql");
	fn("16403", "public", "py", "i", "0", "plpython3u");
	row("p", "16404", "public", "definer", "s", "f", "sql", "1", "1", "0",
	    "0", "0", NULL, NULL);
	fn("16405", "public", "bump", "v", "2", "plpgsql");
	row("p", "16406", "public", "evil_agg", "i", "a", "internal", "0",
	    "0", "1", "0", "0", "{16405,0,0,0,0,0,0,0}", NULL);
	fn("16407", "ext", "set_config", "s", "3", "sql");
	row("p", "16408", "public", "proc", "v", "p", "plpgsql", "1", "0",
	    "0", "0", "0", NULL, NULL);
	fn("16409", "public", "system_rows", "v", "1", "c");
	fn("16410", "public", "myin", "v", "1", "c");
	fn("16411", "public", "tomoney", "v", "1", "plpgsql");
	/* operators */
	row("o", "500", "pg_catalog", "+", "b", "10", NULL, NULL, NULL, NULL,
	    NULL, NULL, NULL, NULL);
	row("o", "501", "pg_catalog", "=", "b", "11", NULL, NULL, NULL, NULL,
	    NULL, NULL, NULL, NULL);
	row("o", "502", "pg_catalog", "<", "b", "15", NULL, NULL, NULL, NULL,
	    NULL, NULL, NULL, NULL);
	row("o", "503", "pg_catalog", ">", "b", "15", NULL, NULL, NULL, NULL,
	    NULL, NULL, NULL, NULL);
	row("o", "504", "pg_catalog", "-", "l", "10", NULL, NULL, NULL, NULL,
	    NULL, NULL, NULL, NULL);
	row("o", "16500", "public", "===", "b", "16405", NULL, NULL, NULL,
	    NULL, NULL, NULL, NULL, NULL);
	/* types, casts */
	row("t", "23", "pg_catalog", "int4", "12", "0", NULL, NULL, NULL, NULL,
	    NULL, NULL, NULL, NULL);
	row("t", "16600", "public", "money2", "12", "0", NULL, NULL, NULL,
	    NULL, NULL, NULL, NULL, NULL);
	row("c", "16601", NULL, NULL, "16600", "16411", NULL, NULL, NULL, NULL,
	    NULL, NULL, NULL, NULL);
	row("t", "16602", "public", "weird", "16410", "0", NULL, NULL, NULL,
	    NULL, NULL, NULL, NULL, NULL);
	row("t", "16603", "public", "checked", "12", "23", NULL, NULL, NULL,
	    NULL, NULL, NULL, NULL, "SELECT (mark_seen() > VALUE)");
	row("t", "16604", "public", "checked2", "12", "16603", NULL, NULL, NULL,
	    NULL, NULL, NULL, NULL, NULL);
	row("t", "16605", "public", "fine", "12", "23", NULL, NULL, NULL,
	    NULL, NULL, NULL, NULL, "SELECT (VALUE > 0)");
	/* relations */
	row("r", "16700", "public", "v_bad", "v", NULL, NULL, NULL, NULL, NULL,
	    NULL, NULL, NULL, " SELECT pg_advisory_lock(1) AS x;");
	row("r", "16701", "public", "v_on_bad", "v", NULL, NULL, NULL, NULL,
	    NULL, NULL, NULL, NULL, " SELECT x FROM v_bad;");
	row("r", "16702", "public", "v_good", "v", NULL, NULL, NULL, NULL,
	    NULL, NULL, NULL, NULL, " SELECT pg_catalog.lower(a) FROM t ORDER BY 1;");
	row("r", "16703", "public", "rls", "r", NULL, NULL, NULL, NULL, NULL,
	    NULL, NULL, NULL, "SELECT (mark_seen() = 1)");
	row("r", "16704", "public", "ft", "f", NULL, NULL, NULL, NULL, NULL,
	    NULL, NULL, NULL, NULL);
	row("r", "16705", "public", "loop1", "v", NULL, NULL, NULL, NULL, NULL,
	    NULL, NULL, NULL, " SELECT * FROM loop2;");
	row("r", "16706", "public", "loop2", "v", NULL, NULL, NULL, NULL, NULL,
	    NULL, NULL, NULL, " SELECT * FROM loop1;");
	CHECK(dc_pgcat_finish(cat) == DC_OK);
}

/* sql is admitted; unusual as said. */
static void
admit_at(int line, const char *sql, int want_unusual)
{
	struct dc_pgstmt	*st = NULL;
	struct dc_pg_refusal	 ref;
	int			 unusual = -1, failures = t_failures, rc;

	CHECK(dc_pgguard_parse(sql, strlen(sql), &st, &ref) == DC_OK);
	if (st == NULL)
		goto out;
	rc = dc_pgpolicy_check(cat, st, sql, strlen(sql), &ref, &unusual);
	CHECK(rc == DC_OK);
	CHECK(unusual == want_unusual);
out:
	if (t_failures != failures)
		fprintf(stderr, "  line %d: [%s] unusual %d: %s: %s\n", line,
		    sql, unusual, ref.node, ref.reason);
	dc_pgguard_free(st);
}

/* sql is refused by the policy with code rc, at node, reason has want. */
static void
refuse_at(int line, const char *sql, int want_rc, const char *node,
    const char *want)
{
	struct dc_pgstmt	*st = NULL;
	struct dc_pg_refusal	 ref;
	int			 unusual, failures = t_failures, rc = 0;

	memset(&ref, 0, sizeof(ref));
	CHECK(dc_pgguard_parse(sql, strlen(sql), &st, &ref) == DC_OK);
	if (st == NULL)
		goto out;
	rc = dc_pgpolicy_check(cat, st, sql, strlen(sql), &ref, &unusual);
	CHECK(rc == want_rc);
	CHECK_STR(ref.node, node);
	CHECK(strstr(ref.reason, want) != NULL);
out:
	if (t_failures != failures)
		fprintf(stderr, "  line %d: [%s] rc %d: %s: %s\n", line, sql,
		    rc, ref.node, ref.reason);
	dc_pgguard_free(st);
}

#define ADMIT(sql, u)			admit_at(__LINE__, sql, u)
#define REFUSE(sql, node, want)		refuse_at(__LINE__, sql, DC_EINVAL, \
					    node, want)
#define UNKNOWN(sql, node, want)	refuse_at(__LINE__, sql, DC_ENOENT, \
					    node, want)

static void
test_functions(void)
{
	ADMIT("SELECT now(), pg_catalog.lower('A'), random()", 0);
	ADMIT("SELECT pg_database_size('postgres')", 0);
	ADMIT("SELECT count(*) FROM t", 0);
	ADMIT("SELECT ts_rewrite('a', 'b', 'c')", 0);
	ADMIT("SELECT make_thing(1), make_thing(1, 2), make_thing(1, 2, 3)",
	    0);
	ADMIT("SELECT concat(1, 2, 3, 4)", 0);
	ADMIT("SELECT nice(1)", 1);
	ADMIT("SELECT definer()", 1);
	REFUSE("SELECT pg_advisory_lock(1)", "FuncCall pg_advisory_lock",
	    "pg_catalog.pg_advisory_lock is on datachatd's deny-list");
	REFUSE("SELECT 1 WHERE table_to_xml('t', true, false, '') IS NULL",
	    "FuncCall table_to_xml", "runs a query on the table");
	REFUSE("SELECT txid_current()", "FuncCall txid_current",
	    "assigns a transaction id");
	REFUSE("SELECT ts_rewrite('a'::text, 'SELECT 1')",
	    "FuncCall ts_rewrite", "runs the query text");
	REFUSE("SELECT pg_blocking_pids(1)", "FuncCall pg_blocking_pids",
	    "pg_catalog.pg_blocking_pids is VOLATILE");
	REFUSE("SELECT mark_seen()", "FuncCall mark_seen",
	    "public.mark_seen is VOLATILE");
	REFUSE("SELECT py()", "FuncCall py", "untrusted language");
	REFUSE("SELECT evil_agg(1) FROM t", "FuncCall evil_agg",
	    "aggregate that calls public.bump is VOLATILE");
	/* lower exists twice: unqualified, either may be called */
	REFUSE("SELECT lower('A')", "FuncCall lower", "public.lower is "
	    "VOLATILE");
	/* a function named like a denied one, in a DBA's schema */
	REFUSE("SELECT ext.set_config('a', 'b', false)",
	    "FuncCall set_config", "ext.set_config is on datachatd's "
	    "deny-list");
	REFUSE("SELECT f FROM (SELECT pg_catalog.pg_advisory_lock(1) f) s",
	    "FuncCall pg_advisory_lock", "deny-list");
	/* named arguments and VARIADIC: any overload by name */
	REFUSE("SELECT ts_rewrite(VARIADIC ARRAY['a'])", "FuncCall ts_rewrite",
	    "runs the query text");
	UNKNOWN("SELECT no_such_function(1)", "FuncCall no_such_function",
	    "not in the target's catalog");
	UNKNOWN("SELECT now(1)", "FuncCall now", "no function now takes 1 "
	    "argument");
	UNKNOWN("SELECT proc()", "FuncCall proc", "not in the target's "
	    "catalog");
	/* a refusal wins over an unknown name */
	REFUSE("SELECT nope(), mark_seen()", "FuncCall mark_seen", "VOLATILE");
}

static void
test_fields(void)
{
	ADMIT("SELECT t.a, t.name FROM t", 0);
	ADMIT("SELECT (x).nice FROM t", 1);
	REFUSE("SELECT (1).pg_advisory_lock", "field selection "
	    ".pg_advisory_lock", "pg_advisory_lock(x) when x has no column");
	REFUSE("SELECT s.pid.pg_blocking_pids FROM s",
	    "field selection .pg_blocking_pids", "VOLATILE");
	REFUSE("SELECT x.tomoney FROM t x", "field selection .tomoney",
	    "VOLATILE");
	/* mark_seen takes no argument: x.mark_seen cannot call it */
	ADMIT("SELECT x.mark_seen FROM t x", 0);
}

static void
test_operators(void)
{
	ADMIT("SELECT 1 + 2, -a FROM t WHERE a = 1 ORDER BY a", 0);
	REFUSE("SELECT a === b FROM t", "operator ===", "operator public.=== "
	    "calls public.bump is VOLATILE");
	UNKNOWN("SELECT a #### b FROM t", "operator ####", "infix operator "
	    "#### is not in the target's catalog");
	UNKNOWN("SELECT +a FROM t", "operator +", "prefix operator +");
}

static void
test_casts(void)
{
	ADMIT("SELECT 1::int4, '2'::pg_catalog.int4, int4('3')", 0);
	ADMIT("SELECT 5::fine", 0);
	REFUSE("SELECT 1::money2", "TypeCast", "a cast to money2: "
	    "public.tomoney is VOLATILE");
	REFUSE("SELECT money2(1)", "FuncCall money2", "public.tomoney is "
	    "VOLATILE");
	REFUSE("SELECT 'x'::public.weird", "TypeCast", "public.myin is "
	    "VOLATILE");
	REFUSE("SELECT 1::checked", "TypeCast", "a cast to checked: FuncCall "
	    "mark_seen");
	REFUSE("SELECT 1::checked2", "TypeCast", "public.mark_seen is "
	    "VOLATILE");
	UNKNOWN("SELECT 1::nosuchtype", "TypeCast", "type nosuchtype is not "
	    "in the target's catalog");
}

static void
test_relations(void)
{
	ADMIT("SELECT * FROM t", 0);
	ADMIT("SELECT * FROM v_good", 1);
	ADMIT("SELECT * FROM ft", 1);
	ADMIT("SELECT * FROM loop1", 1);
	REFUSE("SELECT * FROM v_bad", "RangeVar v_bad", "view public.v_bad: "
	    "FuncCall pg_advisory_lock");
	REFUSE("SELECT * FROM public.v_on_bad", "RangeVar v_on_bad",
	    "view public.v_on_bad: RangeVar v_bad");
	REFUSE("SELECT * FROM t JOIN rls USING (a)", "RangeVar rls",
	    "table public.rls: FuncCall mark_seen");
	ADMIT("SELECT * FROM TABLE_NOT_THERE", 0);
	ADMIT("SELECT * FROM t TABLESAMPLE bernoulli (1)", 0);
	REFUSE("SELECT * FROM t TABLESAMPLE system_rows (1)",
	    "TABLESAMPLE system_rows", "not built into PostgreSQL");
}

static void
test_rows(void)
{
	struct dc_pgcat	*c = dc_pgcat_new();
	const char *bad_oid[DC_PGCAT_COLUMNS] = { "p", "x1", "s", "n", "i",
	    "f", "sql", "1", "0", "0", "0", "0", NULL, NULL };
	const char *bad_kind[DC_PGCAT_COLUMNS] = { "z", "1", "s", "n" };
	const char *bad_arr[DC_PGCAT_COLUMNS] = { "p", "1", "s", "n", "i",
	    "a", "sql", "1", "0", "0", "0", "0", "{1,x}", NULL };
	const char *no_name[DC_PGCAT_COLUMNS] = { "o", "1", "s", NULL, "b",
	    "1" };
	int		 n, bad;

	CHECK(dc_pgcat_add_row(c, bad_oid) == DC_EINVAL);
	CHECK(dc_pgcat_add_row(c, bad_kind) == DC_EINVAL);
	CHECK(dc_pgcat_add_row(c, bad_arr) == DC_EINVAL);
	CHECK(dc_pgcat_add_row(c, no_name) == DC_EINVAL);
	CHECK(dc_pgcat_finish(c) == DC_OK);
	dc_pgcat_counts(cat, &n, &bad);
	CHECK(n == 32);
	CHECK(bad == 16);
	dc_pgcat_free(c);
}

static void
test_deny_list(void)
{
	static const char *const denied[] = {
		"ts_stat", "query_to_xml", "query_to_xml_and_xmlschema",
		"query_to_xmlschema", "cursor_to_xml", "cursor_to_xmlschema",
		"table_to_xml", "table_to_xml_and_xmlschema",
		"table_to_xmlschema", "schema_to_xml", "schema_to_xmlschema",
		"database_to_xml", "database_to_xml_and_xmlschema", "dblink",
		"dblink_exec", "dblink_connect", "dblink_send_query",
		"pg_read_file", "pg_read_binary_file", "pg_stat_file",
		"pg_ls_dir", "pg_ls_waldir", "pg_file_write", "pg_file_unlink",
		"set_config", "setseed", "pg_advisory_lock",
		"pg_advisory_unlock_all", "pg_advisory_xact_lock_shared",
		"pg_try_advisory_lock", "pg_terminate_backend",
		"pg_cancel_backend", "pg_reload_conf", "pg_notify", "lo_import",
		"lo_export", "lo_unlink", "loread", "lowrite", "nextval",
		"setval", "currval", "lastval", "pg_switch_wal",
		"pg_create_restore_point", "pg_create_logical_replication_slot",
		"pg_drop_replication_slot", "pg_logical_slot_get_changes",
		"pg_replication_origin_create", "pg_backup_start",
		"pg_promote", "pg_wal_replay_pause", "pg_rotate_logfile",
		"pg_stat_reset", "pg_stat_reset_shared", "crosstab",
		"crosstab3", "connectby", "pg_export_snapshot",
		"pg_log_backend_memory_contexts", "binary_upgrade_set_next_pg_type_oid",
		"pg_prewarm", "autoprewarm_start_worker", "set_limit",
		"postgres_fdw_disconnect_all", "pg_hba_file_rules",
		"pg_show_all_file_settings", "pg_current_logfile",
	};
	static const char *const fine[] = {
		"now", "lower", "txid_current_if_assigned", "pg_backend_pid",
		"current_setting", "pg_sleep", "random", "to_tsvector",
		"pg_get_viewdef", "xmlconcat", "query", "table_name",
	};
	size_t		 i;
	const char	*why = NULL;

	for (i = 0; i < DC_ARRAY_SIZE(denied); i++) {
		if (!dc_pgpolicy_denied(denied[i], -1, &why))
			fprintf(stderr, "not denied: %s\n", denied[i]);
		CHECK(dc_pgpolicy_denied(denied[i], -1, &why) == 1);
	}
	for (i = 0; i < DC_ARRAY_SIZE(fine); i++) {
		if (dc_pgpolicy_denied(fine[i], -1, NULL))
			fprintf(stderr, "denied: %s\n", fine[i]);
		CHECK(dc_pgpolicy_denied(fine[i], -1, NULL) == 0);
	}
	CHECK(dc_pgpolicy_denied("txid_current", 0, NULL) == 1);
	CHECK(dc_pgpolicy_denied("ts_rewrite", 2, NULL) == 1);
	CHECK(dc_pgpolicy_denied("ts_rewrite", 3, NULL) == 0);
}

int
main(void)
{
	build();
	test_functions();
	test_fields();
	test_operators();
	test_casts();
	test_relations();
	test_rows();
	test_deny_list();
	dc_pgcat_free(cat);
	T_DONE();
}
