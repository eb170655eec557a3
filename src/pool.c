/*
 * pool.c - a worker's PostgreSQL connections (see pool.h).
 *
 * Everything here is non-blocking: connections are opened with
 * PQconnectStartParams/PQconnectPoll, statements sent in pipeline mode
 * with PQsendQueryParams + PQpipelineSync, and results read with
 * PQconsumeInput/PQgetResult when libevent says the socket is readable.
 * A slow statement on one target therefore never delays another request.
 *
 * Targets are buckets keyed by connection id, each remembering the entry
 * generation its connections were opened for.  dc_pool_sync() compares
 * with the shared registry: a changed or vanished entry marks its
 * connections close_needed; idle ones close at once, busy ones when their
 * job ends.  An idle connection whose server went away is noticed by its
 * read event and closed; a job that finds its connection broken before
 * any result arrived is run once more on a fresh connection.
 *
 * Cancelling a running job closes its connection: the server notices
 * through client_connection_check_interval and stops the statement.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "dc.h"
#include "log.h"
#include "pool.h"
#include "shreg.h"
#include "util.h"
#include "worker.h"

enum conn_state {
	C_CONNECTING = 1,
	C_IDLE,
	C_BUSY,
	C_CLEANUP,		/* sending ROLLBACK after a failed job */
};

#define MAX_STMTS	8

struct target;

struct pgconn {
	struct dc_pool	*pool;
	struct target	*t;		/* NULL for a probe */
	PGconn		*conn;
	struct event	*ev;
	struct event	*timer;		/* connect timeout, idle timeout */
	int		 state;
	int		 close_needed;
	uint64_t	 gen;
	struct dc_pgjob	*job;
	struct pgconn	*next;
};

struct dc_pgjob {
	struct dc_pool	*pool;
	struct target	*t;
	struct pgconn	*c;
	int		 nstmts;
	char		*sql[MAX_STMTS];
	int		 nparams[MAX_STMTS];
	char		**params[MAX_STMTS];
	int		 result_idx;
	int		 step;		/* statement whose results we read */
	int		 got_rows;	/* some result arrived */
	dc_pg_cb	 cb;
	void		*arg;
	PGresult	*result;
	int		 status;
	char		 error[512];
	char		 sqlstate[6];
	int		 retried;
	int		 max_rows;
	int		 is_probe;
	char		*probe_url;
	struct dc_pgjob	*next;		/* queue */
};

struct target {
	uint8_t		 id[16];
	int		 is_sysdb;
	uint64_t	 gen;
	char		*url;		/* decrypted, never logged */
	struct pgconn	*conns;
	int		 nconns;
	struct dc_pgjob	*qhead, *qtail;
	struct target	*next;
};

struct dc_pool {
	struct dc_worker *w;
	struct target	*targets;
	struct pgconn	*probes;
};

static void	 conn_event(evutil_socket_t fd, short what, void *arg);
static void	 conn_close(struct pgconn *c);
static void	 job_finish(struct dc_pgjob *j);
static void	 target_kick(struct target *t);

struct dc_pool *
dc_pool_new(struct dc_worker *w)
{
	struct dc_pool *p = calloc(1, sizeof(*p));

	if (p != NULL)
		p->w = w;
	return p;
}

static void
job_free(struct dc_pgjob *j)
{
	int i, k;

	for (i = 0; i < j->nstmts; i++) {
		free(j->sql[i]);
		if (j->params[i] != NULL) {
			for (k = 0; k < j->nparams[i]; k++)
				free(j->params[i][k]);
			free(j->params[i]);
		}
	}
	if (j->result != NULL)
		PQclear(j->result);
	if (j->probe_url != NULL) {
		dc_explicit_bzero(j->probe_url, strlen(j->probe_url));
		free(j->probe_url);
	}
	free(j);
}

static int
job_add(struct dc_pgjob *j, const char *sql, int nparams,
    const char *const *params)
{
	int i = j->nstmts, k;

	if (i >= MAX_STMTS || (j->sql[i] = strdup(sql)) == NULL)
		return DC_ENOMEM;
	j->nstmts++;
	j->nparams[i] = nparams;
	if (nparams > 0) {
		j->params[i] = calloc((size_t)nparams, sizeof(char *));
		if (j->params[i] == NULL)
			return DC_ENOMEM;
		for (k = 0; k < nparams; k++)
			if (params[k] != NULL &&
			    (j->params[i][k] = strdup(params[k])) == NULL)
				return DC_ENOMEM;
	}
	return DC_OK;
}

static void
set_error(struct dc_pgjob *j, int status, const char *msg)
{
	size_t n;

	j->status = status;
	dc_strlcpy(j->error, msg != NULL && *msg ? msg : "unknown error",
	    sizeof(j->error));
	n = strlen(j->error);
	while (n > 0 && (j->error[n - 1] == '\n' || j->error[n - 1] == ' '))
		j->error[--n] = '\0';
}

/* --- targets --- */

static struct target *
target_find(struct dc_pool *p, const uint8_t id[16], int sysdb)
{
	struct target *t;

	for (t = p->targets; t != NULL; t = t->next)
		if (t->is_sysdb == sysdb && memcmp(t->id, id, 16) == 0)
			return t;
	return NULL;
}

static void
target_set_url(struct target *t, const char *url)
{
	if (t->url != NULL) {
		dc_explicit_bzero(t->url, strlen(t->url));
		free(t->url);
	}
	t->url = dc_url_libpq(url);
}

static struct target *
target_get(struct dc_pool *p, const uint8_t id[16], uint64_t gen,
    const char *url, int sysdb)
{
	struct target *t = target_find(p, id, sysdb);
	struct pgconn *c;

	if (t == NULL) {
		t = calloc(1, sizeof(*t));
		if (t == NULL)
			return NULL;
		memcpy(t->id, id, 16);
		t->is_sysdb = sysdb;
		t->next = p->targets;
		p->targets = t;
	}
	if (t->url == NULL || t->gen != gen) {
		/* the entry changed under us: new connections, new URL */
		t->gen = gen;
		target_set_url(t, url);
		for (c = t->conns; c != NULL; c = c->next)
			c->close_needed = 1;
	}
	return t->url != NULL ? t : NULL;
}

static void
target_fail_queue(struct target *t, int status, const char *msg)
{
	struct dc_pgjob *j;

	while ((j = t->qhead) != NULL) {
		t->qhead = j->next;
		if (t->qhead == NULL)
			t->qtail = NULL;
		j->next = NULL;
		set_error(j, status, msg);
		job_finish(j);
	}
}

static void
enqueue(struct target *t, struct dc_pgjob *j)
{
	j->next = NULL;
	if (t->qtail != NULL)
		t->qtail->next = j;
	else
		t->qhead = j;
	t->qtail = j;
}

static void
stat_add(struct dc_pool *p, uint64_t *field, int delta)
{
	if (delta >= 0)
		__atomic_add_fetch(field, (uint64_t)delta, __ATOMIC_RELAXED);
	else
		__atomic_sub_fetch(field, (uint64_t)-delta, __ATOMIC_RELAXED);
}

/* --- connections --- */

static void
conn_arm(struct pgconn *c, short what)
{
	if (c->ev != NULL)
		event_free(c->ev);
	c->ev = event_new(c->pool->w->base, PQsocket(c->conn), what,
	    conn_event, c);
	if (c->ev != NULL)
		event_add(c->ev, NULL);
}

static void
conn_unlink(struct pgconn *c)
{
	struct pgconn **pp = c->t != NULL ? &c->t->conns : &c->pool->probes;

	for (; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	if (c->t != NULL)
		c->t->nconns--;
}

static void
conn_close(struct pgconn *c)
{
	struct dc_pool *p = c->pool;

	conn_unlink(c);
	if (c->ev != NULL)
		event_free(c->ev);
	if (c->timer != NULL)
		event_free(c->timer);
	if (c->conn != NULL)
		PQfinish(c->conn);
	if (c->t != NULL && c->state != C_CONNECTING && !c->t->is_sysdb)
		stat_add(p, &p->w->stats->target_conns_open, -1);
	free(c);
}

static void
idle_expired(evutil_socket_t fd, short what, void *arg)
{
	struct pgconn *c = arg;

	if (c->state == C_IDLE) {
		log_debug("closing idle target connection");
		conn_close(c);
	}
}

static void
conn_idle(struct pgconn *c)
{
	struct timeval tv = { c->pool->w->cfg->target_idle_timeout, 0 };
	struct target *t = c->t;

	c->job = NULL;
	if (c->close_needed || t == NULL || c->gen != t->gen) {
		conn_close(c);
		if (t != NULL)
			target_kick(t);
		return;
	}
	c->state = C_IDLE;
	conn_arm(c, EV_READ | EV_PERSIST);	/* notice a server that leaves */
	if (c->timer != NULL)
		event_free(c->timer);
	c->timer = evtimer_new(c->pool->w->base, idle_expired, c);
	if (c->timer != NULL)
		evtimer_add(c->timer, &tv);
	target_kick(t);
}

static int
conn_send(struct pgconn *c, struct dc_pgjob *j)
{
	int i, rc;

	j->c = c;
	j->step = 0;
	j->got_rows = 0;
	c->job = j;
	c->state = C_BUSY;
	if (c->timer != NULL) {
		event_free(c->timer);
		c->timer = NULL;
	}
	for (i = 0; i < j->nstmts; i++)
		if (PQsendQueryParams(c->conn, j->sql[i], j->nparams[i], NULL,
		    (const char *const *)j->params[i], NULL, NULL, 0) != 1)
			return DC_ERR;
	if (PQpipelineSync(c->conn) != 1)
		return DC_ERR;
	rc = PQflush(c->conn);
	if (rc < 0)
		return DC_ERR;
	conn_arm(c, EV_READ | EV_PERSIST | (rc == 1 ? EV_WRITE : 0));
	return DC_OK;
}

/* The connection broke under a job: retry once if nothing came back. */
static void
conn_broken(struct pgconn *c, const char *why)
{
	struct dc_pgjob *j = c->job;
	struct target *t = c->t;

	c->job = NULL;
	conn_close(c);
	if (j == NULL)
		return;
	if (!j->retried && !j->got_rows && t != NULL) {
		log_info("target connection broken (%s); retrying on a new "
		    "connection", why);
		j->retried = 1;
		j->c = NULL;
		/* to the head of the queue: it waited long enough */
		j->next = t->qhead;
		t->qhead = j;
		if (t->qtail == NULL)
			t->qtail = j;
		target_kick(t);
		return;
	}
	set_error(j, DC_EUNAVAIL, why);
	job_finish(j);
}

static void
handle_result(struct pgconn *c, struct dc_pgjob *j, PGresult *res)
{
	ExecStatusType st = PQresultStatus(res);
	const char *msg, *state;

	switch (st) {
	case PGRES_TUPLES_OK:
	case PGRES_COMMAND_OK:
		j->got_rows = 1;
		if (j->step == j->result_idx && j->status == DC_OK) {
			if (j->result != NULL)
				PQclear(j->result);
			j->result = res;
			return;
		}
		break;
	case PGRES_PIPELINE_ABORTED:
		break;
	default:
		j->got_rows = 1;
		if (j->status == DC_OK) {
			msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
			state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
			set_error(j, DC_ERR, msg != NULL ? msg :
			    PQresultErrorMessage(res));
			if (state != NULL)
				dc_strlcpy(j->sqlstate, state,
				    sizeof(j->sqlstate));
			if (state != NULL && strcmp(state, "57014") == 0)
				j->status = DC_ETIMEOUT;
		}
		break;
	}
	PQclear(res);
}

/* Read what arrived; returns 1 when the job's pipeline is complete. */
static int
conn_read_results(struct pgconn *c)
{
	struct dc_pgjob *j = c->job;
	PGresult *res;

	while (!PQisBusy(c->conn)) {
		res = PQgetResult(c->conn);
		if (res == NULL) {
			/* end of one statement's results */
			if (j->step < j->nstmts)
				j->step++;
			else
				return 1;
			continue;
		}
		if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
			PQclear(res);
			return 1;
		}
		handle_result(c, j, res);
	}
	return 0;
}

static void
cleanup_done(struct pgconn *c)
{
	PGresult *res;

	while (!PQisBusy(c->conn)) {
		res = PQgetResult(c->conn);
		if (res == NULL)
			continue;
		if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
			PQclear(res);
			conn_idle(c);
			return;
		}
		PQclear(res);
	}
}

static void
job_done_on_conn(struct pgconn *c)
{
	struct dc_pgjob *j = c->job;
	PGTransactionStatusType ts = PQtransactionStatus(c->conn);

	c->job = NULL;
	j->c = NULL;
	if (ts == PQTRANS_INERROR || ts == PQTRANS_INTRANS) {
		/* a failed pipeline leaves the transaction open: end it */
		c->state = C_CLEANUP;
		if (PQsendQueryParams(c->conn, "ROLLBACK", 0, NULL, NULL, NULL,
		    NULL, 0) != 1 || PQpipelineSync(c->conn) != 1 ||
		    PQflush(c->conn) < 0) {
			conn_close(c);
			c = NULL;
		}
	} else
		conn_idle(c);
	job_finish(j);
}

static void
connect_step(struct pgconn *c)
{
	PostgresPollingStatusType st = PQconnectPoll(c->conn);
	struct dc_pgjob *j;

	switch (st) {
	case PGRES_POLLING_READING:
		conn_arm(c, EV_READ);
		return;
	case PGRES_POLLING_WRITING:
		conn_arm(c, EV_WRITE);
		return;
	case PGRES_POLLING_OK:
		break;
	default: {
		char msg[512];
		struct target *t = c->t;

		snprintf(msg, sizeof(msg), "could not connect to the "
		    "database: %s", PQerrorMessage(c->conn));
		if (c->t == NULL) {
			j = c->job;
			c->job = NULL;
			conn_close(c);
			set_error(j, DC_EUNAVAIL, msg);
			job_finish(j);
			return;
		}
		stat_add(c->pool, &c->pool->w->stats->target_conns_failed, 1);
		conn_close(c);
		/* the target is down: fail fast, do not queue behind it */
		target_fail_queue(t, DC_EUNAVAIL, msg);
		return;
	}
	}
	if (c->t == NULL) {	/* a probe: it connected, that is all */
		j = c->job;
		c->job = NULL;
		conn_close(c);
		job_finish(j);
		return;
	}
	if (PQsetnonblocking(c->conn, 1) != 0 ||
	    PQenterPipelineMode(c->conn) != 1) {
		struct target *t = c->t;

		conn_close(c);
		target_fail_queue(t, DC_EUNAVAIL, "could not set up the "
		    "database connection");
		return;
	}
	if (!c->t->is_sysdb) {
		stat_add(c->pool, &c->pool->w->stats->target_conns_open, 1);
		stat_add(c->pool, &c->pool->w->stats->target_conns_opened, 1);
	}
	if (c->timer != NULL) {
		event_free(c->timer);
		c->timer = NULL;
	}
	conn_idle(c);
}

static void
conn_event(evutil_socket_t fd, short what, void *arg)
{
	struct pgconn *c = arg;

	switch (c->state) {
	case C_CONNECTING:
		connect_step(c);
		return;
	case C_IDLE:
		/* an idle connection only reads when the server talks */
		if (PQconsumeInput(c->conn) == 0 ||
		    PQstatus(c->conn) != CONNECTION_OK) {
			log_debug("idle target connection closed by server");
			conn_close(c);
		}
		return;
	case C_CLEANUP:
		if (PQconsumeInput(c->conn) == 0) {
			conn_close(c);
			return;
		}
		cleanup_done(c);
		return;
	case C_BUSY:
		break;
	}
	if (what & EV_WRITE) {
		int rc = PQflush(c->conn);

		if (rc < 0) {
			conn_broken(c, PQerrorMessage(c->conn));
			return;
		}
		if (rc == 0)
			conn_arm(c, EV_READ | EV_PERSIST);
	}
	if (what & EV_READ) {
		if (PQconsumeInput(c->conn) == 0) {
			conn_broken(c, PQerrorMessage(c->conn));
			return;
		}
		if (conn_read_results(c)) {
			job_done_on_conn(c);
			return;
		}
		if (PQstatus(c->conn) != CONNECTION_OK)
			conn_broken(c, "server closed the connection");
	}
}

static void
connect_expired(evutil_socket_t fd, short what, void *arg)
{
	struct pgconn *c = arg;
	struct target *t = c->t;
	struct dc_pgjob *j;
	char msg[128];

	snprintf(msg, sizeof(msg), "could not connect to the database: "
	    "timeout after %d s", c->pool->w->cfg->connect_timeout);
	if (t == NULL) {
		j = c->job;
		c->job = NULL;
		conn_close(c);
		set_error(j, DC_EUNAVAIL, msg);
		job_finish(j);
		return;
	}
	stat_add(c->pool, &c->pool->w->stats->target_conns_failed, 1);
	conn_close(c);
	target_fail_queue(t, DC_EUNAVAIL, msg);
}

static struct pgconn *
conn_open(struct dc_pool *p, struct target *t, const char *url)
{
	const char *keys[] = { "dbname", "application_name", "keepalives_idle",
	    "keepalives_interval", "keepalives_count", "options", NULL };
	const char *vals[] = { url, "datachatd", "10", "5", "3",
	    "-c client_connection_check_interval=1000", NULL };
	struct timeval tv = { p->w->cfg->connect_timeout, 0 };
	struct pgconn *c;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->pool = p;
	c->t = t;
	c->state = C_CONNECTING;
	c->conn = PQconnectStartParams(keys, vals, 1);
	if (c->conn == NULL || PQstatus(c->conn) == CONNECTION_BAD) {
		if (c->conn != NULL)
			PQfinish(c->conn);
		free(c);
		return NULL;
	}
	if (t != NULL) {
		c->gen = t->gen;
		c->next = t->conns;
		t->conns = c;
		t->nconns++;
	} else {
		c->next = p->probes;
		p->probes = c;
	}
	c->timer = evtimer_new(p->w->base, connect_expired, c);
	if (c->timer != NULL)
		evtimer_add(c->timer, &tv);
	conn_arm(c, EV_WRITE);
	return c;
}

/* Give queued jobs idle connections, open new ones within the limit. */
static void
target_kick(struct target *t)
{
	struct dc_pool *p = NULL;
	struct pgconn *c;
	struct dc_pgjob *j;
	int connecting = 0, limit;

	while ((j = t->qhead) != NULL) {
		p = j->pool;
		for (c = t->conns; c != NULL; c = c->next)
			if (c->state == C_IDLE && !c->close_needed &&
			    c->gen == t->gen)
				break;
		if (c == NULL)
			break;
		t->qhead = j->next;
		if (t->qhead == NULL)
			t->qtail = NULL;
		j->next = NULL;
		if (conn_send(c, j) != DC_OK)
			conn_broken(c, PQerrorMessage(c->conn));
	}
	if (t->qhead == NULL || p == NULL)
		return;
	for (c = t->conns; c != NULL; c = c->next)
		if (c->state == C_CONNECTING)
			connecting++;
	limit = t->is_sysdb ? 2 : p->w->cfg->max_target_connections;
	for (j = t->qhead; j != NULL && connecting > 0; j = j->next)
		connecting--;	/* jobs already covered by a connect */
	for (; j != NULL && t->nconns < limit; j = j->next) {
		if (conn_open(p, t, t->url) == NULL) {
			target_fail_queue(t, DC_EUNAVAIL, "could not start a "
			    "database connection");
			return;
		}
	}
}

static void
job_finish(struct dc_pgjob *j)
{
	struct dc_pg_result r;

	memset(&r, 0, sizeof(r));
	r.status = j->status;
	r.res = j->status == DC_OK ? j->result : NULL;
	r.error = j->status != DC_OK ? j->error : NULL;
	r.sqlstate = j->sqlstate[0] ? j->sqlstate : NULL;
	r.retried = j->retried;
	if (r.res != NULL && j->max_rows > 0 && PQntuples(r.res) > j->max_rows)
		r.truncated = 1;
	if (!j->is_probe && j->t != NULL && !j->t->is_sysdb)
		stat_add(j->pool, j->status == DC_OK ?
		    &j->pool->w->stats->queries_ok :
		    &j->pool->w->stats->queries_failed, 1);
	if (j->cb != NULL)
		j->cb(&r, j->arg);
	job_free(j);
}

/* --- public --- */

static struct dc_pgjob *
job_new(struct dc_pool *p, dc_pg_cb cb, void *arg)
{
	struct dc_pgjob *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return NULL;
	j->pool = p;
	j->cb = cb;
	j->arg = arg;
	return j;
}

int
dc_pool_query(struct dc_pool *p, const struct dc_entry *e, int kind,
    const char *sql, int nparams, const char *const *params, dc_pg_cb cb,
    void *arg, struct dc_pgjob **jobp)
{
	const struct dc_config *cfg = p->w->cfg;
	struct dc_pgjob *j;
	struct target *t;
	char timeout[64], fetch[64], *declare = NULL;
	int rc = DC_ENOMEM;

	t = target_get(p, e->id, e->gen, e->url, 0);
	if (t == NULL || (j = job_new(p, cb, arg)) == NULL)
		return DC_ENOMEM;
	j->t = t;
	snprintf(timeout, sizeof(timeout), "SET LOCAL statement_timeout = %d",
	    cfg->statement_timeout);
	if (job_add(j, "BEGIN READ ONLY", 0, NULL) != DC_OK ||
	    job_add(j, timeout, 0, NULL) != DC_OK)
		goto fail;
	if (kind == DC_PG_READ_CURSOR) {
		/*
		 * The cursor caps the rows whatever the statement says, and
		 * the extended protocol refuses a second statement in it.
		 */
		if (asprintf(&declare, "DECLARE dc_cursor NO SCROLL CURSOR "
		    "FOR %s", sql) < 0) {
			declare = NULL;
			goto fail;
		}
		snprintf(fetch, sizeof(fetch), "FETCH FORWARD %d FROM dc_cursor",
		    cfg->max_rows + 1);
		if (job_add(j, declare, nparams, params) != DC_OK ||
		    job_add(j, fetch, 0, NULL) != DC_OK)
			goto fail;
		j->result_idx = 3;
		j->max_rows = cfg->max_rows;
	} else {
		if (job_add(j, sql, nparams, params) != DC_OK)
			goto fail;
		j->result_idx = 2;
		j->max_rows = kind == DC_PG_CATALOG ? 0 : cfg->max_rows;
	}
	if (job_add(j, "ROLLBACK", 0, NULL) != DC_OK)
		goto fail;
	free(declare);
	enqueue(t, j);
	if (jobp != NULL)
		*jobp = j;
	target_kick(t);
	return DC_OK;
fail:
	free(declare);
	job_free(j);
	return rc;
}

int
dc_pool_sysdb(struct dc_pool *p, int nstmts, const char *const *sql,
    const int *nparams, const char *const *const *params, dc_pg_cb cb,
    void *arg, struct dc_pgjob **jobp)
{
	static const uint8_t zero[16];
	struct dc_pgjob *j;
	struct target *t;
	int i;

	if (nstmts < 1 || nstmts > MAX_STMTS - 2)
		return DC_EINVAL;
	t = target_get(p, zero, 1, p->w->cfg->system_database_url, 1);
	if (t == NULL || (j = job_new(p, cb, arg)) == NULL)
		return DC_ENOMEM;
	j->t = t;
	if (job_add(j, "BEGIN", 0, NULL) != DC_OK)
		goto fail;
	for (i = 0; i < nstmts; i++)
		if (job_add(j, sql[i], nparams[i], params[i]) != DC_OK)
			goto fail;
	if (job_add(j, "COMMIT", 0, NULL) != DC_OK)
		goto fail;
	j->result_idx = nstmts;
	enqueue(t, j);
	if (jobp != NULL)
		*jobp = j;
	target_kick(t);
	return DC_OK;
fail:
	job_free(j);
	return DC_ENOMEM;
}

int
dc_pool_probe(struct dc_pool *p, const char *url, dc_pg_cb cb, void *arg,
    struct dc_pgjob **jobp)
{
	struct dc_pgjob *j;
	struct pgconn *c;

	if ((j = job_new(p, cb, arg)) == NULL)
		return DC_ENOMEM;
	j->is_probe = 1;
	j->probe_url = dc_url_libpq(url);
	if (j->probe_url == NULL ||
	    (c = conn_open(p, NULL, j->probe_url)) == NULL) {
		job_free(j);
		return DC_ENOMEM;
	}
	c->job = j;
	j->c = c;
	if (jobp != NULL)
		*jobp = j;
	return DC_OK;
}

void
dc_pool_cancel(struct dc_pgjob *j)
{
	struct dc_pgjob **pp;
	struct target *t = j->t;

	j->cb = NULL;
	if (j->c != NULL) {
		/* running: drop the connection, the server stops the query */
		struct pgconn *c = j->c;

		c->job = NULL;
		conn_close(c);
		job_free(j);
		if (t != NULL)
			target_kick(t);
		return;
	}
	if (t != NULL) {
		struct dc_pgjob *prev = NULL;

		for (pp = &t->qhead; *pp != NULL; pp = &(*pp)->next) {
			if (*pp == j) {
				*pp = j->next;
				if (t->qtail == j)
					t->qtail = prev;
				break;
			}
			prev = *pp;
		}
	}
	job_free(j);
}

static void
target_close_stale(struct target *t)
{
	struct pgconn *c, *next;

	for (c = t->conns; c != NULL; c = next) {
		next = c->next;
		if (c->close_needed && c->state == C_IDLE)
			conn_close(c);
	}
}

void
dc_pool_sync(struct dc_pool *p)
{
	struct target *t, **pp;
	struct dc_entry *e;
	struct pgconn *c;
	uint64_t gen;

	e = malloc(sizeof(*e));
	if (e == NULL)
		return;
	for (pp = &p->targets; (t = *pp) != NULL;) {
		if (t->is_sysdb) {
			pp = &t->next;
			continue;
		}
		gen = dc_shreg_entry_gen(p->w->reg, t->id);
		if (gen == t->gen) {
			pp = &t->next;
			continue;
		}
		for (c = t->conns; c != NULL; c = c->next)
			c->close_needed = 1;
		target_close_stale(t);
		if (gen != 0 && dc_shreg_get(p->w->reg, t->id, e) == DC_OK) {
			t->gen = e->gen;
			target_set_url(t, e->url);
			dc_explicit_bzero(e->url, sizeof(e->url));
			target_kick(t);
			pp = &t->next;
			continue;
		}
		/* the entry is gone: nothing may run on it any more */
		target_fail_queue(t, DC_ENOENT, "the target database was "
		    "removed from the registry");
		if (t->conns == NULL) {
			*pp = t->next;
			target_set_url(t, "");
			free(t->url);
			free(t);
			continue;
		}
		pp = &t->next;
	}
	free(e);
}

void
dc_pool_invalidate(struct dc_pool *p, const uint8_t *id)
{
	struct target *t;
	struct pgconn *c;

	for (t = p->targets; t != NULL; t = t->next) {
		if (t->is_sysdb || (id != NULL && memcmp(t->id, id, 16) != 0))
			continue;
		for (c = t->conns; c != NULL; c = c->next)
			c->close_needed = 1;
		target_close_stale(t);
	}
}

int
dc_pool_open(const struct dc_pool *p, const uint8_t *id)
{
	const struct target *t;
	const struct pgconn *c;
	int n = 0;

	for (t = p->targets; t != NULL; t = t->next) {
		if (t->is_sysdb || (id != NULL && memcmp(t->id, id, 16) != 0))
			continue;
		for (c = t->conns; c != NULL; c = c->next)
			if (c->state != C_CONNECTING)
				n++;
	}
	return n;
}

void
dc_pool_free(struct dc_pool *p)
{
	struct target *t;
	struct dc_pgjob *j;

	while (p->probes != NULL) {
		j = p->probes->job;
		conn_close(p->probes);
		if (j != NULL)
			job_free(j);
	}
	while ((t = p->targets) != NULL) {
		p->targets = t->next;
		while (t->conns != NULL) {
			j = t->conns->job;
			conn_close(t->conns);
			if (j != NULL)
				job_free(j);
		}
		while ((j = t->qhead) != NULL) {
			t->qhead = j->next;
			job_free(j);
		}
		target_set_url(t, "");
		free(t->url);
		free(t);
	}
	free(p);
}
