/*
 * llm_client_test.c - drives src/chat/llm.c the way a worker does, built but
 * not installed, for tests/integration/test_llm_client.py.
 *
 *	llm_client_test [-STv] [-C config] [-n count] [-s system] [-u user]
 *	    [-c cancel] [-d cancel_ms] [-f free_ms] [-x chunks] URL
 *
 * The LLM settings come from the config file (-C) and the environment as
 * in the daemon (LLM_DEFAULT_PROVIDER, LLM_OPENAI_API_KEY, LLM_TIMEOUT,
 * ...); URL, when
 * not "-", replaces the base URL of the chosen provider.  The program
 * builds a minimal worker (event base, config, stats), starts count
 * completions at once (-S: one after the other, each started from the
 * previous one's callback), and prints one JSON line per result:
 *
 *	{"i":0,"status":"ok","text":"...","error":null,"http_status":200,
 *	 "latency_ms":12}
 *
 * then a summary line {"done":N,"cancelled":K,...}.  -T streams the
 * calls (dc_llm_stream) and prints a line for every chunk as it arrives,
 *
 *	{"i":0,"chunk":"...","since_start_ms":12}
 *
 * and -x K cancels each streamed call from inside its K-th chunk
 * callback.  -c cancels the first
 * K calls, -d MS after MS milliseconds (default at once); -f MS frees the
 * client after MS milliseconds with calls still in flight.  -v logs at
 * debug level to stderr.  Exit status 0 when every call that was not
 * cancelled or freed got exactly one callback, and no cancelled one got
 * any.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <json-c/json.h>

#include "config.h"
#include "curlev.h"
#include "dc.h"
#include "llm.h"
#include "log.h"
#include "shreg.h"
#include "worker.h"

#define TOOL_NAME	"llm_client_test"
#define MAX_CALLS	1000
#define DEADLINE_S	60

struct slot {
	int		 i;
	struct dc_llm_call *call;
	int		 started, cancelled, answered, chunks;
};

static struct {
	struct dc_worker w;
	struct dc_llm	*llm;
	struct slot	*slots;
	int		 n, sequential, ncancel, freed, bugs, stream, cancel_at;
	int		 answered, cancelled;
	const char	*sys, *user;
	uint64_t	 start_ms;
} T;

static void
usage(void)
{
	fprintf(stderr, "usage: %s [-STv] [-C config] [-n count] [-s system] "
	    "[-u user] [-c cancel] [-d cancel_ms] [-f free_ms] [-x chunks] "
	    "URL|-\n", TOOL_NAME);
	exit(2);
}

static void
report(void *arg, const char *file, int line, const char *msg)
{
	fprintf(stderr, "%s: config: %s\n", TOOL_NAME, msg);
}

static const char *
status_name(int status)
{
	switch (status) {
	case DC_OK:		return "ok";
	case DC_EUNAVAIL:	return "unavailable";
	case DC_ETIMEOUT:	return "timeout";
	case DC_EINVAL:		return "not_configured";
	default:		return "error";
	}
}

static void
print_json(struct json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	fflush(stdout);
	json_object_put(o);
}

static void
maybe_finish(void)
{
	if (T.answered + T.cancelled >= T.n)
		event_base_loopexit(T.w.base, NULL);
}

static void start_call(int i);

static void
done(const struct dc_llm_reply *r, void *arg)
{
	struct slot *s = arg;
	struct json_object *o = json_object_new_object();

	if (s->cancelled || s->answered) {
		fprintf(stderr, "%s: BUG: callback for call %d (%s)\n",
		    TOOL_NAME, s->i, s->cancelled ? "cancelled" : "twice");
		T.bugs++;
	}
	s->answered = 1;
	s->call = NULL;		/* invalid from now on */
	T.answered++;
	json_object_object_add(o, "i", json_object_new_int(s->i));
	json_object_object_add(o, "status",
	    json_object_new_string(status_name(r->status)));
	json_object_object_add(o, "text",
	    r->text != NULL ? json_object_new_string(r->text) : NULL);
	json_object_object_add(o, "error",
	    r->error != NULL ? json_object_new_string(r->error) : NULL);
	json_object_object_add(o, "http_status",
	    json_object_new_int(r->http_status));
	json_object_object_add(o, "latency_ms",
	    json_object_new_int64(r->latency_ms));
	json_object_object_add(o, "since_start_ms",
	    json_object_new_int64((int64_t)(dc_now_ms() - T.start_ms)));
	print_json(o);
	if (T.sequential && s->i + 1 < T.n)
		start_call(s->i + 1);	/* from inside a callback */
	maybe_finish();
}

static void
chunk(const char *text, size_t len, void *arg)
{
	struct slot *s = arg;
	struct json_object *o = json_object_new_object();

	if (s->cancelled || s->answered) {
		fprintf(stderr, "%s: BUG: chunk for call %d (%s)\n",
		    TOOL_NAME, s->i, s->cancelled ? "cancelled" : "answered");
		T.bugs++;
	}
	json_object_object_add(o, "i", json_object_new_int(s->i));
	json_object_object_add(o, "chunk",
	    json_object_new_string_len(text, (int)len));
	json_object_object_add(o, "since_start_ms",
	    json_object_new_int64((int64_t)(dc_now_ms() - T.start_ms)));
	print_json(o);
	if (++s->chunks == T.cancel_at) {
		/* from inside the callback: nothing more may follow */
		dc_llm_cancel(s->call);
		s->call = NULL;
		s->cancelled = 1;
		T.cancelled++;
		maybe_finish();
	}
}

static void
start_call(int i)
{
	struct slot *s = &T.slots[i];
	int rc;

	s->i = i;
	s->started = 1;
	if (T.stream)
		rc = dc_llm_stream(T.llm, T.sys, T.user, chunk, done, s,
		    &s->call);
	else
		rc = dc_llm_complete(T.llm, T.sys, T.user, done, s, &s->call);
	if (rc != DC_OK) {
		fprintf(stderr, "%s: dc_llm_complete: error %d\n", TOOL_NAME,
		    rc);
		T.bugs++;
		T.answered++;
		maybe_finish();
	}
}

static void
cancel_some(evutil_socket_t fd, short what, void *arg)
{
	int i;

	for (i = 0; i < T.ncancel && i < T.n; i++) {
		struct slot *s = &T.slots[i];

		if (!s->started || s->answered || s->cancelled)
			continue;
		dc_llm_cancel(s->call);
		s->call = NULL;
		s->cancelled = 1;
		T.cancelled++;
	}
	maybe_finish();
}

static void
free_now(evutil_socket_t fd, short what, void *arg)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "freed", json_object_new_boolean(1));
	json_object_object_add(o, "pending",
	    json_object_new_int(T.n - T.answered - T.cancelled));
	print_json(o);
	dc_llm_free(T.llm);
	T.llm = NULL;
	T.freed = 1;
	event_base_loopexit(T.w.base, NULL);
}

static void
deadline(evutil_socket_t fd, short what, void *arg)
{
	fprintf(stderr, "%s: BUG: calls still pending after %d s\n", TOOL_NAME,
	    DEADLINE_S);
	T.bugs++;
	event_base_loopexit(T.w.base, NULL);
}

static void
set_base_url(struct dc_config *cfg, const char *url)
{
	char **dst;

	if (strcmp(cfg->llm_provider, "openai") == 0)
		dst = &cfg->llm_openai_base_url;
	else if (strcmp(cfg->llm_provider, "anthropic") == 0)
		dst = &cfg->llm_anthropic_base_url;
	else if (strcmp(cfg->llm_provider, "local") == 0)
		dst = &cfg->llm_local_base_url;
	else
		return;
	free(*dst);
	if ((*dst = strdup(url)) == NULL) {
		fprintf(stderr, "%s: out of memory\n", TOOL_NAME);
		exit(1);
	}
}

int
main(int argc, char **argv)
{
	struct event *ev_cancel = NULL, *ev_free = NULL, *ev_deadline;
	struct timeval tv_deadline = { DEADLINE_S, 0 }, tv;
	struct dc_worker_stats stats;
	struct dc_config cfg;
	struct json_object *o;
	const char *why = NULL, *conf = NULL;
	long cancel_ms = 0, free_ms = -1;
	int ch, i, verbose = 0, rc;

	T.n = 1;
	T.sys = "You write SQL.";
	T.user = "How many rows?";
	while ((ch = getopt(argc, argv, "STvC:n:s:u:c:d:f:x:")) != -1) {
		switch (ch) {
		case 'S': T.sequential = 1; break;
		case 'T': T.stream = 1; break;
		case 'x': T.cancel_at = atoi(optarg); break;
		case 'v': verbose = 1; break;
		case 'C': conf = optarg; break;
		case 'n': T.n = atoi(optarg); break;
		case 's': T.sys = optarg; break;
		case 'u': T.user = optarg; break;
		case 'c': T.ncancel = atoi(optarg); break;
		case 'd': cancel_ms = atol(optarg); break;
		case 'f': free_ms = atol(optarg); break;
		default: usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 1 || T.n < 1 || T.n > MAX_CALLS || T.ncancel < 0)
		usage();

	dc_log_open("stderr", verbose ? DC_LOG_DEBUG : DC_LOG_WARNING, 0);
	snprintf(dc_proc_title, sizeof(dc_proc_title), "%s", TOOL_NAME);
	if (dc_config_load(&cfg, conf, report, NULL) != 0) {
		dc_config_free(&cfg);
		return 1;
	}
	if (strcmp(argv[0], "-") != 0)
		set_base_url(&cfg, argv[0]);

	curl_global_init(CURL_GLOBAL_DEFAULT);
	memset(&stats, 0, sizeof(stats));
	T.w.cfg = &cfg;
	T.w.stats = &stats;
	T.w.index_str[0] = '0';
	if ((T.w.base = event_base_new()) == NULL ||
	    (T.w.curl = dc_curlev_new(T.w.base)) == NULL ||
	    (T.llm = dc_llm_new(&T.w)) == NULL ||
	    (T.slots = calloc((size_t)T.n, sizeof(*T.slots))) == NULL) {
		fprintf(stderr, "%s: cannot set up\n", TOOL_NAME);
		return 1;
	}
	T.start_ms = dc_now_ms();
	if (T.sequential)
		start_call(0);
	else
		for (i = 0; i < T.n; i++)
			start_call(i);
	if (T.ncancel > 0) {
		if (cancel_ms == 0)
			cancel_some(-1, 0, NULL);
		else {
			tv.tv_sec = cancel_ms / 1000;
			tv.tv_usec = (cancel_ms % 1000) * 1000;
			ev_cancel = evtimer_new(T.w.base, cancel_some, NULL);
			evtimer_add(ev_cancel, &tv);
		}
	}
	if (free_ms >= 0) {
		tv.tv_sec = free_ms / 1000;
		tv.tv_usec = (free_ms % 1000) * 1000;
		ev_free = evtimer_new(T.w.base, free_now, NULL);
		evtimer_add(ev_free, &tv);
	}
	ev_deadline = evtimer_new(T.w.base, deadline, NULL);
	evtimer_add(ev_deadline, &tv_deadline);
	if (T.answered + T.cancelled < T.n)
		event_base_dispatch(T.w.base);

	o = json_object_new_object();
	json_object_object_add(o, "done", json_object_new_int(T.answered));
	json_object_object_add(o, "cancelled",
	    json_object_new_int(T.cancelled));
	json_object_object_add(o, "freed", json_object_new_boolean(T.freed));
	json_object_object_add(o, "llm_calls",
	    json_object_new_int64((int64_t)stats.llm_calls));
	if (T.llm != NULL) {
		json_object_object_add(o, "provider",
		    json_object_new_string(dc_llm_provider(T.llm)));
		json_object_object_add(o, "model",
		    json_object_new_string(dc_llm_model(T.llm)));
		json_object_object_add(o, "configured", json_object_new_boolean(
		    dc_llm_configured(T.llm, &why)));
		json_object_object_add(o, "why",
		    why != NULL ? json_object_new_string(why) : NULL);
	}
	print_json(o);

	rc = T.bugs == 0 && (T.freed || T.answered + T.cancelled == T.n) ?
	    0 : 1;
	dc_llm_free(T.llm);
	dc_curlev_free(T.w.curl);
	if (ev_cancel != NULL)
		event_free(ev_cancel);
	if (ev_free != NULL)
		event_free(ev_free);
	event_free(ev_deadline);
	event_base_free(T.w.base);
	free(T.slots);
	curl_global_cleanup();
	dc_config_free(&cfg);
	dc_log_close();
	return rc;
}
