/*
 * test_config.c - unit tests of the configuration module (config.c):
 * defaults, the file syntax, one test per kind of problem with its line
 * number, listen addresses, environment overrides, credentials keys that
 * must never be echoed, reload of only the reloadable keys, and the key
 * table against the sample config it prints.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dc.h"
#include "config.h"
#include "t.h"

#define MAXREP	16

/* Every report, kept for the checks. */
struct reports {
	int	 n;
	int	 line[MAXREP];
	char	 file[MAXREP][256];
	char	 msg[MAXREP][512];
	char	 all[MAXREP * 800];	/* every report, one per line */
};

/* A valid key (the Fernet spec's test vector) and one that is not. */
#define GOOD_KEY	"cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4="
#define BAD_KEY		"SeCrEtTeXt-not-a-key"

static void
collect(void *arg, const char *file, int line, const char *msg)
{
	struct reports *r = arg;
	size_t used = strlen(r->all);

	snprintf(r->all + used, sizeof(r->all) - used, "%s:%d: %s\n", file,
	    line, msg);
	if (r->n >= MAXREP)
		return;
	r->line[r->n] = line;
	dc_strlcpy(r->file[r->n], file, sizeof(r->file[0]));
	dc_strlcpy(r->msg[r->n], msg, sizeof(r->msg[0]));
	r->n++;
}

static int
expected_workers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

/* Parse text over the defaults; the caller frees cfg. */
static int
parse(struct dc_config *cfg, const char *text, struct reports *r)
{
	memset(r, 0, sizeof(*r));
	if (dc_config_defaults(cfg) != DC_OK)
		return -1000;
	return dc_config_parse_text(cfg, "test.conf", text, collect, r);
}

static char *
write_tmp(const char *text, mode_t mode)
{
	char *path = strdup("/tmp/test_config.XXXXXX");
	int fd;

	if (path == NULL || (fd = mkstemp(path)) == -1)
		abort();
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		abort();
	fchmod(fd, mode);
	close(fd);
	return path;
}

static void
clear_env(void)
{
	const struct dc_config_key *k;

	for (k = dc_config_keys; k->name != NULL; k++)
		if (k->env != NULL)
			unsetenv(k->env);
}

static void
test_defaults(void)
{
	struct dc_config cfg;
	struct reports r;
	struct sockaddr_in *sin;

	memset(&r, 0, sizeof(r));
	CHECK(dc_config_defaults(&cfg) == DC_OK);
	CHECK_STR(cfg.listen, "127.0.0.1:8000");
	CHECK(cfg.workers == expected_workers());
	CHECK_STR(cfg.user, "");
	CHECK_STR(cfg.pidfile, "");
	CHECK_STR(cfg.control_socket, "");
	CHECK_STR(cfg.log, "stderr");
	CHECK(cfg.log_level == DC_LOG_INFO);
	CHECK(cfg.shutdown_timeout == 30);
	CHECK_STR(cfg.system_database_url, "");
	CHECK_STR(cfg.credentials_key, "");
	CHECK_STR(cfg.database_url, "");
	CHECK(cfg.registry_capacity == 1024);
	CHECK(cfg.resync_interval == 60);
	CHECK(cfg.max_body_size == 1048576);
	CHECK(cfg.request_timeout == 60);
	CHECK(cfg.statement_timeout == 30000);
	CHECK(cfg.max_rows == 1000);
	CHECK(cfg.connect_timeout == 5);
	CHECK(cfg.target_idle_timeout == 300);
	CHECK(cfg.max_target_connections == 4);
	CHECK(cfg.target_pipeline_depth == 8);
	CHECK_STR(cfg.llm_provider, "");
	CHECK_STR(cfg.llm_openai_api_key, "");
	CHECK_STR(cfg.llm_openai_model, "gpt-4o-mini");
	CHECK_STR(cfg.llm_openai_base_url, "https://api.openai.com/v1");
	CHECK_STR(cfg.llm_anthropic_model, "claude-3-5-sonnet-latest");
	CHECK_STR(cfg.llm_anthropic_base_url, "https://api.anthropic.com");
	CHECK_STR(cfg.llm_local_base_url, "http://localhost:11434");
	CHECK_STR(cfg.llm_local_model, "llama3.1");
	CHECK_STR(cfg.llm_key_file, "");
	CHECK(cfg.llm_temperature == 0.0);
	CHECK(cfg.llm_max_tokens == 2000);
	CHECK(cfg.llm_timeout == 60);
	CHECK(cfg.source == NULL);

	CHECK(dc_config_validate(&cfg, collect, &r) == 0);
	CHECK(r.n == 0);
	CHECK(cfg.nlisteners == 1);
	sin = (struct sockaddr_in *)(void *)&cfg.listeners[0].addr;
	CHECK(sin->sin_family == AF_INET);
	CHECK(ntohs(sin->sin_port) == 8000);
	CHECK(ntohl(sin->sin_addr.s_addr) == INADDR_LOOPBACK);
	CHECK(cfg.listeners[0].addrlen == sizeof(struct sockaddr_in));
	CHECK(cfg.listeners[0].kind == DC_LISTEN_LOOPBACK);
	dc_config_free(&cfg);
	CHECK(cfg.listen == NULL && cfg.llm_local_model == NULL);
	dc_config_free(&cfg);		/* twice is harmless */
}

static void
test_good_file(void)
{
	struct dc_config cfg;
	struct reports r;
	const char *text =
	    "# datachatd test\n"
	    "\n"
	    "listen = 0.0.0.0:9000\n"
	    "auth = required\n"
	    "metrics_auth = off\n"
	    "auth_failure_limit = 3\n"
	    "registry_token_quota = 5\n"
	    "workers = 3\n"
	    "  user=nobody\n"
	    "pidfile = /tmp/datachatd.pid\n"
	    "control_socket = /tmp/datachatd.sock\n"
	    "log = syslog\n"
	    "log_level = debug\n"
	    "shutdown_timeout = 5\n"
	    "system_database_url = postgresql://u:pw@db/system\n"
	    "database_url = postgresql://u:pw@db/app\n"
	    "registry_capacity = 10\n"
	    "resync_interval = 120\n"
	    "max_body_size = 2048\n"
	    "request_timeout = 7\n"
	    "statement_timeout = 1500\n"
	    "max_rows = 50\n"
	    "connect_timeout = 2\n"
	    "target_idle_timeout = 30\n"
	    "max_target_connections = 8\n"
	    "llm_provider = anthropic\n"
	    "llm_anthropic_model = claude-x\n"
	    "llm_temperature = 0.7\n"
	    "llm_max_tokens = 100\n"
	    "llm_timeout = 9\r\n"
	    "\t# the end";

	CHECK(parse(&cfg, text, &r) == 0);
	CHECK(r.n == 0);
	CHECK_STR(cfg.listen, "0.0.0.0:9000");
	CHECK(cfg.workers == 3);
	CHECK_STR(cfg.user, "nobody");
	CHECK_STR(cfg.pidfile, "/tmp/datachatd.pid");
	CHECK_STR(cfg.control_socket, "/tmp/datachatd.sock");
	CHECK_STR(cfg.log, "syslog");
	CHECK(cfg.log_level == DC_LOG_DEBUG);
	CHECK(cfg.shutdown_timeout == 5);
	CHECK_STR(cfg.system_database_url, "postgresql://u:pw@db/system");
	CHECK_STR(cfg.database_url, "postgresql://u:pw@db/app");
	CHECK(cfg.registry_capacity == 10);
	CHECK(cfg.resync_interval == 120);
	CHECK(cfg.max_body_size == 2048);
	CHECK(cfg.request_timeout == 7);
	CHECK(cfg.statement_timeout == 1500);
	CHECK(cfg.max_rows == 50);
	CHECK(cfg.connect_timeout == 2);
	CHECK(cfg.target_idle_timeout == 30);
	CHECK(cfg.max_target_connections == 8);
	CHECK_STR(cfg.llm_provider, "anthropic");
	CHECK_STR(cfg.llm_anthropic_model, "claude-x");
	CHECK(cfg.llm_temperature > 0.69 && cfg.llm_temperature < 0.71);
	CHECK(cfg.llm_max_tokens == 100);
	CHECK(cfg.llm_timeout == 9);
	CHECK(cfg.auth_failure_limit == 3);
	CHECK(cfg.registry_token_quota == 5);
	CHECK(dc_config_validate(&cfg, collect, &r) == 0);
	CHECK(cfg.auth_required && !cfg.auth_explicit_off && cfg.metrics_open);
	CHECK(!cfg.all_loopback);
	dc_config_free(&cfg);

	/* empty text, and text of comments only */
	CHECK(parse(&cfg, "", &r) == 0);
	dc_config_free(&cfg);
	CHECK(parse(&cfg, "#\n   \n\t\n# x = y\n", &r) == 0);
	dc_config_free(&cfg);
}

/* One bad line in a text: one report, on that line, containing what. */
static void
one_problem(const char *text, int line, const char *what)
{
	struct dc_config cfg;
	struct reports r;
	int n;

	n = parse(&cfg, text, &r);
	if (n != 1)
		fprintf(stderr, "%d problems in \"%s\":\n%s", n, text, r.all);
	CHECK(n == 1);
	CHECK(r.n == 1);
	CHECK(r.line[0] == line);
	CHECK_STR(r.file[0], "test.conf");
	if (strstr(r.msg[0], what) == NULL) {
		fprintf(stderr, "expected \"%s\" in \"%s\"\n", what, r.msg[0]);
		CHECK(!"message");
	}
	dc_config_free(&cfg);
}

static void
test_problems(void)
{
	struct dc_config cfg;
	struct reports r;

	one_problem("max_rows = 5\nfoo = 1\n", 2, "unknown key \"foo\"");
	one_problem("max_rows = 5\n\nmax_rows = 6\n", 3,
	    "\"max_rows\" given twice (first on line 1)");
	one_problem("\nmax_rows = ten\n", 2, "\"ten\" is not an integer");
	one_problem("max_rows = 5x\n", 1, "is not an integer");
	one_problem("max_rows =\n", 1, "is not an integer");
	one_problem("#\n#\nmax_rows = 0\n", 3,
	    "out of range, must be between 1 and 1000000");
	one_problem("max_rows = 99999999999999999999999\n", 1,
	    "out of range, must be between 1 and 1000000");
	one_problem("max_body_size = 1023\n", 1, "between 1024 and 104857600");
	one_problem("llm_temperature = 2.5\n", 1, "between 0 and 2");
	one_problem("llm_temperature = warm\n", 1, "is not a number");
	one_problem("llm_temperature = nan\n", 1, "is not a number");
	one_problem("workers = many\n", 1,
	    "expected auto or a number between 1 and 64");
	one_problem("workers = 0\n", 1, "between 1 and 64");
	one_problem("workers = 65\n", 1, "between 1 and 64");
	one_problem("log_level = verbose\n", 1,
	    "expected error, warning, info or debug");
	one_problem("llm_provider = gemini\n", 1,
	    "expected openai, anthropic, local or empty");
	one_problem("allow_socket_targets = sometimes\n", 1,
	    "expected yes or no");
	one_problem("x\nmax_rows = 1\n", 1, "missing \"=\"");
	one_problem("max_rows = 1\n = 4\n", 2, "missing key name");
	one_problem("user = \"nobody\n", 1, "unterminated quoted value");
	one_problem("user = \"no\" body\n", 1, "after the closing quote");

	/* a bad value is not stored */
	CHECK(parse(&cfg, "max_rows = 0\nlog_level = loud\n", &r) == 2);
	CHECK(cfg.max_rows == 1000);
	CHECK(cfg.log_level == DC_LOG_INFO);
	dc_config_free(&cfg);

	/* every problem of a text, in one pass */
	CHECK(parse(&cfg,
	    "listen = 127.0.0.1:1234\n"
	    "bogus = 1\n"
	    "max_rows = 7\n"
	    "max_rows = 8\n"
	    "\n"
	    "shutdown_timeout = 0\n"
	    "log_level = info\n", &r) == 3);
	CHECK(r.n == 3);
	CHECK(r.line[0] == 2 && r.line[1] == 4 && r.line[2] == 6);
	CHECK(cfg.max_rows == 7);
	CHECK_STR(cfg.listen, "127.0.0.1:1234");
	dc_config_free(&cfg);

	/* a secret's text never shows up in a problem */
	CHECK(parse(&cfg, "system_database_url = \"postgresql://u:hunter2@h\n"
	    "database_url = \"postgresql://u:hunter3@h\" junk\n", &r) == 2);
	CHECK(strstr(r.all, "hunter") == NULL);
	dc_config_free(&cfg);
	CHECK(parse(&cfg, "databse_url postgresql://u:hunter2@h\n", &r) == 1);
	CHECK(strstr(r.all, "hunter") == NULL);
	dc_config_free(&cfg);
}

static void
test_quotes_comments(void)
{
	struct dc_config cfg;
	struct reports r;

	CHECK(parse(&cfg,
	    "user = \"a # b\"   # comment\n"
	    "pidfile = /run/x.pid # comment\n"
	    "log = /var/log/dc#1.log\n"
	    "control_socket = \"say \\\"hi\\\" \\\\ \\n\"\n"
	    "llm_openai_model =   \"  spaced  \"\n"
	    "llm_local_model = \"\"\n"
	    "llm_anthropic_model = # nothing\n"
	    "llm_local_base_url=http://h:1/#frag\n"
	    "  max_rows\t=\t42\t\n", &r) == 0);
	CHECK_STR(r.all, "");
	CHECK_STR(cfg.user, "a # b");
	CHECK_STR(cfg.pidfile, "/run/x.pid");
	CHECK_STR(cfg.log, "/var/log/dc#1.log");
	CHECK_STR(cfg.control_socket, "say \"hi\" \\ \\n");
	CHECK_STR(cfg.llm_openai_model, "  spaced  ");
	CHECK_STR(cfg.llm_local_model, "");
	CHECK_STR(cfg.llm_anthropic_model, "");
	CHECK_STR(cfg.llm_local_base_url, "http://h:1/#frag");
	CHECK(cfg.max_rows == 42);
	dc_config_free(&cfg);
}

static int
listen_ok(const char *s, int family, int port)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;

	if (dc_parse_listen(s, &ss, &len) != DC_OK)
		return 0;
	if (ss.ss_family != family)
		return 0;
	if (family == AF_INET)
		return len == sizeof(struct sockaddr_in) && ntohs(((struct
		    sockaddr_in *)(void *)&ss)->sin_port) == port;
	return len == sizeof(struct sockaddr_in6) && ntohs(((struct
	    sockaddr_in6 *)(void *)&ss)->sin6_port) == port;
}

static void
test_listen(void)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)(void *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)(void *)&ss;
	struct dc_config cfg;
	struct reports r;
	socklen_t len;

	CHECK(listen_ok("127.0.0.1:8000", AF_INET, 8000));
	CHECK(listen_ok("10.1.2.3:1", AF_INET, 1));
	CHECK(listen_ok("10.1.2.3:65535", AF_INET, 65535));
	CHECK(listen_ok("[::1]:8080", AF_INET6, 8080));
	CHECK(listen_ok("[::]:80", AF_INET6, 80));
	CHECK(listen_ok("*:8000", AF_INET, 8000));
	CHECK(listen_ok("localhost:8001", AF_INET, 8001));

	CHECK(dc_parse_listen("*:8000", &ss, &len) == DC_OK);
	CHECK(sin->sin_addr.s_addr == htonl(INADDR_ANY));
	CHECK(dc_parse_listen("localhost:8000", &ss, &len) == DC_OK);
	CHECK(sin->sin_addr.s_addr == htonl(INADDR_LOOPBACK));
	CHECK(dc_parse_listen("[::1]:8000", &ss, &len) == DC_OK);
	CHECK(memcmp(&sin6->sin6_addr, &in6addr_loopback,
	    sizeof(in6addr_loopback)) == 0);

	CHECK(dc_parse_listen("127.0.0.1:0", &ss, &len) == DC_EINVAL);
	CHECK(dc_parse_listen("127.0.0.1:65536", &ss, &len) == DC_EINVAL);
	CHECK(dc_parse_listen("127.0.0.1:-1", &ss, &len) == DC_EINVAL);
	CHECK(dc_parse_listen("127.0.0.1:+80", &ss, &len) == DC_EINVAL);
	CHECK(dc_parse_listen("127.0.0.1:80x", &ss, &len) == DC_EINVAL);
	CHECK(dc_parse_listen("127.0.0.1:", &ss, &len) == DC_EINVAL);
	CHECK(dc_parse_listen("127.0.0.1", &ss, &len) == DC_EINVAL);
	CHECK(dc_parse_listen("[::1]", &ss, &len) == DC_EINVAL);
	CHECK(dc_parse_listen("[::1:80", &ss, &len) == DC_EINVAL);
	CHECK(dc_parse_listen("::1:80", &ss, &len) == DC_EINVAL);
	CHECK(dc_parse_listen("[127.0.0.1]:80", &ss, &len) == DC_EINVAL);
	CHECK(dc_parse_listen(":80", &ss, &len) == DC_EINVAL);
	CHECK(dc_parse_listen("example.com:80", &ss, &len) == DC_EINVAL);
	CHECK(dc_parse_listen("300.1.1.1:80", &ss, &len) == DC_EINVAL);
	CHECK(dc_parse_listen("garbage", &ss, &len) == DC_EINVAL);
	CHECK(dc_parse_listen("", &ss, &len) == DC_EINVAL);
	CHECK(dc_parse_listen(NULL, &ss, &len) == DC_EINVAL);

	/* through the parser: reported on its line, default kept */
	CHECK(parse(&cfg, "# x\nlisten = 127.0.0.1:99999\n", &r) == 1);
	CHECK(r.n == 1 && r.line[0] == 2);
	CHECK(strstr(r.msg[0], "listen") != NULL);
	CHECK(strstr(r.msg[0], "65535") != NULL);
	CHECK(dc_config_validate(&cfg, collect, &r) == 0);
	dc_config_free(&cfg);
	CHECK(parse(&cfg, "listen = [::1]:8443\n", &r) == 0);
	CHECK(dc_config_validate(&cfg, collect, &r) == 0);
	CHECK(cfg.listeners[0].addr.ss_family == AF_INET6);
	CHECK(cfg.listeners[0].addrlen == sizeof(struct sockaddr_in6));
	dc_config_free(&cfg);
}

/* Several listen lines, unix sockets and their options. */
static void
test_listeners(void)
{
	struct dc_listener l;
	struct sockaddr_un *sun = (struct sockaddr_un *)(void *)&l.addr;
	struct dc_config cfg;
	struct reports r;
	const char *why;

	CHECK(dc_listener_parse("/run/d/api.sock", &l, &why) == DC_OK);
	CHECK(l.kind == DC_LISTEN_UNIX && l.mode == 0660);
	CHECK_STR(sun->sun_path, "/run/d/api.sock");
	CHECK_STR(l.address, "/run/d/api.sock");
	CHECK(l.owner[0] == '\0' && l.group[0] == '\0');
	CHECK(dc_listener_parse("unix:/tmp/x.sock mode=0600 owner=root "
	    "group=www-data", &l, &why) == DC_OK);
	CHECK(l.kind == DC_LISTEN_UNIX && l.mode == 0600);
	CHECK_STR(sun->sun_path, "/tmp/x.sock");
	CHECK_STR(l.owner, "root");
	CHECK_STR(l.group, "www-data");
	CHECK(dc_listener_parse("127.0.0.2:80", &l, &why) == DC_OK);
	CHECK(l.kind == DC_LISTEN_LOOPBACK);
	CHECK(dc_listener_parse("[::1]:80", &l, &why) == DC_OK);
	CHECK(l.kind == DC_LISTEN_LOOPBACK);
	CHECK(dc_listener_parse("*:80", &l, &why) == DC_OK);
	CHECK(l.kind == DC_LISTEN_TCP);
	CHECK(dc_listener_parse("10.0.0.1:80", &l, &why) == DC_OK);
	CHECK(l.kind == DC_LISTEN_TCP && !l.tls);
	CHECK(dc_listener_parse("*:8443 tls", &l, &why) == DC_OK);
	CHECK(l.kind == DC_LISTEN_TCP && l.tls);
	CHECK(dc_listener_parse("/tmp/x.sock tls", &l, &why) == DC_EINVAL);
	CHECK(strstr(why, "TCP listeners only") != NULL);
	CHECK_STR(dc_listen_kind_name(DC_LISTEN_UNIX), "unix");

	CHECK(dc_listener_parse("unix:relative.sock", &l, &why) == DC_EINVAL);
	CHECK(strstr(why, "absolute") != NULL);
	CHECK(dc_listener_parse("/tmp/x mode=999", &l, &why) == DC_EINVAL);
	CHECK(dc_listener_parse("/tmp/x mode=", &l, &why) == DC_EINVAL);
	CHECK(dc_listener_parse("/tmp/x mode=01777", &l, &why) == DC_EINVAL);
	CHECK(dc_listener_parse("/tmp/x owner=a:b", &l, &why) == DC_EINVAL);
	CHECK(dc_listener_parse("/tmp/x color=red", &l, &why) == DC_EINVAL);
	CHECK(dc_listener_parse("/tmp/x mode", &l, &why) == DC_EINVAL);
	CHECK(dc_listener_parse("127.0.0.1:80 mode=0600", &l, &why) ==
	    DC_EINVAL);
	CHECK(strstr(why, "unix sockets only") != NULL);
	CHECK(dc_listener_parse("/tmp/0123456789012345678901234567890123456789"
	    "0123456789012345678901234567890123456789012345678901234567890123"
	    "456789", &l, &why) == DC_EINVAL);
	CHECK(dc_listener_parse("", &l, &why) == DC_EINVAL);

	/* several lines: the first replaces the default, the next add */
	CHECK(parse(&cfg, "listen = 127.0.0.1:8001\nmax_rows = 5\n"
	    "listen = \"/tmp/dc.sock mode=0666\"\nlisten = *:8002\n"
	    "auth = required\n", &r) == 0);
	CHECK(dc_config_validate(&cfg, collect, &r) == 0);
	CHECK(cfg.nlisteners == 3);
	CHECK_STR(cfg.listeners[0].address, "127.0.0.1:8001");
	CHECK(cfg.listeners[1].kind == DC_LISTEN_UNIX &&
	    cfg.listeners[1].mode == 0666);
	CHECK(cfg.listeners[2].kind == DC_LISTEN_TCP);
	CHECK_STR(cfg.listen, "127.0.0.1:8001\n/tmp/dc.sock mode=0666\n*:8002");
	dc_config_free(&cfg);

	/* a bad line is reported on its line and the others are kept */
	CHECK(parse(&cfg, "listen = 127.0.0.1:8001\nlisten = /x owner=\n",
	    &r) == 1);
	CHECK(r.line[0] == 2 && strstr(r.msg[0], "owner") != NULL);
	CHECK_STR(cfg.listen, "127.0.0.1:8001");
	dc_config_free(&cfg);

	/* the same socket twice, an unknown owner: validation says so */
	CHECK(parse(&cfg, "listen = 127.0.0.1:8001\nlisten = 127.0.0.1:8001\n"
	    "listen = \"/tmp/a.sock owner=no-such-user-here\"\n", &r) == 0);
	CHECK(dc_config_validate(&cfg, collect, &r) == 2);
	CHECK(strstr(r.all, "given twice") != NULL);
	CHECK(strstr(r.all, "no-such-user-here: no such user") != NULL);
	dc_config_free(&cfg);

	/* other keys still may not repeat */
	CHECK(parse(&cfg, "max_rows = 5\nmax_rows = 6\n", &r) == 1);
	CHECK(strstr(r.msg[0], "given twice") != NULL);
	dc_config_free(&cfg);
}

static void
test_env(void)
{
	struct dc_config cfg;
	struct reports r;

	clear_env();
	CHECK(parse(&cfg, "llm_max_tokens = 10\nllm_openai_model = file\n"
	    "max_rows = 3\n", &r) == 0);
	setenv("LLM_MAX_TOKENS", "500", 1);
	setenv("LLM_OPENAI_MODEL", "", 1);	/* empty: no override */
	setenv("LLM_TEMPERATURE", "1.5", 1);
	setenv("DATABASE_URL", "postgresql://e:pw@envhost/db", 1);
	setenv("SYSTEM_DATABASE_URL", "postgresql://s:pw@envhost/sys", 1);
	setenv("LLM_DEFAULT_PROVIDER", "local", 1);
	setenv("LLM_LOCAL_MODEL", "qwen", 1);
	setenv("MAX_ROWS", "9", 1);		/* not an environment key */
	CHECK(dc_config_apply_env(&cfg, collect, &r) == 0);
	CHECK(r.n == 0);
	CHECK(cfg.llm_max_tokens == 500);
	CHECK_STR(cfg.llm_openai_model, "file");
	CHECK(cfg.llm_temperature == 1.5);
	CHECK_STR(cfg.database_url, "postgresql://e:pw@envhost/db");
	CHECK_STR(cfg.system_database_url, "postgresql://s:pw@envhost/sys");
	CHECK_STR(cfg.llm_provider, "local");
	CHECK_STR(cfg.llm_local_model, "qwen");
	CHECK(cfg.max_rows == 3);
	unsetenv("MAX_ROWS");

	/* bad values: file "environment", line 0, naming the variable */
	setenv("LLM_TIMEOUT", "soon", 1);
	setenv("LLM_MAX_TOKENS", "0", 1);
	setenv("LLM_DEFAULT_PROVIDER", "gemini", 1);
	CHECK(dc_config_apply_env(&cfg, collect, &r) == 3);
	CHECK(r.n == 3);
	CHECK_STR(r.file[0], "environment");
	CHECK(r.line[0] == 0 && r.line[1] == 0 && r.line[2] == 0);
	CHECK(strstr(r.all, "LLM_TIMEOUT: \"soon\" is not an integer") != NULL);
	CHECK(strstr(r.all, "LLM_MAX_TOKENS: 0 is out of range") != NULL);
	CHECK(strstr(r.all, "LLM_DEFAULT_PROVIDER: bad value") != NULL);
	CHECK(cfg.llm_timeout == 60);
	CHECK(cfg.llm_max_tokens == 500);	/* neither stored */
	CHECK_STR(cfg.llm_provider, "local");	/* kept from before */
	dc_config_free(&cfg);
	clear_env();
}

static void
test_credentials(void)
{
	struct dc_config cfg;
	struct reports r;
	char *path;

	clear_env();

	/* a bad key in the environment: position and why, never its text */
	setenv("DATABASE_CREDENTIALS_KEY", GOOD_KEY "," BAD_KEY, 1);
	CHECK(parse(&cfg, "", &r) == 0);
	CHECK(dc_config_apply_env(&cfg, collect, &r) == 0);
	CHECK(dc_config_validate(&cfg, collect, &r) == 1);
	CHECK(r.n == 1 && r.line[0] == 0);
	CHECK(strstr(r.all, "DATABASE_CREDENTIALS_KEY") != NULL);
	CHECK(strstr(r.all, "key 2") != NULL);
	CHECK(strstr(r.all, "SeCrEt") == NULL);
	CHECK(strstr(r.all, "cw_0x") == NULL);
	dc_config_free(&cfg);

	/* a good list */
	setenv("DATABASE_CREDENTIALS_KEY", GOOD_KEY "," GOOD_KEY, 1);
	CHECK(parse(&cfg, "", &r) == 0);
	CHECK(dc_config_apply_env(&cfg, collect, &r) == 0);
	CHECK(dc_config_validate(&cfg, collect, &r) == 0);
	CHECK_STR(r.all, "");
	dc_config_free(&cfg);
	clear_env();

	/* a key file readable by others: a problem */
	path = write_tmp(GOOD_KEY "\n", 0644);
	dc_config_defaults(&cfg);
	free(cfg.credentials_key_file);
	cfg.credentials_key_file = strdup(path);
	memset(&r, 0, sizeof(r));
	CHECK(dc_config_validate(&cfg, collect, &r) == 1);
	CHECK(strstr(r.all, "accessible by group or others") != NULL);
	CHECK(strstr(r.all, "cw_0x") == NULL);
	dc_config_free(&cfg);

	/* mode 600: the keys are read into credentials_key */
	chmod(path, 0600);
	dc_config_defaults(&cfg);
	free(cfg.credentials_key_file);
	cfg.credentials_key_file = strdup(path);
	memset(&r, 0, sizeof(r));
	CHECK(dc_config_validate(&cfg, collect, &r) == 0);
	CHECK_STR(r.all, "");
	CHECK(strncmp(cfg.credentials_key, GOOD_KEY, 44) == 0);
	dc_config_free(&cfg);
	unlink(path);
	free(path);

	/* a bad second key in a file */
	path = write_tmp(GOOD_KEY "\n" BAD_KEY "\n", 0600);
	dc_config_defaults(&cfg);
	free(cfg.credentials_key_file);
	cfg.credentials_key_file = strdup(path);
	memset(&r, 0, sizeof(r));
	CHECK(dc_config_validate(&cfg, collect, &r) == 1);
	CHECK(strstr(r.all, "key 2") != NULL);
	CHECK(strstr(r.all, "credentials_key_file") != NULL);
	CHECK(strstr(r.all, "SeCrEt") == NULL);
	dc_config_free(&cfg);
	unlink(path);

	/* an unreadable key file */
	dc_config_defaults(&cfg);
	free(cfg.credentials_key_file);
	cfg.credentials_key_file = strdup(path);
	memset(&r, 0, sizeof(r));
	CHECK(dc_config_validate(&cfg, collect, &r) == 1);
	CHECK(strstr(r.all, "cannot read") != NULL);
	dc_config_free(&cfg);
	free(path);

	/* llm_key_file gives the selected provider its key */
	path = write_tmp("  sk-test-123  \nsecond line\n", 0600);
	dc_config_defaults(&cfg);
	free(cfg.llm_key_file);
	cfg.llm_key_file = strdup(path);
	free(cfg.llm_provider);
	cfg.llm_provider = strdup("openai");
	memset(&r, 0, sizeof(r));
	CHECK(dc_config_validate(&cfg, collect, &r) == 0);
	CHECK_STR(cfg.llm_openai_api_key, "sk-test-123");
	CHECK_STR(cfg.llm_anthropic_api_key, "");
	dc_config_free(&cfg);
	unlink(path);
	free(path);
}

static void
test_targets(void)
{
	struct dc_config cfg;
	struct reports r;

	CHECK(parse(&cfg, "", &r) == 0);
	CHECK(cfg.allow_socket_targets == 0);
	dc_config_free(&cfg);
	CHECK(parse(&cfg, "allow_socket_targets = Yes\n", &r) == 0);
	CHECK(cfg.allow_socket_targets == 1);
	dc_config_free(&cfg);
	CHECK(parse(&cfg, "allow_socket_targets = off\n", &r) == 0);
	CHECK(cfg.allow_socket_targets == 0);
	dc_config_free(&cfg);
}

static void
test_workers(void)
{
	struct dc_config cfg;
	struct reports r;

	CHECK(parse(&cfg, "workers = 5\n", &r) == 0);
	CHECK(cfg.workers == 5);
	dc_config_free(&cfg);
	CHECK(parse(&cfg, "workers = 2\nworkers = auto\n", &r) == 1);
	CHECK(cfg.workers == 2);
	dc_config_free(&cfg);
	CHECK(parse(&cfg, "workers = auto\n", &r) == 0);
	CHECK(cfg.workers == expected_workers());
	CHECK(cfg.workers >= 1 && cfg.workers <= 64);
	dc_config_free(&cfg);
	CHECK(parse(&cfg, "workers = \"64\"\n", &r) == 0);
	CHECK(cfg.workers == 64);
	dc_config_free(&cfg);
}

static void
test_reload(void)
{
	struct dc_config old, new;
	struct reports r;

	CHECK(parse(&old, "listen = 127.0.0.1:8000\nworkers = 2\n"
	    "max_rows = 10\nlog_level = info\n", &r) == 0);
	CHECK(parse(&new, "listen = 127.0.0.1:9000\nworkers = 2\n"
	    "max_rows = 20\nlog_level = debug\nregistry_capacity = 5\n"
	    "llm_openai_model = gpt-new\ndatabase_url = postgresql://x/y\n"
	    "llm_temperature = 1.25\n", &r) == 0);
	memset(&r, 0, sizeof(r));
	CHECK(dc_config_apply_reload(&old, &new, collect, &r) == 2);
	CHECK(r.n == 2);
	CHECK(r.line[0] == 0 && r.line[1] == 0);
	CHECK_STR(r.msg[0], "listen changed: restart needed to apply");
	CHECK_STR(r.msg[1],
	    "registry_capacity changed: restart needed to apply");
	CHECK_STR(old.listen, "127.0.0.1:8000");	/* not reloadable */
	CHECK(old.registry_capacity == 1024);
	CHECK(old.workers == 2);
	CHECK(old.max_rows == 20);			/* reloadable */
	CHECK(old.log_level == DC_LOG_DEBUG);
	CHECK_STR(old.llm_openai_model, "gpt-new");
	CHECK_STR(old.database_url, "postgresql://x/y");
	CHECK(old.llm_temperature == 1.25);
	CHECK(old.llm_openai_model != new.llm_openai_model);	/* a copy */

	/* nothing changed: no warning */
	memset(&r, 0, sizeof(r));
	CHECK(dc_config_apply_reload(&new, &new, collect, &r) == 0);
	CHECK(r.n == 0);
	dc_config_free(&old);
	dc_config_free(&new);
}

/* Parse, then validate (listener checks live there). */
static int
validated(struct dc_config *cfg, const char *text, struct reports *r)
{
	int n = parse(cfg, text, r);

	if (n != 0)
		return n;
	return dc_config_validate(cfg, collect, r);
}

static void
test_access(void)
{
	struct dc_config cfg, next;
	struct reports r;

	/* auth unset: fine on loopback, refused elsewhere */
	CHECK(validated(&cfg, "listen = 127.0.0.1:8000\n", &r) == 0);
	CHECK(cfg.all_loopback && !cfg.auth_required && !cfg.auth_explicit_off);
	CHECK(!cfg.metrics_open);
	dc_config_free(&cfg);
	CHECK(validated(&cfg, "listen = 127.3.2.1:8000\n", &r) == 0);
	dc_config_free(&cfg);
	CHECK(validated(&cfg, "listen = [::1]:8000\n", &r) == 0);
	dc_config_free(&cfg);
	CHECK(validated(&cfg, "listen = *:8000\n", &r) == 1);
	CHECK(strstr(r.msg[0], "not a loopback address and auth is not set")
	    != NULL);
	dc_config_free(&cfg);
	CHECK(validated(&cfg, "listen = [::]:8000\n", &r) == 1);
	dc_config_free(&cfg);
	/* written explicitly, either way is accepted */
	CHECK(validated(&cfg, "listen = *:8000\nauth = off\n", &r) == 0);
	CHECK(cfg.auth_explicit_off && !cfg.auth_required && !cfg.all_loopback);
	dc_config_free(&cfg);
	CHECK(validated(&cfg, "listen = *:8000\nauth = required\n", &r) == 0);
	CHECK(cfg.auth_required);
	dc_config_free(&cfg);
	/* only the words it knows */
	CHECK(parse(&cfg, "auth = yes\nmetrics_auth = open\n", &r) == 2);
	CHECK(r.line[0] == 1 && strstr(r.msg[0], "required, off or empty"));
	CHECK(r.line[1] == 2 && strstr(r.msg[1], "required or off"));
	dc_config_free(&cfg);
	CHECK(parse(&cfg, "auth_failure_limit = 0\n", &r) == 1);
	dc_config_free(&cfg);

	/* a reload carries what validation derived */
	CHECK(validated(&cfg, "listen = 127.0.0.1:8000\n", &r) == 0);
	CHECK(validated(&next, "listen = 127.0.0.1:8000\nauth = required\n"
	    "metrics_auth = off\n", &r) == 0);
	CHECK(dc_config_apply_reload(&cfg, &next, collect, &r) == 0);
	CHECK(cfg.auth_required && cfg.metrics_open);
	dc_config_free(&cfg);
	dc_config_free(&next);

	/* several listeners: one that is not loopback is enough */
	CHECK(validated(&cfg, "listen = 127.0.0.1:8000\nlisten = /tmp/x.sock\n",
	    &r) == 0);
	CHECK(cfg.all_loopback);
	dc_config_free(&cfg);
	CHECK(validated(&cfg, "listen = 127.0.0.1:8000\nlisten = 10.1.2.3:80\n",
	    &r) == 1);
	CHECK(strstr(r.msg[0], "10.1.2.3:80") != NULL);
	dc_config_free(&cfg);
	/* IPv4 loopback mapped into IPv6 is loopback too */
	CHECK(validated(&cfg, "listen = [::ffff:127.0.0.1]:8000\n", &r) == 0);
	CHECK(cfg.all_loopback);
	dc_config_free(&cfg);
	CHECK(validated(&cfg, "listen = [::ffff:10.0.0.1]:8000\n", &r) == 1);
	dc_config_free(&cfg);
}

static void
test_table_and_sample(void)
{
	const struct dc_config_key *k, *k2;
	struct dc_config cfg;
	struct reports r;
	char *buf = NULL, *text, *p, needle[128];
	size_t len = 0;
	FILE *fp;
	int n = 0;

	for (k = dc_config_keys; k->name != NULL; k++) {
		n++;
		CHECK(k->name[0] != '\0');
		CHECK(k->desc != NULL && k->desc[0] != '\0');
		CHECK(k->def != NULL);
		CHECK(k->offset < sizeof(struct dc_config));
		if (k->type == DC_CT_SECRET)
			CHECK(k->def[0] == '\0');
		if (strncmp(k->name, "llm_", 4) == 0)
			CHECK(k->reloadable);
		for (k2 = k + 1; k2->name != NULL; k2++)
			CHECK(strcmp(k->name, k2->name) != 0);
	}
	CHECK(n == 74);

	fp = open_memstream(&buf, &len);
	CHECK(fp != NULL);
	if (fp == NULL)
		return;
	dc_config_dump_sample(fp);
	fclose(fp);
	CHECK(buf[0] == '#');
	for (k = dc_config_keys; k->name != NULL; k++) {
		snprintf(needle, sizeof(needle), "\n#%s = ", k->name);
		CHECK(strstr(buf, needle) != NULL);
		if (k->env != NULL) {
			snprintf(needle, sizeof(needle), "; environment: %s)\n",
			    k->env);
			CHECK(strstr(buf, needle) != NULL);
		}
	}
	CHECK(strstr(buf, "\n#listen = 127.0.0.1:8000\n") != NULL);
	CHECK(strstr(buf, "\n#system_database_url = \"\"\n") != NULL);
	CHECK(strstr(buf, "(default: 127.0.0.1:8000; reload: no)\n") != NULL);

	/* uncommenting every key line gives a file equal to the defaults */
	text = strdup(buf);
	for (p = text; (p = strstr(p, "\n#")) != NULL; p++) {
		for (k = dc_config_keys; k->name != NULL; k++)
			if (strncmp(p + 2, k->name, strlen(k->name)) == 0 &&
			    p[2 + strlen(k->name)] == ' ')
				p[1] = ' ';
	}
	CHECK(parse(&cfg, text, &r) == 0);
	CHECK_STR(r.all, "");
	CHECK(cfg.workers == expected_workers());
	CHECK_STR(cfg.llm_anthropic_base_url, "https://api.anthropic.com");
	CHECK(dc_config_validate(&cfg, collect, &r) == 0);
	dc_config_free(&cfg);
	free(text);
	free(buf);
}

static void
test_load(void)
{
	struct dc_config cfg;
	struct reports r;
	char *path;

	clear_env();
	memset(&r, 0, sizeof(r));
	CHECK(dc_config_load(&cfg, "/nonexistent/datachatd.conf", collect,
	    &r) == 1);
	CHECK(r.n == 1 && r.line[0] == 0);
	CHECK_STR(r.file[0], "/nonexistent/datachatd.conf");
	CHECK(strstr(r.msg[0], "cannot read") != NULL);
	dc_config_free(&cfg);

	path = write_tmp("listen = *:8080\nmax_rows = 0\nllm_timeout = 5\n"
	    "auth = off\n", 0644);
	setenv("LLM_TIMEOUT", "7", 1);
	memset(&r, 0, sizeof(r));
	CHECK(dc_config_load(&cfg, path, collect, &r) == 1);
	CHECK(r.n == 1 && r.line[0] == 2);
	CHECK_STR(r.file[0], path);
	CHECK_STR(cfg.source, path);
	CHECK(cfg.llm_timeout == 7);
	CHECK(cfg.listeners[0].addr.ss_family == AF_INET);
	dc_config_free(&cfg);

	memset(&r, 0, sizeof(r));
	CHECK(dc_config_load(&cfg, NULL, collect, &r) == 0);
	CHECK(cfg.source == NULL);
	dc_config_free(&cfg);
	unlink(path);
	free(path);
	clear_env();
}

/* user exists; what it writes after the privilege drop is its to write */
static void
test_paths(void)
{
	struct dc_config cfg;
	struct reports r;
	char dir[] = "/tmp/test_config_dir.XXXXXX", text[512];

	CHECK(mkdtemp(dir) != NULL);
	chmod(dir, 0700);
	/* root's private directory: nobody cannot remove a pidfile there */
	snprintf(text, sizeof(text), "user = nobody\npidfile = %s/d.pid\n"
	    "control_socket = /tmp/no-such-dir-here/ctl.sock\n"
	    "log = %s/d.log\nlisten = \"%s/api.sock\"\n", dir, dir, dir);
	CHECK(parse(&cfg, text, &r) == 0);
	CHECK(dc_config_validate(&cfg, collect, &r) == 4);
	CHECK(strstr(r.all, "pidfile: directory /tmp/test_config_dir.") != NULL);
	CHECK(strstr(r.all, "not writable by user nobody, which removes the "
	    "pidfile at exit") != NULL);
	CHECK(strstr(r.all, "control_socket: directory /tmp/no-such-dir-here "
	    "does not exist") != NULL);
	CHECK(strstr(r.all, "log: directory") != NULL);
	CHECK(strstr(r.all, "listen: directory") != NULL);
	dc_config_free(&cfg);

	/* once nobody may write there (or no user is set), it validates */
	chmod(dir, 0777);
	snprintf(text, sizeof(text), "user = nobody\npidfile = %s/d.pid\n"
	    "control_socket = %s/ctl.sock\n", dir, dir);
	CHECK(parse(&cfg, text, &r) == 0);
	CHECK(dc_config_validate(&cfg, collect, &r) == 0);
	dc_config_free(&cfg);

	CHECK(parse(&cfg, "user = no-such-user-here\n", &r) == 0);
	CHECK(dc_config_validate(&cfg, collect, &r) == 1);
	CHECK(strstr(r.all, "no such user") != NULL);
	dc_config_free(&cfg);
	CHECK(parse(&cfg, "pidfile = relative.pid\n", &r) == 0);
	CHECK(dc_config_validate(&cfg, collect, &r) == 1);
	CHECK(strstr(r.all, "not an absolute path") != NULL);
	dc_config_free(&cfg);
	rmdir(dir);
}

int
main(void)
{
	test_defaults();
	test_good_file();
	test_problems();
	test_quotes_comments();
	test_listen();
	test_listeners();
	test_paths();
	test_env();
	test_credentials();
	test_targets();
	test_workers();
	test_reload();
	test_access();
	test_table_and_sample();
	test_load();
	T_DONE();
}
