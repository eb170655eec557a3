/*
 * llm.c - the worker's LLM client (see llm.h).
 *
 * Calls are libcurl transfers on the worker's shared multi handle
 * (curlev.h), so nothing here ever waits: a provider that takes twenty
 * seconds delays only the request that asked it.  A call that needs no
 * request (no provider configured) is answered from a zero timer, so
 * callbacks never run from inside dc_llm_complete().  Calls share the
 * worker's share handle, so a call to the provider reuses an idle
 * keep-alive connection of an earlier one.
 *
 * The API key lives in the worker's config and, for the life of a call,
 * in its header list, which is wiped before it is freed (libcurl's own
 * copy of the request is not ours to wipe).  Error text a provider sends
 * back is scrubbed of the key before anyone sees it, and nothing here
 * logs a header.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <json-c/json.h>

#include "config.h"
#include "curlev.h"
#include "dc.h"
#include "jsonw.h"
#include "llm.h"
#include "log.h"
#include "shreg.h"
#include "sse.h"
#include "util.h"
#include "worker.h"

#define LLM_JSON_DEPTH		64
#define LLM_CONNECT_TIMEOUT_MS	10000L
#define LLM_PROVIDER_MSG_MAX	200	/* bytes of a provider's error text */
#define LLM_ERROR_MAX		1024
#define LLM_WHERE_MAX		256
#define ANTHROPIC_VERSION	"2023-06-01"
#define LLM_EVENT_MAX		(1024 * 1024)	/* one streamed event */

enum provider {
	P_NONE = 0,
	P_OPENAI,
	P_ANTHROPIC,
	P_LOCAL,
};

struct dc_llm_call {
	struct dc_llm	*llm;
	struct dc_curl_xfer xfer;	/* easy NULL: answered without a
					   request */
	struct curl_slist *headers;	/* holds the key: wiped on free */
	struct event	*now_ev;	/* answers a call without a request */
	const char	*why;		/* not configured: what to set */
	int		 provider;
	dc_llm_cb	 cb;
	void		*arg;
	uint64_t	 start_ms;
	char		*resp;
	size_t		 resp_len, resp_cap;
	int		 too_big;

	/* streamed calls (dc_llm_stream) */
	dc_llm_chunk_cb	 chunk;		/* NULL: not streamed */
	struct event	*chunk_ev;	/* hands text over from the loop */
	int		 sse;		/* the reply is an event stream */
	int		 sse_checked;	/* its headers were looked at */
	struct dc_sse	 parser;
	char		*text;		/* the assistant's text so far */
	size_t		 text_len, text_cap, delivered;
	char		*stream_err;	/* an error event's message */
	int		 stream_bad;	/* an event we could not read */
	int		 in_chunk;	/* inside the chunk callback */
	int		 cancelled;	/* ... which cancelled the call */
	char		 where[LLM_WHERE_MAX];	/* base URL, masked */
	char		 errbuf[CURL_ERROR_SIZE];
	struct dc_llm_call *prev, *next;
};

struct dc_llm {
	struct dc_worker *w;
	struct dc_curlev *cv;		/* the worker's (w->curl) */
	struct dc_llm_call *calls;
};

static const char *const provider_names[] = {
	"", "openai", "anthropic", "local"
};

static int
provider_of(const struct dc_config *c)
{
	size_t i;

	for (i = 1; i < DC_ARRAY_SIZE(provider_names); i++)
		if (strcmp(c->llm_provider, provider_names[i]) == 0)
			return (int)i;
	return P_NONE;
}

/* The API key a provider is called with, or NULL for none. */
static const char *
provider_key(const struct dc_config *c, int p)
{
	const char *k;

	switch (p) {
	case P_OPENAI:
		k = c->llm_openai_api_key;
		break;
	case P_ANTHROPIC:
		k = c->llm_anthropic_api_key;
		break;
	default:
		/*
		 * The config has no key of its own for the local provider,
		 * and another provider's key must not travel to it.
		 */
		k = NULL;
		break;
	}
	return k != NULL && k[0] != '\0' ? k : NULL;
}

static const char *
provider_model(const struct dc_config *c, int p)
{
	switch (p) {
	case P_OPENAI:		return c->llm_openai_model;
	case P_ANTHROPIC:	return c->llm_anthropic_model;
	case P_LOCAL:		return c->llm_local_model;
	default:		return "";
	}
}

static const char *
provider_base(const struct dc_config *c, int p)
{
	switch (p) {
	case P_OPENAI:		return c->llm_openai_base_url;
	case P_ANTHROPIC:	return c->llm_anthropic_base_url;
	case P_LOCAL:		return c->llm_local_base_url;
	default:		return "";
	}
}

/* Why provider p cannot be used with config c, or NULL when it can. */
static const char *
unusable(const struct dc_config *c, int p)
{
	if (c->llm_provider[0] == '\0')
		return "no LLM configured: set llm_provider "
		    "(LLM_DEFAULT_PROVIDER) to openai, anthropic or local, "
		    "with that provider's key and model";
	switch (p) {
	case P_OPENAI:
		if (provider_key(c, p) == NULL)
			return "llm_provider is openai but no API key is set: "
			    "set llm_openai_api_key (LLM_OPENAI_API_KEY) or "
			    "llm_key_file";
		if (c->llm_openai_model[0] == '\0')
			return "llm_provider is openai but no model is set: "
			    "set llm_openai_model (LLM_OPENAI_MODEL)";
		if (c->llm_openai_base_url[0] == '\0')
			return "llm_provider is openai but llm_openai_base_url "
			    "(LLM_OPENAI_BASE_URL) is empty";
		return NULL;
	case P_ANTHROPIC:
		if (provider_key(c, p) == NULL)
			return "llm_provider is anthropic but no API key is "
			    "set: set llm_anthropic_api_key "
			    "(LLM_ANTHROPIC_API_KEY) or llm_key_file";
		if (c->llm_anthropic_model[0] == '\0')
			return "llm_provider is anthropic but no model is set: "
			    "set llm_anthropic_model (LLM_ANTHROPIC_MODEL)";
		if (c->llm_anthropic_base_url[0] == '\0')
			return "llm_provider is anthropic but "
			    "llm_anthropic_base_url (LLM_ANTHROPIC_BASE_URL) "
			    "is empty";
		return NULL;
	case P_LOCAL:
		if (c->llm_local_model[0] == '\0')
			return "llm_provider is local but no model is set: "
			    "set llm_local_model (LLM_LOCAL_MODEL)";
		if (c->llm_local_base_url[0] == '\0')
			return "llm_provider is local but llm_local_base_url "
			    "(LLM_LOCAL_BASE_URL) is empty";
		return NULL;
	default:
		return "llm_provider must be openai, anthropic or local";
	}
}

const char *
dc_llm_config_problem(const struct dc_config *c)
{
	return unusable(c, provider_of(c));
}

int
dc_llm_configured(const struct dc_llm *llm, const char **why)
{
	const char *y;

	if (llm == NULL)
		y = "the LLM client could not be set up (libcurl); see the log";
	else
		y = unusable(llm->w->cfg, provider_of(llm->w->cfg));

	if (why != NULL)
		*why = y;
	return y == NULL;
}

const char *
dc_llm_provider(const struct dc_llm *llm)
{
	if (llm == NULL)
		return "";
	return provider_names[provider_of(llm->w->cfg)];
}

const char *
dc_llm_model(const struct dc_llm *llm)
{
	if (llm == NULL)
		return "";
	return provider_model(llm->w->cfg, provider_of(llm->w->cfg));
}

/*
 * The endpoint of provider p: its base URL without trailing slashes,
 * then /v1 unless the base already ends with it (OpenAI's base includes
 * it by convention, the others usually do not), then the path.
 * Malloc'ed, or NULL.
 */
static char *
endpoint(const struct dc_config *c, int p)
{
	const char *base = provider_base(c, p), *v1, *path;
	size_t n = strlen(base);
	char *url;

	while (n > 0 && base[n - 1] == '/')
		n--;
	path = p == P_ANTHROPIC ? "/messages" : "/chat/completions";
	v1 = p == P_OPENAI || (n >= 3 && strncmp(base + n - 3, "/v1", 3) == 0) ?
	    "" : "/v1";
	if (asprintf(&url, "%.*s%s%s", (int)n, base, v1, path) == -1)
		return NULL;
	return url;
}

/* Temperature as JSON without binary noise: 0.2, not 0.200000000001. */
static struct json_object *
json_temperature(double t)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%.4g", t);
	return json_object_new_double_s(t, buf);
}

static void
add_message(struct dc_jb *b, struct json_object *msgs, const char *role,
    const char *content)
{
	struct json_object *m = json_object_new_object();

	dc_jb_add(b, m, "role", json_object_new_string(role));
	dc_jb_add(b, m, "content", json_object_new_string(content));
	dc_jb_push(b, msgs, m);
}

/*
 * The request body.  OpenAI protocol: the system prompt is the first
 * message; Anthropic: a top-level "system".  An empty system prompt is
 * left out.  Returns a JSON object, or NULL when out of memory.
 */
static struct json_object *
request_body(const struct dc_config *c, int p, const char *sys,
    const char *user, int stream)
{
	struct json_object *o = json_object_new_object(), *msgs;
	struct dc_jb b = { 0 };

	msgs = json_object_new_array();
	dc_jb_add(&b, o, "model", json_object_new_string(provider_model(c, p)));
	if (p == P_ANTHROPIC && sys[0] != '\0')
		dc_jb_add(&b, o, "system", json_object_new_string(sys));
	if (p != P_ANTHROPIC && sys[0] != '\0')
		add_message(&b, msgs, "system", sys);
	add_message(&b, msgs, "user", user);
	dc_jb_add(&b, o, "messages", msgs);
	dc_jb_add(&b, o, "temperature", json_temperature(c->llm_temperature));
	dc_jb_add(&b, o, "max_tokens", json_object_new_int(c->llm_max_tokens));
	if (stream)
		dc_jb_add(&b, o, "stream", json_object_new_boolean(1));
	return dc_jb_done(&b, o);
}

/* Append "name: prefix value" to the header list; our copy is wiped. */
static int
add_header(struct curl_slist **h, const char *name, const char *prefix,
    const char *value)
{
	struct curl_slist *n;
	char *line;
	int rc = DC_OK;

	if (value == NULL)	/* "Name:" removes a header curl would add */
		line = strdup(name);
	else if (asprintf(&line, "%s: %s%s", name, prefix, value) == -1)
		line = NULL;
	if (line == NULL)
		return DC_ENOMEM;
	if ((n = curl_slist_append(*h, line)) == NULL)
		rc = DC_ENOMEM;
	else
		*h = n;
	dc_explicit_bzero(line, strlen(line));
	free(line);
	return rc;
}

static void
wipe_headers(struct curl_slist *h)
{
	struct curl_slist *s;

	for (s = h; s != NULL; s = s->next)
		dc_explicit_bzero(s->data, strlen(s->data));
	curl_slist_free_all(h);
}

static int	 stream_bytes(struct dc_llm_call *c, const char *data,
		     size_t n);

static size_t
write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct dc_llm_call *c = arg;
	size_t n = size * nmemb, cap;
	char *p;

	if (c->chunk != NULL) {
		/* an event stream is parsed as it comes, not kept */
		switch (stream_bytes(c, data, n)) {
		case 1:
			return n;
		case -1:
			return 0;	/* curl stops with CURLE_WRITE_ERROR */
		}
	}

	if (n > DC_LLM_MAX_REPLY - c->resp_len) {
		c->too_big = 1;
		return 0;	/* curl stops with CURLE_WRITE_ERROR */
	}
	if (c->resp_len + n + 1 > c->resp_cap) {
		cap = c->resp_cap ? c->resp_cap : 8192;
		while (cap < c->resp_len + n + 1)
			cap *= 2;
		if ((p = realloc(c->resp, cap)) == NULL)
			return 0;
		c->resp = p;
		c->resp_cap = cap;
	}
	memcpy(c->resp + c->resp_len, data, n);
	c->resp_len += n;
	c->resp[c->resp_len] = '\0';
	return n;
}

/* --- calls --- */

static void
call_link(struct dc_llm *llm, struct dc_llm_call *c)
{
	c->next = llm->calls;
	if (llm->calls != NULL)
		llm->calls->prev = c;
	llm->calls = c;
}

static void
call_unlink(struct dc_llm_call *c)
{
	struct dc_llm *llm = c->llm;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else if (llm->calls == c)
		llm->calls = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

/* Unlink and free; the easy handle leaves the multi (closing its socket). */
static void
call_free(struct dc_llm_call *c)
{
	call_unlink(c);
	if (c->xfer.easy != NULL) {
		dc_curlev_remove(c->llm->cv, &c->xfer);
		curl_easy_cleanup(c->xfer.easy);
	}
	if (c->now_ev != NULL)
		event_free(c->now_ev);
	if (c->chunk_ev != NULL)
		event_free(c->chunk_ev);
	dc_sse_free(&c->parser);
	free(c->text);
	free(c->stream_err);
	wipe_headers(c->headers);
	free(c->resp);
	free(c);
}

/*
 * Copy a provider's message into out: at most LLM_PROVIDER_MSG_MAX bytes
 * (not splitting a UTF-8 sequence), control characters as spaces, the key
 * replaced by ***.
 */
static void
provider_message(const char *msg, const char *key, char *out, size_t outsz)
{
	char buf[LLM_PROVIDER_MSG_MAX * 2 + 8];
	size_t n = 0, i, klen = key != NULL ? strlen(key) : 0;
	const char *s = msg;

	while (*s != '\0' && n < sizeof(buf) - 8) {
		if (klen > 0 && strncmp(s, key, klen) == 0) {
			memcpy(buf + n, "***", 3);
			n += 3;
			s += klen;
			continue;
		}
		buf[n++] = (unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s;
		s++;
	}
	buf[n] = '\0';
	/* the key went before cutting, so no piece of it can remain */
	if (n > LLM_PROVIDER_MSG_MAX) {
		i = LLM_PROVIDER_MSG_MAX;
		while (i > 0 && ((unsigned char)buf[i] & 0xc0) == 0x80)
			i--;
		memcpy(buf + i, "...", 4);
	}
	for (n = strlen(buf); n > 0 && buf[n - 1] == ' '; n--)
		buf[n - 1] = '\0';
	dc_strlcpy(out, buf, outsz);
}

static struct json_object *
parse_json(const char *data, size_t len)
{
	struct json_tokener *tok;
	struct json_object *o = NULL;
	size_t end;

	if (data == NULL || len == 0)
		return NULL;
	if ((tok = json_tokener_new_ex(LLM_JSON_DEPTH)) == NULL)
		return NULL;
	o = json_tokener_parse_ex(tok, data, (int)len);
	end = json_tokener_get_parse_end(tok);
	if (o != NULL && json_tokener_get_error(tok) == json_tokener_success)
		while (end < len && strchr(" \t\r\n", data[end]) != NULL)
			end++;
	if (o != NULL && (json_tokener_get_error(tok) != json_tokener_success ||
	    end != len)) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

static const char *
get_string(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (o == NULL || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/*
 * The error text of a provider's error reply: OpenAI and Anthropic send
 * {"error": {"message": ...}}, Ollama {"error": "..."}, others
 * {"message": ...} or {"detail": ...}.
 */
static const char *
error_text(struct json_object *o)
{
	struct json_object *e;
	const char *s;

	if (o == NULL || !json_object_is_type(o, json_type_object))
		return NULL;
	if (json_object_object_get_ex(o, "error", &e)) {
		if (json_object_is_type(e, json_type_string))
			return json_object_get_string(e);
		if ((s = get_string(e, "message")) != NULL)
			return s;
	}
	if ((s = get_string(o, "message")) != NULL)
		return s;
	return get_string(o, "detail");
}

/*
 * Concatenate the "text" of the {"type": "text"} blocks of an array
 * (Anthropic's content, and OpenAI content given as parts).  Malloc'ed,
 * "" when there are none, NULL when out of memory.
 */
static char *
text_blocks(struct json_object *arr)
{
	size_t i, n = json_object_array_length(arr), len = 0, l;
	const char *type, *t;
	struct json_object *b;
	char *out, *p;

	if ((out = malloc(1)) == NULL)
		return NULL;
	out[0] = '\0';
	for (i = 0; i < n; i++) {
		b = json_object_array_get_idx(arr, i);
		type = get_string(b, "type");
		t = get_string(b, "text");
		if (type == NULL || strcmp(type, "text") != 0 || t == NULL)
			continue;
		l = strlen(t);
		if ((p = realloc(out, len + l + 1)) == NULL) {
			free(out);
			return NULL;
		}
		out = p;
		memcpy(out + len, t, l + 1);
		len += l;
	}
	return out;
}

/* OpenAI protocol: choices[0].message.content. */
static int
openai_text(struct json_object *o, const char *pname, const char *key,
    char **text, char *err, size_t errsz)
{
	struct json_object *choices, *c0, *m, *content;
	char msg[LLM_PROVIDER_MSG_MAX + 8];
	const char *why;

	if (!json_object_object_get_ex(o, "choices", &choices) ||
	    !json_object_is_type(choices, json_type_array) ||
	    json_object_array_length(choices) == 0) {
		snprintf(err, errsz, "%s reply has no choices", pname);
		return DC_EUNAVAIL;
	}
	c0 = json_object_array_get_idx(choices, 0);
	if (!json_object_is_type(c0, json_type_object) ||
	    !json_object_object_get_ex(c0, "message", &m) ||
	    !json_object_is_type(m, json_type_object)) {
		snprintf(err, errsz, "%s reply has no message in its first "
		    "choice", pname);
		return DC_EUNAVAIL;
	}
	if (json_object_object_get_ex(m, "content", &content) &&
	    json_object_is_type(content, json_type_string))
		*text = strdup(json_object_get_string(content));
	else if (json_object_object_get_ex(m, "content", &content) &&
	    json_object_is_type(content, json_type_array))
		*text = text_blocks(content);
	else
		*text = strdup("");
	if (*text == NULL) {
		snprintf(err, errsz, "out of memory");
		return DC_ERR;
	}
	if ((*text)[strspn(*text, " \t\r\n")] == '\0') {
		free(*text);
		*text = NULL;
		if ((why = get_string(m, "refusal")) != NULL) {
			provider_message(why, key, msg, sizeof(msg));
			snprintf(err, errsz, "%s refused: %s", pname, msg);
			return DC_EUNAVAIL;
		}
		if ((why = get_string(c0, "finish_reason")) == NULL)
			why = "none";
		snprintf(err, errsz, "%s reply has an empty message "
		    "(finish_reason: %.40s)", pname, why);
		return DC_EUNAVAIL;
	}
	return DC_OK;
}

/* Anthropic protocol: the text blocks of content. */
static int
anthropic_text(struct json_object *o, char **text, char *err, size_t errsz)
{
	struct json_object *content;
	const char *why;

	if (!json_object_object_get_ex(o, "content", &content) ||
	    !json_object_is_type(content, json_type_array)) {
		snprintf(err, errsz, "anthropic reply has no content");
		return DC_EUNAVAIL;
	}
	if ((*text = text_blocks(content)) == NULL) {
		snprintf(err, errsz, "out of memory");
		return DC_ERR;
	}
	if ((*text)[strspn(*text, " \t\r\n")] == '\0') {
		free(*text);
		*text = NULL;
		why = get_string(o, "stop_reason");
		snprintf(err, errsz, "anthropic reply has no text content "
		    "(stop_reason: %.40s)", why != NULL ? why : "none");
		return DC_EUNAVAIL;
	}
	return DC_OK;
}

/* A transfer that failed before a whole HTTP reply arrived. */
static int
transfer_error(struct dc_llm_call *c, CURLcode res, char *err, size_t errsz)
{
	const struct dc_config *cfg = c->llm->w->cfg;
	const char *pname = provider_names[c->provider];
	const char *detail = c->errbuf[0] != '\0' ? c->errbuf :
	    curl_easy_strerror(res);
	curl_off_t connected = 0;

	switch (res) {
	case CURLE_OPERATION_TIMEDOUT:
		curl_easy_getinfo(c->xfer.easy, CURLINFO_CONNECT_TIME_T,
		    &connected);
		if (connected == 0)
			snprintf(err, errsz, "cannot reach %s at %s: no "
			    "connection within %ld s", pname, c->where,
			    (cfg->llm_timeout * 1000L < LLM_CONNECT_TIMEOUT_MS ?
			    cfg->llm_timeout * 1000L : LLM_CONNECT_TIMEOUT_MS) /
			    1000);
		else
			snprintf(err, errsz, "%s at %s did not answer within "
			    "%d s (llm_timeout)", pname, c->where,
			    cfg->llm_timeout);
		return DC_ETIMEOUT;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
		snprintf(err, errsz, "cannot reach %s at %s: %s", pname,
		    c->where, detail);
		return DC_EUNAVAIL;
	case CURLE_GOT_NOTHING:
		snprintf(err, errsz, "%s at %s closed the connection without "
		    "a reply", pname, c->where);
		return DC_EUNAVAIL;
	case CURLE_WRITE_ERROR:
	case CURLE_FILESIZE_EXCEEDED:
		if (c->too_big || res == CURLE_FILESIZE_EXCEEDED) {
			snprintf(err, errsz, "%s reply is larger than %d MB",
			    pname, DC_LLM_MAX_REPLY / (1024 * 1024));
			return DC_EUNAVAIL;
		}
		snprintf(err, errsz, "out of memory reading the %s reply",
		    pname);
		return DC_ERR;
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
		snprintf(err, errsz, "connection to %s at %s broke before a "
		    "complete reply: %s", pname, c->where, detail);
		return DC_EUNAVAIL;
	default:
		snprintf(err, errsz, "request to %s at %s failed: %s", pname,
		    c->where, detail);
		return DC_EUNAVAIL;
	}
}

/* --- streamed replies (dc_llm_stream) --- */

/* Append n bytes to the streamed text; 0, or -1 to stop the transfer. */
static int
stream_text(struct dc_llm_call *c, const char *t, size_t n)
{
	size_t cap;
	char *p;

	if (n > DC_LLM_MAX_REPLY - c->text_len) {
		c->too_big = 1;
		return -1;
	}
	if (c->text_len + n + 1 > c->text_cap) {
		for (cap = c->text_cap ? c->text_cap : 1024;
		    cap < c->text_len + n + 1; cap *= 2)
			;
		if ((p = realloc(c->text, cap)) == NULL)
			return -1;
		c->text = p;
		c->text_cap = cap;
	}
	memcpy(c->text + c->text_len, t, n);
	c->text_len += n;
	c->text[c->text_len] = '\0';
	return 0;
}

/* An error in the stream: keep the provider's words, stop reading. */
static int
stream_error(struct dc_llm_call *c, struct json_object *o)
{
	const char *m = error_text(o);

	free(c->stream_err);
	c->stream_err = strdup(m != NULL && m[0] != '\0' ? m : "no message");
	return -1;
}

/*
 * One event of a stream.  OpenAI protocol: chunks whose
 * choices[0].delta.content is the next piece of text, then [DONE].
 * Anthropic: content_block_delta events carry it in delta.text; an
 * "error" event ends the stream.  Everything else says nothing we need.
 */
static int
stream_event(const char *event, const char *data, size_t len, void *arg)
{
	struct dc_llm_call *c = arg;
	struct json_object *o, *v, *d = NULL;
	const char *t = NULL, *type;
	int rc = 0;

	if (c->provider != P_ANTHROPIC && strcmp(data, "[DONE]") == 0)
		return 0;
	o = parse_json(data, len);
	if (o == NULL || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		c->stream_bad = 1;
		return -1;
	}
	if (c->provider == P_ANTHROPIC) {
		type = get_string(o, "type");
		if (type != NULL && strcmp(type, "error") == 0)
			rc = stream_error(c, o);
		else if (type != NULL &&
		    strcmp(type, "content_block_delta") == 0 &&
		    json_object_object_get_ex(o, "delta", &d))
			t = get_string(d, "text");
	} else if (json_object_object_get_ex(o, "error", &v) &&
	    !json_object_is_type(v, json_type_null))
		rc = stream_error(c, o);
	else if (json_object_object_get_ex(o, "choices", &v) &&
	    json_object_is_type(v, json_type_array) &&
	    json_object_array_length(v) > 0 &&
	    json_object_object_get_ex(json_object_array_get_idx(v, 0),
	    "delta", &d))
		t = get_string(d, "content");
	if (t != NULL)
		rc = stream_text(c, t, strlen(t));
	json_object_put(o);
	return rc;
}

/*
 * Bytes of a streamed call's reply.  1: taken (an event stream); 0: not
 * a stream (an error status, or a provider that answered one JSON body
 * all the same), kept whole like any reply; -1: stop the transfer.
 */
static int
stream_bytes(struct dc_llm_call *c, const char *data, size_t n)
{
	char *ctype = NULL;
	long code = 0;

	if (!c->sse_checked) {
		c->sse_checked = 1;
		curl_easy_getinfo(c->xfer.easy, CURLINFO_RESPONSE_CODE, &code);
		curl_easy_getinfo(c->xfer.easy, CURLINFO_CONTENT_TYPE, &ctype);
		c->sse = code >= 200 && code <= 299 && ctype != NULL &&
		    strncasecmp(ctype, "text/event-stream", 17) == 0;
		if (c->sse)
			dc_sse_init(&c->parser, LLM_EVENT_MAX);
	}
	if (!c->sse)
		return 0;
	if (dc_sse_feed(&c->parser, data, n, stream_event, c) != DC_OK) {
		if (c->stream_err == NULL && !c->too_big)
			c->stream_bad = 1;
		return -1;
	}
	/* handed over from the loop, outside libcurl's callback */
	if (c->text_len > c->delivered)
		event_active(c->chunk_ev, EV_TIMEOUT, 1);
	return 1;
}

/*
 * Give the chunk callback the text it has not seen.  Returns 0 when the
 * callback cancelled the call (c is freed then), else 1.
 */
static int
deliver_chunks(struct dc_llm_call *c)
{
	size_t from = c->delivered;

	if (c->chunk == NULL || c->text_len == from)
		return 1;
	c->delivered = c->text_len;
	c->in_chunk = 1;
	c->chunk(c->text + from, c->text_len - from, c->arg);
	c->in_chunk = 0;
	if (c->cancelled) {
		call_free(c);
		return 0;
	}
	return 1;
}

static void
chunk_event(evutil_socket_t fd, short what, void *arg)
{
	deliver_chunks(arg);
}

/* How a streamed call that got an event stream ended. */
static int
stream_reply(struct dc_llm_call *c, CURLcode res, char *err, size_t errsz)
{
	const struct dc_config *cfg = c->llm->w->cfg;
	const char *pname = provider_names[c->provider];
	char msg[LLM_PROVIDER_MSG_MAX + 8];

	if (c->stream_err != NULL) {
		provider_message(c->stream_err, provider_key(cfg, c->provider),
		    msg, sizeof(msg));
		snprintf(err, errsz, "%s reported an error in its stream: %s",
		    pname, msg);
		return DC_EUNAVAIL;
	}
	if (c->stream_bad) {
		snprintf(err, errsz, "%s sent an event stream that cannot be "
		    "read", pname);
		return DC_EUNAVAIL;
	}
	if (res != CURLE_OK)
		return transfer_error(c, res, err, errsz);
	if (c->text_len == 0 ||
	    c->text[strspn(c->text, " \t\r\n")] == '\0') {
		snprintf(err, errsz, "%s streamed no text", pname);
		return DC_EUNAVAIL;
	}
	return DC_OK;
}

/* A whole HTTP reply: an error status, or the assistant's text. */
static int
http_reply(struct dc_llm_call *c, long code, char **text, char *err,
    size_t errsz)
{
	const struct dc_config *cfg = c->llm->w->cfg;
	const char *pname = provider_names[c->provider], *m;
	struct json_object *o = parse_json(c->resp, c->resp_len);
	char msg[LLM_PROVIDER_MSG_MAX + 8];
	int rc;

	if (code < 200 || code > 299) {
		m = error_text(o);
		if (m != NULL && m[0] != '\0') {
			provider_message(m, provider_key(cfg, c->provider),
			    msg, sizeof(msg));
			snprintf(err, errsz, "%s returned HTTP %ld: %s", pname,
			    code, msg);
		} else
			snprintf(err, errsz, "%s returned HTTP %ld (%s)", pname,
			    code, o != NULL ? "no error message in the reply" :
			    "the reply is not JSON");
		rc = DC_EUNAVAIL;
		goto out;
	}
	if (o == NULL || !json_object_is_type(o, json_type_object)) {
		snprintf(err, errsz, "%s returned a reply that is not a JSON "
		    "object (HTTP %ld, %zu bytes)", pname, code, c->resp_len);
		rc = DC_EUNAVAIL;
		goto out;
	}
	if (c->provider == P_ANTHROPIC)
		rc = anthropic_text(o, text, err, errsz);
	else
		rc = openai_text(o, pname, provider_key(cfg, c->provider),
		    text, err, errsz);
out:
	if (o != NULL)
		json_object_put(o);
	return rc;
}

/* Hand the reply to the callback, then forget the call. */
static void
deliver(struct dc_llm_call *c, struct dc_llm_reply *r)
{
	dc_llm_cb cb = c->cb;
	void *arg = c->arg;

	r->latency_ms = (long)(dc_now_ms() - c->start_ms);
	if (r->status == DC_OK)
		log_debug("llm %s: HTTP %d, %zu bytes, %ld ms",
		    provider_names[c->provider], r->http_status, c->resp_len,
		    r->latency_ms);
	else
		log_info("llm call failed after %ld ms: %s", r->latency_ms,
		    r->error);
	/* freed first: the callback may start calls, or cancel others */
	call_free(c);
	cb(r, arg);
}

static void
call_done(struct dc_llm_call *c, CURLcode res)
{
	struct dc_llm_reply r;
	char err[LLM_ERROR_MAX], *text = NULL;
	long code = 0;

	memset(&r, 0, sizeof(r));
	err[0] = '\0';
	curl_easy_getinfo(c->xfer.easy, CURLINFO_RESPONSE_CODE, &code);
	r.http_status = (int)code;
	if (c->sse)
		r.status = stream_reply(c, res, err, sizeof(err));
	else if (res != CURLE_OK)
		r.status = transfer_error(c, res, err, sizeof(err));
	else
		r.status = http_reply(c, code, &text, err, sizeof(err));
	if (r.status == DC_OK && c->chunk != NULL && !c->sse &&
	    stream_text(c, text, strlen(text)) != 0) {
		/* one JSON body for a streamed call: it is the one chunk */
		r.status = DC_ERR;
		snprintf(err, sizeof(err), "out of memory");
	}
	/* the last of the text before the end, even a failed one's */
	if (!deliver_chunks(c)) {
		free(text);
		return;			/* cancelled from the chunk callback */
	}
	if (r.status == DC_OK && c->chunk != NULL) {
		/* the whole text, kept past c (deliver frees it first) */
		free(text);
		text = c->text;
		c->text = NULL;
	}
	r.text = r.status == DC_OK ? text : NULL;
	r.error = r.status == DC_OK ? NULL : err;
	deliver(c, &r);
	free(text);
}

/* The transfer of a call ended (curlev.h). */
static void
xfer_done(struct dc_curl_xfer *x, CURLcode res)
{
	struct dc_llm_call *c = (struct dc_llm_call *)(void *)((char *)x -
	    offsetof(struct dc_llm_call, xfer));

	call_done(c, res);
}

/* A call answered without a request (no provider configured). */
static void
now_event(evutil_socket_t fd, short what, void *arg)
{
	struct dc_llm_call *c = arg;
	struct dc_llm_reply r;

	memset(&r, 0, sizeof(r));
	r.status = DC_EINVAL;
	r.error = c->why;
	deliver(c, &r);
}

static int
call_answer_now(struct dc_llm_call *c, const char *why)
{
	struct timeval tv = { 0, 0 };

	c->why = why;
	c->now_ev = evtimer_new(c->llm->w->base, now_event, c);
	if (c->now_ev == NULL || evtimer_add(c->now_ev, &tv) != 0)
		return DC_ENOMEM;
	return DC_OK;
}

/* Build the easy handle of a call and add it to the multi handle. */
static int
call_start(struct dc_llm_call *c, const char *sys, const char *user)
{
	struct dc_llm *llm = c->llm;
	const struct dc_config *cfg = llm->w->cfg;
	const char *key = provider_key(cfg, c->provider);
	struct json_object *o = NULL;
	char *url = NULL, *body = NULL, ua[64];
	long timeout_ms = cfg->llm_timeout * 1000L;
	size_t len;
	CURL *e;
	int rc = DC_ENOMEM;

	dc_url_mask(provider_base(cfg, c->provider), c->where,
	    sizeof(c->where));
	if ((url = endpoint(cfg, c->provider)) == NULL)
		goto out;
	if ((o = request_body(cfg, c->provider, sys, user,
	    c->chunk != NULL)) == NULL)
		goto out;
	if ((body = dc_jw_text(o, &len)) == NULL)
		goto out;
	if (add_header(&c->headers, "Content-Type", "", "application/json") ||
	    add_header(&c->headers, "Accept", "", c->chunk != NULL ?
	    "text/event-stream" : "application/json") ||
	    add_header(&c->headers, "Expect:", NULL, NULL))
		goto out;
	if (c->provider == P_ANTHROPIC) {
		if (add_header(&c->headers, "x-api-key", "", key) ||
		    add_header(&c->headers, "anthropic-version", "",
		    ANTHROPIC_VERSION))
			goto out;
	} else if (key != NULL) {
		if (add_header(&c->headers, "Authorization", "Bearer ", key))
			goto out;
	}
	if ((e = c->xfer.easy = curl_easy_init()) == NULL)
		goto out;
	c->xfer.done = xfer_done;
	snprintf(ua, sizeof(ua), "%s/%s", DC_NAME, DC_VERSION);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_SHARE, dc_curlev_share(llm->cv));
	curl_easy_setopt(e, CURLOPT_USERAGENT, ua);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
	    timeout_ms < LLM_CONNECT_TIMEOUT_MS ? timeout_ms :
	    LLM_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE,
	    (curl_off_t)DC_LLM_MAX_REPLY);
	curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(e, CURLOPT_PROTOCOLS,
	    (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	if (dc_curlev_add(llm->cv, &c->xfer) != DC_OK) {
		rc = DC_ERR;
		goto out;
	}
	rc = DC_OK;
out:
	if (o != NULL)
		json_object_put(o);
	free(body);
	free(url);
	return rc;
}

static int
call_new(struct dc_llm *llm, const char *system_prompt,
    const char *user_prompt, dc_llm_chunk_cb chunk, dc_llm_cb cb, void *arg,
    struct dc_llm_call **call)
{
	const struct dc_config *cfg;
	struct dc_llm_call *c;
	const char *why;
	int rc;

	if (call != NULL)
		*call = NULL;
	if (llm == NULL)
		return DC_ERR;
	if (system_prompt == NULL || user_prompt == NULL || cb == NULL)
		return DC_EINVAL;
	cfg = llm->w->cfg;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return DC_ENOMEM;
	c->llm = llm;
	c->cb = cb;
	c->arg = arg;
	c->start_ms = dc_now_ms();
	c->provider = provider_of(cfg);
	call_link(llm, c);
	if (chunk != NULL && (c->chunk_ev = event_new(llm->w->base, -1, 0,
	    chunk_event, c)) == NULL) {
		call_free(c);
		return DC_ENOMEM;
	}
	c->chunk = chunk;
	if ((why = unusable(cfg, c->provider)) != NULL)
		rc = call_answer_now(c, why);
	else
		rc = call_start(c, system_prompt, user_prompt);
	if (rc != DC_OK) {
		call_free(c);
		return rc;
	}
	if (c->xfer.easy != NULL && llm->w->stats != NULL)
		__atomic_add_fetch(&llm->w->stats->llm_calls, 1,
		    __ATOMIC_RELAXED);
	if (call != NULL)
		*call = c;
	return DC_OK;
}

int
dc_llm_complete(struct dc_llm *llm, const char *system_prompt,
    const char *user_prompt, dc_llm_cb cb, void *arg,
    struct dc_llm_call **call)
{
	return call_new(llm, system_prompt, user_prompt, NULL, cb, arg, call);
}

int
dc_llm_stream(struct dc_llm *llm, const char *system_prompt,
    const char *user_prompt, dc_llm_chunk_cb chunk, dc_llm_cb cb, void *arg,
    struct dc_llm_call **call)
{
	if (chunk == NULL)
		return DC_EINVAL;
	return call_new(llm, system_prompt, user_prompt, chunk, cb, arg, call);
}

void
dc_llm_cancel(struct dc_llm_call *c)
{
	if (c == NULL)
		return;
	if (c->in_chunk) {
		/* from its own chunk callback: freed when that returns */
		c->cancelled = 1;
		return;
	}
	log_debug("llm call to %s cancelled after %llu ms",
	    provider_names[c->provider],
	    (unsigned long long)(dc_now_ms() - c->start_ms));
	call_free(c);
}

struct dc_llm *
dc_llm_new(struct dc_worker *w)
{
	struct dc_llm *llm;

	if (w->curl == NULL) {
		log_error("cannot set up the LLM client (libcurl)");
		return NULL;
	}
	if ((llm = calloc(1, sizeof(*llm))) == NULL)
		return NULL;
	llm->w = w;
	llm->cv = w->curl;
	return llm;
}

void
dc_llm_free(struct dc_llm *llm)
{
	if (llm == NULL)
		return;
	while (llm->calls != NULL)
		call_free(llm->calls);
	free(llm);
}
