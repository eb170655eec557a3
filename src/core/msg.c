/*
 * msg.c - framing of the master/worker channel messages (msg.h).
 *
 * Messages are fixed-size frames queued on a bufferevent; the receiver
 * checks the length and type before trusting a frame, so a confused peer
 * is detected and its channel closed rather than misread.
 */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "dc.h"
#include "msg.h"

static const char *const msg_names[] = {
	[DC_MSG_NUDGE] = "NUDGE",
	[DC_MSG_SHUTDOWN] = "SHUTDOWN",
	[DC_MSG_LOG_REOPEN] = "LOG_REOPEN",
	[DC_MSG_INVALIDATE] = "INVALIDATE",
	[DC_MSG_REFRESHED] = "REFRESHED",
	[DC_MSG_GEN_ACK] = "GEN_ACK",
	[DC_MSG_REFRESH] = "REFRESH",
	[DC_MSG_RESYNC] = "RESYNC",
	[DC_MSG_READY] = "READY",
	[DC_MSG_HOT] = "HOT",
	[DC_MSG_WARM] = "WARM",
};

/* A frame is fixed-size and crosses a socketpair as it is in memory. */
_Static_assert(sizeof(struct dc_msg) == 48, "struct dc_msg is one frame");
_Static_assert(DC_MSG_TYPE_MAX <= UINT16_MAX, "a type fits its field");

int
dc_msg_send(struct bufferevent *bev, uint16_t type, uint32_t token,
    int32_t status, uint64_t gen, uint32_t arg, const uint8_t id[16])
{
	struct dc_msg m;

	/* a bad type here is our bug; a bad one received is the peer's */
	assert(type > 0 && type < DC_MSG_TYPE_MAX);
	assert(msg_names[type] != NULL);
	memset(&m, 0, sizeof(m));
	m.len = sizeof(m);
	m.type = type;
	m.token = token;
	m.status = status;
	m.gen = gen;
	m.arg = arg;
	if (id != NULL)
		memcpy(m.id, id, sizeof(m.id));
	if (bufferevent_write(bev, &m, sizeof(m)) != 0)
		return DC_ERR;
	return DC_OK;
}

int
dc_msg_recv(struct bufferevent *bev, struct dc_msg *m)
{
	struct evbuffer *in = bufferevent_get_input(bev);

	if (evbuffer_get_length(in) < sizeof(*m))
		return 0;
	if (evbuffer_remove(in, m, sizeof(*m)) != (int)sizeof(*m))
		return DC_EINVAL;
	if (m->len != sizeof(*m) || m->type == 0 || m->type >= DC_MSG_TYPE_MAX)
		return DC_EINVAL;
	/* what the frame checks above guarantee to every caller */
	assert(m->len == sizeof(*m) && msg_names[m->type] != NULL);
	return 1;
}

const char *
dc_msg_name(uint16_t type)
{
	if (type == 0 || type >= DC_MSG_TYPE_MAX)
		return "UNKNOWN";
	return msg_names[type];
}
