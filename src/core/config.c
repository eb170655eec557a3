/*
 * config.c - datachatd's configuration: the table of keys, the file
 * parser, environment overrides, validation and reload.
 *
 * Everything is driven by dc_config_keys[]: the parser looks keys up in
 * it, the environment overrides walk it, reload uses its reloadable flag
 * to decide what SIGHUP may change, and dc_config_dump_sample() prints it
 * as etc/datachatd.conf.  Every problem is reported through a callback
 * with its file and line and parsing goes on, so an operator sees all of
 * a file's mistakes at once.  A value that does not parse is never stored,
 * and a SECRET value never appears in a message.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dc.h"
#include "config.h"
#include "fernet.h"
#include "util.h"

#define CONFIG_MAX_FILE		(1024 * 1024)	/* a config file */
#define CONFIG_MAX_KEYFILE	(64 * 1024)	/* a key file */
#define CONFIG_SHOW_MAX		64		/* value chars in a message */

static const char *const llm_providers[] = { "openai", "anthropic",
    "local", "", NULL };
static const char *const log_formats[] = { "text", "json", NULL };
static const char *const auth_words[] = { "required", "off", "", NULL };
static const char *const metrics_auth_words[] = { "required", "off", NULL };
static const char *const privileged_words[] = { "allow", "warn", "refuse",
    NULL };

/* One table entry; the field name is the key name, so they cannot differ. */
#define K(field, type, def, reload, env, min, max, desc)		\
	{ #field, type, def, reload, env, min, max,			\
	    offsetof(struct dc_config, field), desc, NULL }
/* A key whose value is one of a list of words. */
#define KC(field, choices, def, reload, env, desc)			\
	{ #field, DC_CT_CHOICE, def, reload, env, 0, 0,			\
	    offsetof(struct dc_config, field), desc, choices }

const struct dc_config_key dc_config_keys[] = {
	/* process */
	K(listen, DC_CT_LISTEN, "127.0.0.1:8000", 0, NULL, 0, 0,
	    "a socket of the REST API: host:port, [v6addr]:port, *:port or "
	    "a unix socket path; repeat the key for more"),
	K(workers, DC_CT_WORKERS, "auto", 1, NULL, 1, 64,
	    "number of worker processes, or auto for one per online CPU"),
	K(user, DC_CT_STRING, "", 0, NULL, 0, 0,
	    "user to run as after binding the sockets, if set"),
	K(pidfile, DC_CT_STRING, "", 0, NULL, 0, 0,
	    "file the master writes its pid to, if set"),
	K(control_socket, DC_CT_STRING, "", 0, NULL, 0, 0,
	    "unix socket datachatctl talks to, if set"),
	K(log, DC_CT_STRING, "stderr", 1, NULL, 0, 0,
	    "where to log: stderr, syslog or a file path"),
	K(log_level, DC_CT_LOGLEVEL, "info", 1, NULL, 0, 0,
	    "least severe level logged: error, warning, info or debug"),
	KC(log_format, log_formats, "text", 1, NULL,
	    "log lines as text, or json for one JSON object per line"),
	K(shutdown_timeout, DC_CT_INT, "30", 1, NULL, 1, 3600,
	    "seconds a smart shutdown waits for requests before exiting"),

	/* registry */
	K(system_database_url, DC_CT_SECRET, "", 0, "SYSTEM_DATABASE_URL",
	    0, 0, "PostgreSQL URL of the system database holding the registry"),
	K(credentials_key, DC_CT_SECRET, "", 0, "DATABASE_CREDENTIALS_KEY",
	    0, 0, "Fernet keys, comma-separated; the first one encrypts"),
	K(credentials_key_file, DC_CT_STRING, "", 0, NULL, 0, 0,
	    "file of Fernet keys, one a line, if credentials_key is empty"),
	K(database_url, DC_CT_SECRET, "", 1, "DATABASE_URL", 0, 0,
	    "target database used when no connection is the default"),
	K(registry_capacity, DC_CT_INT, "1024", 0, NULL, 1, 100000,
	    "most database connections the shared registry holds"),
	K(resync_interval, DC_CT_INT, "60", 1, NULL, 1, 86400,
	    "seconds between full reloads of the registry from the system DB"),

	/* access */
	KC(auth, auth_words, "", 1, NULL,
	    "required (API tokens) or off; unset: off on loopback and unix "
	    "listeners only"),
	KC(metrics_auth, metrics_auth_words, "required", 1, NULL,
	    "required: /metrics needs a read token; off: open to anyone"),
	K(auth_failure_limit, DC_CT_INT, "10", 1, NULL, 1, 100000,
	    "failed token checks per client address and minute before 429"),
	K(registry_token_quota, DC_CT_INT, "0", 1, NULL, 0, 100000,
	    "most connections one token may create; 0: registry_capacity / 4"),
	K(server_names, DC_CT_STRING, "", 1, NULL, 0, 0,
	    "host names a loopback listener accepts in Host, beside localhost"),
	K(tls_cert_file, DC_CT_STRING, "", 1, NULL, 0, 0,
	    "PEM certificate chain of the listeners marked tls"),
	K(tls_key_file, DC_CT_STRING, "", 1, NULL, 0, 0,
	    "PEM private key of tls_cert_file, readable by the daemon only"),

	/* HTTP front */
	K(max_clients, DC_CT_INT, "0", 1, NULL, 0, 1000000,
	    "most client connections per worker; 0: 3/4 of its file limit"),
	K(header_timeout, DC_CT_INT, "10", 1, NULL, 1, 3600,
	    "seconds a client has to send a request's head"),
	K(body_timeout, DC_CT_INT, "30", 1, NULL, 1, 3600,
	    "seconds a client has to send a request's body after its head"),
	K(keepalive_timeout, DC_CT_INT, "60", 1, NULL, 1, 86400,
	    "seconds an idle client connection is kept open between requests"),
	K(max_header_size, DC_CT_INT, "32768", 1, NULL, 1024, 1048576,
	    "largest request head (request line and headers), in bytes"),

	/* requests and queries */
	K(max_body_size, DC_CT_INT, "1048576", 1, NULL, 1024, 104857600,
	    "largest request body accepted, in bytes"),
	K(request_timeout, DC_CT_INT, "60", 1, NULL, 1, 3600,
	    "seconds a request may take before it is answered with an error"),
	K(statement_timeout, DC_CT_INT, "30000", 1, NULL, 1, 3600000,
	    "milliseconds a statement may run on a target database"),
	K(max_rows, DC_CT_INT, "1000", 1, NULL, 1, 1000000,
	    "most rows returned by one query"),
	K(max_result_bytes, DC_CT_INT, "67108864", 1, NULL, 4096, 2147483647,
	    "most bytes of values one query returns; past it the rows are cut"),
	K(connect_timeout, DC_CT_INT, "5", 1, NULL, 1, 300,
	    "seconds allowed to connect to a target database"),
	K(target_idle_timeout, DC_CT_INT, "300", 1, NULL, 1, 86400,
	    "seconds an idle target connection is kept open"),
	K(max_target_connections, DC_CT_INT, "4", 1, NULL, 1, 1000,
	    "most connections a worker keeps to one target database"),
	K(target_pipeline_depth, DC_CT_INT, "8", 1, NULL, 1, 64,
	    "most queries a worker sends ahead on one target connection"),
	K(target_stall_timeout, DC_CT_INT, "20", 1, NULL, 1, 60000,
	    "milliseconds queries wait behind a target connection that makes "
	    "no progress before they move to another"),
	K(warm_targets, DC_CT_INT, "8", 1, NULL, 0, DC_WARM_TARGETS_MAX,
	    "targets a new worker connects to and reads the policy catalog of "
	    "before it accepts (those the running workers use), and a worker "
	    "warms when a peer starts using them; 0: none"),
	K(warm_timeout, DC_CT_INT, "2000", 1, NULL, 0, 60000,
	    "milliseconds a new worker's warm-up may take before it accepts "
	    "anyway, and the workers it replaces keep accepting"),
	K(resolv_conf, DC_CT_STRING, "/etc/resolv.conf", 0, NULL, 0, 0,
	    "resolver configuration for target host names"),
	K(allow_socket_targets, DC_CT_BOOL, "no", 1, NULL, 0, 0,
	    "whether a target URL may name a local unix socket"),
	KC(privileged_targets, privileged_words, "warn", 1, NULL,
	    "a target whose role is a superuser, CREATEROLE or in a "
	    "pg_*_server_*/pg_signal_backend role: allow, warn or refuse"),
	K(cors_origins, DC_CT_STRING,
	    "http://localhost:3000,http://localhost:3001", 1, "CORS_ORIGINS",
	    0, 0, "browser origins allowed by CORS, comma-separated, or *"),
	K(ws_idle_timeout, DC_CT_INT, "60", 1, NULL, 1, 86400,
	    "seconds a WebSocket may wait for its question before it is closed"),
	K(ws_ping_interval, DC_CT_INT, "20", 1, NULL, 0, 3600,
	    "seconds between WebSocket pings, or 0 for none"),
	K(conversation_turns, DC_CT_INT, "10", 1, NULL, 0, 100,
	    "turns of each conversation kept in the system database, 0: none"),
	K(conversation_ttl, DC_CT_INT, "86400", 1, NULL, 60, 31536000,
	    "seconds a conversation is remembered after its last turn"),
	K(schema_check_interval, DC_CT_INT, "2000", 1, NULL, 0, 3600000,
	    "milliseconds a target's schema snapshot is used before its "
	    "catalog version is checked again"),
	K(schema_max_age, DC_CT_INT, "600", 1, NULL, 1, 86400,
	    "seconds after which a schema snapshot is read again even when "
	    "its catalog did not change (row counts)"),

	/* LLM */
	KC(llm_provider, llm_providers, "", 1, "LLM_DEFAULT_PROVIDER",
	    "LLM used for chat: openai, anthropic, local, or empty for none"),
	K(llm_openai_api_key, DC_CT_SECRET, "", 1, "LLM_OPENAI_API_KEY", 0, 0,
	    "API key for the openai provider"),
	K(llm_openai_model, DC_CT_STRING, "gpt-4o-mini", 1, "LLM_OPENAI_MODEL",
	    0, 0, "model name for the openai provider"),
	K(llm_openai_base_url, DC_CT_STRING, "https://api.openai.com/v1", 1,
	    "LLM_OPENAI_BASE_URL", 0, 0,
	    "base URL of the openai provider or any OpenAI-compatible server"),
	K(llm_anthropic_api_key, DC_CT_SECRET, "", 1, "LLM_ANTHROPIC_API_KEY",
	    0, 0, "API key for the anthropic provider"),
	K(llm_anthropic_model, DC_CT_STRING, "claude-3-5-sonnet-latest", 1,
	    "LLM_ANTHROPIC_MODEL", 0, 0,
	    "model name for the anthropic provider"),
	K(llm_anthropic_base_url, DC_CT_STRING, "https://api.anthropic.com", 1,
	    "LLM_ANTHROPIC_BASE_URL", 0, 0,
	    "base URL of the anthropic provider"),
	K(llm_local_base_url, DC_CT_STRING, "http://localhost:11434", 1,
	    "LLM_LOCAL_BASE_URL", 0, 0,
	    "base URL of the local provider: Ollama, vLLM or llama.cpp"),
	K(llm_local_model, DC_CT_STRING, "llama3.1", 1, "LLM_LOCAL_MODEL", 0, 0,
	    "model name for the local provider"),
	K(llm_key_file, DC_CT_STRING, "", 1, NULL, 0, 0,
	    "file with the API key of llm_provider, used if that key is empty"),
	K(llm_temperature, DC_CT_DOUBLE, "0.0", 1, "LLM_TEMPERATURE", 0, 2,
	    "sampling temperature of the LLM, 0 to 2"),
	K(llm_max_tokens, DC_CT_INT, "2000", 1, "LLM_MAX_TOKENS", 1, 200000,
	    "most tokens the LLM may generate per answer"),
	K(llm_timeout, DC_CT_INT, "60", 1, "LLM_TIMEOUT", 1, 600,
	    "seconds an LLM call may take"),

	/* what the LLM is told of the schema (prompt.h) */
	K(prompt_schema_tokens, DC_CT_INT, "6000", 1, NULL, 100, 100000,
	    "prompt room for tables with their columns, in tokens"),
	K(prompt_names_tokens, DC_CT_INT, "1000", 1, NULL, 0, 100000,
	    "prompt room for tables by name only, in tokens"),
	K(rank_name, DC_CT_INT, "100", 1, NULL, 0, 1000,
	    "relevance of a table a question word names"),
	K(rank_piece, DC_CT_INT, "60", 1, NULL, 0, 1000,
	    "relevance of a table a question word is a piece of the name of"),
	K(rank_column, DC_CT_INT, "20", 1, NULL, 0, 1000,
	    "relevance of a table with a column a question word names"),
	K(rank_synonym, DC_CT_INT, "50", 1, NULL, 0, 100,
	    "percent a synonym counts against the word"),
	K(rank_fk, DC_CT_INT, "35", 1, NULL, 0, 100,
	    "percent of a match's relevance per foreign key away"),
	K(rank_fk_hops, DC_CT_INT, "2", 1, NULL, 0, 2,
	    "foreign keys relevance follows"),
	K(rank_inbound, DC_CT_INT, "5", 1, NULL, 0, 1000,
	    "centrality per table referencing a table"),
	K(rank_rows, DC_CT_INT, "1", 1, NULL, 0, 1000,
	    "centrality per power of ten of rows"),
	K(rank_min_relevance, DC_CT_INT, "25", 1, NULL, 1, 100,
	    "percent of the best relevance a table needs to get its columns"),
	K(rank_max_tables, DC_CT_INT, "15", 1, NULL, 1, 1000,
	    "most tables written with their columns"),

	{ NULL, 0, NULL, 0, NULL, 0, 0, 0, NULL, NULL }
};

static const char *const log_level_names[] = {
	[DC_LOG_ERROR] = "error",
	[DC_LOG_WARNING] = "warning",
	[DC_LOG_INFO] = "info",
	[DC_LOG_DEBUG] = "debug",
};



/* Where problems go, and how many were reported. */
struct problems {
	dc_config_report report;
	void		*arg;
	const char	*file;
	int		 count;
};

static void	 problem(struct problems *, int, const char *, ...)
		     DC_PRINTF(3, 4);

static void
problem(struct problems *pb, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pb->count++;
	if (pb->report != NULL)
		pb->report(pb->arg, pb->file, line, msg);
}

static const char *
config_name(const struct dc_config *cfg)
{
	return cfg->source != NULL ? cfg->source : "configuration";
}

/*
 * A value as it may appear in a message: at most CONFIG_SHOW_MAX
 * characters, control characters replaced.  Only for non-secret keys.
 */
static const char *
show(const char *s, char *buf, size_t bufsz)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i < CONFIG_SHOW_MAX && i + 4 < bufsz; i++)
		buf[i] = iscntrl((unsigned char)s[i]) ? '?' : s[i];
	if (s[i] != '\0') {
		memcpy(buf + i, "...", 3);	/* room kept by the loop */
		i += 3;
	}
	buf[i] = '\0';
	return buf;
}

static char **
field_str(struct dc_config *cfg, const struct dc_config_key *k)
{
	return (char **)(void *)((char *)cfg + k->offset);
}

static int *
field_int(struct dc_config *cfg, const struct dc_config_key *k)
{
	return (int *)(void *)((char *)cfg + k->offset);
}

static double *
field_double(struct dc_config *cfg, const struct dc_config_key *k)
{
	return (double *)(void *)((char *)cfg + k->offset);
}

static int
is_string(const struct dc_config_key *k)
{
	return k->type == DC_CT_STRING || k->type == DC_CT_SECRET ||
	    k->type == DC_CT_LISTEN || k->type == DC_CT_CHOICE;
}

/* Free a string field, wiping it first when it may hold a secret. */
static void
free_str(char *s, int secret)
{
	if (s == NULL)
		return;
	if (secret)
		dc_explicit_bzero(s, strlen(s));
	free(s);
}

static int
set_str(struct dc_config *cfg, const struct dc_config_key *k, const char *v)
{
	char **fp = field_str(cfg, k), *copy;

	if ((copy = strdup(v)) == NULL)
		return DC_ENOMEM;
	free_str(*fp, k->type == DC_CT_SECRET);
	*fp = copy;
	return DC_OK;
}

static int
parse_long(const char *v, long *out)
{
	char *end;
	long l;

	if (*v == '\0' || isspace((unsigned char)*v))
		return DC_EINVAL;
	errno = 0;
	l = strtol(v, &end, 10);
	if (*end != '\0')
		return DC_EINVAL;
	if (errno == ERANGE)
		return DC_ERR;		/* a number, but out of any range */
	*out = l;
	return DC_OK;
}

static int
online_cpus(const struct dc_config_key *k)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < k->min)
		n = k->min;
	if (n > k->max)
		n = k->max;
	return (int)n;
}

static int
set_bool(struct dc_config *cfg, const struct dc_config_key *k,
    const char *v, const char *who, struct problems *pb, int line)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	char sb[CONFIG_SHOW_MAX + 8];
	size_t i;

	for (i = 0; i < DC_ARRAY_SIZE(yes); i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*field_int(cfg, k) = 1;
			return DC_OK;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*field_int(cfg, k) = 0;
			return DC_OK;
		}
	}
	problem(pb, line, "%s: bad value \"%s\", expected yes or no", who,
	    show(v, sb, sizeof(sb)));
	return DC_EINVAL;
}

/* "a, b or c" for a choice key's message ("" shows as empty). */
static void
choice_list(const struct dc_config_key *k, char *buf, size_t size)
{
	size_t i, n = 0;

	buf[0] = '\0';
	while (k->choices[n] != NULL)
		n++;
	for (i = 0; i < n; i++)
		snprintf(buf + strlen(buf), size - strlen(buf), "%s%s",
		    i == 0 ? "" : i + 1 == n ? " or " : ", ",
		    k->choices[i][0] != '\0' ? k->choices[i] : "empty");
}

static int
set_choice(struct dc_config *cfg, const struct dc_config_key *k,
    const char *v, const char *who, struct problems *pb, int line)
{
	char sb[CONFIG_SHOW_MAX + 8], list[256];
	size_t i;

	for (i = 0; k->choices[i] != NULL; i++)
		if (strcmp(v, k->choices[i]) == 0)
			return set_str(cfg, k, v);
	choice_list(k, list, sizeof(list));
	problem(pb, line, "%s: bad value \"%s\", expected %s", who,
	    show(v, sb, sizeof(sb)), list);
	return DC_EINVAL;
}

static int
set_int(struct dc_config *cfg, const struct dc_config_key *k,
    const char *v, const char *who, struct problems *pb, int line)
{
	char sb[CONFIG_SHOW_MAX + 8];
	long l;
	int rc;

	rc = parse_long(v, &l);
	if (rc == DC_EINVAL) {
		problem(pb, line, "%s: \"%s\" is not an integer", who,
		    show(v, sb, sizeof(sb)));
		goto out;
	}
	if (rc != DC_OK || l < k->min || l > k->max) {
		problem(pb, line, "%s: %s is out of range, must be between %ld "
		    "and %ld", who, show(v, sb, sizeof(sb)), k->min, k->max);
		rc = DC_EINVAL;
		goto out;
	}
	*field_int(cfg, k) = (int)l;
out:
	return rc;
}

static int
set_double(struct dc_config *cfg, const struct dc_config_key *k,
    const char *v, const char *who, struct problems *pb, int line)
{
	char sb[CONFIG_SHOW_MAX + 8], *end = NULL;
	double d = 0;
	int rc = DC_EINVAL;

	if (*v != '\0' && !isspace((unsigned char)*v)) {
		errno = 0;
		d = strtod(v, &end);
	}
	if (end == NULL || *end != '\0' || !isfinite(d)) {
		problem(pb, line, "%s: \"%s\" is not a number", who,
		    show(v, sb, sizeof(sb)));
		goto out;
	}
	if (errno == ERANGE || d < (double)k->min || d > (double)k->max) {
		problem(pb, line, "%s: %s is out of range, must be between %ld "
		    "and %ld", who, show(v, sb, sizeof(sb)), k->min, k->max);
		goto out;
	}
	*field_double(cfg, k) = d;
	rc = DC_OK;
out:
	return rc;
}

static int
set_workers(struct dc_config *cfg, const struct dc_config_key *k,
    const char *v, const char *who, struct problems *pb, int line)
{
	char sb[CONFIG_SHOW_MAX + 8];
	long l;

	if (strcmp(v, "auto") == 0)
		l = online_cpus(k);
	else if (parse_long(v, &l) != DC_OK || l < k->min || l > k->max) {
		problem(pb, line, "%s: bad value \"%s\", expected auto or a "
		    "number between %ld and %ld", who, show(v, sb, sizeof(sb)),
		    k->min, k->max);
		return DC_EINVAL;
	}
	*field_int(cfg, k) = (int)l;
	return DC_OK;
}

static int
set_log_level(struct dc_config *cfg, const struct dc_config_key *k,
    const char *v, const char *who, struct problems *pb, int line)
{
	char sb[CONFIG_SHOW_MAX + 8];
	size_t i;

	for (i = 0; i < DC_ARRAY_SIZE(log_level_names); i++) {
		if (strcmp(v, log_level_names[i]) == 0) {
			*field_int(cfg, k) = (int)i;
			return DC_OK;
		}
	}
	problem(pb, line, "%s: bad value \"%s\", expected error, warning, "
	    "info or debug", who, show(v, sb, sizeof(sb)));
	return DC_EINVAL;
}

/* Add one more line to a key that may be given several times. */
static int
append_line(struct dc_config *cfg, const struct dc_config_key *k,
    const char *v)
{
	char **fp = field_str(cfg, k), *joined;

	if (asprintf(&joined, "%s\n%s", *fp, v) < 0)
		return DC_ENOMEM;
	free_str(*fp, k->type == DC_CT_SECRET);
	*fp = joined;
	return DC_OK;
}

/*
 * A listen line: checked here so that a problem carries its line.  The
 * lines of a file are kept \n-separated (see dc_config_parse_text);
 * dc_config_validate parses them into cfg->listeners.
 */
static int
set_listen(struct dc_config *cfg, const struct dc_config_key *k,
    const char *v, const char *who, struct problems *pb, int line, int again)
{
	struct dc_listener l;
	char sb[CONFIG_SHOW_MAX + 8];
	const char *why;

	if (strchr(v, '\n') != NULL ||
	    dc_listener_parse(v, &l, &why) != DC_OK) {
		if (strchr(v, '\n') != NULL)
			why = "a newline in the value";
		problem(pb, line, "%s: bad address \"%s\": %s", who,
		    show(v, sb, sizeof(sb)), why);
		return DC_EINVAL;
	}
	return again ? append_line(cfg, k, v) : set_str(cfg, k, v);
}

/*
 * Store value v for key k.  who names the key in messages (the key, or
 * the environment variable); again says the file gave the key before
 * (only a listen key may be repeated, and each adds a socket).  A bad value is reported and not stored, and
 * only values of keys that are not secrets are ever quoted.
 * Returns 0, DC_EINVAL (reported) or DC_ENOMEM.
 */
static int
set_value(struct dc_config *cfg, const struct dc_config_key *k,
    const char *v, const char *who, struct problems *pb, int line, int again)
{
	switch (k->type) {
	case DC_CT_STRING:
		return set_str(cfg, k, v);
	case DC_CT_CHOICE:
		return set_choice(cfg, k, v, who, pb, line);
	case DC_CT_SECRET:
		return set_str(cfg, k, v);
	case DC_CT_LISTEN:
		return set_listen(cfg, k, v, who, pb, line, again);
	case DC_CT_INT:
		return set_int(cfg, k, v, who, pb, line);
	case DC_CT_DOUBLE:
		return set_double(cfg, k, v, who, pb, line);
	case DC_CT_WORKERS:
		return set_workers(cfg, k, v, who, pb, line);
	case DC_CT_LOGLEVEL:
		return set_log_level(cfg, k, v, who, pb, line);
	case DC_CT_BOOL:
		return set_bool(cfg, k, v, who, pb, line);
	}
	problem(pb, line, "%s: key of unknown type %d", who, k->type);
	return DC_EINVAL;
}

static const struct dc_config_key *
find_key(const char *name)
{
	const struct dc_config_key *k;

	for (k = dc_config_keys; k->name != NULL; k++)
		if (strcmp(k->name, name) == 0)
			return k;
	return NULL;
}

static size_t
nkeys(void)
{
	size_t n = 0;

	while (dc_config_keys[n].name != NULL)
		n++;
	return n;
}

void
dc_config_free(struct dc_config *cfg)
{
	const struct dc_config_key *k;
	char **fp;

	for (k = dc_config_keys; k->name != NULL; k++) {
		if (!is_string(k))
			continue;
		fp = field_str(cfg, k);
		free_str(*fp, k->type == DC_CT_SECRET);
		*fp = NULL;
	}
	free(cfg->source);
	cfg->source = NULL;
}

int
dc_config_defaults(struct dc_config *cfg)
{
	const struct dc_config_key *k;
	struct problems pb = { NULL, NULL, "defaults", 0 };
	int rc = DC_OK;

	memset(cfg, 0, sizeof(*cfg));
	for (k = dc_config_keys; k->name != NULL; k++) {
		rc = set_value(cfg, k, k->def, k->name, &pb, 0, 0);
		if (rc != DC_OK)
			goto out;
	}
out:
	if (rc != DC_OK) {
		dc_config_free(cfg);
		rc = DC_ENOMEM;		/* the table's defaults all parse */
	}
	return rc;
}

/*
 * Read a small file whole, NUL-terminated.  *mode gets its permission
 * bits.  Returns 0 or an errno value (EFBIG when larger than max).
 */
static int
read_file(const char *path, size_t max, char **out, size_t *outlen,
    mode_t *mode)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	ssize_t n;
	int fd, err = 0;

	*out = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return errno;
	if (fstat(fd, &st) == -1) {
		err = errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		err = EINVAL;
		goto out;
	}
	if ((size_t)st.st_size > max) {
		err = EFBIG;
		goto out;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		err = ENOMEM;
		goto out;
	}
	while (len < (size_t)st.st_size) {
		n = read(fd, buf + len, (size_t)st.st_size - len);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			err = errno;
			goto out;
		}
		if (n == 0)
			break;		/* it shrank: take what is there */
		len += (size_t)n;
	}
	buf[len] = '\0';
	*mode = st.st_mode & 07777;
	*outlen = len;
	*out = buf;
	buf = NULL;
out:
	if (buf != NULL) {
		dc_explicit_bzero(buf, (size_t)st.st_size);
		free(buf);
	}
	close(fd);
	return err;
}

static const char *
read_error(int err)
{
	if (err == EFBIG)
		return "file too large";
	if (err == EINVAL)
		return "not a regular file";
	return strerror(err);
}

/*
 * Split one line (NUL-terminated, modified in place) into key and value.
 * Returns 1 with *key and *val set, 0 for a blank or comment line, or -1
 * after reporting a syntax problem.
 */
static int
split_line(char *s, char **key, char **val, struct problems *pb, int line)
{
	char *eq, *e, *v, *w;

	while (isspace((unsigned char)*s))
		s++;
	if (*s == '\0' || *s == '#')
		return 0;
	if ((eq = strchr(s, '=')) == NULL) {
		problem(pb, line, "missing \"=\", expected key = value");
		return -1;
	}
	for (e = eq; e > s && isspace((unsigned char)e[-1]); e--)
		;
	*e = '\0';
	if (*s == '\0') {
		problem(pb, line, "missing key name before \"=\"");
		return -1;
	}
	*key = s;

	v = eq + 1;
	while (isspace((unsigned char)*v))
		v++;
	if (*v == '"') {
		/* Quoted: \" and \\ are escapes, any other \ is kept. */
		for (w = v, e = v + 1; *e != '"'; e++) {
			if (*e == '\0') {
				problem(pb, line, "%s: unterminated quoted "
				    "value", *key);
				return -1;
			}
			if (*e == '\\' && (e[1] == '"' || e[1] == '\\'))
				e++;
			*w++ = *e;
		}
		*w = '\0';
		for (e++; isspace((unsigned char)*e); e++)
			;
		if (*e != '\0' && *e != '#') {
			problem(pb, line, "%s: unexpected text after the "
			    "closing quote", *key);
			return -1;
		}
		*val = v;
		return 1;
	}
	/* Unquoted: a # at the start or after whitespace begins a comment. */
	for (e = v; *e != '\0'; e++) {
		if (*e == '#' && (e == v || isspace((unsigned char)e[-1]))) {
			*e = '\0';
			break;
		}
	}
	for (e = v + strlen(v); e > v && isspace((unsigned char)e[-1]); e--)
		;
	*e = '\0';
	*val = v;
	return 1;
}

int
dc_config_parse_text(struct dc_config *cfg, const char *file,
    const char *text, dc_config_report report, void *arg)
{
	struct problems pb = { report, arg, file != NULL ? file : "(text)", 0 };
	const struct dc_config_key *k;
	const char *p = text, *eol;
	char *buf = NULL, *key, *val;
	int *seen = NULL, line = 0, rc = DC_OK, r;
	size_t len;

	if ((seen = calloc(nkeys(), sizeof(*seen))) == NULL) {
		rc = DC_ENOMEM;
		goto out;
	}
	while (*p != '\0') {
		line++;
		eol = strchr(p, '\n');
		len = eol != NULL ? (size_t)(eol - p) : strlen(p);
		if ((buf = strndup(p, len)) == NULL) {
			rc = DC_ENOMEM;
			goto out;
		}
		p += len + (eol != NULL);

		if ((r = split_line(buf, &key, &val, &pb, line)) <= 0)
			goto next;
		if ((k = find_key(key)) == NULL) {
			char sb[CONFIG_SHOW_MAX + 8];

			problem(&pb, line, "unknown key \"%s\"",
			    show(key, sb, sizeof(sb)));
			goto next;
		}
		if (seen[k - dc_config_keys] != 0 && k->type != DC_CT_LISTEN) {
			problem(&pb, line, "key \"%s\" given twice (first on "
			    "line %d)", k->name, seen[k - dc_config_keys]);
			goto next;
		}
		/* a repeated listen adds a socket; the first replaces the default */
		r = set_value(cfg, k, val, k->name, &pb, line,
		    seen[k - dc_config_keys] != 0);
		if (seen[k - dc_config_keys] == 0)
			seen[k - dc_config_keys] = line;
		if (r == DC_ENOMEM) {
			rc = DC_ENOMEM;
			goto out;
		}
next:
		dc_explicit_bzero(buf, len);
		free(buf);
		buf = NULL;
	}
out:
	if (buf != NULL) {
		dc_explicit_bzero(buf, len);
		free(buf);
	}
	free(seen);
	return rc != DC_OK ? rc : pb.count;
}

int
dc_config_apply_env(struct dc_config *cfg, dc_config_report report,
    void *arg)
{
	struct problems pb = { report, arg, "environment", 0 };
	const struct dc_config_key *k;
	const char *v;

	for (k = dc_config_keys; k->name != NULL; k++) {
		if (k->env == NULL)
			continue;
		if ((v = getenv(k->env)) == NULL || *v == '\0')
			continue;
		if (set_value(cfg, k, v, k->env, &pb, 0, 0) == DC_ENOMEM)
			return DC_ENOMEM;
	}
	return pb.count;
}

static int
parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len,
    const char **why)
{
	struct addrinfo hints, *ai = NULL;
	char host[256];
	const char *port, *h, *he;
	long p;
	int rc = DC_EINVAL;

	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_NUMERICHOST;
	hints.ai_socktype = SOCK_STREAM;
	if (s == NULL || *s == '\0') {
		*why = "empty address";
		goto out;
	}
	if (*s == '[') {
		h = s + 1;
		if ((he = strchr(h, ']')) == NULL) {
			*why = "missing \"]\" after the IPv6 address";
			goto out;
		}
		if (he[1] != ':') {
			*why = "missing port, expected [address]:port";
			goto out;
		}
		port = he + 2;
		hints.ai_family = AF_INET6;
	} else {
		h = s;
		if ((he = strrchr(s, ':')) == NULL) {
			*why = "missing port, expected host:port";
			goto out;
		}
		if (strchr(s, ':') != he) {
			*why = "an IPv6 address needs brackets: [address]:port";
			goto out;
		}
		port = he + 1;
		hints.ai_family = AF_INET;
	}
	if (parse_long(port, &p) != DC_OK || !isdigit((unsigned char)*port) ||
	    p < 1 || p > 65535) {
		*why = "bad port, expected a number between 1 and 65535";
		goto out;
	}
	if (he == h || (size_t)(he - h) >= sizeof(host)) {
		*why = "missing host, use *:port to listen on every address";
		goto out;
	}
	memcpy(host, h, (size_t)(he - h));
	host[he - h] = '\0';
	if (hints.ai_family == AF_INET && strcmp(host, "*") == 0)
		dc_strlcpy(host, "0.0.0.0", sizeof(host));
	else if (hints.ai_family == AF_INET && strcmp(host, "localhost") == 0)
		dc_strlcpy(host, "127.0.0.1", sizeof(host));
	if (getaddrinfo(host, NULL, &hints, &ai) != 0 || ai == NULL ||
	    ai->ai_addrlen > sizeof(*ss)) {
		*why = "bad host, expected a numeric IPv4 address, "
		    "[IPv6 address], * or localhost";
		goto out;
	}
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)(void *)ss)->sin_port =
		    htons((uint16_t)p);
	else
		((struct sockaddr_in6 *)(void *)ss)->sin6_port =
		    htons((uint16_t)p);
	rc = DC_OK;
out:
	if (ai != NULL)
		freeaddrinfo(ai);
	return rc;
}

int
dc_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	const char *why;

	return parse_listen(s, ss, len, &why);
}

const char *
dc_listen_kind_name(int kind)
{
	switch (kind) {
	case DC_LISTEN_LOOPBACK:	return "loopback";
	case DC_LISTEN_TCP:		return "tcp";
	case DC_LISTEN_UNIX:		return "unix";
	}
	return "unknown";
}

static int
is_loopback(const struct sockaddr_storage *ss)
{
	const struct sockaddr_in *sin = (const void *)ss;
	const struct sockaddr_in6 *sin6 = (const void *)ss;

	if (ss->ss_family == AF_INET)
		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	if (ss->ss_family != AF_INET6)
		return 0;
	/* ::1, or 127.0.0.0/8 mapped into IPv6 */
	return IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr) ||
	    (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) &&
	    sin6->sin6_addr.s6_addr[12] == 127);
}

/* A user or group name as useradd(8) accepts it. */
static int
valid_name(const char *v)
{
	size_t i, n = strlen(v);

	if (n == 0 || n > 32 || v[0] == '-')
		return 0;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)v[i]) && strchr("._-", v[i]) == NULL)
			return 0;
	return 1;
}

/* One option=value of a listen line. */
static int
listener_option(struct dc_listener *l, const char *opt, const char **why)
{
	const char *v = strchr(opt, '=');
	char *end;
	long mode;

	if (strcmp(opt, "tls") == 0) {
		if (l->kind == DC_LISTEN_UNIX) {
			*why = "tls applies to TCP listeners only";
			return DC_EINVAL;
		}
		l->tls = 1;
		return DC_OK;
	}
	if (v == NULL) {
		*why = "expected tls, or option=value after the address";
		return DC_EINVAL;
	}
	v++;
	if (l->kind != DC_LISTEN_UNIX) {
		*why = "mode=, owner= and group= apply to unix sockets only";
		return DC_EINVAL;
	}
	if (strncmp(opt, "mode=", 5) == 0) {
		errno = 0;
		mode = strtol(v, &end, 8);
		if (*v == '\0' || *end != '\0' || errno != 0 || mode < 0 ||
		    mode > 0777) {
			*why = "mode= takes octal permission bits, like 0660";
			return DC_EINVAL;
		}
		l->mode = (int)mode;
		return DC_OK;
	}
	if (strncmp(opt, "owner=", 6) == 0 || strncmp(opt, "group=", 6) == 0) {
		if (!valid_name(v)) {
			*why = "owner= and group= take a user or group name";
			return DC_EINVAL;
		}
		dc_strlcpy(opt[0] == 'o' ? l->owner : l->group, v,
		    sizeof(l->owner));
		return DC_OK;
	}
	*why = "unknown option, expected tls, mode=, owner= or group=";
	return DC_EINVAL;
}

int
dc_listener_parse(const char *text, struct dc_listener *l, const char **why)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)(void *)&l->addr;
	char buf[DC_LISTEN_TEXT_MAX], *tok, *save = NULL, *path;
	int rc = DC_EINVAL;

	memset(l, 0, sizeof(*l));
	l->mode = 0660;
	*why = "empty address";
	if (text == NULL || strlen(text) >= sizeof(buf)) {
		if (text != NULL)
			*why = "too long";
		goto out;
	}
	dc_strlcpy(buf, text, sizeof(buf));
	if ((tok = strtok_r(buf, " \t", &save)) == NULL)
		goto out;
	dc_strlcpy(l->address, tok, sizeof(l->address));
	if (tok[0] == '/' || strncmp(tok, "unix:", 5) == 0) {
		path = tok[0] == '/' ? tok : tok + 5;
		if (path[0] != '/') {
			*why = "a unix socket path must be absolute";
			goto out;
		}
		if (strlen(path) >= sizeof(sun->sun_path)) {
			*why = "unix socket path too long";
			goto out;
		}
		l->kind = DC_LISTEN_UNIX;
		sun->sun_family = AF_UNIX;
		dc_strlcpy(sun->sun_path, path, sizeof(sun->sun_path));
		l->addrlen = sizeof(*sun);
	} else {
		if (parse_listen(tok, &l->addr, &l->addrlen, why) != DC_OK)
			goto out;
		l->kind = is_loopback(&l->addr) ? DC_LISTEN_LOOPBACK :
		    DC_LISTEN_TCP;
	}
	while ((tok = strtok_r(NULL, " \t", &save)) != NULL)
		if (listener_option(l, tok, why) != DC_OK)
			goto out;
	rc = DC_OK;
out:
	return rc;
}

/* Same socket: the same address family and address, or the same path. */
static int
same_listener(const struct dc_listener *a, const struct dc_listener *b)
{
	return a->addrlen == b->addrlen &&
	    memcmp(&a->addr, &b->addr, a->addrlen) == 0;
}

/* cfg->listen's lines into cfg->listeners, with the names looked up. */
static void
validate_listeners(struct dc_config *cfg, struct problems *pb)
{
	struct dc_listener *l;
	char *lines, *line, *save = NULL, sb[CONFIG_SHOW_MAX + 8];
	const char *why;
	int i;

	cfg->nlisteners = 0;
	if ((lines = strdup(cfg->listen)) == NULL) {
		problem(pb, 0, "listen: out of memory");
		return;
	}
	for (line = strtok_r(lines, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (cfg->nlisteners == DC_MAX_LISTENERS) {
			problem(pb, 0, "listen: more than %d sockets",
			    DC_MAX_LISTENERS);
			break;
		}
		l = &cfg->listeners[cfg->nlisteners];
		if (dc_listener_parse(line, l, &why) != DC_OK) {
			problem(pb, 0, "listen: bad address \"%s\": %s",
			    show(line, sb, sizeof(sb)), why);
			continue;
		}
		for (i = 0; i < cfg->nlisteners; i++)
			if (same_listener(&cfg->listeners[i], l))
				break;
		if (i < cfg->nlisteners) {
			problem(pb, 0, "listen: %s is given twice", l->address);
			continue;
		}
		if (l->owner[0] != '\0' && getpwnam(l->owner) == NULL)
			problem(pb, 0, "listen %s: owner %s: no such user",
			    l->address, l->owner);
		if (l->group[0] != '\0' && getgrnam(l->group) == NULL)
			problem(pb, 0, "listen %s: group %s: no such group",
			    l->address, l->group);
		cfg->nlisteners++;
	}
	if (cfg->nlisteners == 0 && pb->count == 0)
		problem(pb, 0, "listen: no socket to listen on");
	free(lines);
}

/*
 * Read a secret file for key `key`: reported when unreadable or when group
 * or others may access it.  *text is NULL after a read error.
 */
static int
read_secret_file(const char *key, const char *path, char **text,
    struct problems *pb)
{
	size_t len;
	mode_t mode = 0;
	int err;

	err = read_file(path, CONFIG_MAX_KEYFILE, text, &len, &mode);
	if (err == ENOMEM)
		return DC_ENOMEM;
	if (err != 0) {
		problem(pb, 0, "%s: cannot read \"%s\": %s", key, path,
		    read_error(err));
		return DC_OK;
	}
	if ((mode & 077) != 0)
		problem(pb, 0, "%s: \"%s\" is accessible by group or others "
		    "(mode %04o), make it mode 600", key, path,
		    (unsigned int)mode);
	return DC_OK;
}

static int
validate_credentials(struct dc_config *cfg, struct problems *pb)
{
	struct dc_fernet_ring ring;
	const char *why = NULL;
	char *text = NULL, origin[512];
	int bad = -1, rc = DC_OK;

	snprintf(origin, sizeof(origin),
	    "credentials_key (DATABASE_CREDENTIALS_KEY)");
	if (cfg->credentials_key[0] == '\0' &&
	    cfg->credentials_key_file[0] != '\0') {
		rc = read_secret_file("credentials_key_file",
		    cfg->credentials_key_file, &text, pb);
		if (rc != DC_OK || text == NULL)
			goto out;
		if (text[strspn(text, " \t\r\n,")] == '\0') {
			problem(pb, 0, "credentials_key_file: \"%s\" holds no "
			    "key", cfg->credentials_key_file);
			goto out;
		}
		free_str(cfg->credentials_key, 1);
		cfg->credentials_key = text;
		text = NULL;
		snprintf(origin, sizeof(origin), "credentials_key_file \"%s\"",
		    cfg->credentials_key_file);
	}
	if (cfg->credentials_key[0] == '\0')
		goto out;
	memset(&ring, 0, sizeof(ring));
	if (dc_fernet_ring_parse(&ring, cfg->credentials_key, &why,
	    &bad) != DC_OK) {
		if (why == NULL)
			why = "invalid key";
		/* bad is 0-based; the key itself is never printed */
		if (bad >= 0)
			problem(pb, 0, "%s: key %d: %s", origin, bad + 1, why);
		else
			problem(pb, 0, "%s: %s", origin, why);
	}
	dc_fernet_ring_wipe(&ring);
out:
	free_str(text, 1);
	return rc;
}

/*
 * The API key of the selected provider comes from the first line of
 * llm_key_file when it is not set otherwise; the file is checked
 * whatever the provider.
 */
static int
validate_llm(struct dc_config *cfg, struct problems *pb)
{
	char *text = NULL, **dst = NULL, *start, *e;
	char *key;
	int rc = DC_OK;

	if (cfg->llm_key_file[0] == '\0')
		goto out;
	rc = read_secret_file("llm_key_file", cfg->llm_key_file, &text, pb);
	if (rc != DC_OK || text == NULL)
		goto out;
	start = text + strspn(text, " \t");
	for (e = start + strcspn(start, "\r\n"); e > start &&
	    isspace((unsigned char)e[-1]); e--)
		;
	if (e == start) {
		problem(pb, 0, "llm_key_file: \"%s\" holds no key",
		    cfg->llm_key_file);
		goto out;
	}
	if (strcmp(cfg->llm_provider, "openai") == 0)
		dst = &cfg->llm_openai_api_key;
	else if (strcmp(cfg->llm_provider, "anthropic") == 0)
		dst = &cfg->llm_anthropic_api_key;
	if (dst == NULL || (*dst)[0] != '\0')
		goto out;
	if ((key = strndup(start, (size_t)(e - start))) == NULL) {
		rc = DC_ENOMEM;
		goto out;
	}
	free_str(*dst, 1);
	*dst = key;
out:
	free_str(text, 1);
	return rc;
}

/*
 * May user pw (NULL: this process) create and remove files in dir?
 * Read from the mode bits, as the kernel would decide without ACLs.
 */
static int
dir_writable_by(const struct stat *st, const struct passwd *pw)
{
	gid_t groups[64];
	int n = (int)DC_ARRAY_SIZE(groups), i;
	uid_t uid = pw != NULL ? pw->pw_uid : geteuid();

	if (uid == 0)
		return 1;
	if (st->st_uid == uid)
		return (st->st_mode & (S_IWUSR | S_IXUSR)) ==
		    (S_IWUSR | S_IXUSR);
	if (pw != NULL) {
		if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) == -1)
			n = 0;
	} else {
		groups[0] = getegid();
		n = 1 + getgroups((int)DC_ARRAY_SIZE(groups) - 1, groups + 1);
	}
	for (i = 0; i < n; i++)
		if (groups[i] == st->st_gid)
			return (st->st_mode & (S_IWGRP | S_IXGRP)) ==
			    (S_IWGRP | S_IXGRP);
	return (st->st_mode & (S_IWOTH | S_IXOTH)) == (S_IWOTH | S_IXOTH);
}

/*
 * The directory of a file the daemon makes, removes or reopens after it
 * dropped privileges must exist and be writable by `user`: otherwise the
 * failure would come later, or never be seen (a pidfile left behind).
 */
static void
check_dir(const char *key, const char *path, const char *why,
    const struct dc_config *cfg, const struct passwd *pw,
    struct problems *pb)
{
	char dir[PATH_MAX], *slash;
	struct stat st;

	if (path[0] != '/') {
		problem(pb, 0, "%s: \"%s\" is not an absolute path", key, path);
		return;
	}
	dc_strlcpy(dir, path, sizeof(dir));
	slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	if (stat(dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
		problem(pb, 0, "%s: directory %s does not exist", key, dir);
		return;
	}
	if (!dir_writable_by(&st, pw))
		problem(pb, 0, "%s: directory %s is not writable by user %s, "
		    "which %s", key, dir, cfg->user[0] != '\0' ? cfg->user :
		    "running datachatd", why);
}

/* `user` exists, and the places it writes to are its to write. */
static void
validate_paths(struct dc_config *cfg, struct problems *pb)
{
	const struct sockaddr_un *sun;
	struct passwd *pw = NULL;
	int i;

	if (cfg->user[0] != '\0' && (pw = getpwnam(cfg->user)) == NULL) {
		problem(pb, 0, "user: no such user \"%s\"", cfg->user);
		return;
	}
	if (cfg->pidfile[0] != '\0')
		check_dir("pidfile", cfg->pidfile, "removes the pidfile at "
		    "exit", cfg, pw, pb);
	if (cfg->control_socket[0] != '\0')
		check_dir("control_socket", cfg->control_socket, "creates the "
		    "control socket there", cfg, pw, pb);
	if (strcmp(cfg->log, "stderr") != 0 && strcmp(cfg->log, "syslog") != 0)
		check_dir("log", cfg->log, "reopens the log there after "
		    "rotation", cfg, pw, pb);
	for (i = 0; i < cfg->nlisteners; i++) {
		if (cfg->listeners[i].kind != DC_LISTEN_UNIX)
			continue;
		sun = (const void *)&cfg->listeners[i].addr;
		check_dir("listen", sun->sun_path, "removes the socket at exit",
		    cfg, pw, pb);
	}
}

/*
 * Secure by default: without tokens (auth unset) only loopback and unix
 * listeners are served, and only an explicit `auth = off` opens another
 * (the master warns about it at every start).
 */
static void
validate_access(struct dc_config *cfg, struct problems *pb)
{
	char sb[CONFIG_SHOW_MAX + 8];
	const struct dc_listener *l;
	int i;

	cfg->auth_required = strcmp(cfg->auth, "required") == 0;
	cfg->auth_explicit_off = strcmp(cfg->auth, "off") == 0;
	cfg->metrics_open = strcmp(cfg->metrics_auth, "off") == 0;
	cfg->all_loopback = 1;
	for (i = 0; i < cfg->nlisteners; i++) {
		l = &cfg->listeners[i];
		if (l->kind != DC_LISTEN_TCP)
			continue;
		cfg->all_loopback = 0;
		if (cfg->auth[0] == '\0')
			problem(pb, 0, "listen: %s is not a loopback address "
			    "and auth is not set: set auth = required and "
			    "create tokens (datachatctl token add), or write "
			    "auth = off to serve it without tokens",
			    show(l->address, sb, sizeof(sb)));
	}
}

/*
 * A `tls` listener needs both files; the key must be the daemon's alone.
 * Whether they hold a matching certificate and key is the TLS layer's
 * to say (tls.c), at start-up, on reload and for -t.
 */
static int
validate_tls(struct dc_config *cfg, struct problems *pb)
{
	char *text = NULL;
	int i, any = 0, rc;

	for (i = 0; i < cfg->nlisteners; i++)
		any |= cfg->listeners[i].tls;
	if (!any)
		return DC_OK;
	if (cfg->tls_cert_file[0] == '\0' || cfg->tls_key_file[0] == '\0') {
		problem(pb, 0, "listen: a tls listener needs tls_cert_file and "
		    "tls_key_file");
		return DC_OK;
	}
	if (access(cfg->tls_cert_file, R_OK) != 0)
		problem(pb, 0, "tls_cert_file: cannot read \"%s\": %s",
		    cfg->tls_cert_file, strerror(errno));
	rc = read_secret_file("tls_key_file", cfg->tls_key_file, &text, pb);
	free_str(text, 1);
	return rc;
}

int
dc_config_validate(struct dc_config *cfg, dc_config_report report, void *arg)
{
	struct problems pb = { report, arg, config_name(cfg), 0 };
	struct sockaddr_un sun;
	char sb[CONFIG_SHOW_MAX + 8];
	char why2[160];
	int rc;

	validate_listeners(cfg, &pb);
	validate_access(cfg, &pb);
	if ((rc = validate_tls(cfg, &pb)) != DC_OK)
		return rc;
	if (strlen(cfg->control_socket) >= sizeof(sun.sun_path))
		problem(&pb, 0, "control_socket: path longer than %zu bytes",
		    sizeof(sun.sun_path) - 1);
	/* an origin a browser can never send would silently allow nothing */
	if (dc_origin_list_check(cfg->cors_origins, why2, sizeof(why2)) != DC_OK)
		problem(&pb, 0, "cors_origins: %s", why2);
	validate_paths(cfg, &pb);
	/*
	 * A resolv_conf that was asked for must be readable: evdns would
	 * quietly ask 127.0.0.1 instead.  The default may be missing (a host
	 * without DNS): /etc/hosts still answers.
	 */
	if (strcmp(cfg->resolv_conf, "/etc/resolv.conf") != 0 &&
	    access(cfg->resolv_conf, R_OK) != 0)
		problem(&pb, 0, "resolv_conf: cannot read \"%s\": %s",
		    show(cfg->resolv_conf, sb, sizeof(sb)), strerror(errno));
	if ((rc = validate_credentials(cfg, &pb)) != DC_OK)
		return rc;
	if ((rc = validate_llm(cfg, &pb)) != DC_OK)
		return rc;
	return pb.count;
}

int
dc_config_load(struct dc_config *cfg, const char *path,
    dc_config_report report, void *arg)
{
	char *text = NULL;
	size_t len = 0;
	mode_t mode;
	int rc, n = 0, err;

	if ((rc = dc_config_defaults(cfg)) != DC_OK)
		return rc;
	if (path != NULL) {
		if ((cfg->source = strdup(path)) == NULL) {
			rc = DC_ENOMEM;
			goto out;
		}
		err = read_file(path, CONFIG_MAX_FILE, &text, &len, &mode);
		if (err == ENOMEM) {
			rc = DC_ENOMEM;
			goto out;
		}
		if (err != 0) {
			n++;
			if (report != NULL) {
				char msg[512];

				snprintf(msg, sizeof(msg), "cannot read: %s",
				    read_error(err));
				report(arg, path, 0, msg);
			}
		} else if (strlen(text) != len) {
			n++;
			if (report != NULL)
				report(arg, path, 0,
				    "file contains a NUL byte");
		} else {
			if ((rc = dc_config_parse_text(cfg, path, text, report,
			    arg)) < 0)
				goto out;
			n += rc;
		}
	}
	if ((rc = dc_config_apply_env(cfg, report, arg)) < 0)
		goto out;
	n += rc;
	if ((rc = dc_config_validate(cfg, report, arg)) < 0)
		goto out;
	n += rc;
	rc = n;
out:
	if (text != NULL) {
		dc_explicit_bzero(text, len);
		free(text);
	}
	return rc;
}

static int
same_value(const struct dc_config *a, const struct dc_config *b,
    const struct dc_config_key *k)
{
	struct dc_config *ma = (struct dc_config *)(uintptr_t)a;
	struct dc_config *mb = (struct dc_config *)(uintptr_t)b;

	if (is_string(k))
		return strcmp(*field_str(ma, k), *field_str(mb, k)) == 0;
	if (k->type == DC_CT_DOUBLE)
		return *field_double(ma, k) == *field_double(mb, k);
	return *field_int(ma, k) == *field_int(mb, k);
}

int
dc_config_apply_reload(struct dc_config *dst, const struct dc_config *src,
    dc_config_report report, void *arg)
{
	struct problems pb = { report, arg, config_name(src), 0 };
	struct dc_config *msrc = (struct dc_config *)(uintptr_t)src;
	const struct dc_config_key *k;
	char **copies = NULL, **fp;
	size_t i, n = nkeys();
	int rc = DC_OK;

	/* Copy every string first, so running out of memory changes nothing. */
	if ((copies = calloc(n, sizeof(*copies))) == NULL) {
		rc = DC_ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		k = &dc_config_keys[i];
		if (!k->reloadable || !is_string(k))
			continue;
		if ((copies[i] = strdup(*field_str(msrc, k))) == NULL) {
			rc = DC_ENOMEM;
			goto out;
		}
	}
	for (i = 0; i < n; i++) {
		k = &dc_config_keys[i];
		if (!k->reloadable) {
			if (!same_value(dst, src, k))
				problem(&pb, 0, "%s changed: restart needed to "
				    "apply", k->name);
			continue;
		}
		if (is_string(k)) {
			fp = field_str(dst, k);
			free_str(*fp, k->type == DC_CT_SECRET);
			*fp = copies[i];
			copies[i] = NULL;
		} else if (k->type == DC_CT_DOUBLE)
			*field_double(dst, k) = *field_double(msrc, k);
		else
			*field_int(dst, k) = *field_int(msrc, k);
	}
	/* what validation derived from reloadable keys */
	dst->auth_required = src->auth_required;
	dst->auth_explicit_off = src->auth_explicit_off;
	dst->metrics_open = src->metrics_open;
out:
	if (copies != NULL) {
		for (i = 0; i < n; i++)
			free_str(copies[i], dc_config_keys[i].type ==
			    DC_CT_SECRET);
		free(copies);
	}
	return rc != DC_OK ? rc : pb.count;
}

/* Write v as a config value, quoted when it needs to be. */
static void
put_value(FILE *fp, const char *v)
{
	const char *p;

	if (*v != '\0' && strpbrk(v, " \t#\"\\") == NULL &&
	    !isspace((unsigned char)*v)) {
		fputs(v, fp);
		return;
	}
	fputc('"', fp);
	for (p = v; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			fputc('\\', fp);
		fputc(*p, fp);
	}
	fputc('"', fp);
}

void
dc_config_dump_sample(FILE *fp)
{
	const struct dc_config_key *k;
	const char *def;

	fputs("# datachatd.conf - configuration of datachatd(8); see "
	    "datachatd.conf(5).\n"
	    "#\n"
	    "# Written by `datachatd --dump-config`: every key, commented "
	    "out, with\n"
	    "# its default.  Lines are `key = value`; a # at the start of "
	    "a value or\n"
	    "# after whitespace begins a comment.  Double quotes keep "
	    "spaces and #\n"
	    "# in a value (write \\\" and \\\\ inside them).  A set, "
	    "non-empty environment\n"
	    "# variable named below overrides the file.  SIGHUP applies "
	    "the keys\n"
	    "# marked \"reload: yes\"; the others need a restart.\n", fp);
	for (k = dc_config_keys; k->name != NULL; k++) {
		def = k->type == DC_CT_SECRET ? "" : k->def;
		fprintf(fp, "\n# %s (default: %s; reload: %s", k->desc,
		    *def != '\0' ? def : "none", k->reloadable ? "yes" : "no");
		if (k->env != NULL)
			fprintf(fp, "; environment: %s", k->env);
		fprintf(fp, ")\n#%s = ", k->name);
		put_value(fp, def);
		fputc('\n', fp);
	}
}

void
dc_config_value(const struct dc_config *cfg, const struct dc_config_key *k,
    char *buf, size_t size)
{
	struct dc_config *m = (struct dc_config *)(uintptr_t)cfg;
	const char *v;

	switch (k->type) {
	case DC_CT_SECRET:
		v = *field_str(m, k);
		/* a URL keeps its host and database, never its password */
		if (v[0] == '\0')
			dc_strlcpy(buf, "", size);
		else if (strstr(v, "://") != NULL)
			dc_url_mask(v, buf, size);
		else
			dc_strlcpy(buf, "********", size);
		break;
	case DC_CT_INT:
	case DC_CT_WORKERS:
		snprintf(buf, size, "%d", *field_int(m, k));
		break;
	case DC_CT_DOUBLE:
		snprintf(buf, size, "%g", *field_double(m, k));
		break;
	case DC_CT_LOGLEVEL:
		dc_strlcpy(buf, log_level_names[*field_int(m, k)], size);
		break;
	case DC_CT_BOOL:
		dc_strlcpy(buf, *field_int(m, k) ? "yes" : "no", size);
		break;
	default:
		dc_strlcpy(buf, *field_str(m, k), size);
		break;
	}
}

void
dc_config_dump_effective(const struct dc_config *cfg, FILE *fp)
{
	const struct dc_config_key *k;
	char value[4096], *line, *save = NULL;
	const char *env;

	fprintf(fp, "# the effective configuration of %s: defaults, the file,\n"
	    "# then the environment; secrets masked\n",
	    cfg->source != NULL ? cfg->source : "datachatd (no file)");
	for (k = dc_config_keys; k->name != NULL; k++) {
		dc_config_value(cfg, k, value, sizeof(value));
		env = k->env != NULL ? getenv(k->env) : NULL;
		if (env != NULL && env[0] != '\0')
			fprintf(fp, "# from the environment: %s\n", k->env);
		/* one line per socket, as they were written */
		for (line = strtok_r(value, "\n", &save); k->type ==
		    DC_CT_LISTEN && line != NULL; line = strtok_r(NULL, "\n",
		    &save)) {
			fprintf(fp, "%s = ", k->name);
			put_value(fp, line);
			fputc('\n', fp);
		}
		if (k->type == DC_CT_LISTEN)
			continue;
		fprintf(fp, "%s = ", k->name);
		put_value(fp, value);
		fputc('\n', fp);
	}
}
