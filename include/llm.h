/*
 * llm.h - a worker's LLM client: chat completions over HTTP(S) with
 * libcurl, driven by the worker's event base, never blocking it.
 *
 * One struct dc_llm per worker adds its calls to the worker's curl multi
 * handle (curlev.h, w->curl), whose share handle (DNS cache, TLS
 * sessions, connection cache) lets calls to the same provider reuse
 * their connections.  A call sends one system prompt and one user prompt
 * and hands the assistant's text to a callback, all at once or (streamed)
 * in pieces as the provider writes it.
 *
 * Providers (llm_provider / LLM_DEFAULT_PROVIDER):
 *   openai     POST {llm_openai_base_url}/chat/completions, Bearer key
 *   local      POST {llm_local_base_url}/v1/chat/completions (Ollama,
 *              vLLM, llama.cpp: the OpenAI protocol), key optional
 *   anthropic  POST {llm_anthropic_base_url}/v1/messages, x-api-key
 * A base URL that already ends in /v1 is not given a second one.
 * Provider, model, key, temperature, max_tokens and timeout are read from
 * the worker's config when a call starts.
 *
 * API keys never appear in a reply's error text, in a log line, or
 * anywhere but the request header that carries them.
 */
#ifndef DC_LLM_H
#define DC_LLM_H

#include <stddef.h>

struct dc_config;
struct dc_worker;
struct dc_llm;
struct dc_llm_call;

/* Largest provider reply accepted, in bytes. */
#define DC_LLM_MAX_REPLY	(4 * 1024 * 1024)

struct dc_llm_reply {
	/*
	 * DC_OK; DC_EUNAVAIL: cannot connect, HTTP error, reply not usable
	 * (-> 502); DC_ETIMEOUT: llm_timeout passed (-> 504); DC_EINVAL:
	 * no usable provider configured (-> 503); DC_ERR: out of memory
	 * (-> 500).
	 */
	int		 status;
	const char	*text;		/* assistant text on DC_OK, else NULL */
	const char	*error;		/* why, when status != DC_OK; no key */
	int		 http_status;	/* provider's HTTP status, 0 if none */
	long		 latency_ms;	/* from dc_llm_complete to the reply */
};

/*
 * The reply and its strings live only during the callback: copy what you
 * keep.  When the callback runs the call is finished and its handle is
 * already invalid (never dc_llm_cancel it afterwards).
 */
typedef void (*dc_llm_cb)(const struct dc_llm_reply *r, void *arg);

/*
 * One per worker, after w->base, w->cfg and w->curl exist.  NULL on
 * failure; the
 * functions below accept that NULL (not configured, or DC_ERR).
 */
struct dc_llm	*dc_llm_new(struct dc_worker *w);

/* Abort every call in flight (their callbacks never run) and free. */
void		 dc_llm_free(struct dc_llm *llm);

/*
 * Why the configuration's LLM cannot be used (none configured, no key,
 * no model...), or NULL when it can; for `datachatd -t`.
 */
const char	*dc_llm_config_problem(const struct dc_config *c);

/*
 * 1 when the configured provider can be used.  Otherwise 0, and *why
 * (when why is not NULL) says what to configure; it is a static string.
 */
int		 dc_llm_configured(const struct dc_llm *llm, const char **why);

/* The configured provider ("openai", "anthropic", "local", "") and model. */
const char	*dc_llm_provider(const struct dc_llm *llm);
const char	*dc_llm_model(const struct dc_llm *llm);

/*
 * Start a completion.  On DC_OK the callback runs exactly once, always
 * later from the event loop (never from inside this function), unless
 * the call is cancelled first; *call (optional) is the handle for
 * dc_llm_cancel.  A provider that is not configured is reported through
 * the callback too (status DC_EINVAL).  Any other return value (DC_EINVAL
 * for NULL prompts, DC_ENOMEM, DC_ERR for llm == NULL or a libcurl
 * failure) means the callback will never run.
 */
int		 dc_llm_complete(struct dc_llm *llm, const char *system_prompt,
		     const char *user_prompt, dc_llm_cb cb, void *arg,
		     struct dc_llm_call **call);

/*
 * A piece of the assistant's text, as a streamed call receives it (len
 * bytes, not NUL-terminated).  It runs from the event loop, never inside
 * libcurl, and may cancel its call (nothing more of the call runs then).
 */
typedef void (*dc_llm_chunk_cb)(const char *text, size_t len, void *arg);

/*
 * dc_llm_complete with the provider's streaming API ("stream": true:
 * server-sent events from OpenAI, Anthropic and local servers): chunk
 * gets the text as it arrives, then cb the whole of it.  What chunk got
 * is always exactly r->text when cb says DC_OK (a provider that answers
 * one JSON body instead gives one chunk); a call that fails midway may
 * have passed some text to chunk before cb reports the failure.
 */
int		 dc_llm_stream(struct dc_llm *llm, const char *system_prompt,
		     const char *user_prompt, dc_llm_chunk_cb chunk,
		     dc_llm_cb cb, void *arg, struct dc_llm_call **call);

/* Abort a call in flight: its connection is closed, cb never runs. */
void		 dc_llm_cancel(struct dc_llm_call *call);

#endif /* DC_LLM_H */
