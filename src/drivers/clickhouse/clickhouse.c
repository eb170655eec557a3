/*
 * clickhouse.c - the ClickHouse driver (drv_clickhouse.h, driver.h):
 * ClickHouse's HTTP interface, each job one POST through the worker's
 * libcurl multi handle (curlev.h), so nothing waits and a slow analytic
 * query never blocks other requests on the worker.
 *
 * A pool connection is an easy handle; the TCP connections behind it are
 * curl's, kept alive in the worker's share handle and reused by every
 * easy handle to the same server.  HTTP/1.1 answers one request at a time
 * per connection, so the driver takes one job per pool connection (no
 * DC_DRV_PIPELINE).  "Connecting" is one request that also checks the
 * login and the database: it reads the user's own readonly setting,
 * which decides what a job may pass.
 *
 * Read-only by construction: every job runs with readonly=1, which makes
 * the server refuse writes, DDL, SET and table functions (url(), file(),
 * remote(), even numbers()); with max_execution_time (the statement
 * timeout, in whole seconds, rounded up) and, for READ jobs,
 * max_result_rows = max_rows + 1 with result_overflow_mode=break, so the
 * server stops a huge result itself.  A user whose profile already says
 * readonly=1 may change no setting at all: its jobs pass none, and the
 * timeout and the cap are ours alone (curl's timeout, rows dropped and
 * the transfer cut); one whose profile says readonly=2 keeps it (the
 * guard refuses table functions then).  Nothing persists between jobs:
 * the HTTP interface has no session unless asked for one.
 *
 * Each job has its own query_id; when its client leaves, or it ran out of
 * time, or the cap cut its transfer, KILL QUERY WHERE query_id = ... goes
 * on a transfer of its own (ClickHouse does not notice a closed client
 * while a statement computes).
 *
 * Results stream in as TabSeparatedWithNamesAndTypes (18.16 has no
 * JSONCompactEachRow...), parsed as they arrive (dc_ch_tsv_feed): names,
 * types, then rows, the first max_rows + 1 kept.  A response whose
 * Content-Type is not tab-separated values is refused (a FORMAT clause
 * the guard missed would otherwise be misread).
 */
#include <sys/socket.h>
#include <arpa/inet.h>
#include <assert.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "config.h"
#include "curlev.h"
#include "dc.h"
#include "driver.h"
#include "drv_clickhouse.h"
#include "log.h"
#include "rows.h"
#include "sqlguard.h"
#include "util.h"
#include "worker.h"

#define CH_PORT			8123
#define CH_PORT_TLS		8443
#define CH_FORMAT		"TabSeparatedWithNamesAndTypes"
#define CH_MAX_COLS		4096
#define CH_ERR_MAX		4096	/* bytes of an error response kept */
#define CH_TAIL_MAX		(64 * 1024) /* of what may be an exception */
#define CH_DRAIN_MAX		(256 * 1024) /* read past the cap, then cut */
#define CH_KILL_TIMEOUT_MS	10000

/* ClickHouse error codes the driver tells apart. */
#define CH_UNKNOWN_TABLE	60
#define CH_UNKNOWN_DATABASE	81
#define CH_TIMEOUT_EXCEEDED	159

/* --- the dialect --- */

/*
 * The catalog (driver.h) from system.tables and system.columns, for the
 * URL's database unless one is named.  18.16 has no total_rows: a
 * MergeTree table's row count is the sum of its active parts' rows, other
 * engines have none.  Nor has it a column position: system.columns lists
 * a table's columns in order, which rowNumberInAllBlocks() keeps.
 * ClickHouse has no foreign keys; "primary key" is the sorting key's
 * prefix it indexes.  Parameters arrive as literals (dc_ch_bind).
 */
static const char catalog_sql[] =
    "SELECT database, tname,"
    " if(engine IN ('View', 'MaterializedView', 'LiveView'), 'VIEW',"
    "  'BASE TABLE'),"
    " if(has_parts = 1, part_rows, if(engine LIKE '%MergeTree',"
    "  toUInt64(0), NULL)),"
    " nullIf(col, ''), nullIf(col_type, ''),"
    " if(col = '', NULL, if(col_type LIKE 'Nullable(%', 't', 'f')),"
    " if(col = '', NULL, if(col_pk = 1, 't', 'f')),"
    " NULL, NULL"
    " FROM (SELECT database, name AS tname, engine, has_parts, part_rows"
    "  FROM system.tables ANY LEFT JOIN (SELECT database, table AS tname,"
    "   toUInt8(1) AS has_parts, sum(rows) AS part_rows FROM system.parts"
    "   WHERE active GROUP BY database, table) USING (database, tname)"
    "  WHERE database = ifNull($1, currentDatabase())"
    "  AND ($2 IS NULL OR tname = $2) AND is_temporary = 0)"
    " ALL LEFT JOIN (SELECT database, table AS tname, name AS col,"
    "  type AS col_type, is_in_primary_key AS col_pk,"
    "  rowNumberInAllBlocks() AS col_pos FROM system.columns"
    "  WHERE $3 = 'true' AND database = ifNull($1, currentDatabase())"
    "  AND ($2 IS NULL OR table = $2)) USING (database, tname)"
    " ORDER BY database, tname, col_pos";

/*
 * The catalog's version: a checksum of the tables (with their engines)
 * and the columns (with their types) of the URL's database, which every
 * CREATE, DROP, RENAME and ALTER of a column moves and data does not.
 */
static const char version_sql[] =
    "SELECT concat("
    "(SELECT concat(toString(count()), '.', toString(sum(cityHash64("
    "database, name, engine)))) FROM system.tables"
    " WHERE database = currentDatabase() AND is_temporary = 0), '/', "
    "(SELECT concat(toString(count()), '.', toString(sum(cityHash64("
    "database, table, name, type)))) FROM system.columns"
    " WHERE database = currentDatabase()))";

static const struct dc_dialect ch_dialect = {
	.name = "ClickHouse",
	.guard = dc_sql_guard_clickhouse,
	.quote = '`',
	.default_schema = NULL,		/* a connection's schema is its db */
	.catalog_sql = catalog_sql,
	.version_sql = version_sql,
	/* DataChat's (catalog_templates.py), within the URL's database;
	   system.columns lists a table's columns in order */
	.list_tables_sql =
	    "SELECT database, name "
	    "FROM system.tables "
	    "WHERE database NOT IN ('system', 'INFORMATION_SCHEMA', "
	    "'information_schema') "
	    "AND database = currentDatabase() "
	    "ORDER BY database, name",
	.list_columns_sql =
	    "SELECT database AS table_schema, table AS table_name, "
	    "name AS column_name, type AS data_type "
	    "FROM system.columns "
	    "WHERE table = %s "
	    "AND database = %s",
	.count_sql = "SELECT count() AS row_count FROM %s",
	.sample_sql = "SELECT * FROM %s LIMIT %d",
	.prompt_rules = "- Write ClickHouse SQL: its functions (toDate, "
	    "toStartOfMonth, countIf, uniq, ...) and its types; no table "
	    "functions such as numbers(), url(), file() or remote().\n"
	    "- Tables are in the connection's database: name them without a "
	    "database; quote identifiers with backticks when they need "
	    "quoting.\n"
	    "- No FORMAT or SETTINGS clause.\n",
	.empty_names_columns = 1,
};

/* --- URLs and parameters --- */

/* A boolean parameter's value: 1, 0, or -1 when it is neither. */
static int
flag_value(const char *v)
{
	static const char *const yes[] = { "1", "true", "yes", "on" };
	static const char *const no[] = { "0", "false", "no", "off" };
	size_t i, n = strlen(v);

	for (i = 0; i < DC_ARRAY_SIZE(yes); i++) {
		if (dc_word_is(v, n, yes[i]))
			return 1;
		if (dc_word_is(v, n, no[i]))
			return 0;
	}
	return -1;
}

/* The query parameters of a clickhouse URL, [q, q + n). */
static int
url_params(struct dc_ch_url *u, const char *q, size_t n, char *err,
    size_t errsz)
{
	char buf[512], *name, *val, *amp;
	int f;

	if (n >= sizeof(buf)) {
		snprintf(err, errsz, "clickhouse URL parameters are too long");
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
		if (strcasecmp(name, "secure") != 0 &&
		    strcasecmp(name, "verify") != 0) {
			snprintf(err, errsz, "unknown parameter \"%.32s\" in the "
			    "clickhouse URL (known: secure, verify)", name);
			return DC_EINVAL;
		}
		if ((f = flag_value(val)) < 0) {
			snprintf(err, errsz, "%s must be true or false in the "
			    "clickhouse URL", strcasecmp(name, "secure") == 0 ?
			    "secure" : "verify");
			return DC_EINVAL;
		}
		if (strcasecmp(name, "secure") == 0)
			u->tls = f;
		else
			u->verify = f;
	}
	return DC_OK;
}

/* A host name or address we put in a URL as it is. */
static int
host_ok(const char *h)
{
	size_t i;

	for (i = 0; h[i] != '\0'; i++)
		if (!((h[i] >= 'a' && h[i] <= 'z') ||
		    (h[i] >= 'A' && h[i] <= 'Z') ||
		    (h[i] >= '0' && h[i] <= '9') || h[i] == '.' ||
		    h[i] == '-' || h[i] == '_' || h[i] == ':'))
			return 0;
	return i > 0;
}

int
dc_ch_url_parse(const char *url, struct dc_ch_url *u, char *err,
    size_t errsz)
{
	const char *p, *auth, *at, *hostp, *hend, *colon, *path, *e, *plus;
	char *end;
	size_t n, slen;
	long port;
	int explicit_port = 0;

	memset(u, 0, sizeof(*u));
	dc_strlcpy(u->user, "default", sizeof(u->user));
	dc_strlcpy(u->db, "default", sizeof(u->db));
	u->verify = 1;
	if ((p = strstr(url, "://")) == NULL || dc_url_type(url) == NULL ||
	    strcmp(dc_url_type(url), "clickhouse") != 0) {
		snprintf(err, errsz, "not a clickhouse:// URL");
		return DC_EINVAL;
	}
	/* clickhouses:// and clickhouse+https:// ask for TLS */
	slen = (size_t)(p - url);
	plus = memchr(url, '+', slen);
	if (dc_word_is(url, plus != NULL ? (size_t)(plus - url) : slen,
	    "clickhouses") || (plus != NULL && dc_word_is(plus + 1,
	    (size_t)(p - plus - 1), "https")))
		u->tls = 1;
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
	hostp = auth;
	if (at != NULL) {
		colon = memchr(auth, ':', (size_t)(at - auth));
		n = (size_t)((colon != NULL ? colon : at) - auth);
		if (n > 0 && dc_pct_decode_strict(auth, n, u->user,
		    sizeof(u->user)) == -1) {
			snprintf(err, errsz, "bad user name in the clickhouse URL");
			return DC_EINVAL;
		}
		if (colon != NULL && dc_pct_decode_strict(colon + 1,
		    (size_t)(at - colon - 1), u->password,
		    sizeof(u->password)) == -1) {
			snprintf(err, errsz, "bad password in the clickhouse URL");
			return DC_EINVAL;
		}
		hostp = at + 1;
	}
	if (*hostp == '[') {
		if ((e = memchr(hostp, ']', (size_t)(hend - hostp))) == NULL)
			goto badhost;
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
		if (n == 0 || n >= sizeof(u->host))
			goto badhost;
		memcpy(u->host, hostp, n);
		u->host[n] = '\0';
		if (strchr(u->host, ':') != NULL)
			goto badhost;
	}
	if (!host_ok(u->host))
		goto badhost;
	if (p < hend && *p == ':') {
		port = strtol(p + 1, &end, 10);
		if (end != hend || port < 1 || port > 65535) {
			snprintf(err, errsz, "bad port in the clickhouse URL");
			return DC_EINVAL;
		}
		u->port = (unsigned int)port;
		explicit_port = 1;
	} else if (p != hend)
		goto badhost;
	path = hend;
	if (*path == '/') {
		path++;
		n = strcspn(path, "?#");
		if (memchr(path, '/', n) != NULL || (n > 0 &&
		    dc_pct_decode_strict(path, n, u->db, sizeof(u->db)) == -1)) {
			snprintf(err, errsz, "bad database name in the clickhouse "
			    "URL");
			return DC_EINVAL;
		}
		path += n;
	}
	if (*path == '?' && url_params(u, path + 1, strcspn(path + 1, "#"),
	    err, errsz) != DC_OK)
		return DC_EINVAL;
	if (!explicit_port)
		u->port = u->tls ? CH_PORT_TLS : CH_PORT;
	return DC_OK;
badhost:
	snprintf(err, errsz, "bad or missing host in the clickhouse URL");
	return DC_EINVAL;
}

char *
dc_ch_bind(const char *sql, int nparams, const char *const *params)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t len = 0, cap = strlen(sql) + 1, n, k;
	const char *p, *v;
	char *out = malloc(cap), *tmp;
	int i, param;

	if (out == NULL)
		return NULL;
	for (p = sql; *p != '\0'; p++) {
		param = *p == '$' && p[1] >= '1' && p[1] <= '9';
		v = NULL;
		n = 1;
		if (param) {
			i = p[1] - '1';
			if (i >= nparams)
				goto fail;
			v = params[i];
			n = v == NULL ? 4 : 9 + 2 * strlen(v);
		}
		if (len + n + 1 > cap) {
			cap = (len + n + 1) * 2;
			if ((tmp = realloc(out, cap)) == NULL)
				goto fail;
			out = tmp;
		}
		if (!param) {
			out[len++] = *p;
			continue;
		}
		p++;
		if (v == NULL) {
			memcpy(out + len, "NULL", 4);
			len += 4;
			continue;
		}
		/* hex digits: nothing in the value can end the literal */
		memcpy(out + len, "unhex('", 7);
		len += 7;
		for (k = 0; v[k] != '\0'; k++) {
			out[len++] = hex[(unsigned char)v[k] >> 4];
			out[len++] = hex[(unsigned char)v[k] & 15];
		}
		out[len++] = '\'';
		out[len++] = ')';
	}
	out[len] = '\0';
	return out;
fail:
	free(out);
	return NULL;
}

/* --- types --- */

enum ch_colflag {
	CF_FLOAT = 1 << 0,		/* inf, -inf, nan spelled as rows.h says */
	CF_FIXED = 1 << 1,		/* FixedString: trailing NULs dropped */
	CF_TEXT = 1 << 2,		/* no NUL bytes may stay */
	CF_RAW = 1 << 3,		/* an Array: kept escaped (tsv_split) */
};

/*
 * type (n bytes, not NUL-terminated) without Nullable( and
 * LowCardinality( around it; *len its new length.
 */
static const char *
base_type(const char *type, size_t n, size_t *len)
{
	for (;;) {
		if (n > 10 && strncmp(type, "Nullable(", 9) == 0 &&
		    type[n - 1] == ')') {
			type += 9;
			n -= 10;
		} else if (n > 16 && strncmp(type, "LowCardinality(", 15) == 0 &&
		    type[n - 1] == ')') {
			type += 15;
			n -= 16;
		} else
			break;
	}
	*len = n;
	return type;
}

static int
type_is(const char *t, size_t n, const char *name)
{
	size_t l = strlen(name);

	return n >= l && strncmp(t, name, l) == 0 && (n == l || t[l] == '(');
}

/* "Array(T)" (n bytes): T, *en its length; NULL when t is no Array. */
static const char *
array_elem(const char *t, size_t n, size_t *en)
{
	if (n <= 7 || strncmp(t, "Array(", 6) != 0 || t[n - 1] != ')')
		return NULL;
	*en = n - 7;
	return t + 6;
}

static unsigned	vflags(const char *type, size_t n);

static int
vtype(const char *type, size_t len)
{
	static const struct {
		const char	*name;
		int		 vt;
	} types[] = {
		{ "Int8", DC_VT_INT }, { "Int16", DC_VT_INT },
		{ "Int32", DC_VT_INT }, { "Int64", DC_VT_INT },
		{ "Int128", DC_VT_INT }, { "Int256", DC_VT_INT },
		{ "UInt8", DC_VT_INT }, { "UInt16", DC_VT_INT },
		{ "UInt32", DC_VT_INT }, { "UInt64", DC_VT_INT },
		{ "UInt128", DC_VT_INT }, { "UInt256", DC_VT_INT },
		{ "Float32", DC_VT_FLOAT }, { "Float64", DC_VT_FLOAT },
		{ "Decimal", DC_VT_DECIMAL }, { "Decimal32", DC_VT_DECIMAL },
		{ "Decimal64", DC_VT_DECIMAL }, { "Decimal128", DC_VT_DECIMAL },
		{ "Decimal256", DC_VT_DECIMAL },
		{ "Bool", DC_VT_BOOL },
		{ "String", DC_VT_TEXT }, { "FixedString", DC_VT_TEXT },
		{ "Enum8", DC_VT_TEXT }, { "Enum16", DC_VT_TEXT },
		{ "IPv4", DC_VT_TEXT }, { "IPv6", DC_VT_TEXT },
		{ "Date", DC_VT_DATE }, { "Date32", DC_VT_DATE },
		{ "DateTime", DC_VT_TIMESTAMP },
		{ "DateTime64", DC_VT_TIMESTAMP },
		{ "UUID", DC_VT_UUID },
		{ "JSON", DC_VT_JSON },
	};
	const char *t, *e;
	size_t i, n, en;

	t = base_type(type, len, &n);
	if ((e = array_elem(t, n, &en)) != NULL)
		/* an array: its elements' type, when result.c reads it */
		return vflags(t, n) & DC_COL_ARRAY ? vtype(e, en) : DC_VT_OTHER;
	for (i = 0; i < DC_ARRAY_SIZE(types); i++)
		if (type_is(t, n, types[i].name))
			return types[i].vt;
	return DC_VT_OTHER;
}

/*
 * How clickhouse-connect reads the type (rows.h's DC_COL_*): Float32
 * widened to a double; an Array (of a type known here) as a list.
 */
static unsigned
vflags(const char *type, size_t len)
{
	const char *t, *e;
	size_t n, en;

	t = base_type(type, len, &n);
	if ((e = array_elem(t, n, &en)) != NULL) {
		if (vtype(e, en) == DC_VT_OTHER)
			return 0;	/* Array(Tuple(...)) and such: the text */
		return vflags(e, en) | DC_COL_ARRAY | DC_COL_ARRAY_CH;
	}
	return type_is(t, n, "Float32") ? DC_COL_FLOAT4 : 0;
}

int
dc_ch_vtype(const char *type)
{
	return vtype(type, strlen(type));
}

unsigned
dc_ch_vflags(const char *type)
{
	return vflags(type, strlen(type));
}

static int
col_flags(const char *type)
{
	size_t n;
	const char *t = base_type(type, strlen(type), &n);

	if (dc_ch_vflags(type) & DC_COL_ARRAY)
		return CF_RAW;	/* result.c reads the whole text */
	switch (dc_ch_vtype(type)) {
	case DC_VT_FLOAT:
		return CF_FLOAT;
	case DC_VT_TEXT:
		return CF_TEXT | (type_is(t, n, "FixedString") ? CF_FIXED : 0);
	default:
		return 0;
	}
}

/* --- errors --- */

int
dc_ch_error(const char *text, size_t len, char *out, size_t outsz)
{
	static const char disp[] = ", e.displayText() = ";
	static const char what[] = ", e.what() = ";
	const char *p = text, *end = text + len, *q;
	char *s;
	int code = 0;
	size_t n, o;

	assert(outsz > 0);
	while (p < end && (*p == ' ' || *p == '\n' || *p == '\r'))
		p++;
	if (end - p > 6 && strncmp(p, "Code: ", 6) == 0 &&
	    p[6] >= '0' && p[6] <= '9') {
		for (q = p + 6; q < end && *q >= '0' && *q <= '9'; q++)
			if (code < 100000)
				code = code * 10 + (*q - '0');
		if (code == 0)
			code = -1;
	}
	/* one line: control characters become spaces */
	n = (size_t)(end - p) < outsz - 1 ? (size_t)(end - p) : outsz - 1;
	for (o = 0; o < n; o++)
		out[o] = (unsigned char)p[o] < 0x20 ? ' ' : p[o];
	out[o] = '\0';
	while (o > 0 && out[o - 1] == ' ')
		out[--o] = '\0';
	if (code == 0)
		return 0;
	/* 18.16's "Code: N, e.displayText() = X, e.what() = Y" -> "Code: N. X" */
	if ((s = strstr(out, disp)) != NULL) {
		*s = '.';
		memmove(s + 1, s + sizeof(disp) - 2,
		    strlen(s + sizeof(disp) - 2) + 1);
	}
	if ((s = strstr(out, what)) != NULL)
		*s = '\0';
	return code;
}

/* --- streamed rows --- */

/* Undo TSV escapes of [s, s + n) in place; its new length. */
static size_t
tsv_unescape(char *s, size_t n)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		if (s[i] != '\\' || i + 1 == n) {
			s[o++] = s[i];
			continue;
		}
		switch (s[++i]) {
		case 'b':	s[o++] = '\b'; break;
		case 'f':	s[o++] = '\f'; break;
		case 'n':	s[o++] = '\n'; break;
		case 'r':	s[o++] = '\r'; break;
		case 't':	s[o++] = '\t'; break;
		case '0':	s[o++] = '\0'; break;
		case 'a':	s[o++] = '\a'; break;
		case 'v':	s[o++] = '\v'; break;
		default:	s[o++] = s[i]; break;	/* \\ \' \" and others */
		}
	}
	return o;
}

/*
 * Split line [s, s + n) at tabs into ncols fields, NUL-terminated and
 * unescaped in place, into cells (\N: NULL).  -1 when the count differs.
 * A field whose flags (NULL: none) have CF_RAW stays escaped: an Array's
 * elements are escaped once, for the array and the line at a time, so
 * only result.c, which knows the quotes, can read them.
 */
static int
tsv_split(char *s, size_t n, struct dc_cell *cells, int ncols,
    const int *flags)
{
	size_t start = 0, i;
	int k = 0;

	for (i = 0; i <= n; i++) {
		if (i < n && s[i] != '\t')
			continue;
		if (k == ncols)
			return -1;
		if (i - start == 2 && s[start] == '\\' && s[start + 1] == 'N')
			cells[k].v = NULL;
		else {
			cells[k].len = flags != NULL && (flags[k] & CF_RAW) ?
			    i - start : tsv_unescape(s + start, i - start);
			s[start + cells[k].len] = '\0';
			cells[k].v = s + start;
		}
		if (cells[k].v == NULL)
			cells[k].len = 0;
		k++;
		start = i + 1;
	}
	return k == ncols ? 0 : -1;
}

static int
tsv_fail(struct dc_ch_tsv *p, int rc, const char *msg)
{
	if (p->error[0] == '\0')
		dc_strlcpy(p->error, msg, sizeof(p->error));
	return rc;
}

/* The types line: the result's columns. */
static int
tsv_columns(struct dc_ch_tsv *p, char *types, size_t n)
{
	struct dc_cell *names, *tys;
	int ncols = 1, i, rc = DC_ENOMEM;
	size_t k;

	for (k = 0; k < p->nameslen; k++)
		if (p->names[k] == '\t')
			ncols++;
	if (ncols > CH_MAX_COLS)
		return tsv_fail(p, DC_EINVAL, "too many columns");
	names = calloc((size_t)ncols, sizeof(*names));
	tys = calloc((size_t)ncols, sizeof(*tys));
	p->cells = calloc((size_t)ncols, sizeof(*p->cells));
	p->flags = calloc((size_t)ncols, sizeof(*p->flags));
	if (names == NULL || tys == NULL || p->cells == NULL ||
	    p->flags == NULL || (p->rows = dc_rows_new(ncols)) == NULL)
		goto out;
	if (tsv_split(p->names, p->nameslen, names, ncols, NULL) == -1 ||
	    tsv_split(types, n, tys, ncols, NULL) == -1) {
		rc = tsv_fail(p, DC_EINVAL, "the response's names and types "
		    "do not match");
		goto out;
	}
	for (i = 0; i < ncols; i++) {
		if (names[i].v == NULL || tys[i].v == NULL) {
			rc = tsv_fail(p, DC_EINVAL, "a column without a name or "
			    "a type");
			goto out;
		}
		p->flags[i] = col_flags(tys[i].v);
		if (dc_rows_set_col(p->rows, i, names[i].v,
		    dc_ch_vtype(tys[i].v)) != DC_OK)
			goto out;
		dc_rows_set_flags(p->rows, i, dc_ch_vflags(tys[i].v));
	}
	rc = DC_OK;
out:
	free(names);
	free(tys);
	free(p->names);
	p->names = NULL;
	return rc;
}

/* A cell as rows.h spells it: floats' words, no NUL in text. */
static int
tsv_cell(struct dc_ch_tsv *p, struct dc_cell *c, int flags)
{
	size_t i, o, nul = 0;
	char *s;

	if (c->v == NULL)
		return DC_OK;
	if (flags & CF_FLOAT) {
		if (strcmp(c->v, "inf") == 0 || strcmp(c->v, "+inf") == 0)
			c->v = "Infinity";
		else if (strcmp(c->v, "-inf") == 0)
			c->v = "-Infinity";
		else if (strcmp(c->v, "nan") == 0 || strcmp(c->v, "-nan") == 0)
			c->v = "NaN";
		c->len = strlen(c->v);
		return DC_OK;
	}
	if (!(flags & CF_TEXT))
		return DC_OK;
	if (flags & CF_FIXED)
		while (c->len > 0 && c->v[c->len - 1] == '\0')
			c->len--;
	for (i = 0; i < c->len; i++)
		if (c->v[i] == '\0')
			nul++;
	if (nul == 0)
		return DC_OK;
	/* a NUL inside text becomes U+FFFD (rows.h: text has none) */
	if ((s = malloc(c->len + 2 * nul + 1)) == NULL)
		return DC_ENOMEM;
	for (i = o = 0; i < c->len; i++) {
		if (c->v[i] != '\0')
			s[o++] = c->v[i];
		else {
			memcpy(s + o, "\xef\xbf\xbd", 3);
			o += 3;
		}
	}
	c->v = dc_rows_strdup(p->rows, s, o);
	c->len = o;
	free(s);
	return c->v != NULL ? DC_OK : DC_ENOMEM;
}

/* "Code: " and a digit: what the server's exception begins with. */
static int
looks_like_exception(const char *s, size_t n)
{
	return n > 6 && strncmp(s, "Code: ", 6) == 0 &&
	    s[6] >= '0' && s[6] <= '9';
}

/* One line of the response, its newline dropped. */
static int
tsv_line(struct dc_ch_tsv *p, char *s, size_t n)
{
	int i, rc;

	switch (p->line++) {
	case 0:
		if ((p->names = malloc(n + 1)) == NULL)
			return DC_ENOMEM;
		memcpy(p->names, s, n);
		p->names[n] = '\0';
		p->nameslen = n;
		return DC_OK;
	case 1:
		return tsv_columns(p, s, n);
	default:
		break;
	}
	if (p->capped)
		return DC_OK;
	if (p->max_rows > 0 && p->rows->nrows > p->max_rows) {
		p->capped = 1;	/* a row past max_rows + 1: drop the rest */
		return DC_OK;
	}
	if (tsv_split(s, n, p->cells, p->rows->ncols, p->flags) == -1)
		return tsv_fail(p, DC_EINVAL, "a row of the response does not "
		    "have its columns");
	for (i = 0; i < p->rows->ncols; i++)
		if ((rc = tsv_cell(p, &p->cells[i], p->flags[i])) != DC_OK)
			return rc;
	return dc_rows_add(p->rows, p->cells);
}

static int
buf_add(char **buf, size_t *len, size_t *cap, const char *data, size_t n)
{
	size_t want;
	char *tmp;

	if (*len + n + 1 > *cap) {
		want = (*len + n + 1) * 2;
		if (want < 4096)
			want = 4096;
		if ((tmp = realloc(*buf, want)) == NULL)
			return DC_ENOMEM;
		*buf = tmp;
		*cap = want;
	}
	memcpy(*buf + *len, data, n);
	*len += n;
	(*buf)[*len] = '\0';
	return DC_OK;
}

static int	 tsv_replay(struct dc_ch_tsv *p);

int
dc_ch_tsv_feed(struct dc_ch_tsv *p, const char *data, size_t len)
{
	size_t start = 0, i;
	char *nl;
	int rc;

	if (p->capped) {
		p->past_cap += len;
		return DC_OK;
	}
	if (p->in_tail) {
		if (buf_add(&p->tail, &p->tlen, &p->tcap, data, len) != DC_OK)
			return DC_ENOMEM;
		/* too long for an exception: rows after all */
		return p->tlen > CH_TAIL_MAX ? tsv_replay(p) : DC_OK;
	}
	if (buf_add(&p->buf, &p->len, &p->cap, data, len) != DC_OK)
		return DC_ENOMEM;
	while ((nl = memchr(p->buf + start, '\n', p->len - start)) != NULL) {
		i = (size_t)(nl - p->buf);
		/*
		 * The server failed after it began to answer: its exception
		 * follows the last row.  Keep the rest to see it whole (a
		 * one-column string may also begin so: then rows after all).
		 */
		if (p->line >= 2 && !p->replay &&
		    looks_like_exception(p->buf + start, i - start)) {
			p->in_tail = 1;
			rc = buf_add(&p->tail, &p->tlen, &p->tcap,
			    p->buf + start, p->len - start);
			p->len = 0;
			if (rc != DC_OK)
				return rc;
			return p->tlen > CH_TAIL_MAX ? tsv_replay(p) : DC_OK;
		}
		p->replay = 0;
		*nl = '\0';
		if ((rc = tsv_line(p, p->buf + start, i - start)) != DC_OK)
			return rc;
		start = i + 1;
		if (p->capped) {
			p->past_cap += p->len - start;
			p->len = 0;
			return DC_OK;
		}
	}
	memmove(p->buf, p->buf + start, p->len - start);
	p->len -= start;
	return DC_OK;
}

/* What was kept as a possible exception is rows: read it as such. */
static int
tsv_replay(struct dc_ch_tsv *p)
{
	char *tail = p->tail;
	size_t tlen = p->tlen;
	int rc;

	p->tail = NULL;
	p->tlen = p->tcap = 0;
	p->in_tail = 0;
	p->replay = 1;
	rc = dc_ch_tsv_feed(p, tail, tlen);
	free(tail);
	return rc;
}

int
dc_ch_tsv_end(struct dc_ch_tsv *p)
{
	int rc;

	/* replaying a tail may begin another one: each is judged alone */
	while (p->in_tail) {
		if (memmem(p->tail, p->tlen, "Exception", 9) != NULL) {
			p->code = dc_ch_error(p->tail, p->tlen, p->error,
			    sizeof(p->error));
			return DC_ERR;
		}
		if ((rc = tsv_replay(p)) != DC_OK)
			return rc;
	}
	if (p->capped)
		return DC_OK;
	if (p->len > 0)
		return tsv_fail(p, DC_EINVAL, "the response ended in the "
		    "middle of a row");
	if (p->line == 1)
		return tsv_fail(p, DC_EINVAL, "the response has no types line");
	if (p->rows == NULL && (p->rows = dc_rows_new(0)) == NULL)
		return DC_ENOMEM;
	return DC_OK;
}

void
dc_ch_tsv_reset(struct dc_ch_tsv *p)
{
	int max_rows = p->max_rows;

	dc_rows_free(p->rows);
	free(p->buf);
	free(p->names);
	free(p->flags);
	free(p->cells);
	free(p->tail);
	memset(p, 0, sizeof(*p));
	p->max_rows = max_rows;
}

/* --- connections --- */

enum ch_op {
	OP_NONE = 0,		/* idle */
	OP_SETUP,		/* the login check, before dc_conn_ready */
	OP_QUERY,		/* a job's statement */
};

/* What a pool connection and a KILL transfer both need to reach the server. */
struct chserver {
	struct dc_ch_url u;		/* holds the password: wiped */
	char		 base[640];	/* scheme://host:port/ */
	char		 connect_to[320];	/* host:port:address: */
};

struct chconn {
	struct dc_conn	 c;		/* first: the pool's part */
	struct dc_curl_xfer x;
	struct chserver	 srv;
	struct curl_slist *headers;
	struct curl_slist *connect_to;
	char		 errbuf[CURL_ERROR_SIZE];
	int		 op;		/* enum ch_op in flight */
	int		 profile_ro;	/* the user's own readonly setting */
	int		 maybe_running;	/* query_id may still run there */
	long		 status;	/* HTTP status, once the body came */
	int		 ctype_ok;	/* its Content-Type is TSV */
	int		 started;	/* the body began */
	char		 query_id[40];
	char		*sql;		/* the job's statement, bound */
	char		*errtext;	/* a failed response's body */
	size_t		 errlen, errcap;
	struct dc_ch_tsv tsv;
};

/* KILL QUERY for an abandoned statement, a transfer of its own. */
struct killer {
	struct dc_curl_xfer x;
	struct chdrv	*d;
	struct curl_slist *headers;
	struct curl_slist *connect_to;
	char		 body[96];
	struct killer	*prev, *next;
};

struct chdrv {
	struct dc_worker *w;
	struct killer	*killers;
};

static struct chconn *
chconn(struct dc_conn *c)
{
	return (struct chconn *)c;
}

/* The server's address: the URL's host, at the address the pool found. */
static int
server_init(struct chserver *s, const char *url, const char *hostaddr,
    char *err, size_t errsz)
{
	int v6, a6;

	if (dc_ch_url_parse(url, &s->u, err, errsz) != DC_OK)
		return DC_ERR;
	v6 = strchr(s->u.host, ':') != NULL;
	snprintf(s->base, sizeof(s->base), "%s://%s%s%s:%u/",
	    s->u.tls ? "https" : "http", v6 ? "[" : "", s->u.host,
	    v6 ? "]" : "", s->u.port);
	s->connect_to[0] = '\0';
	if (hostaddr != NULL) {
		a6 = strchr(hostaddr, ':') != NULL;
		snprintf(s->connect_to, sizeof(s->connect_to),
		    "%s%s%s:%u:%s%s%s:", v6 ? "[" : "", s->u.host,
		    v6 ? "]" : "", s->u.port, a6 ? "[" : "", hostaddr,
		    a6 ? "]" : "");
	}
	return DC_OK;
}

/*
 * An easy handle with what every request of ours has: the login, no
 * proxy (whatever the environment says), no redirects, HTTP(S) only,
 * the pool's address, the worker's shared caches.
 */
static CURL *
easy_new(struct dc_worker *w, const struct chserver *s,
    struct curl_slist **headers, struct curl_slist **connect_to,
    char *errbuf)
{
	struct curl_slist *h;
	CURL *e;

	*headers = NULL;
	*connect_to = NULL;
	if ((e = curl_easy_init()) == NULL)
		return NULL;
	/* Expect: 100-continue would cost a round trip on long statements */
	if ((h = curl_slist_append(NULL, "Expect:")) == NULL ||
	    (*headers = curl_slist_append(h, "Content-Type: text/plain; "
	    "charset=UTF-8")) == NULL) {
		curl_slist_free_all(h);
		curl_easy_cleanup(e);
		return NULL;
	}
	if (s->connect_to[0] != '\0' &&
	    (*connect_to = curl_slist_append(NULL, s->connect_to)) == NULL) {
		curl_slist_free_all(*headers);
		*headers = NULL;
		curl_easy_cleanup(e);
		return NULL;
	}
	if (errbuf != NULL)
		curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_SHARE, dc_curlev_share(w->curl));
	curl_easy_setopt(e, CURLOPT_USERAGENT, DC_NAME "/" DC_VERSION);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, *headers);
	if (*connect_to != NULL)
		curl_easy_setopt(e, CURLOPT_CONNECT_TO, *connect_to);
	curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
	curl_easy_setopt(e, CURLOPT_USERNAME, s->u.user);
	curl_easy_setopt(e, CURLOPT_PASSWORD, s->u.password);
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
	    (long)w->cfg->connect_timeout * 1000L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(e, CURLOPT_PROTOCOLS,
	    (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	if (s->u.tls && !s->u.verify) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	return e;
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
	if (k->x.easy != NULL) {
		dc_curlev_remove(k->d->w->curl, &k->x);
		curl_easy_cleanup(k->x.easy);
	}
	curl_slist_free_all(k->headers);
	curl_slist_free_all(k->connect_to);
	free(k);
}

static size_t
killer_write(char *data, size_t size, size_t n, void *arg)
{
	return size * n;	/* the processes it stopped: not needed */
}

static void
killer_done(struct dc_curl_xfer *x, CURLcode res)
{
	struct killer *k = (struct killer *)x;
	long status = 0;

	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	if (res != CURLE_OK || status != 200)
		log_debug("KILL QUERY failed (%s, HTTP %ld)",
		    curl_easy_strerror(res), status);
	else
		log_debug("stopped an abandoned ClickHouse query");
	killer_free(k);
}

/* Stop query_id on the server, from a transfer of its own. */
static void
kill_query(struct chconn *mc)
{
	struct chdrv *d = dc_conn_driver_state(&mc->c);
	struct killer *k;
	char url[700];

	if (d == NULL || !mc->maybe_running || mc->query_id[0] == '\0' ||
	    (k = calloc(1, sizeof(*k))) == NULL)
		return;
	mc->maybe_running = 0;
	k->d = d;
	k->next = d->killers;
	if (d->killers != NULL)
		d->killers->prev = k;
	d->killers = k;
	/* query_id is ours: hex digits and dashes, nothing to escape */
	snprintf(k->body, sizeof(k->body), "KILL QUERY WHERE query_id = '%s' "
	    "ASYNC", mc->query_id);
	snprintf(url, sizeof(url), "%s?readonly=1", mc->srv.base);
	if ((k->x.easy = easy_new(d->w, &mc->srv, &k->headers,
	    &k->connect_to, NULL)) == NULL) {
		killer_free(k);
		return;
	}
	k->x.done = killer_done;
	curl_easy_setopt(k->x.easy, CURLOPT_URL, url);
	curl_easy_setopt(k->x.easy, CURLOPT_POSTFIELDS, k->body);
	curl_easy_setopt(k->x.easy, CURLOPT_WRITEFUNCTION, killer_write);
	curl_easy_setopt(k->x.easy, CURLOPT_TIMEOUT_MS,
	    (long)CH_KILL_TIMEOUT_MS);
	if (dc_curlev_add(d->w->curl, &k->x) != DC_OK)
		killer_free(k);
}

/* --- requests --- */

static void	 ch_done(struct dc_curl_xfer *x, CURLcode res);

/* The response's status and type, once, when its body begins. */
static void
response_start(struct chconn *mc)
{
	char *ctype = NULL;

	mc->started = 1;
	curl_easy_getinfo(mc->x.easy, CURLINFO_RESPONSE_CODE, &mc->status);
	curl_easy_getinfo(mc->x.easy, CURLINFO_CONTENT_TYPE, &ctype);
	mc->ctype_ok = ctype != NULL &&
	    strncasecmp(ctype, "text/tab-separated-values", 25) == 0;
}

static size_t
ch_write(char *data, size_t size, size_t n, void *arg)
{
	struct chconn *mc = arg;
	size_t len = size * n, room;
	struct dc_job *j = mc->c.job;

	if (!mc->started)
		response_start(mc);
	if (mc->op == OP_QUERY)
		dc_conn_progress(&mc->c);	/* its first result's time */
	if (mc->op != OP_QUERY || mc->status != 200) {
		/* the login check's answer, or the server's error */
		room = CH_ERR_MAX - mc->errlen;
		if (len < room)
			room = len;
		if (room > 0 && buf_add(&mc->errtext, &mc->errlen,
		    &mc->errcap, data, room) != DC_OK)
			return 0;
		return len;
	}
	if (!mc->ctype_ok) {
		dc_strlcpy(mc->tsv.error, "the server answered in another "
		    "format than " CH_FORMAT, sizeof(mc->tsv.error));
		return 0;
	}
	if (j != NULL)
		j->answered = 1;
	switch (dc_ch_tsv_feed(&mc->tsv, data, len)) {
	case DC_OK:
		break;
	case DC_ENOMEM:
		dc_strlcpy(mc->tsv.error, "out of memory",
		    sizeof(mc->tsv.error));
		return 0;
	default:
		return 0;	/* malformed: error says why */
	}
	/* past the cap the server stops by itself; if it does not, cut */
	if (mc->tsv.capped && mc->tsv.past_cap > CH_DRAIN_MAX)
		return 0;
	return len;
}

/* Start a POST of body with the URL's parameters; 0 or DC_ERR. */
static int
request(struct chconn *mc, int op, const char *params, const char *body,
    long timeout_ms)
{
	char url[1400], *db;
	CURL *e = mc->x.easy;

	if ((db = curl_easy_escape(e, mc->srv.u.db, 0)) == NULL)
		return DC_ERR;
	snprintf(url, sizeof(url), "%s?database=%s&default_format=" CH_FORMAT
	    "%s", mc->srv.base, db, params);
	curl_free(db);
	mc->op = op;
	mc->status = 0;
	mc->started = 0;
	mc->ctype_ok = 0;
	mc->errlen = 0;
	mc->errbuf[0] = '\0';
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
	    (curl_off_t)strlen(body));
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
	if (dc_curlev_add(mc->c.w->curl, &mc->x) != DC_OK) {
		mc->op = OP_NONE;
		return DC_ERR;
	}
	return DC_OK;
}

/* The server's error text, cleaned, and its code. */
static int
response_error(struct chconn *mc, char *out, size_t outsz)
{
	char msg[512];
	int code;

	code = dc_ch_error(mc->errtext != NULL ? mc->errtext : "",
	    mc->errlen, msg, sizeof(msg));
	if (msg[0] == '\0')
		snprintf(msg, sizeof(msg), "HTTP status %ld", mc->status);
	dc_conn_scrub(&mc->c, "", msg, out, outsz);
	return code;
}

static char *
ch_url_host(const char *url)
{
	struct dc_ch_url *u = malloc(sizeof(*u));
	unsigned char buf[16];
	char err[128], *host = NULL;

	if (u == NULL)
		return NULL;
	if (dc_ch_url_parse(url, u, err, sizeof(err)) == DC_OK &&
	    inet_pton(AF_INET, u->host, buf) != 1 &&
	    inet_pton(AF_INET6, u->host, buf) != 1)
		host = strdup(u->host);
	dc_explicit_bzero(u, sizeof(*u));
	free(u);
	return host;
}

/* The login check: the user's own readonly setting, in the URL's db. */
static const char setup_sql[] =
    "SELECT value FROM system.settings WHERE name = 'readonly'";

static int
ch_connect(struct dc_conn *c, const char *url, const char *hostaddr,
    char *err, size_t errsz)
{
	struct chconn *mc = chconn(c);

	if (server_init(&mc->srv, url, hostaddr, err, errsz) != DC_OK)
		return DC_ERR;
	mc->x.easy = easy_new(c->w, &mc->srv, &mc->headers, &mc->connect_to,
	    mc->errbuf);
	if (mc->x.easy == NULL) {
		dc_strlcpy(err, "could not connect to the database: out of "
		    "memory", errsz);
		return DC_ERR;
	}
	mc->x.done = ch_done;
	curl_easy_setopt(mc->x.easy, CURLOPT_WRITEFUNCTION, ch_write);
	curl_easy_setopt(mc->x.easy, CURLOPT_WRITEDATA, mc);
	if (request(mc, OP_SETUP, "", setup_sql,
	    (long)c->w->cfg->connect_timeout * 1000L) != DC_OK) {
		dc_strlcpy(err, "could not connect to the database: cannot "
		    "start a request", errsz);
		return DC_ERR;
	}
	return DC_OK;
}

/* The login check ended. */
static void
setup_done(struct chconn *mc, CURLcode res)
{
	struct dc_conn *c = &mc->c;
	char msg[600], why[512];

	mc->op = OP_NONE;
	if (res != CURLE_OK) {
		snprintf(why, sizeof(why), "%s", mc->errbuf[0] != '\0' ?
		    mc->errbuf : curl_easy_strerror(res));
		dc_conn_scrub(c, "could not connect to the database: ", why,
		    msg, sizeof(msg));
		dc_conn_connect_failed(c, msg);
		return;
	}
	if (mc->status != 200) {
		response_error(mc, why, sizeof(why));
		snprintf(msg, sizeof(msg), "could not connect to the database: "
		    "%s", why);
		dc_conn_connect_failed(c, msg);
		return;
	}
	/* "0\n", "1\n" or "2\n" after the names and types lines */
	mc->profile_ro = 0;
	if (mc->errtext != NULL) {
		char *v;

		while (mc->errlen > 0 && mc->errtext[mc->errlen - 1] == '\n')
			mc->errtext[--mc->errlen] = '\0';
		v = strrchr(mc->errtext, '\n');
		mc->profile_ro = atoi(v != NULL ? v + 1 : mc->errtext);
	}
	dc_conn_ready(c);
}

/*
 * The settings a job passes, by what the user's profile allows (see the
 * top of the file).
 */
static void
job_params(struct chconn *mc, const struct dc_job *j, char *out,
    size_t outsz)
{
	const struct dc_config *cfg = mc->c.w->cfg;
	int secs = (cfg->statement_timeout + 999) / 1000;
	size_t n;

	n = (size_t)snprintf(out, outsz, "&query_id=%s", mc->query_id);
	if (mc->profile_ro == 1 || n >= outsz)
		return;
	n += (size_t)snprintf(out + n, outsz - n, "%s&max_execution_time=%d",
	    mc->profile_ro == 0 ? "&readonly=1" : "", secs);
	if (j->kind == DC_JOB_READ && j->max_rows > 0 && n < outsz)
		snprintf(out + n, outsz - n, "&max_result_rows=%d"
		    "&result_overflow_mode=break", j->max_rows + 1);
}

static int
ch_submit(struct dc_conn *c, struct dc_job *j)
{
	struct chconn *mc = chconn(c);
	char params[200];
	uint8_t id[16];

	/* one at a time: the pool only pipelines DC_DRV_PIPELINE drivers */
	if (j->kind == DC_JOB_SYSDB || c->njobs != 1 || mc->op != OP_NONE)
		return DC_ERR;
	free(mc->sql);
	mc->sql = j->nparams[0] > 0 ? dc_ch_bind(j->sql[0], j->nparams[0],
	    (const char *const *)j->params[0]) : strdup(j->sql[0]);
	if (mc->sql == NULL || dc_uuid_generate(id) != DC_OK)
		return DC_ERR;
	dc_uuid_format(id, mc->query_id);
	dc_ch_tsv_reset(&mc->tsv);
	mc->tsv.max_rows = j->kind == DC_JOB_READ ? j->max_rows : 0;
	job_params(mc, j, params, sizeof(params));
	mc->maybe_running = 1;
	/* curl's timeout backs the server's, which is whole seconds */
	return request(mc, OP_QUERY, params, mc->sql,
	    (long)c->w->cfg->statement_timeout + 250L);
}

/* The job's answer is complete (rows, or dc_job_fail): hand it back. */
static void
job_end(struct chconn *mc)
{
	struct dc_job *j = mc->c.job;

	mc->op = OP_NONE;
	free(mc->sql);
	mc->sql = NULL;
	if (!dc_job_failed(j)) {
		j->rows = mc->tsv.rows;
		mc->tsv.rows = NULL;
	}
	dc_ch_tsv_reset(&mc->tsv);
	dc_conn_job_done(&mc->c, 0);
}

static void
job_error(struct chconn *mc, struct dc_job *j, int code, const char *msg)
{
	int status = DC_ERR, flags = 0;

	if (code == CH_TIMEOUT_EXCEEDED)
		status = DC_ETIMEOUT;
	else if (code == CH_UNKNOWN_TABLE || code == CH_UNKNOWN_DATABASE)
		flags = DC_JOBF_NO_TABLE;
	dc_job_fail(j, status, flags, msg, NULL);
}

/* A job's request ended. */
static void
query_done(struct chconn *mc, CURLcode res)
{
	struct dc_conn *c = &mc->c;
	struct dc_job *j = c->job;
	char msg[512], why[512];
	int code, rc;

	assert(j != NULL);
	if (res == CURLE_WRITE_ERROR && mc->tsv.capped) {
		/* cut past the cap: answered, the statement stopped */
		mc->op = OP_NONE;
		j->rows = mc->tsv.rows;
		mc->tsv.rows = NULL;
		dc_conn_answer_and_close(c);
		return;
	}
	if (res == CURLE_OPERATION_TIMEDOUT) {
		kill_query(mc);
		dc_job_fail(j, DC_ETIMEOUT, 0, "canceling statement due to "
		    "statement timeout", NULL);
		job_end(mc);
		return;
	}
	if (res == CURLE_WRITE_ERROR) {
		/* we refused the response: out of memory, or not TSV */
		kill_query(mc);
		dc_job_fail(j, DC_ERR, 0, mc->tsv.error[0] != '\0' ?
		    mc->tsv.error : "the response could not be read", NULL);
		job_end(mc);
		return;
	}
	if (res != CURLE_OK) {
		/* the connection failed under the job: the pool retries it */
		mc->op = OP_NONE;
		snprintf(why, sizeof(why), "%s", mc->errbuf[0] != '\0' ?
		    mc->errbuf : curl_easy_strerror(res));
		dc_conn_scrub(c, "", why, msg, sizeof(msg));
		dc_conn_broken(c, msg);
		return;
	}
	mc->maybe_running = 0;
	j->answered = 1;
	if (mc->status != 200) {
		code = response_error(mc, msg, sizeof(msg));
		job_error(mc, j, code, msg);
		job_end(mc);
		return;
	}
	if (!mc->started) {
		/* 200 and no body at all: a statement without a result */
		mc->ctype_ok = 1;
	}
	if (!mc->ctype_ok && mc->started) {
		dc_job_fail(j, DC_ERR, 0, "the server answered in another "
		    "format than " CH_FORMAT, NULL);
		job_end(mc);
		return;
	}
	switch ((rc = dc_ch_tsv_end(&mc->tsv))) {
	case DC_OK:
		break;
	case DC_ERR:
		dc_conn_scrub(c, "", mc->tsv.error, msg, sizeof(msg));
		job_error(mc, j, mc->tsv.code, msg);
		break;
	default:
		dc_job_fail(j, DC_ERR, 0, rc == DC_ENOMEM ? "out of memory" :
		    mc->tsv.error, NULL);
		break;
	}
	job_end(mc);
}

/*
 * A request ended (curlev.h: from the loop, outside curl's callbacks).
 * What follows may close c: nothing touches it after the dc_conn_* call.
 */
static void
ch_done(struct dc_curl_xfer *x, CURLcode res)
{
	struct chconn *mc = (struct chconn *)(void *)((char *)x -
	    offsetof(struct chconn, x));

	if (mc->op == OP_SETUP)
		setup_done(mc, res);
	else if (mc->op == OP_QUERY)
		query_done(mc, res);
}

/*
 * Nothing to watch: curl watches the sockets (curlev.h) and ch_done()
 * reports.  The pool calls this only for a watch the driver asked for.
 */
static void
ch_io(struct dc_conn *c, short what)
{
}

static void
ch_abort(struct dc_conn *c)
{
	kill_query(chconn(c));
}

static void
ch_close(struct dc_conn *c)
{
	struct chconn *mc = chconn(c);

	if (mc->x.easy != NULL) {
		/* a request in flight: its connection is closed, not reused */
		dc_curlev_remove(c->w->curl, &mc->x);
		curl_easy_cleanup(mc->x.easy);
		mc->x.easy = NULL;
	}
	curl_slist_free_all(mc->headers);
	curl_slist_free_all(mc->connect_to);
	mc->headers = mc->connect_to = NULL;
	free(mc->sql);
	free(mc->errtext);
	mc->sql = mc->errtext = NULL;
	dc_ch_tsv_reset(&mc->tsv);
	dc_explicit_bzero(&mc->srv, sizeof(mc->srv));
}

static const char *
ch_error(const struct dc_conn *c)
{
	const struct chconn *mc = (const struct chconn *)c;

	return mc->errbuf[0] != '\0' ? mc->errbuf : "request failed";
}

static int
ch_start(struct dc_pool *p, void **state)
{
	struct chdrv *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return DC_ENOMEM;
	d->w = dc_pool_worker(p);
	*state = d;
	return DC_OK;
}

static void
ch_stop(void *state)
{
	struct chdrv *d = state;

	while (d->killers != NULL)
		killer_free(d->killers);
	free(d);
}

const struct dc_driver dc_driver_clickhouse = {
	.type = "clickhouse",
	.caps = 0,
	.dialect = &ch_dialect,
	.conn_size = sizeof(struct chconn),
	.job_size = 0,
	.url_host = ch_url_host,
	.connect = ch_connect,
	.io = ch_io,
	.submit = ch_submit,
	.abort = ch_abort,
	.close = ch_close,
	.error = ch_error,
	.start = ch_start,
	.stop = ch_stop,
};
