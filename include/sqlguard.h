/*
 * sqlguard.h - the lexical guard in front of every statement sent to a
 * target.  It admits exactly one statement of a read-only kind and says
 * why it refused anything else.  It is the first of two walls: the
 * statement also runs in a READ ONLY transaction, so the guard only has to
 * be strict, not complete.
 *
 * It tokenises SQL the way PostgreSQL does for the parts that matter:
 * '...' strings (with '' escapes), E'...' strings (with backslash escapes),
 * "..." identifiers, $tag$...$tag$ dollar quotes, -- line comments and
 * nested slash-star comments.  Keywords inside any of those are not
 * keywords.
 */
#ifndef DC_SQLGUARD_H
#define DC_SQLGUARD_H

#include <stddef.h>

enum dc_sql_kind {
	DC_SQL_SELECT = 1,	/* SELECT, WITH ... SELECT, VALUES, TABLE */
	DC_SQL_EXPLAIN,		/* EXPLAIN of one of those (not ANALYZE of a write) */
	DC_SQL_SHOW,
};

struct dc_sql_verdict {
	int		 ok;		/* 1 admitted, 0 refused */
	int		 kind;		/* enum dc_sql_kind when ok */
	char		 reason[400];	/* why refused, for a 400 detail */
	size_t		 len;		/* statement length without a trailing ';' */
};

/*
 * Check sql (len bytes, need not be NUL terminated).  Fills v and returns
 * 0 when admitted, DC_EINVAL when refused.
 */
int		 dc_sql_guard(const char *sql, size_t len,
		     struct dc_sql_verdict *v);

/*
 * The same for MySQL/MariaDB (drivers/mysql): MySQL's lexical rules
 * ('...' and "..." strings with backslash escapes, `...` names, # and
 * "-- " comments, unnested slash-star comments, executable comments
 * slash-star-bang read as code, no optimizer hints), DESCRIBE, no INTO
 * (OUTFILE, DUMPFILE, @variables), no := assignments, no locking reads,
 * no functions that read files, take named locks or move sequences.
 * The statement must pass under every sql_mode reading of its quotes.
 */
int		 dc_sql_guard_mysql(const char *sql, size_t len,
		     struct dc_sql_verdict *v);

/*
 * The same for ClickHouse (drivers/clickhouse): '...' strings and
 * "..." and `...` names with backslash escapes, -- and unnested
 * slash-star comments; '#', '$' and a slash-star inside a comment
 * refused (later servers read them otherwise); SELECT, WITH, DESCRIBE,
 * EXISTS and SHOW; no INTO, FORMAT or SETTINGS clause, no quoted function
 * names, no table functions that reach files, the network or other
 * servers (url, file, remote, s3, mysql, ...).
 */
int		 dc_sql_guard_clickhouse(const char *sql, size_t len,
		     struct dc_sql_verdict *v);

/* 1 when s is a plain identifier we are willing to quote (table, schema). */
int		 dc_sql_ident_ok(const char *s);

#endif /* DC_SQLGUARD_H */
