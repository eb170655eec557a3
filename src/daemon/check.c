/*
 * check.c - `datachatd -t` and `-T`: what a start would run into.
 *
 * dc_config_load() has already checked the syntax, every value, that
 * `user` exists and that the directories the daemon writes to after its
 * privilege drop are writable by it.  This file goes one step further,
 * without starting anything: it connects to the system database with a
 * short timeout (the daemon would start all the same and keep retrying,
 * so a failure here is a warning), counts the stored connections that do
 * not decrypt with the configured keys, and says whether the LLM
 * settings are complete, and loads the TLS certificate and key (a
 * failure there is fatal, as at start-up).  It makes no LLM call and
 * connects to no
 * target, and its last line says so.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "check.h"
#include "config.h"
#include "dc.h"
#include "fernet.h"
#include "llm.h"
#include "tls.h"
#include "util.h"

#define CHECK_CONNECT_TIMEOUT	"3"

static void
warn(int *warnings, const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "datachatd: warning: ");
	fprintf(stderr, fmt, a, b);
	fputc('\n', stderr);
	(*warnings)++;
}

/* Stored tokens that none of the configured keys decrypts. */
static void
check_tokens(PGconn *c, const struct dc_config *cfg, int *warnings)
{
	struct dc_fernet_ring ring;
	const char *why;
	PGresult *res;
	char *msg, n1[32], n2[32];
	size_t len;
	int i, n, bad = 0, idx;

	res = PQexec(c, "SELECT database_url_encrypted FROM "
	    "database_connections");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		/* a new system database: the daemon creates the table */
		printf("datachatd: system database: no database_connections "
		    "table yet (datachatd creates it at start)\n");
		PQclear(res);
		return;
	}
	n = PQntuples(res);
	memset(&ring, 0, sizeof(ring));
	if (n > 0 && cfg->credentials_key[0] == '\0') {
		snprintf(n1, sizeof(n1), "%d", n);
		warn(warnings, "system database: %s stored connection(s) but no "
		    "credentials key%s: none of them can be used", n1,
		    " (DATABASE_CREDENTIALS_KEY or credentials_key_file)");
		goto out;
	}
	if (n > 0 && dc_fernet_ring_parse(&ring, cfg->credentials_key, &why,
	    &idx) != DC_OK)
		goto out;	/* validation reported it */
	for (i = 0; i < n; i++) {
		if (dc_fernet_decrypt(&ring, PQgetvalue(res, i, 0), 0, 0, &msg,
		    &len) != DC_OK) {
			bad++;
			continue;
		}
		dc_explicit_bzero(msg, len);
		free(msg);
	}
	snprintf(n1, sizeof(n1), "%d", bad);
	snprintf(n2, sizeof(n2), "%d", n);
	if (bad > 0)
		warn(warnings, "system database: %s of %s stored connection(s) "
		    "do not decrypt with the configured credentials keys", n1,
		    n2);
	else
		printf("datachatd: system database: %d stored connection(s), "
		    "all decrypt with the credentials key\n", n);
out:
	dc_fernet_ring_wipe(&ring);
	PQclear(res);
}

static void
check_sysdb(const struct dc_config *cfg, int *warnings)
{
	const char *keys[] = { "dbname", "connect_timeout", "application_name",
	    NULL };
	const char *vals[4];
	char masked[512], ver[32];
	char *url;
	PGconn *c;

	if (cfg->system_database_url[0] == '\0') {
		printf("datachatd: system database: not configured "
		    "(SYSTEM_DATABASE_URL): the registry is disabled\n");
		return;
	}
	dc_url_mask(cfg->system_database_url, masked, sizeof(masked));
	if ((url = dc_url_libpq(cfg->system_database_url)) == NULL)
		return;
	vals[0] = url;
	vals[1] = CHECK_CONNECT_TIMEOUT;
	vals[2] = "datachatd-check";
	vals[3] = NULL;
	c = PQconnectdbParams(keys, vals, 1);
	dc_explicit_bzero(url, strlen(url));
	free(url);
	if (PQstatus(c) != CONNECTION_OK) {
		/* libpq's message names host and port, never the password */
		char *m = strdup(PQerrorMessage(c)), *p;

		/* one line: its hint lines joined */
		for (p = m; p != NULL && *p != '\0'; p++)
			if (*p == '\n' || *p == '\t')
				*p = p[1] == '\0' ? '\0' : ' ';
		warn(warnings, "system database %s: cannot connect: %s "
		    "(datachatd would start, serve no registry and retry)",
		    masked, m != NULL ? m : "out of memory");
		free(m);
		goto out;
	}
	snprintf(ver, sizeof(ver), "%d.%d", PQserverVersion(c) / 10000,
	    PQserverVersion(c) % 10000);
	printf("datachatd: system database %s: connected (PostgreSQL %s)\n",
	    masked, ver);
	check_tokens(c, cfg, warnings);
out:
	PQfinish(c);
}

static void
check_llm(const struct dc_config *cfg, int *warnings)
{
	const char *why = dc_llm_config_problem(cfg);

	if (cfg->llm_provider[0] == '\0') {
		printf("datachatd: LLM: none configured: catalog questions and "
		    "direct SQL work, other questions get 503\n");
		return;
	}
	if (why != NULL) {
		warn(warnings, "LLM: %s%s", why, "");
		return;
	}
	printf("datachatd: LLM: %s, settings complete (-t makes no LLM "
	    "call, so the key itself is not tried)\n", cfg->llm_provider);
}

/* The TLS listeners' certificate and key: a start would fail on them. */
static int
check_tls(const struct dc_config *cfg)
{
	struct ssl_ctx_st *ctx;
	char err[300];

	if (dc_tls_ctx_new(cfg, &ctx, err, sizeof(err)) != DC_OK) {
		fprintf(stderr, "datachatd: %s\n", err);
		return DC_EINVAL;
	}
	if (ctx != NULL)
		printf("datachatd: TLS: %s and %s load and match\n",
		    cfg->tls_cert_file, cfg->tls_key_file);
	dc_tls_ctx_free(ctx);
	return DC_OK;
}

int
dc_check_run(const struct dc_config *cfg, int dump)
{
	int warnings = 0;

	printf("datachatd: configuration %s: syntax and values OK%s%s\n",
	    cfg->source != NULL ? cfg->source : "(defaults)",
	    cfg->user[0] != '\0' ? "; its directories are writable by " : "",
	    cfg->user);
	if (check_tls(cfg) != DC_OK)
		return 1;
	check_sysdb(cfg, &warnings);
	check_llm(cfg, &warnings);
	printf("datachatd: not checked: that target databases accept "
	    "connections, that the LLM key is valid, that the sockets can "
	    "be bound\n");
	if (warnings > 0)
		printf("datachatd: %d warning(s); datachatd would start\n",
		    warnings);
	if (dump)
		dc_config_dump_effective(cfg, stdout);
	return 0;
}
