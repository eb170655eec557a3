/*
 * datachatctl.c - the admin command.
 *
 * The commands are the rows of dc_ctl_commands[] (control.h), the table
 * the master reads too: this file takes its usage text, its argument
 * counts and its dispatch from it.  Daemon commands go to the master's
 * control socket: one JSON line out, one JSON line back.  Registry commands go through the REST
 * API, so they get exactly the validation and write path of
 * POST /api/v1/databases; the master's `status` answer says where the
 * daemon listens.  Output is aligned columns for people, or the JSON the
 * daemon sent with --json.
 *
 * Exit status: 0 success, 1 the command failed, 2 usage, 3 the daemon
 * cannot be reached.
 */
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "config.h"
#include "control.h"
#include "dc.h"
#include "fernet.h"
#include "jsonw.h"

/* What the shipped configuration says (etc/datachatd.conf.in). */
#define DEFAULT_CONFIG	SYSCONFDIR "/datachatd/datachatd.conf"
#define DEFAULT_SOCKET	RUNSTATEDIR "/datachatd/datachatd.sock"
#define EXIT_FAIL	1
#define EXIT_USAGE	2
#define EXIT_DOWN	3

static const char *sock_path = DEFAULT_SOCKET;
static int json_out;

/*
 * Request bodies and arguments are built under the out-of-memory policy
 * (dc.h): any failed step marks jb, and a request is checked (built())
 * before it leaves; a command that ran out of memory says so and exits.
 */
static struct dc_jb jb;

static struct json_object *
built(struct json_object *o)
{
	if ((o = dc_jb_done(&jb, o)) == NULL) {
		fprintf(stderr, "datachatctl: out of memory\n");
		exit(EXIT_FAIL);
	}
	return o;
}

/* The command list comes from dc_ctl_commands[], as the master's does. */
static void
usage(FILE *fp)
{
	static const char *const heads[] = {
	    [DC_CTL_MASTER] = "daemon commands (control socket)",
	    [DC_CTL_REST] = "registry commands (REST API)",
	    [DC_CTL_LOCAL] = "other commands" };
	const struct dc_ctl_command *c;
	char line[160];
	int where, i;

	fprintf(fp,
	    "usage: datachatctl [-s socket] [-c config] [--json] command [args]\n"
	    "\n"
	    "  -s socket  the control socket (default: control_socket of the\n"
	    "             config, else " DEFAULT_SOCKET ")\n"
	    "  -c config  read control_socket from this datachatd.conf\n"
	    "             (default: " DEFAULT_CONFIG " if readable)\n"
	    "  --json     print JSON instead of columns\n");
	for (where = DC_CTL_MASTER; where <= DC_CTL_LOCAL; where++) {
		fprintf(fp, "\n%s:\n", heads[where]);
		for (i = 0; i < DC_CTL_NCMDS; i++) {
			c = &dc_ctl_commands[i];
			if (c->where != where)
				continue;
			snprintf(line, sizeof(line), "%s%s%s", c->name,
			    c->synopsis[0] != '\0' ? " " : "", c->synopsis);
			if (strlen(line) > 26)
				fprintf(fp, "  %s\n  %-26s  %s\n", line, "",
				    c->help);
			else
				fprintf(fp, "  %-26s  %s\n", line, c->help);
		}
	}
	fprintf(fp, "\nSee datachatctl(8).\n");
}

static void
quiet(void *arg, const char *file, int line, const char *msg)
{
}

/* Ask the master; exits on failure, returns the answer's data. */
static struct json_object *
call(const struct dc_ctl_command *cmd, struct json_object *args,
    struct json_object **holder)
{
	struct json_object *ans, *ok, *data = NULL, *err;
	char msg[512];
	int rc;

	if (args != NULL)
		args = built(args);
	rc = dc_control_call(sock_path, cmd->name, args, cmd->timeout_s, &ans,
	    msg, sizeof(msg));
	json_object_put(args);
	if (rc != DC_OK) {
		fprintf(stderr, "datachatctl: %s\n", msg);
		exit(rc == DC_EUNAVAIL ? EXIT_DOWN : EXIT_FAIL);
	}
	if (!json_object_object_get_ex(ans, "ok", &ok) ||
	    !json_object_get_boolean(ok)) {
		fprintf(stderr, "datachatctl: %s: %s\n", cmd->name,
		    json_object_object_get_ex(ans, "error", &err) ?
		    json_object_get_string(err) : "failed");
		json_object_put(ans);
		exit(EXIT_FAIL);
	}
	json_object_object_get_ex(ans, "data", &data);
	*holder = ans;
	return data;
}

/*
 * json-c's pretty printer, for a person to read.  It says when it ran
 * out of memory only by a NULL; a piece it failed to append is simply
 * missing (jsonw.c), which cannot be told from here.
 */
static void
print_json(struct json_object *o)
{
	const char *s = o == NULL ? "{}" : json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);

	if (s == NULL) {
		fprintf(stderr, "datachatctl: out of memory\n");
		exit(EXIT_FAIL);
	}
	printf("%s\n", s);
}

static const char *
field(struct json_object *o, const char *k)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, k, &v) || v == NULL)
		return "-";
	return json_object_get_string(v);
}

/* Print an array of objects as aligned columns (cols NULL-terminated). */
static void
print_table(struct json_object *arr, const char *const *cols)
{
	size_t w[16] = { 0 }, n = json_object_array_length(arr), i;
	int c, ncols;

	for (ncols = 0; cols[ncols] != NULL; ncols++)
		assert(ncols < (int)DC_ARRAY_SIZE(w));

	for (c = 0; c < ncols; c++)
		w[c] = strlen(cols[c]);
	for (i = 0; i < n; i++)
		for (c = 0; c < ncols; c++) {
			size_t l = strlen(field(json_object_array_get_idx(arr, i),
			    cols[c]));
			if (l > w[c])
				w[c] = l;
		}
	for (c = 0; c < ncols; c++)
		printf("%-*s%s", (int)w[c], cols[c], c + 1 < ncols ? "  " : "\n");
	for (i = 0; i < n; i++)
		for (c = 0; c < ncols; c++)
			printf("%-*s%s", (int)w[c],
			    field(json_object_array_get_idx(arr, i), cols[c]),
			    c + 1 < ncols ? "  " : "\n");
}

static void
print_object(struct json_object *o, const char *prefix)
{
	struct json_object *e;
	size_t i;

	json_object_object_foreach(o, k, v) {
		char p[128];

		if (v != NULL && json_object_is_type(v, json_type_object)) {
			snprintf(p, sizeof(p), "%s%s.", prefix, k);
			print_object(v, p);
			continue;
		}
		/* a list of objects: one line per field, numbered */
		if (v != NULL && json_object_is_type(v, json_type_array) &&
		    json_object_array_length(v) > 0 &&
		    json_object_is_type(json_object_array_get_idx(v, 0),
		    json_type_object)) {
			for (i = 0; i < json_object_array_length(v); i++) {
				e = json_object_array_get_idx(v, i);
				snprintf(p, sizeof(p), "%s%s[%zu].", prefix, k,
				    i);
				if (json_object_is_type(e, json_type_object))
					print_object(e, p);
			}
			continue;
		}
		printf("%s%s: %s\n", prefix, k, v == NULL ? "-" :
		    json_object_get_string(v));
	}
}

/* --- registry over HTTP --- */

struct body {
	char	*buf;
	size_t	 len;
};

static size_t
collect(char *p, size_t sz, size_t n, void *arg)
{
	struct body *b = arg;
	char *nb = realloc(b->buf, b->len + sz * n + 1);

	if (nb == NULL)
		return 0;
	b->buf = nb;
	memcpy(b->buf + b->len, p, sz * n);
	b->len += sz * n;
	b->buf[b->len] = '\0';
	return sz * n;
}

/* The REST API over a unix listener: curl connects to this path. */
static char unix_path[DC_LISTEN_TEXT_MAX];

/*
 * Where to reach the REST API: the first loopback listener the master
 * names in its status, else another TCP one (a wildcard address reached
 * over loopback), else a unix one.
 */
static char *
api_base(void)
{
	static const int order[] = { DC_LISTEN_LOOPBACK, DC_LISTEN_TCP,
	    DC_LISTEN_UNIX };
	struct json_object *holder, *st, *lis, *l = NULL;
	const char *addr = NULL, *port;
	char *base = NULL, host[300];
	size_t o, i, n;

	st = call(&dc_ctl_commands[DC_CTL_STATUS], NULL, &holder);
	if (json_object_object_get_ex(st, "listeners", &lis) &&
	    json_object_is_type(lis, json_type_array)) {
		n = json_object_array_length(lis);
		for (o = 0; o < DC_ARRAY_SIZE(order) && addr == NULL; o++)
			for (i = 0; i < n && addr == NULL; i++) {
				l = json_object_array_get_idx(lis, i);
				if (strcmp(field(l, "kind"), dc_listen_kind_name(
				    order[o])) == 0)
					addr = field(l, "address");
			}
	}
	if (addr != NULL && strcmp(field(l, "kind"), "unix") == 0) {
		dc_strlcpy(unix_path, strncmp(addr, "unix:", 5) == 0 ?
		    addr + 5 : addr, sizeof(unix_path));
		if (asprintf(&base, "http://localhost/api/v1/databases") < 0)
			exit(EXIT_FAIL);
		json_object_put(holder);
		return base;
	}
	if (addr == NULL || (port = strrchr(addr, ':')) == NULL) {
		fprintf(stderr, "datachatctl: cannot tell where datachatd "
		    "listens\n");
		exit(EXIT_FAIL);
	}
	snprintf(host, sizeof(host), "%.*s", (int)(port - addr), addr);
	if (strcmp(host, "*") == 0 || strcmp(host, "0.0.0.0") == 0)
		strcpy(host, "127.0.0.1");
	else if (strcmp(host, "[::]") == 0)
		strcpy(host, "[::1]");
	if (asprintf(&base, "http://%s%s/api/v1/databases", host, port) < 0)
		exit(EXIT_FAIL);
	json_object_put(holder);
	return base;
}

/*
 * A short-lived admin token from the master for the REST calls below:
 * whoever may use the control socket is the operator, with or without
 * auth = required.
 */
static char *
ctl_token(void)
{
	struct json_object *holder, *args = json_object_new_array(), *data;
	char *hdr = NULL;

	dc_jb_push(&jb, args, json_object_new_string("ctl"));
	data = call(&dc_ctl_commands[DC_CTL_TOKEN], args, &holder);
	if (asprintf(&hdr, "Authorization: Bearer %s", field(data, "token")) <
	    0)
		exit(EXIT_FAIL);
	json_object_put(holder);
	return hdr;
}

/* One REST call; prints the error detail and exits on failure. */
static struct json_object *
api(const char *method, const char *path, struct json_object *req)
{
	struct curl_slist *hdrs = NULL;
	struct json_object *res = NULL, *detail;
	struct body b = { NULL, 0 };
	char *base = api_base(), *url, *auth = ctl_token(), *text = NULL;
	size_t len = 0;
	long status = 0;
	CURL *c;
	CURLcode cc;

	if (asprintf(&url, "%s%s", base, path) < 0)
		exit(EXIT_FAIL);
	free(base);
	c = curl_easy_init();
	if (c == NULL)
		exit(EXIT_FAIL);
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, auth);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	if (unix_path[0] != '\0')
		curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, unix_path);
	if (req != NULL) {
		if ((text = dc_jw_text(built(req), &len)) == NULL) {
			fprintf(stderr, "datachatctl: out of memory\n");
			exit(EXIT_FAIL);
		}
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
	}
	cc = curl_easy_perform(c);
	if (text != NULL) {
		/* a new connection's URL, password included */
		dc_explicit_bzero(text, len);
		free(text);
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	free(url);
	dc_explicit_bzero(auth, strlen(auth));
	free(auth);
	if (cc != CURLE_OK) {
		fprintf(stderr, "datachatctl: cannot reach the REST API: %s\n",
		    curl_easy_strerror(cc));
		exit(EXIT_DOWN);
	}
	if (b.buf != NULL)
		res = json_tokener_parse(b.buf);
	free(b.buf);
	if (status >= 400) {
		fprintf(stderr, "datachatctl: %s (HTTP %ld)\n",
		    res != NULL && json_object_object_get_ex(res, "detail",
		    &detail) ? json_object_get_string(detail) : "failed",
		    status);
		json_object_put(res);
		exit(EXIT_FAIL);
	}
	return res;
}

static char *
read_url_stdin(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, stdin);

	if (n <= 0) {
		fprintf(stderr, "datachatctl: add: no URL on standard input\n");
		exit(EXIT_USAGE);
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	return line;
}

static int
cmd_add(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "type", required_argument, NULL, 't' },
		{ "url", required_argument, NULL, 'u' },
		{ "default", no_argument, NULL, 'd' },
		{ "tag", required_argument, NULL, 'g' },
		{ "description", required_argument, NULL, 'D' },
		{ NULL, 0, NULL, 0 }
	};
	struct json_object *req = json_object_new_object(), *tags, *res;
	char *url = NULL;
	int ch, have_name = 0, have_type = 0;

	tags = json_object_new_array();
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'n':
			dc_jb_add(&jb, req, "name",
			    json_object_new_string(optarg));
			have_name = 1;
			break;
		case 't':
			dc_jb_add(&jb, req, "database_type",
			    json_object_new_string(optarg));
			have_type = 1;
			break;
		case 'u':
			free(url);
			url = strcmp(optarg, "-") == 0 ? read_url_stdin() :
			    strdup(optarg);
			break;
		case 'd':
			dc_jb_add(&jb, req, "is_default",
			    json_object_new_boolean(1));
			break;
		case 'g':
			dc_jb_push(&jb, tags,
			    json_object_new_string(optarg));
			break;
		case 'D':
			dc_jb_add(&jb, req, "description",
			    json_object_new_string(optarg));
			break;
		default:
			usage(stderr);
			goto usage;
		}
	}
	if (!have_name || !have_type || url == NULL || optind != argc) {
		fprintf(stderr, "datachatctl: add needs --name, --type and "
		    "--url (use --url - to read it from standard input)\n");
		goto usage;
	}
	dc_jb_add(&jb, req, "database_url", json_object_new_string(url));
	dc_explicit_bzero(url, strlen(url));
	free(url);
	dc_jb_add(&jb, req, "tags", tags);
	res = api("POST", "", req);
	json_object_put(req);
	if (json_out)
		print_json(res);
	else
		printf("added %s\n", field(res, "connection_id"));
	json_object_put(res);
	return 0;
usage:
	if (url != NULL) {
		dc_explicit_bzero(url, strlen(url));
		free(url);
	}
	json_object_put(tags);
	json_object_put(req);
	return EXIT_USAGE;
}

static int
cmd_registry(const struct dc_ctl_command *cmd, int argc, char **argv)
{
	struct json_object *req = NULL, *res;
	char path[128];

	if (cmd->id == DC_CTL_ADD)
		return cmd_add(argc, argv);
	if (cmd->id == DC_CTL_LIST) {
		res = api("GET", "", NULL);
		if (json_out)
			print_json(res);
		else
			print_table(res, cmd->columns);
		json_object_put(res);
		return 0;
	}
	if (strlen(argv[1]) > 64)
		goto usage;
	switch (cmd->id) {
	case DC_CTL_REMOVE:
		snprintf(path, sizeof(path), "/%s", argv[1]);
		res = api("DELETE", path, NULL);
		printf("removed %s\n", argv[1]);
		break;
	case DC_CTL_SET_DEFAULT:
		snprintf(path, sizeof(path), "/%s/default", argv[1]);
		req = json_object_new_object();
		dc_jb_add(&jb, req, "is_default",
		    json_object_new_boolean(1));
		res = api("PUT", path, req);
		printf("default is now %s\n", argv[1]);
		break;
	case DC_CTL_RENAME:
		snprintf(path, sizeof(path), "/%s", argv[1]);
		req = json_object_new_object();
		dc_jb_add(&jb, req, "name",
		    json_object_new_string(argv[2]));
		res = api("PATCH", path, req);
		printf("renamed %s to %s\n", argv[1], argv[2]);
		break;
	default:
		assert(!"registry command without a case");
		goto usage;
	}
	json_object_put(req);
	json_object_put(res);
	return 0;
usage:
	fprintf(stderr, "datachatctl: bad arguments for %s (see "
	    "datachatctl -h)\n", cmd->name);
	return EXIT_USAGE;
}

/* reload: what it did, and loudly what it could not apply. */
static void
print_reload(struct json_object *data)
{
	struct json_object *keys, *v;
	size_t i, n = 0;

	if (json_object_object_get_ex(data, "restart_needed", &keys) &&
	    json_object_is_type(keys, json_type_array))
		n = json_object_array_length(keys);
	for (i = 0; i < n; i++) {
		v = json_object_array_get_idx(keys, i);
		fprintf(stderr, "datachatctl: warning: %s changed, but only a "
		    "restart applies it\n", json_object_get_string(v));
	}
	json_object_object_del(data, "restart_needed");
	if (json_object_object_length(data) > 0)
		print_object(data, "");
	printf("reloaded%s\n", n > 0 ? " (see the warnings)" : "");
}

static int
cmd_daemon(const struct dc_ctl_command *cmd, int argc, char **argv)
{
	struct json_object *args = json_object_new_array(), *holder, *data;
	int i;

	for (i = 1; i < argc; i++)
		dc_jb_push(&jb, args, json_object_new_string(argv[i]));
	data = call(cmd, args, &holder);
	if (json_out)
		print_json(data);
	else if (cmd->id == DC_CTL_CONFIG)
		fputs(field(data, "text"), stdout);
	else if (cmd->id == DC_CTL_RELOAD)
		print_reload(data);
	else if (cmd->id == DC_CTL_TOKEN && data != NULL &&
	    json_object_object_get_ex(data, "token", NULL)) {
		/* token add: the token alone on stdout, for TOKEN=$(...) */
		printf("%s\n", field(data, "token"));
		fprintf(stderr, "token %s (role %s, expires %s) is shown only "
		    "now: keep it safe\n", field(data, "name"),
		    field(data, "role"), field(data, "expires"));
	}
	else if (cmd->columns != NULL && data != NULL &&
	    json_object_is_type(data, json_type_array))
		print_table(data, cmd->columns);
	else if (data != NULL && json_object_is_type(data, json_type_object))
		print_object(data, "");
	else
		printf("ok\n");
	json_object_put(holder);
	return 0;
}

static int
cmd_genkey(void)
{
	char key[DC_FERNET_KEY_B64_LEN + 1];

	if (dc_fernet_init() != DC_OK || dc_fernet_genkey(key) != DC_OK) {
		fprintf(stderr, "datachatctl: cannot generate a key\n");
		return EXIT_FAIL;
	}
	printf("%s\n", key);
	dc_explicit_bzero(key, sizeof(key));
	return 0;
}

/* -c: the control socket named by a datachatd.conf. */
static int
socket_from_config(const char *config)
{
	struct dc_config cfg;
	char *text = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *fp;

	if ((fp = fopen(config, "r")) == NULL) {
		fprintf(stderr, "datachatctl: %s: %s\n", config,
		    strerror(errno));
		return EXIT_USAGE;
	}
	memset(&cfg, 0, sizeof(cfg));
	dc_config_defaults(&cfg);
	n = getdelim(&text, &cap, '\0', fp);
	fclose(fp);
	if (n > 0)
		dc_config_parse_text(&cfg, config, text, quiet, NULL);
	free(text);
	if (cfg.control_socket != NULL && cfg.control_socket[0] != '\0')
		sock_path = strdup(cfg.control_socket);
	dc_config_free(&cfg);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const struct dc_ctl_command *cmd;
	const char *config = NULL;
	char usage_line[160];
	int ch, nargs, rc, sock_given = 0;

	/* stop at the command: its own options follow it */
	while ((ch = getopt_long(argc, argv, "+s:c:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 's':
			sock_path = optarg;
			sock_given = 1;
			break;
		case 'c':
			config = optarg;
			break;
		case 'j':
			json_out = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("datachatctl %s\n", DC_VERSION);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd = dc_ctl_find(argv[optind]);
	if (cmd == NULL) {
		fprintf(stderr, "datachatctl: unknown command \"%s\" (see "
		    "datachatctl -h)\n", argv[optind]);
		return EXIT_USAGE;
	}
	nargs = argc - optind - 1;
	/* add parses its own options; the master checks the values */
	if (cmd->id != DC_CTL_ADD && dc_ctl_check_args(cmd, nargs, usage_line,
	    sizeof(usage_line)) != NULL) {
		fprintf(stderr, "datachatctl: %s\n", usage_line);
		return EXIT_USAGE;
	}
	/* -s wins; else -c, else the installed config when it can be read */
	if (!sock_given && config == NULL && access(DEFAULT_CONFIG, R_OK) == 0)
		config = DEFAULT_CONFIG;
	if (!sock_given && config != NULL &&
	    (rc = socket_from_config(config)) != 0)
		return rc;
	switch (cmd->where) {
	case DC_CTL_LOCAL:
		assert(cmd->id == DC_CTL_GENKEY);
		return cmd_genkey();
	case DC_CTL_MASTER:
		return cmd_daemon(cmd, argc - optind, argv + optind);
	case DC_CTL_REST:
		curl_global_init(CURL_GLOBAL_DEFAULT);
		rc = cmd_registry(cmd, argc - optind, argv + optind);
		curl_global_cleanup();
		return rc;
	}
	assert(!"command without a place to run");
	return EXIT_FAIL;
}
