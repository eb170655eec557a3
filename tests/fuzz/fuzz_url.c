/*
 * fuzz_url.c - target URLs: masking (util.c), the password scrubber, and
 * the target URL policy (pgurl.c) with and without target_networks.
 *
 * Invariants: as libpq reads a masked PostgreSQL URL, no password-like
 * parameter holds anything but "***"; a password libpq finds in the
 * input (four bytes or more) is never in the masked form after its
 * scheme, nor in a
 * policy refusal; the scrubber's output is never longer than its input
 * allows; parameters handed to libpq name no file of the daemon.
 */
#include <string.h>

#include <libpq-fe.h>

#include "fuzz.h"
#include "dc.h"
#include "pgurl.h"
#include "util.h"

static struct dc_netlist *nets;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char	 why[128];

	FUZZ_ASSERT(dc_netlist_parse("10.0.0.0/8, 2001:db8::/32, "
	    "db.example.com, .internal.example", &nets, why, sizeof(why)) ==
	    DC_OK);
	return 0;
}

/* libpq's value of key in url (a postgresql:// one), or NULL. */
static char *
pg_value(const char *url, const char *key)
{
	PQconninfoOption *opts, *o;
	char		*err = NULL, *u, *v = NULL;
	const char	*type = dc_url_type(url);

	if (type == NULL || strcmp(type, "postgresql") != 0 ||
	    (u = dc_url_libpq(url)) == NULL)
		return NULL;
	opts = PQconninfoParse(u, &err);
	PQfreemem(err);
	free(u);
	for (o = opts; o != NULL && o->keyword != NULL; o++)
		if (strcmp(o->keyword, key) == 0 && o->val != NULL)
			v = strdup(o->val);
	PQconninfoFree(opts);
	return v;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const pwkeys[] = { "password", "sslpassword" };
	struct dc_pgurl_policy pol = { 0, "/etc/ssl/certs/ca.pem", NULL };
	struct dc_pgparams p;
	char		*url = fuzz_cstring(data, size), *pw, *m;
	char		 masked[4096], why[512], scrubbed[300];
	size_t		 i;
	int		 pass, rc;
	const char	*v;

	dc_url_mask(url, masked, sizeof(masked));
	for (i = 0; i < DC_ARRAY_SIZE(pwkeys); i++) {
		if ((m = pg_value(masked, pwkeys[i])) != NULL) {
			FUZZ_ASSERT(strcmp(m, "***") == 0);
			free(m);
		}
		/* after the scheme: "stgres" is in "postgresql" */
		if ((pw = pg_value(url, pwkeys[i])) != NULL) {
			if (strlen(pw) >= 4 && strlen(masked) + 1 <
			    sizeof(masked) && (m = strstr(masked, "://")) !=
			    NULL)
				FUZZ_ASSERT(strstr(m + 3, pw) == NULL);
			free(pw);
		}
	}
	dc_scrub_password(url, url, scrubbed, sizeof(scrubbed));
	FUZZ_ASSERT(strlen(scrubbed) < sizeof(scrubbed));
	for (pass = 0; pass < 2; pass++) {
		pol.networks = pass ? nets : NULL;
		pol.allow_sockets = pass;
		rc = dc_pgurl_params(url, &pol, &p, why, sizeof(why));
		FUZZ_ASSERT(rc == DC_OK || rc == DC_EINVAL || rc == DC_ENOMEM);
		if (rc == DC_EINVAL) {
			FUZZ_ASSERT(why[0] != '\0');
			if ((pw = pg_value(url, "password")) != NULL) {
				if (strlen(pw) >= 6)
					FUZZ_ASSERT(strstr(why, pw) == NULL);
				free(pw);
			}
		}
		if (rc == DC_OK) {
			FUZZ_ASSERT(p.keys[p.n] == NULL);
			FUZZ_ASSERT((v = dc_pgparams_get(&p, "passfile")) !=
			    NULL && strcmp(v, "/dev/null") == 0);
			FUZZ_ASSERT(dc_pgparams_get(&p, "service") == NULL);
			FUZZ_ASSERT(dc_pgparams_get(&p, "options") == NULL);
		}
		dc_pgparams_free(&p);
	}
	free(url);
	return 0;
}
