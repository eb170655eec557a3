/*
 * sqlguard.c - the lexical guard in front of every statement sent to a
 * target.  It admits exactly one statement of a read-only kind (SELECT,
 * WITH ... SELECT, VALUES, TABLE, EXPLAIN of those, SHOW; for MySQL also
 * DESCRIBE) and refuses anything else with a reason short enough for a
 * 400 detail.  It is the guard of engines that have no parser library.
 *
 * It does not parse SQL.  It tokenises it the way PostgreSQL's scan.l does
 * for everything that can hide a keyword or a semicolon: '...' strings and
 * their quote continuation across newlines, E'...', B'...', X'...' and
 * U&'...' strings, "..." and U&"..." identifiers, $tag$ dollar quotes,
 * -- comments and nested slash-star comments.  On the tokens it looks at a
 * few patterns: the first word, the first word of every parenthesised
 * group (a CTE body), the main statement of every WITH, INTO, FOR
 * UPDATE/SHARE, and calls of functions that read server files or change
 * session or server state.  A server with standard_conforming_strings off
 * reads a backslash in '...' as an escape, so every statement is checked
 * under both settings and must pass both.  The statement then runs in a
 * READ ONLY transaction: the guard is strict rather than complete.
 *
 * ClickHouse's reading (dc_sql_guard_clickhouse): '...' strings and
 * "..." and `...` names all with backslash escapes, -- comments and
 * slash-star comments.  What newer servers read differently from 18.16
 * is refused rather than guessed: a slash-star inside a comment (nesting
 * came later), '#' comments and '$' heredocs outside quotes.  It also
 * refuses table functions that reach files, the network or other
 * servers, quoted function names, FORMAT and SETTINGS clauses.  The
 * statement then runs with readonly=1 (drivers/clickhouse).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dc.h"
#include "sqlguard.h"

#define GUARD_MAX_DEPTH	256	/* parenthesis nesting we follow */
#define GUARD_NAME_MAX	63	/* NAMEDATALEN - 1 */
#define GUARD_SHOW_MAX	32	/* bytes of a name quoted in a reason */

#define READ_ONLY_KINDS	"only read-only queries (SELECT, WITH ... SELECT, " \
			"VALUES, TABLE, EXPLAIN, SHOW) are allowed"
#define READ_ONLY_KINDS_MY "only read-only queries (SELECT, WITH ... " \
			"SELECT, VALUES, TABLE, EXPLAIN, DESCRIBE, SHOW) are " \
			"allowed"
#define READ_ONLY_KINDS_CH "only read-only queries (SELECT, WITH ... " \
			"SELECT, DESCRIBE, EXISTS, SHOW) are allowed"

enum tok_type {
	TOK_EOF = 0,
	TOK_WORD,		/* identifier or keyword, unquoted */
	TOK_QIDENT,		/* "..." or U&"..." [UESCAPE 'c'] */
	TOK_STRING,		/* any string constant, dollar quotes too */
	TOK_NUMBER,
	TOK_PARAM,		/* $1 */
	TOK_OP,			/* one punctuation character, or ".." */
};

/* How the body of a string constant is read. */
enum quote_mode {
	Q_PLAIN,		/* '' doubles a quote, backslash is a byte */
	Q_ESC,			/* E'...': backslash escapes the next byte */
	Q_BIT,			/* B'...', X'...': no escapes at all */
};

struct tok {
	int		 type;
	const char	*p;		/* first byte, inside the statement */
	size_t		 len;
	char		 esc;		/* TOK_QIDENT: U& escape, 0 for "..." */
	char		 q;		/* TOK_QIDENT: its quote, '"' or '`' */
};

struct lexer {
	const char	*s;
	size_t		 len;
	size_t		 pos;
	int		 scs;		/* standard_conforming_strings */
	const char	*err;		/* why lex_next failed */
	/* MySQL's rules (dc_sql_guard_mysql) */
	int		 my;
	int		 ansi;		/* ANSI_QUOTES: "..." is a name */
	int		 exec;		/* inside an executable comment */
	size_t		 exec_end;	/* after the last one's closing */
	/* ClickHouse's rules (dc_sql_guard_clickhouse) */
	int		 ch;
};

/* What the scan knows about one level of parentheses. */
struct group {
	unsigned char	 first;		/* the next token is its first */
	unsigned char	 with;		/* it holds a WITH query */
	unsigned char	 main;		/* that query's main statement began */
};

/*
 * Functions a read-only query must not call: they change session or
 * server state, read server files or run SQL given as a string.  A prefix
 * entry also covers every name that starts with it.
 */
static const struct {
	const char	*name;
	int		 prefix;
} guard_bad_funcs[] = {
	{ "set_config", 0 },
	{ "pg_terminate_backend", 0 },
	{ "pg_cancel_backend", 0 },
	{ "pg_reload_conf", 0 },
	{ "pg_rotate_logfile", 0 },
	{ "pg_read_file", 0 },
	{ "pg_read_binary_file", 0 },
	{ "pg_stat_file", 0 },
	{ "pg_ls_", 1 },
	{ "pg_logdir_ls", 0 },
	{ "pg_file_", 1 },
	{ "lo_import", 0 },
	{ "lo_export", 0 },
	{ "lo_create", 0 },
	{ "lo_creat", 0 },
	{ "lo_unlink", 0 },
	{ "lo_put", 0 },
	{ "lo_from_bytea", 0 },
	{ "lo_truncate", 1 },
	{ "lowrite", 0 },
	{ "dblink", 1 },
	{ "query_to_xml", 1 },
	{ "cursor_to_xml", 1 },
	{ "pg_advisory_lock", 1 },
	{ "pg_try_advisory_lock", 1 },
	{ "pg_notify", 0 },
	{ "nextval", 0 },
	{ "setval", 0 },
	{ "pg_stat_reset", 1 },
	{ "pg_switch_wal", 0 },
	{ "pg_switch_xlog", 0 },
	{ "pg_create_", 1 },
	{ "pg_drop_replication_slot", 0 },
	{ "pg_copy_", 1 },
	{ "pg_replication_origin_", 1 },
	{ "pg_replication_slot_advance", 0 },
	{ "pg_logical_slot_", 1 },
	{ "pg_logical_emit_message", 0 },
	{ "pg_promote", 0 },
	{ "pg_wal_replay_", 1 },
	{ "pg_backup_", 1 },
	{ "pg_start_backup", 0 },
	{ "pg_stop_backup", 0 },
	{ "pg_import_system_collations", 0 },
};

/*
 * MySQL's: read server files, take locks that outlive the transaction,
 * wait on replication, run programs (lib_mysqludf_sys), move sequences.
 */
static const struct {
	const char	*name;
	int		 prefix;
} guard_bad_funcs_my[] = {
	{ "load_file", 0 },
	{ "get_lock", 0 },
	{ "release_lock", 0 },
	{ "release_all_locks", 0 },
	{ "master_pos_wait", 0 },
	{ "source_pos_wait", 0 },
	{ "master_gtid_wait", 0 },
	{ "wait_for_executed_gtid_set", 0 },
	{ "wait_until_sql_thread_after_gtids", 0 },
	{ "sys_", 1 },
	{ "nextval", 0 },
	{ "setval", 0 },
};

/*
 * ClickHouse's table functions (and the scalar file()) that read files,
 * reach the network or other servers, or run programs.  readonly=1
 * refuses every table function; a user whose profile says readonly=2
 * would be allowed them.  Case does not matter here (stricter than the
 * server, where most of these names are case-sensitive).
 */
static const struct {
	const char	*name;
	int		 prefix;
} guard_bad_funcs_ch[] = {
	{ "url", 0 },
	{ "urlcluster", 0 },
	{ "file", 0 },
	{ "filecluster", 0 },
	{ "remote", 0 },
	{ "remotesecure", 0 },
	{ "cluster", 0 },
	{ "clusterallreplicas", 0 },
	{ "s3", 1 },
	{ "gcs", 0 },
	{ "cosn", 0 },
	{ "oss", 0 },
	{ "hdfs", 1 },
	{ "hive", 0 },
	{ "mysql", 0 },
	{ "postgresql", 0 },
	{ "odbc", 0 },
	{ "jdbc", 0 },
	{ "sqlite", 0 },
	{ "mongodb", 0 },
	{ "redis", 0 },
	{ "executable", 1 },
	{ "input", 0 },
	{ "azure", 1 },
	{ "deltalake", 1 },
	{ "hudi", 1 },
	{ "iceberg", 1 },
	{ "paimon", 1 },
	{ "arrowflight", 1 },
	{ "ytsaurus", 1 },
};

static const char *const query_words[] = {
	"select", "values", "table", "with", NULL
};
static const char *const main_words[] = {
	"select", "values", "table", NULL
};
static const char *const dml_words[] = {
	"insert", "update", "delete", "merge", NULL
};
static const char *const dml_words_my[] = {
	"insert", "update", "delete", "replace", NULL
};
static const char *const dml_words_ch[] = {
	"insert", "update", "delete", "alter", NULL
};
/* What DESCRIBE t must not take for a table name. */
static const char *const not_tables_my[] = {
	"insert", "update", "delete", "replace", "load", "call", "set", "do",
	"for", "handler", NULL
};

static int	 refuse(struct dc_sql_verdict *, const char *, ...)
		     DC_PRINTF(2, 3);

static int
refuse(struct dc_sql_verdict *v, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
	va_end(ap);
	v->ok = 0;
	return -1;
}

/* Character classes of scan.l, ASCII only so no locale can change them. */
static int
is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
	    c == '\f' || c == '\v';
}

static int
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static int
is_hex(unsigned char c)
{
	return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

static int
is_ident_start(unsigned char c)
{
	return ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c == '_' ||
	    c >= 0x80;
}

static int
is_ident_cont(unsigned char c)
{
	return is_ident_start(c) || is_digit(c) || c == '$';
}

static unsigned char
to_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/*
 * The byte at i, 0 past the end.  dc_sql_guard refuses NUL bytes before
 * lexing, so 0 always means the end.
 */
static unsigned char
at(const struct lexer *lx, size_t i)
{
	return i < lx->len ? (unsigned char)lx->s[i] : 0;
}

static size_t
line_end(const struct lexer *lx, size_t i)
{
	while (at(lx, i) != 0 && at(lx, i) != '\n' && at(lx, i) != '\r')
		i++;
	return i;
}

/*
 * MySQL's comments: # to the end of the line; -- only when a space or a
 * control character follows ("1--1" is arithmetic); slash-star comments
 * end at the first star-slash (no nesting); and executable comments,
 * slash-star-bang (or slash-star-M-bang) with an optional version
 * number, whose content MySQL runs as code whatever the version says:
 * their markers are blanks here and what is between them is lexed.
 * Optimizer hints (slash-star-plus) can change settings such as the
 * statement timeout for one statement: refused.  Returns the index after
 * the comment or marker at i, i when there is none, BLANK_ERR with
 * lx->err set when malformed.
 */
#define BLANK_ERR	((size_t)-1)

static size_t
blank_my(struct lexer *lx, size_t i)
{
	unsigned char	 c = at(lx, i), d = at(lx, i + 1);
	size_t		 j;

	if (c == '#')
		return line_end(lx, i);
	if (c == '-' && d == '-' && (at(lx, i + 2) == 0 ||
	    at(lx, i + 2) <= ' ' || at(lx, i + 2) == 0x7f))
		return line_end(lx, i);
	if (c == '*' && d == '/' && lx->exec) {
		lx->exec = 0;
		lx->exec_end = i + 2;
		return i + 2;
	}
	if (c != '/' || d != '*')
		return i;
	j = i + 2;
	if (at(lx, j) == 'M' && at(lx, j + 1) == '!')
		j++;
	if (at(lx, j) == '!') {
		if (lx->exec) {
			lx->err = "nested executable comment";
			return BLANK_ERR;
		}
		for (j++; is_digit(at(lx, j)); j++)
			;
		lx->exec = 1;
		return j;
	}
	if (at(lx, j) == '+') {
		lx->err = "optimizer hints (/*+ ... */) are not allowed";
		return BLANK_ERR;
	}
	for (;; j++) {
		if (at(lx, j) == 0) {
			lx->err = "unterminated /* comment";
			return BLANK_ERR;
		}
		if (at(lx, j) == '*' && at(lx, j + 1) == '/')
			return j + 2;
	}
}

/* Skip whitespace, -- comments and nested slash-star comments. */
static int
lex_blank(struct lexer *lx)
{
	size_t	 i = lx->pos, j;
	int	 depth;

	for (;;) {
		if (lx->my) {
			if (is_space(at(lx, i))) {
				i++;
				continue;
			}
			if ((j = blank_my(lx, i)) == BLANK_ERR)
				return -1;
			if (j == i)
				break;
			i = j;
			continue;
		}
		if (is_space(at(lx, i)))
			i++;
		else if (at(lx, i) == '-' && at(lx, i + 1) == '-')
			i = line_end(lx, i);
		else if (lx->ch && at(lx, i) == '/' && at(lx, i + 1) == '*') {
			/* 18.16 does not nest them, later servers do */
			for (i += 2;; i++) {
				if (at(lx, i) == 0) {
					lx->err = "unterminated /* comment";
					return -1;
				}
				if (at(lx, i) == '/' && at(lx, i + 1) == '*') {
					lx->err = "/* inside a comment is not "
					    "allowed";
					return -1;
				}
				if (at(lx, i) == '*' && at(lx, i + 1) == '/') {
					i += 2;
					break;
				}
			}
		} else if (at(lx, i) == '/' && at(lx, i + 1) == '*') {
			i += 2;
			for (depth = 1; depth > 0; ) {
				if (at(lx, i) == 0) {
					lx->err = "unterminated /* comment";
					return -1;
				}
				if (at(lx, i) == '/' && at(lx, i + 1) == '*') {
					depth++;
					i += 2;
				} else if (at(lx, i) == '*' &&
				    at(lx, i + 1) == '/') {
					depth--;
					i += 2;
				} else
					i++;
			}
		} else
			break;
	}
	lx->pos = i;
	return 0;
}

/*
 * scan.l's quotecontinue: after a closing quote, whitespace holding a
 * newline (and -- comments) then another quote continues the same string,
 * read the same way.  Returns the index after that quote, or 0.
 */
static size_t
quote_continue(const struct lexer *lx, size_t i)
{
	for (;;) {
		if (at(lx, i) == ' ' || at(lx, i) == '\t' || at(lx, i) == '\f')
			i++;
		else if (at(lx, i) == '-' && at(lx, i + 1) == '-')
			i = line_end(lx, i);
		else
			break;
	}
	if (at(lx, i) != '\n' && at(lx, i) != '\r')
		return 0;
	for (i++;;) {
		if (is_space(at(lx, i)))
			i++;
		else if (at(lx, i) == '-' && at(lx, i + 1) == '-') {
			i = line_end(lx, i);
			if (at(lx, i) == 0)
				return 0;
			i++;
		} else
			break;
	}
	return at(lx, i) == '\'' ? i + 1 : 0;
}

/* A string constant whose body starts at i; read the way mode says. */
static int
lex_string(struct lexer *lx, size_t i, enum quote_mode mode)
{
	size_t		 next;
	unsigned char	 c;

	for (;;) {
		c = at(lx, i);
		if (c == 0) {
			lx->err = "unterminated quoted string";
			return -1;
		}
		if (c == '\\' && mode == Q_ESC) {
			if (at(lx, i + 1) == 0) {
				lx->err = "unterminated quoted string";
				return -1;
			}
			i += 2;
		} else if (c == '\'' && mode != Q_BIT && at(lx, i + 1) == '\'')
			i += 2;
		else if (c == '\'') {
			if ((next = quote_continue(lx, i + 1)) == 0)
				break;
			i = next;
		} else
			i++;
	}
	lx->pos = i + 1;
	return 0;
}

/*
 * MySQL's quoted text whose body starts at i: '...' and "..." strings
 * (backslash escapes the next byte unless NO_BACKSLASH_ESCAPES, esc 0),
 * `...` names and ANSI_QUOTES "..." names (no escapes); a doubled quote
 * stands for itself.
 */
static int
lex_quoted_my(struct lexer *lx, size_t i, char quote, int esc)
{
	for (;;) {
		if (at(lx, i) == 0) {
			lx->err = quote == '`' ? "unterminated quoted identifier" :
			    "unterminated quoted string";
			return -1;
		}
		if (esc && at(lx, i) == '\\') {
			if (at(lx, i + 1) == 0) {
				lx->err = "unterminated quoted string";
				return -1;
			}
			i += 2;
		} else if (at(lx, i) == (unsigned char)quote &&
		    at(lx, i + 1) == (unsigned char)quote)
			i += 2;
		else if (at(lx, i) == (unsigned char)quote)
			break;
		else
			i++;
	}
	lx->pos = i + 1;
	return 0;
}

/* A quoted identifier whose body starts at i. */
static int
lex_qident(struct lexer *lx, size_t i)
{
	for (;;) {
		if (at(lx, i) == 0) {
			lx->err = "unterminated quoted identifier";
			return -1;
		}
		if (at(lx, i) == '"' && at(lx, i + 1) == '"')
			i += 2;
		else if (at(lx, i) == '"')
			break;
		else
			i++;
	}
	lx->pos = i + 1;
	return 0;
}

/* $tag$...$tag$, a $1 parameter, or a lone '$'. */
static int
lex_dollar(struct lexer *lx, struct tok *t)
{
	const char	*end;
	size_t		 i = lx->pos, j = i + 1, taglen;

	if (is_ident_start(at(lx, j)))
		while (is_ident_start(at(lx, j)) || is_digit(at(lx, j)))
			j++;
	if (at(lx, j) == '$') {
		taglen = j - i + 1;
		end = memmem(lx->s + j + 1, lx->len - (j + 1), lx->s + i,
		    taglen);
		if (end == NULL) {
			lx->err = "unterminated dollar-quoted string";
			return -1;
		}
		t->type = TOK_STRING;
		lx->pos = (size_t)(end - lx->s) + taglen;
	} else if (is_digit(at(lx, i + 1))) {
		for (j = i + 1; is_digit(at(lx, j)); j++)
			;
		t->type = TOK_PARAM;
		lx->pos = j;
	} else {
		t->type = TOK_OP;
		lx->pos = i + 1;
	}
	return 0;
}

/*
 * A number, ending where the shortest reading of any PostgreSQL version
 * ends it: what follows (1for, 0xFINTO) is lexed as a word of its own.
 */
static void
lex_number(struct lexer *lx)
{
	size_t		 i = lx->pos;
	unsigned char	 b = at(lx, i + 1) | 0x20;

	if (at(lx, i) == '0' && (b == 'x' || b == 'o' || b == 'b')) {
		for (i += 2;; i++) {
			if (at(lx, i) == '_' ||
			    (b == 'x' && is_hex(at(lx, i))) ||
			    (b == 'o' && at(lx, i) >= '0' && at(lx, i) <= '7') ||
			    (b == 'b' && (at(lx, i) == '0' || at(lx, i) == '1')))
				continue;
			break;
		}
		lx->pos = i;
		return;
	}
	while (is_digit(at(lx, i)) || at(lx, i) == '_')
		i++;
	if (at(lx, i) == '.' && at(lx, i + 1) != '.')
		for (i++; is_digit(at(lx, i)) || at(lx, i) == '_'; i++)
			;
	if ((at(lx, i) | 0x20) == 'e' && (is_digit(at(lx, i + 1)) ||
	    ((at(lx, i + 1) == '+' || at(lx, i + 1) == '-') &&
	    is_digit(at(lx, i + 2)))))
		for (i += 2; is_digit(at(lx, i)) || at(lx, i) == '_'; i++)
			;
	lx->pos = i;
}

static int	 lex_next(struct lexer *, struct tok *);
static int	 tok_is(const struct tok *, const char *);

/*
 * U&"..." may be followed by UESCAPE 'c', which changes its escape
 * character: take it into the identifier's token so a call of it is seen.
 */
static void
lex_uescape(struct lexer *lx, struct tok *t)
{
	struct lexer	 c = *lx;
	struct tok	 kw, str;

	t->esc = '\\';
	if (lex_next(&c, &kw) == -1 || !tok_is(&kw, "uescape"))
		return;
	if (lex_next(&c, &str) == -1 || str.type != TOK_STRING ||
	    str.len != 3 || str.p[0] != '\'')
		return;
	t->esc = str.p[1];
	lx->pos = c.pos;
}

/* The next token, TOK_EOF at the end; -1 with lx->err when malformed. */
static int
lex_next(struct lexer *lx, struct tok *t)
{
	size_t		 i;
	unsigned char	 c, d, l;
	int		 rc = 0;

	memset(t, 0, sizeof(*t));
	if (lex_blank(lx) == -1)
		return -1;
	i = lx->pos;
	c = at(lx, i);
	d = at(lx, i + 1);
	l = to_lower(c);
	t->p = lx->s + i;
	t->type = TOK_STRING;
	if (lx->ch) {
		if (c == '\'')
			rc = lex_quoted_my(lx, i + 1, (char)c, 1);
		else if (c == '`' || c == '"') {
			t->type = TOK_QIDENT;
			t->q = (char)c;
			rc = lex_quoted_my(lx, i + 1, (char)c, 1);
		} else if (c == '#' || c == '$') {
			/* comments and heredocs of later servers */
			lx->err = c == '#' ? "'#' is not allowed outside quotes" :
			    "'$' is not allowed outside quotes";
			return -1;
		} else
			goto common;
		t->len = lx->pos - i;
		return rc;
	}
	if (lx->my) {
		if (c == 0 && lx->exec) {
			lx->err = "unterminated /*! comment";
			return -1;
		}
		if (c == '\'' || (c == '"' && !lx->ansi))
			rc = lex_quoted_my(lx, i + 1, (char)c, !lx->scs);
		else if (c == '`' || c == '"') {
			t->type = TOK_QIDENT;
			t->q = (char)c;
			rc = lex_quoted_my(lx, i + 1, (char)c, 0);
		} else
			goto common;
		t->len = lx->pos - i;
		return rc;
	}
	if (c == 0)
		t->type = TOK_EOF;
	else if (c == '\'')
		rc = lex_string(lx, i + 1, lx->scs ? Q_PLAIN : Q_ESC);
	else if (l == 'e' && d == '\'')
		rc = lex_string(lx, i + 2, Q_ESC);
	else if ((l == 'b' || l == 'x') && d == '\'')
		rc = lex_string(lx, i + 2, Q_BIT);
	else if (l == 'u' && d == '&' && at(lx, i + 2) == '\'')
		rc = lex_string(lx, i + 3, Q_PLAIN);
	else if (l == 'u' && d == '&' && at(lx, i + 2) == '"') {
		t->type = TOK_QIDENT;
		if ((rc = lex_qident(lx, i + 3)) == 0)
			lex_uescape(lx, t);
	} else if (c == '"') {
		t->type = TOK_QIDENT;
		rc = lex_qident(lx, i + 1);
	} else if (c == '$')
		rc = lex_dollar(lx, t);
	else
		goto common;
	t->len = lx->pos - (size_t)(t->p - lx->s);
	return rc;
common:
	/* what both dialects lex the same way */
	if (c == 0)
		t->type = TOK_EOF;
	else if (is_ident_start(c)) {
		t->type = TOK_WORD;
		for (i++; is_ident_cont(at(lx, i)); i++)
			if (lx->ch && at(lx, i) == '$') {
				lx->err = "'$' is not allowed outside quotes";
				return -1;
			}
		lx->pos = i;
	} else if (is_digit(c) || (c == '.' && is_digit(d))) {
		t->type = TOK_NUMBER;
		lex_number(lx);
	} else {
		/* ".." is one token, so the word after it is no column label. */
		t->type = TOK_OP;
		lx->pos = i + (c == '.' && d == '.' ? 2 : 1);
	}
	t->len = lx->pos - (size_t)(t->p - lx->s);
	return rc;
}

static int
next_tok(struct lexer *lx, struct tok *t, struct dc_sql_verdict *v)
{
	if (lex_next(lx, t) == -1)
		return refuse(v, "%s", lx->err);
	return 0;
}

/* t is the keyword kw (lower case), in any case. */
static int
tok_is(const struct tok *t, const char *kw)
{
	size_t	 i;

	if (t->type != TOK_WORD || t->len != strlen(kw))
		return 0;
	for (i = 0; i < t->len; i++)
		if (to_lower((unsigned char)t->p[i]) != (unsigned char)kw[i])
			return 0;
	return 1;
}

static int
tok_in(const struct tok *t, const char *const *kws)
{
	for (; *kws != NULL; kws++)
		if (tok_is(t, *kws))
			return 1;
	return 0;
}

static int
tok_op(const struct tok *t, char c)
{
	return t->type == TOK_OP && t->len == 1 && t->p[0] == c;
}

/*
 * Copy n bytes of src for a reason: at most GUARD_SHOW_MAX, printable
 * ASCII only (the reason ends up in JSON), upper case when asked.
 */
static void
show(char *dst, const char *src, size_t n, int upper)
{
	size_t		 i;
	unsigned char	 c;

	for (i = 0; i < n && i < GUARD_SHOW_MAX; i++) {
		c = (unsigned char)src[i];
		if (c < 0x20 || c > 0x7e)
			c = '?';
		else if (upper && c >= 'a' && c <= 'z')
			c -= 'a' - 'A';
		dst[i] = (char)c;
	}
	dst[i] = '\0';
}

static int
hex_value(const char *p, size_t n, unsigned long *out)
{
	size_t		 i;
	unsigned char	 c;

	*out = 0;
	for (i = 0; i < n; i++) {
		c = (unsigned char)p[i];
		if (!is_hex(c))
			return -1;
		*out = *out * 16 + (unsigned long)(is_digit(c) ? c - '0' :
		    (c | 0x20) - 'a' + 10);
	}
	return 0;
}

/*
 * The name a WORD or QIDENT token calls, as PostgreSQL looks it up:
 * words folded to lower case, "..." as written, U&"..." decoded (a
 * character past ASCII becomes 0x80, which no name we look for has), cut
 * at NAMEDATALEN - 1.  Its length, or -1 when PostgreSQL would reject it.
 */
static int
tok_name(const struct tok *t, char *buf)
{
	unsigned long	 cp;
	size_t		 i, n = 0, step;
	unsigned char	 c;

	if (t->type == TOK_WORD) {
		for (i = 0; i < t->len && n < GUARD_NAME_MAX; i++)
			buf[n++] = (char)to_lower((unsigned char)t->p[i]);
		return (int)n;
	}
	if (t->q != 0) {
		/* MySQL: doubled quotes; function names ignore case */
		for (i = 1; i < t->len; i++) {
			c = (unsigned char)t->p[i];
			if (c == (unsigned char)t->q) {
				if (i + 1 >= t->len || t->p[i + 1] != t->q)
					break;
				i++;
			}
			if (n < GUARD_NAME_MAX)
				buf[n++] = (char)to_lower(c);
		}
		return (int)n;
	}
	for (i = t->esc ? 3 : 1; i < t->len; i += step) {
		c = (unsigned char)t->p[i];
		step = 1;
		if (c == '"' && (i + 1 >= t->len || t->p[i + 1] != '"'))
			break;
		if (c == '"')
			step = 2;
		else if (t->esc && c == (unsigned char)t->esc) {
			if (i + 1 < t->len && t->p[i + 1] == t->esc)
				step = 2;
			else {
				if (i + 8 <= t->len && t->p[i + 1] == '+') {
					if (hex_value(t->p + i + 2, 6, &cp) == -1)
						return -1;
					step = 8;
				} else if (i + 5 > t->len ||
				    hex_value(t->p + i + 1, 4, &cp) == -1)
					return -1;
				else
					step = 5;
				if (cp == 0)
					return -1;
				c = cp < 0x80 ? (unsigned char)cp : 0x80;
			}
		}
		if (n < GUARD_NAME_MAX)
			buf[n++] = (char)c;
	}
	return (int)n;
}

static int
bad_function(const char *name, size_t n, int my, int ch)
{
	size_t	 i, l;

	if (ch) {
		for (i = 0; i < DC_ARRAY_SIZE(guard_bad_funcs_ch); i++) {
			l = strlen(guard_bad_funcs_ch[i].name);
			if ((n == l || (guard_bad_funcs_ch[i].prefix &&
			    n > l)) && memcmp(name, guard_bad_funcs_ch[i].name,
			    l) == 0)
				return 1;
		}
		return 0;
	}
	if (my) {
		for (i = 0; i < DC_ARRAY_SIZE(guard_bad_funcs_my); i++) {
			l = strlen(guard_bad_funcs_my[i].name);
			if ((n == l || (guard_bad_funcs_my[i].prefix &&
			    n > l)) && memcmp(name, guard_bad_funcs_my[i].name,
			    l) == 0)
				return 1;
		}
		return 0;
	}
	for (i = 0; i < DC_ARRAY_SIZE(guard_bad_funcs); i++) {
		l = strlen(guard_bad_funcs[i].name);
		if ((n == l || (guard_bad_funcs[i].prefix && n > l)) &&
		    memcmp(name, guard_bad_funcs[i].name, l) == 0)
			return 1;
	}
	return 0;
}

/* prev comes right before a '(': refuse it if it names a bad function. */
static int
check_call(const struct lexer *lx, const struct tok *prev,
    struct dc_sql_verdict *v)
{
	char	 name[GUARD_NAME_MAX + 1], shown[GUARD_SHOW_MAX + 1];
	int	 n;

	if (prev->type != TOK_WORD && prev->type != TOK_QIDENT)
		return 0;
	/* ClickHouse: a quoted name's escapes are not worth reading */
	if (lx->ch && prev->type == TOK_QIDENT)
		return refuse(v, "a quoted function name is not allowed");
	if ((n = tok_name(prev, name)) <= 0 ||
	    !bad_function(name, (size_t)n, lx->my, lx->ch))
		return 0;
	show(shown, name, (size_t)n, 0);
	return refuse(v, "function %s() is not allowed in a read-only query",
	    shown);
}

/* After FOR: does UPDATE, SHARE, NO KEY UPDATE or KEY SHARE follow? */
static int
is_locking(const struct lexer *lx)
{
	struct lexer	 c = *lx;
	struct tok	 a, b, d;

	if (lex_next(&c, &a) == -1)
		return 0;
	if (tok_is(&a, "update") || tok_is(&a, "share"))
		return 1;
	if (lex_next(&c, &b) == -1)
		return 0;
	if (tok_is(&a, "key") && tok_is(&b, "share"))
		return 1;
	if (lex_next(&c, &d) == -1)
		return 0;
	return tok_is(&a, "no") && tok_is(&b, "key") && tok_is(&d, "update");
}

/* After NEXT: VALUE FOR (a MariaDB sequence moves)? */
static int
is_next_value(const struct lexer *lx)
{
	struct lexer	 c = *lx;
	struct tok	 a;

	return lex_next(&c, &a) == 0 && tok_is(&a, "value");
}

/* MySQL's own ways to lock, write or move state from a SELECT. */
static int
check_word_my(const struct lexer *lx, const struct tok *t,
    struct dc_sql_verdict *v)
{
	if (tok_is(t, "lock"))
		return refuse(v, "SELECT ... LOCK IN SHARE MODE is not "
		    "allowed");
	if (tok_is(t, "procedure"))
		return refuse(v, "SELECT ... PROCEDURE is not allowed");
	if (tok_is(t, "next") && is_next_value(lx))
		return refuse(v, "NEXT VALUE FOR is not allowed in a read-only "
		    "query");
	return 0;
}

/*
 * ClickHouse: FORMAT would change the result's format under the driver
 * (a format name right before the end or SETTINGS), SETTINGS name =
 * value would change limits for this statement.  Either word elsewhere
 * is a name (a column called format).
 */
static int
check_word_ch(const struct lexer *lx, const struct tok *t,
    struct dc_sql_verdict *v)
{
	struct lexer	 c = *lx;
	struct tok	 a, b;

	if (!tok_is(t, "format") && !tok_is(t, "settings"))
		return 0;
	if (lex_next(&c, &a) == -1 || (a.type != TOK_WORD &&
	    a.type != TOK_QIDENT && a.type != TOK_STRING) ||
	    lex_next(&c, &b) == -1)
		return 0;
	if (tok_is(t, "format") && (b.type == TOK_EOF || tok_op(&b, ';') ||
	    tok_is(&b, "settings")))
		return refuse(v, "FORMAT is not allowed: datachatd reads the "
		    "result in its own format");
	if (tok_is(t, "settings") && tok_op(&b, '='))
		return refuse(v, "SETTINGS is not allowed in a read-only query");
	return 0;
}

/*
 * A word in keyword position (not after a '.') at nesting depth, g[depth]
 * being its group: refuse a data-modifying statement as a group's first
 * word or as a WITH's main statement, INTO, and FOR UPDATE/SHARE.
 */
static int
check_word(const struct lexer *lx, const struct tok *t, struct group *g,
    size_t depth, struct dc_sql_verdict *v)
{
	const char *const *dml = lx->ch ? dml_words_ch : lx->my ?
	    dml_words_my : dml_words;
	struct group	*cur = &g[depth];
	char		 word[GUARD_SHOW_MAX + 1];

	if (cur->first) {
		if (tok_is(t, "with"))
			cur->with = 1;
		else if (tok_in(t, dml))
			return refuse(v, "%s", depth > 0 && g[depth - 1].with ?
			    "data-modifying statement inside WITH is not allowed" :
			    "data-modifying statement in a subquery is not allowed");
	} else if (cur->with && !cur->main) {
		if (tok_in(t, main_words))
			cur->main = 1;
		else if (tok_in(t, dml) && depth > 0)
			return refuse(v, "data-modifying statement inside WITH "
			    "is not allowed");
		else if (tok_in(t, dml)) {
			show(word, t->p, t->len, 1);
			return refuse(v, "statement type %s is not allowed: %s",
			    word, lx->ch ? READ_ONLY_KINDS_CH : lx->my ?
			    READ_ONLY_KINDS_MY : READ_ONLY_KINDS);
		}
	}
	if (tok_is(t, "into"))
		return refuse(v, "SELECT ... INTO is not allowed");
	if (tok_is(t, "for") && is_locking(lx))
		return refuse(v, "SELECT ... FOR UPDATE/SHARE is not allowed");
	if (lx->my)
		return check_word_my(lx, t, v);
	if (lx->ch)
		return check_word_ch(lx, t, v);
	return 0;
}

/*
 * Walk every token of the statement: one statement only, balanced
 * parentheses, and the checks of check_call and check_word.  with0 says
 * the statement itself is a WITH query.  Sets v->len.
 */
static int
guard_scan(struct lexer *lx, int with0, struct dc_sql_verdict *v)
{
	struct group	 g[GUARD_MAX_DEPTH];
	struct tok	 t, prev;
	size_t		 depth = 0, end = 0;
	int		 semi = 0;

	memset(&g[0], 0, sizeof(g[0]));
	g[0].with = with0 ? 1 : 0;
	memset(&prev, 0, sizeof(prev));
	for (;;) {
		if (next_tok(lx, &t, v) == -1)
			return -1;
		if (t.type == TOK_EOF)
			break;
		if (semi)
			return refuse(v, "only one statement is allowed");
		if (tok_op(&t, ';')) {
			semi = 1;
			continue;
		}
		end = (size_t)(t.p - lx->s) + t.len;
		/* MySQL: @var := value writes a session variable */
		if (lx->my && tok_op(&t, '=') && tok_op(&prev, ':') &&
		    prev.p + 1 == t.p)
			return refuse(v, "assignments (:=) are not allowed");
		if (tok_op(&t, '(')) {
			if (check_call(lx, &prev, v) == -1)
				return -1;
			g[depth].first = 0;
			if (++depth == GUARD_MAX_DEPTH)
				return refuse(v, "statement is nested too deeply");
			memset(&g[depth], 0, sizeof(g[depth]));
			g[depth].first = 1;
		} else if (tok_op(&t, ')')) {
			if (depth == 0)
				return refuse(v, "unbalanced parentheses");
			depth--;
		} else {
			/* After '.' even a reserved word is a column label. */
			if (t.type == TOK_WORD && !tok_op(&prev, '.') &&
			    check_word(lx, &t, g, depth, v) == -1)
				return -1;
			g[depth].first = 0;
		}
		prev = t;
	}
	if (depth != 0)
		return refuse(v, "unbalanced parentheses");
	/*
	 * The closing of an executable comment is code, not a blank: the
	 * statement the driver sends ends after it (found by fuzz_sqlguard).
	 */
	if (lx->exec_end > end)
		end = lx->exec_end;
	v->len = end;
	return 0;
}

/*
 * t is where a query must begin (after any EXPLAIN): SELECT, WITH,
 * VALUES or TABLE, maybe behind parentheses.  explain names the EXPLAIN
 * for the reason, NULL when there is none.
 */
static int
guard_query(struct lexer *lx, struct tok *t, const char *explain,
    struct dc_sql_verdict *v, int *with0)
{
	char	 word[GUARD_SHOW_MAX + 1];
	int	 paren = 0;

	for (; tok_op(t, '('); paren = 1)
		if (next_tok(lx, t, v) == -1)
			return -1;
	if (tok_in(t, query_words)) {
		*with0 = !paren && tok_is(t, "with");
		return 0;
	}
	if (t->type != TOK_WORD && explain != NULL)
		return refuse(v, "%s needs a read-only query to explain",
		    explain);
	if (t->type != TOK_WORD && lx->ch)
		return refuse(v, "a statement must start with SELECT, WITH, "
		    "DESCRIBE, EXISTS or SHOW");
	if (t->type != TOK_WORD)
		return refuse(v, "a statement must start with SELECT, WITH, "
		    "VALUES, TABLE, EXPLAIN%s or SHOW", lx->my ? ", DESCRIBE" :
		    "");
	show(word, t->p, t->len, 1);
	if (explain != NULL)
		return refuse(v, "%s of %s is not allowed: only read-only "
		    "queries can be explained", explain, word);
	return refuse(v, "statement type %s is not allowed: %s", word,
	    lx->ch ? READ_ONLY_KINDS_CH : lx->my ? READ_ONLY_KINDS_MY :
	    READ_ONLY_KINDS);
}

/*
 * EXPLAIN ( option [value], ... ): lx is after the '('.  Only ANALYZE
 * matters, and only for the reason.
 */
static int
explain_options(struct lexer *lx, struct dc_sql_verdict *v, int *analyze)
{
	struct tok	 t;
	int		 depth = 1, name = 1, was_analyze = 0;

	while (depth > 0) {
		if (next_tok(lx, &t, v) == -1)
			return -1;
		if (t.type == TOK_EOF || tok_op(&t, ';'))
			return refuse(v, "EXPLAIN options are not closed");
		if (tok_op(&t, '('))
			depth++;
		else if (tok_op(&t, ')'))
			depth--;
		else if (was_analyze && !tok_op(&t, ',') &&
		    (tok_is(&t, "false") || tok_is(&t, "off") ||
		    tok_is(&t, "no") || (t.type == TOK_NUMBER &&
		    t.len == 1 && t.p[0] == '0')))
			*analyze = 0;
		was_analyze = name &&
		    (tok_is(&t, "analyze") || tok_is(&t, "analyse"));
		if (was_analyze)
			*analyze = 1;
		name = tok_op(&t, ',') || tok_op(&t, '(');
	}
	return 0;
}

/* lx is after EXPLAIN: skip its options, then the query must follow. */
static int
guard_explain(struct lexer *lx, struct dc_sql_verdict *v, int *with0)
{
	struct lexer	 peek;
	struct tok	 t, u;
	int		 analyze = 0;

	if (next_tok(lx, &t, v) == -1)
		return -1;
	if (tok_op(&t, '(')) {
		/* EXPLAIN (SELECT 1) explains a parenthesised query. */
		peek = *lx;
		if (next_tok(&peek, &u, v) == -1)
			return -1;
		if (!tok_op(&u, '(') && !tok_in(&u, query_words)) {
			if (explain_options(lx, v, &analyze) == -1 ||
			    next_tok(lx, &t, v) == -1)
				return -1;
		}
	} else {
		while (tok_is(&t, "analyze") || tok_is(&t, "analyse") ||
		    tok_is(&t, "verbose")) {
			if (!tok_is(&t, "verbose"))
				analyze = 1;
			if (next_tok(lx, &t, v) == -1)
				return -1;
		}
	}
	return guard_query(lx, &t, analyze ? "EXPLAIN ANALYZE" : "EXPLAIN", v,
	    with0);
}

/* A table or column name of MySQL: a word or a quoted name. */
static int
is_name_my(const struct tok *t)
{
	return (t->type == TOK_WORD && !tok_in(t, not_tables_my)) ||
	    t->type == TOK_QIDENT;
}

/*
 * MySQL: lx is after EXPLAIN, DESCRIBE or DESC.  Either the plan of a
 * read-only query (EXTENDED, PARTITIONS, ANALYZE, FORMAT = name may come
 * first), or a table's columns: DESCRIBE [db.]table [column].
 */
static int
guard_explain_my(struct lexer *lx, struct dc_sql_verdict *v, int *kind,
    int *with0)
{
	struct tok	 t, u;
	int		 analyze = 0;

	if (next_tok(lx, &t, v) == -1)
		return -1;
	for (;; ) {
		if (tok_is(&t, "analyze"))
			analyze = 1;
		else if (tok_is(&t, "format")) {
			if (next_tok(lx, &u, v) == -1 ||
			    (tok_op(&u, '=') && next_tok(lx, &u, v) == -1))
				return -1;
		} else if (!tok_is(&t, "extended") && !tok_is(&t, "partitions"))
			break;
		if (next_tok(lx, &t, v) == -1)
			return -1;
	}
	if (tok_op(&t, '(') || tok_in(&t, query_words)) {
		*kind = DC_SQL_EXPLAIN;
		return guard_query(lx, &t, analyze ? "EXPLAIN ANALYZE" :
		    "EXPLAIN", v, with0);
	}
	if (!analyze && is_name_my(&t)) {
		if (next_tok(lx, &t, v) == -1)
			return -1;
		if (tok_op(&t, '.') && (next_tok(lx, &t, v) == -1 ||
		    !is_name_my(&t) || next_tok(lx, &t, v) == -1))
			return refuse(v, "DESCRIBE takes a table name");
		if ((is_name_my(&t) || t.type == TOK_STRING) &&
		    next_tok(lx, &t, v) == -1)
			return -1;
		if (t.type == TOK_EOF || tok_op(&t, ';')) {
			*kind = DC_SQL_SHOW;
			return 0;
		}
	}
	return refuse(v, "EXPLAIN and DESCRIBE take a read-only query or a "
	    "table name");
}

/* What kind of statement this is, from its first tokens. */
static int
guard_head(struct lexer *lx, struct dc_sql_verdict *v, int *kind,
    int *with0)
{
	struct tok	 t;

	*with0 = 0;
	if (next_tok(lx, &t, v) == -1)
		return -1;
	if (t.type == TOK_EOF)
		return refuse(v, "empty statement");
	if (tok_op(&t, ';')) {
		if (next_tok(lx, &t, v) == -1)
			return -1;
		return refuse(v, "%s", t.type == TOK_EOF ? "empty statement" :
		    "only one statement is allowed");
	}
	if (lx->ch && (tok_is(&t, "describe") || tok_is(&t, "desc") ||
	    tok_is(&t, "exists") || tok_is(&t, "show"))) {
		/* what follows is read by guard_scan like the rest */
		*kind = DC_SQL_SHOW;
		return 0;
	}
	if (lx->ch && tok_is(&t, "explain"))
		return refuse(v, "statement type EXPLAIN is not allowed: %s",
		    READ_ONLY_KINDS_CH);
	if (lx->my && (tok_is(&t, "explain") || tok_is(&t, "describe") ||
	    tok_is(&t, "desc")))
		return guard_explain_my(lx, v, kind, with0);
	if (tok_is(&t, "explain")) {
		*kind = DC_SQL_EXPLAIN;
		return guard_explain(lx, v, with0);
	}
	if (tok_is(&t, "show")) {
		*kind = DC_SQL_SHOW;
		return 0;
	}
	*kind = DC_SQL_SELECT;
	return guard_query(lx, &t, NULL, v, with0);
}

/*
 * One reading of the statement: with standard_conforming_strings scs
 * (MySQL: NO_BACKSLASH_ESCAPES), by MySQL's rules when my, with
 * ANSI_QUOTES when ansi.
 */
static int
guard_pass(const char *sql, size_t len, int scs, int my, int ansi, int ch,
    struct dc_sql_verdict *v)
{
	struct lexer	 lx, head;
	int		 kind = 0, with0 = 0;

	memset(&lx, 0, sizeof(lx));
	lx.s = sql;
	lx.len = len;
	lx.scs = scs;
	lx.my = my;
	lx.ansi = ansi;
	lx.ch = ch;
	head = lx;
	if (guard_head(&head, v, &kind, &with0) == -1 ||
	    guard_scan(&lx, with0, v) == -1)
		return -1;
	v->kind = kind;
	return 0;
}

/* Empty input and NUL bytes, which no reading admits. */
static int
guard_input(const char *sql, size_t len, struct dc_sql_verdict *v)
{
	memset(v, 0, sizeof(*v));
	if (sql == NULL || len == 0)
		return refuse(v, "empty statement");
	if (memchr(sql, '\0', len) != NULL)
		return refuse(v, "statement contains a NUL byte");
	return 0;
}

static int
guard_refused(struct dc_sql_verdict *v)
{
	v->ok = 0;
	v->kind = 0;
	v->len = 0;
	return DC_EINVAL;
}

int
dc_sql_guard(const char *sql, size_t len, struct dc_sql_verdict *v)
{
	struct dc_sql_verdict	 alt;

	memset(&alt, 0, sizeof(alt));
	if (guard_input(sql, len, v) == -1 ||
	    guard_pass(sql, len, 1, 0, 0, 0, v) == -1)
		return guard_refused(v);
	/*
	 * The two readings differ only in a backslash inside '...': if the
	 * second refuses what the first admits, that backslash is why.
	 */
	if (guard_pass(sql, len, 0, 0, 0, 0, &alt) == -1 ||
	    alt.len != v->len) {
		/* alt.len: the statement must end at one place in both */
		refuse(v, "ambiguous backslash before a quote in a '...' "
		    "string: write it as E'...' with the backslash doubled");
		return guard_refused(v);
	}
	v->ok = 1;
	return 0;
}

static int
guard_mysql_once(const char *sql, size_t len, struct dc_sql_verdict *v)
{
	struct dc_sql_verdict	 alt;
	int			 scs, ansi;

	if (guard_input(sql, len, v) == -1 ||
	    guard_pass(sql, len, 0, 1, 0, 0, v) == -1)
		return guard_refused(v);
	/*
	 * The server's sql_mode decides whether a backslash escapes in a
	 * string (NO_BACKSLASH_ESCAPES) and whether "..." is a string or a
	 * name (ANSI_QUOTES); the statement must mean the same under all.
	 */
	for (scs = 0; scs <= 1; scs++)
		for (ansi = 0; ansi <= 1; ansi++) {
			memset(&alt, 0, sizeof(alt));
			if ((scs || ansi) &&
			    guard_pass(sql, len, scs, 1, ansi, 0, &alt) == -1) {
				refuse(v, "ambiguous quoting: a backslash or a "
				    "double quote reads differently under "
				    "another sql_mode (%s)", alt.reason);
				return guard_refused(v);
			}
			/*
			 * The driver sends the first v->len bytes: every
			 * reading must end the statement there, or what is
			 * cut off would be code under some sql_mode.
			 */
			if ((scs || ansi) && alt.len != v->len) {
				refuse(v, "ambiguous quoting: the statement "
				    "ends elsewhere under another sql_mode");
				return guard_refused(v);
			}
		}
	v->ok = 1;
	return 0;
}

int
dc_sql_guard_mysql(const char *sql, size_t len, struct dc_sql_verdict *v)
{
	struct dc_sql_verdict	 cut;

	if (guard_mysql_once(sql, len, v) != DC_OK)
		return DC_EINVAL;
	/*
	 * What the driver sends, the first v->len bytes, must pass alone,
	 * as the same kind: cutting a trailing comment can change how a
	 * "--" or a quote reads at the new end (found by fuzz_sqlguard:
	 * corpus/sqlguard/crash-mysql-cut-reads-otherwise).
	 */
	if (v->len == len)
		return 0;
	memset(&cut, 0, sizeof(cut));
	if (guard_mysql_once(sql, v->len, &cut) != DC_OK ||
	    cut.kind != v->kind || cut.len > v->len) {
		memset(v, 0, sizeof(*v));
		refuse(v, "ambiguous end: the statement without its trailing "
		    "comment reads differently");
		return guard_refused(v);
	}
	return 0;
}

int
dc_sql_guard_clickhouse(const char *sql, size_t len, struct dc_sql_verdict *v)
{
	/* one reading: 18.16 and later servers escape the same way */
	if (guard_input(sql, len, v) == -1 ||
	    guard_pass(sql, len, 0, 0, 0, 1, v) == -1)
		return guard_refused(v);
	v->ok = 1;
	return 0;
}

int
dc_sql_ident_ok(const char *s)
{
	size_t	 i;

	if (s == NULL || s[0] == '\0' || is_digit((unsigned char)s[0]))
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		if (i >= GUARD_NAME_MAX)
			return 0;
		if (!is_ident_cont((unsigned char)s[i]) ||
		    (unsigned char)s[i] >= 0x80)
			return 0;
	}
	return 1;
}
