/*
 * ops.c - operational routes: GET /api/v1/health (the process is
 * up and serving), GET /api/v1/ready (the registry can be trusted:
 * loaded and fresh, every stored row decrypted, and the master that
 * publishes it heard from lately), the Prometheus metrics, and
 * DataChat's banner on GET /.  A load balancer sends traffic only to a
 * ready instance.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "dc.h"
#include "http.h"
#include "jsonw.h"
#include "pool.h"
#include "tokens.h"
#include "shreg.h"
#include "target.h"
#include "util.h"
#include "worker.h"

static void
health(struct dc_req *r)
{
	struct json_object *o = json_object_new_object();
	struct dc_jb b = { 0 };
	char ts[48];

	dc_iso8601((int64_t)dc_wall_ms() * 1000, ts, sizeof(ts));
	dc_jb_add(&b, o, "status", json_object_new_string("healthy"));
	dc_jb_add(&b, o, "version", json_object_new_string(DC_VERSION));
	dc_jb_add(&b, o, "timestamp", json_object_new_string(ts));
	dc_jb_add(&b, o, "worker", json_object_new_int(r->w->index));
	dc_jb_add(&b, o, "pid", json_object_new_int((int)getpid()));
	/* NULL (out of memory) is answered 500 by dc_reply_json */
	dc_reply_json(r, 200, dc_jb_done(&b, o));
}

static const char *
state_name(const struct dc_worker *w, int state)
{
	if (w->cfg->system_database_url[0] == '\0')
		return "disabled";
	switch (state) {
	case DC_REG_FRESH:	return "fresh";
	case DC_REG_STALE:	return "stale";
	default:		return "not_loaded";
	}
}

static void
ready(struct dc_req *r)
{
	struct dc_worker *w = r->w;
	struct json_object *o = json_object_new_object(), *reg, *chk;
	int state = dc_shreg_state(w->reg), ok, bad;
	const char *why = NULL;
	struct dc_jb b = { 0 };
	char ts[48], msg[256];
	uint64_t silent;

	reg = json_object_new_object();
	dc_jb_add(&b, reg, "state",
	    json_object_new_string(state_name(w, state)));
	dc_jb_add(&b, reg, "entries",
	    json_object_new_int(dc_shreg_count(w->reg)));
	dc_jb_add(&b, reg, "capacity",
	    json_object_new_int(dc_shreg_capacity(w->reg)));
	dc_jb_add(&b, reg, "generation",
	    json_object_new_int64((int64_t)dc_shreg_gen(w->reg)));
	dc_jb_add(&b, reg, "undecryptable_rows",
	    json_object_new_int(dc_shreg_bad_rows(w->reg)));
	dc_jb_add(&b, reg, "refused_rows", dc_refused_rows_json(w->reg));
	if (dc_shreg_last_resync(w->reg) != 0) {
		dc_iso8601((int64_t)dc_shreg_last_resync(w->reg) * 1000, ts,
		    sizeof(ts));
		dc_jb_add(&b, reg, "last_resync", json_object_new_string(ts));
	}
	dc_jb_add(&b, o, "registry", reg);

	silent = dc_now_ms() - dc_shreg_last_beat(w->reg);
	bad = dc_shreg_bad_rows(w->reg);
	ok = 0;
	if (silent > DC_MASTER_SILENT_MS) {
		snprintf(msg, sizeof(msg), "the master has not been heard from "
		    "for %llu s: registry changes are not being published",
		    (unsigned long long)silent / 1000);
		why = msg;
	} else if (w->cfg->system_database_url[0] == '\0')
		ok = 1;
	else if (state != DC_REG_FRESH)
		why = state == DC_REG_STALE ?
		    "registry is stale: the system database connection was "
		    "lost; serving the last registry while reconnecting" :
		    "registry not loaded yet: the system database is not "
		    "reachable";
	else if (bad > 0) {
		snprintf(msg, sizeof(msg), "%d stored connection(s) do not "
		    "decrypt with the configured credentials key(s): a wrong "
		    "or missing key?  Default changes are refused until every "
		    "row can be read", bad);
		why = msg;
	} else
		ok = 1;
	dc_jb_add(&b, o, "status",
	    json_object_new_string(ok ? "ready" : "not_ready"));
	dc_jb_add(&b, o, "version", json_object_new_string(DC_VERSION));
	dc_iso8601((int64_t)dc_wall_ms() * 1000, ts, sizeof(ts));
	dc_jb_add(&b, o, "timestamp", json_object_new_string(ts));
	/*
	 * DataChat's three checks.  "database" is what routing needs (the
	 * registry, when there is one, is current); datachatd keeps no
	 * vector store and its query pipeline is the worker itself, which
	 * is answering: both are up whenever this reply is written.
	 */
	chk = json_object_new_object();
	dc_jb_add(&b, chk, "database", json_object_new_boolean(ok));
	dc_jb_add(&b, chk, "vector_store", json_object_new_boolean(1));
	dc_jb_add(&b, chk, "pipeline", json_object_new_boolean(1));
	dc_jb_add(&b, o, "checks", chk);
	if (why != NULL)
		dc_jb_add(&b, o, "detail", json_object_new_string(why));
	/* NULL (out of memory) is answered 500 by dc_reply_json */
	dc_reply_json(r, ok ? 200 : 503, dc_jb_done(&b, o));
}

/* GET /: the banner DataChat's API answers with. */
static void
root(struct dc_req *r)
{
	static const char banner[] = "{\"name\":\"DataChat API\","
	    "\"version\":\"0.1.0\",\"description\":\"Natural language "
	    "interface for data warehouses\",\"docs\":\"/docs\"}";

	dc_reply_text(r, 200, "application/json", banner, sizeof(banner) - 1);
}

/*
 * GET /metrics: Prometheus text exposition.  Every worker's counters sit
 * in its own block of the shared segment; this sums the live ones (no
 * lock: each field is a relaxed atomic written by one worker).
 */
#define LOAD(p)	__atomic_load_n(&(p), __ATOMIC_RELAXED)

struct target_sum {
	uint8_t		 id[16];
	uint64_t	 open, opened, failed, ok, bad;
	unsigned	 privs;		/* enum dc_priv, every worker's */
};

/* The exposition being written; a line that did not fit fails it all. */
struct mbuf {
	struct evbuffer	*evb;
	int		 failed;	/* out of memory */
};

static void mprintf(struct mbuf *b, const char *fmt, ...) DC_PRINTF(2, 3);

static void
mprintf(struct mbuf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (evbuffer_add_vprintf(b->evb, fmt, ap) < 0)
		b->failed = 1;
	va_end(ap);
}

static void
metric_head(struct mbuf *b, const char *name, const char *type,
    const char *help)
{
	mprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help,
	    name, type);
}

/* A metric with one unlabelled sample. */
static void
metric_one(struct mbuf *b, const char *name, const char *type,
    const char *help, uint64_t value)
{
	metric_head(b, name, type, help);
	mprintf(b, "%s %llu\n", name, (unsigned long long)value);
}

/*
 * Where target queries' time went (pool.c, job_timing): one histogram
 * per phase, summed over the workers, and each phase's longest time.
 */
static void
metric_query_phases(struct mbuf *b, struct dc_shreg *reg)
{
	uint64_t bk[DC_QP_N][DC_METRIC_QBUCKETS], sum[DC_QP_N], max[DC_QP_N];
	const struct dc_worker_stats *st;
	uint64_t cum, v;
	int i, ph, k;

	memset(bk, 0, sizeof(bk));
	memset(sum, 0, sizeof(sum));
	memset(max, 0, sizeof(max));
	for (i = 0; i < DC_MAX_WORKERS; i++) {
		st = dc_shreg_stats(reg, i);
		if (st == NULL || LOAD(st->pid) == 0)
			continue;
		for (ph = 0; ph < DC_QP_N; ph++) {
			for (k = 0; k < DC_METRIC_QBUCKETS; k++)
				bk[ph][k] += LOAD(st->query_phase_bucket[ph][k]);
			sum[ph] += LOAD(st->query_phase_us_sum[ph]);
			v = LOAD(st->query_phase_us_max[ph]);
			if (v > max[ph])
				max[ph] = v;
		}
	}
	metric_head(b, "datachatd_query_phase_seconds", "histogram",
	    "Where target queries' time went, each phase from when the query "
	    "was queued: until sent (queue), waiting behind other queries on "
	    "its connection (behind), until its first result arrived "
	    "(first_result), until answered (total); and before it was "
	    "queued, from its statement's arrival at the check to the "
	    "verdict (check), which includes reading the target's policy "
	    "catalog when this worker has none yet.");
	for (ph = 0; ph < DC_QP_N; ph++) {
		cum = 0;
		for (k = 0; k < DC_METRIC_QBUCKETS; k++) {
			cum += bk[ph][k];
			if (k < DC_METRIC_QBUCKETS - 1)
				mprintf(b, "datachatd_query_phase_"
				    "seconds_bucket{phase=\"%s\",le=\"%g\"} "
				    "%llu\n", dc_query_phase_names[ph],
				    (double)dc_query_bounds_us[k] / 1e6,
				    (unsigned long long)cum);
			else
				mprintf(b, "datachatd_query_phase_"
				    "seconds_bucket{phase=\"%s\",le=\"+Inf\"} "
				    "%llu\n", dc_query_phase_names[ph],
				    (unsigned long long)cum);
		}
		mprintf(b, "datachatd_query_phase_seconds_sum{phase="
		    "\"%s\"} %.6f\ndatachatd_query_phase_seconds_count{phase="
		    "\"%s\"} %llu\n", dc_query_phase_names[ph],
		    (double)sum[ph] / 1e6, dc_query_phase_names[ph],
		    (unsigned long long)cum);
	}
	metric_head(b, "datachatd_query_phase_seconds_max", "gauge",
	    "The longest time of each query phase since the workers started.");
	for (ph = 0; ph < DC_QP_N; ph++)
		mprintf(b, "datachatd_query_phase_seconds_max{phase="
		    "\"%s\"} %.6f\n", dc_query_phase_names[ph],
		    (double)max[ph] / 1e6);
}

/*
 * How the client connections and requests fell over the live workers
 * (slot, pid): they share the listening sockets, and a worker that
 * accepts most connections serves most requests.
 */
static void
metric_per_worker(struct mbuf *b, struct dc_shreg *reg)
{
	static const struct {
		const char *name, *help;
		size_t off;
	} m[] = {
		{ "datachatd_worker_connections_accepted_total",
		  "Client connections each worker accepted.",
		  offsetof(struct dc_worker_stats, conns_accepted) },
		{ "datachatd_worker_requests_total",
		  "Requests each worker routed.",
		  offsetof(struct dc_worker_stats, requests) },
	};
	const struct dc_worker_stats *st;
	const uint64_t *v;
	size_t k;
	int i;

	for (k = 0; k < sizeof(m) / sizeof(m[0]); k++) {
		metric_head(b, m[k].name, "counter", m[k].help);
		for (i = 0; i < DC_MAX_WORKERS; i++) {
			st = dc_shreg_stats(reg, i);
			if (st == NULL || LOAD(st->pid) == 0)
				continue;
			v = (const uint64_t *)(const void *)((const char *)st +
			    m[k].off);
			mprintf(b, "%s{worker=\"%d\",pid=\"%llu\"} %llu\n",
			    m[k].name, i, (unsigned long long)LOAD(st->pid),
			    (unsigned long long)LOAD(*v));
		}
	}
}

static void
add_targets(struct target_sum *sum, int *n, const struct dc_target_stats *t)
{
	int i, j;

	for (i = 0; i < DC_METRIC_TARGETS; i++) {
		if (dc_uuid_is_zero(t[i].id))
			continue;
		for (j = 0; j < *n; j++)
			if (memcmp(sum[j].id, t[i].id, 16) == 0)
				break;
		if (j == *n) {
			if (*n >= DC_MAX_WORKERS * 4)
				continue;
			memset(&sum[j], 0, sizeof(sum[j]));
			memcpy(sum[j].id, t[i].id, 16);
			(*n)++;
		}
		sum[j].open += LOAD(t[i].open);
		sum[j].opened += LOAD(t[i].opened);
		sum[j].failed += LOAD(t[i].failed);
		sum[j].ok += LOAD(t[i].queries_ok);
		sum[j].bad += LOAD(t[i].queries_failed);
		sum[j].privs |= (unsigned)LOAD(t[i].privileges);
	}
}

static void
metrics(struct dc_req *r)
{
	static const char *const cls[] = { "1xx", "2xx", "3xx", "4xx", "5xx" };
	struct dc_worker *w = r->w;
	struct dc_worker_stats *st;
	struct target_sum *tsum;
	struct mbuf mb = { evbuffer_new(), 0 }, *b = &mb;
	const char *text;
	uint64_t rs[DC_METRIC_ROUTES][5], buckets[DC_METRIC_BUCKETS];
	uint64_t dur_us = 0, llm = 0, llm_err = 0, llm_ms = 0, open = 0;
	uint64_t opened = 0, failed = 0, qok = 0, qbad = 0, cum = 0;
	uint64_t qpiped = 0, qagain = 0, conns = 0, slow = 0, refused = 0;
	uint64_t qmoved = 0, stalled = 0, checks = 0, check_ns = 0;
	const char *method, *pattern;
	char ids[DC_UUID_STR_LEN + 1];
	int i, j, k, nworkers = 0, ntargets = 0;

	tsum = calloc(DC_MAX_WORKERS * 4, sizeof(*tsum));
	if (mb.evb == NULL || tsum == NULL) {
		mb.failed = 1;
		goto out;
	}
	memset(rs, 0, sizeof(rs));
	memset(buckets, 0, sizeof(buckets));
	for (i = 0; i < DC_MAX_WORKERS; i++) {
		st = dc_shreg_stats(w->reg, i);
		if (st == NULL || LOAD(st->pid) == 0)
			continue;
		nworkers++;
		for (j = 0; j < DC_METRIC_ROUTES; j++)
			for (k = 0; k < 5; k++)
				rs[j][k] += LOAD(st->route_status[j][k]);
		for (j = 0; j < DC_METRIC_BUCKETS; j++)
			buckets[j] += LOAD(st->duration_bucket[j]);
		dur_us += LOAD(st->duration_us_sum);
		llm += LOAD(st->llm_calls);
		llm_err += LOAD(st->llm_errors);
		llm_ms += LOAD(st->llm_latency_ms_sum);
		open += LOAD(st->target_conns_open);
		opened += LOAD(st->target_conns_opened);
		failed += LOAD(st->target_conns_failed);
		qok += LOAD(st->queries_ok);
		qbad += LOAD(st->queries_failed);
		qpiped += LOAD(st->queries_pipelined);
		conns += LOAD(st->conns_open);
		slow += LOAD(st->conns_timed_out);
		refused += LOAD(st->requests_refused);
		checks += LOAD(st->auth_checks);
		check_ns += LOAD(st->auth_check_ns_sum);
		qagain += LOAD(st->queries_requeued);
		qmoved += LOAD(st->queries_moved);
		stalled += LOAD(st->target_conns_stalled);
		add_targets(tsum, &ntargets, st->targets);
	}

	metric_head(b, "datachatd_http_requests_total", "counter",
	    "HTTP requests answered, by route and status class.");
	for (j = 0; j < DC_METRIC_ROUTES; j++) {
		if (j == DC_METRIC_ROUTES - 1) {
			method = "any";
			pattern = "unmatched";
		} else if (dc_http_route_at(j, &method, &pattern) != DC_OK)
			continue;
		for (k = 0; k < 5; k++)
			if (rs[j][k] != 0)
				mprintf(b, "datachatd_http_requests_total"
				    "{method=\"%s\",route=\"%s\",status=\"%s\"} "
				    "%llu\n", method, pattern, cls[k],
				    (unsigned long long)rs[j][k]);
	}
	metric_head(b, "datachatd_http_request_duration_seconds", "histogram",
	    "Time from request to reply.");
	for (j = 0; j < DC_METRIC_BUCKETS; j++) {
		cum += buckets[j];
		if (j < DC_METRIC_BUCKETS - 1)
			mprintf(b, "datachatd_http_request_duration_"
			    "seconds_bucket{le=\"%g\"} %llu\n",
			    (double)dc_duration_bounds_us[j] / 1e6,
			    (unsigned long long)cum);
		else
			mprintf(b, "datachatd_http_request_duration_"
			    "seconds_bucket{le=\"+Inf\"} %llu\n",
			    (unsigned long long)cum);
	}
	mprintf(b, "datachatd_http_request_duration_seconds_sum "
	    "%.6f\ndatachatd_http_request_duration_seconds_count %llu\n",
	    (double)dur_us / 1e6, (unsigned long long)cum);

	metric_one(b, "datachatd_target_connections_open", "gauge",
	    "Open connections to target databases, all workers.",
	    (uint64_t)(open));
	for (j = 0; j < ntargets; j++) {
		dc_uuid_format(tsum[j].id, ids);
		mprintf(b, "datachatd_target_connections_open"
		    "{target=\"%s\"} %llu\n", ids,
		    (unsigned long long)tsum[j].open);
	}
	metric_head(b, "datachatd_target_connections_opened_total", "counter",
	    "Connections opened to target databases.");
	mprintf(b, "datachatd_target_connections_opened_total "
	    "%llu\n", (unsigned long long)opened);
	metric_head(b, "datachatd_target_connections_failed_total", "counter",
	    "Failed connection attempts to target databases.");
	mprintf(b, "datachatd_target_connections_failed_total "
	    "%llu\n", (unsigned long long)failed);
	metric_head(b, "datachatd_queries_total", "counter",
	    "Statements run on target databases, by target and outcome.");
	mprintf(b, "datachatd_queries_total{outcome=\"ok\"} "
	    "%llu\ndatachatd_queries_total{outcome=\"error\"} %llu\n",
	    (unsigned long long)qok, (unsigned long long)qbad);
	for (j = 0; j < ntargets; j++) {
		dc_uuid_format(tsum[j].id, ids);
		mprintf(b, "datachatd_queries_total{target=\"%s\","
		    "outcome=\"ok\"} %llu\ndatachatd_queries_total{target="
		    "\"%s\",outcome=\"error\"} %llu\n", ids,
		    (unsigned long long)tsum[j].ok, ids,
		    (unsigned long long)tsum[j].bad);
	}
	metric_head(b, "datachatd_target_privileged", "gauge",
	    "1 for each privilege beyond reading a target's role has (found "
	    "when connecting): superuser, createrole, pg_*_server_*, "
	    "pg_signal_backend; 0 with privilege=\"none\" when it has none.");
	for (j = 0; j < ntargets; j++) {
		if (!(tsum[j].privs & DC_PRIV_KNOWN))
			continue;
		dc_uuid_format(tsum[j].id, ids);
		if ((tsum[j].privs & ~(unsigned)DC_PRIV_KNOWN) == 0)
			mprintf(b, "datachatd_target_privileged{"
			    "target=\"%s\",privilege=\"none\"} 0\n", ids);
		for (k = 0; k < DC_PRIV_COUNT; k++)
			if (tsum[j].privs & (1u << k))
				mprintf(b, "datachatd_target_"
				    "privileged{target=\"%s\",privilege=\"%s\"} "
				    "1\n", ids, dc_priv_names[k]);
	}
	metric_one(b, "datachatd_queries_pipelined_total", "counter",
	    "Statements sent behind others on a busy target connection.",
	    qpiped);
	metric_one(b, "datachatd_queries_requeued_total", "counter",
	    "Statements sent again: refused after the one before them failed, "
	    "or their connection closed.", qagain);
	metric_one(b, "datachatd_queries_moved_total", "counter",
	    "Statements moved to another connection from behind one that made "
	    "no progress for target_stall_timeout.", qmoved);
	metric_one(b, "datachatd_target_connections_stalled_total", "counter",
	    "Times a target connection made no progress for "
	    "target_stall_timeout while statements waited behind its first.",
	    stalled);
	metric_query_phases(b, w->reg);
	metric_one(b, "datachatd_llm_calls_total", "counter",
	    "Calls to the LLM provider.",
	    (uint64_t)(llm));
	metric_one(b, "datachatd_llm_errors_total", "counter",
	    "LLM calls that failed.",
	    (uint64_t)(llm_err));
	metric_head(b, "datachatd_llm_latency_seconds_sum", "counter",
	    "Total time spent waiting for the LLM provider.");
	mprintf(b, "datachatd_llm_latency_seconds_sum %.3f\n",
	    (double)llm_ms / 1e3);
	metric_one(b, "datachatd_registry_generation", "gauge",
	    "Registry generation published by the master.",
	    (uint64_t)(dc_shreg_gen(w->reg)));
	metric_one(b, "datachatd_registry_entries", "gauge",
	    "Connections in the shared registry.",
	    (uint64_t)(dc_shreg_count(w->reg)));
	metric_one(b, "datachatd_registry_stale", "gauge",
	    "1 when the registry is not known to be current.",
	    (uint64_t)(w->cfg->system_database_url[0] != '\0' &&
	    dc_shreg_state(w->reg) != DC_REG_FRESH));
	metric_one(b, "datachatd_registry_undecryptable_rows", "gauge",
	    "Stored connections that no configured key decrypts.",
	    (uint64_t)(dc_shreg_bad_rows(w->reg)));
	metric_one(b, "datachatd_registry_resyncs_total", "counter",
	    "Full registry reloads from the system database.",
	    (uint64_t)(dc_shreg_resyncs(w->reg)));
	metric_one(b, "datachatd_system_database_up", "gauge",
	    "1 when the master is connected to the system database.",
	    (uint64_t)(dc_shreg_sysdb_up(w->reg)));
	metric_one(b, "datachatd_http_connections_open", "gauge",
	    "Client connections the workers hold.", conns);
	metric_one(b, "datachatd_http_connections_timed_out_total", "counter",
	    "Client connections closed at header_timeout or body_timeout.",
	    slow);
	metric_one(b, "datachatd_http_requests_refused_total", "counter",
	    "Requests whose head was refused before routing (smuggling "
	    "risks, too many header lines).", refused);
	metric_one(b, "datachatd_auth_checks_total", "counter",
	    "Requests whose API token was checked (auth = required, a route "
	    "that needs a role).", checks);
	metric_head(b, "datachatd_auth_check_seconds_sum", "counter",
	    "Time those checks took (rate limit, token, hash, lookup, role; "
	    "a refusal's reply included).");
	mprintf(b, "datachatd_auth_check_seconds_sum %.9f\n",
	    (double)check_ns / 1e9);
	metric_one(b, "datachatd_workers", "gauge",
	    "Live worker processes.",
	    (uint64_t)(nworkers));
	metric_per_worker(b, w->reg);

	/* a partial exposition would read as series gone: all or nothing */
	text = mb.failed ? NULL : (const char *)evbuffer_pullup(mb.evb, -1);
	if (text == NULL)
		mb.failed = 1;
	else
		dc_reply_text(r, 200, "text/plain; version=0.0.4", text,
		    evbuffer_get_length(mb.evb));
out:
	if (mb.failed)
		dc_reply_error(r, 500, "out of memory");
	if (mb.evb != NULL)
		evbuffer_free(mb.evb);
	free(tsum);
}

const struct dc_route dc_routes_ops[] = {
	{ "GET", "/", root, DC_ROLE_NONE },
	{ "GET", "/api/v1/health", health, DC_ROLE_NONE },
	{ "GET", "/api/v1/ready", ready, DC_ROLE_NONE },
	{ "GET", "/health", health, DC_ROLE_NONE },
	{ "GET", "/metrics", metrics, DC_ROLE_METRICS },
	{ "GET", "/api/v1/metrics", metrics, DC_ROLE_METRICS },
	{ NULL, NULL, NULL, 0 }
};
