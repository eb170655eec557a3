/*
 * test_pgurl.c - unit tests for the target URL policy (pgurl.c): every
 * refused parameter, however it is spelled or encoded; socket forms;
 * what libpq is given instead of the daemon's files; target_networks;
 * and reasons that never hold a password.
 */
#include <stdlib.h>
#include <string.h>

#include "t.h"
#include "dc.h"
#include "pgurl.h"

static struct dc_pgurl_policy pol = { 0, "/etc/ssl/certs/ca.pem", NULL };

static void
ok_at(int line, const char *url)
{
	char	 why[512];
	int	 rc = dc_pgurl_check(url, &pol, why, sizeof(why));

	CHECK(rc == DC_OK);
	if (rc != DC_OK)
		fprintf(stderr, "  line %d: [%s]: %s\n", line, url, why);
}

static void
refused_at(int line, const char *url, const char *want, const char *secret)
{
	char	 why[512];
	int	 rc = dc_pgurl_check(url, &pol, why, sizeof(why));

	CHECK(rc == DC_EINVAL);
	CHECK(strstr(why, want) != NULL);
	if (secret != NULL)
		CHECK(strstr(why, secret) == NULL);
	if (rc != DC_EINVAL || strstr(why, want) == NULL ||
	    (secret != NULL && strstr(why, secret) != NULL))
		fprintf(stderr, "  line %d: [%s]: %s\n", line, url, why);
}

#define OK(url)			ok_at(__LINE__, url)
#define REFUSED(url, w, s)	refused_at(__LINE__, url, w, s)

static void
test_allowed(void)
{
	OK("postgresql://u:pw@db.example.com:5432/app");
	OK("postgres://u@10.0.0.1/app?sslmode=require&connect_timeout=5");
	OK("postgresql+asyncpg://u:pw@h/d?target_session_attrs=read-write");
	OK("postgresql://u:pw@[::1]:5433/d?keepalives=1&keepalives_idle=5&"
	    "keepalives_interval=2&keepalives_count=3");
	OK("postgresql://h1:5432,h2:5433/d?user=u&password=x");
	OK("postgresql://u@db.example.com/d?hostaddr=192.0.2.1");
	OK("postgresql:///d?hostaddr=192.0.2.1&user=u");
	OK("postgresql://u:pw@h/d?sslmode=verify-full");
}

static void
test_refused_params(void)
{
	static const char *const keys[] = {
		"passfile", "service", "servicefile", "sslkey", "sslcert",
		"sslrootcert", "sslcrl", "sslcrldir", "requirepeer", "options",
		"application_name", "sslpassword", "client_encoding",
		"gssencmode", "krbsrvname", "replication", "channel_binding",
		"fallback_application_name", "tcp_user_timeout", "sslsni",
		"ssl_min_protocol_version", "sslcompression", "gsslib",
	};
	char	 url[256];
	size_t	 i;

	for (i = 0; i < DC_ARRAY_SIZE(keys); i++) {
		snprintf(url, sizeof(url), "postgresql://u:s3cr3t@h/d?%s=1",
		    keys[i]);
		REFUSED(url, keys[i], "s3cr3t");
	}
	REFUSED("postgresql://u:s3cr3t@h/d?passfile=/root/.pgpass",
	    "parameter passfile is not allowed", "s3cr3t");
	REFUSED("postgresql://u:pw@h/d?options=-c%20role%3Dpostgres",
	    "parameter options is not allowed", NULL);
	/* encoded names are what libpq decodes them to */
	REFUSED("postgresql://u:pw@h/d?pass%66ile=/root/.pgpass",
	    "parameter passfile is not allowed", "/root");
	REFUSED("postgresql://u:pw@h/d?%73slkey=/etc/shadow",
	    "parameter sslkey is not allowed", "/etc/shadow");
	REFUSED("postgresql://u:pw@h/d?sslrootcert=%2Fetc%2Fshadow",
	    "parameter sslrootcert is not allowed", "shadow");
	REFUSED("postgresql://u:pw@h/d?requirepeer=postgres",
	    "parameter requirepeer is not allowed", NULL);
	/* unknown to libpq: its own refusal, without the URL's secrets */
	REFUSED("postgresql://u:hunter22@h/d?bogus=1", "not a valid "
	    "PostgreSQL URL", "hunter22");
	REFUSED("postgresql://u:pw%zzhunter22@h/d", "not a valid PostgreSQL "
	    "URL", "hunter22");
	REFUSED("mysql://u:pw@h/d", "not a postgresql:// URL", NULL);
	REFUSED("host=h dbname=d", "not a postgresql:// URL", NULL);
	REFUSED(NULL, "not a postgresql:// URL", NULL);
}

static void
test_sockets(void)
{
	REFUSED("postgresql://postgres@/datachat?host=/var/run/postgresql",
	    "unix socket (host /var/run/postgresql)", NULL);
	REFUSED("postgresql:///datachat", "names no host", NULL);
	REFUSED("postgresql://u@%2Ftmp/d", "unix socket (host /tmp)", NULL);
	REFUSED("postgresql://u@/d?host=%2Ftmp", "unix socket", NULL);
	REFUSED("postgresql://u@h1,/d", "names no host", NULL);
	REFUSED("postgresql://u@/d?host=@abstract", "unix socket", NULL);
	REFUSED("postgresql://u@h/d?host=", "names no host", NULL);
	pol.allow_sockets = 1;
	OK("postgresql://postgres@/datachat?host=/var/run/postgresql");
	OK("postgresql:///datachat");
	pol.allow_sockets = 0;
}

static void
test_params_given_to_libpq(void)
{
	struct dc_pgparams p;
	char	 why[256];

	CHECK(dc_pgurl_params("postgresql://u:pw@h:6432/d?sslmode=require",
	    &pol, &p, why, sizeof(why)) == DC_OK);
	CHECK_STR(dc_pgparams_get(&p, "host"), "h");
	CHECK_STR(dc_pgparams_get(&p, "port"), "6432");
	CHECK_STR(dc_pgparams_get(&p, "user"), "u");
	CHECK_STR(dc_pgparams_get(&p, "password"), "pw");
	CHECK_STR(dc_pgparams_get(&p, "dbname"), "d");
	CHECK_STR(dc_pgparams_get(&p, "passfile"), "/dev/null");
	CHECK_STR(dc_pgparams_get(&p, "sslcert"), "/dev/null/none");
	CHECK_STR(dc_pgparams_get(&p, "sslkey"), "/dev/null/none");
	/* require: no root certificate, so no verification either */
	CHECK_STR(dc_pgparams_get(&p, "sslrootcert"), "/dev/null/none");
	CHECK(p.resolve == 0);
	CHECK(p.keys[p.n] == NULL && p.vals[p.n] == NULL);
	CHECK(dc_pgparams_set(&p, "hostaddr", "192.0.2.7") == DC_OK);
	CHECK(dc_pgparams_set(&p, "application_name", "datachatd") == DC_OK);
	CHECK(dc_pgparams_set(&p, "hostaddr", "192.0.2.8") == DC_OK);
	CHECK_STR(dc_pgparams_get(&p, "hostaddr"), "192.0.2.8");
	dc_pgparams_free(&p);
	CHECK(dc_pgurl_params("postgresql://u@h/d?sslmode=verify-ca", &pol,
	    &p, why, sizeof(why)) == DC_OK);
	CHECK_STR(dc_pgparams_get(&p, "sslrootcert"), "/etc/ssl/certs/ca.pem");
	dc_pgparams_free(&p);
	/* a dbname that looks like a connection string stays a name */
	CHECK(dc_pgurl_params("postgresql://u@h/host%3D%2Ftmp", &pol, &p,
	    why, sizeof(why)) == DC_OK);
	CHECK_STR(dc_pgparams_get(&p, "dbname"), "host=/tmp");
	dc_pgparams_free(&p);
}

static void
test_networks(void)
{
	struct dc_netlist *nl;
	char	 why[256];

	CHECK(dc_netlist_parse("", &nl, why, sizeof(why)) == DC_OK);
	CHECK(nl == NULL);
	CHECK(dc_netlist_parse("10.0.0.0/8 300.1.1.1", &nl, why,
	    sizeof(why)) == DC_EINVAL);
	CHECK(strstr(why, "300.1.1.1") != NULL);
	CHECK(dc_netlist_parse("10.0.0.0/33", &nl, why, sizeof(why)) ==
	    DC_EINVAL);
	CHECK(dc_netlist_parse("db_#1", &nl, why, sizeof(why)) == DC_EINVAL);
	CHECK(dc_netlist_parse("10.0.0.0/8, 192.0.2.5 2001:db8::/32,"
	    "DB.Example.com, .internal.example.", &nl, why, sizeof(why)) ==
	    DC_OK);
	CHECK(dc_netlist_addr(nl, "10.1.2.3") == 1);
	CHECK(dc_netlist_addr(nl, "11.1.2.3") == 0);
	CHECK(dc_netlist_addr(nl, "192.0.2.5") == 1);
	CHECK(dc_netlist_addr(nl, "192.0.2.6") == 0);
	CHECK(dc_netlist_addr(nl, "2001:db8::1") == 1);
	CHECK(dc_netlist_addr(nl, "2001:db9::1") == 0);
	CHECK(dc_netlist_addr(nl, "::ffff:127.0.0.1") == 0);
	CHECK(dc_netlist_addr(nl, "db.example.com") == 0);
	CHECK(dc_netlist_host(nl, "db.example.com") == 1);
	CHECK(dc_netlist_host(nl, "DB.EXAMPLE.COM.") == 1);
	CHECK(dc_netlist_host(nl, "internal.example") == 1);
	CHECK(dc_netlist_host(nl, "a.b.internal.example") == 1);
	CHECK(dc_netlist_host(nl, "xinternal.example") == -1);
	CHECK(dc_netlist_host(nl, "127.0.0.1") == 0);
	CHECK(dc_netlist_host(nl, "10.9.9.9") == 1);
	CHECK(dc_netlist_host(nl, "other.example.com") == -1);
	pol.networks = nl;
	OK("postgresql://u@10.0.0.5/d");
	OK("postgresql://u@db.example.com/d");
	OK("postgresql://u@evil.test/d?hostaddr=10.0.0.9");
	REFUSED("postgresql://u:pw@127.0.0.1/d", "does not allow host "
	    "127.0.0.1", "pw@");
	REFUSED("postgresql://u@%3A%3A1/d", "does not allow host ::1", NULL);
	REFUSED("postgresql://u@[::1]/d", "does not allow host ::1", NULL);
	REFUSED("postgresql://u@h/d?hostaddr=127.0.0.1", "does not allow "
	    "hostaddr 127.0.0.1", NULL);
	REFUSED("postgresql://u@a.test,b.test/d", "one host name", NULL);
	{
		struct dc_pgparams p;

		CHECK(dc_pgurl_params("postgresql://u@other.test/d", &pol, &p,
		    why, sizeof(why)) == DC_OK);
		CHECK(p.resolve == 1);
		dc_pgparams_free(&p);
	}
	pol.networks = NULL;
	dc_netlist_free(nl);
	/* names only: a name not listed is refused outright */
	CHECK(dc_netlist_parse("db.example.com", &nl, why, sizeof(why)) ==
	    DC_OK);
	CHECK(dc_netlist_host(nl, "other.example.com") == 0);
	dc_netlist_free(nl);
}

int
main(void)
{
	test_allowed();
	test_refused_params();
	test_sockets();
	test_params_given_to_libpq();
	test_networks();
	T_DONE();
}
