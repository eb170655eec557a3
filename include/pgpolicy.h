/*
 * pgpolicy.h - which functions a read-only statement may call on a
 * PostgreSQL target, decided from the target's own catalog.
 *
 * A catalog (struct dc_pgcat) is built from rows of the target's
 * pg_proc, pg_aggregate, pg_operator, pg_cast, pg_type and of the views,
 * foreign tables and row-security policies (their SQL: PostgreSQL does
 * not record dependencies on built-in functions, so the definitions are
 * parsed), then frozen with dc_pgcat_finish().  Each function is
 * judged once:
 *
 *   - on the deny-list (by name, in any schema, whatever the catalog says
 *     of it): it runs query text, or acts outside the transaction
 *     (locks, settings, signals, files, large objects, WAL, replication,
 *     sequences, transaction ids, other connections);
 *   - VOLATILE and not one of a few harmless built-in VOLATILE functions
 *     (allow-list): refused, whoever wrote it;
 *   - written in an untrusted procedural language (plpython3u...);
 *   - an aggregate whose support functions fail any of the above.
 *
 * dc_pgpolicy_check() then judges a statement's references (pgguard.h):
 * every candidate a name may resolve to must be allowed, so an overload
 * or a same-named function in another schema can never slip through.
 * Operators are judged by the functions behind them, casts by the
 * functions they call, views and policies by their definitions.  A
 * statement that calls anything not built into PostgreSQL (oid 16384 and
 * above), reads a user view, a foreign table or a table with row
 * security, or calls a SECURITY DEFINER function is marked "unusual": it
 * may be allowed, but its session is not reused (the backstop, pool.h).
 *
 * Pure: no connection, no I/O; the catalog is fetched by the pool layer.
 */
#ifndef DC_PGPOLICY_H
#define DC_PGPOLICY_H

#include <stddef.h>
#include <stdint.h>

struct dc_pgstmt;
struct dc_pg_refusal;
struct dc_pgcat;

/* Objects with an oid below this one were made by initdb (built in). */
#define DC_PG_FIRST_NORMAL_OID	16384

/*
 * The catalog query, run read-only on the target.  One row per function
 * (with its aggregate support functions), operator, cast with a function,
 * type (with its domain checks as SQL), and per view, foreign table and
 * table with row security (with the view's definition or the policies'
 * expressions as SQL).  Its rows go to dc_pgcat_add_row() as text.
 */
extern const char dc_pgcat_sql[];
#define DC_PGCAT_COLUMNS	14

struct dc_pgcat	*dc_pgcat_new(void);
void		 dc_pgcat_free(struct dc_pgcat *cat);

/*
 * Add one row of dc_pgcat_sql (DC_PGCAT_COLUMNS fields, NULL for SQL
 * NULL; strings are copied).  0, DC_EINVAL (a row it cannot read) or
 * DC_ENOMEM.
 */
int		 dc_pgcat_add_row(struct dc_pgcat *cat, const char *const *f);

/*
 * Index and judge everything added: functions first, then types, then
 * the SQL of views, policies and domain checks, parsed by the guard and
 * judged like any statement.  0 or DC_ENOMEM.
 */
int		 dc_pgcat_finish(struct dc_pgcat *cat);

/* How many functions the catalog holds, and how many it refuses. */
void		 dc_pgcat_counts(const struct dc_pgcat *cat, int *nprocs,
		     int *nrefused);

/*
 * Judge the references of st (parsed from sql, len bytes: positions in
 * refusals count its characters).  Returns 0 (admitted; *unusual says
 * whether the session may be reused), DC_EINVAL (refused: ref says which
 * node and why) or DC_ENOENT (refused because it names a function,
 * operator or type the catalog does not hold: a catalog read again may
 * know it, ref says what).
 */
int		 dc_pgpolicy_check(const struct dc_pgcat *cat,
		     const struct dc_pgstmt *st, const char *sql, size_t len,
		     struct dc_pg_refusal *ref, int *unusual);

/*
 * Whether the deny-list names the function (name, nargs); its reason
 * into why when it does.  Exposed for the unit tests and the docs.
 */
int		 dc_pgpolicy_denied(const char *name, int nargs,
		     const char **why);

#endif /* DC_PGPOLICY_H */
