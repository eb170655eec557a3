/*
 * msg.h - the one vocabulary spoken between the master and its workers.
 *
 * Each worker has one socketpair to the master.  A message is framed as a
 * fixed header (total length, type) followed by a small fixed payload; no
 * free-form strings cross a channel.  Either side reads with a bufferevent,
 * so partial reads, EINTR and EAGAIN are absorbed by libevent.  A worker
 * whose channel reaches EOF exits: the master is gone, so are we.
 */
#ifndef DC_MSG_H
#define DC_MSG_H

#include <stdint.h>

struct bufferevent;

enum dc_msg_type {
	/* master -> worker */
	DC_MSG_NUDGE = 1,	/* registry_gen moved; gen = new generation */
	DC_MSG_SHUTDOWN,	/* arg = enum dc_shutdown */
	DC_MSG_LOG_REOPEN,	/* reopen the log file */
	DC_MSG_INVALIDATE,	/* close target connections; id or all zero */
	DC_MSG_REFRESHED,	/* answer to REFRESH: token, status, gen */

	/* worker -> master */
	DC_MSG_GEN_ACK,		/* gen = generation this worker has applied */
	DC_MSG_REFRESH,		/* re-read row id from the system DB, publish */
	DC_MSG_RESYNC,		/* ask for a full resync (token answered) */
	DC_MSG_READY,		/* warmed up and accepting (worker.c) */
	DC_MSG_HOT,		/* first use of target id in this worker */

	/* master -> worker, again */
	DC_MSG_WARM,		/* a peer started using target id: warm it */
	DC_MSG_TYPE_MAX
};

enum dc_shutdown {
	DC_SHUTDOWN_SMART = 1,	/* stop accepting, finish in-flight, exit */
	DC_SHUTDOWN_FAST,	/* stop now, abort in-flight requests */
	DC_SHUTDOWN_IMMEDIATE,	/* _exit at once */
};

/* One frame; every field is in host order (both ends are on one host). */
struct dc_msg {
	uint32_t	len;		/* sizeof(struct dc_msg) */
	uint16_t	type;		/* enum dc_msg_type */
	uint16_t	pad;
	uint32_t	token;		/* request/answer matching */
	int32_t		status;		/* enum dc_err on answers */
	uint64_t	gen;		/* a registry generation */
	uint32_t	arg;		/* a small argument (shutdown mode) */
	uint8_t		id[16];		/* a connection id (UUID bytes) */
	uint8_t		pad2[4];
};

/* Queue one message on a channel.  Returns 0 or DC_ERR. */
int		 dc_msg_send(struct bufferevent *bev, uint16_t type,
		     uint32_t token, int32_t status, uint64_t gen, uint32_t arg,
		     const uint8_t id[16]);

/*
 * Take the next whole message out of the channel's input buffer.
 * Returns 1 and fills *m when one was available, 0 when more bytes are
 * needed, DC_EINVAL when the peer sent a malformed frame (close it).
 */
int		 dc_msg_recv(struct bufferevent *bev, struct dc_msg *m);

const char	*dc_msg_name(uint16_t type);

#endif /* DC_MSG_H */
