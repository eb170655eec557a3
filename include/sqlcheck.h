/*
 * sqlcheck.h - the one way a statement from outside (a client's SQL, the
 * LLM's, a tool's) is judged before it reaches a target.
 *
 * For an engine whose dialect has only a guard (MySQL, ClickHouse: a
 * lexer, sqlguard.h), that guard decides at once.  For PostgreSQL, whose
 * dialect names a policy catalog (driver.h, policy_sql), the statement is
 * parsed by PostgreSQL's own grammar (pgguard.h) and every function,
 * operator, cast and relation it refers to is judged against the
 * target's own function policy (pgpolicy.h), which each worker keeps
 * beside its schema snapshot of the target (catalog.h).
 * Admitted verdicts are cached by statement shape and catalog generation
 * (pgguard.h), so a statement that differs from an earlier one only in
 * its constants costs no parse.
 *
 * A statement the policy marks unusual may run, but on a connection no
 * other job shares after it (pool.h, DC_JOB_UNUSUAL).
 */
#ifndef DC_SQLCHECK_H
#define DC_SQLCHECK_H

#include <stddef.h>

struct dc_worker;
struct dc_entry;
struct dc_qresult;
struct dc_sqlcheck_wait;

struct dc_sqlcheck {
	/*
	 * DC_OK admitted; DC_EINVAL refused (reason); any other status:
	 * the target's catalog could not be read: err says why (the pool's
	 * result, valid during the callback), or, when err is NULL, status
	 * is why dc_pool_query() refused to read it (dc_result_submit_failure).
	 */
	int		 status;
	int		 kind;		/* enum dc_sql_kind (sqlguard.h) */
	size_t		 len;		/* bytes to run: no trailing ';' */
	int		 unusual;	/* run it with DC_JOB_UNUSUAL */
	char		 reason[400];	/* why refused, a sentence for a 4xx */
	const struct dc_qresult *err;
};

typedef void (*dc_sqlcheck_cb)(const struct dc_sqlcheck *v, void *arg);

/*
 * Judge sql (a C string) for target e.  cb gets the verdict exactly once
 * unless the wait is cancelled; it runs after this returns only when
 * *wait is set (otherwise it already ran, just before the return).
 * Returns 0, or DC_ENOMEM / DC_EINVAL (no driver for the target's type)
 * with cb not called.
 */
int		 dc_sql_check(struct dc_worker *w, const struct dc_entry *e,
		     const char *sql, dc_sqlcheck_cb cb, void *arg,
		     struct dc_sqlcheck_wait **wait);
void		 dc_sql_check_cancel(struct dc_sqlcheck_wait *wait);

/*
 * Warm-up: read e's policy catalog now, when this worker has none (a
 * dialect without one answers at once).  cb runs once, as for
 * dc_sql_check (the wait cannot be cancelled: the worker's exit frees
 * it); the time is not a client's, so not counted as a check.
 */
int		 dc_sql_check_warm(struct dc_worker *w, const struct dc_entry *e,
		     dc_sqlcheck_cb cb, void *arg);

/* The worker leaves: free the verdict cache. */
void		 dc_sql_check_shutdown(void);

#endif /* DC_SQLCHECK_H */
