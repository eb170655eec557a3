"""The PostgreSQL guard and function policy on PostgreSQL 15's real
catalog (tests/pgpolicy_tool: the daemon's own pgguard.c and pgpolicy.c).

The catalog is read with the daemon's catalog query from a database with
the contrib modules that matter installed (dblink, adminpack, tablefunc,
lo, pg_prewarm, postgres_fdw, pg_trgm) and a DBA's objects: a VOLATILE
function, a STABLE one, views over them, a domain whose check calls the
VOLATILE one, a table with a row security policy.  Then every function
of the catalog is called by name, and a few hundred statements the
issue's attacker tried (and others) are judged.
"""
import os
import subprocess

import psycopg2
import pytest

from conftest import BUILD

TOOL = os.path.join(BUILD, "tests", "pgpolicy_tool")

EXTENSIONS = ["dblink", "adminpack", "tablefunc", "lo", "pg_prewarm",
              "postgres_fdw", "pg_trgm"]

DBA_OBJECTS = """
CREATE TABLE items (id int PRIMARY KEY, name text, price numeric);
CREATE TABLE secrets (id int, owner text);
ALTER TABLE secrets ENABLE ROW LEVEL SECURITY;
CREATE FUNCTION mark_seen() RETURNS int LANGUAGE plpgsql AS
  'BEGIN RETURN 1; END';
CREATE FUNCTION mark_seen_arg(int) RETURNS int LANGUAGE sql AS 'SELECT 1';
CREATE FUNCTION price_with_tax(numeric) RETURNS numeric LANGUAGE sql
  STABLE AS 'SELECT $1 * 1.2';
CREATE FUNCTION definer_fn() RETURNS int LANGUAGE sql STABLE
  SECURITY DEFINER AS 'SELECT 1';
CREATE POLICY p ON secrets USING (mark_seen() = 1);
CREATE VIEW item_prices AS SELECT id, price_with_tax(price) FROM items;
CREATE VIEW seen_items AS SELECT mark_seen(), * FROM items;
CREATE VIEW locking AS SELECT pg_try_advisory_lock(id) FROM items;
CREATE VIEW on_locking AS SELECT * FROM locking;
CREATE VIEW on_secrets AS SELECT * FROM secrets;
CREATE DOMAIN seen_int AS int CHECK (VALUE > mark_seen());
CREATE DOMAIN pos_int AS int CHECK (VALUE > 0);
CREATE FUNCTION vol_eq(int, int) RETURNS bool LANGUAGE sql
  AS 'SELECT $1 = $2';
CREATE OPERATOR === (LEFTARG = int, RIGHTARG = int, FUNCTION = vol_eq);
CREATE TYPE mood AS ENUM ('ok', 'sad');
CREATE FUNCTION text_to_mood(text) RETURNS mood LANGUAGE sql
  AS 'SELECT $1::mood';
CREATE CAST (text AS mood) WITH FUNCTION text_to_mood(text);
"""


def sql_of_tool():
    return subprocess.run([TOOL, "--sql"], check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture(scope="module")
def catalog(pg, tmp_path_factory):
    db = pg.create_db("guard")
    c = pg.connect(db)
    with c.cursor() as cur:
        for e in EXTENSIONS:
            cur.execute("CREATE EXTENSION %s" % e)
        cur.execute(DBA_OBJECTS)
        cur.execute(sql_of_tool())
        rows = cur.fetchall()
        cur.execute("""SELECT n.nspname, p.proname, p.pronargs,
                       p.pronargdefaults, p.provariadic <> 0, p.provolatile,
                       p.oid < 16384, p.prokind
                       FROM pg_proc p JOIN pg_namespace n
                       ON n.oid = p.pronamespace""")
        procs = cur.fetchall()
    c.close()
    path = tmp_path_factory.mktemp("guard") / "catalog.tsv"
    with open(path, "w") as f:
        for r in rows:
            f.write("\t".join("\\N" if v is None else
                              v.replace("\t", " ").replace("\n", " ")
                              for v in r) + "\n")
    return {"path": str(path), "procs": procs, "db": db}


def judge(catalog, statements):
    """Verdicts, one per statement: ("ok", unusual) or (kind, node, why)."""
    out = subprocess.run([TOOL, catalog["path"]], check=True,
                         capture_output=True, text=True,
                         input="".join(s + "\n" for s in statements)).stdout
    res = []
    for line in out.splitlines():
        if line.startswith("ok "):
            res.append(("ok", int(line[3:])))
        else:
            res.append(tuple(line.split("\t", 2)))
    assert len(res) == len(statements), out
    return res


def call_of(nsp, name, nargs):
    return 'SELECT "%s"."%s"(%s)' % (nsp, name, ", ".join(["NULL"] * nargs))


def fits(p, nargs):
    _, _, pronargs, ndef, variadic, _, _, _ = p
    return (pronargs - ndef <= nargs <= pronargs or
            (variadic and nargs >= pronargs - 1))


ALLOWED_VOLATILE = {"random", "random_normal", "clock_timestamp",
                    "timeofday", "gen_random_uuid", "pg_relation_size",
                    "pg_table_size", "pg_indexes_size",
                    "pg_total_relation_size", "pg_database_size",
                    "pg_tablespace_size", "pg_is_in_recovery", "pg_sleep",
                    "pg_sleep_for", "pg_sleep_until"}

# IMMUTABLE or STABLE built-in functions the policy refuses anyway: they
# run queries of their own or act outside the transaction.
STABLE_DENIED = {"table_to_xml", "table_to_xml_and_xmlschema",
                 "table_to_xmlschema", "schema_to_xml",
                 "schema_to_xml_and_xmlschema", "schema_to_xmlschema",
                 "database_to_xml", "database_to_xml_and_xmlschema",
                 "database_to_xmlschema", "txid_current",
                 "pg_current_xact_id", "pg_replication_origin_oid"}


def test_every_function_of_the_catalog(catalog):
    """Each function called by its qualified name: VOLATILE ones are
    refused unless on the short allow-list, IMMUTABLE and STABLE ones are
    admitted unless they run queries or act outside the transaction."""
    procs = [p for p in catalog["procs"] if p[7] != "p"]
    calls = sorted({(p[0], p[1], p[2]) for p in procs})
    verdicts = judge(catalog, [call_of(*c) for c in calls])
    unexpected = []
    for (nsp, name, nargs), v in zip(calls, verdicts):
        same = [p for p in procs if p[0] == nsp and p[1] == name and
                fits(p, nargs)]
        volatile = any(p[5] == "v" and not (p[6] and nsp == "pg_catalog"
                                            and name in ALLOWED_VOLATILE)
                       for p in same)
        if volatile:
            ok = v[0] == "refused"
        elif all(p[6] for p in same) and nsp in ("pg_catalog",
                                                  "information_schema"):
            ok = (v[0] == "refused") == (name in STABLE_DENIED)
        else:
            ok = v[0] in ("ok", "refused")
        if not ok:
            unexpected.append((nsp, name, nargs, v))
    assert unexpected == []
    # the contrib functions that reach outside are all refused
    by_name = {c[1]: v for c, v in zip(calls, verdicts)}
    for name in ("dblink", "dblink_exec", "dblink_connect", "pg_file_write",
                 "pg_file_unlink", "crosstab", "connectby", "lo_manage",
                 "pg_prewarm", "autoprewarm_start_worker",
                 "postgres_fdw_disconnect_all", "set_limit"):
        assert by_name[name][0] == "refused", name


ISSUE_EXAMPLES = [
    "SELECT * FROM ts_stat('SELECT to_tsvector(pg_terminate_backend(pid)"
    "::text) FROM pg_stat_activity WHERE usename=''app'' AND "
    "pid<>pg_backend_pid()')",
    "SELECT (1).pg_advisory_lock",
    "SELECT (pid).pg_terminate_backend FROM pg_stat_activity WHERE "
    "pid <> pg_backend_pid()",
    "SELECT pg_advisory_lock(1)",
    "SELECT setseed(0.5)",
    "SELECT txid_current()",
    "SELECT pg_reload_conf()",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT * FROM pg_ls_dir('/')",
    "SELECT pg_switch_wal()",
    "SELECT dblink_exec('dbname=postgres', 'INSERT INTO t VALUES (1)')",
    "SELECT ts_rewrite('a'::tsquery, 'SELECT ''a''::tsquery, "
    "''b''::tsquery')",
    "SELECT query_to_xml('SELECT pg_sleep(10)', true, false, '')",
    "SELECT cursor_to_xml('c', 1, true, false, '')",
    "SELECT table_to_xml('items', true, false, '')",
    "SELECT schema_to_xml('public', true, false, '')",
    "SELECT database_to_xml(true, false, '')",
    "SELECT set_config('statement_timeout', '0', false)",
    "SELECT pg_terminate_backend(1)",
    "SELECT pg_cancel_backend(1)",
    "SELECT pg_notify('c', 'x')",
    "SELECT lo_import('/etc/passwd')",
    "SELECT pg_current_xact_id()",
    "SELECT nextval('s')",
    "SELECT setval('s', 1)",
    "SELECT pg_create_physical_replication_slot('x')",
    "SELECT pg_create_logical_replication_slot('x', 'test_decoding')",
]

MORE_ATTEMPTS = [
    # nested and quoted forms
    "SELECT 1 WHERE EXISTS (SELECT 1 FROM (SELECT pg_reload_conf()) s)",
    'SELECT "pg_advisory_lock"(1)',
    'SELECT pg_catalog."pg_advisory_lock"(1)',
    'SELECT U&"pg\\005fadvisory\\005flock"(1)',
    "SELECT * FROM LATERAL pg_advisory_lock(1) l",
    "SELECT * FROM ROWS FROM (pg_try_advisory_lock(1), now())",
    "SELECT 1 UNION SELECT pg_advisory_lock(2)::int",
    "WITH x AS (SELECT pg_advisory_xact_lock(1)) SELECT * FROM x",
    "SELECT 1 ORDER BY pg_advisory_lock(1)",
    "SELECT 1 GROUP BY pg_advisory_lock(1)",
    "SELECT count(*) FILTER (WHERE pg_advisory_lock(1) IS NULL) FROM items",
    "SELECT array_agg(x ORDER BY pg_advisory_lock(1)) FROM items x",
    "SELECT CASE WHEN false THEN pg_reload_conf() END",
    "SELECT COALESCE(NULL, pg_reload_conf())",
    "SELECT ARRAY[pg_reload_conf()]",
    "SELECT ROW(pg_reload_conf())",
    "SELECT (SELECT pg_reload_conf())",
    "SELECT x.pg_advisory_lock FROM (SELECT 1::bigint AS x) s",
    "SELECT s.x.pg_advisory_lock FROM (SELECT 1::bigint AS x) s",
    "SELECT (x).pg_advisory_unlock FROM (SELECT 1::bigint) x",
    "SELECT ('/etc/passwd'::text).pg_read_file",
    "SELECT ('0.5'::float8).setseed",
    "SELECT (relname).nextval FROM pg_class",
    "SELECT (1).pg_terminate_backend",
    "SELECT * FROM items WHERE id = ANY (SELECT pg_cancel_backend(1)::int)",
    "SELECT * FROM items TABLESAMPLE system (pg_advisory_lock(1)::int)",
    "SELECT * FROM items i JOIN LATERAL (SELECT setseed(0)) s ON true",
    "VALUES (pg_advisory_lock(1))",
    "EXPLAIN ANALYZE SELECT pg_advisory_lock(1)",
    "SELECT lo_export(1, '/tmp/x')",
    "SELECT loread(lo_open(1, 262144), 10)",
    "SELECT pg_read_binary_file('/etc/shadow')",
    "SELECT pg_stat_file('/etc/passwd')",
    "SELECT pg_file_write('/tmp/x', 'y', false)",
    "SELECT * FROM dblink('dbname=postgres', 'SELECT 1') AS t(x int)",
    "SELECT dblink_connect('c', 'dbname=postgres')",
    "SELECT * FROM crosstab('SELECT pg_sleep(1)') AS t(a text)",
    "SELECT pg_logical_emit_message(true, 'x', 'y')",
    "SELECT pg_stat_reset()",
    "SELECT pg_rotate_logfile()",
    "SELECT currval('s')",
    "SELECT pg_export_snapshot()",
    # a DBA's VOLATILE function, by what the catalog says
    "SELECT mark_seen()",
    "SELECT mark_seen_arg(1)",
    "SELECT (1).mark_seen_arg",
    "SELECT public.mark_seen()",
    "SELECT * FROM seen_items",
    "SELECT * FROM locking",
    "SELECT * FROM on_locking",
    "SELECT * FROM secrets",
    "SELECT * FROM on_secrets",
    "SELECT 5::seen_int",
    "SELECT CAST(5 AS public.seen_int)",
    "SELECT 'ok'::text::mood",
    "SELECT 1 === 1",
    "SELECT * FROM items WHERE id OPERATOR(public.===) 1",
    # operators and casts backed by VOLATILE functions
    "SELECT 1 WHERE pg_catalog.random() > 2 AND mark_seen() = 1",
    # writes however they are dressed up
    "EXPLAIN ANALYZE DELETE FROM items",
    "EXPLAIN ANALYZE INSERT INTO items VALUES (1)",
    "EXPLAIN ANALYZE WITH d AS (DELETE FROM items RETURNING 1) SELECT 1",
    "WITH d AS (UPDATE items SET price = 0 RETURNING 1) SELECT * FROM d",
    "SELECT * INTO copy FROM items",
    "SELECT * FROM items FOR UPDATE",
    "CREATE TEMP TABLE t AS SELECT 1",
    "SET statement_timeout = 0",
    "LISTEN x",
    "PREPARE p AS SELECT 1",
    "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
    "COPY items TO '/tmp/x'",
    "SELECT 1; SELECT 2",
    "DO $$BEGIN PERFORM pg_advisory_lock(1); END$$",
    "SELECT 'x\\' , pg_advisory_lock(1), ''",
]

HARMLESS = [
    "SELECT 1",
    "SELECT now(), current_date, version(), pg_backend_pid()",
    "SELECT random(), clock_timestamp(), gen_random_uuid()",
    "SELECT pg_sleep(0.1)",
    "SELECT datname, pg_database_size(datname) FROM pg_database",
    "SELECT lower(name), count(*) FROM items GROUP BY 1 ORDER BY 2 DESC",
    "SELECT * FROM items WHERE name LIKE 'a%' AND id BETWEEN 1 AND 9",
    "SELECT * FROM item_prices",
    "SELECT price_with_tax(price) FROM items",
    "SELECT 5::pos_int, '1'::int, CAST('2024-01-01' AS date)",
    "SELECT * FROM pg_stat_activity",
    "SELECT relname FROM pg_class c JOIN pg_namespace n "
    "ON n.oid = c.relnamespace WHERE n.nspname = 'public'",
    "WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t "
    "WHERE n < 5) SELECT sum(n) FROM t",
    "EXPLAIN ANALYZE SELECT * FROM items",
    "SHOW work_mem",
    "TABLE items",
    "VALUES (1, 'a')",
    "SELECT to_tsvector('english', 'a b') @@ to_tsquery('a')",
    "SELECT ts_rewrite('a & b'::tsquery, 'a'::tsquery, 'c'::tsquery)",
    "SELECT similarity('abc', 'abd')",
    "SELECT jsonb_build_object('a', 1) -> 'a'",
    "SELECT * FROM generate_series(1, 3) g, LATERAL (SELECT g * 2) x",
    "SELECT xmlelement(name a, 'b')",
]


def test_the_issue_examples_are_refused(catalog):
    for stmt, v in zip(ISSUE_EXAMPLES, judge(catalog, ISSUE_EXAMPLES)):
        assert v[0] in ("refused", "guard"), (stmt, v)


def test_more_attempts_are_refused(catalog):
    for stmt, v in zip(MORE_ATTEMPTS, judge(catalog, MORE_ATTEMPTS)):
        assert v[0] in ("refused", "guard"), (stmt, v)


def test_harmless_statements_are_admitted(catalog):
    verdicts = judge(catalog, HARMLESS)
    for stmt, v in zip(HARMLESS, verdicts):
        assert v[0] == "ok", (stmt, v)
    by = dict(zip(HARMLESS, verdicts))
    # built-in functions on tables: the session is reused; a DBA's
    # function or view: it is not
    assert by["SELECT 1"] == ("ok", 0)
    assert by["SELECT * FROM pg_stat_activity"] == ("ok", 0)
    assert by["SELECT * FROM item_prices"] == ("ok", 1)
    assert by["SELECT price_with_tax(price) FROM items"] == ("ok", 1)


def test_refusals_name_the_node_and_the_reason(catalog):
    v = judge(catalog, ["SELECT (1).pg_advisory_lock", "SELECT mark_seen()",
                        "SELECT * FROM on_locking", "SELECT 5::seen_int",
                        "SELECT 1 === 1",
                        "WITH d AS (DELETE FROM items RETURNING 1) "
                        "SELECT 1"])
    assert v[0][:2] == ("refused", "field selection .pg_advisory_lock")
    assert "deny-list" in v[0][2] and "advisory lock" in v[0][2]
    assert v[1] == ("refused", "FuncCall mark_seen",
                    v[1][2]) and "VOLATILE" in v[1][2]
    assert v[2][1] == "RangeVar on_locking"
    assert "view public.on_locking" in v[2][2]
    assert "pg_try_advisory_lock" in v[2][2]
    assert v[3][1] == "TypeCast" and "mark_seen" in v[3][2]
    assert v[4][1] == "operator ===" and "public.vol_eq" in v[4][2]
    assert v[5][:2] == ("guard", "DeleteStmt")
    assert "inside WITH" in v[5][2]
