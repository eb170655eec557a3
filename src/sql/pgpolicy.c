/*
 * pgpolicy.c - the function policy of PostgreSQL targets, judged on the
 * target's own catalog (see pgpolicy.h).
 *
 * A catalog is a few arrays (functions, operators, types, relations)
 * with a hash index by name and, for functions, an index by oid.  Every
 * function is judged once when the catalog is finished, so checking a
 * statement is a handful of hash lookups: the cost per query is that of
 * its references, not of the catalog.
 *
 * The deny-list and the allow-list below are the only lists of names in
 * the policy.  Everything else comes from what the catalog says of a
 * function: its volatility, its language, its kind.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc.h"
#include "pgguard.h"
#include "pgpolicy.h"

#define ARENA_BLOCK	(64 * 1024)
#define WHY_MAX		320

/*
 * Functions refused whatever the catalog says of them, in any schema:
 * they run query text given as a value (so the query escapes the guard),
 * or act outside the statement's read-only transaction.  A prefix entry
 * covers every name that starts with it; nargs >= 0 only that arity.
 * Read against PostgreSQL 15's pg_proc, its documentation (functions
 * and operators, system administration functions) and the contrib
 * modules that ship with it.
 */
static const struct deny {
	const char	*name;
	int		 prefix;
	int		 nargs;
	const char	*why;
} deny_list[] = {
	/* run query text, or read through a query of their own */
	{ "query_to_xml", 1, -1, "it runs the query text it is given" },
	{ "cursor_to_xml", 1, -1, "it reads from a cursor by name" },
	{ "table_to_xml", 1, -1, "it runs a query on the table it is given" },
	{ "schema_to_xml", 1, -1, "it runs a query on every table of a "
	    "schema" },
	{ "database_to_xml", 1, -1, "it runs a query on every table of the "
	    "database" },
	{ "ts_stat", 0, -1, "it runs the query text it is given" },
	{ "ts_rewrite", 0, 2, "it runs the query text it is given" },
	{ "dblink", 1, -1, "it runs statements on another connection, "
	    "outside this transaction" },
	{ "crosstab", 1, -1, "it runs the query text it is given" },
	{ "connectby", 0, -1, "it runs a query built from its arguments" },
	{ "xpath_table", 0, -1, "it runs a query built from its arguments" },
	{ "postgres_fdw_disconnect", 1, -1, "it closes the session's "
	    "connections to other servers" },
	/* session state that outlives the transaction */
	{ "set_config", 0, -1, "it changes a setting of the session" },
	{ "setseed", 0, -1, "it seeds the session's random numbers for the "
	    "requests that follow" },
	{ "set_limit", 0, -1, "it changes a setting of the session "
	    "(pg_trgm)" },
	{ "pg_advisory", 1, -1, "it takes or releases an advisory lock that "
	    "can outlive the transaction" },
	{ "pg_try_advisory", 1, -1, "it takes an advisory lock that can "
	    "outlive the transaction" },
	{ "pg_stat_clear_snapshot", 0, -1, "it changes the session's "
	    "statistics snapshot" },
	{ "pg_export_snapshot", 0, -1, "it exports a snapshot for other "
	    "sessions" },
	/* other sessions, the server, its files */
	{ "pg_terminate_backend", 0, -1, "it terminates another session" },
	{ "pg_cancel_backend", 0, -1, "it cancels another session's query" },
	{ "pg_reload_conf", 0, -1, "it reloads the server's configuration" },
	{ "pg_rotate_logfile", 1, -1, "it rotates the server's log file" },
	{ "pg_log_backend_memory_contexts", 0, -1, "it signals another "
	    "session" },
	{ "pg_notify", 0, -1, "it sends a notification to other sessions" },
	{ "pg_read_", 1, -1, "it reads a file on the database server" },
	{ "pg_stat_file", 0, -1, "it reads file metadata on the database "
	    "server" },
	{ "pg_ls_", 1, -1, "it lists a directory on the database server" },
	{ "pg_file_", 1, -1, "it writes, renames or removes a file on the "
	    "database server (adminpack)" },
	{ "pg_logdir_ls", 0, -1, "it lists the server's log directory" },
	{ "pg_current_logfile", 0, -1, "it reads the server's log file "
	    "location" },
	{ "pg_show_all_file_settings", 0, -1, "it reads the server's "
	    "configuration files" },
	{ "pg_hba_file_rules", 0, -1, "it reads the server's pg_hba.conf" },
	{ "pg_ident_file_mappings", 0, -1, "it reads the server's "
	    "pg_ident.conf" },
	{ "lo_", 1, -1, "it reads, writes, creates or removes a large object "
	    "or a server file" },
	{ "loread", 0, -1, "it reads a large object" },
	{ "lowrite", 0, -1, "it writes a large object" },
	/* sequences and transaction ids */
	{ "nextval", 0, -1, "it advances a sequence, which no rollback "
	    "undoes" },
	{ "setval", 0, -1, "it sets a sequence, which no rollback undoes" },
	{ "currval", 0, -1, "it reads the session's sequence state" },
	{ "lastval", 0, -1, "it reads the session's sequence state" },
	{ "txid_current", 0, 0, "it assigns a transaction id, which no "
	    "rollback gives back" },
	{ "pg_current_xact_id", 0, 0, "it assigns a transaction id, which no "
	    "rollback gives back" },
	/* WAL, backups, replication, recovery */
	{ "pg_switch_wal", 0, -1, "it switches the server's WAL file" },
	{ "pg_switch_xlog", 0, -1, "it switches the server's WAL file" },
	{ "pg_create_", 1, -1, "it creates a replication slot or restore "
	    "point" },
	{ "pg_drop_replication_slot", 0, -1, "it drops a replication slot" },
	{ "pg_copy_", 1, -1, "it copies a replication slot" },
	{ "pg_replication_slot_advance", 0, -1, "it advances a replication "
	    "slot" },
	{ "pg_logical_", 1, -1, "it consumes or emits logical replication "
	    "data" },
	{ "pg_replication_origin_", 1, -1, "it changes replication origins" },
	{ "pg_backup_", 1, -1, "it starts or stops a backup" },
	{ "pg_start_backup", 0, -1, "it starts a backup" },
	{ "pg_stop_backup", 0, -1, "it stops a backup" },
	{ "pg_promote", 0, -1, "it promotes a standby" },
	{ "pg_wal_replay_", 1, -1, "it pauses or resumes recovery" },
	/* statistics, maintenance, catalog changes */
	{ "pg_stat_reset", 1, -1, "it resets server statistics" },
	{ "pg_stat_statements_reset", 0, -1, "it resets server statistics" },
	{ "pg_stat_force_next_flush", 0, -1, "it flushes statistics" },
	{ "pg_import_system_collations", 0, -1, "it creates collations" },
	{ "pg_extension_config_dump", 0, -1, "it changes an extension's "
	    "catalog entry" },
	{ "pg_nextoid", 0, -1, "it allocates catalog oids" },
	{ "pg_stop_making_pinned_objects", 0, -1, "it changes the catalog" },
	{ "binary_upgrade_", 1, -1, "it changes the catalog" },
	{ "brin_summarize_new_values", 0, -1, "it changes an index" },
	{ "brin_summarize_range", 0, -1, "it changes an index" },
	{ "brin_desummarize_range", 0, -1, "it changes an index" },
	{ "gin_clean_pending_list", 0, -1, "it changes an index" },
	{ "pg_truncate_visibility_map", 0, -1, "it changes a relation's "
	    "visibility map" },
	{ "heap_force_", 1, -1, "it changes table rows (pg_surgery)" },
	{ "pg_prewarm", 0, -1, "it loads a relation into the server's "
	    "buffers" },
	{ "autoprewarm_", 1, -1, "it starts a background worker or writes "
	    "a file" },
	{ "pg_buffercache_evict", 1, -1, "it evicts shared buffers" },
};

/*
 * VOLATILE functions a read-only query may call anyway.  Built-in ones
 * only (a same-named function of a DBA is judged like any other), and
 * only ones whose volatility says "the answer changes", not "it changes
 * something":
 *   random, random_normal   a pseudo-random number; they advance only the
 *                           session's generator, which setseed (denied)
 *                           alone could make predictable
 *   clock_timestamp, timeofday   the time of day
 *   gen_random_uuid         random bytes
 *   pg_*_size               the size of files of a relation, database or
 *                           tablespace: VOLATILE because the size moves
 *   pg_is_in_recovery       whether the server is a standby
 *   pg_sleep, pg_sleep_for, pg_sleep_until   wait: they hold nothing, and
 *                           the statement timeout ends them like any
 *                           slow query
 */
static const char *const allow_list[] = {
	"random", "random_normal", "clock_timestamp", "timeofday",
	"gen_random_uuid", "pg_relation_size", "pg_table_size",
	"pg_indexes_size", "pg_total_relation_size", "pg_database_size",
	"pg_tablespace_size", "pg_is_in_recovery", "pg_sleep", "pg_sleep_for",
	"pg_sleep_until",
};

const char dc_pgcat_sql[] =
    "SELECT 'p', p.oid::text, n.nspname::text, p.proname::text,"
    " p.provolatile::text, p.prokind::text, l.lanname::text,"
    " l.lanpltrusted::int::text, p.prosecdef::int::text, p.pronargs::text,"
    " p.pronargdefaults::text, (p.provariadic <> 0)::int::text,"
    " (SELECT ARRAY[a.aggtransfn, a.aggfinalfn, a.aggcombinefn,"
    "   a.aggserialfn, a.aggdeserialfn, a.aggmtransfn, a.aggminvtransfn,"
    "   a.aggmfinalfn]::pg_catalog.oid[] FROM pg_catalog.pg_aggregate a"
    "  WHERE a.aggfnoid = p.oid)::text, NULL"
    " FROM pg_catalog.pg_proc p"
    " JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace"
    " JOIN pg_catalog.pg_language l ON l.oid = p.prolang"
    " UNION ALL"
    " SELECT 'o', o.oid::text, n.nspname::text, o.oprname::text,"
    " o.oprkind::text, o.oprcode::pg_catalog.oid::text, NULL, NULL, NULL,"
    " NULL, NULL, NULL, NULL, NULL"
    " FROM pg_catalog.pg_operator o"
    " JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace"
    " UNION ALL"
    " SELECT 'c', c.oid::text, NULL, NULL, c.casttarget::text,"
    " c.castfunc::text, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL"
    " FROM pg_catalog.pg_cast c WHERE c.castfunc <> 0"
    " UNION ALL"
    " SELECT 't', t.oid::text, n.nspname::text, t.typname::text,"
    " t.typinput::pg_catalog.oid::text, t.typbasetype::text, NULL, NULL,"
    " NULL, NULL, NULL, NULL, NULL,"
    " (SELECT 'SELECT ' || pg_catalog.string_agg('(' ||"
    "   pg_catalog.pg_get_expr(k.conbin, 0) || ')', ', ')"
    "  FROM pg_catalog.pg_constraint k"
    "  WHERE k.contypid = t.oid AND k.conbin IS NOT NULL)"
    " FROM pg_catalog.pg_type t"
    " JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace"
    " UNION ALL"
    " SELECT 'r', c.oid::text, n.nspname::text, c.relname::text,"
    " c.relkind::text, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
    " CASE WHEN c.relkind = 'v' THEN pg_catalog.pg_get_viewdef(c.oid)"
    "  ELSE (SELECT 'SELECT ' || pg_catalog.string_agg('(' ||"
    "   pg_catalog.pg_get_expr(y.polqual, y.polrelid) || ')', ', ')"
    "   FROM pg_catalog.pg_policy y"
    "   WHERE y.polrelid = c.oid AND y.polqual IS NOT NULL) END"
    " FROM pg_catalog.pg_class c"
    " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE (c.relkind = 'v'"
    "  AND n.nspname NOT IN ('pg_catalog', 'information_schema'))"
    "  OR c.relkind = 'f' OR (c.relkind IN ('r', 'p') AND c.relrowsecurity)";

enum bad {
	OK = 0,
	BAD_DENY,		/* deny-list: why in deny_list[] */
	BAD_VOLATILE,
	BAD_UNTRUSTED,		/* untrusted procedural language */
	BAD_SUPPORT,		/* aggregate: a support function is bad */
};

enum state {
	NEW = 0,
	JUDGING,		/* its definition is being judged */
	JUDGED,
};

struct named {
	char		*schema;
	char		*name;
	int		 next;		/* next index in the same bucket */
};

struct proc {
	struct named	 n;
	uint32_t	 oid;
	char		*lang;
	char		 volatility;
	char		 kind;
	unsigned char	 trusted, secdef, variadic;
	int		 nargs, ndefaults;
	uint32_t	*support;
	int		 nsupport;
	/* judged by dc_pgcat_finish() */
	unsigned char	 bad;		/* enum bad */
	unsigned char	 user;		/* not built in, or SECURITY DEFINER */
	const struct deny *deny;
	int		 why_proc;	/* BAD_SUPPORT: the support function */
};

struct op {
	struct named	 n;
	char		 kind;
	uint32_t	 func;
};

/* A type, or a relation whose reading runs SQL (view, policy). */
struct typrel {
	struct named	 n;
	uint32_t	 oid;
	uint32_t	 input, basetype;	/* types */
	char		 relkind;		/* relations */
	char		*def;		/* SQL it runs: view, checks, policies */
	int		 state;		/* enum state */
	char		*why;		/* refused: why, else NULL */
};

struct cast {
	uint32_t	 target, func;
};

struct index {
	int		*bucket;
	size_t		 nb;		/* a power of two */
};

struct arena {
	struct arena	*next;
	size_t		 used;
	char		 data[ARENA_BLOCK];
};

struct dc_pgcat {
	struct proc	*procs;
	int		 nprocs, cprocs;
	struct op	*ops;
	int		 nops, cops;
	struct typrel	*types;
	int		 ntypes, ctypes;
	struct typrel	*rels;
	int		 nrels, crels;
	struct cast	*casts;
	int		 ncasts, ccasts;
	int		*by_oid;	/* proc indices sorted by oid */
	int		*types_by_oid;
	struct index	 proc_names, op_names, type_names, rel_names;
	struct arena	*arena;
	int		 finished;
	int		 nrefused;
};

/* --- memory --- */

static void *
arena_alloc(struct dc_pgcat *cat, size_t n)
{
	struct arena	*a = cat->arena;
	size_t		 big;
	void		*p;

	n = (n + 7) & ~(size_t)7;
	if (n > ARENA_BLOCK / 4) {
		/* a long view definition: a block of its own, kept behind */
		big = offsetof(struct arena, data) + n;
		if ((a = malloc(big)) == NULL)
			return NULL;
		a->used = ARENA_BLOCK;
		if (cat->arena != NULL) {
			a->next = cat->arena->next;
			cat->arena->next = a;
		} else {
			a->next = NULL;
			cat->arena = a;
		}
		return a->data;
	}
	if (a == NULL || a->used + n > ARENA_BLOCK) {
		if ((a = malloc(sizeof(*a))) == NULL)
			return NULL;
		a->used = 0;
		a->next = cat->arena;
		cat->arena = a;
	}
	p = a->data + a->used;
	a->used += n;
	return p;
}

static char *
arena_str(struct dc_pgcat *cat, const char *s)
{
	size_t	 n = strlen(s != NULL ? s : "") + 1;
	char	*p = arena_alloc(cat, n);

	if (p != NULL)
		memcpy(p, s != NULL ? s : "", n);
	return p;
}

/* Room for one more element of size sz in *arr (count n, capacity c). */
static int
grow(void **arr, int n, int *c, size_t sz)
{
	void	*p;
	int	 nc;

	if (n < *c)
		return DC_OK;
	nc = *c ? *c * 2 : 64;
	if ((p = reallocarray(*arr, (size_t)nc, sz)) == NULL)
		return DC_ENOMEM;
	*arr = p;
	*c = nc;
	return DC_OK;
}

struct dc_pgcat *
dc_pgcat_new(void)
{
	return calloc(1, sizeof(struct dc_pgcat));
}

void
dc_pgcat_free(struct dc_pgcat *cat)
{
	struct arena	*a;

	if (cat == NULL)
		return;
	while ((a = cat->arena) != NULL) {
		cat->arena = a->next;
		free(a);
	}
	free(cat->procs);
	free(cat->ops);
	free(cat->types);
	free(cat->rels);
	free(cat->casts);
	free(cat->by_oid);
	free(cat->types_by_oid);
	free(cat->proc_names.bucket);
	free(cat->op_names.bucket);
	free(cat->type_names.bucket);
	free(cat->rel_names.bucket);
	free(cat);
}

/* --- rows --- */

/* An unsigned decimal (an oid, a count); -1 when it is not one. */
static long
num(const char *s)
{
	long	 v = 0;

	if (s == NULL || *s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9' || v > 0xffffffffL)
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v <= 0xffffffffL ? v : -1;
}

/* An oid[] as PostgreSQL writes it ({1,2,3}); NULL gives none. */
static int
oid_array(struct dc_pgcat *cat, const char *s, uint32_t **out, int *n)
{
	uint32_t	*v;
	long		 x;
	int		 k = 0, cap = 1;
	const char	*p;
	char		 buf[16];
	size_t		 l;

	*out = NULL;
	*n = 0;
	if (s == NULL)
		return DC_OK;
	if (s[0] != '{')
		return DC_EINVAL;
	for (p = s; *p != '\0'; p++)
		if (*p == ',')
			cap++;
	if ((v = arena_alloc(cat, (size_t)cap * sizeof(*v))) == NULL)
		return DC_ENOMEM;
	for (p = s + 1; *p != '\0' && *p != '}'; ) {
		l = strcspn(p, ",}");
		if (l == 0 || l >= sizeof(buf))
			return DC_EINVAL;
		memcpy(buf, p, l);
		buf[l] = '\0';
		if ((x = num(buf)) < 0)
			return DC_EINVAL;
		v[k++] = (uint32_t)x;
		p += l;
		if (*p == ',')
			p++;
	}
	*out = v;
	*n = k;
	return DC_OK;
}

static int
set_named(struct dc_pgcat *cat, struct named *n, const char *schema,
    const char *name)
{
	n->schema = arena_str(cat, schema);
	n->name = arena_str(cat, name);
	n->next = -1;
	return n->schema != NULL && n->name != NULL ? DC_OK : DC_ENOMEM;
}

static int
add_proc(struct dc_pgcat *cat, const char *const *f, uint32_t oid)
{
	struct proc	*e;
	long		 nargs = num(f[9]), ndef = num(f[10]);

	if (f[4] == NULL || f[5] == NULL || f[6] == NULL || nargs < 0 ||
	    ndef < 0)
		return DC_EINVAL;
	if (grow((void **)&cat->procs, cat->nprocs, &cat->cprocs,
	    sizeof(*e)) != DC_OK)
		return DC_ENOMEM;
	e = &cat->procs[cat->nprocs];
	memset(e, 0, sizeof(*e));
	if (set_named(cat, &e->n, f[2], f[3]) != DC_OK ||
	    (e->lang = arena_str(cat, f[6])) == NULL)
		return DC_ENOMEM;
	e->oid = oid;
	e->volatility = f[4][0];
	e->kind = f[5][0];
	e->trusted = num(f[7]) == 1;
	e->secdef = num(f[8]) == 1;
	e->nargs = (int)nargs;
	e->ndefaults = (int)ndef;
	e->variadic = num(f[11]) == 1;
	if (oid_array(cat, f[12], &e->support, &e->nsupport) != DC_OK)
		return DC_EINVAL;
	cat->nprocs++;
	return DC_OK;
}

static int
add_op(struct dc_pgcat *cat, const char *const *f)
{
	struct op	*e;
	long		 func = num(f[5]);

	if (f[4] == NULL || func < 0)
		return DC_EINVAL;
	if (grow((void **)&cat->ops, cat->nops, &cat->cops, sizeof(*e)) !=
	    DC_OK)
		return DC_ENOMEM;
	e = &cat->ops[cat->nops];
	memset(e, 0, sizeof(*e));
	if (set_named(cat, &e->n, f[2], f[3]) != DC_OK)
		return DC_ENOMEM;
	e->kind = f[4][0];
	e->func = (uint32_t)func;
	cat->nops++;
	return DC_OK;
}

static int
add_cast(struct dc_pgcat *cat, const char *const *f)
{
	long	 target = num(f[4]), func = num(f[5]);

	if (target < 0 || func < 0)
		return DC_EINVAL;
	if (grow((void **)&cat->casts, cat->ncasts, &cat->ccasts,
	    sizeof(*cat->casts)) != DC_OK)
		return DC_ENOMEM;
	cat->casts[cat->ncasts].target = (uint32_t)target;
	cat->casts[cat->ncasts].func = (uint32_t)func;
	cat->ncasts++;
	return DC_OK;
}

static int
add_typrel(struct dc_pgcat *cat, const char *const *f, uint32_t oid,
    int is_type)
{
	struct typrel	**arr = is_type ? &cat->types : &cat->rels;
	int		*n = is_type ? &cat->ntypes : &cat->nrels;
	int		*c = is_type ? &cat->ctypes : &cat->crels;
	struct typrel	*e;
	long		 input = num(f[4]), base = num(f[5]);

	if (is_type ? input < 0 || base < 0 : f[4] == NULL)
		return DC_EINVAL;
	if (grow((void **)arr, *n, c, sizeof(*e)) != DC_OK)
		return DC_ENOMEM;
	e = &(*arr)[*n];
	memset(e, 0, sizeof(*e));
	if (set_named(cat, &e->n, f[2], f[3]) != DC_OK)
		return DC_ENOMEM;
	e->oid = oid;
	if (is_type) {
		e->input = (uint32_t)input;
		e->basetype = (uint32_t)base;
	} else
		e->relkind = f[4][0];
	if (f[13] != NULL && (e->def = arena_str(cat, f[13])) == NULL)
		return DC_ENOMEM;
	(*n)++;
	return DC_OK;
}

int
dc_pgcat_add_row(struct dc_pgcat *cat, const char *const *f)
{
	long	 oid;

	if (cat->finished || f[0] == NULL || (oid = num(f[1])) < 0)
		return DC_EINVAL;
	if (f[0][0] != 'c' && (f[2] == NULL || f[3] == NULL))
		return DC_EINVAL;
	switch (f[0][0]) {
	case 'p':
		return add_proc(cat, f, (uint32_t)oid);
	case 'o':
		return add_op(cat, f);
	case 'c':
		return add_cast(cat, f);
	case 't':
		return add_typrel(cat, f, (uint32_t)oid, 1);
	case 'r':
		return add_typrel(cat, f, (uint32_t)oid, 0);
	}
	return DC_EINVAL;
}

/* --- indexes --- */

static uint32_t
hash_str(const char *s)
{
	uint32_t	 h = 2166136261u;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

/* Index n entries of stride sz (each starting with struct named). */
static int
index_build(struct index *ix, void *base, int n, size_t sz)
{
	struct named	*e;
	size_t		 nb = 16, b;
	int		 i;

	while (nb < (size_t)n * 2)
		nb *= 2;
	if ((ix->bucket = malloc(nb * sizeof(int))) == NULL)
		return DC_ENOMEM;
	ix->nb = nb;
	for (b = 0; b < nb; b++)
		ix->bucket[b] = -1;
	/* backwards, so a bucket lists entries in the order they came */
	for (i = n - 1; i >= 0; i--) {
		e = (struct named *)(void *)((char *)base + (size_t)i * sz);
		b = hash_str(e->name) & (nb - 1);
		e->next = ix->bucket[b];
		ix->bucket[b] = i;
	}
	return DC_OK;
}

/* First entry in name's bucket (follow ->next, comparing names). */
static int
index_first(const struct index *ix, const char *name)
{
	if (ix->bucket == NULL)
		return -1;
	return ix->bucket[hash_str(name) & (ix->nb - 1)];
}

static int
cmp_proc_oid(const void *a, const void *b, void *arg)
{
	const struct dc_pgcat *cat = arg;
	uint32_t x = cat->procs[*(const int *)a].oid;
	uint32_t y = cat->procs[*(const int *)b].oid;

	return x < y ? -1 : x > y;
}

static int
cmp_type_oid(const void *a, const void *b, void *arg)
{
	const struct dc_pgcat *cat = arg;
	uint32_t x = cat->types[*(const int *)a].oid;
	uint32_t y = cat->types[*(const int *)b].oid;

	return x < y ? -1 : x > y;
}

/* Index into sorted (by oid, through get) of oid, or -1. */
static int
find_oid(const int *sorted, int n, uint32_t oid, const struct dc_pgcat *cat,
    int procs)
{
	int		 lo = 0, hi = n - 1, mid;
	uint32_t	 o;

	while (lo <= hi) {
		mid = lo + (hi - lo) / 2;
		o = procs ? cat->procs[sorted[mid]].oid :
		    cat->types[sorted[mid]].oid;
		if (o == oid)
			return sorted[mid];
		if (o < oid)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

static int
proc_by_oid(const struct dc_pgcat *cat, uint32_t oid)
{
	return find_oid(cat->by_oid, cat->nprocs, oid, cat, 1);
}

static int
type_by_oid(const struct dc_pgcat *cat, uint32_t oid)
{
	return find_oid(cat->types_by_oid, cat->ntypes, oid, cat, 0);
}

/* --- judging functions --- */

int
dc_pgpolicy_denied(const char *name, int nargs, const char **why)
{
	const struct deny *d;
	size_t		 i, l;

	for (i = 0; i < DC_ARRAY_SIZE(deny_list); i++) {
		d = &deny_list[i];
		l = strlen(d->name);
		if (d->prefix ? strncmp(name, d->name, l) != 0 :
		    strcmp(name, d->name) != 0)
			continue;
		if (d->nargs >= 0 && nargs >= 0 && nargs != d->nargs)
			continue;
		if (why != NULL)
			*why = d->why;
		return 1;
	}
	return 0;
}

static const struct deny *
deny_entry(const char *name, int nargs)
{
	const char	*why;
	size_t		 i;

	if (!dc_pgpolicy_denied(name, nargs, &why))
		return NULL;
	for (i = 0; i < DC_ARRAY_SIZE(deny_list); i++)
		if (deny_list[i].why == why)
			return &deny_list[i];
	return NULL;
}

static int
builtin(const struct proc *p)
{
	return p->oid < DC_PG_FIRST_NORMAL_OID;
}

static int
allowed_volatile(const struct proc *p)
{
	size_t	 i;

	if (!builtin(p) || strcmp(p->n.schema, "pg_catalog") != 0)
		return 0;
	for (i = 0; i < DC_ARRAY_SIZE(allow_list); i++)
		if (strcmp(p->n.name, allow_list[i]) == 0)
			return 1;
	return 0;
}

/* A function on its own: deny-list, language, volatility. */
static void
judge_plain(struct proc *p)
{
	p->user = !builtin(p) || p->secdef;
	if ((p->deny = deny_entry(p->n.name, p->nargs)) != NULL)
		p->bad = BAD_DENY;
	else if (!p->trusted && strcmp(p->lang, "internal") != 0 &&
	    strcmp(p->lang, "c") != 0 && strcmp(p->lang, "sql") != 0)
		p->bad = BAD_UNTRUSTED;
	else if (p->volatility != 'i' && p->volatility != 's' &&
	    !allowed_volatile(p))
		p->bad = BAD_VOLATILE;
}

/* An aggregate also runs its support functions (CREATE AGGREGATE). */
static void
judge_aggregate(struct dc_pgcat *cat, struct proc *p)
{
	int	 i, k;

	judge_plain(p);
	if (p->bad != OK)
		return;
	for (i = 0; i < p->nsupport; i++) {
		if (p->support[i] == 0 ||
		    (k = proc_by_oid(cat, p->support[i])) < 0)
			continue;
		if (cat->procs[k].user)
			p->user = 1;
		if (cat->procs[k].bad != OK) {
			p->bad = BAD_SUPPORT;
			p->why_proc = k;
			return;
		}
	}
}

/* Why function k is refused, as a clause: "x.f is VOLATILE ...". */
static void
proc_why(const struct dc_pgcat *cat, int k, char *buf, size_t sz)
{
	const struct proc *p = &cat->procs[k];
	char		 inner[WHY_MAX];

	switch (p->bad) {
	case BAD_DENY:
		snprintf(buf, sz, "%s.%s is on datachatd's deny-list: %s",
		    p->n.schema, p->n.name, p->deny->why);
		break;
	case BAD_UNTRUSTED:
		snprintf(buf, sz, "%s.%s is written in %s, an untrusted "
		    "language that can act outside the database", p->n.schema,
		    p->n.name, p->lang);
		break;
	case BAD_SUPPORT:
		proc_why(cat, p->why_proc, inner, sizeof(inner));
		snprintf(buf, sz, "%s.%s is an aggregate that calls %.160s",
		    p->n.schema, p->n.name, inner);
		break;
	default:
		snprintf(buf, sz, "%s.%s is VOLATILE in the target's catalog "
		    "(a read-only query may call IMMUTABLE and STABLE "
		    "functions, and a few harmless VOLATILE ones)",
		    p->n.schema, p->n.name);
		break;
	}
}

/* --- judging references (statements, and definitions in the catalog) --- */

struct check {
	struct dc_pgcat	*cat;
	const char	*sql;
	size_t		 len;
	struct dc_pg_refusal *ref;
	int		*unusual;
};

static void	 judge_typrel(struct dc_pgcat *, struct typrel *, int);
static void	 refuse(struct check *, const struct dc_pgref *, const char *,
		     const char *, ...) DC_PRINTF(4, 5);

static int
char_pos(const char *sql, size_t len, int off)
{
	size_t	 i;
	int	 n = 0;

	if (sql == NULL || off < 0 || (size_t)off > len)
		return 0;
	for (i = 0; i < (size_t)off; i++)
		if (((unsigned char)sql[i] & 0xc0) != 0x80)
			n++;
	return n + 1;
}

static void
refuse(struct check *c, const struct dc_pgref *r, const char *node,
    const char *fmt, ...)
{
	va_list	 ap;

	snprintf(c->ref->node, sizeof(c->ref->node), "%s", node);
	c->ref->pos = char_pos(c->sql, c->len, r->pos);
	va_start(ap, fmt);
	vsnprintf(c->ref->reason, sizeof(c->ref->reason), fmt, ap);
	va_end(ap);
	/* names come from the statement and the catalog: any bytes */
	dc_pgguard_clean(c->ref->node);
	dc_pgguard_clean(c->ref->reason);
}

static int
same_schema(const struct dc_pgref *r, const struct named *n)
{
	return r->schema[0] == '\0' || strcmp(r->schema, n->schema) == 0;
}

static void
qualified(const struct dc_pgref *r, char *buf, size_t sz)
{
	snprintf(buf, sz, "%s%s%s", r->schema, r->schema[0] ? "." : "",
	    r->name);
}

/* Could a call with nargs arguments reach function p? */
static int
arity_fits(const struct proc *p, int nargs, int any)
{
	if (any || nargs < 0)
		return 1;
	if (nargs >= p->nargs - p->ndefaults && nargs <= p->nargs)
		return 1;
	return p->variadic && nargs >= p->nargs - 1;
}

/*
 * The functions r may call: how many; *bad is the first refused one
 * (index) or -1; *named counts functions of that name, any arity.
 */
static int
candidates(struct check *c, const struct dc_pgref *r, int nargs, int *bad,
    int *named)
{
	const struct dc_pgcat *cat = c->cat;
	const struct proc *p;
	int		 i, n = 0;

	*bad = -1;
	*named = 0;
	for (i = index_first(&cat->proc_names, r->name); i >= 0;
	    i = p->n.next) {
		p = &cat->procs[i];
		if (strcmp(p->n.name, r->name) != 0 || !same_schema(r, &p->n) ||
		    p->kind == 'p')
			continue;	/* a procedure is only for CALL */
		(*named)++;
		if (!arity_fits(p, nargs, r->anyargs))
			continue;
		n++;
		if (p->user)
			*c->unusual = 1;
		if (p->bad != OK && *bad < 0)
			*bad = i;
	}
	return n;
}

/* The types named r: how many; *bad the first refused one, or -1. */
static int
types_named(struct check *c, const struct dc_pgref *r, int *bad)
{
	struct typrel	*t;
	int		 i, n = 0;

	*bad = -1;
	for (i = index_first(&c->cat->type_names, r->name); i >= 0;
	    i = t->n.next) {
		t = &c->cat->types[i];
		if (strcmp(t->n.name, r->name) != 0 || !same_schema(r, &t->n))
			continue;
		n++;
		judge_typrel(c->cat, t, 1);
		if (t->why != NULL && *bad < 0)
			*bad = i;
	}
	return n;
}

static int
check_type(struct check *c, const struct dc_pgref *r, const char *node)
{
	char	 name[2 * DC_PG_NAME_MAX];
	int	 bad;

	qualified(r, name, sizeof(name));
	if (types_named(c, r, &bad) == 0) {
		refuse(c, r, node, "type %s is not in the target's catalog",
		    name);
		return DC_ENOENT;
	}
	if (bad < 0)
		return DC_OK;
	refuse(c, r, node, "a cast to %s: %s", name, c->cat->types[bad].why);
	return DC_EINVAL;
}

static int
check_func(struct check *c, const struct dc_pgref *r)
{
	char	 node[64], why[WHY_MAX], name[2 * DC_PG_NAME_MAX];
	int	 bad, named, bt;

	snprintf(node, sizeof(node), "FuncCall %.40s", r->name);
	qualified(r, name, sizeof(name));
	if (candidates(c, r, r->nargs, &bad, &named) == 0) {
		/* int4(x), varchar(x): a cast written as a call */
		if (types_named(c, r, &bt) > 0)
			return check_type(c, r, node);
		if (named > 0)
			refuse(c, r, node, "no function %s takes %d "
			    "argument%s in the target's catalog", name,
			    r->nargs, r->nargs == 1 ? "" : "s");
		else
			refuse(c, r, node, "function %s is not in the "
			    "target's catalog", name);
		return DC_ENOENT;
	}
	if (bad < 0)
		return DC_OK;
	proc_why(c->cat, bad, why, sizeof(why));
	refuse(c, r, node, "%s", why);
	return DC_EINVAL;
}

/* x.f: a column or field f, or the call f(x) when f is a function. */
static int
check_field(struct check *c, const struct dc_pgref *r)
{
	char	 node[64], why[WHY_MAX];
	int	 bad, named, bt;

	snprintf(node, sizeof(node), "field selection .%.40s", r->name);
	if (candidates(c, r, 1, &bad, &named) == 0) {
		if (types_named(c, r, &bt) > 0 && bt >= 0)
			return check_type(c, r, node);
		return DC_OK;	/* a column or a field */
	}
	if (bad < 0)
		return DC_OK;
	proc_why(c->cat, bad, why, sizeof(why));
	refuse(c, r, node, "x.%s is the call %s(x) when x has no column "
	    "named so, and %s", r->name, r->name, why);
	return DC_EINVAL;
}

static int
check_op(struct check *c, const struct dc_pgref *r)
{
	const struct dc_pgcat *cat = c->cat;
	const struct op	*o;
	char		 node[64], why[WHY_MAX], name[2 * DC_PG_NAME_MAX];
	int		 i, k, n = 0;
	char		 kind = r->nargs == 1 ? 'l' : 'b';

	snprintf(node, sizeof(node), "operator %.40s", r->name);
	qualified(r, name, sizeof(name));
	for (i = index_first(&cat->op_names, r->name); i >= 0; i = o->n.next) {
		o = &cat->ops[i];
		if (strcmp(o->n.name, r->name) != 0 || !same_schema(r, &o->n) ||
		    o->kind != kind)
			continue;
		n++;
		if ((k = proc_by_oid(cat, o->func)) < 0 ||
		    cat->procs[k].bad == OK)
			continue;
		proc_why(cat, k, why, sizeof(why));
		refuse(c, r, node, "%soperator %s.%s calls %s", r->implicit ?
		    "an implied comparison (ORDER BY, GROUP BY, DISTINCT, IN, "
		    "CASE, USING...) may use " : "", o->n.schema, o->n.name,
		    why);
		return DC_EINVAL;
	}
	if (n == 0) {
		refuse(c, r, node, "%s operator %s is not in the target's "
		    "catalog", kind == 'l' ? "prefix" : "infix", name);
		return DC_ENOENT;
	}
	return DC_OK;
}

static int
check_rel(struct check *c, const struct dc_pgref *r)
{
	struct typrel	*e;
	char		 node[64];
	int		 i;

	snprintf(node, sizeof(node), "RangeVar %.40s", r->name);
	for (i = index_first(&c->cat->rel_names, r->name); i >= 0;
	    i = e->n.next) {
		e = &c->cat->rels[i];
		if (strcmp(e->n.name, r->name) != 0 || !same_schema(r, &e->n))
			continue;
		*c->unusual = 1;	/* it runs SQL we did not send */
		judge_typrel(c->cat, e, 0);
		if (e->why == NULL)
			continue;
		refuse(c, r, node, "%s %s.%s: %s", e->relkind == 'v' ? "view" :
		    e->relkind == 'f' ? "foreign table" : "table", e->n.schema,
		    e->n.name, e->why);
		return DC_EINVAL;
	}
	return DC_OK;
}

static int
check_tsm(struct check *c, const struct dc_pgref *r)
{
	const struct proc *p;
	char		 node[64], name[2 * DC_PG_NAME_MAX];
	int		 i, n = 0;

	snprintf(node, sizeof(node), "TABLESAMPLE %.40s", r->name);
	qualified(r, name, sizeof(name));
	for (i = index_first(&c->cat->proc_names, r->name); i >= 0;
	    i = p->n.next) {
		p = &c->cat->procs[i];
		if (strcmp(p->n.name, r->name) != 0 || !same_schema(r, &p->n) ||
		    p->nargs != 1)
			continue;
		n++;
		if (!builtin(p)) {
			refuse(c, r, node, "TABLESAMPLE method %s is not built "
			    "into PostgreSQL", name);
			return DC_EINVAL;
		}
	}
	if (n == 0) {
		refuse(c, r, node, "TABLESAMPLE method %s is not in the "
		    "target's catalog", name);
		return DC_ENOENT;
	}
	return DC_OK;
}

/*
 * Judge every reference of st.  A refusal (DC_EINVAL) wins over a name
 * the catalog does not know (DC_ENOENT), which a fresher catalog might.
 */
static int
check_refs(struct check *c, const struct dc_pgstmt *st)
{
	struct dc_pg_refusal *out = c->ref, found;
	const struct dc_pgref *r;
	int		 i, rc, first = DC_OK;

	for (i = 0; i < st->nrefs; i++) {
		r = &st->refs[i];
		memset(&found, 0, sizeof(found));
		c->ref = &found;
		switch (r->kind) {
		case DC_PGREF_FUNC:
			rc = check_func(c, r);
			break;
		case DC_PGREF_FIELD:
			rc = check_field(c, r);
			break;
		case DC_PGREF_OP:
			rc = check_op(c, r);
			break;
		case DC_PGREF_TYPE:
			rc = check_type(c, r, "TypeCast");
			break;
		case DC_PGREF_REL:
			rc = check_rel(c, r);
			break;
		case DC_PGREF_TSM:
			rc = check_tsm(c, r);
			break;
		default:
			rc = DC_EINVAL;
			snprintf(found.node, sizeof(found.node), "reference");
			snprintf(found.reason, sizeof(found.reason),
			    "a reference the policy does not know");
			break;
		}
		c->ref = out;
		if (rc == DC_EINVAL) {
			*out = found;
			return DC_EINVAL;
		}
		if (rc == DC_ENOENT && first == DC_OK) {
			*out = found;
			first = DC_ENOENT;
		}
	}
	return first;
}

/*
 * The SQL a view, a policy or a domain check runs, through the guard
 * and the same checks as a statement.  NULL when it is allowed, else
 * why it is not (in the arena; NULL on out of memory too, so a catalog
 * that cannot say is caught by the caller's DC_ENOMEM).
 */
static char *
judge_def(struct dc_pgcat *cat, const char *def)
{
	struct dc_pgstmt *st = NULL;
	struct dc_pg_refusal ref;
	struct check	 c;
	char		 buf[WHY_MAX + 64];
	int		 rc, unusual = 0;

	rc = dc_pgguard_parse(def, strlen(def), &st, &ref);
	if (rc == DC_OK) {
		memset(&c, 0, sizeof(c));
		c.cat = cat;
		c.ref = &ref;
		c.unusual = &unusual;
		rc = check_refs(&c, st);
		dc_pgguard_free(st);
	}
	if (rc == DC_OK || rc == DC_ENOMEM)
		return NULL;
	snprintf(buf, sizeof(buf), "%s: %s", ref.node, ref.reason);
	return arena_str(cat, buf);
}

/*
 * A type is as good as what a cast to it runs: its input function (a
 * literal cast to it), each cast function into it, its domain checks and
 * those of its base domain.  A relation is as good as its definition
 * (view) or policies (row security).  Judged once, when first asked;
 * a definition that reaches itself again is judged by what came before.
 */
static void
judge_typrel(struct dc_pgcat *cat, struct typrel *e, int is_type)
{
	char	 why[WHY_MAX];
	int	 i, k = -1, b;

	if (e->state != NEW)
		return;
	e->state = JUDGING;
	if (is_type) {
		if ((k = proc_by_oid(cat, e->input)) >= 0 &&
		    cat->procs[k].bad == OK)
			k = -1;
		for (i = 0; i < cat->ncasts && k < 0; i++)
			if (cat->casts[i].target == e->oid &&
			    (k = proc_by_oid(cat, cat->casts[i].func)) >= 0 &&
			    cat->procs[k].bad == OK)
				k = -1;
		if (k >= 0) {
			proc_why(cat, k, why, sizeof(why));
			e->why = arena_str(cat, why);
		}
	}
	if (e->why == NULL && e->def != NULL)
		e->why = judge_def(cat, e->def);
	if (is_type && e->why == NULL && e->basetype != 0 &&
	    (b = type_by_oid(cat, e->basetype)) >= 0) {
		judge_typrel(cat, &cat->types[b], 1);
		e->why = cat->types[b].why;
	}
	e->state = JUDGED;
}

int
dc_pgcat_finish(struct dc_pgcat *cat)
{
	int	 i;

	if (cat->finished)
		return DC_OK;
	if ((cat->by_oid = malloc(((size_t)cat->nprocs + 1) *
	    sizeof(int))) == NULL ||
	    (cat->types_by_oid = malloc(((size_t)cat->ntypes + 1) *
	    sizeof(int))) == NULL)
		return DC_ENOMEM;
	for (i = 0; i < cat->nprocs; i++)
		cat->by_oid[i] = i;
	qsort_r(cat->by_oid, (size_t)cat->nprocs, sizeof(int), cmp_proc_oid,
	    cat);
	for (i = 0; i < cat->ntypes; i++)
		cat->types_by_oid[i] = i;
	qsort_r(cat->types_by_oid, (size_t)cat->ntypes, sizeof(int),
	    cmp_type_oid, cat);
	if (index_build(&cat->proc_names, cat->procs, cat->nprocs,
	    sizeof(struct proc)) != DC_OK ||
	    index_build(&cat->op_names, cat->ops, cat->nops,
	    sizeof(struct op)) != DC_OK ||
	    index_build(&cat->type_names, cat->types, cat->ntypes,
	    sizeof(struct typrel)) != DC_OK ||
	    index_build(&cat->rel_names, cat->rels, cat->nrels,
	    sizeof(struct typrel)) != DC_OK)
		return DC_ENOMEM;
	/* plain functions first: aggregates are judged by them */
	for (i = 0; i < cat->nprocs; i++)
		if (cat->procs[i].kind != 'a')
			judge_plain(&cat->procs[i]);
	for (i = 0; i < cat->nprocs; i++)
		if (cat->procs[i].kind == 'a')
			judge_aggregate(cat, &cat->procs[i]);
	/* then what runs SQL, which may use all of the above */
	for (i = 0; i < cat->ntypes; i++)
		judge_typrel(cat, &cat->types[i], 1);
	for (i = 0; i < cat->nrels; i++)
		judge_typrel(cat, &cat->rels[i], 0);
	cat->nrefused = 0;
	for (i = 0; i < cat->nprocs; i++)
		if (cat->procs[i].bad != OK)
			cat->nrefused++;
	cat->finished = 1;
	return DC_OK;
}

void
dc_pgcat_counts(const struct dc_pgcat *cat, int *nprocs, int *nrefused)
{
	*nprocs = cat->nprocs;
	*nrefused = cat->nrefused;
}

int
dc_pgpolicy_check(const struct dc_pgcat *cat, const struct dc_pgstmt *st,
    const char *sql, size_t len, struct dc_pg_refusal *ref, int *unusual)
{
	struct check	 c;

	memset(ref, 0, sizeof(*ref));
	*unusual = 0;
	if (!cat->finished)
		return DC_EINVAL;
	/*
	 * Every type and relation was judged by dc_pgcat_finish(), so the
	 * checks below only read the catalog.
	 */
	c.cat = (struct dc_pgcat *)(uintptr_t)cat;
	c.sql = sql;
	c.len = len;
	c.ref = ref;
	c.unusual = unusual;
	return check_refs(&c, st);
}
