/*
 * master.c - the master process.
 *
 * The master opens the listening socket, creates the shared registry,
 * forks the workers and then runs one libevent loop over: signals, one
 * channel per worker, and its connection to the system database (LISTEN
 * for registry changes, reconnect with backoff, periodic resync).  It is
 * the only writer of the shared registry and never serves HTTP.
 *
 * Reload (SIGHUP) follows nginx: the new file is parsed and validated
 * first; a broken file is logged and changes nothing.  A good one is
 * applied to the master and a fresh set of workers is started with it,
 * while the old ones finish their requests and leave (smart shutdown).
 */
#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <libpq-fe.h>

#include "control.h"
#include "dc.h"
#include "fernet.h"
#include "jsonw.h"
#include "log.h"
#include "master.h"
#include "msg.h"
#include "pgurl.h"
#include "proctitle.h"
#include "shreg.h"
#include "store.h"
#include "target.h"
#include "tls.h"
#include "tokens.h"
#include "util.h"
#include "worker.h"

/*
 * Tokens handed to datachatctl over the control socket for its REST
 * calls: whoever may use the socket is the operator already.  They live
 * in the master's memory and the shared table only, never in the system
 * database, and expire after DC_CTL_TOKEN_TTL_MS.
 */
#define DC_CTL_TOKENS		16
#define DC_CTL_TOKEN_TTL_MS	300000

/* Reconnection backoff: short, so a system database that is back is
 * used again within moments. */
#define SYSDB_BACKOFF_MIN_MS	200
#define SYSDB_BACKOFF_MAX_MS	2000

/* SIGHUPs closer than this are taken together (reload_soon). */
#define RELOAD_MIN_MS		200

enum slot_state {
	SLOT_FREE = 0,
	SLOT_RUNNING,		/* serving */
	SLOT_RETIRING,		/* to leave after a reload */
};

struct worker_slot {
	int		 state;
	pid_t		 pid;
	struct bufferevent *chan;
	uint64_t	 started_ms;
	uint64_t	 gen_acked;
	int		 ready;		/* warmed up, accepting (DC_MSG_READY) */
	int		 told;		/* retiring: its SHUTDOWN was sent */
};

struct master {
	struct event_base *base;
	struct dc_config *cfg;
	const struct dc_master_opts *opts;
	int		 listen_fds[DC_MAX_LISTENERS];	/* cfg->listeners' */
	int		 nlisten;
	int		 unix_made[DC_MAX_LISTENERS];	/* unlink at exit */
	struct dc_shreg	*reg;
	struct dc_tokens *tokens;		/* the shared token table */
	struct ssl_ctx_st *tls;			/* TLS listeners' (tls.h) */
	struct dc_token	*db_tokens;		/* last read from the system DB */
	int		 ndb_tokens;
	struct dc_token	 ctl_tokens[DC_CTL_TOKENS];	/* datachatctl's */
	struct dc_fernet_ring ring;
	struct dc_pgurl_policy urlpol;	/* rows' URLs must pass it */

	struct worker_slot slots[DC_MAX_WORKERS];
	int		 respawn_fails;		/* consecutive early deaths */
	struct event	*respawn_timer;
	struct event	*retire_timer;		/* retire_old() at the latest */

	PGconn		*sysdb;
	struct event	*sysdb_ev;
	struct event	*sysdb_timer;		/* reconnect backoff */
	PGconn		*connecting;		/* a reconnection under way */
	struct event	*connect_ev;
	uint64_t	 connect_deadline;	/* monotonic ms */
	struct event	*beat_timer;		/* the heartbeat (shreg.h) */
	struct event	*reload_timer;		/* a SIGHUP held back */
	int		 reload_pending;
	uint64_t	 last_reload_ms;
	struct event	*resync_timer;
	int		 sysdb_backoff_ms;

	struct dc_control *ctl;
	struct ctl_wait	*waits;			/* reload --wait */
	uint64_t	 started_ms;		/* wall clock */

	int		 shutdown;		/* enum dc_shutdown, 0 = none */
	struct event	*shutdown_timer;
	struct event	*sig_ev[6];
	char		*pidfile;		/* absolute, written by us */
};

struct ctl_wait {
	struct dc_ctl_conn *cc;
	struct json_object *restart_needed;	/* key names, for the answer */
	uint64_t	 gen;
	struct event	*timer;
	struct ctl_wait	*next;
};

static struct master M;
static int ready_fd = -1;	/* daemon mode: tells the launcher we run */

static void	 check_waits(void);
static int	 full_resync(void);
static void	 drain_notifies(void);
static int	 reload(struct json_object *restart_needed);
static void	 begin_shutdown(int mode);
static void	 warn_open_access(void);
static void	 reload_soon(void);

static void	 spawn_workers(void);
static void	 retire_old(int force);
static void	 sysdb_schedule_connect(int delay_ms);

static int
running_workers(void)
{
	int i, n = 0;

	for (i = 0; i < DC_MAX_WORKERS; i++)
		if (M.slots[i].state == SLOT_RUNNING)
			n++;
	return n;
}

static int
live_workers(void)
{
	int i, n = 0;

	for (i = 0; i < DC_MAX_WORKERS; i++)
		if (M.slots[i].state != SLOT_FREE)
			n++;
	return n;
}

static void
send_all(uint16_t type, uint64_t gen, uint32_t arg, const uint8_t id[16])
{
	int i;

	for (i = 0; i < DC_MAX_WORKERS; i++)
		if (M.slots[i].state != SLOT_FREE && M.slots[i].chan != NULL)
			dc_msg_send(M.slots[i].chan, type, 0, 0, gen, arg, id);
}

/* Publish what the store wrote and tell every worker. */
static uint64_t
publish(void)
{
	uint64_t gen = dc_shreg_commit(M.reg);

	send_all(DC_MSG_NUDGE, gen, 0, NULL);
	return gen;
}

/* --- system database --- */

static void
sysdb_lost(const char *why)
{
	log_warn("system database connection lost: %s; serving the last "
	    "registry (stale) and reconnecting", why);
	if (M.sysdb_ev != NULL) {
		event_free(M.sysdb_ev);
		M.sysdb_ev = NULL;
	}
	if (M.sysdb != NULL) {
		PQfinish(M.sysdb);
		M.sysdb = NULL;
	}
	dc_shreg_set_sysdb_up(M.reg, 0);
	if (dc_shreg_state(M.reg) == DC_REG_FRESH) {
		dc_shreg_set_state(M.reg, DC_REG_STALE);
		publish();
	}
	sysdb_schedule_connect(M.sysdb_backoff_ms);
}

/* The tokens from the system database plus datachatctl's, published. */
static void
tokens_publish(void)
{
	struct dc_token *all;
	int64_t now = (int64_t)dc_wall_ms();
	int i, n = 0;

	all = calloc((size_t)M.ndb_tokens + DC_CTL_TOKENS, sizeof(*all));
	if (all == NULL) {
		log_error("out of memory publishing the API tokens");
		return;
	}
	for (i = 0; i < M.ndb_tokens; i++)
		all[n++] = M.db_tokens[i];
	for (i = 0; i < DC_CTL_TOKENS; i++) {
		if (M.ctl_tokens[i].name[0] == '\0')
			continue;
		if (M.ctl_tokens[i].expires_ms <= now) {
			dc_explicit_bzero(&M.ctl_tokens[i],
			    sizeof(M.ctl_tokens[i]));
			continue;
		}
		all[n++] = M.ctl_tokens[i];
	}
	if (dc_tokens_publish(M.tokens, all, n) < n)
		log_error("%d API tokens, only %d fit in the table", n,
		    DC_TOKENS_MAX);
	dc_explicit_bzero(all, (size_t)n * sizeof(*all));
	free(all);
}

/* Re-read the API tokens from the system database and publish them. */
static int
tokens_reload(void)
{
	struct dc_token *list;
	char err[256];
	int n;

	if (M.sysdb == NULL)
		return DC_EUNAVAIL;
	if (dc_tokens_db_load(M.sysdb, &list, &n, err, sizeof(err)) != DC_OK) {
		log_error("%s", err);
		return DC_EUNAVAIL;
	}
	free(M.db_tokens);
	M.db_tokens = list;
	M.ndb_tokens = n;
	tokens_publish();
	dc_tokens_set_loaded(M.tokens, 1);
	log_debug("API tokens loaded: %d", n);
	return DC_OK;
}

static int
full_resync(void)
{
	char err[256];
	int bad = 0;

	if (M.sysdb == NULL)
		return DC_EUNAVAIL;
	if (dc_store_load_all(M.sysdb, &M.ring, &M.urlpol, M.reg, &bad, err,
	    sizeof(err)) != DC_OK) {
		log_error("registry resync failed: %s", err);
		return DC_EUNAVAIL;
	}
	if (tokens_reload() != DC_OK)
		return DC_EUNAVAIL;
	dc_shreg_set_bad_rows(M.reg, bad);
	dc_shreg_set_state(M.reg, DC_REG_FRESH);
	dc_shreg_count_resync(M.reg);
	dc_shreg_set_last_resync(M.reg, dc_wall_ms());
	log_debug("registry resynced: %d entries, %d undecryptable",
	    dc_shreg_count(M.reg), bad);
	publish();
	drain_notifies();
	return DC_OK;
}

/*
 * Apply the notifications libpq holds.  Called when the socket is
 * readable, and after each blocking statement of ours too: a NOTIFY that
 * arrived while PQexec was reading is already in libpq's queue and would
 * otherwise wait for the next traffic on the socket.
 */
static void
drain_notifies(void)
{
	static int busy;
	PGnotify *n;
	uint8_t id[16];
	char err[256];
	int changed = 0, resync = 0;

	if (busy || M.sysdb == NULL)
		return;
	busy = 1;
	while ((n = PQnotifies(M.sysdb)) != NULL) {
		if (strcmp(n->extra, DC_NOTIFY_TOKENS) == 0) {
			if (tokens_reload() != DC_OK)
				resync = 1;
		} else if (dc_uuid_parse(n->extra, id) == DC_OK) {
			if (dc_store_load_one(M.sysdb, &M.ring, &M.urlpol,
			    M.reg, id, err, sizeof(err)) != DC_OK) {
				log_warn("reloading connection %s: %s",
				    n->extra, err);
				resync = 1;
			} else
				changed = 1;
		} else
			resync = 1;	/* TRUNCATE or unknown payload */
		PQfreemem(n);
		if (M.sysdb == NULL || PQstatus(M.sysdb) != CONNECTION_OK)
			break;
	}
	if (resync)
		full_resync();
	else if (changed)
		publish();
	busy = 0;
}

static void
sysdb_readable(evutil_socket_t fd, short what, void *arg)
{
	if (PQconsumeInput(M.sysdb) == 0) {
		sysdb_lost(PQerrorMessage(M.sysdb));
		return;
	}
	drain_notifies();
	if (M.sysdb != NULL && PQstatus(M.sysdb) != CONNECTION_OK)
		sysdb_lost("connection closed");
}

/*
 * A connection to the system database.  The first one, before the
 * workers exist, may block; a reconnection runs on the loop (libpq's
 * PQconnectPoll, bounded by connect_timeout), so a system database that
 * is unreachable never stalls signals, the control socket or the
 * workers' requests.
 */
static PGconn *
sysdb_open(int blocking)
{
	const char *keys[] = { "dbname", "application_name", "connect_timeout",
	    "keepalives_idle", "keepalives_interval", "keepalives_count",
	    "options", NULL };
	char ctimeout[16];
	const char *vals[8];
	PGconn *c;
	char *url;

	if ((url = dc_url_libpq(M.cfg->system_database_url)) == NULL)
		return NULL;
	snprintf(ctimeout, sizeof(ctimeout), "%d", M.cfg->connect_timeout);
	vals[0] = url;
	vals[1] = "datachatd-master";
	vals[2] = ctimeout;
	vals[3] = "10";
	vals[4] = "5";
	vals[5] = "3";
	vals[6] = "-c statement_timeout=10000";
	vals[7] = NULL;
	c = blocking ? PQconnectdbParams(keys, vals, 1) :
	    PQconnectStartParams(keys, vals, 1);
	dc_explicit_bzero(url, strlen(url));
	free(url);
	return c;
}

static void
sysdb_failed(PGconn *c, const char *why)
{
	/* libpq's message names host and port, never the password */
	log_warn("cannot connect to the system database: %s%sretrying in "
	    "%d ms", why != NULL ? why : c != NULL ? PQerrorMessage(c) :
	    "out of memory", why != NULL ? "; " : "", M.sysdb_backoff_ms);
	if (c != NULL)
		PQfinish(c);
	sysdb_schedule_connect(M.sysdb_backoff_ms);
	M.sysdb_backoff_ms = M.sysdb_backoff_ms * 2 > SYSDB_BACKOFF_MAX_MS ?
	    SYSDB_BACKOFF_MAX_MS : M.sysdb_backoff_ms * 2;
}

/* Connected: schema, LISTEN, then a full resync. */
static void
sysdb_setup(void)
{
	char err[256];
	PGresult *res;

	if (dc_store_ensure_schema(M.sysdb, err, sizeof(err)) != DC_OK) {
		log_error("system database schema: %s", err);
		goto fail;
	}
	res = PQexec(M.sysdb, "LISTEN " DC_NOTIFY_CHANNEL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		log_error("LISTEN failed: %s", PQerrorMessage(M.sysdb));
		PQclear(res);
		goto fail;
	}
	PQclear(res);
	if (PQsetnonblocking(M.sysdb, 1) != 0)
		goto fail;
	M.sysdb_ev = event_new(M.base, PQsocket(M.sysdb), EV_READ | EV_PERSIST,
	    sysdb_readable, NULL);
	if (M.sysdb_ev == NULL || event_add(M.sysdb_ev, NULL) != 0)
		goto fail;
	log_info("connected to the system database");
	dc_shreg_set_sysdb_up(M.reg, 1);
	M.sysdb_backoff_ms = SYSDB_BACKOFF_MIN_MS;
	/* notifications were lost while we were away: resync everything */
	if (full_resync() != DC_OK)
		goto fail;
	return;
fail:
	sysdb_lost("setup failed");
}

/* One step of a reconnection: libpq says which way to wait next. */
static void
sysdb_poll(evutil_socket_t fd, short what, void *arg)
{
	PGconn *c = M.connecting;
	PostgresPollingStatusType st;
	uint64_t now = dc_now_ms(), left;
	struct timeval tv;

	if (M.connect_ev != NULL) {
		event_free(M.connect_ev);
		M.connect_ev = NULL;
	}
	if (what & EV_TIMEOUT) {
		M.connecting = NULL;
		sysdb_failed(c, "no answer within connect_timeout");
		return;
	}
	st = PQconnectPoll(c);
	if (st == PGRES_POLLING_OK) {
		M.connecting = NULL;
		M.sysdb = c;
		sysdb_setup();
		return;
	}
	if (st == PGRES_POLLING_FAILED || PQsocket(c) < 0) {
		M.connecting = NULL;
		sysdb_failed(c, NULL);
		return;
	}
	left = M.connect_deadline > now ? M.connect_deadline - now : 0;
	tv.tv_sec = (time_t)(left / 1000);
	tv.tv_usec = (suseconds_t)(left % 1000 * 1000);
	M.connect_ev = event_new(M.base, PQsocket(c),
	    st == PGRES_POLLING_READING ? EV_READ : EV_WRITE, sysdb_poll, NULL);
	if (M.connect_ev == NULL || event_add(M.connect_ev, &tv) != 0) {
		M.connecting = NULL;
		sysdb_failed(c, "out of memory");
	}
}

/* The backoff timer: reconnect, on the loop. */
static void
sysdb_connect(evutil_socket_t fd, short what, void *arg)
{
	PGconn *c;

	if (M.sysdb != NULL || M.connecting != NULL)
		return;
	c = sysdb_open(0);
	if (c == NULL || PQstatus(c) == CONNECTION_BAD) {
		sysdb_failed(c, NULL);
		return;
	}
	M.connecting = c;
	M.connect_deadline = dc_now_ms() +
	    (uint64_t)M.cfg->connect_timeout * 1000;
	/* libpq: the first wait is for the socket to be writable */
	sysdb_poll(-1, EV_WRITE, NULL);
}

/* The first connection, before fork: blocking, so workers start loaded. */
static void
sysdb_connect_first(void)
{
	PGconn *c = sysdb_open(1);

	if (c == NULL || PQstatus(c) != CONNECTION_OK) {
		sysdb_failed(c, NULL);
		return;
	}
	M.sysdb = c;
	sysdb_setup();
}

/*
 * A worker just wrote to the system database while we are not
 * connected: it is back, so reconnect now rather than at the end of the
 * backoff.
 */
static void
sysdb_kick(void)
{
	if (M.sysdb != NULL || M.connecting != NULL || M.shutdown ||
	    M.cfg->system_database_url[0] == '\0')
		return;
	evtimer_del(M.sysdb_timer);
	M.sysdb_backoff_ms = SYSDB_BACKOFF_MIN_MS;
	sysdb_connect(-1, 0, NULL);
}

static void
sysdb_schedule_connect(int delay_ms)
{
	struct timeval tv = { delay_ms / 1000, (delay_ms % 1000) * 1000 };

	if (M.shutdown || M.cfg->system_database_url[0] == '\0')
		return;
	evtimer_add(M.sysdb_timer, &tv);
}

static void
beat(evutil_socket_t fd, short what, void *arg)
{
	dc_shreg_beat(M.reg, dc_now_ms());
}

static void
resync_tick(evutil_socket_t fd, short what, void *arg)
{
	char err[512];

	if (M.sysdb != NULL) {
		/* a query on a dead connection shows up here too */
		if (full_resync() != DC_OK && M.sysdb != NULL &&
		    PQstatus(M.sysdb) != CONNECTION_OK)
			sysdb_lost("resync failed");
	}
	/* conversation memory past conversation_ttl, with the same timer */
	if (M.sysdb != NULL && dc_store_expire_conversations(M.sysdb,
	    M.cfg->conversation_ttl, err, sizeof(err)) != DC_OK)
		log_warn("%s", err);
}

/* --- worker channels --- */

static int
slot_of_bev(struct bufferevent *bev)
{
	int i;

	for (i = 0; i < DC_MAX_WORKERS; i++)
		if (M.slots[i].chan == bev)
			return i;
	return -1;
}

static void
handle_refresh(struct worker_slot *s, const struct dc_msg *m)
{
	char err[256];
	int status = DC_OK;
	uint64_t gen;

	if (M.sysdb == NULL) {
		/* the worker's write went through: the database is back */
		sysdb_kick();
		status = DC_EUNAVAIL;
	} else if (m->type == DC_MSG_RESYNC || dc_uuid_is_zero(m->id))
		status = full_resync();
	else if (dc_store_load_one(M.sysdb, &M.ring, &M.urlpol, M.reg, m->id,
	    err, sizeof(err)) != DC_OK) {
		log_warn("refresh failed: %s", err);
		status = DC_EUNAVAIL;
	} else {
		publish();
		drain_notifies();
	}
	gen = dc_shreg_gen(M.reg);
	if (s->chan != NULL)
		dc_msg_send(s->chan, DC_MSG_REFRESHED, m->token, status, gen, 0,
		    NULL);
	if (M.sysdb != NULL && PQstatus(M.sysdb) != CONNECTION_OK)
		sysdb_lost("connection broken during refresh");
}

static void
chan_read(struct bufferevent *bev, void *arg)
{
	struct dc_msg m;
	int i = slot_of_bev(bev), j, rc;
	struct worker_slot *s;

	if (i < 0)
		return;
	s = &M.slots[i];
	while ((rc = dc_msg_recv(bev, &m)) == 1) {
		switch (m.type) {
		case DC_MSG_GEN_ACK:
			s->gen_acked = m.gen;
			check_waits();
			break;
		case DC_MSG_READY:
			s->ready = 1;
			retire_old(0);
			break;
		case DC_MSG_HOT:
			/* the other serving workers warm it too */
			for (j = 0; j < DC_MAX_WORKERS; j++)
				if (j != i && M.slots[j].state ==
				    SLOT_RUNNING && M.slots[j].chan != NULL)
					dc_msg_send(M.slots[j].chan,
					    DC_MSG_WARM, 0, 0, 0, 0, m.id);
			break;
		case DC_MSG_REFRESH:
		case DC_MSG_RESYNC:
			handle_refresh(s, &m);
			break;
		default:
			log_warn("worker %d sent unexpected %s", i,
			    dc_msg_name(m.type));
			break;
		}
	}
	if (rc < 0) {
		log_error("worker %d sent a malformed message; closing its "
		    "channel", i);
		bufferevent_free(bev);
		s->chan = NULL;
	}
}

static void
chan_event(struct bufferevent *bev, short what, void *arg)
{
	int i = slot_of_bev(bev);

	/* the worker is gone or going; SIGCHLD does the bookkeeping */
	if (i >= 0)
		M.slots[i].chan = NULL;
	bufferevent_free(bev);
}

/* --- workers --- */

static int
spawn_one(int i)
{
	int sv[2], j;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == -1) {
		log_error("socketpair: %s", strerror(errno));
		return DC_ERR;
	}
	pid = fork();
	if (pid == -1) {
		log_error("fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return DC_ERR;
	}
	if (pid == 0) {
		close(sv[0]);
		/* drop what belongs to the master: other channels, sysdb */
		for (j = 0; j < DC_MAX_WORKERS; j++)
			if (M.slots[j].chan != NULL)
				close(bufferevent_getfd(M.slots[j].chan));
		if (M.sysdb != NULL)
			close(PQsocket(M.sysdb));	/* never PQfinish */
		if (M.connecting != NULL && PQsocket(M.connecting) >= 0)
			close(PQsocket(M.connecting));
		if (M.ctl != NULL)
			close(dc_control_fd(M.ctl));
		if (ready_fd != -1)
			close(ready_fd);
		dc_worker_main(i, M.listen_fds, M.nlisten, sv[1], M.cfg, M.reg,
		    M.tokens, M.tls, &M.ring);
	}
	close(sv[1]);
	evutil_make_socket_nonblocking(sv[0]);
	evutil_make_socket_closeonexec(sv[0]);
	M.slots[i].state = SLOT_RUNNING;
	M.slots[i].pid = pid;
	M.slots[i].started_ms = dc_now_ms();
	M.slots[i].gen_acked = 0;
	M.slots[i].ready = 0;
	M.slots[i].told = 0;
	M.slots[i].chan = bufferevent_socket_new(M.base, sv[0],
	    BEV_OPT_CLOSE_ON_FREE);
	if (M.slots[i].chan == NULL) {
		close(sv[0]);
		return DC_ERR;
	}
	bufferevent_setcb(M.slots[i].chan, chan_read, NULL, chan_event, NULL);
	bufferevent_enable(M.slots[i].chan, EV_READ);
	log_info("started worker %d (pid %d)", i, (int)pid);
	return DC_OK;
}

static void
spawn_workers(void)
{
	int i, need;

	if (M.shutdown)
		return;
	need = M.cfg->workers - running_workers();
	for (i = 0; i < DC_MAX_WORKERS && need > 0; i++) {
		if (M.slots[i].state != SLOT_FREE)
			continue;
		if (spawn_one(i) != DC_OK)
			break;
		need--;
	}
}

static void
respawn_tick(evutil_socket_t fd, short what, void *arg)
{
	spawn_workers();
}

/*
 * Tell the retiring workers to leave, once every running worker is
 * ready (or, force, when the new ones took longer than warm_timeout
 * and a second: they accept by then whatever their warm-up).
 */
static void
retire_old(int force)
{
	int i;

	if (!force && running_workers() == 0)
		return;		/* none could be started yet */
	for (i = 0; i < DC_MAX_WORKERS && !force; i++)
		if (M.slots[i].state == SLOT_RUNNING && !M.slots[i].ready)
			return;
	evtimer_del(M.retire_timer);
	for (i = 0; i < DC_MAX_WORKERS; i++) {
		if (M.slots[i].state != SLOT_RETIRING || M.slots[i].told)
			continue;
		M.slots[i].told = 1;
		if (M.slots[i].chan != NULL)
			dc_msg_send(M.slots[i].chan, DC_MSG_SHUTDOWN, 0, 0, 0,
			    DC_SHUTDOWN_SMART, NULL);
	}
}

static void
retire_tick(evutil_socket_t fd, short what, void *arg)
{
	retire_old(1);
}

static void
reap_children(void)
{
	uint64_t now = dc_now_ms();
	int status, i, early = 0, died = 0;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (i = 0; i < DC_MAX_WORKERS; i++)
			if (M.slots[i].state != SLOT_FREE &&
			    M.slots[i].pid == pid)
				break;
		if (i == DC_MAX_WORKERS)
			continue;
		if (M.slots[i].state == SLOT_RUNNING && !M.shutdown) {
			died = 1;
			if (now - M.slots[i].started_ms < 5000)
				early = 1;
			if (WIFSIGNALED(status))
				log_error("worker %d (pid %d) killed by signal "
				    "%d; respawning", i, (int)pid,
				    WTERMSIG(status));
			else
				log_error("worker %d (pid %d) exited with "
				    "status %d; respawning", i, (int)pid,
				    WEXITSTATUS(status));
		} else
			log_info("worker %d (pid %d) exited", i, (int)pid);
		if (M.slots[i].chan != NULL)
			bufferevent_free(M.slots[i].chan);
		memset(&M.slots[i], 0, sizeof(M.slots[i]));
		memset(dc_shreg_stats(M.reg, i), 0,
		    sizeof(struct dc_worker_stats));
	}
	if (M.shutdown) {
		if (live_workers() == 0)
			event_base_loopexit(M.base, NULL);
		return;
	}
	check_waits();
	/* a retired worker frees a slot a reload storm may have lacked */
	if (!died && running_workers() < M.cfg->workers)
		spawn_workers();
	if (died) {
		/* a worker that dies at birth must not make us fork-bomb */
		int delay = 100;

		M.respawn_fails = early ? M.respawn_fails + 1 : 0;
		for (i = 0; i < M.respawn_fails && delay < 10000; i++)
			delay *= 2;
		if (delay > 10000)
			delay = 10000;
		struct timeval tv = { delay / 1000, (delay % 1000) * 1000 };
		evtimer_add(M.respawn_timer, &tv);
	}
}

/* --- signals, reload, shutdown --- */

static void
config_problem(void *arg, const char *file, int line, const char *msg)
{
	if (line > 0)
		log_error("%s:%d: %s", file, line, msg);
	else
		log_error("%s: %s", file, msg);
}

static void
config_notice(void *arg, const char *file, int line, const char *msg)
{
	struct json_object *keys = arg;
	const char *sp = strchr(msg, ' ');
	struct dc_jb b = { 0 };

	log_warn("reload: %s", msg);
	/*
	 * "KEY changed: restart needed to apply" (dc_config_apply_reload).
	 * Out of memory, a name goes missing from datachatctl's warning; the
	 * log line above still has it.
	 */
	if (keys != NULL && sp != NULL)
		dc_jb_push(&b, keys,
		    json_object_new_string_len(msg, (int)(sp - msg)));
}

/*
 * SIGHUP and datachatctl reload.  restart_needed (may be NULL) gets the
 * names of the keys that changed but only apply at the next start.
 */
static int
reload(struct json_object *restart_needed)
{
	struct timeval tv;
	struct dc_config next, view;
	struct ssl_ctx_st *tls = NULL;
	char err[300];
	int problems, i;

	log_info("reloading configuration%s%s",
	    M.opts->config_path ? " from " : "",
	    M.opts->config_path ? M.opts->config_path : "");
	memset(&next, 0, sizeof(next));
	problems = dc_config_load(&next, M.opts->config_path, config_problem,
	    NULL);
	if (problems != 0) {
		log_error("configuration has %d problem(s); keeping the "
		    "running configuration", problems < 0 ? 1 : problems);
		dc_config_free(&next);
		if (M.sysdb != NULL)
			full_resync();
		return DC_ERR;
	}
	/*
	 * The certificate is read again (a renewed one is served by the new
	 * workers), for the listeners that run (listen needs a restart).
	 */
	view = *M.cfg;
	view.tls_cert_file = next.tls_cert_file;
	view.tls_key_file = next.tls_key_file;
	if (dc_tls_ctx_new(&view, &tls, err, sizeof(err)) != DC_OK) {
		log_error("%s; keeping the running configuration", err);
		dc_config_free(&next);
		return DC_ERR;
	}
	dc_tls_ctx_free(M.tls);		/* the old workers keep their copy */
	M.tls = tls;
	dc_config_apply_reload(M.cfg, &next, config_notice, restart_needed);
	dc_config_free(&next);
	/* its strings were the old config's: built again on the new one */
	dc_pgurl_policy_free(&M.urlpol);
	if (dc_pgurl_policy_init(&M.urlpol, M.cfg) != DC_OK)
		log_error("the target URL policy: out of memory");
	warn_open_access();
	if (M.opts->verbose)
		M.cfg->log_level = DC_LOG_DEBUG;	/* -v outlives reloads */
	if (dc_log_open(dc_log_target(M.cfg, M.opts->foreground),
	    M.cfg->log_level, strcmp(M.cfg->log_format, "json") == 0) != DC_OK)
		log_error("cannot open log %s: %s; still logging where the "
		    "running configuration said", M.cfg->log, strerror(errno));

	/*
	 * New workers with the new config; the old ones finish and leave
	 * once the new ones have warmed up (retire_old), accepting until
	 * then, so no client waits for a worker that is not ready.
	 */
	for (i = 0; i < DC_MAX_WORKERS; i++) {
		if (M.slots[i].state != SLOT_RUNNING)
			continue;
		M.slots[i].state = SLOT_RETIRING;
		M.slots[i].told = 0;
	}
	spawn_workers();
	tv.tv_sec = (M.cfg->warm_timeout + 1000) / 1000;
	tv.tv_usec = (M.cfg->warm_timeout + 1000) % 1000 * 1000;
	evtimer_add(M.retire_timer, &tv);
	retire_old(0);
	/* resync_interval may have changed: re-adding reschedules */
	tv.tv_sec = M.cfg->resync_interval;
	tv.tv_usec = 0;
	event_add(M.resync_timer, &tv);
	if (M.sysdb != NULL)
		full_resync();
	return DC_OK;
}

/*
 * SIGHUP: reload now, or once at the end of RELOAD_MIN_MS after the
 * last one.  A storm of signals then costs a few reloads a second, each
 * with the file as it stands, instead of a generation of workers per
 * signal.
 */
static void
reload_tick(evutil_socket_t fd, short what, void *arg)
{
	M.reload_pending = 0;
	M.last_reload_ms = dc_now_ms();
	if (!M.shutdown)
		reload(NULL);
}

static void
reload_soon(void)
{
	uint64_t now = dc_now_ms(), left;
	struct timeval tv;

	if (M.reload_pending)
		return;
	if (M.last_reload_ms == 0 || now - M.last_reload_ms >= RELOAD_MIN_MS) {
		reload_tick(-1, 0, NULL);
		return;
	}
	left = M.last_reload_ms + RELOAD_MIN_MS - now;
	tv.tv_sec = 0;
	tv.tv_usec = (suseconds_t)(left * 1000);
	M.reload_pending = 1;
	evtimer_add(M.reload_timer, &tv);
}

static void
kill_workers(int sig)
{
	int i;

	for (i = 0; i < DC_MAX_WORKERS; i++)
		if (M.slots[i].state != SLOT_FREE && M.slots[i].pid > 0)
			kill(M.slots[i].pid, sig);
}

static void
shutdown_expired(evutil_socket_t fd, short what, void *arg)
{
	log_warn("shutdown timeout: killing %d worker(s)", live_workers());
	kill_workers(SIGKILL);
}

static void
begin_shutdown(int mode)
{
	struct timeval tv;

	if (M.shutdown && mode <= M.shutdown)
		return;
	M.shutdown = mode;
	log_info("%s shutdown requested", mode == DC_SHUTDOWN_SMART ? "smart" :
	    mode == DC_SHUTDOWN_FAST ? "fast" : "immediate");
	if (mode == DC_SHUTDOWN_IMMEDIATE) {
		kill_workers(SIGKILL);
		event_base_loopbreak(M.base);
		return;
	}
	send_all(DC_MSG_SHUTDOWN, 0, (uint32_t)mode, NULL);
	tv.tv_sec = mode == DC_SHUTDOWN_SMART ? M.cfg->shutdown_timeout + 1 : 3;
	tv.tv_usec = 0;
	evtimer_add(M.shutdown_timer, &tv);
	if (live_workers() == 0)
		event_base_loopexit(M.base, NULL);
}

/* USR1 and log-reopen: this process's log file, then the workers'. */
static void
reopen_logs(void)
{
	log_info("reopening log files");
	dc_log_reopen();	/* a failure is logged, old file kept */
	send_all(DC_MSG_LOG_REOPEN, 0, 0, NULL);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	switch (sig) {
	case SIGHUP:
		if (!M.shutdown)
			reload_soon();
		break;
	case SIGTERM:
		begin_shutdown(DC_SHUTDOWN_SMART);
		break;
	case SIGINT:
		begin_shutdown(DC_SHUTDOWN_FAST);
		break;
	case SIGQUIT:
		begin_shutdown(DC_SHUTDOWN_IMMEDIATE);
		break;
	case SIGUSR1:
		reopen_logs();
		break;
	case SIGCHLD:
		reap_children();
		break;
	}
}

/* --- control socket (datachatctl) --- */

/* reload --wait: answered once every serving worker applied gen. */
static int
converged(uint64_t gen)
{
	int i;

	for (i = 0; i < DC_MAX_WORKERS; i++) {
		if (M.slots[i].state == SLOT_RETIRING)
			return 0;
		if (M.slots[i].state == SLOT_RUNNING &&
		    M.slots[i].gen_acked < gen)
			return 0;
	}
	return running_workers() == M.cfg->workers;
}

static void
wait_done(struct ctl_wait *cw, const char *err)
{
	struct ctl_wait **pp;
	struct json_object *o = NULL;
	struct dc_jb b = { 0 };

	for (pp = &M.waits; *pp != NULL; pp = &(*pp)->next)
		if (*pp == cw) {
			*pp = cw->next;
			break;
		}
	if (err == NULL) {
		o = json_object_new_object();
		dc_jb_add(&b, o, "generation",
		    json_object_new_int64((int64_t)dc_shreg_gen(M.reg)));
		dc_jb_add(&b, o, "workers",
		    json_object_new_int(running_workers()));
		dc_jb_add(&b, o, "restart_needed", cw->restart_needed);
		cw->restart_needed = NULL;
		if ((o = dc_jb_done(&b, o)) == NULL)
			err = "out of memory";
	}
	json_object_put(cw->restart_needed);
	dc_control_answer(cw->cc, o, err);
	event_free(cw->timer);
	free(cw);
}

static void
check_waits(void)
{
	struct ctl_wait *cw, *next;

	for (cw = M.waits; cw != NULL; cw = next) {
		next = cw->next;
		if (converged(cw->gen))
			wait_done(cw, NULL);
	}
}

static void
wait_expired(evutil_socket_t fd, short what, void *arg)
{
	wait_done(arg, "workers did not all apply the new generation "
	    "within 30 s");
}

static const char *
ctl_wait(struct dc_ctl_conn *cc, struct json_object *restart_needed)
{
	struct timeval tv = { 30, 0 };
	struct ctl_wait *cw = calloc(1, sizeof(*cw));

	if (cw == NULL) {
		json_object_put(restart_needed);
		return "out of memory";
	}
	cw->restart_needed = restart_needed;
	cw->cc = cc;
	cw->gen = dc_shreg_gen(M.reg);
	cw->timer = evtimer_new(M.base, wait_expired, cw);
	if (cw->timer == NULL) {
		json_object_put(cw->restart_needed);
		free(cw);
		return "out of memory";
	}
	evtimer_add(cw->timer, &tv);
	cw->next = M.waits;
	M.waits = cw;
	check_waits();
	return DC_CTL_DEFER;
}

static void
iso_ms(uint64_t ms, char *buf, size_t sz)
{
	dc_iso8601((int64_t)ms * 1000, buf, sz);
}

static struct json_object *
ctl_status(void)
{
	struct dc_jb b = { 0 };
	struct json_object *o = json_object_new_object(), *reg, *lis;
	int i;
	const char *state;
	char ts[48];

	dc_jb_add(&b, o, "version", json_object_new_string(DC_VERSION));
	dc_jb_add(&b, o, "pid", json_object_new_int((int)getpid()));
	iso_ms(M.started_ms, ts, sizeof(ts));
	dc_jb_add(&b, o, "started", json_object_new_string(ts));
	dc_jb_add(&b, o, "uptime_seconds",
	    json_object_new_int64((int64_t)(dc_wall_ms() - M.started_ms) / 1000));
	/* listen: the first socket, as before several were allowed */
	dc_jb_add(&b, o, "listen",
	    json_object_new_string(M.cfg->listeners[0].address));
	lis = json_object_new_array();
	for (i = 0; i < M.cfg->nlisteners; i++) {
		struct json_object *l = json_object_new_object();

		dc_jb_add(&b, l, "address", json_object_new_string(
		    M.cfg->listeners[i].address));
		dc_jb_add(&b, l, "kind", json_object_new_string(
		    dc_listen_kind_name(M.cfg->listeners[i].kind)));
		dc_jb_push(&b, lis, l);
	}
	dc_jb_add(&b, o, "listeners", lis);
	dc_jb_add(&b, o, "workers_alive",
	    json_object_new_int(running_workers()));
	dc_jb_add(&b, o, "workers_configured",
	    json_object_new_int(M.cfg->workers));
	reg = json_object_new_object();
	switch (dc_shreg_state(M.reg)) {
	case DC_REG_FRESH:	state = "fresh"; break;
	case DC_REG_STALE:	state = "stale"; break;
	default:		state = "not_loaded"; break;
	}
	if (M.cfg->system_database_url[0] == '\0')
		state = "disabled";
	dc_jb_add(&b, reg, "state", json_object_new_string(state));
	dc_jb_add(&b, reg, "entries",
	    json_object_new_int(dc_shreg_count(M.reg)));
	dc_jb_add(&b, reg, "capacity",
	    json_object_new_int(dc_shreg_capacity(M.reg)));
	dc_jb_add(&b, reg, "generation",
	    json_object_new_int64((int64_t)dc_shreg_gen(M.reg)));
	dc_jb_add(&b, reg, "undecryptable_rows",
	    json_object_new_int(dc_shreg_bad_rows(M.reg)));
	dc_jb_add(&b, reg, "refused_rows", dc_refused_rows_json(M.reg));
	if (dc_shreg_last_resync(M.reg) != 0) {
		iso_ms(dc_shreg_last_resync(M.reg), ts, sizeof(ts));
		dc_jb_add(&b, reg, "last_resync",
		    json_object_new_string(ts));
	} else
		dc_jb_null(&b, reg, "last_resync");
	dc_jb_add(&b, o, "registry", reg);
	dc_jb_add(&b, o, "system_database", json_object_new_string(
	    M.cfg->system_database_url[0] == '\0' ? "not configured" :
	    M.sysdb != NULL ? "connected" : "disconnected"));
	return dc_jb_done(&b, o);
}

static struct json_object *
ctl_workers(void)
{
	struct dc_jb b = { 0 };
	struct json_object *arr = json_object_new_array(), *o;
	struct dc_worker_stats *st;
	char ts[48];
	int i;

	for (i = 0; i < DC_MAX_WORKERS; i++) {
		if (M.slots[i].state == SLOT_FREE)
			continue;
		st = dc_shreg_stats(M.reg, i);
		o = json_object_new_object();
		dc_jb_add(&b, o, "slot", json_object_new_int(i));
		dc_jb_add(&b, o, "pid",
		    json_object_new_int((int)M.slots[i].pid));
		dc_jb_add(&b, o, "state", json_object_new_string(
		    M.slots[i].state == SLOT_RUNNING ? "running" : "retiring"));
		iso_ms(__atomic_load_n(&st->started_ms, __ATOMIC_RELAXED), ts,
		    sizeof(ts));
		dc_jb_add(&b, o, "started", json_object_new_string(ts));
		dc_jb_add(&b, o, "requests", json_object_new_int64(
		    (int64_t)__atomic_load_n(&st->requests, __ATOMIC_RELAXED)));
		dc_jb_add(&b, o, "inflight", json_object_new_int64(
		    (int64_t)__atomic_load_n(&st->inflight, __ATOMIC_RELAXED)));
		dc_jb_add(&b, o, "target_connections",
		    json_object_new_int64((int64_t)__atomic_load_n(
		    &st->target_conns_open, __ATOMIC_RELAXED)));
		dc_jb_add(&b, o, "generation",
		    json_object_new_int64((int64_t)M.slots[i].gen_acked));
		dc_jb_push(&b, arr, o);
	}
	return dc_jb_done(&b, arr);
}

/* What a target's role may do beyond reading: "none" or the names. */
static struct json_object *
privileges_json(unsigned privs)
{
	char names[160];

	dc_priv_format(privs, names, sizeof(names));
	return json_object_new_string(names[0] != '\0' ? names : "none");
}

static struct json_object *
ctl_targets(void)
{
	struct dc_jb b = { 0 };
	struct json_object *arr = json_object_new_array(), *o;
	struct dc_worker_stats *st;
	struct dc_entry *all;
	char ids[DC_UUID_STR_LEN + 1];
	int i, j, k, n, cap = dc_shreg_capacity(M.reg);
	unsigned privs;
	uint64_t open;

	all = calloc((size_t)cap, sizeof(*all));
	if (all == NULL) {
		json_object_put(arr);
		return NULL;
	}
	n = dc_shreg_list(M.reg, all, cap);
	for (i = 0; i < n; i++) {
		open = 0;
		for (j = 0; j < DC_MAX_WORKERS; j++) {
			st = dc_shreg_stats(M.reg, j);
			if (M.slots[j].state == SLOT_FREE)
				continue;
			for (k = 0; k < DC_METRIC_TARGETS; k++)
				if (memcmp(st->targets[k].id, all[i].id, 16) == 0)
					open += __atomic_load_n(
					    &st->targets[k].open,
					    __ATOMIC_RELAXED);
		}
		dc_uuid_format(all[i].id, ids);
		o = json_object_new_object();
		dc_jb_add(&b, o, "connection_id",
		    json_object_new_string(ids));
		dc_jb_add(&b, o, "name",
		    json_object_new_string(all[i].name));
		dc_jb_add(&b, o, "database_type",
		    json_object_new_string(all[i].type));
		dc_jb_add(&b, o, "is_default",
		    json_object_new_boolean(all[i].is_default));
		dc_jb_add(&b, o, "open_connections",
		    json_object_new_int64((int64_t)open));
		privs = dc_shreg_target_privileges(M.reg, all[i].id);
		if (privs & DC_PRIV_KNOWN)
			dc_jb_add(&b, o, "privileges",
			    privileges_json(privs));
		else	/* no worker connected to it yet */
			dc_jb_null(&b, o, "privileges");
		dc_jb_push(&b, arr, o);
	}
	dc_explicit_bzero(all, (size_t)cap * sizeof(*all));
	free(all);
	return dc_jb_done(&b, arr);
}

/* Re-encrypt every stored URL with the first key, in one transaction. */
static const char *
ctl_rotate_key(struct dc_ctl_conn *cc, struct json_object **data)
{
	struct dc_jb b = { 0 };
	static char err[300];
	const char *params[2];
	PGresult *res = NULL, *up;
	char *url, *token;
	size_t len;
	int i, n, done = 0, bad = 0;

	if (M.sysdb == NULL)
		return "the system database is not connected";
	if (M.ring.nkeys == 0)
		return "no credentials key configured";
	res = PQexec(M.sysdb, "BEGIN");
	PQclear(res);
	res = PQexec(M.sysdb, "SELECT connection_id::text, "
	    "database_url_encrypted FROM database_connections FOR UPDATE");
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		goto sqlfail;
	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		if (dc_fernet_decrypt(&M.ring, PQgetvalue(res, i, 1), 0, 0,
		    &url, &len) != DC_OK) {
			log_warn("rotate-key: connection %s does not decrypt "
			    "with any configured key; left as it is",
			    PQgetvalue(res, i, 0));
			bad++;
			continue;
		}
		if (dc_fernet_encrypt(&M.ring, url, len, dc_wall_ms() / 1000,
		    NULL, &token) != DC_OK) {
			dc_explicit_bzero(url, len);
			free(url);
			goto sqlfail;
		}
		dc_explicit_bzero(url, len);
		free(url);
		params[0] = token;
		params[1] = PQgetvalue(res, i, 0);
		up = PQexecParams(M.sysdb, "UPDATE database_connections SET "
		    "database_url_encrypted = $1 WHERE connection_id = $2::uuid",
		    2, NULL, params, NULL, NULL, 0);
		free(token);
		if (PQresultStatus(up) != PGRES_COMMAND_OK) {
			PQclear(up);
			goto sqlfail;
		}
		PQclear(up);
		done++;
	}
	PQclear(res);
	res = PQexec(M.sysdb, "COMMIT");
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		goto sqlfail;
	PQclear(res);
	{
		char who[96];

		dc_control_peer(cc, who, sizeof(who));
		log_info("audit: rotate-key: %d connection(s) re-encrypted "
		    "with the first key, %d left undecryptable, by %s", done,
		    bad, who);
	}
	full_resync();
	*data = json_object_new_object();
	dc_jb_add(&b, *data, "rotated", json_object_new_int(done));
	dc_jb_add(&b, *data, "undecryptable", json_object_new_int(bad));
	/* the rows are re-encrypted either way; only the counts are lost */
	*data = dc_jb_done(&b, *data);
	return *data != NULL ? NULL : "rotated, but out of memory for the "
	    "answer: see the log for the counts";
sqlfail:
	snprintf(err, sizeof(err), "rotation failed, nothing changed: %s",
	    PQerrorMessage(M.sysdb));
	PQclear(res);
	res = PQexec(M.sysdb, "ROLLBACK");
	PQclear(res);
	return err;
}

/* datachatctl's own token, for its REST calls: never stored. */
static const char *
ctl_token_for_ctl(const char *who, struct json_object **data)
{
	char tok[DC_TOKEN_LEN + 1];
	struct dc_token *t;
	struct dc_jb b = { 0 };
	int i;

	for (i = 0; i < DC_CTL_TOKENS; i++)
		if (M.ctl_tokens[i].name[0] == '\0' ||
		    M.ctl_tokens[i].expires_ms <= (int64_t)dc_wall_ms())
			break;
	if (i == DC_CTL_TOKENS)
		return "too many datachatctl tokens in use; retry in a few "
		    "minutes";
	t = &M.ctl_tokens[i];
	if (dc_token_generate(tok, t->hash) != DC_OK)
		return "cannot generate a token";
	/* the answer first: a token nobody can be given is not issued */
	*data = json_object_new_object();
	dc_jb_add(&b, *data, "token", json_object_new_string(tok));
	dc_explicit_bzero(tok, sizeof(tok));
	if ((*data = dc_jb_done(&b, *data)) == NULL)
		return "out of memory";
	dc_strlcpy(t->name, "datachatctl", sizeof(t->name));
	t->role = DC_ROLE_ADMIN;
	t->operator_ = 1;
	t->expires_ms = (int64_t)dc_wall_ms() + DC_CTL_TOKEN_TTL_MS;
	tokens_publish();
	/* its registry changes say "by datachatctl": this says whose */
	log_info("audit: datachatctl token issued to %s", who);
	return NULL;
}

/* token add NAME --role R [--expires E]: the token is shown once. */
static const char *
ctl_token_add(const char *who, const char *const *a, int n,
    struct json_object **data)
{
	static char err[320];
	char tok[DC_TOKEN_LEN + 1], exp[48];
	const char *role_name = NULL, *expires = NULL;
	uint8_t hash[DC_TOKEN_HASH_LEN];
	int64_t expires_ms = 0;
	struct dc_jb b = { 0 };
	int i, role;

	for (i = 2; i < n; i += 2) {
		if (i + 1 >= n)
			return "token add: --role and --expires take a value";
		if (strcmp(a[i], "--role") == 0)
			role_name = a[i + 1];
		else if (strcmp(a[i], "--expires") == 0)
			expires = a[i + 1];
		else
			return "usage: token add NAME --role read|query|admin "
			    "[--expires E]";
	}
	if (!dc_token_name_valid(a[1]))
		return "token add: a name is 1 to 63 letters, digits and "
		    ". _ - @";
	if (role_name == NULL || (role = dc_role_parse(role_name)) < 0)
		return "token add: --role is read, query or admin";
	if (dc_token_generate(tok, hash) != DC_OK)
		return "cannot generate a token";
	if (dc_tokens_db_add(M.sysdb, a[1], role, hash, expires, &expires_ms,
	    err, sizeof(err)) != DC_OK) {
		dc_explicit_bzero(tok, sizeof(tok));
		return err;
	}
	if (expires_ms != 0)
		dc_iso8601(expires_ms * 1000, exp, sizeof(exp));
	else
		dc_strlcpy(exp, "never", sizeof(exp));
	*data = json_object_new_object();
	dc_jb_add(&b, *data, "name", json_object_new_string(a[1]));
	dc_jb_add(&b, *data, "role",
	    json_object_new_string(dc_role_name(role)));
	dc_jb_add(&b, *data, "expires", json_object_new_string(exp));
	dc_jb_add(&b, *data, "token", json_object_new_string(tok));
	dc_explicit_bzero(tok, sizeof(tok));
	if ((*data = dc_jb_done(&b, *data)) == NULL) {
		/* shown once or never: a token nobody saw is taken back */
		if (dc_tokens_db_revoke(M.sysdb, a[1], err, sizeof(err)) ==
		    DC_OK)
			return "out of memory: the token was not added";
		log_error("token add name=%s: out of memory for the answer, "
		    "and taking the token back failed: %s", a[1], err);
		tokens_reload();
		return "out of memory: the token was added but cannot be "
		    "shown; revoke it";
	}
	log_info("audit: token add name=%s role=%s expires=%s by %s", a[1],
	    dc_role_name(role), exp, who);
	tokens_reload();
	return NULL;
}

/*
 * token add NAME --role R [--expires E] | list | revoke NAME, and ctl
 * (datachatctl's own).  A new token is shown once, in the answer, and
 * never logged; the system database keeps its hash.  Every change
 * leaves an audit line naming who asked.
 */
static const char *
ctl_token(struct dc_ctl_conn *cc, struct json_object *args,
    struct json_object **data)
{
	static const char usage[] = "usage: token add NAME --role "
	    "read|query|admin [--expires E] | list | revoke NAME";
	static char err[320];
	const char *a[6];
	char who[96];
	int i, n, rc;

	n = args != NULL ? (int)json_object_array_length(args) : 0;
	for (i = 0; i < n && i < 6; i++)
		a[i] = json_object_get_string(json_object_array_get_idx(args,
		    i));
	if (n == 0 || n > 6)
		return usage;
	dc_control_peer(cc, who, sizeof(who));
	if (strcmp(a[0], "ctl") == 0 && n == 1)
		return ctl_token_for_ctl(who, data);
	if (M.cfg->system_database_url[0] == '\0')
		return "API tokens live in the system database, and none is "
		    "configured (SYSTEM_DATABASE_URL)";
	if (M.sysdb == NULL)
		return "the system database is not connected";
	if (strcmp(a[0], "list") == 0 && n == 1)
		return dc_tokens_db_list(M.sysdb, data, err, sizeof(err)) ==
		    DC_OK ? NULL : err;
	if (strcmp(a[0], "revoke") == 0 && n == 2) {
		if (!dc_token_name_valid(a[1]))
			return "token revoke: bad token name";
		rc = dc_tokens_db_revoke(M.sysdb, a[1], err, sizeof(err));
		if (rc == DC_ENOENT)
			return "no token by that name";
		if (rc != DC_OK)
			return err;
		log_info("audit: token revoke name=%s by %s", a[1], who);
		tokens_reload();
		return NULL;
	}
	if (strcmp(a[0], "add") == 0 && n >= 2)
		return ctl_token_add(who, a, n, data);
	return usage;
}

static void
stop_later(evutil_socket_t fd, short what, void *arg)
{
	begin_shutdown((int)(intptr_t)arg);
}

/*
 * config: the running configuration as datachatd -T prints it (text),
 * and key by key (keys; listen as a list of its sockets).
 */
static const char *
ctl_config(struct json_object **data)
{
	struct dc_jb b = { 0 };
	const struct dc_config_key *k;
	struct json_object *keys, *lis;
	char value[4096], *text = NULL, *line, *save = NULL;
	size_t len = 0;
	FILE *fp;

	if ((fp = open_memstream(&text, &len)) == NULL)
		return "out of memory";
	dc_config_dump_effective(M.cfg, fp);
	fclose(fp);
	*data = json_object_new_object();
	keys = json_object_new_object();
	for (k = dc_config_keys; k->name != NULL; k++) {
		dc_config_value(M.cfg, k, value, sizeof(value));
		if (k->type != DC_CT_LISTEN) {
			dc_jb_add(&b, keys, k->name,
			    json_object_new_string(value));
			continue;
		}
		lis = json_object_new_array();
		for (line = strtok_r(value, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save))
			dc_jb_push(&b, lis, json_object_new_string(line));
		dc_jb_add(&b, keys, k->name, lis);
	}
	if (M.opts->config_path != NULL)
		dc_jb_add(&b, *data, "source",
		    json_object_new_string(M.opts->config_path));
	else
		dc_jb_null(&b, *data, "source");
	dc_jb_add(&b, *data, "keys", keys);
	dc_jb_add(&b, *data, "text", json_object_new_string(text));
	free(text);
	*data = dc_jb_done(&b, *data);
	return *data != NULL ? NULL : "out of memory";
}

/* invalidate ID|all: the workers close their connections to it. */
static const char *
ctl_invalidate(const char *what)
{
	uint8_t id[16];

	if (strcmp(what, "all") == 0)
		memset(id, 0, sizeof(id));
	else if (dc_uuid_parse(what, id) != DC_OK)
		return "invalidate: not a connection id (UUID) or all";
	send_all(DC_MSG_INVALIDATE, 0, 0, id);
	return NULL;
}

/* stop [smart|fast|immediate]: answer first, then stop. */
static const char *
ctl_stop(const char *mode_name)
{
	struct timeval tv = { 0, 100000 };
	int mode;

	if (mode_name == NULL || strcmp(mode_name, "smart") == 0)
		mode = DC_SHUTDOWN_SMART;
	else if (strcmp(mode_name, "fast") == 0)
		mode = DC_SHUTDOWN_FAST;
	else if (strcmp(mode_name, "immediate") == 0)
		mode = DC_SHUTDOWN_IMMEDIATE;
	else
		return "usage: stop [smart|fast|immediate]";
	event_base_once(M.base, -1, EV_TIMEOUT, stop_later,
	    (void *)(intptr_t)mode, &tv);
	return NULL;
}

static const char *
ctl_reload(struct dc_ctl_conn *cc, const char *opt,
    struct json_object **data)
{
	struct json_object *keys;
	struct dc_jb b = { 0 };

	if (opt != NULL && strcmp(opt, "--wait") != 0)
		return "usage: reload [--wait]";
	if (M.shutdown)
		return "shutting down";
	if ((keys = json_object_new_array()) == NULL)
		return "out of memory";
	if (reload(keys) != DC_OK) {
		json_object_put(keys);
		return "the configuration has problems (see the log); "
		    "the running configuration is kept";
	}
	if (opt != NULL)
		return ctl_wait(cc, keys);
	*data = json_object_new_object();
	dc_jb_add(&b, *data, "restart_needed", keys);
	*data = dc_jb_done(&b, *data);
	return *data != NULL ? NULL : "reloaded, but out of memory for the "
	    "answer";
}

static const char *
ctl_resync(struct json_object **data)
{
	struct dc_jb b = { 0 };

	if (full_resync() != DC_OK)
		return "resync failed: the system database is not reachable";
	*data = json_object_new_object();
	dc_jb_add(&b, *data, "generation",
	    json_object_new_int64((int64_t)dc_shreg_gen(M.reg)));
	*data = dc_jb_done(&b, *data);
	return *data != NULL ? NULL : "out of memory";
}

/*
 * The control socket's commands.  control.c already checked that cmd is
 * a DC_CTL_MASTER row of dc_ctl_commands[] and that its argument count
 * fits; the values are checked here.
 */
static const char *
ctl_handler(struct dc_ctl_conn *cc, const struct dc_ctl_command *cmd,
    struct json_object *args, struct json_object **data)
{
	int nargs = args != NULL ? (int)json_object_array_length(args) : 0;
	const char *a0 = nargs > 0 ? json_object_get_string(
	    json_object_array_get_idx(args, 0)) : NULL;

	assert(cmd->where == DC_CTL_MASTER);
	switch (cmd->id) {
	case DC_CTL_STATUS:
		*data = ctl_status();
		return *data != NULL ? NULL : "out of memory";
	case DC_CTL_WORKERS:
		*data = ctl_workers();
		return *data != NULL ? NULL : "out of memory";
	case DC_CTL_TARGETS:
		*data = ctl_targets();
		return *data != NULL ? NULL : "out of memory";
	case DC_CTL_RELOAD:
		return ctl_reload(cc, a0, data);
	case DC_CTL_RESYNC:
		return ctl_resync(data);
	case DC_CTL_INVALIDATE:
		return ctl_invalidate(a0);
	case DC_CTL_STOP:
		return ctl_stop(a0);
	case DC_CTL_LOG_REOPEN:
		reopen_logs();
		return NULL;
	case DC_CTL_ROTATE_KEY:
		return ctl_rotate_key(cc, data);
	case DC_CTL_CONFIG:
		return ctl_config(data);
	case DC_CTL_TOKEN:
		return ctl_token(cc, args, data);
	default:
		/* a DC_CTL_MASTER row without a case here */
		assert(!"control command without a handler");
		return "not implemented";
	}
}

/* --- start-up --- */

/*
 * A unix listener belongs to owner= (default: the daemon's user) and
 * group= (default: the owner's group), so that a proxy such as nginx can
 * be let in by group.  Done before the privilege drop, as root.
 */
static int
own_unix_listener(const struct dc_listener *l, const char *path)
{
	const char *owner = l->owner[0] != '\0' ? l->owner : M.cfg->user;
	struct passwd *pw = NULL;
	struct group *gr = NULL;
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;

	if (owner[0] != '\0') {
		if ((pw = getpwnam(owner)) == NULL) {
			log_error("listen %s: no user %s", l->address, owner);
			return DC_ERR;
		}
		uid = pw->pw_uid;
		gid = pw->pw_gid;
	}
	if (l->group[0] != '\0') {
		if ((gr = getgrnam(l->group)) == NULL) {
			log_error("listen %s: no group %s", l->address,
			    l->group);
			return DC_ERR;
		}
		gid = gr->gr_gid;
	}
	if ((uid != (uid_t)-1 || gid != (gid_t)-1) &&
	    chown(path, uid, gid) == -1) {
		log_error("listen %s: chown: %s", l->address, strerror(errno));
		return DC_ERR;
	}
	return DC_OK;
}

/* Every listen line, before fork: the workers accept on all of them. */
static int
open_listeners(void)
{
	const struct dc_listener *l;
	const char *path;
	int fd = -1, on = 1, i;

	for (i = 0; i < M.cfg->nlisteners; i++) {
		l = &M.cfg->listeners[i];
		if (l->kind == DC_LISTEN_UNIX) {
			path = ((const struct sockaddr_un *)(const void *)
			    &l->addr)->sun_path;
			if (dc_unix_bind(path, l->mode, &fd) != DC_OK)
				goto out;
			M.unix_made[i] = 1;
			M.listen_fds[M.nlisten++] = fd;
			if (own_unix_listener(l, path) != DC_OK)
				goto out;
		} else {
			fd = socket(l->addr.ss_family, SOCK_STREAM, 0);
			if (fd == -1)
				goto fail;
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on,
			    sizeof(on));
			if (l->addr.ss_family == AF_INET6)
				setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on,
				    sizeof(on));
			if (bind(fd, (const struct sockaddr *)&l->addr,
			    l->addrlen) == -1)
				goto fail;
			M.listen_fds[M.nlisten++] = fd;
		}
		fd = -1;
		if (listen(M.listen_fds[i], 511) == -1)
			goto fail;
		evutil_make_socket_nonblocking(M.listen_fds[i]);
		evutil_make_socket_closeonexec(M.listen_fds[i]);
	}
	return DC_OK;
fail:
	log_error("cannot listen on %s: %s", l->address, strerror(errno));
	if (fd != -1)
		close(fd);
out:
	return DC_ERR;
}

static void
close_listeners(void)
{
	const struct sockaddr_un *sun;
	int i;

	for (i = 0; i < M.nlisten; i++) {
		close(M.listen_fds[i]);
		if (!M.unix_made[i])
			continue;
		sun = (const void *)&M.cfg->listeners[i].addr;
		if (unlink(sun->sun_path) == -1 && errno != ENOENT)
			log_warn("cannot remove %s: %s", sun->sun_path,
			    strerror(errno));
	}
	M.nlisten = 0;
}

/* Said at every start (and reload) while it holds: nobody forgets it. */
static void
warn_open_access(void)
{
	int i;

	if (!M.cfg->auth_explicit_off)
		return;
	for (i = 0; i < M.cfg->nlisteners; i++)
		if (M.cfg->listeners[i].kind == DC_LISTEN_TCP)
			log_warn("auth = off on %s, which is not a loopback "
			    "address: anyone who reaches it may read and change "
			    "the registry and query every target",
			    M.cfg->listeners[i].address);
}

static int
write_pidfile(void)
{
	char buf[32];
	FILE *fp;
	long old;
	int fd, n;

	if (M.cfg->pidfile[0] == '\0')
		return DC_OK;
	fp = fopen(M.cfg->pidfile, "r");
	if (fp != NULL) {
		if (fscanf(fp, "%ld", &old) == 1 && old > 0 &&
		    old != (long)getpid() && kill((pid_t)old, 0) == 0) {
			fclose(fp);
			log_error("pidfile %s names a running process (%ld); "
			    "is datachatd already running?", M.cfg->pidfile,
			    old);
			return DC_ERR;
		}
		fclose(fp);
	}
	fd = open(M.cfg->pidfile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644);
	if (fd == -1) {
		log_error("cannot write pidfile %s: %s", M.cfg->pidfile,
		    strerror(errno));
		return DC_ERR;
	}
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (write(fd, buf, (size_t)n) != n) {
		close(fd);
		return DC_ERR;
	}
	close(fd);
	M.pidfile = strdup(M.cfg->pidfile);
	return DC_OK;
}

static int
drop_privileges(void)
{
	struct passwd *pw;

	if (M.cfg->user[0] == '\0')
		return DC_OK;
	pw = getpwnam(M.cfg->user);
	if (pw == NULL) {
		log_error("unknown user %s", M.cfg->user);
		return DC_ERR;
	}
	/* started as that user already (systemd's User=): nothing to drop */
	if (getuid() == pw->pw_uid && geteuid() == pw->pw_uid) {
		log_info("running as user %s", M.cfg->user);
		return DC_OK;
	}
	if (M.pidfile != NULL &&
	    chown(M.pidfile, pw->pw_uid, pw->pw_gid) == -1)
		log_warn("chown %s: %s", M.pidfile, strerror(errno));
	/* so that it can be reopened after rotation */
	if (dc_log_chown(pw->pw_uid, pw->pw_gid) != DC_OK)
		log_warn("chown %s: %s", M.cfg->log, strerror(errno));
	if (setgroups(1, &pw->pw_gid) == -1 || setgid(pw->pw_gid) == -1 ||
	    setuid(pw->pw_uid) == -1) {
		log_error("cannot drop privileges to %s: %s", M.cfg->user,
		    strerror(errno));
		return DC_ERR;
	}
	log_info("running as user %s", M.cfg->user);
	return DC_OK;
}

/*
 * The launching process waits on this pipe until the daemon says it is
 * serving (a 0 byte) or failed (anything else, or EOF), so `datachatd`
 * exits 0 only when the daemon really started (init scripts, systemd's
 * Type=forking rely on that).
 */
static void
report_ready(int ok)
{
	char c = ok ? 0 : 1;

	if (ready_fd == -1)
		return;
	if (write(ready_fd, &c, 1) != 1) {
		/* the launcher is gone; nothing to tell */
	}
	close(ready_fd);
	ready_fd = -1;
}

static int
daemonize(void)
{
	int pfd[2], fd;
	pid_t pid;
	char c;

	if (pipe2(pfd, O_CLOEXEC) == -1)
		return DC_ERR;
	pid = fork();
	if (pid == -1)
		return DC_ERR;
	if (pid > 0) {
		ssize_t n;

		close(pfd[1]);
		c = 1;
		do
			n = read(pfd[0], &c, 1);
		while (n == -1 && errno == EINTR);
		_exit(n == 1 && c == 0 ? 0 : 1);
	}
	close(pfd[0]);
	ready_fd = pfd[1];
	if (setsid() == -1)
		return DC_ERR;
	pid = fork();
	if (pid == -1)
		return DC_ERR;
	if (pid > 0)
		_exit(0);
	if (chdir("/") == -1)
		return DC_ERR;
	umask(027);
	fd = open("/dev/null", O_RDWR);
	if (fd != -1) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	return DC_OK;
}

static int
load_keys(void)
{
	const char *why = NULL;
	int bad = 0;

	if (M.cfg->credentials_key[0] == '\0') {
		M.ring.nkeys = 0;
		if (M.cfg->system_database_url[0] != '\0')
			log_warn("no credentials key (DATABASE_CREDENTIALS_KEY "
			    "or credentials_key_file): stored connections "
			    "cannot be decrypted or written");
		return DC_OK;
	}
	if (dc_fernet_ring_parse(&M.ring, M.cfg->credentials_key, &why,
	    &bad) != DC_OK) {
		log_error("credentials key %d: %s", bad + 1, why);
		return DC_ERR;
	}
	return DC_OK;
}

static void
cleanup(void)
{
	struct ctl_wait *cw;
	int i;

	while ((cw = M.waits) != NULL)
		wait_done(cw, "datachatd is stopping");
	dc_control_close(M.ctl);
	for (i = 0; i < (int)DC_ARRAY_SIZE(M.sig_ev); i++)
		if (M.sig_ev[i] != NULL)
			event_free(M.sig_ev[i]);
	for (i = 0; i < DC_MAX_WORKERS; i++)
		if (M.slots[i].chan != NULL)
			bufferevent_free(M.slots[i].chan);
	if (M.sysdb_ev != NULL)
		event_free(M.sysdb_ev);
	if (M.sysdb != NULL)
		PQfinish(M.sysdb);
	if (M.sysdb_timer != NULL)
		event_free(M.sysdb_timer);
	if (M.connect_ev != NULL)
		event_free(M.connect_ev);
	if (M.connecting != NULL)
		PQfinish(M.connecting);
	if (M.beat_timer != NULL)
		event_free(M.beat_timer);
	if (M.reload_timer != NULL)
		event_free(M.reload_timer);
	if (M.resync_timer != NULL)
		event_free(M.resync_timer);
	if (M.respawn_timer != NULL)
		event_free(M.respawn_timer);
	if (M.retire_timer != NULL)
		event_free(M.retire_timer);
	if (M.shutdown_timer != NULL)
		event_free(M.shutdown_timer);
	if (M.base != NULL)
		event_base_free(M.base);
	if (M.pidfile != NULL) {
		unlink(M.pidfile);
		free(M.pidfile);
	}
	close_listeners();
	if (M.reg != NULL)
		dc_shreg_destroy(M.reg);
	if (M.tokens != NULL)
		dc_tokens_destroy(M.tokens);
	dc_tls_ctx_free(M.tls);
	M.tls = NULL;
	if (M.db_tokens != NULL) {
		dc_explicit_bzero(M.db_tokens, (size_t)M.ndb_tokens *
		    sizeof(*M.db_tokens));
		free(M.db_tokens);
	}
	dc_explicit_bzero(M.ctl_tokens, sizeof(M.ctl_tokens));
	dc_fernet_ring_wipe(&M.ring);
	dc_pgurl_policy_free(&M.urlpol);
}

int
dc_master_main(struct dc_config *cfg, const struct dc_master_opts *opts)
{
	static const int sigs[] = { SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGUSR1,
	    SIGCHLD };
	struct timeval tv;
	int i, rc = 1;

	memset(&M, 0, sizeof(M));
	M.cfg = cfg;
	M.opts = opts;
	M.sysdb_backoff_ms = SYSDB_BACKOFF_MIN_MS;
	signal(SIGPIPE, SIG_IGN);
	/*
	 * The master holds the credentials keys and the system database's
	 * password: no core file, and no ptrace or /proc/PID/mem by the
	 * same user.  Said again after dropping privileges, which resets it.
	 */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

	if (load_keys() != DC_OK)
		goto out;
	if (dc_pgurl_policy_init(&M.urlpol, cfg) != DC_OK) {
		log_error("the target URL policy: out of memory");
		goto out;
	}
	if (open_listeners() != DC_OK)
		goto out;
	{
		char err[300];

		/* before the privileges go: the key file may be root's */
		if (dc_tls_ctx_new(cfg, &M.tls, err, sizeof(err)) != DC_OK) {
			log_error("%s", err);
			goto out;
		}
	}
	if (!opts->foreground) {
		if (daemonize() != DC_OK) {
			log_error("cannot daemonize: %s", strerror(errno));
			goto out;
		}
		if (strcmp(cfg->log, "stderr") == 0)
			dc_log_open("syslog", cfg->log_level,
			    strcmp(cfg->log_format, "json") == 0);
	}
	if (write_pidfile() != DC_OK)
		goto out;
	if (drop_privileges() != DC_OK)
		goto out;
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	M.started_ms = dc_wall_ms();
	if (dc_shreg_create(&M.reg, cfg->registry_capacity) != DC_OK) {
		log_error("cannot create the shared registry (%d entries)",
		    cfg->registry_capacity);
		goto out;
	}
	if (dc_tokens_create(&M.tokens, DC_TOKENS_MAX) != DC_OK) {
		log_error("cannot create the shared token table");
		goto out;
	}
	/* libevent's own messages: through our log, a few a minute at most */
	event_set_log_callback(dc_log_libevent);
	M.base = event_base_new();
	if (M.base == NULL)
		goto out;
	for (i = 0; i < (int)DC_ARRAY_SIZE(sigs); i++) {
		M.sig_ev[i] = evsignal_new(M.base, sigs[i], on_signal, NULL);
		if (M.sig_ev[i] == NULL || event_add(M.sig_ev[i], NULL) != 0)
			goto out;
	}
	M.sysdb_timer = evtimer_new(M.base, sysdb_connect, NULL);
	M.resync_timer = event_new(M.base, -1, EV_PERSIST, resync_tick, NULL);
	M.respawn_timer = evtimer_new(M.base, respawn_tick, NULL);
	M.retire_timer = evtimer_new(M.base, retire_tick, NULL);
	M.shutdown_timer = evtimer_new(M.base, shutdown_expired, NULL);
	M.beat_timer = event_new(M.base, -1, EV_PERSIST, beat, NULL);
	M.reload_timer = evtimer_new(M.base, reload_tick, NULL);
	if (M.beat_timer == NULL || M.reload_timer == NULL)
		goto out;
	tv.tv_sec = DC_MASTER_BEAT_MS / 1000;
	tv.tv_usec = DC_MASTER_BEAT_MS % 1000 * 1000;
	event_add(M.beat_timer, &tv);
	dc_shreg_beat(M.reg, dc_now_ms());
	if (M.sysdb_timer == NULL || M.resync_timer == NULL ||
	    M.respawn_timer == NULL || M.shutdown_timer == NULL ||
	    M.retire_timer == NULL)
		goto out;
	tv.tv_sec = cfg->resync_interval;
	tv.tv_usec = 0;
	event_add(M.resync_timer, &tv);
	if (cfg->control_socket[0] != '\0' && dc_control_open(M.base,
	    cfg->control_socket, ctl_handler, &M.ctl) != DC_OK)
		goto out;

	for (i = 0; i < cfg->nlisteners; i++)
		log_info("listening on %s (%s)", cfg->listeners[i].address,
		    dc_listen_kind_name(cfg->listeners[i].kind));
	log_info("datachatd %s started with %d workers", DC_VERSION,
	    cfg->workers);
	warn_open_access();
	if (cfg->system_database_url[0] != '\0')
		sysdb_connect_first();		/* before fork */
	else
		log_warn("no system database (SYSTEM_DATABASE_URL): the "
		    "registry is disabled");
	dc_proctitle_set("datachatd: master%s%s", cfg->source != NULL ?
	    " -c " : "", cfg->source != NULL ? cfg->source : "");
	dc_shreg_beat(M.reg, dc_now_ms());
	spawn_workers();
	report_ready(1);
	event_base_dispatch(M.base);

	/* leaving: make sure nothing stays behind */
	kill_workers(SIGKILL);
	for (i = 0; i < DC_MAX_WORKERS; i++)
		if (M.slots[i].state != SLOT_FREE && M.slots[i].pid > 0)
			waitpid(M.slots[i].pid, NULL, 0);
	log_info("datachatd stopped");
	rc = 0;
out:
	report_ready(rc == 0);
	cleanup();
	return rc;
}
