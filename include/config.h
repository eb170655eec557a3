/*
 * config.h - datachatd's configuration: one table of keys.
 *
 * Every key lives in one table (config.c: name, type, default, whether
 * SIGHUP can change it, environment variable, one-line description).  The
 * parser, `datachatd -t` and `-T`, `datachatd --dump-config` (which
 * writes etc/datachatd.conf) and `datachatctl config` all come from it;
 * tests/integration/test_docs.py holds the key list of datachatd.conf(5)
 * against it, so they cannot drift.  A configuration is parsed into a fresh
 * struct dc_config and only swapped in when every key validated, so a
 * broken file on reload leaves the running config untouched.
 */
#ifndef DC_CONFIG_H
#define DC_CONFIG_H

#include <stdio.h>
#include <sys/socket.h>

enum dc_log_level {
	DC_LOG_ERROR = 0,
	DC_LOG_WARNING,
	DC_LOG_INFO,
	DC_LOG_DEBUG,
};

/* What a listening socket is; auth and TLS rules depend on it. */
enum dc_listen_kind {
	DC_LISTEN_LOOPBACK = 1,	/* TCP on 127.0.0.0/8 or ::1 */
	DC_LISTEN_TCP,		/* TCP on any other address */
	DC_LISTEN_UNIX,		/* a unix socket path */
};

#define DC_MAX_LISTENERS	16
#define DC_LISTEN_TEXT_MAX	256
#define DC_WARM_TARGETS_MAX	32	/* warm_targets: a worker's counted targets */

/*
 * One `listen` line, parsed: `ADDRESS [option=value ...]` where ADDRESS
 * is host:port, [v6]:port, *:port, or a unix socket path (/path or
 * unix:/path).  Options apply to unix sockets: mode=0660 (the file's
 * permission bits), owner=USER and group=GROUP (default: the daemon's
 * user and its group).  The master opens every listener before fork and
 * every worker accepts on all of them.
 */
struct dc_listener {
	int		 kind;			/* enum dc_listen_kind */
	char		 address[DC_LISTEN_TEXT_MAX];	/* as written */
	struct sockaddr_storage addr;		/* sockaddr_un for unix */
	socklen_t	 addrlen;
	int		 mode;			/* unix: 0660 by default */
	char		 owner[64];		/* unix: "" = the daemon's */
	char		 group[64];		/* unix: "" = owner's group */
	int		 tls;			/* tcp: `tls`, with tls_*_file */
};

struct dc_config {
	/* process */
	char		*listen;		/* the listen lines, \n-separated */
	int		 workers;		/* resolved: auto -> CPUs */
	char		*user;
	char		*pidfile;
	char		*control_socket;
	char		*log;			/* stderr | syslog | path */
	int		 log_level;		/* enum dc_log_level */
	char		*log_format;		/* text | json */
	int		 shutdown_timeout;	/* seconds */

	/* registry */
	char		*system_database_url;
	char		*credentials_key;	/* comma-separated key list */
	char		*credentials_key_file;
	char		*database_url;
	int		 registry_capacity;
	int		 resync_interval;	/* seconds */

	/* access */
	char		*auth;			/* "", required, off */
	char		*metrics_auth;		/* required, off */
	int		 auth_failure_limit;	/* per address and minute */
	int		 registry_token_quota;	/* 0: registry_capacity / 4 */
	char		*server_names;		/* Host names beside localhost */
	char		*tls_cert_file;		/* PEM chain for `tls` listeners */
	char		*tls_key_file;		/* its key, mode 0600 */

	/* HTTP front */
	int		 max_clients;		/* per worker; 0: automatic */
	int		 header_timeout;	/* seconds for a request head */
	int		 body_timeout;		/* seconds for a request body */
	int		 keepalive_timeout;	/* seconds idle between requests */
	int		 max_header_size;	/* bytes of a request head */

	/* requests and queries */
	int		 max_body_size;		/* bytes */
	int		 request_timeout;	/* seconds */
	int		 statement_timeout;	/* milliseconds */
	int		 max_rows;
	int		 max_result_bytes;	/* bytes of values per result */
	int		 connect_timeout;	/* seconds */
	int		 target_idle_timeout;	/* seconds */
	int		 max_target_connections;
	int		 target_pipeline_depth;
	int		 target_stall_timeout;	/* ms */
	int		 warm_targets;		/* <= DC_WARM_TARGETS_MAX */
	int		 warm_timeout;		/* ms */
	char		*resolv_conf;
	char		*cors_origins;		/* comma-separated origins */
	int		 ws_idle_timeout;	/* seconds */
	int		 ws_ping_interval;	/* seconds, 0 = none */
	int		 conversation_turns;	/* kept per conversation */
	int		 conversation_ttl;	/* seconds */
	int		 schema_check_interval;	/* milliseconds */
	int		 schema_max_age;	/* seconds */

	/* targets (pgurl.h): what a target URL may name */
	int		 allow_socket_targets;	/* 0/1 */
	char		*privileged_targets;	/* allow, warn, refuse */

	/* LLM */
	char		*llm_provider;		/* "", openai, anthropic, local */
	char		*llm_openai_api_key;
	char		*llm_openai_model;
	char		*llm_openai_base_url;
	char		*llm_anthropic_api_key;
	char		*llm_anthropic_model;
	char		*llm_anthropic_base_url;
	char		*llm_local_base_url;
	char		*llm_local_model;
	char		*llm_key_file;
	double		 llm_temperature;
	int		 llm_max_tokens;
	int		 llm_timeout;		/* seconds */

	/* the prompt's schema (prompt.h) */
	int		 prompt_schema_tokens;
	int		 prompt_names_tokens;
	int		 rank_name;
	int		 rank_piece;
	int		 rank_column;
	int		 rank_synonym;
	int		 rank_fk;
	int		 rank_fk_hops;
	int		 rank_inbound;
	int		 rank_rows;
	int		 rank_min_relevance;
	int		 rank_max_tables;

	/* derived, filled by dc_config_validate() */
	struct dc_listener listeners[DC_MAX_LISTENERS];
	int		 nlisteners;
	int		 all_loopback;		/* listeners loopback or unix */
	int		 auth_required;		/* auth = required */
	int		 auth_explicit_off;	/* auth = off, written */
	int		 metrics_open;		/* metrics_auth = off */
	char		*source;		/* file it came from, or NULL */
};

enum dc_config_type {
	DC_CT_STRING,
	DC_CT_SECRET,		/* a string never printed by --dump-config */
	DC_CT_INT,
	DC_CT_DOUBLE,
	DC_CT_WORKERS,		/* "auto" or an int */
	DC_CT_LOGLEVEL,
	DC_CT_LISTEN,		/* a listener; the key may be given again */
	DC_CT_CHOICE,		/* a string, one of the key's choices */
	DC_CT_BOOL,		/* yes/no (true/false, on/off, 1/0): an int */
};

struct dc_config_key {
	const char	*name;
	int		 type;		/* enum dc_config_type */
	const char	*def;		/* default, as it would be written */
	int		 reloadable;	/* SIGHUP applies it */
	const char	*env;		/* overriding environment variable */
	long		 min, max;	/* bounds for DC_CT_INT */
	size_t		 offset;	/* into struct dc_config */
	const char	*desc;		/* one line for the docs */
	const char *const *choices;	/* DC_CT_CHOICE: NULL-terminated */
};

/* The table itself, terminated by an entry with name == NULL. */
extern const struct dc_config_key dc_config_keys[];

/*
 * Problems are reported through this callback, one call per problem, with
 * the file and line (line 0 for the environment or the whole file).
 */
typedef void (*dc_config_report)(void *arg, const char *file, int line,
    const char *msg);

/* Fill cfg with defaults.  Returns 0 or DC_ENOMEM. */
int		 dc_config_defaults(struct dc_config *cfg);

/*
 * Load: defaults, then the file (when path is not NULL), then the
 * environment (envp style getenv), then validate.  Returns the number of
 * problems reported (0 when the config can be used) or DC_ENOMEM.
 */
int		 dc_config_load(struct dc_config *cfg, const char *path,
		     dc_config_report report, void *arg);

/* Parse one file's text into cfg (used by load and the unit tests). */
int		 dc_config_parse_text(struct dc_config *cfg, const char *file,
		     const char *text, dc_config_report report, void *arg);

/* Apply the environment overrides. */
int		 dc_config_apply_env(struct dc_config *cfg,
		     dc_config_report report, void *arg);

/* Cross-key checks and derived values (listen address, key list). */
int		 dc_config_validate(struct dc_config *cfg,
		     dc_config_report report, void *arg);

/* Copy the reloadable keys of src into dst; report the others changed. */
int		 dc_config_apply_reload(struct dc_config *dst,
		     const struct dc_config *src, dc_config_report report,
		     void *arg);

void		 dc_config_free(struct dc_config *cfg);

/* Write the sample config (every key, commented, with defaults). */
void		 dc_config_dump_sample(FILE *fp);

/*
 * The value of key k in cfg as an operator may see it (datachatd -T,
 * datachatctl config): a secret URL with its password masked, any other
 * secret as ******** when set.
 */
void		 dc_config_value(const struct dc_config *cfg,
		     const struct dc_config_key *k, char *buf, size_t size);

/* Every key of cfg as a config file would say it, secrets masked. */
void		 dc_config_dump_effective(const struct dc_config *cfg,
		     FILE *fp);

/* Parse "host:port" / "[v6]:port" into a sockaddr. 0 or DC_EINVAL. */
int		 dc_parse_listen(const char *s, struct sockaddr_storage *ss,
		     socklen_t *len);

/*
 * Parse one listen line (address and options) into *l.  0, or DC_EINVAL
 * with *why saying what is wrong.  Names in owner= and group= are only
 * checked for syntax here; dc_config_validate looks them up.
 */
int		 dc_listener_parse(const char *text, struct dc_listener *l,
		     const char **why);

/* "loopback", "tcp" or "unix". */
const char	*dc_listen_kind_name(int kind);

#endif /* DC_CONFIG_H */
