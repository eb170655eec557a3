/*
 * shreg.h - the shared registry: decrypted connection entries in one
 * anonymous MAP_SHARED segment made by the master before fork.
 *
 * The master is the only writer.  Each slot carries its own seqlock: the
 * writer makes seq odd, writes, makes it even again; a reader copies the
 * slot and retries when seq was odd or moved.  The master writes a batch
 * of changes (one row, or a full resync) and then publishes it:
 * dc_shreg_commit() bumps registry_gen with release semantics, so a
 * worker that sees a new generation also sees every slot written before
 * it.  Readers never
 * lock and never block the writer.
 *
 * The segment also holds one stats block per worker slot, each written
 * only by its worker (relaxed atomics) and read by the master, so counters
 * cost nothing on the request path.
 *
 * The segment holds decrypted URLs: it is MADV_DONTDUMP, never named in
 * /dev/shm, and workers are not dumpable.
 */
#ifndef DC_SHREG_H
#define DC_SHREG_H

#include <stddef.h>
#include <stdint.h>

#define DC_NAME_MAX	256
#define DC_URL_MAX	2048
#define DC_DESC_MAX	2048
#define DC_TAGS_MAX	1024	/* tags as a JSON array text */
#define DC_TYPE_MAX	16
#define DC_MAX_WORKERS	128	/* slots: old + new workers during a reload */
#define DC_REFUSED_MAX	64	/* refused rows listed by reason */
#define DC_REASON_MAX	192

/* One connection, as copied out of the segment. */
struct dc_entry {
	uint8_t		 id[16];
	uint64_t	 gen;		/* changes when url/type/active change */
	int64_t		 created_at;	/* microseconds since the epoch */
	int64_t		 last_profiled;	/* microseconds, 0 = null */
	int32_t		 datapoint_count;
	uint8_t		 is_active;
	uint8_t		 is_default;
	uint8_t		 has_description;
	char		 type[DC_TYPE_MAX];
	char		 name[DC_NAME_MAX];
	char		 url[DC_URL_MAX];	/* decrypted: never log it */
	char		 tags[DC_TAGS_MAX];
	char		 description[DC_DESC_MAX];
};

#define DC_METRIC_ROUTES	64	/* route index; the last is "unmatched" */
#define DC_METRIC_BUCKETS	12	/* request duration histogram */
#define DC_METRIC_QBUCKETS	12	/* query phase histograms */

/*
 * The phases of a target query, each timed from when it was queued
 * (pool.c, job_timing): until it was sent, how long it then waited behind
 * other queries on its connection, until its first result arrived, until
 * it was answered.  Before it was queued, its statement was judged
 * (sqlcheck.c): DC_QP_CHECK is that time, from the statement's arrival
 * at its check to the verdict, which includes waiting for the target's
 * policy catalog to be read (and a connection to be opened for that).
 */
enum dc_query_phase {
	DC_QP_QUEUE = 0,
	DC_QP_BEHIND,
	DC_QP_FIRST,
	DC_QP_TOTAL,
	DC_QP_CHECK,
	DC_QP_N
};
#define DC_METRIC_TARGETS	32	/* per-target counters per worker */

/*
 * What a target's role may do beyond reading (found by the driver when
 * it connects; one bit each, in the order of dc_priv_names), and the bit
 * that says the role was looked at at all.
 */
enum dc_priv {
	DC_PRIV_SUPERUSER = 1 << 0,
	DC_PRIV_CREATEROLE = 1 << 1,
	DC_PRIV_READ_FILES = 1 << 2,
	DC_PRIV_WRITE_FILES = 1 << 3,
	DC_PRIV_EXEC_PROGRAM = 1 << 4,
	DC_PRIV_SIGNAL_BACKEND = 1 << 5,
	DC_PRIV_KNOWN = 1 << 15,
};
#define DC_PRIV_COUNT		6

/* "superuser", "createrole", "pg_read_server_files", ...: bit i's name. */
extern const char *const dc_priv_names[DC_PRIV_COUNT];

/* The names of privs' bits, comma-separated, into out ("" for none). */
void		 dc_priv_format(unsigned privs, char *out, size_t outsz);

/* Per-target counters of one worker; id all zero = free. */
struct dc_target_stats {
	uint8_t		 id[16];
	uint64_t	 open;
	uint64_t	 opened;
	uint64_t	 failed;
	uint64_t	 queries_ok;
	uint64_t	 queries_failed;
	uint64_t	 privileges;	/* enum dc_priv of the last connection */
};

/*
 * Per worker counters, written by their worker with relaxed atomics and
 * summed by whoever reads them (/metrics, datachatctl): no lock anywhere.
 */
struct dc_worker_stats {
	uint64_t	 pid;
	uint64_t	 started_ms;		/* wall clock */
	uint64_t	 requests;
	uint64_t	 conns_open;		/* client connections */
	uint64_t	 conns_accepted;	/* since the worker started */
	uint64_t	 accepting;		/* 1: takes new connections */
	uint64_t	 conns_timed_out;	/* head or body deadline */
	uint64_t	 requests_refused;	/* heads the scan refused */
	uint64_t	 auth_checks;		/* tokens checked (auth.c) */
	uint64_t	 auth_check_ns_sum;	/* time those checks took */
	uint64_t	 inflight;
	uint64_t	 gen_applied;
	uint64_t	 target_conns_open;
	uint64_t	 target_conns_opened;
	uint64_t	 target_conns_failed;
	uint64_t	 queries_ok;
	uint64_t	 queries_failed;
	uint64_t	 queries_pipelined;	/* sent behind another job */
	uint64_t	 queries_requeued;	/* sent again, not run or lost */
	uint64_t	 queries_moved;		/* off a stalled connection */
	uint64_t	 target_conns_stalled;	/* made no progress for the bound */
	/* enum dc_query_phase; bounds dc_query_bounds_us, last: +Inf */
	uint64_t	 query_phase_bucket[DC_QP_N][DC_METRIC_QBUCKETS];
	uint64_t	 query_phase_us_sum[DC_QP_N];
	uint64_t	 query_phase_us_max[DC_QP_N];
	uint64_t	 llm_calls;
	uint64_t	 status_2xx, status_4xx, status_5xx;
	uint64_t	 llm_errors;
	uint64_t	 llm_latency_ms_sum;
	uint64_t	 route_status[DC_METRIC_ROUTES][5];	/* 1xx..5xx */
	uint64_t	 duration_bucket[DC_METRIC_BUCKETS];	/* last: +Inf */
	uint64_t	 duration_us_sum;
	struct dc_target_stats targets[DC_METRIC_TARGETS];
};

/*
 * A row of the system database the registry does not serve, and why
 * (it does not decrypt, a field does not fit, its URL is not allowed).
 * Written by the master, shown by /ready and datachatctl status.
 */
struct dc_refused_row {
	uint8_t		 id[16];
	char		 name[64];	/* the start of its name, for people */
	char		 reason[DC_REASON_MAX];
};

enum dc_shreg_state {
	DC_REG_NEVER_LOADED = 0,	/* no trustworthy registry yet */
	DC_REG_FRESH,			/* loaded, system DB reachable */
	DC_REG_STALE,			/* loaded, system DB lost since */
};

struct dc_shreg;	/* opaque: the mapping */

/* Master, before fork: capacity entries, DC_MAX_WORKERS stats blocks. */
int		 dc_shreg_create(struct dc_shreg **reg, int capacity);
void		 dc_shreg_destroy(struct dc_shreg *reg);

/* --- writer side (master only) --- */

/*
 * Insert or replace the entry with e->id.  e->gen is assigned by the
 * writer (bumped when url, type or active changed).  Returns 0 or
 * DC_EFULL.  Does not bump registry_gen: call dc_shreg_commit() after a
 * batch.
 */
int		 dc_shreg_put(struct dc_shreg *reg, const struct dc_entry *e);
int		 dc_shreg_remove(struct dc_shreg *reg, const uint8_t id[16]);

/*
 * A full resync: mark every slot, put() the rows seen (which unmarks
 * them), then sweep removes the ones still marked.
 */
void		 dc_shreg_mark_all(struct dc_shreg *reg);
int		 dc_shreg_sweep(struct dc_shreg *reg);

/* Publish: registry_gen++ (release).  Returns the new generation. */
uint64_t	 dc_shreg_commit(struct dc_shreg *reg);

void		 dc_shreg_set_state(struct dc_shreg *reg, int state);
void		 dc_shreg_set_bad_rows(struct dc_shreg *reg, int n);
void		 dc_shreg_set_last_resync(struct dc_shreg *reg, uint64_t ms);

/*
 * Refused rows: refuse() adds or replaces the row's reason, accept()
 * forgets it, refuse_clear() forgets all (a full resync).  Beyond
 * DC_REFUSED_MAX rows only the count grows.
 */
void		 dc_shreg_refuse(struct dc_shreg *reg, const uint8_t id[16],
		     const char *name, const char *reason);
void		 dc_shreg_accept(struct dc_shreg *reg, const uint8_t id[16]);
void		 dc_shreg_refuse_clear(struct dc_shreg *reg);

void		 dc_shreg_count_resync(struct dc_shreg *reg);
void		 dc_shreg_set_sysdb_up(struct dc_shreg *reg, int up);

/*
 * The master's heartbeat: it stamps the segment every DC_MASTER_BEAT_MS
 * (monotonic clock, shared by every process), and a worker whose master
 * has been silent for DC_MASTER_SILENT_MS answers /ready with 503: a
 * stopped or wedged master publishes nothing, so its registry cannot be
 * trusted to follow changes.
 */
#define DC_MASTER_BEAT_MS	1000
#define DC_MASTER_SILENT_MS	10000
void		 dc_shreg_beat(struct dc_shreg *reg, uint64_t now_ms);
uint64_t	 dc_shreg_last_beat(const struct dc_shreg *reg);

/* --- reader side (any process) --- */

uint64_t	 dc_shreg_resyncs(const struct dc_shreg *reg);
int		 dc_shreg_sysdb_up(const struct dc_shreg *reg);

uint64_t	 dc_shreg_gen(const struct dc_shreg *reg);	/* acquire */
int		 dc_shreg_state(const struct dc_shreg *reg);
int		 dc_shreg_bad_rows(const struct dc_shreg *reg);
uint64_t	 dc_shreg_last_resync(const struct dc_shreg *reg);

/*
 * Copy up to max refused rows (consistent as a whole) into out; returns
 * how many, *total how many there are.
 */
int		 dc_shreg_refused(const struct dc_shreg *reg,
		     struct dc_refused_row *out, int max, int *total);
int		 dc_shreg_capacity(const struct dc_shreg *reg);
int		 dc_shreg_count(const struct dc_shreg *reg);

/* Copy one entry by id.  Returns 0 or DC_ENOENT. */
int		 dc_shreg_get(const struct dc_shreg *reg, const uint8_t id[16],
		     struct dc_entry *out);

/* Copy the entry marked default, if any.  0 or DC_ENOENT. */
int		 dc_shreg_get_default(const struct dc_shreg *reg,
		     struct dc_entry *out);

/*
 * Copy up to max live entries into out (consistent per entry).
 * Returns how many were copied.
 */
int		 dc_shreg_list(const struct dc_shreg *reg, struct dc_entry *out,
		     int max);

/* The generation of one entry, or 0 when it is gone (cheap check). */
uint64_t	 dc_shreg_entry_gen(const struct dc_shreg *reg,
		     const uint8_t id[16]);

/* Stats block of worker slot i (0 <= i < DC_MAX_WORKERS). */
struct dc_worker_stats *dc_shreg_stats(struct dc_shreg *reg, int i);

/*
 * What the workers found the role of target id may do (enum dc_priv,
 * the bits of every worker that connected to it), 0 when none did.
 */
unsigned	 dc_shreg_target_privileges(struct dc_shreg *reg,
		     const uint8_t id[16]);

/*
 * 1 when some worker's counters (this one's included) already hold
 * exactly privs for target id: that worker found and logged them.
 */
int		 dc_shreg_target_privileges_seen(struct dc_shreg *reg,
		     const uint8_t id[16], unsigned privs);

#endif /* DC_SHREG_H */
