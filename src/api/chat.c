/*
 * chat.c - the chat routes, two consumers of one pipeline (chat.h):
 *
 *   POST /api/v1/chat   the ChatRequest body in, the ChatResponse out: the
 *                       route keeps only the pipeline's last event
 *   GET  /ws/chat       a WebSocket (ws.h): one ChatRequest as a text
 *                       message, every event of the pipeline forwarded as
 *                       it happens, the answer as {"event":"complete",
 *                       ...ChatResponse...}, then close 1000
 *
 * Both check the request against DataChat's ChatRequest field table
 * (model.h; 422 on REST, a validation_error event on the WebSocket) and
 * answer it with the same run.  On the WebSocket, failures are DataChat's error events
 * ({"event":"error","error":code,"message":...}) followed by its close
 * codes: 1008 for what the client can fix, 1011 for what it cannot, 1003
 * for a message that is not JSON text.  A client that leaves, over either
 * transport, cancels the query and the LLM call; request_timeout bounds
 * both.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "chat.h"
#include "dc.h"
#include "http.h"
#include "jsonw.h"
#include "log.h"
#include "model.h"
#include "result.h"
#include "system.h"
#include "tokens.h"
#include "worker.h"
#include "ws.h"

#define CONV_ID_MAX	128
#define JSON_MAX_DEPTH	32

/* DataChat's ChatRequest and its Message (models/api.py). */
static const struct dc_field message_fields[] = {
	{ .name = "role", .type = DC_FT_STR, .flags = DC_F_REQUIRED },
	{ .name = "content", .type = DC_FT_STR, .flags = DC_F_REQUIRED },
	{ .name = NULL }
};
static const struct dc_model message_model = { "Message", message_fields };

static const char *const exec_modes[] = { "natural_language", "direct_sql",
    NULL };
static const char *const workflow_modes[] = { "auto", "finance_variance_v1",
    NULL };

enum { R_MESSAGE, R_MODE, R_SQL, R_CONV, R_TARGET, R_HISTORY, R_SUMMARY,
    R_STATE, R_SYNTH, R_WORKFLOW };
static const struct dc_field chat_fields[] = {
	{ .name = "message", .type = DC_FT_STR, .flags = DC_F_REQUIRED,
	    .min_length = 1 },
	{ .name = "execution_mode", .type = DC_FT_LITERAL,
	    .dflt = "natural_language", .choices = exec_modes },
	{ .name = "sql", .type = DC_FT_STR, .flags = DC_F_NULLABLE },
	{ .name = "conversation_id", .type = DC_FT_STR, .flags = DC_F_NULLABLE,
	    .max_length = CONV_ID_MAX },
	{ .name = "target_database", .type = DC_FT_STR,
	    .flags = DC_F_NULLABLE },
	{ .name = "conversation_history", .type = DC_FT_LIST_MODEL,
	    .sub = &message_model },
	{ .name = "session_summary", .type = DC_FT_STR,
	    .flags = DC_F_NULLABLE },
	{ .name = "session_state", .type = DC_FT_DICT, .flags = DC_F_NULLABLE },
	{ .name = "synthesize_simple_sql", .type = DC_FT_BOOL,
	    .flags = DC_F_NULLABLE },
	{ .name = "workflow_mode", .type = DC_FT_LITERAL,
	    .flags = DC_F_NULLABLE, .dflt = "auto", .choices = workflow_modes },
	{ .name = NULL }
};
static const struct dc_model chat_model = { "ChatRequest", chat_fields };

#define READ_ONLY_ONLY	"SQL Editor accepts read-only SQL only " \
	"(SELECT/WITH/SHOW/DESCRIBE/EXPLAIN)."

/*
 * A validated ChatRequest (v, from chat_model) as the pipeline takes it;
 * req points into the request's JSON.  DC_EINVAL when the statement of
 * direct SQL holds a NUL (the guard reads C strings: it must never see
 * half a statement).
 */
static int
chat_request(const struct dc_val *v, struct dc_chat_request *req)
{
	size_t n;

	memset(req, 0, sizeof(*req));
	req->message = v[R_MESSAGE].s;
	req->direct = strcmp(v[R_MODE].s, "direct_sql") == 0;
	req->conversation_id = v[R_CONV].null ? NULL : v[R_CONV].s;
	req->target = v[R_TARGET].null ? NULL : v[R_TARGET].v;
	req->history = v[R_HISTORY].set ? v[R_HISTORY].v : NULL;
	req->session_summary = v[R_SUMMARY].null ? NULL : v[R_SUMMARY].s;
	req->session_state = v[R_STATE].null ? NULL : v[R_STATE].v;
	req->synthesize = !v[R_SYNTH].null && v[R_SYNTH].i;
	if (req->direct) {
		/* DataChat: (sql or message).strip() */
		if (!v[R_SQL].null && v[R_SQL].slen > 0) {
			req->sql = v[R_SQL].s;
			n = v[R_SQL].slen;
		} else {
			req->sql = req->message;
			n = v[R_MESSAGE].slen;
		}
		if (strlen(req->sql) != n)
			return DC_EINVAL;
	}
	return DC_OK;
}

/* --- POST /api/v1/chat --- */

struct rest_chat {
	struct dc_req	*r;
	struct dc_chat	*q;
};

static void
rest_complete(void *arg, const char *json, size_t len)
{
	struct rest_chat *c = arg;

	c->r->cancel = NULL;
	dc_reply_text(c->r, 200, "application/json", json, len);
	free(c);
}

static void
rest_fail(void *arg, const struct dc_chat_failure *f)
{
	struct rest_chat *c = arg;

	c->r->cancel = NULL;
	if (f->setup)
		dc_reply_not_initialized(c->r);
	else
		dc_reply_error(c->r, f->status, "%s", f->message);
	free(c);
}

/* The client left or request_timeout passed: stop the run. */
static void
rest_cancel(struct dc_req *r, void *arg)
{
	struct rest_chat *c = arg;

	dc_chat_cancel(c->q);
	free(c);
}

static const struct dc_chat_sink rest_sink = {
	NULL, rest_complete, rest_fail, DC_ENC_PYDANTIC
};

static void
chat(struct dc_req *r)
{
	struct dc_val v[DC_MODEL_MAX_FIELDS];
	struct json_object *body = NULL;
	struct dc_chat_request req;
	struct rest_chat *c;

	if (dc_req_model(r, &chat_model, 0, v, &body) != DC_OK)
		return;
	if (chat_request(v, &req) != DC_OK) {
		dc_reply_error(r, 400, READ_ONLY_ONLY);
		goto out;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		dc_reply_error(r, 500, "out of memory");
		goto out;
	}
	c->r = r;
	dc_req_defer(r, rest_cancel, c);
	/* may reply (and free c) before it returns */
	dc_chat_start(r->w, &req, &rest_sink, c, &c->q);
out:
	json_object_put(body);
}

/* --- GET /ws/chat --- */

struct ws_chat {
	struct dc_ws	*ws;
	struct dc_worker *w;
	struct dc_chat	*q;		/* the run, while it runs */
	struct event	 timer;		/* request_timeout */
	int		 asked;		/* the question came */
};

static void
ws_chat_free(struct ws_chat *c)
{
	evtimer_del(&c->timer);
	free(c);
}

/*
 * An error event, then the close code that goes with it; c is freed.
 * error NULL: DataChat's system_not_initialized, with its setup steps.
 */
static void
ws_chat_error(struct ws_chat *c, const char *error, const char *message,
    int code)
{
	struct dc_jw w;

	dc_jw_init(&w);
	dc_jw_object(&w);
	dc_jw_key(&w, "event");
	dc_jw_string(&w, "error");
	if (error == NULL)
		dc_system_write_not_initialized(c->w, &w);
	else {
		dc_jw_key(&w, "error");
		dc_jw_string(&w, error);
		dc_jw_key(&w, "message");
		dc_jw_string(&w, message);
	}
	dc_jw_object_end(&w);
	if (!w.err)
		dc_ws_send_text(c->ws, w.buf, w.len);
	dc_jw_free(&w);
	log_info("%s /ws/chat %s: %s", dc_ws_id(c->ws), error != NULL ? error :
	    "system_not_initialized", message);
	dc_ws_close(c->ws, code, "");
	ws_chat_free(c);
}

static void
ws_event(void *arg, const char *json, size_t len)
{
	struct ws_chat *c = arg;

	dc_ws_send_text(c->ws, json, len);
}

static void
ws_complete(void *arg, const char *json, size_t len)
{
	static const char head[] = "{\"event\":\"complete\",";
	struct ws_chat *c = arg;
	char *msg;

	/* the ChatResponse object, with "event" as its first member */
	assert(len >= 2 && json[0] == '{');
	c->q = NULL;
	if ((msg = malloc(sizeof(head) - 1 + len - 1)) == NULL) {
		ws_chat_error(c, "internal_error", "out of memory",
		    DC_WS_INTERNAL);
		return;
	}
	memcpy(msg, head, sizeof(head) - 1);
	memcpy(msg + sizeof(head) - 1, json + 1, len - 1);
	dc_ws_send_text(c->ws, msg, sizeof(head) - 1 + len - 1);
	free(msg);
	dc_ws_close(c->ws, DC_WS_NORMAL, "");
	ws_chat_free(c);
}

static void
ws_fail(void *arg, const struct dc_chat_failure *f)
{
	struct ws_chat *c = arg;

	c->q = NULL;
	ws_chat_error(c, f->setup ? NULL : f->error, f->message, f->close);
}

static const struct dc_chat_sink ws_sink = {
	ws_event, ws_complete, ws_fail, DC_ENC_JSONABLE
};

static void
ws_timed_out(evutil_socket_t fd, short what, void *arg)
{
	struct ws_chat *c = arg;
	char msg[128];

	if (c->q != NULL)
		dc_chat_cancel(c->q);
	c->q = NULL;
	snprintf(msg, sizeof(msg), "request timed out after %d s "
	    "(request_timeout)", c->w->cfg->request_timeout);
	ws_chat_error(c, "timeout", msg, DC_WS_INTERNAL);
}

/* "loc: msg" of pydantic's first error, and how many more there are. */
static void
validation_message(struct json_object *errs, char *out, size_t outsz)
{
	struct json_object *e = json_object_array_get_idx(errs, 0), *loc, *m;
	size_t i, n, o = 0;

	out[0] = '\0';
	if (json_object_object_get_ex(e, "loc", &loc))
		for (i = 1, n = json_object_array_length(loc); i < n &&
		    o < outsz; i++)
			o += (size_t)snprintf(out + o, outsz - o, "%s%s",
			    i > 1 ? "." : "", json_object_get_string(
			    json_object_array_get_idx(loc, i)));
	if (o < outsz && json_object_object_get_ex(e, "msg", &m))
		o += (size_t)snprintf(out + o, outsz - o, "%s%s",
		    o > 0 ? ": " : "", json_object_get_string(m));
	n = json_object_array_length(errs);
	if (n > 1 && o < outsz)
		snprintf(out + o, outsz - o, " (and %zu more)", n - 1);
}

static void
ws_text(struct dc_ws *ws, const char *msg, size_t len, void *arg)
{
	struct ws_chat *c = arg;
	struct dc_val v[DC_MODEL_MAX_FIELDS];
	struct json_tokener *tok;
	struct json_object *body = NULL, *errs;
	struct dc_chat_request req;
	struct timeval tv;
	char why[512];
	int n;

	if (c->asked)
		return;		/* one question per socket, as DataChat */
	c->asked = 1;
	if ((tok = json_tokener_new_ex(JSON_MAX_DEPTH)) == NULL) {
		ws_chat_error(c, "internal_error", "out of memory",
		    DC_WS_INTERNAL);
		return;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	body = json_tokener_parse_ex(tok, msg, (int)len);
	if (body == NULL || json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != len) {
		json_tokener_free(tok);
		json_object_put(body);
		ws_chat_error(c, "invalid_json", "Invalid JSON format",
		    DC_WS_UNSUPPORTED_DATA);
		return;
	}
	json_tokener_free(tok);
	if (!json_object_is_type(body, json_type_object)) {
		json_object_put(body);
		ws_chat_error(c, "validation_error", "The message must be a "
		    "JSON object (a ChatRequest)", DC_WS_POLICY);
		return;
	}
	if (!json_object_object_get_ex(body, "message", NULL)) {
		json_object_put(body);
		ws_chat_error(c, "validation_error", "Missing required field: "
		    "message", DC_WS_POLICY);
		return;
	}
	/* the REST route's field table, pydantic's words */
	if ((errs = json_object_new_array()) == NULL ||
	    (n = dc_model_validate(&chat_model, body, "body", v, errs)) < 0) {
		json_object_put(errs);
		json_object_put(body);
		ws_chat_error(c, "internal_error", "out of memory",
		    DC_WS_INTERNAL);
		return;
	}
	if (n > 0) {
		validation_message(errs, why, sizeof(why));
		json_object_put(errs);
		json_object_put(body);
		ws_chat_error(c, "validation_error", why, DC_WS_POLICY);
		return;
	}
	json_object_put(errs);
	if (chat_request(v, &req) != DC_OK) {
		json_object_put(body);
		ws_chat_error(c, "validation_error", READ_ONLY_ONLY,
		    DC_WS_POLICY);
		return;
	}
	dc_ws_busy(c->ws, 1);
	tv.tv_sec = c->w->cfg->request_timeout;
	tv.tv_usec = 0;
	evtimer_add(&c->timer, &tv);
	/* may end (and free c) before it returns */
	dc_chat_start(c->w, &req, &ws_sink, c, &c->q);
	json_object_put(body);
}

static void
ws_binary(struct dc_ws *ws, size_t len, void *arg)
{
	struct ws_chat *c = arg;

	if (c->asked)
		return;
	c->asked = 1;
	ws_chat_error(c, "invalid_json", "Binary messages are not accepted: "
	    "send the ChatRequest as JSON text", DC_WS_UNSUPPORTED_DATA);
}

/* The client closed or vanished (or a shutdown): stop what runs. */
static void
ws_closed(struct dc_ws *ws, int code, void *arg)
{
	struct ws_chat *c = arg;

	if (c->q != NULL) {
		log_info("%s /ws/chat: the client left (%d); the question is "
		    "cancelled", dc_ws_id(ws), code);
		dc_chat_cancel(c->q);
	}
	ws_chat_free(c);
}

static const struct dc_ws_handler ws_handler = {
	ws_text, ws_binary, ws_closed
};

static void
ws_chat(struct dc_req *r)
{
	struct ws_chat *c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		dc_reply_error(r, 500, "out of memory");
		return;
	}
	c->w = r->w;
	evtimer_assign(&c->timer, r->w->base, ws_timed_out, c);
	if (dc_ws_accept(r, &ws_handler, c, &c->ws) != DC_OK)
		free(c);	/* answered */
}

const struct dc_route dc_routes_chat[] = {
	{ "POST", "/api/v1/chat", chat, DC_ROLE_QUERY },
	{ "GET", "/ws/chat", ws_chat, DC_ROLE_QUERY },
	{ NULL, NULL, NULL, 0 }
};

/* The request models above and where they are used (model.h). */
const struct dc_model_use dc_models_chat[] = {
	{ "POST /api/v1/chat", "body", &chat_model },
	{ "GET /ws/chat", "body", &chat_model },
	{ NULL, NULL, NULL }
};
