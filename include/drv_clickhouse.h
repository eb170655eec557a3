/*
 * drv_clickhouse.h - the ClickHouse driver (src/drivers/clickhouse/):
 * ClickHouse's HTTP interface through the worker's libcurl multi handle
 * (curlev.h), results read as they stream in TabSeparatedWithNamesAndTypes.
 * Only the driver table (drivers.c) and the driver's own tests include
 * this.
 */
#ifndef DC_DRV_CLICKHOUSE_H
#define DC_DRV_CLICKHOUSE_H

#include <stddef.h>

struct dc_driver;
struct dc_rows;
struct dc_cell;

extern const struct dc_driver dc_driver_clickhouse;

/* A clickhouse:// URL taken apart; the password is a secret. */
struct dc_ch_url {
	char		 host[256];	/* name or address, no brackets */
	unsigned int	 port;
	char		 user[128];
	char		 password[256];
	char		 db[128];
	int		 tls;		/* https */
	int		 verify;	/* check the server's certificate */
};

/*
 * Parse url the way DataChat's connector reads it (clickhouse[+driver]://
 * [user[:password]@]host[:port][/db], user "default", database "default",
 * port 8123, or 8443 over TLS), percent-decoded, with TLS when the scheme
 * is clickhouses:// or clickhouse+https://, or the query parameter secure
 * is true; verify=false accepts any certificate.  0, or DC_EINVAL with
 * err saying why (never the password).
 */
int		 dc_ch_url_parse(const char *url, struct dc_ch_url *u, char *err,
		     size_t errsz);

/*
 * sql with each $1..$9 replaced by params[i - 1] as a literal
 * (unhex('...'), which reads the same whatever the bytes), NULL for a
 * NULL param.  Only for the dialect's own statements.  Malloc'ed, NULL
 * when out of memory or a $n has no param.
 */
char		*dc_ch_bind(const char *sql, int nparams,
		     const char *const *params);

/* The neutral type (rows.h) of a ClickHouse type name. */
int		 dc_ch_vtype(const char *type);
unsigned	 dc_ch_vflags(const char *type);

/*
 * The text of a ClickHouse exception ("Code: 60, e.displayText() =
 * DB::Exception: ..., e.what() = DB::Exception") as one line in
 * ClickHouse's later spelling ("Code: 60. DB::Exception: ...").  Returns
 * the code, or 0 when text is not an exception (out is then text, cut).
 */
int		 dc_ch_error(const char *text, size_t len, char *out,
		     size_t outsz);

/*
 * A TabSeparatedWithNamesAndTypes response read as it arrives: the names
 * line, the types line, then one row per line (\N is NULL, backslash
 * escapes undone).  When the server fails after it began to answer, it
 * appends its exception to the rows it sent ("Code: ..."), which ends
 * the stream here as an error.  Zero it, set max_rows, feed it, end it.
 */
struct dc_ch_tsv {
	struct dc_rows	*rows;		/* the result (take it: set NULL) */
	int		 max_rows;	/* keep max_rows + 1 rows (0: all) */
	int		 capped;	/* max_rows + 1 kept, and more came */
	size_t		 past_cap;	/* bytes that came after */
	int		 code;		/* the server's exception code */
	char		 error[512];	/* what went wrong, one line */

	/* private */
	int		 line;		/* lines read: 0 names, 1 types, rows */
	char		*buf;		/* the line being read */
	size_t		 len, cap;
	char		*names;		/* the names line, until the types */
	size_t		 nameslen;
	int		*flags;		/* per column */
	struct dc_cell	*cells;
	char		*tail;		/* what may be the server's exception */
	size_t		 tlen, tcap;
	int		 in_tail;
	int		 replay;	/* reading the tail back as rows */
};

/*
 * Feed len bytes.  0; DC_ENOMEM; DC_EINVAL when the response is not
 * what was asked for (error says what).
 */
int		 dc_ch_tsv_feed(struct dc_ch_tsv *p, const char *data,
		     size_t len);

/*
 * The response ended.  0 (rows complete, or capped); DC_ERR when it
 * ended with the server's exception (code, error); DC_EINVAL when it
 * ended in the middle of a row; DC_ENOMEM.
 */
int		 dc_ch_tsv_end(struct dc_ch_tsv *p);

/* Free what p holds (rows too, unless taken); p can be fed again. */
void		 dc_ch_tsv_reset(struct dc_ch_tsv *p);

#endif /* DC_DRV_CLICKHOUSE_H */
