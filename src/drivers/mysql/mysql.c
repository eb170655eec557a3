/*
 * mysql.c - the MySQL/MariaDB driver (drv_mysql.h, driver.h): MariaDB
 * Connector/C's non-blocking API (mysql_*_start / mysql_*_cont) driven by
 * the pool on the worker's loop, so a slow MySQL statement never blocks
 * other requests on the worker.
 *
 * Every call that may wait returns the events it waits for; the driver
 * hands them to dc_conn_watch() and calls the matching _cont() when the
 * socket is ready.  One operation is in flight per connection (mc->op),
 * and the classic protocol answers one command at a time, so the driver
 * takes one job per connection (no DC_DRV_PIPELINE).
 *
 * Connections are TCP only (never a unix socket, whatever the host is
 * called), at the address the pool looked up, with utf8mb4, no LOAD DATA
 * LOCAL, no multi-statements and no option files.  Once connected, the
 * session gets the statement timeout (max_statement_time on MariaDB, in
 * seconds; max_execution_time on MySQL, in milliseconds), autocommit,
 * and READ ONLY as the access mode of every transaction it runs
 * (setup_sql).  A job is then its statement alone, one round trip: in
 * autocommit mode the statement is a READ ONLY transaction of its own,
 * begun and ended by the server around it, which is what
 * START TRANSACTION READ ONLY; <sql>; ROLLBACK would do in three round
 * trips (the classic protocol cannot pipeline them, and multi-statements
 * stay off so that the guard is not the only thing keeping a second
 * statement out).  Nothing the guard admits can change the access mode,
 * the timeout or autocommit: SET, transaction control and optimizer
 * hints are refused.
 *
 * The statement's rows are read one at a time (mysql_use_result), the
 * first max_rows + 1 kept.  When the job has them and the server is still
 * sending, it is answered at once and the connection closed; the
 * statement is then stopped with KILL QUERY on a second connection
 * (killer), as when a client leaves mid-query: MySQL does not notice a
 * closed client while a statement runs.
 *
 * The byte budget (max_result_bytes) is kept the same way: a row that
 * does not fit what is left of it cuts the result, or refuses the
 * statement when it is larger than the whole budget (dc_job_over_budget).
 * The connector reads a row's packets whole before handing the row over:
 * what bounds that row is the server's max_allowed_packet (a value
 * longer than it is NULL, with a warning), not us.  (Lowering the
 * connector's own limit to the budget loses the connection instead of
 * saying why, so it is left alone.)
 *
 * Values arrive as text (the text protocol); binary strings are turned
 * into "\x" and hex digits (rows.h), everything else is kept as sent.
 */
#include <sys/socket.h>
#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <mysql.h>

#include "config.h"
#include "dc.h"
#include "driver.h"
#include "drv_mysql.h"
#include "log.h"
#include "rows.h"
#include "sqlguard.h"
#include "util.h"
#include "worker.h"

#define MY_DEFAULT_PORT		3306
#define MY_STACK_SIZE		(256 * 1024)	/* the connector's coroutine */
#define MY_BINARY_CHARSET	63
#define MY_MAX_COLS		4096

/* Server and client error codes the driver tells apart. */
#define ER_NO_SUCH_TABLE		1146
#define ER_STATEMENT_TIMEOUT		1969	/* MariaDB max_statement_time */
#define ER_QUERY_TIMEOUT		3024	/* MySQL max_execution_time */
#define ER_QUERY_INTERRUPTED		1317
#define ER_CONNECTION_KILLED		1927
#define ER_SERVER_SHUTDOWN		1053

/* --- the dialect --- */

/*
 * The catalog (driver.h): information_schema, the tables of the URL's
 * database (all but the system schemas when it names none), TABLE_ROWS
 * as the row count (exact for MyISAM, the storage engine's estimate for
 * InnoDB), COLUMN_TYPE as the column's type, the first foreign key of a
 * column by constraint name.  The system schemas are left out unless a
 * table is named (information_schema.TABLES).
 */
static const char catalog_sql[] =
    "SELECT t.TABLE_SCHEMA, t.TABLE_NAME,"
    " CASE t.TABLE_TYPE WHEN 'SYSTEM VIEW' THEN 'VIEW'"
    "  WHEN 'SYSTEM VERSIONED' THEN 'BASE TABLE' ELSE t.TABLE_TYPE END,"
    " t.TABLE_ROWS, c.COLUMN_NAME, c.COLUMN_TYPE,"
    " CASE WHEN c.IS_NULLABLE = 'YES' THEN 't' ELSE 'f' END,"
    " CASE WHEN c.COLUMN_KEY = 'PRI' THEN 't' ELSE 'f' END,"
    " (SELECT CASE WHEN k.REFERENCED_TABLE_SCHEMA = k.TABLE_SCHEMA"
    "   THEN k.REFERENCED_TABLE_NAME ELSE CONCAT(k.REFERENCED_TABLE_SCHEMA,"
    "   '.', k.REFERENCED_TABLE_NAME) END"
    "  FROM information_schema.KEY_COLUMN_USAGE k"
    "  WHERE k.TABLE_SCHEMA = c.TABLE_SCHEMA AND k.TABLE_NAME = c.TABLE_NAME"
    "  AND k.COLUMN_NAME = c.COLUMN_NAME AND k.REFERENCED_TABLE_NAME IS NOT NULL"
    "  ORDER BY k.CONSTRAINT_NAME LIMIT 1),"
    " (SELECT k.REFERENCED_COLUMN_NAME"
    "  FROM information_schema.KEY_COLUMN_USAGE k"
    "  WHERE k.TABLE_SCHEMA = c.TABLE_SCHEMA AND k.TABLE_NAME = c.TABLE_NAME"
    "  AND k.COLUMN_NAME = c.COLUMN_NAME AND k.REFERENCED_TABLE_NAME IS NOT NULL"
    "  ORDER BY k.CONSTRAINT_NAME LIMIT 1)"
    " FROM information_schema.TABLES t"
    " LEFT JOIN information_schema.COLUMNS c ON $3 = 'true'"
    "  AND c.TABLE_SCHEMA = t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME"
    " WHERE ($2 IS NOT NULL OR t.TABLE_SCHEMA NOT IN ('information_schema',"
    "  'mysql', 'performance_schema', 'sys'))"
    "  AND (t.TABLE_SCHEMA = $1 OR ($1 IS NULL AND (DATABASE() IS NULL"
    "   OR t.TABLE_SCHEMA = DATABASE())))"
    "  AND ($2 IS NULL OR t.TABLE_NAME = $2)"
    " ORDER BY t.TABLE_SCHEMA, t.TABLE_NAME, c.ORDINAL_POSITION";

/*
 * The catalog's version: MySQL keeps no transaction id on its catalog
 * rows, so this checksums what the catalog query reads (tables with
 * their creation time, which a rebuilding ALTER moves; columns with
 * their type, nullability and key; foreign keys) in the same schemas.
 * One scan of information_schema without row counts: far cheaper than
 * the catalog query with its correlated subqueries.
 */
#define MY_VERSION_OF(cols, from) \
    "(SELECT CONCAT(COUNT(*), '.', COALESCE(SUM(CRC32(CONCAT_WS(':', " cols \
    "))), 0)) FROM information_schema." from " WHERE TABLE_SCHEMA NOT IN" \
    " ('information_schema', 'mysql', 'performance_schema', 'sys')" \
    " AND (DATABASE() IS NULL OR TABLE_SCHEMA = DATABASE()))"
static const char version_sql[] =
    "SELECT CONCAT("
    MY_VERSION_OF("TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, CREATE_TIME",
	"TABLES") ", '/', "
    MY_VERSION_OF("TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION, COLUMN_NAME, "
	"COLUMN_TYPE, IS_NULLABLE, COLUMN_KEY", "COLUMNS") ", '/', "
    MY_VERSION_OF("TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, CONSTRAINT_NAME, "
	"REFERENCED_TABLE_SCHEMA, REFERENCED_TABLE_NAME, "
	"REFERENCED_COLUMN_NAME", "KEY_COLUMN_USAGE") ")";

static const struct dc_dialect my_dialect = {
	.name = "MySQL",
	.guard = dc_sql_guard_mysql,
	.quote = '`',
	.default_schema = NULL,		/* a connection's schema is its db */
	.catalog_sql = catalog_sql,
	.version_sql = version_sql,
	/* DataChat's, within the URL's database as the catalog above */
	.list_tables_sql =
	    "SELECT table_schema, table_name "
	    "FROM information_schema.tables "
	    "WHERE table_schema NOT IN ('mysql', 'performance_schema', "
	    "'information_schema', 'sys') "
	    "AND (DATABASE() IS NULL OR table_schema = DATABASE()) "
	    "ORDER BY table_schema, table_name",
	.list_columns_sql =
	    "SELECT table_schema, table_name, column_name, data_type "
	    "FROM information_schema.columns "
	    "WHERE table_name = %s "
	    "AND table_schema = %s "
	    "ORDER BY table_schema, table_name, ordinal_position",
	.count_sql = "SELECT COUNT(*) AS row_count FROM %s",
	.sample_sql = "SELECT * FROM %s LIMIT %d",
	.prompt_rules = "- Quote identifiers with backticks when they need "
	    "quoting; never use double quotes for identifiers.\n"
	    "- Tables are in the connection's database: name them without a "
	    "schema.\n",
	.empty_names_columns = 1,
};

/* --- URLs and parameters --- */

/* One query parameter name=value of a mysql URL. */
static int
url_param(struct dc_mysql_url *u, const char *name, size_t nlen,
    const char *val, char *err, size_t errsz)
{
	static const struct {
		const char	*word;
		int		 tls;
	} modes[] = {
		{ "disabled", DC_MY_TLS_DISABLED },
		{ "disable", DC_MY_TLS_DISABLED },
		{ "false", DC_MY_TLS_DISABLED },
		{ "0", DC_MY_TLS_DISABLED },
		{ "preferred", DC_MY_TLS_PREFERRED },
		{ "prefer", DC_MY_TLS_PREFERRED },
		{ "required", DC_MY_TLS_REQUIRED },
		{ "require", DC_MY_TLS_REQUIRED },
		{ "true", DC_MY_TLS_REQUIRED },
		{ "1", DC_MY_TLS_REQUIRED },
		{ "verify_ca", DC_MY_TLS_VERIFY_CA },
		{ "verify-ca", DC_MY_TLS_VERIFY_CA },
	};
	size_t i, vlen = strlen(val);

	if (dc_word_is(name, nlen, "charset"))
		return DC_OK;	/* connections are utf8mb4 */
	if (!dc_word_is(name, nlen, "ssl") && !dc_word_is(name, nlen, "tls") &&
	    !dc_word_is(name, nlen, "ssl_mode") &&
	    !dc_word_is(name, nlen, "sslmode") &&
	    !dc_word_is(name, nlen, "ssl-mode")) {
		snprintf(err, errsz, "unknown parameter \"%.*s\" in the mysql "
		    "URL (known: ssl, ssl_mode, charset)", (int)(nlen > 32 ?
		    32 : nlen), name);
		return DC_EINVAL;
	}
	for (i = 0; i < DC_ARRAY_SIZE(modes); i++)
		if (dc_word_is(val, vlen, modes[i].word)) {
			u->tls = modes[i].tls;
			return DC_OK;
		}
	snprintf(err, errsz, "ssl_mode must be disabled, preferred, required "
	    "or verify_ca");
	return DC_EINVAL;
}

int
dc_mysql_url_parse(const char *url, struct dc_mysql_url *u, char *err,
    size_t errsz)
{
	const char *p, *auth, *at, *hostp, *hend, *colon, *path, *q, *e;
	char buf[512], *name, *val, *amp;
	size_t n;
	long port;

	memset(u, 0, sizeof(*u));
	dc_strlcpy(u->user, "root", sizeof(u->user));
	u->port = MY_DEFAULT_PORT;
	if ((p = strstr(url, "://")) == NULL ||
	    dc_url_type(url) == NULL || strcmp(dc_url_type(url), "mysql") != 0) {
		snprintf(err, errsz, "not a mysql:// URL");
		return DC_EINVAL;
	}
	auth = p + 3;
	/*
	 * As Python's urlparse (DataChat): the authority ends at the first
	 * '/', '?' or '#'; the user information at its last '@'.
	 */
	hend = auth + strcspn(auth, "/?#");
	at = NULL;
	for (p = auth; p < hend; p++)
		if (*p == '@')
			at = p;
	if (at != NULL) {
		colon = memchr(auth, ':', (size_t)(at - auth));
		n = (size_t)((colon != NULL ? colon : at) - auth);
		if (n > 0 && dc_pct_decode_strict(auth, n, u->user,
		    sizeof(u->user)) == -1) {
			snprintf(err, errsz, "bad user name in the mysql URL");
			return DC_EINVAL;
		}
		if (colon != NULL && dc_pct_decode_strict(colon + 1,
		    (size_t)(at - colon - 1), u->password,
		    sizeof(u->password)) == -1) {
			snprintf(err, errsz, "bad password in the mysql URL");
			return DC_EINVAL;
		}
		hostp = at + 1;
	} else
		hostp = auth;
	/* host, [v6] or name, then :port */
	if (*hostp == '[') {
		if ((e = memchr(hostp, ']', (size_t)(hend - hostp))) == NULL) {
			snprintf(err, errsz, "bad IPv6 address in the mysql URL");
			return DC_EINVAL;
		}
		n = (size_t)(e - hostp - 1);
		if (n == 0 || n >= sizeof(u->host))
			goto badhost;
		memcpy(u->host, hostp + 1, n);
		u->host[n] = '\0';
		p = e + 1;
	} else {
		p = hostp + strcspn(hostp, ":/?#");
		if (p > hend)
			p = hend;
		n = (size_t)(p - hostp);
		if (n == 0 || dc_pct_decode_strict(hostp, n, u->host,
		    sizeof(u->host)) == -1)
			goto badhost;
	}
	if (p < hend && *p == ':') {
		port = strtol(p + 1, &name, 10);
		if (name != hend || port < 1 || port > 65535) {
			snprintf(err, errsz, "bad port in the mysql URL");
			return DC_EINVAL;
		}
		u->port = (unsigned int)port;
	} else if (p != hend)
		goto badhost;
	if (u->host[0] == '/' || strchr(u->host, ' ') != NULL)
		goto badhost;
	/* /db */
	path = hend;
	if (*path == '/') {
		path++;
		n = strcspn(path, "?#");
		if (memchr(path, '/', n) != NULL || dc_pct_decode_strict(path, n, u->db,
		    sizeof(u->db)) == -1) {
			snprintf(err, errsz, "bad database name in the mysql URL");
			return DC_EINVAL;
		}
		path += n;
	}
	if (*path != '?')
		return DC_OK;
	q = path + 1;
	n = strcspn(q, "#");
	if (n >= sizeof(buf)) {
		snprintf(err, errsz, "mysql URL parameters are too long");
		return DC_EINVAL;
	}
	memcpy(buf, q, n);
	buf[n] = '\0';
	for (name = buf; name != NULL && *name != '\0'; name = amp) {
		if ((amp = strchr(name, '&')) != NULL)
			*amp++ = '\0';
		if ((val = strchr(name, '=')) == NULL)
			val = name + strlen(name);
		else
			*val++ = '\0';
		if (url_param(u, name, strlen(name), val, err, errsz) != DC_OK)
			return DC_EINVAL;
	}
	return DC_OK;
badhost:
	snprintf(err, errsz, "bad or missing host in the mysql URL");
	return DC_EINVAL;
}

char *
dc_mysql_bind(const char *sql, int nparams, const char *const *params)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t len = 0, cap = strlen(sql) + 1, n, k;
	const char *p, *v;
	char *out = malloc(cap), *tmp;
	int i;

	if (out == NULL)
		return NULL;
	for (p = sql; *p != '\0'; p++) {
		v = NULL;
		n = 1;
		if (*p == '$' && p[1] >= '1' && p[1] <= '9') {
			i = p[1] - '1';
			if (i >= nparams)
				goto fail;
			v = params[i];
			n = v == NULL ? 4 : 12 + 2 * strlen(v);
		}
		if (len + n + 1 > cap) {
			cap = (len + n + 1) * 2;
			if ((tmp = realloc(out, cap)) == NULL)
				goto fail;
			out = tmp;
		}
		if (*p != '$' || p[1] < '1' || p[1] > '9') {
			out[len++] = *p;
			continue;
		}
		p++;
		if (v == NULL) {
			memcpy(out + len, "NULL", 4);
			len += 4;
			continue;
		}
		/* hex reads the same with or without NO_BACKSLASH_ESCAPES */
		memcpy(out + len, "_utf8mb4 X'", 11);
		len += 11;
		for (k = 0; v[k] != '\0'; k++) {
			out[len++] = hex[(unsigned char)v[k] >> 4];
			out[len++] = hex[(unsigned char)v[k] & 15];
		}
		out[len++] = '\'';
	}
	out[len] = '\0';
	return out;
fail:
	free(out);
	return NULL;
}

/* --- types --- */

/* MariaDB's JSON is LONGTEXT, told apart by its extended metadata. */
static int
is_json_text(const MYSQL_FIELD *f)
{
	MARIADB_CONST_STRING fmt;

	return mariadb_field_attr(&fmt, f, MARIADB_FIELD_ATTR_FORMAT_NAME) ==
	    0 && fmt.length == 4 && strncasecmp(fmt.str, "json", 4) == 0;
}

static int
my_vtype(const MYSQL_FIELD *f)
{
	int binary = f->charsetnr == MY_BINARY_CHARSET;

	if (is_json_text(f))
		return DC_VT_JSON;
	switch (f->type) {
	case MYSQL_TYPE_BIT:		/* keep_row writes its number */
	case MYSQL_TYPE_TINY:
	case MYSQL_TYPE_SHORT:
	case MYSQL_TYPE_LONG:
	case MYSQL_TYPE_INT24:
	case MYSQL_TYPE_LONGLONG:
	case MYSQL_TYPE_YEAR:
		return DC_VT_INT;
	case MYSQL_TYPE_FLOAT:
	case MYSQL_TYPE_DOUBLE:
		return DC_VT_FLOAT;
	case MYSQL_TYPE_DECIMAL:
	case MYSQL_TYPE_NEWDECIMAL:
		return DC_VT_DECIMAL;
	case MYSQL_TYPE_DATE:
	case MYSQL_TYPE_NEWDATE:
		return DC_VT_DATE;
	case MYSQL_TYPE_TIME:
		/* a duration up to 838:59:59 (DataChat's connector: timedelta) */
		return DC_VT_INTERVAL;
	case MYSQL_TYPE_DATETIME:
	case MYSQL_TYPE_TIMESTAMP:
		return DC_VT_TIMESTAMP;
	case MYSQL_TYPE_JSON:
		return DC_VT_JSON;
	case MYSQL_TYPE_VARCHAR:
	case MYSQL_TYPE_VAR_STRING:
	case MYSQL_TYPE_STRING:
	case MYSQL_TYPE_ENUM:
	case MYSQL_TYPE_SET:
	case MYSQL_TYPE_TINY_BLOB:
	case MYSQL_TYPE_MEDIUM_BLOB:
	case MYSQL_TYPE_LONG_BLOB:
	case MYSQL_TYPE_BLOB:
		return binary ? DC_VT_BYTES : DC_VT_TEXT;
	case MYSQL_TYPE_GEOMETRY:
		return DC_VT_BYTES;
	default:
		return DC_VT_OTHER;
	}
}

/* --- connections --- */

enum my_op {
	OP_NONE = 0,		/* idle, or between steps */
	OP_CONNECT,
	OP_SETUP,		/* the session's settings, one by one */
	OP_QUERY,
	OP_FETCH,
};

struct myconn {
	struct dc_conn	 c;		/* first: the pool's part */
	MYSQL		*my;
	MYSQL_RES	*res;		/* the statement's rows, while read */
	int		 op;		/* enum my_op in flight */
	int		 setup_step;
	int		 mariadb;	/* else MySQL */
	int		 timeout_ms;	/* statement timeout of the session */
	int		 capped;	/* max_rows + 1 rows kept */
	unsigned long	 thread_id;
	char		 addr[64];	/* where we connected, for KILL */
	int		 in_io;		/* my_io() is on the stack */
	struct dc_mysql_url u;		/* holds the password: wiped */
	char		*sql;		/* the job's statement, bound */
	struct dc_cell	*cells;		/* one row, while copying it */
	char		*hexbuf;	/* a binary value as \x... */
	size_t		 hexcap;
};

/* KILL QUERY on a second connection, after a job was abandoned. */
struct killer {
	struct mydrv	*d;
	MYSQL		*my;
	struct event	*ev;
	int		 op;		/* OP_CONNECT, then OP_QUERY */
	unsigned long	 id;
	char		 sql[64];
	/* its own copy: the connector reads them while connecting */
	struct dc_mysql_url u;		/* holds the password: wiped */
	char		 addr[64];
	struct killer	*prev, *next;
};

struct mydrv {
	struct dc_worker *w;
	struct killer	*killers;
};

static struct myconn *
myconn(struct dc_conn *c)
{
	return (struct myconn *)c;
}

static void	 my_next(struct myconn *mc);
static void	 my_done_later(struct myconn *mc);
static void	 fetch_rows(struct myconn *mc);

static short
wait_events(int status, int *timeout_ms, const MYSQL *my)
{
	short what = 0;

	*timeout_ms = -1;
	if (status & (MYSQL_WAIT_READ | MYSQL_WAIT_EXCEPT))
		what |= EV_READ;
	if (status & MYSQL_WAIT_WRITE)
		what |= EV_WRITE;
	if (status & MYSQL_WAIT_TIMEOUT)
		*timeout_ms = (int)mysql_get_timeout_value_ms(my);
	return what;
}

static int
ready_status(short what)
{
	int st = 0;

	if (what & EV_READ)
		st |= MYSQL_WAIT_READ;
	if (what & EV_WRITE)
		st |= MYSQL_WAIT_WRITE;
	if (what & EV_TIMEOUT)
		st |= MYSQL_WAIT_TIMEOUT;
	return st;
}

/*
 * The connector waits for status: watch its socket until it is ready.
 * Reading is what it waits for most, and what an idle connection waits
 * for too: that watch stays armed from one job to the next.
 */
static void
my_wait(struct myconn *mc, int status)
{
	int tmo;
	short what = wait_events(status, &tmo, mc->my);

	if (what == EV_READ && tmo < 0)
		what |= EV_PERSIST;
	dc_conn_watch(&mc->c, (int)mysql_get_socket(mc->my), what, tmo);
}

/* An idle connection only hears from a server that leaves. */
static void
my_watch_idle(struct myconn *mc)
{
	dc_conn_watch(&mc->c, (int)mysql_get_socket(mc->my),
	    EV_READ | EV_PERSIST, -1);
}

/* Errors that mean the connection is gone, not that the statement failed. */
static int
conn_lost(unsigned int err)
{
	return (err >= 2000 && err < 3000) || err == ER_CONNECTION_KILLED ||
	    err == ER_SERVER_SHUTDOWN;
}

static void
job_error(struct myconn *mc, struct dc_job *j)
{
	unsigned int err = mysql_errno(mc->my);
	int status = DC_ERR, flags = 0;

	if (err == ER_STATEMENT_TIMEOUT || err == ER_QUERY_TIMEOUT)
		status = DC_ETIMEOUT;
	else if (err == ER_NO_SUCH_TABLE)
		flags = DC_JOBF_NO_TABLE;
	dc_job_fail(j, status, flags, mysql_error(mc->my),
	    mysql_sqlstate(mc->my));
}

static void
my_broken(struct myconn *mc)
{
	char msg[512];

	dc_conn_scrub(&mc->c, "", mysql_error(mc->my), msg, sizeof(msg));
	dc_conn_broken(&mc->c, msg);
}

static char *
my_url_host(const char *url)
{
	struct dc_mysql_url *u = malloc(sizeof(*u));
	unsigned char buf[16];
	char err[128], *host = NULL;

	if (u == NULL)
		return NULL;
	if (dc_mysql_url_parse(url, u, err, sizeof(err)) == DC_OK &&
	    inet_pton(AF_INET, u->host, buf) != 1 &&
	    inet_pton(AF_INET6, u->host, buf) != 1)
		host = strdup(u->host);
	dc_explicit_bzero(u, sizeof(*u));
	free(u);
	return host;
}

/* Options every connection of ours has, target or killer. */
static int
my_options(MYSQL *my, const struct dc_mysql_url *u, int connect_timeout)
{
	size_t stack = MY_STACK_SIZE;
	unsigned int proto = MYSQL_PROTOCOL_TCP, tmo = (unsigned)connect_timeout;
	my_bool no = 0, yes = 1;

	if (mysql_options(my, MYSQL_OPT_NONBLOCK, &stack) != 0 ||
	    mysql_options(my, MYSQL_OPT_PROTOCOL, &proto) != 0 ||
	    mysql_options(my, MYSQL_OPT_LOCAL_INFILE, &no) != 0 ||
	    mysql_options(my, MYSQL_SET_CHARSET_NAME, "utf8mb4") != 0 ||
	    mysql_options(my, MYSQL_OPT_CONNECT_TIMEOUT, &tmo) != 0)
		return DC_ERR;
	switch (u->tls) {
	case DC_MY_TLS_DISABLED:
		break;
	case DC_MY_TLS_REQUIRED:
		if (mysql_options(my, MYSQL_OPT_SSL_ENFORCE, &yes) != 0 ||
		    mysql_options(my, MYSQL_OPT_SSL_VERIFY_SERVER_CERT,
		    &no) != 0)
			return DC_ERR;
		break;
	case DC_MY_TLS_VERIFY_CA:
		if (mysql_options(my, MYSQL_OPT_SSL_ENFORCE, &yes) != 0 ||
		    mysql_options(my, MYSQL_OPT_SSL_VERIFY_SERVER_CERT,
		    &yes) != 0)
			return DC_ERR;
		break;
	default:
		break;
	}
	return DC_OK;
}

static int
my_connect(struct dc_conn *c, const char *url, const char *hostaddr,
    char *err, size_t errsz)
{
	struct myconn *mc = myconn(c);
	MYSQL *ret = NULL;
	int st;

	if (dc_mysql_url_parse(url, &mc->u, err, errsz) != DC_OK)
		return DC_ERR;
	dc_strlcpy(mc->addr, hostaddr != NULL ? hostaddr : mc->u.host,
	    sizeof(mc->addr));
	if ((mc->my = mysql_init(NULL)) == NULL ||
	    my_options(mc->my, &mc->u, c->w->cfg->connect_timeout) != DC_OK) {
		dc_strlcpy(err, "could not connect to the database: out of "
		    "memory", errsz);
		return DC_ERR;
	}
	mc->op = OP_CONNECT;
	st = mysql_real_connect_start(&ret, mc->my, mc->addr, mc->u.user,
	    mc->u.password, mc->u.db[0] != '\0' ? mc->u.db : NULL, mc->u.port,
	    NULL, 0);
	if (st != 0) {
		my_wait(mc, st);
		return DC_OK;
	}
	if (ret == NULL) {
		dc_conn_scrub(c, "could not connect to the database: ",
		    mysql_error(mc->my), err, errsz);
		return DC_ERR;
	}
	/* connected at once: carry on from the loop, like any other step */
	mc->op = -OP_CONNECT;
	my_done_later(mc);
	return DC_OK;
}

/*
 * A step ended without waiting.  From the loop (my_io) go on at once;
 * from submit or connect, on the next pass: the pool does not expect
 * its callbacks before those return.
 */
static void
my_done_later(struct myconn *mc)
{
	if (mc->in_io)
		my_next(mc);
	else
		dc_conn_watch(&mc->c, (int)mysql_get_socket(mc->my), EV_WRITE,
		    0);
}

/* Send a statement as step op; its end is handled by my_next(). */
static void
my_query(struct myconn *mc, int op, const char *sql)
{
	int st, err = 0;

	mc->op = op;
	st = mysql_real_query_start(&err, mc->my, sql,
	    (unsigned long)strlen(sql));
	if (st != 0) {
		my_wait(mc, st);
		return;
	}
	mc->op = -op;		/* done: my_next() reads the outcome */
	my_done_later(mc);
}

/* The session settings, one statement per step. */
static const char *
setup_sql(struct myconn *mc, char *buf, size_t sz)
{
	const struct dc_config *cfg = mc->c.w->cfg;

	switch (mc->setup_step) {
	case 0:
		mc->timeout_ms = cfg->statement_timeout;
		if (mc->mariadb)
			snprintf(buf, sz, "SET SESSION max_statement_time = "
			    "%d.%03d", mc->timeout_ms / 1000,
			    mc->timeout_ms % 1000);
		else
			snprintf(buf, sz, "SET SESSION max_execution_time = %d",
			    mc->timeout_ms);
		return buf;
	case 1:
		/* every statement a transaction of its own (see above) */
		return "SET SESSION autocommit = 1";
	case 2:
		/* and each of them READ ONLY */
		return "SET SESSION TRANSACTION READ ONLY";
	default:
		return NULL;
	}
}

static void
connect_done(struct myconn *mc, MYSQL *ret)
{
	struct dc_conn *c = &mc->c;
	char msg[512], buf[96];
	const char *info;

	if (ret == NULL) {
		dc_conn_scrub(c, "could not connect to the database: ",
		    mysql_error(mc->my), msg, sizeof(msg));
		dc_conn_connect_failed(c, msg);
		return;
	}
	if (c->probe) {
		dc_conn_ready(c);
		return;
	}
	info = mysql_get_server_info(mc->my);
	mc->mariadb = info != NULL && strstr(info, "MariaDB") != NULL;
	mc->thread_id = mysql_thread_id(mc->my);
	mc->setup_step = 0;
	my_query(mc, OP_SETUP, setup_sql(mc, buf, sizeof(buf)));
}

static void
rows_failed(struct myconn *mc, struct dc_job *j)
{
	dc_job_fail(j, DC_ERR, 0, "out of memory", NULL);
}

/* The columns of the result being read, as the job's rows. */
static int
rows_shape(struct myconn *mc, struct dc_job *j)
{
	unsigned int i, n = mysql_num_fields(mc->res);
	MYSQL_FIELD *f = mysql_fetch_fields(mc->res);

	if (n > MY_MAX_COLS || (j->rows = dc_rows_new((int)n)) == NULL)
		return DC_ENOMEM;
	free(mc->cells);
	if ((mc->cells = calloc(n > 0 ? n : 1, sizeof(*mc->cells))) == NULL)
		return DC_ENOMEM;
	for (i = 0; i < n; i++) {
		if (dc_rows_set_col(j->rows, (int)i, f[i].name,
		    my_vtype(&f[i])) != DC_OK)
			return DC_ENOMEM;
		/* mysql-connector: a date it cannot build is None */
		if (j->rows->cols[i].type == DC_VT_DATE ||
		    j->rows->cols[i].type == DC_VT_TIMESTAMP)
			dc_rows_set_flags(j->rows, (int)i, DC_COL_INVALID_NULL);
	}
	return DC_OK;
}

/* A binary value as "\x" and hex digits, in mc's buffer. */
static const char *
hex_value(struct myconn *mc, const char *v, size_t len, size_t *outlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t need = 2 * len + 3, i;
	char *p;

	if (need > mc->hexcap) {
		if ((p = realloc(mc->hexbuf, need)) == NULL)
			return NULL;
		mc->hexbuf = p;
		mc->hexcap = need;
	}
	p = mc->hexbuf;
	*p++ = '\\';
	*p++ = 'x';
	for (i = 0; i < len; i++) {
		*p++ = hex[(unsigned char)v[i] >> 4];
		*p++ = hex[(unsigned char)v[i] & 15];
	}
	*p = '\0';
	*outlen = 2 * len + 2;
	return mc->hexbuf;
}

/*
 * A BIT value (up to 8 bytes, most significant first) as the unsigned
 * number mysql-connector reads, in buf.
 */
static size_t
bit_value(const char *v, size_t len, char *buf, size_t bufsz)
{
	unsigned long long x = 0;
	size_t i;

	for (i = 0; i < len; i++)
		x = x << 8 | (unsigned char)v[i];
	return (size_t)snprintf(buf, bufsz, "%llu", x);
}

/*
 * Keep one row (copied: the connector reuses its buffer).  0, DC_ENOMEM,
 * or DC_EFULL with *need, the row's bytes, when it does not fit the
 * budget: checked before any binary value is converted.
 */
static int
keep_row(struct myconn *mc, struct dc_job *j, MYSQL_ROW row, size_t *need)
{
	struct dc_rows *r = j->rows;
	unsigned long *lens = mysql_fetch_lengths(mc->res);
	MYSQL_FIELD *f = mysql_fetch_fields(mc->res);
	char *hexcopy = NULL, bits[24];
	int i, rc;

	*need = 0;
	for (i = 0; i < r->ncols; i++)
		if (row[i] != NULL)
			*need += r->cols[i].type == DC_VT_BYTES ?
			    2 * (size_t)lens[i] + 2 :
			    f[i].type == MYSQL_TYPE_BIT ? sizeof(bits) :
			    (size_t)lens[i];
	if (r->max_bytes > 0 && *need > r->max_bytes - r->bytes)
		return DC_EFULL;
	for (i = 0; i < r->ncols; i++) {
		mc->cells[i].v = row[i];
		mc->cells[i].len = row[i] != NULL ? lens[i] : 0;
		if (row[i] != NULL && r->cols[i].type == DC_VT_BYTES) {
			/* one converted value at a time: copy it first */
			if (hex_value(mc, row[i], lens[i],
			    &mc->cells[i].len) == NULL)
				return DC_ENOMEM;
			if ((hexcopy = dc_rows_strdup(r, mc->hexbuf,
			    mc->cells[i].len)) == NULL)
				return DC_ENOMEM;
			mc->cells[i].v = hexcopy;
		} else if (row[i] != NULL && f[i].type == MYSQL_TYPE_BIT) {
			mc->cells[i].len = bit_value(row[i], lens[i], bits,
			    sizeof(bits));
			if ((mc->cells[i].v = dc_rows_strdup(r, bits,
			    mc->cells[i].len)) == NULL)
				return DC_ENOMEM;
		}
	}
	/*
	 * Text cells must end with a NUL (rows.h): the text protocol's
	 * buffer has one after each value; dc_rows_add copies anyway.
	 */
	rc = dc_rows_add(r, mc->cells);
	return rc;
}

/* The job's statement ended, its rows read: hand the job back. */
static void
job_end(struct myconn *mc)
{
	free(mc->sql);
	mc->sql = NULL;
	mc->op = OP_NONE;	/* what my_io() hears from now is the server's */
	my_watch_idle(mc);
	dc_conn_job_done(&mc->c, 0);
}

/* The statement's rows are all read (or it failed): end the job. */
static void
rows_done(struct myconn *mc)
{
	struct dc_job *j = mc->c.job;

	if (mysql_errno(mc->my) != 0) {
		if (conn_lost(mysql_errno(mc->my))) {
			my_broken(mc);
			return;
		}
		job_error(mc, j);
	}
	mysql_free_result(mc->res);	/* all read: no I/O */
	mc->res = NULL;
	job_end(mc);
}

/*
 * One row arrived (row != NULL), or the end of them.  Returns 1 when the
 * fetch loop goes on.
 */
static int
row_arrived(struct myconn *mc, MYSQL_ROW row)
{
	struct dc_job *j = mc->c.job;
	size_t need;
	int rc;

	if (row == NULL) {
		rows_done(mc);
		return 0;
	}
	j->answered = 1;
	if (mc->capped) {
		/* one more than max_rows + 1: the statement goes on */
		dc_conn_answer_and_close(&mc->c);
		return 0;
	}
	if (dc_job_failed(j))
		return 1;	/* out of memory earlier: drain */
	if (j->max_rows > 0 && j->rows->nrows == j->max_rows)
		mc->capped = 1;		/* this is the one over the cap */
	if ((rc = keep_row(mc, j, row, &need)) == DC_EFULL) {
		/* the budget is spent: as over the row cap from here */
		dc_job_over_budget(j, need > j->max_bytes);
		mc->capped = 1;
	} else if (rc != DC_OK)
		rows_failed(mc, j);
	return 1;
}

static void
fetch_rows(struct myconn *mc)
{
	MYSQL_ROW row;
	int st;

	for (;;) {
		mc->op = OP_FETCH;
		row = NULL;
		st = mysql_fetch_row_start(&row, mc->res);
		if (st != 0) {
			if (mc->capped) {
				/* max_rows + 1 rows, more on the way */
				dc_conn_answer_and_close(&mc->c);
				return;
			}
			my_wait(mc, st);
			return;
		}
		if (!row_arrived(mc, row))
			return;
	}
}

/* The statement answered: read its rows, if it has any. */
static void
query_done(struct myconn *mc, int err)
{
	struct dc_job *j = mc->c.job;

	if (err != 0) {
		if (conn_lost(mysql_errno(mc->my))) {
			my_broken(mc);
			return;
		}
		j->answered = 1;
		job_error(mc, j);
		job_end(mc);
		return;
	}
	j->answered = 1;
	if (mysql_field_count(mc->my) == 0) {
		if ((j->rows = dc_rows_new(0)) == NULL)
			rows_failed(mc, j);
		job_end(mc);
		return;
	}
	if ((mc->res = mysql_use_result(mc->my)) == NULL) {
		if (conn_lost(mysql_errno(mc->my))) {
			my_broken(mc);
			return;
		}
		job_error(mc, j);
		job_end(mc);
		return;
	}
	if (rows_shape(mc, j) != DC_OK) {
		dc_rows_free(j->rows);
		j->rows = NULL;
		rows_failed(mc, j);
	} else
		dc_rows_budget(j->rows, j->max_bytes);
	fetch_rows(mc);
}

/*
 * A statement of step -op ended (err from the connector): go on with the
 * next step.
 */
static void
my_next(struct myconn *mc)
{
	struct dc_conn *c = &mc->c;
	int op = -mc->op, err = mysql_errno(mc->my) != 0;
	char msg[512], buf[96];
	const char *next;

	mc->op = OP_NONE;
	switch (op) {
	case OP_CONNECT:
		connect_done(mc, mc->my);
		return;
	case OP_SETUP:
		if (err) {
			dc_conn_scrub(c, "could not set up the database "
			    "connection: ", mysql_error(mc->my), msg,
			    sizeof(msg));
			dc_conn_connect_failed(c, msg);
			return;
		}
		mc->setup_step++;
		if ((next = setup_sql(mc, buf, sizeof(buf))) != NULL) {
			my_query(mc, OP_SETUP, next);
			return;
		}
		my_watch_idle(mc);
		dc_conn_ready(c);
		return;
	case OP_QUERY:
		query_done(mc, err);
		return;
	default:
		return;
	}
}

static int
my_submit(struct dc_conn *c, struct dc_job *j)
{
	struct myconn *mc = myconn(c);

	/* one at a time: the pool only pipelines DC_DRV_PIPELINE drivers */
	if (j->kind == DC_JOB_SYSDB || c->njobs != 1)
		return DC_ERR;
	mc->capped = 0;
	mc->in_io = 0;		/* the pool waits for no callback in here */
	free(mc->sql);
	mc->sql = j->nparams[0] > 0 ? dc_mysql_bind(j->sql[0], j->nparams[0],
	    (const char *const *)j->params[0]) : strdup(j->sql[0]);
	if (mc->sql == NULL)
		return DC_ERR;
	my_query(mc, OP_QUERY, mc->sql);
	return DC_OK;
}

static void
my_io(struct dc_conn *c, short what)
{
	struct myconn *mc = myconn(c);
	int st, rs = ready_status(what), err = 0;
	MYSQL *ret = NULL;
	MYSQL_ROW row = NULL;

	mc->in_io = 1;
	if ((what & EV_READ) && c->state == DC_CONN_BUSY)
		dc_conn_progress(c);
	if (mc->op < 0) {
		my_next(mc);	/* ended without waiting: my_done_later */
		goto out;
	}
	assert(mc->op != OP_FETCH || mc->res != NULL);
	switch (mc->op) {
	case OP_NONE:
		/* idle: the server closed, or sent what we did not ask for */
		log_debug("idle target connection closed by server");
		dc_conn_close(c);
		break;
	case OP_CONNECT:
		if ((st = mysql_real_connect_cont(&ret, mc->my, rs)) != 0) {
			my_wait(mc, st);
			break;
		}
		connect_done(mc, ret);
		break;
	case OP_FETCH:
		if ((st = mysql_fetch_row_cont(&row, mc->res, rs)) != 0) {
			my_wait(mc, st);
			break;
		}
		if (row_arrived(mc, row))
			fetch_rows(mc);
		break;
	default:
		if ((st = mysql_real_query_cont(&err, mc->my, rs)) != 0) {
			my_wait(mc, st);
			break;
		}
		mc->op = -mc->op;
		my_next(mc);
		break;
	}
out:
	/* c may be closed (c->dead): its memory lives until we return */
	mc->in_io = 0;
}

static void
my_close(struct dc_conn *c)
{
	struct myconn *mc = myconn(c);
	int fd;

	if (mc->my != NULL) {
		/*
		 * A step in flight, or rows not all read: the connector would
		 * read the rest (blocking) before it quits.  Shut the socket
		 * first so that ends at once.
		 */
		if (mc->op != OP_NONE || mc->res != NULL) {
			fd = (int)mysql_get_socket(mc->my);
			if (fd >= 0)
				shutdown(fd, SHUT_RDWR);
		}
		if (mc->res != NULL)
			mysql_free_result(mc->res);
		mysql_close(mc->my);
	}
	mc->my = NULL;
	mc->res = NULL;
	free(mc->sql);
	free(mc->cells);
	free(mc->hexbuf);
	mc->sql = NULL;
	mc->cells = NULL;
	mc->hexbuf = NULL;
	dc_explicit_bzero(&mc->u, sizeof(mc->u));
}

static int
my_current(const struct dc_conn *c)
{
	const struct myconn *mc = (const struct myconn *)c;

	return mc->timeout_ms == c->w->cfg->statement_timeout;
}

static const char *
my_error(const struct dc_conn *c)
{
	const struct myconn *mc = (const struct myconn *)c;

	return mc->my != NULL ? mysql_error(mc->my) : "connection closed";
}

/* --- KILL QUERY --- */

static void
killer_free(struct killer *k)
{
	if (k->prev != NULL)
		k->prev->next = k->next;
	else
		k->d->killers = k->next;
	if (k->next != NULL)
		k->next->prev = k->prev;
	if (k->ev != NULL)
		event_free(k->ev);
	if (k->my != NULL) {
		if (k->op != OP_NONE && mysql_get_socket(k->my) >= 0)
			shutdown((int)mysql_get_socket(k->my), SHUT_RDWR);
		mysql_close(k->my);
	}
	dc_explicit_bzero(&k->u, sizeof(k->u));
	free(k);
}

static void	 killer_event(evutil_socket_t fd, short what, void *arg);

static void
killer_wait(struct killer *k, int status)
{
	struct timeval tv;
	int tmo;
	short what = wait_events(status, &tmo, k->my);

	event_assign(k->ev, k->d->w->base, (int)mysql_get_socket(k->my), what,
	    killer_event, k);
	tv.tv_sec = tmo / 1000;
	tv.tv_usec = (tmo % 1000) * 1000;
	if (event_add(k->ev, tmo >= 0 ? &tv : NULL) != 0)
		killer_free(k);
}

static void
killer_step(struct killer *k, int st, int failed)
{
	int err = 0;

	for (;;) {
		if (st != 0) {
			killer_wait(k, st);
			return;
		}
		if (failed) {
			/* the statement may have ended already: not worse */
			log_debug("KILL QUERY %lu: %s", k->id,
			    mysql_error(k->my));
			break;
		}
		if (k->op == OP_CONNECT) {
			k->op = OP_QUERY;
			st = mysql_real_query_start(&err, k->my, k->sql,
			    (unsigned long)strlen(k->sql));
			failed = st == 0 && err != 0;
			continue;
		}
		log_debug("stopped an abandoned MySQL statement (thread %lu)",
		    k->id);
		break;
	}
	k->op = OP_NONE;
	killer_free(k);
}

static void
killer_event(evutil_socket_t fd, short what, void *arg)
{
	struct killer *k = arg;
	int st, rs = ready_status(what), err = 0;
	MYSQL *ret = NULL;

	if (k->op == OP_CONNECT) {
		st = mysql_real_connect_cont(&ret, k->my, rs);
		killer_step(k, st, st == 0 && ret == NULL);
	} else {
		st = mysql_real_query_cont(&err, k->my, rs);
		killer_step(k, st, st == 0 && err != 0);
	}
}

/*
 * The pool closes c while its statement may still run: MySQL would not
 * notice the closed connection until it has rows to send, so stop the
 * statement with KILL QUERY from a second connection of the same user.
 */
static void
my_abort(struct dc_conn *c)
{
	struct myconn *mc = myconn(c);
	struct mydrv *d = dc_conn_driver_state(c);
	struct killer *k;
	MYSQL *ret = NULL;
	int st;

	if (d == NULL || mc->my == NULL || mc->thread_id == 0 ||
	    mc->op == OP_NONE || (k = calloc(1, sizeof(*k))) == NULL)
		return;
	k->d = d;
	k->id = mc->thread_id;
	k->u = mc->u;
	memcpy(k->addr, mc->addr, sizeof(k->addr));
	snprintf(k->sql, sizeof(k->sql), "KILL QUERY %lu", k->id);
	k->next = d->killers;
	if (d->killers != NULL)
		d->killers->prev = k;
	d->killers = k;
	if ((k->my = mysql_init(NULL)) == NULL ||
	    (k->ev = event_new(d->w->base, -1, 0, killer_event, k)) == NULL ||
	    my_options(k->my, &k->u, c->w->cfg->connect_timeout) != DC_OK) {
		killer_free(k);
		return;
	}
	k->op = OP_CONNECT;
	st = mysql_real_connect_start(&ret, k->my, k->addr, k->u.user,
	    k->u.password, NULL, k->u.port, NULL, 0);
	killer_step(k, st, st == 0 && ret == NULL);
}

static int
my_start(struct dc_pool *p, void **state)
{
	struct mydrv *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return DC_ENOMEM;
	d->w = dc_pool_worker(p);
	*state = d;
	return DC_OK;
}

static void
my_stop(void *state)
{
	struct mydrv *d = state;

	while (d->killers != NULL)
		killer_free(d->killers);
	free(d);
}

const struct dc_driver dc_driver_mysql = {
	.type = "mysql",
	.caps = 0,
	.dialect = &my_dialect,
	.conn_size = sizeof(struct myconn),
	.job_size = 0,
	.url_host = my_url_host,
	.connect = my_connect,
	.io = my_io,
	.submit = my_submit,
	.abort = my_abort,
	.close = my_close,
	.current = my_current,
	.error = my_error,
	.start = my_start,
	.stop = my_stop,
};
