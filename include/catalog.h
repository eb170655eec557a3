/*
 * catalog.h - what a worker knows of a target's catalog: one entry per
 * target, holding both the schema snapshot (schema.h) and the function
 * policy (pgpolicy.h), with one key, one invalidation and one freshness
 * rule for the two.
 *
 * The entry.  Each worker (a process) keeps one entry per target it was
 * asked about, keyed by connection id and entry generation (plus the URL
 * for the environment entry, whose generation never moves).  When the
 * registry moves, the worker calls dc_catalog_sync() right after
 * dc_pool_sync(); it drops the entries whose registry entry changed or
 * vanished, snapshot and policy together, so neither outlives the
 * connection details it was read with.  dc_catalog_invalidate()
 * (datachatctl invalidate) drops both too.  What is being read for a
 * dropped entry still answers those waiting for it, and is then freed.
 *
 * Each half is read only when someone needs it: a direct statement for a
 * PostgreSQL target needs the policy and never waits for a schema read;
 * GET .../schema needs the snapshot and never reads the policy.  The chat
 * path needs both (the snapshot for the prompt or the catalog answer,
 * the policy for the SQL that follows): DC_CATALOG_POLICY asks for the
 * policy in the same round as the snapshot, so it is read while the
 * snapshot is, not after the LLM has answered.
 *
 * Freshness, shared.  Reading the schema costs a count per small table,
 * reading the policy a few thousand rows of pg_proc; asking whether the
 * catalog changed costs a millisecond: each dialect's version_sql
 * (driver.h) returns one value that every CREATE, ALTER, DROP, RENAME
 * (and, on PostgreSQL, GRANT and CREATE FUNCTION) moves: PostgreSQL's
 * sums the transaction ids of the catalog rows (pg_class, pg_attribute,
 * pg_constraint, pg_namespace, pg_proc), MySQL's checksums
 * information_schema's tables, columns and foreign keys of the URL's
 * database.
 *   - The snapshot is used as it is for schema_check_interval
 *     milliseconds after its version was last confirmed; after that the
 *     next request asks for the version first and reads the schema again
 *     only when it moved (or when the snapshot is older than
 *     schema_max_age seconds, for its row counts).  So every worker
 *     answers from a catalog at most schema_check_interval old, and
 *     workers agree within that bound.  A caller that misses a table the
 *     question names asks again at once (DC_CATALOG_RECHECK, at most once
 *     per DC_CATALOG_RECHECK_MS per target).
 *   - The policy is read on first use and again after DC_POLICY_TTL_MS,
 *     so a DBA's new or changed function is known within that bound and
 *     the time of one read; that read runs in the background, statements
 *     going on with the policy the worker has (they would otherwise all
 *     wait for thousands of rows once a minute).  It is read sooner, but
 *     never twice within DC_POLICY_REREAD_MS, when it is known to be
 *     stale, and then statements wait for it: a statement names a
 *     function it lacks, or a version check made for the snapshot saw
 *     the catalog move (then the policy is read in that same round, a
 *     moved version being the sign that a function may have changed
 *     too).  A failed read in the background is tried again after
 *     DC_POLICY_REREAD_MS.
 * Concurrent requests for one target share one round trip per half.
 */
#ifndef DC_CATALOG_H
#define DC_CATALOG_H

#include <stdint.h>

struct dc_worker;
struct dc_entry;
struct dc_qresult;
struct dc_schema;
struct dc_pgcat;
struct dc_catalog_wait;

#define DC_CATALOG_RECHECK_MS	1000
#define DC_POLICY_TTL_MS	60000	/* the policy is read again after this */
#define DC_POLICY_REREAD_MS	5000	/* ... or after this, when stale */

/*
 * The snapshot of target e, from the entry or read (checked first when
 * it is due, see Freshness).  cb gets the snapshot (valid during the call
 * only) or, on failure, s == NULL and the pool's result.  When the entry
 * answers, cb runs before this returns and *wait is NULL; otherwise
 * *wait allows cancelling.  flags:
 *   DC_CATALOG_RECHECK  the caller misses a table the snapshot it got
 *                       lacks: ask the version now (bounded, above);
 *   DC_CATALOG_POLICY   the caller will judge a statement next: when the
 *                       target's dialect has a policy and it is due, read
 *                       it in this round too (cb does not wait for it).
 * Returns 0 or an error code (cb not called).
 */
#define DC_CATALOG_RECHECK	1
#define DC_CATALOG_POLICY	2
typedef void (*dc_catalog_schema_cb)(const struct dc_schema *s,
		     const struct dc_qresult *err, void *arg);
int		 dc_catalog_schema(struct dc_worker *w, const struct dc_entry *e,
		     int flags, dc_catalog_schema_cb cb, void *arg,
		     struct dc_catalog_wait **wait);

/*
 * The tables named table (in schema, or in any schema when it is NULL),
 * system schemas included, without columns: what a question names that
 * no snapshot holds (information_schema.tables, pg_catalog.pg_class).
 * cb as for dc_catalog_schema; s may hold no table.  Answers are
 * remembered until the snapshot is read again, and at most four new
 * names at once (then one every 250 ms) are asked of a target, so typos
 * cannot hammer it: beyond that a name is reported missing.
 */
int		 dc_catalog_lookup(struct dc_worker *w, const struct dc_entry *e,
		     const char *schema, const char *table,
		     dc_catalog_schema_cb cb, void *arg,
		     struct dc_catalog_wait **wait);

/*
 * The function policy of target e (its dialect must have policy_sql),
 * from the entry or read (see Freshness).  cb gets the policy and its
 * generation (numbering the policies this worker read, for verdict
 * caches), both valid during the call only, or cat == NULL and the
 * pool's result.  stale: a generation the caller found lacking (a name
 * it does not hold), 0 for none.  Called back as dc_catalog_schema, and
 * possibly from within another policy callback (a stale one asks again).
 * Returns 0 or an error code (cb not called): DC_ENOMEM, or
 * dc_pool_query()'s (DC_EFULL...).
 */
typedef void (*dc_catalog_policy_cb)(const struct dc_pgcat *cat,
		     uint64_t catgen, const struct dc_qresult *err, void *arg);
int		 dc_catalog_policy(struct dc_worker *w, const struct dc_entry *e,
		     uint64_t stale, dc_catalog_policy_cb cb, void *arg,
		     struct dc_catalog_wait **wait);

/* Stop waiting (a snapshot, a lookup or a policy); cb is not called. */
void		 dc_catalog_cancel(struct dc_catalog_wait *wait);

/* Registry moved: drop entries whose registry entry changed or vanished. */
void		 dc_catalog_sync(struct dc_worker *w);

/* Drop the entry of one target (id) or all (NULL): snapshot and policy. */
void		 dc_catalog_invalidate(const uint8_t *id);

/*
 * The worker leaves: cancel reads, free everything.  After the callers'
 * own teardown (dc_sql_check_shutdown) and before the pool's.
 */
void		 dc_catalog_shutdown(void);

#endif /* DC_CATALOG_H */
