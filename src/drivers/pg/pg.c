/*
 * pg.c - the PostgreSQL driver (drv_pg.h, driver.h): libpq in
 * non-blocking pipeline mode, driven by the pool on the worker's loop.
 *
 * Connections are opened with PQconnectStartParams/PQconnectPoll (at the
 * address the pool looked up, so libpq never calls getaddrinfo), with
 * client_connection_check_interval set so the server stops a statement
 * whose client (us) closed the connection: that is how a job is
 * cancelled.  Statements go out with PQsendQueryParams in pipeline mode
 * and come back with PQconsumeInput/PQgetResult when the socket is
 * readable.
 *
 * A read-only job is BEGIN READ ONLY; <sql>; ROLLBACK (job_plan).  A
 * target connection prepares BEGIN and ROLLBACK once, right after
 * connecting (conn_setup), and sets the session's statement_timeout, so
 * each job sends only its own SQL as text (the extended protocol refuses
 * a second statement in it) and the server skips parsing the rest.  The
 * ROLLBACK also undoes any setting the statement changed with
 * set_config(), the timeout included, so nothing of one job outlives it
 * in the session.  Where named statements do not survive (a
 * transaction-pooling proxy, below) neither would the session's timeout:
 * there the job is BEGIN READ ONLY; SET LOCAL statement_timeout; <sql>;
 * ROLLBACK, all as text.  A target that loses named statements between
 * transactions (26000) is switched to text for good (Q_NO_PREPARE) and
 * loses pipelining too (the server session may change between two jobs).
 *
 * The statement's rows come in single-row mode; the first max_rows + 1
 * are kept (the first row by reference in its own PGresult, the others
 * copied) and any more already received are dropped.  When the job has
 * its max_rows + 1 rows and the statement is still sending, the job is
 * answered at once and the connection closed, which stops the statement
 * (an endless one would otherwise run into its timeout).
 *
 * The byte budget (max_result_bytes) is kept the same way: a row that
 * does not fit what is left of it cuts the result there, or refuses the
 * statement when the row alone is larger than the budget
 * (dc_job_over_budget).  libpq hands over a row only once its whole
 * DataRow message is in memory, so checking rows as they are kept would
 * let one huge value in (twice: libpq's input buffer and the PGresult).
 * So, after each read, the driver also asks the kernel how many bytes
 * arrived on the socket since the last complete row (TCP_INFO's
 * tcpi_bytes_received) and stops once the row still arriving cannot fit.
 * What this cannot bound: what libpq reads in one PQconsumeInput.  It
 * reads a long message until the socket is empty, and a server that
 * sends as fast as we copy keeps it from being empty: on loopback one
 * read took in 40 to 200 MB of a 200 MB value.  So the hard bound for a
 * row is the row itself, in libpq's input buffer, and its PGresult when
 * that read completed it; never the rows after it, datachatd's copy or
 * their JSON.  Nor can it see a row's first bytes that came in the read
 * that completed the row before it, or a target on a unix socket (no
 * byte counter: there a row is checked once it is whole).  libpq offers
 * no hook on its reads, and no limit on a message's size.
 *
 * Jobs are pipelined (the pool chooses how many per connection); the jobs
 * one loop pass gives a connection share one Sync, sent when the pass ends
 * (the pool calls pg_flush), so the server gets them in one read and
 * flushes their answers once.  A job that fails leaves its transaction
 * aborted; the jobs of its group are skipped by the server
 * (PGRES_PIPELINE_ABORTED), those of later groups are refused at their
 * BEGIN (25P02), neither ran, and all go back to the queue; the
 * connection is blocked until a ROLLBACK ended that transaction
 * (pg_reset).
 */
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#ifdef __linux__
#include <linux/tcp.h>		/* struct tcp_info with tcpi_bytes_received */
#endif
#include <assert.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "config.h"
#include "dc.h"
#include "driver.h"
#include "drv_pg.h"
#include "log.h"
#include "pgguard.h"
#include "pgpolicy.h"
#include "rows.h"
#include "shreg.h"
#include "util.h"
#include "worker.h"

/* --- the dialect --- */

static const char catalog_sql[] =
    "WITH t AS ("
    " SELECT c.oid, n.nspname AS schema_name, c.relname AS table_name,"
    "  c.relkind, c.reltuples,"
    "  CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'"
    "   WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'BASE TABLE' END AS table_type"
    " FROM pg_catalog.pg_class c"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition"
    "  AND ($2::text IS NOT NULL"
    "   OR (n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'))"
    "  AND ($1::text IS NULL OR n.nspname = $1::text)"
    "  AND ($2::text IS NULL OR c.relname = $2::text)"
    ")"
    " SELECT t.schema_name, t.table_name, t.table_type,"
    "  CASE WHEN t.relkind IN ('r', 'm')"
    "    AND pg_catalog.has_table_privilege(t.oid, 'SELECT')"
    "    AND pg_catalog.pg_relation_size(t.oid) <= 8388608"
    "   THEN ((pg_catalog.xpath('/row/n/text()', pg_catalog.query_to_xml("
    "    pg_catalog.format('SELECT pg_catalog.count(*) AS n FROM %I.%I',"
    "    t.schema_name, t.table_name), false, true, '')))[1])::text::bigint"
    "   WHEN t.relkind IN ('r', 'm', 'p') AND t.reltuples >= 0"
    "   THEN t.reltuples::bigint END AS row_count,"
    "  a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),"
    "  NOT a.attnotnull,"
    "  EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k"
    "   WHERE k.conrelid = t.oid AND k.contype = 'p'"
    "   AND a.attnum = ANY (k.conkey)),"
    "  fk.ftable, fk.fcolumn"
    " FROM t"
    " LEFT JOIN pg_catalog.pg_attribute a ON $3::boolean"
    "  AND a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped"
    " LEFT JOIN LATERAL ("
    "  SELECT CASE WHEN fn.nspname = t.schema_name THEN fc.relname::text"
    "   ELSE fn.nspname || '.' || fc.relname END AS ftable,"
    "   fa.attname::text AS fcolumn"
    "  FROM pg_catalog.pg_constraint k"
    "  JOIN pg_catalog.pg_class fc ON fc.oid = k.confrelid"
    "  JOIN pg_catalog.pg_namespace fn ON fn.oid = fc.relnamespace"
    "  JOIN pg_catalog.pg_attribute fa ON fa.attrelid = k.confrelid"
    "   AND fa.attnum = k.confkey[pg_catalog.array_position(k.conkey,"
    "   a.attnum)]"
    "  WHERE k.conrelid = t.oid AND k.contype = 'f'"
    "   AND a.attnum = ANY (k.conkey)"
    "  ORDER BY k.conname LIMIT 1"
    " ) fk ON true"
    " ORDER BY t.schema_name, t.table_name, a.attnum";

/*
 * The catalog's version: every row of the catalogs a snapshot (and the
 * function policy) is read from carries the id of the transaction that
 * wrote it, so the number and the sum of those ids change with every
 * CREATE, ALTER, DROP, RENAME and GRANT, and do not change with VACUUM,
 * ANALYZE or data.  A few thousand rows: a millisecond, where the
 * snapshot itself costs a count per small table.
 */
static const char version_sql[] =
    "SELECT (SELECT pg_catalog.count(*) || '.' || coalesce(pg_catalog.sum("
    "xmin::text::bigint), 0) FROM pg_catalog.pg_class)"
    " || '/' || (SELECT pg_catalog.count(*) || '.' || coalesce("
    "pg_catalog.sum(xmin::text::bigint), 0) FROM pg_catalog.pg_attribute)"
    " || '/' || (SELECT pg_catalog.count(*) || '.' || coalesce("
    "pg_catalog.sum(xmin::text::bigint), 0) FROM pg_catalog.pg_constraint)"
    " || '/' || (SELECT pg_catalog.count(*) || '.' || coalesce("
    "pg_catalog.sum(xmin::text::bigint), 0) FROM pg_catalog.pg_namespace)"
    " || '/' || (SELECT pg_catalog.count(*) || '.' || coalesce("
    "pg_catalog.sum(xmin::text::bigint), 0) FROM pg_catalog.pg_proc)";

static const struct dc_dialect pg_dialect = {
	.name = "PostgreSQL",
	/* PostgreSQL's own grammar, then the policy from the catalog */
	.guard = dc_pgguard_verdict,
	.policy_sql = dc_pgcat_sql,
	.quote = '"',
	.default_schema = "public",
	/*
	 * Row counts are exact for tables and materialized views up to
	 * 8 MB the role may read, the planner's estimate otherwise (null
	 * when it has none).
	 */
	.catalog_sql = catalog_sql,
	.version_sql = version_sql,
	/*
	 * DataChat's own bookkeeping tables are left out of the listing, as
	 * DataChat leaves them out (datachatd's registry is DataChat's
	 * database_connections).
	 */
	.list_tables_sql =
	    "SELECT table_schema, table_name "
	    "FROM information_schema.tables "
	    "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') "
	    "AND table_name NOT IN ("
	    "'database_connections', "
	    "'profiling_jobs', "
	    "'profiling_profiles', "
	    "'pending_datapoints', "
	    "'datapoint_generation_jobs'"
	    ") "
	    "ORDER BY table_schema, table_name",
	.list_columns_sql =
	    "SELECT table_schema, table_name, column_name, data_type "
	    "FROM information_schema.columns "
	    "WHERE table_name = %s "
	    "AND table_schema = %s "
	    "ORDER BY table_schema, table_name, ordinal_position",
	.count_sql = "SELECT COUNT(*) AS row_count FROM %s",
	.sample_sql = "SELECT * FROM %s LIMIT %d",
	.prompt_rules = "- Qualify tables with their schema when it is not "
	    "public.\n",
};

/* --- types --- */

/*
 * Type OIDs from pg_type.dat; stable across PostgreSQL versions.  The
 * flags say how asyncpg (DataChat's driver) reads them (rows.h).
 */
static const struct {
	Oid		 oid;
	int		 type;
	unsigned	 flags;
} oid_types[] = {
	{ 16, DC_VT_BOOL, 0 },		/* bool */
	{ 17, DC_VT_BYTES, 0 },		/* bytea */
	{ 18, DC_VT_TEXT, 0 },		/* "char" */
	{ 19, DC_VT_TEXT, 0 },		/* name */
	{ 20, DC_VT_INT, 0 },		/* int8 */
	{ 21, DC_VT_INT, 0 },		/* int2 */
	{ 23, DC_VT_INT, 0 },		/* int4 */
	{ 25, DC_VT_TEXT, 0 },		/* text */
	{ 26, DC_VT_INT, 0 },		/* oid */
	{ 114, DC_VT_JSON, 0 },		/* json */
	{ 142, DC_VT_TEXT, 0 },		/* xml */
	{ 705, DC_VT_TEXT, 0 },		/* unknown (an untyped literal) */
	{ 790, DC_VT_TEXT, 0 },		/* money */
	{ 700, DC_VT_FLOAT, DC_COL_FLOAT4 },	/* float4 */
	{ 701, DC_VT_FLOAT, 0 },		/* float8 */
	{ 1042, DC_VT_TEXT, 0 },		/* bpchar */
	{ 1043, DC_VT_TEXT, 0 },		/* varchar */
	{ 1082, DC_VT_DATE, 0 },		/* date */
	{ 1083, DC_VT_TIME, 0 },		/* time */
	{ 1114, DC_VT_TIMESTAMP, 0 },	/* timestamp */
	{ 1184, DC_VT_TIMESTAMPTZ, 0 },	/* timestamptz */
	{ 1266, DC_VT_TIME, 0 },		/* timetz */
	{ 1186, DC_VT_INTERVAL, 0 },	/* interval */
	{ 1700, DC_VT_DECIMAL, DC_COL_NUMERIC_GROUPS },	/* numeric */
	{ 2950, DC_VT_UUID, 0 },		/* uuid */
	{ 3802, DC_VT_JSON, 0 },		/* jsonb */
	/* arrays of those: asyncpg's lists of the elements' values */
	{ 1000, DC_VT_BOOL, DC_COL_ARRAY },		/* bool[] */
	{ 1001, DC_VT_BYTES, DC_COL_ARRAY },		/* bytea[] */
	{ 1002, DC_VT_TEXT, DC_COL_ARRAY },		/* "char"[] */
	{ 1003, DC_VT_TEXT, DC_COL_ARRAY },		/* name[] */
	{ 1016, DC_VT_INT, DC_COL_ARRAY },		/* int8[] */
	{ 1005, DC_VT_INT, DC_COL_ARRAY },		/* int2[] */
	{ 1007, DC_VT_INT, DC_COL_ARRAY },		/* int4[] */
	{ 1009, DC_VT_TEXT, DC_COL_ARRAY },		/* text[] */
	{ 1028, DC_VT_INT, DC_COL_ARRAY },		/* oid[] */
	{ 199, DC_VT_JSON, DC_COL_ARRAY },		/* json[] */
	{ 143, DC_VT_TEXT, DC_COL_ARRAY },		/* xml[] */
	{ 791, DC_VT_TEXT, DC_COL_ARRAY },		/* money[] */
	{ 1021, DC_VT_FLOAT, DC_COL_ARRAY | DC_COL_FLOAT4 },	/* float4[] */
	{ 1022, DC_VT_FLOAT, DC_COL_ARRAY },		/* float8[] */
	{ 1014, DC_VT_TEXT, DC_COL_ARRAY },		/* bpchar[] */
	{ 1015, DC_VT_TEXT, DC_COL_ARRAY },		/* varchar[] */
	{ 1182, DC_VT_DATE, DC_COL_ARRAY },		/* date[] */
	{ 1183, DC_VT_TIME, DC_COL_ARRAY },		/* time[] */
	{ 1115, DC_VT_TIMESTAMP, DC_COL_ARRAY },	/* timestamp[] */
	{ 1185, DC_VT_TIMESTAMPTZ, DC_COL_ARRAY },	/* timestamptz[] */
	{ 1270, DC_VT_TIME, DC_COL_ARRAY },		/* timetz[] */
	{ 1187, DC_VT_INTERVAL, DC_COL_ARRAY },	/* interval[] */
	{ 1231, DC_VT_DECIMAL, DC_COL_ARRAY | DC_COL_NUMERIC_GROUPS },
							/* numeric[] */
	{ 2951, DC_VT_UUID, DC_COL_ARRAY },		/* uuid[] */
	{ 3807, DC_VT_JSON, DC_COL_ARRAY },		/* jsonb[] */
};

/* oid's row in oid_types, -1 when it has none. */
static int
oid_row(Oid oid)
{
	size_t i;

	for (i = 0; i < DC_ARRAY_SIZE(oid_types); i++)
		if (oid_types[i].oid == oid)
			return (int)i;
	return -1;
}

int
dc_pg_vtype(Oid oid)
{
	int i = oid_row(oid);

	return i >= 0 ? oid_types[i].type : DC_VT_OTHER;
}

static unsigned
pg_vflags(Oid oid)
{
	int i = oid_row(oid);

	return i >= 0 ? oid_types[i].flags : 0;
}

static void
release_result(void *res)
{
	PQclear(res);
}

/* Columns of res as an empty rows; NULL when out of memory. */
static struct dc_rows *
rows_shape(const PGresult *res)
{
	int i, n = PQnfields(res);
	struct dc_rows *r = dc_rows_new(n);

	for (i = 0; r != NULL && i < n; i++) {
		if (dc_rows_set_col(r, i, PQfname(res, i),
		    dc_pg_vtype(PQftype(res, i))) != DC_OK) {
			dc_rows_free(r);
			r = NULL;
		} else
			dc_rows_set_flags(r, i, pg_vflags(PQftype(res, i)));
	}
	return r;
}

/* Row row of res as cells (PQgetvalue's text, NUL-terminated). */
static void
row_cells(const PGresult *res, int row, struct dc_cell *cells, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		if (PQgetisnull(res, row, i)) {
			cells[i].v = NULL;
			cells[i].len = 0;
		} else {
			cells[i].v = PQgetvalue(res, row, i);
			cells[i].len = (size_t)PQgetlength(res, row, i);
		}
	}
}

/* Append res's rows by reference and hand res over to r. */
static int
rows_take(struct dc_rows *r, PGresult *res)
{
	struct dc_cell cells[64], *cp = cells;
	int row, n = PQntuples(res), rc = DC_OK;

	if (r->ncols > (int)DC_ARRAY_SIZE(cells) &&
	    (cp = calloc((size_t)r->ncols, sizeof(*cp))) == NULL) {
		PQclear(res);
		return DC_ENOMEM;
	}
	if (dc_rows_reserve(r, n) != DC_OK)
		rc = DC_ENOMEM;
	for (row = 0; rc == DC_OK && row < n; row++) {
		row_cells(res, row, cp, r->ncols);
		rc = dc_rows_add_ref(r, cp);
	}
	if (cp != cells)
		free(cp);
	if (rc != DC_OK) {
		PQclear(res);
		return rc;
	}
	return dc_rows_hold(r, res, release_result);
}

int
dc_pg_rows(PGresult *res, struct dc_rows **out)
{
	struct dc_rows *r = rows_shape(res);

	*out = NULL;
	if (r == NULL) {
		PQclear(res);
		return DC_ENOMEM;
	}
	if (rows_take(r, res) != DC_OK) {
		dc_rows_free(r);
		return DC_ENOMEM;
	}
	*out = r;
	return DC_OK;
}

/* --- connections and jobs --- */

/*
 * The fixed statements of a read-only job.  A target connection prepares
 * the ones with a name once (named statements) and sets the timeout for
 * the session, so a job sends only its own SQL as text; a target behind a
 * proxy that does not keep named statements (PgBouncer in transaction
 * mode, say) gets all of them as text instead.
 */
enum step {
	S_USER = 0,		/* the job's statement i (SYSDB: each of them) */
	S_BEGIN,		/* BEGIN READ ONLY */
	S_TIMEOUT,		/* SET LOCAL statement_timeout, when not in
				   the session already */
	S_ROLLBACK,
	S_SYS_BEGIN,		/* the system database's read-write BEGIN */
	S_SYS_COMMIT,
	S_NSTEPS
};

static const struct {
	const char	*name;		/* prepared as name_<random>, or NULL */
	const char	*text;		/* NULL: built by step_text() */
} fixed[S_NSTEPS] = {
	[S_BEGIN] = { "dc_begin", "BEGIN READ ONLY" },
	[S_TIMEOUT] = { NULL, NULL },
	[S_ROLLBACK] = { "dc_rollback", "ROLLBACK" },
	[S_SYS_BEGIN] = { NULL, "BEGIN" },
	[S_SYS_COMMIT] = { NULL, "COMMIT" },
};

/*
 * What a read-only job sends, in order.  A statement every job must run
 * at its end (resetting what ROLLBACK does not) goes after S_ROLLBACK:
 * its results are read and dropped like ROLLBACK's.
 */
static const int read_plan[] = { S_BEGIN, S_TIMEOUT, S_USER, S_ROLLBACK };

/*
 * What the role can do beyond reading (issue 11): one row, a column per
 * enum dc_priv bit in its order.  A superuser is a member of every role;
 * a role the server does not have (before PostgreSQL 11) is no error.
 */
#define PRIV_ROLE(name)							\
    " EXISTS (SELECT FROM pg_catalog.pg_roles g WHERE g.rolname = '"	\
    name "' AND pg_catalog.pg_has_role(r.oid, g.oid, 'MEMBER'))"
static const char privs_sql[] =
    "SELECT r.rolsuper, r.rolcreaterole,"
    PRIV_ROLE("pg_read_server_files") ","
    PRIV_ROLE("pg_write_server_files") ","
    PRIV_ROLE("pg_execute_server_program") ","
    PRIV_ROLE("pg_signal_backend")
    " FROM pg_catalog.pg_roles r WHERE r.rolname = CURRENT_USER";

/* Per-target quirk (driver.h): named statements do not survive. */
#define Q_NO_PREPARE	(1u << 8)

struct pgconn {
	struct dc_conn	 c;		/* first: the pool's part */
	PGconn		*conn;
	int		 setup;		/* conn_setup's results are coming */
	unsigned	 privs;		/* enum dc_priv, read by setup_event */
	int		 cleaning;	/* pg_reset's ROLLBACK is coming */
	int		 prepared;	/* the fixed statements exist */
	int		 prep_timeout;	/* statement_timeout they were made with */
	int		 no_rx;		/* no TCP byte counter (rx_bytes) */
	char		 names[S_NSTEPS][32];	/* of the fixed statements */
};

struct pgjob {
	int		 nsent;		/* statements sent for it */
	int		 ridx;		/* the one whose rows are the result */
	int		 single;	/* ridx runs in single-row mode */
	int		 capped;	/* single: max_rows + 1 rows arrived, or
					   the byte budget is spent: keep no more */
	int		 over;		/* over the byte budget: stop it */
	int		 rx_rows;	/* rows kept when rx_mark was taken */
	uint64_t	 rx_mark;	/* bytes received then (rx_bytes) */
	int		 step;		/* statement whose results we read */
	int		 fail_step;	/* statement of the first error, or -1 */
	int		 sync;		/* the last job before a Sync */
	int		 aborted;	/* skipped after an error before it */
	char		 state[6];	/* SQLSTATE of the first error */
};

static struct pgjob *
pgjob(struct dc_job *j)
{
	return (struct pgjob *)(void *)j->drv;
}

static struct pgconn *
pgconn(struct dc_conn *c)
{
	return (struct pgconn *)c;
}

/* The text of a fixed statement, for a connection that did not prepare. */
static void
step_text(int kind, int timeout, char *buf, size_t sz)
{
	if (kind == S_TIMEOUT)
		snprintf(buf, sz, "SET LOCAL statement_timeout = %d", timeout);
	else
		dc_strlcpy(buf, fixed[kind].text, sz);
}

static void
arm(struct pgconn *pc, short what)
{
	dc_conn_watch(&pc->c, PQsocket(pc->conn), what, -1);
}

/* After writing: read, and write again while libpq holds output. */
static void
arm_flushed(struct pgconn *pc, int flush_rc)
{
	arm(pc, EV_READ | EV_PERSIST | (flush_rc == 1 ? EV_WRITE : 0));
}

/* Errors that mean the session is gone, not that the statement failed. */
static int
session_lost(const char *sqlstate)
{
	return strncmp(sqlstate, "57P0", 4) == 0 ||
	    strncmp(sqlstate, "08", 2) == 0;
}

static void
notice_quiet(void *arg, const char *message)
{
	log_debug("target notice: %s", message);
}

static char *
pg_url_host(const char *url)
{
	PQconninfoOption *opts, *o;
	const char *host = NULL, *hostaddr = NULL;
	unsigned char buf[16];
	char *err = NULL, *out = NULL, *libpq = dc_url_libpq(url);

	/*
	 * Nothing to look up for a unix socket, an IP address, hostaddr
	 * given, several hosts (libpq's own fallback list), or a URL libpq
	 * cannot parse (its connect says why).
	 */
	if (libpq == NULL)
		return NULL;
	opts = PQconninfoParse(libpq, &err);
	dc_explicit_bzero(libpq, strlen(libpq));
	free(libpq);
	if (opts == NULL) {
		PQfreemem(err);
		return NULL;
	}
	for (o = opts; o->keyword != NULL; o++) {
		if (strcmp(o->keyword, "host") == 0)
			host = o->val;
		else if (strcmp(o->keyword, "hostaddr") == 0)
			hostaddr = o->val;
	}
	if (host != NULL && host[0] != '\0' && host[0] != '/' &&
	    host[0] != '@' && strchr(host, ',') == NULL &&
	    (hostaddr == NULL || hostaddr[0] == '\0') &&
	    inet_pton(AF_INET, host, buf) != 1 &&
	    inet_pton(AF_INET6, host, buf) != 1)
		out = strdup(host);
	PQconninfoFree(opts);
	return out;
}

static int
pg_connect(struct dc_conn *c, const char *url, const char *hostaddr,
    char *err, size_t errsz)
{
	struct pgconn *pc = pgconn(c);
	/*
	 * DateStyle and IntervalStyle as PostgreSQL ships them, whatever the
	 * server's configuration says: result.c reads dates, times and
	 * intervals in these forms (rows.h).
	 */
	const char *keys[] = { "dbname", "application_name", "keepalives_idle",
	    "keepalives_interval", "keepalives_count", "options", "hostaddr",
	    NULL };
	const char *vals[] = { NULL, "datachatd", "10", "5", "3",
	    "-c client_connection_check_interval=1000 -c DateStyle=ISO "
	    "-c IntervalStyle=postgres", hostaddr, NULL };
	char *libpq = dc_url_libpq(url);

	if (libpq == NULL) {
		dc_strlcpy(err, "out of memory", errsz);
		return DC_ERR;
	}
	vals[0] = libpq;
	if (hostaddr == NULL)
		keys[6] = NULL;
	pc->conn = PQconnectStartParams(keys, vals, 1);
	dc_explicit_bzero(libpq, strlen(libpq));
	free(libpq);
	if (pc->conn == NULL || PQstatus(pc->conn) == CONNECTION_BAD) {
		dc_conn_scrub(c, "could not connect to the database: ",
		    pc->conn != NULL ? PQerrorMessage(pc->conn) :
		    "out of memory", err, errsz);
		return DC_ERR;
	}
	PQsetNoticeProcessor(pc->conn, notice_quiet, NULL);
	arm(pc, EV_WRITE);
	return DC_OK;
}

/*
 * What a connection sends once it is up, in one round trip: the fixed
 * statements prepared under names nobody else uses, and the session's
 * statement timeout (not behind a proxy that loses them: Q_NO_PREPARE),
 * and what the role may do (privs_sql).  Further per-session setup goes
 * here too; its results are read by setup_event().  The connect timer
 * keeps running until they are ready.
 */
static int
conn_setup(struct pgconn *pc)
{
	const struct dc_config *cfg = pc->c.w->cfg;
	uint8_t rnd[16];
	char text[64];
	int kind, rc;

	if (PQsendQueryParams(pc->conn, privs_sql, 0, NULL, NULL, NULL, NULL,
	    0) != 1)
		return DC_ERR;
	if (dc_conn_quirks(&pc->c) & Q_NO_PREPARE)
		goto sync;
	/*
	 * Behind a pooler that hands server sessions from client to client,
	 * a job must never find another client's statement of the same name
	 * (a "dc_begin" that is not READ ONLY).  Where ours are missing the
	 * job fails with 26000 before anything ran, and the target falls
	 * back to text (prepared_lost).
	 */
	if (dc_uuid_generate(rnd) != DC_OK)
		return DC_ERR;
	pc->prep_timeout = cfg->statement_timeout;
	for (kind = 0; kind < S_NSTEPS; kind++) {
		if (fixed[kind].name == NULL)
			continue;
		snprintf(pc->names[kind], sizeof(pc->names[kind]), "%s_%02x%02x"
		    "%02x%02x%02x%02x%02x%02x", fixed[kind].name, rnd[0],
		    rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
		if (PQsendPrepare(pc->conn, pc->names[kind], fixed[kind].text,
		    0, NULL) != 1)
			return DC_ERR;
	}
	/*
	 * The timeout for the whole session rather than SET LOCAL in every
	 * job: one statement less each time.  A job cannot change it for the
	 * next one (its ROLLBACK undoes set_config()), and a connection made
	 * with another value is closed (pg_current).
	 */
	snprintf(text, sizeof(text), "SET statement_timeout = %d",
	    pc->prep_timeout);
	if (PQsendQueryParams(pc->conn, text, 0, NULL, NULL, NULL, NULL,
	    0) != 1)
		return DC_ERR;
sync:
	if (PQpipelineSync(pc->conn) != 1 || (rc = PQflush(pc->conn)) < 0)
		return DC_ERR;
	pc->setup = 1;
	arm_flushed(pc, rc);
	return DC_OK;
}

static void
setup_failed(struct pgconn *pc, const char *why)
{
	char msg[512];

	dc_conn_scrub(&pc->c, "could not set up the database connection: ",
	    why, msg, sizeof(msg));
	dc_conn_connect_failed(&pc->c, msg);
}

/* privs_sql's row: "t" or "f" per enum dc_priv bit. */
static void
privs_read(struct pgconn *pc, const PGresult *res)
{
	int i;

	pc->privs = 0;
	for (i = 0; PQntuples(res) == 1 && i < DC_PRIV_COUNT &&
	    i < PQnfields(res); i++)
		if (strcmp(PQgetvalue(res, 0, i), "t") == 0)
			pc->privs |= 1u << i;
}

/* Results of conn_setup(): the connection is ready, or it failed. */
static void
setup_event(struct pgconn *pc, short what)
{
	const char *err = NULL;
	PGresult *res;
	int rc;

	if (what & EV_WRITE) {
		if ((rc = PQflush(pc->conn)) < 0)
			goto fail;
		if (rc == 0)
			arm(pc, EV_READ | EV_PERSIST);
	}
	if (!(what & EV_READ))
		return;
	if (PQconsumeInput(pc->conn) == 0)
		goto fail;
	while (!PQisBusy(pc->conn)) {
		res = PQgetResult(pc->conn);
		if (res == NULL)
			continue;
		switch (PQresultStatus(res)) {
		case PGRES_PIPELINE_SYNC:
			PQclear(res);
			if (err != NULL)
				goto fail;
			pc->setup = 0;
			pc->prepared = !(dc_conn_quirks(&pc->c) & Q_NO_PREPARE);
			if (dc_conn_privileges(&pc->c, pc->privs) != DC_OK)
				return;		/* refused: closed */
			arm(pc, EV_READ | EV_PERSIST);
			dc_conn_ready(&pc->c);
			return;
		case PGRES_TUPLES_OK:
			privs_read(pc, res);
			break;
		case PGRES_COMMAND_OK:
		case PGRES_PIPELINE_ABORTED:
			break;
		default:
			err = "could not set up the session";
			break;
		}
		PQclear(res);
	}
	if (PQstatus(pc->conn) == CONNECTION_OK)
		return;
fail:
	setup_failed(pc, err != NULL ? err : PQerrorMessage(pc->conn));
}

static void
connect_step(struct pgconn *pc)
{
	struct dc_conn *c = &pc->c;
	char msg[512];

	switch (PQconnectPoll(pc->conn)) {
	case PGRES_POLLING_READING:
		arm(pc, EV_READ);
		return;
	case PGRES_POLLING_WRITING:
		arm(pc, EV_WRITE);
		return;
	case PGRES_POLLING_OK:
		break;
	default:
		dc_conn_scrub(c, "could not connect to the database: ",
		    PQerrorMessage(pc->conn), msg, sizeof(msg));
		dc_conn_connect_failed(c, msg);
		return;
	}
	if (c->probe) {		/* it connected, that is all */
		dc_conn_ready(c);
		return;
	}
	if (PQsetnonblocking(pc->conn, 1) != 0 ||
	    PQenterPipelineMode(pc->conn) != 1) {
		dc_conn_connect_failed(c, "could not set up the database "
		    "connection");
		return;
	}
	if (c->sysdb) {
		arm(pc, EV_READ | EV_PERSIST);	/* notice a server that leaves */
		dc_conn_ready(c);
		return;
	}
	if (conn_setup(pc) != DC_OK)
		dc_conn_connect_failed(c, "could not set up the database "
		    "connection");
}

static int
send_step(struct pgconn *pc, struct dc_job *j, int kind, int i)
{
	char text[64];

	if (kind == S_USER)
		return PQsendQueryParams(pc->conn, j->sql[i], j->nparams[i],
		    NULL, (const char *const *)j->params[i], NULL, NULL, 0);
	if (pc->prepared && fixed[kind].name != NULL)
		return PQsendQueryPrepared(pc->conn, pc->names[kind], 0, NULL,
		    NULL, NULL, 0);
	step_text(kind, pc->c.w->cfg->statement_timeout, text, sizeof(text));
	return PQsendQueryParams(pc->conn, text, 0, NULL, NULL, NULL, NULL, 0);
}

static int
pg_submit(struct dc_conn *c, struct dc_job *j)
{
	struct pgconn *pc = pgconn(c);
	struct pgjob *js = pgjob(j);
	size_t k;
	int i;

	js->fail_step = -1;
	if (j->kind == DC_JOB_SYSDB) {
		/* BEGIN; the statements; COMMIT: the last one's rows */
		if (send_step(pc, j, S_SYS_BEGIN, 0) != 1)
			return DC_ERR;
		for (i = 0; i < j->nstmts; i++)
			if (send_step(pc, j, S_USER, i) != 1)
				return DC_ERR;
		if (send_step(pc, j, S_SYS_COMMIT, 0) != 1)
			return DC_ERR;
		js->nsent = j->nstmts + 2;
		js->ridx = j->nstmts;
		return dc_conn_flush_now(c);
	}
	for (k = 0; k < DC_ARRAY_SIZE(read_plan); k++) {
		if (read_plan[k] == S_TIMEOUT && pc->prepared)
			continue;	/* the session has it: conn_setup() */
		if (read_plan[k] == S_USER)
			js->ridx = js->nsent;
		if (send_step(pc, j, read_plan[k], 0) != 1)
			return DC_ERR;
		js->nsent++;
	}
	/* rows one at a time, capped whatever the statement says */
	js->single = j->kind == DC_JOB_READ;
	dc_conn_flush_later(c);
	return DC_OK;
}

/* Close the group of jobs sent to c: a Sync after the last one. */
static int
pg_flush(struct dc_conn *c)
{
	struct pgconn *pc = pgconn(c);
	int rc;

	if (c->jtail == NULL)
		return DC_OK;
	pgjob(c->jtail)->sync = 1;
	if (PQpipelineSync(pc->conn) != 1 || (rc = PQflush(pc->conn)) < 0)
		return DC_ERR;
	arm_flushed(pc, rc);
	return DC_OK;
}

static void
job_error(struct dc_job *j, const PGresult *res)
{
	struct pgjob *js = pgjob(j);
	const char *msg, *state;
	int status = DC_ERR, flags = 0;

	if (js->fail_step < 0)
		js->fail_step = js->step;
	if (dc_job_failed(j))
		return;
	msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	if (state != NULL) {
		dc_strlcpy(js->state, state, sizeof(js->state));
		if (strcmp(state, "57014") == 0)
			status = DC_ETIMEOUT;	/* query_canceled: the timeout */
		else if (strcmp(state, "42P01") == 0)
			flags = DC_JOBF_NO_TABLE;	/* undefined_table */
	}
	dc_job_fail(j, status, flags, msg != NULL ? msg :
	    PQresultErrorMessage(res), state);
}

/* A result that is not a row of the single-row statement. */
static void
handle_result(struct dc_job *j, PGresult *res)
{
	struct pgjob *js = pgjob(j);

	switch (PQresultStatus(res)) {
	case PGRES_TUPLES_OK:
	case PGRES_COMMAND_OK:
		j->answered = 1;
		if (js->step == js->ridx && !dc_job_failed(j)) {
			dc_rows_free(j->rows);
			if (dc_pg_rows(res, &j->rows) != DC_OK)
				dc_job_fail(j, DC_ERR, 0, "out of memory", NULL);
			return;
		}
		break;
	case PGRES_PIPELINE_ABORTED:
		if (js->step == 0)
			js->aborted = 1;	/* none of it ran */
		break;
	default:
		j->answered = 1;
		job_error(j, res);
		break;
	}
	PQclear(res);
}

/*
 * Bytes the kernel received on pc's socket so far, or 0 when it cannot
 * say (a unix socket, a kernel without the counter).
 */
static uint64_t
rx_bytes(struct pgconn *pc)
{
#if defined(__linux__) && defined(TCP_INFO)
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (pc->no_rx)
		return 0;
	memset(&ti, 0, sizeof(ti));
	if (getsockopt(PQsocket(pc->conn), IPPROTO_TCP, TCP_INFO, &ti,
	    &len) != 0 || len < offsetof(struct tcp_info,
	    tcpi_bytes_received) + sizeof(ti.tcpi_bytes_received)) {
		pc->no_rx = 1;
		return 0;
	}
	return ti.tcpi_bytes_received;
#else
	pc->no_rx = 1;
	return 0;
#endif
}

/* A row does not fit the byte budget: keep no more, stop the statement. */
static void
over_budget(struct dc_job *j, int whole)
{
	struct pgjob *js = pgjob(j);

	dc_job_over_budget(j, whole);
	js->capped = 1;
	js->over = 1;
}

/*
 * n bytes of budget as bytes on the wire: the values, each row's
 * framing, TLS records, and the small messages around the rows.
 */
static uint64_t
wire_bytes(size_t n)
{
	return (uint64_t)n + n / 64 + 65536;
}

/*
 * After a read: the bytes that arrived since the last row was kept are
 * the row still arriving (and nothing else: the messages after it come
 * once it is complete).  When they cannot fit what is left of the
 * budget, stop now rather than let libpq hold the rest of it.
 */
static void
budget_check(struct pgconn *pc, struct dc_job *j)
{
	struct pgjob *js = pgjob(j);
	int nrows = j->rows != NULL ? j->rows->nrows : 0;
	size_t used = j->rows != NULL ? j->rows->bytes : 0;
	uint64_t rx = rx_bytes(pc);

	if (rx == 0)
		return;
	if (nrows != js->rx_rows) {
		/* rows were kept: the next one starts about here */
		js->rx_rows = nrows;
		js->rx_mark = rx;
		return;
	}
	assert(used <= j->max_bytes);
	if (rx - js->rx_mark > wire_bytes(j->max_bytes - used))
		over_budget(j, rx - js->rx_mark > wire_bytes(j->max_bytes));
}

/* The text bytes of res's first row. */
static size_t
row_bytes(const PGresult *res)
{
	size_t n = 0;
	int i;

	for (i = 0; i < PQnfields(res); i++)
		n += (size_t)PQgetlength(res, 0, i);
	return n;
}

/*
 * A result of the statement read in single-row mode: the first row is
 * kept by reference in its own PGresult, later ones are copied; rows
 * beyond max_rows + 1 are dropped; the statement's final (empty)
 * PGRES_TUPLES_OK stands for a statement without rows.
 */
static void
single_result(struct dc_job *j, PGresult *res)
{
	struct pgjob *js = pgjob(j);
	struct dc_cell cells[64], *cp = cells;
	int ncols, rc;

	if (PQresultStatus(res) != PGRES_SINGLE_TUPLE) {
		if (j->rows != NULL && PQresultStatus(res) == PGRES_TUPLES_OK)
			PQclear(res);	/* the end of rows we already hold */
		else
			handle_result(j, res);
		return;
	}
	j->answered = 1;
	if (dc_job_failed(j) || js->capped)
		goto drop;
	if (j->rows == NULL) {
		if (j->max_bytes > 0 && row_bytes(res) > j->max_bytes) {
			over_budget(j, 1);
			goto drop;
		}
		/* one row is a result as it is */
		if (dc_pg_rows(res, &j->rows) != DC_OK)
			dc_job_fail(j, DC_ERR, 0, "out of memory", NULL);
		else
			dc_rows_budget(j->rows, j->max_bytes);
		return;
	}
	if (j->max_rows > 0 && j->rows->nrows == j->max_rows)
		js->capped = 1;		/* this is the one over the cap */
	ncols = j->rows->ncols;
	if (ncols > (int)DC_ARRAY_SIZE(cells) &&
	    (cp = calloc((size_t)ncols, sizeof(*cp))) == NULL) {
		dc_job_fail(j, DC_ERR, 0, "out of memory", NULL);
		goto drop;
	}
	row_cells(res, 0, cp, ncols);
	if ((rc = dc_rows_add(j->rows, cp)) == DC_EFULL)
		over_budget(j, dc_rows_row_bytes(j->rows, cp) > j->max_bytes);
	else if (rc != DC_OK)
		dc_job_fail(j, DC_ERR, 0, "out of memory", NULL);
	if (cp != cells)
		free(cp);
drop:
	PQclear(res);
}

/*
 * Read what arrived for the head job.  Returns 1 when its pipeline is
 * complete, 2 when a single-row statement has its max_rows + 1 rows or
 * spent its byte budget and the rest of its output has not arrived yet
 * (the caller answers now and closes the connection, which stops the
 * statement), 3 when sending its Sync failed, else 0.
 */
static int
read_results(struct pgconn *pc)
{
	struct dc_conn *c = &pc->c;
	struct dc_job *j = c->job;
	struct pgjob *js = pgjob(j);
	PGresult *res;

	while (!PQisBusy(pc->conn)) {
		res = PQgetResult(pc->conn);
		if (res == NULL) {
			/* end of one statement's results */
			if (js->step < js->nsent)
				js->step++;
			else
				return 1;
			if (js->step == js->nsent && !js->sync) {
				if (j != c->jtail || !c->flush_pending)
					return 1;	/* the next job shares
							   its Sync */
				/*
				 * Done before the pass sent its group's Sync
				 * (an error is flushed at once, and libpq may
				 * flush early): send it now, it is j's.
				 */
				if (dc_conn_flush_now(c) != DC_OK)
					return 3;
			}
			/* the next one's first result has not been parsed yet */
			if (js->single && js->step == js->ridx) {
				if (PQsetSingleRowMode(pc->conn) != 1)
					log_warn("single-row mode refused; "
					    "reading the whole result");
				if (j->max_bytes > 0)
					js->rx_mark = rx_bytes(pc);
			}
			continue;
		}
		if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
			PQclear(res);
			return 1;
		}
		if (js->single && js->step == js->ridx)
			single_result(j, res);
		else
			handle_result(j, res);
	}
	if (js->single && js->step == js->ridx && j->max_bytes > 0 &&
	    !js->capped && !dc_job_failed(j))
		budget_check(pc, j);
	return js->capped && js->step == js->ridx &&
	    (!dc_job_failed(j) || js->over) ? 2 : 0;
}

/*
 * Our named statements vanished (26000: a transaction-pooling proxy gave
 * us another server session): use text for this target from now on and
 * run the jobs again on a fresh connection.
 */
static void
prepared_lost(struct pgconn *pc)
{
	log_warn("target does not keep prepared statements (a transaction "
	    "pooling proxy?); sending every statement as text");
	dc_conn_set_quirks(&pc->c, dc_conn_quirks(&pc->c) | Q_NO_PREPARE |
	    DC_QUIRK_NO_PIPELINE);
	dc_conn_restart_target(&pc->c);
}

/*
 * Hand out the jobs whose results arrived, as many as there are.  A job
 * that failed leaves its transaction aborted, and the jobs sent behind it
 * are refused at their BEGIN (25P02) without running: they go back to the
 * queue, and the connection is blocked until a ROLLBACK ended that
 * transaction (pg_reset).  Callbacks may close the connection meanwhile
 * (c->dead), or send it more jobs.
 */
static void
conn_results(struct pgconn *pc)
{
	struct dc_conn *c = &pc->c;
	struct pgjob *js;
	int rc, was_blocked, requeue;

	while (c->job != NULL && !c->dead) {
		js = pgjob(c->job);
		rc = read_results(pc);
		if (rc == 0) {
			if (PQstatus(pc->conn) != CONNECTION_OK)
				dc_conn_broken(c, "server closed the connection");
			else if (session_lost(js->state))
				dc_conn_broken(c, c->job->error);
			return;
		}
		if (rc == 2) {
			dc_conn_answer_and_close(c);
			return;
		}
		if (rc == 3 || session_lost(js->state)) {
			dc_conn_broken(c, rc == 3 ? PQerrorMessage(pc->conn) :
			    c->job->error);
			return;
		}
		if (pc->prepared && strcmp(js->state, "26000") == 0) {
			prepared_lost(pc);
			return;
		}
		was_blocked = c->blocked;
		if (js->fail_step >= 0)
			c->blocked = 1;	/* its transaction is aborted */
		requeue = js->aborted || (was_blocked && js->fail_step == 0 &&
		    strcmp(js->state, "25P02") == 0);
		if (c->njobs == 1)	/* idle next: notice a server that leaves */
			arm(pc, EV_READ | EV_PERSIST);
		dc_conn_job_done(c, requeue);
	}
}

/*
 * A connection whose last job failed is still in that job's transaction:
 * end it before the connection takes another job.
 */
static int
pg_reset(struct dc_conn *c)
{
	struct pgconn *pc = pgconn(c);
	int rc;

	pc->cleaning = 1;
	if (PQsendQueryParams(pc->conn, "ROLLBACK", 0, NULL, NULL, NULL, NULL,
	    0) != 1 || PQpipelineSync(pc->conn) != 1 ||
	    (rc = PQflush(pc->conn)) < 0)
		return DC_ERR;
	arm_flushed(pc, rc);
	return DC_OK;
}

static void
cleanup_event(struct pgconn *pc, short what)
{
	PGresult *res;

	if ((what & EV_WRITE) && PQflush(pc->conn) == 0)
		arm(pc, EV_READ | EV_PERSIST);
	if (!(what & EV_READ))
		return;
	if (PQconsumeInput(pc->conn) == 0) {
		dc_conn_close(&pc->c);
		return;
	}
	while (!PQisBusy(pc->conn)) {
		res = PQgetResult(pc->conn);
		if (res == NULL)
			continue;
		if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
			PQclear(res);
			pc->cleaning = 0;
			arm(pc, EV_READ | EV_PERSIST);
			dc_conn_idle(&pc->c);
			return;
		}
		PQclear(res);
	}
}

static void
pg_io(struct dc_conn *c, short what)
{
	struct pgconn *pc = pgconn(c);
	int rc;

	if (c->state == DC_CONN_CONNECTING) {
		if (pc->setup)
			setup_event(pc, what);
		else
			connect_step(pc);
		return;
	}
	if (c->state == DC_CONN_IDLE) {
		/* an idle connection only reads when the server talks */
		if ((what & EV_WRITE) && PQflush(pc->conn) == 0)
			arm(pc, EV_READ | EV_PERSIST);
		if ((what & EV_READ) && (PQconsumeInput(pc->conn) == 0 ||
		    PQstatus(pc->conn) != CONNECTION_OK)) {
			log_debug("idle target connection closed by server");
			dc_conn_close(c);
		}
		return;
	}
	if (pc->cleaning) {
		cleanup_event(pc, what);
		return;
	}
	if (what & EV_WRITE) {
		rc = PQflush(pc->conn);
		if (rc < 0) {
			dc_conn_broken(c, PQerrorMessage(pc->conn));
			return;
		}
		if (rc == 0)
			arm(pc, EV_READ | EV_PERSIST);
	}
	if (what & EV_READ) {
		dc_conn_progress(c);
		if (PQconsumeInput(pc->conn) == 0) {
			dc_conn_broken(c, PQerrorMessage(pc->conn));
			return;
		}
		conn_results(pc);
	}
}

static void
pg_close(struct dc_conn *c)
{
	struct pgconn *pc = pgconn(c);

	if (pc->conn != NULL)
		PQfinish(pc->conn);
	pc->conn = NULL;
}

/* A reload changed the timeout the session was set up with. */
static int
pg_current(const struct dc_conn *c)
{
	const struct pgconn *pc = (const struct pgconn *)c;

	return !pc->prepared || pc->prep_timeout == c->w->cfg->statement_timeout;
}

static const char *
pg_error(const struct dc_conn *c)
{
	const struct pgconn *pc = (const struct pgconn *)c;

	return pc->conn != NULL ? PQerrorMessage(pc->conn) :
	    "connection closed";
}

const struct dc_driver dc_driver_pg = {
	.type = "postgresql",
	.caps = DC_DRV_PIPELINE | DC_DRV_PREPARED | DC_DRV_SYSDB,
	.dialect = &pg_dialect,
	.conn_size = sizeof(struct pgconn),
	.job_size = sizeof(struct pgjob),
	.url_host = pg_url_host,
	.connect = pg_connect,
	.io = pg_io,
	.submit = pg_submit,
	.flush = pg_flush,
	.reset = pg_reset,
	.close = pg_close,
	.current = pg_current,
	.error = pg_error,
};
