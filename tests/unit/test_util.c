/*
 * test_util.c - unit tests for src/util.c: UUID parsing and formatting,
 * URL masking (the password must never come out), database type from the
 * scheme, libpq URLs and ISO 8601 timestamps as Python prints them.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc.h"
#include "util.h"
#include "t.h"

static void
test_uuid(void)
{
	static const char *bad[] = {
		"",
		"123e4567-e89b-12d3-a456-42661417400",		/* 35 */
		"123e4567-e89b-12d3-a456-4266141740000",	/* 37 */
		"123e4567-e89b-12d3-a456-42661417400g",		/* bad char */
		"123e4567-e89b-12d3-a456-42661417400 ",
		"123e4567xe89b-12d3-a456-426614174000",		/* no dash */
		"123e4567e89b12d3a456426614174000",		/* no dashes */
		"123e4567-e89b12d3-a456-4266141740000",		/* dash moved */
		"{123e4567-e89b-12d3-a456-426614174000}",	/* braces */
		"{23e4567-e89b-12d3-a456-42661417400}",		/* braces, 36 */
		"urn:uuid:123e4567-e89b-12d3-a456-426614174000",
		"+23e4567-e89b-12d3-a456-426614174000",
		"123e4567-e89b-12d3-a456-42661417400\n",
	};
	uint8_t id[16], id2[16], zero[16];
	char s[DC_UUID_STR_LEN + 1];
	size_t i;
	int v4 = 1;

	CHECK(dc_uuid_parse("123e4567-e89b-12d3-a456-426614174000", id) == 0);
	CHECK(id[0] == 0x12 && id[1] == 0x3e && id[15] == 0x00);
	dc_uuid_format(id, s);
	CHECK_STR(s, "123e4567-e89b-12d3-a456-426614174000");

	/* Any case in, lower case out. */
	CHECK(dc_uuid_parse("ABCDEF01-2345-6789-ABcd-EF0123456789", id) == 0);
	dc_uuid_format(id, s);
	CHECK_STR(s, "abcdef01-2345-6789-abcd-ef0123456789");
	CHECK(dc_uuid_parse(s, id2) == 0);
	CHECK(memcmp(id, id2, 16) == 0);

	CHECK(dc_uuid_parse(DC_ENV_ENTRY_ID, id) == 0);
	dc_uuid_format(id, s);
	CHECK_STR(s, DC_ENV_ENTRY_ID);
	CHECK(!dc_uuid_is_zero(id));

	memset(zero, 0, sizeof(zero));
	CHECK(dc_uuid_is_zero(zero));
	dc_uuid_format(zero, s);
	CHECK_STR(s, "00000000-0000-0000-0000-000000000000");

	/* A rejected string leaves out alone. */
	for (i = 0; i < DC_ARRAY_SIZE(bad); i++) {
		memset(id, 0xaa, sizeof(id));
		CHECK(dc_uuid_parse(bad[i], id) == DC_EINVAL);
		CHECK(id[0] == 0xaa && id[15] == 0xaa);
		if (dc_uuid_parse(bad[i], id) != DC_EINVAL)
			fprintf(stderr, "accepted: \"%s\"\n", bad[i]);
	}
	CHECK(dc_uuid_parse(NULL, id) == DC_EINVAL);

	/* Version 4, RFC 4122 variant, round trips, two differ. */
	for (i = 0; i < 64; i++) {
		CHECK(dc_uuid_generate(id) == 0);
		v4 &= (id[6] >> 4) == 4 && (id[8] & 0xc0) == 0x80;
		dc_uuid_format(id, s);
		v4 &= s[14] == '4' && strchr("89ab", s[19]) != NULL;
		v4 &= dc_uuid_parse(s, id2) == 0 && memcmp(id, id2, 16) == 0;
	}
	CHECK(v4);
	CHECK(dc_uuid_generate(id2) == 0);
	CHECK(memcmp(id, id2, 16) != 0);
	CHECK(!dc_uuid_is_zero(id2));
}

static void
check_mask(const char *url, const char *want, const char *secret)
{
	char out[256];

	dc_url_mask(url, out, sizeof(out));
	CHECK_STR(out, want);
	if (secret != NULL) {
		CHECK(strstr(out, secret) == NULL);
		if (strstr(out, secret) != NULL)
			fprintf(stderr, "secret \"%s\" leaked: %s\n", secret,
			    out);
	}
}

static void
test_mask(void)
{
	char small[12];

	check_mask("postgresql://user:s3cret@db.example.com/app",
	    "postgresql://user:***@db.example.com/app", "s3cret");
	check_mask("postgresql://user:s3cret@db.example.com:5432/app",
	    "postgresql://user:***@db.example.com:5432/app", "s3cret");
	check_mask("postgresql+asyncpg://u:pw0rd@h:5433/d?sslmode=require",
	    "postgresql+asyncpg://u:***@h:5433/d?sslmode=require", "pw0rd");
	check_mask("mysql://root:toor@127.0.0.1/x",
	    "mysql://root:***@127.0.0.1/x", "toor");
	/* User without password: nothing to hide. */
	check_mask("postgresql://user@db.example.com:5432/app",
	    "postgresql://user@db.example.com:5432/app", NULL);
	/* No userinfo at all. */
	check_mask("postgresql://db.example.com:5432/app",
	    "postgresql://db.example.com:5432/app", NULL);
	check_mask("postgresql://localhost/app",
	    "postgresql://localhost/app", NULL);
	check_mask("postgresql://[::1]:5432/app",
	    "postgresql://[::1]:5432/app", NULL);
	check_mask("postgresql://u:pw@[::1]:5432/app",
	    "postgresql://u:***@[::1]:5432/app", "pw@");
	/* Percent-encoded '@' and ':' in the password. */
	check_mask("postgresql://user:p%40ss%3Aw0rd@host:5432/db",
	    "postgresql://user:***@host:5432/db", "ss%3Aw0rd");
	/* Raw '@', '/', '?' and '#' someone forgot to encode. */
	check_mask("postgresql://user:p@ss@host/db",
	    "postgresql://user:***@host/db", "ss@");
	check_mask("postgresql://user:pa/ss@host/db",
	    "postgresql://user:***@host/db", "pa/ss");
	check_mask("postgresql://user:pa?ss#x@host/db",
	    "postgresql://user:***@host/db", "pa?ss");
	check_mask("postgresql://user:@host/db",
	    "postgresql://user:***@host/db", NULL);
	/* An '@' in the query must not expose or mangle anything. */
	check_mask("postgresql://u:topsecret@h/db?application_name=a@b",
	    "postgresql://u:***@h/db?application_name=a@b", "topsecret");
	/* password= parameters, alone and with others. */
	check_mask("postgresql://h/db?user=u&password=hunter2",
	    "postgresql://h/db?user=u&password=***", "hunter2");
	check_mask("postgresql://h/db?password=hunter2&sslmode=require",
	    "postgresql://h/db?password=***&sslmode=require", "hunter2");
	check_mask("postgresql://u:x1@h/db?PASSWORD=hunter2&sslpassword=k3y",
	    "postgresql://u:***@h/db?PASSWORD=***&sslpassword=***",
	    "hunter2");
	check_mask("postgresql://u:x1@h/db?sslpassword=k3y",
	    "postgresql://u:***@h/db?sslpassword=***", "k3y");
	check_mask("postgresql://h/db?password=p@ss#frag",
	    "postgresql://h/db?password=***", "p@ss");
	/* names as libpq decodes them; ';' does not end a value */
	check_mask("postgresql://u@h/db?pass%77ord=s3cretpw",
	    "postgresql://u@h/db?pass%77ord=***", "s3cretpw");
	check_mask("postgresql://u@h/db?%70%61%73%73%77%6f%72%64=s3cretpw",
	    "postgresql://u@h/db?%70%61%73%73%77%6f%72%64=***", "s3cretpw");
	check_mask("postgresql://u@h/db?ssl%50assword=s3cretpw",
	    "postgresql://u@h/db?ssl%50assword=***", "s3cretpw");
	check_mask("postgresql://h/db?password=ab;cdefgh",
	    "postgresql://h/db?password=***", "cdefgh");
	/* a password that is part of the scheme is no reason to hide all */
	check_mask("postgresql://p:stgres@h/db",
	    "postgresql://p:***@h/db", NULL);
	check_mask("mysql://h/db?Pass%77ord=s3cretpw",
	    "mysql://h/db?Pass%77ord=***", "s3cretpw");
	/* Garbage. */
	check_mask("host=db user=u password=hunter2", "***", "hunter2");
	check_mask("not a url", "***", NULL);
	check_mask("", "***", NULL);
	check_mask("://u:pw@h/db", "***", "pw");
	check_mask("1pg://u:pw@h/db", "***", "pw");
	check_mask("postgresql:u:pw@h/db", "***", "pw");
	check_mask("postgresql://u:p w@h/db", "postgresql://***", "p w");
	check_mask("postgresql://u:pw\n@h/db", "postgresql://***", "pw");
	check_mask(NULL, "***", NULL);

	/* Truncation never writes past the buffer and still terminates. */
	dc_url_mask("postgresql://user:secret@host/db", small, sizeof(small));
	CHECK_STR(small, "postgresql:");
	dc_url_mask("postgresql://user:secret@host/db", small, 1);
	CHECK_STR(small, "");
}

static void
check_scrub(const char *msg, const char *url, const char *want)
{
	char out[256];

	dc_scrub_password(msg, url, out, sizeof(out));
	CHECK_STR(out, want);
}

static void
test_scrub(void)
{
	char small[8];

	/* a short password never garbles words that contain it */
	check_scrub("invalid port number: \"x\"", "postgresql://u:p@h/d",
	    "invalid port number: \"x\"");
	check_scrub("database \"data\" does not exist",
	    "postgresql://u:a@h/data", "database \"data\" does not exist");
	check_scrub("could not translate host name \"h\"",
	    "postgresql://u:h@h/d", "could not translate host name \"***\"");
	/* echoed: raw, decoded, in a parameter */
	check_scrub("invalid percent-encoded token: \"pa%zzss\"",
	    "postgresql://u:pa%zzss@h/d",
	    "invalid percent-encoded token: \"***\"");
	check_scrub("token p@ss:w0rd in text", "postgresql://u:p%40ss%3Aw0rd@h/d",
	    "token *** in text");
	check_scrub("value hunter2 seen", "postgresql://h/d?pass%77ord=hunter2",
	    "value *** seen");
	check_scrub("value !x! seen", "postgresql://u:!x!@h/d",
	    "value *** seen");
	check_scrub("no url", NULL, "no url");
	check_scrub("", "postgresql://u:pw@h/d", "");
	dc_scrub_password("secret pw here", "postgresql://u:pw@h/d", small,
	    sizeof(small));
	CHECK_STR(small, "secret ");
}

static void
test_type(void)
{
	char *s;

	CHECK_STR(dc_url_type("postgresql://u:p@h/db"), "postgresql");
	CHECK_STR(dc_url_type("postgres://u:p@h/db"), "postgresql");
	CHECK_STR(dc_url_type("postgresql+asyncpg://u:p@h/db"), "postgresql");
	CHECK_STR(dc_url_type("postgresql+psycopg2://h/db"), "postgresql");
	CHECK_STR(dc_url_type("PostgreSQL://h/db"), "postgresql");
	CHECK_STR(dc_url_type("mysql://u:p@h/db"), "mysql");
	CHECK_STR(dc_url_type("mysql+pymysql://u:p@h/db"), "mysql");
	CHECK_STR(dc_url_type("mariadb://u:p@h/db"), "mysql");
	CHECK_STR(dc_url_type("MARIADB+mariadbconnector://h/db"), "mysql");
	CHECK_STR(dc_url_type("clickhouse://h:9000/db"), "clickhouse");
	CHECK_STR(dc_url_type("clickhouses://h:9440/db"), "clickhouse");
	CHECK_STR(dc_url_type("clickhouse+native://h/db"), "clickhouse");
	CHECK(dc_url_type("sqlite:///tmp/x.db") == NULL);
	CHECK(dc_url_type("mssql+pyodbc://h/db") == NULL);
	CHECK(dc_url_type("postgresq://h/db") == NULL);
	CHECK(dc_url_type("postgresqll://h/db") == NULL);
	CHECK(dc_url_type("+asyncpg://h/db") == NULL);
	CHECK(dc_url_type("postgresql") == NULL);
	CHECK(dc_url_type("postgresql:/h/db") == NULL);
	CHECK(dc_url_type("host=h dbname=db") == NULL);
	CHECK(dc_url_type("") == NULL);
	CHECK(dc_url_type(NULL) == NULL);

	s = dc_url_libpq("postgresql+asyncpg://u:p@h/db");
	CHECK_STR(s, "postgresql://u:p@h/db");
	free(s);
	s = dc_url_libpq("postgres+psycopg://u:p+q@h:5432/db?x=a+b");
	CHECK_STR(s, "postgres://u:p+q@h:5432/db?x=a+b");
	free(s);
	s = dc_url_libpq("postgresql://u:p@h/db");
	CHECK_STR(s, "postgresql://u:p@h/db");
	free(s);
	s = dc_url_libpq("host=h password=a+b");
	CHECK_STR(s, "host=h password=a+b");
	free(s);
	CHECK(dc_url_libpq(NULL) == NULL);
}

static void
check_iso(int64_t usec, const char *want)
{
	char out[64];

	dc_iso8601(usec, out, sizeof(out));
	CHECK_STR(out, want);
}

static void
test_iso8601(void)
{
	char small[8];

	/* datetime.fromtimestamp(x / 1e6, timezone.utc).isoformat() */
	check_iso(0, "1970-01-01T00:00:00+00:00");
	check_iso(1795497879123456LL, "2026-11-24T05:24:39.123456+00:00");
	check_iso(1795497879000000LL, "2026-11-24T05:24:39+00:00");
	check_iso(1795497879000001LL, "2026-11-24T05:24:39.000001+00:00");
	check_iso(1795497879500000LL, "2026-11-24T05:24:39.500000+00:00");
	check_iso(951782400000000LL, "2000-02-29T00:00:00+00:00");
	check_iso(-1, "1969-12-31T23:59:59.999999+00:00");
	check_iso(-1000000, "1969-12-31T23:59:59+00:00");

	dc_iso8601(0, small, sizeof(small));
	CHECK_STR(small, "1970-01");
}

static void
test_origins(void)
{
	const char *dflt = "http://localhost:3000,http://localhost:3001";
	char why[160];

	CHECK(dc_origin_listed(dflt, "http://localhost:3000"));
	CHECK(dc_origin_listed(dflt, "http://localhost:3001"));
	CHECK(!dc_origin_listed(dflt, "http://localhost:300"));
	CHECK(!dc_origin_listed(dflt, "http://localhost:30001"));
	CHECK(!dc_origin_listed(dflt, "http://LOCALHOST:3000"));
	CHECK(!dc_origin_listed(dflt, "http://localhost:3000/"));
	CHECK(!dc_origin_listed(dflt, ""));
	CHECK(!dc_origin_listed(dflt, NULL));
	CHECK(!dc_origin_listed("", "http://a"));
	/* spaces around entries and empty entries, as DataChat splits */
	CHECK(dc_origin_listed(" http://a , ,https://b:8443 ,", "https://b:8443"));
	CHECK(dc_origin_listed(" http://a , ,https://b:8443 ,", "http://a"));
	CHECK(!dc_origin_listed(" http://a , ,https://b:8443 ,", " http://a"));
	CHECK(dc_origin_listed("http://a,*", "http://anything"));
	CHECK(dc_origin_list_any("http://a, *"));
	CHECK(!dc_origin_list_any(dflt));
	CHECK(!dc_origin_list_any("**"));

	CHECK(dc_origin_list_check(dflt, why, sizeof(why)) == 0);
	CHECK(dc_origin_list_check("", why, sizeof(why)) == 0);
	CHECK(dc_origin_list_check("*", why, sizeof(why)) == 0);
	CHECK(dc_origin_list_check("https://[::1]:8443", why, sizeof(why)) == 0);
	CHECK(dc_origin_list_check("localhost:3000", why, sizeof(why)) ==
	    DC_EINVAL);
	CHECK(strstr(why, "localhost:3000") != NULL);
	CHECK(dc_origin_list_check("http://a/", why, sizeof(why)) == DC_EINVAL);
	CHECK(dc_origin_list_check("http://a/b", why, sizeof(why)) == DC_EINVAL);
	CHECK(dc_origin_list_check("http://", why, sizeof(why)) == DC_EINVAL);
	CHECK(dc_origin_list_check("http://a b", why, sizeof(why)) == DC_EINVAL);
}

static void
test_hosts(void)
{
	const char *names = "api.example.com, Dash.Internal";

	CHECK(dc_host_trusted("localhost", NULL));
	CHECK(dc_host_trusted("LOCALHOST:8000", NULL));
	CHECK(dc_host_trusted("127.0.0.1", NULL));
	CHECK(dc_host_trusted("127.10.0.1:80", NULL));
	CHECK(dc_host_trusted("[::1]:8000", NULL));
	CHECK(dc_host_trusted("[::1]", NULL));
	CHECK(!dc_host_trusted("[::2]:8000", NULL));
	CHECK(!dc_host_trusted("128.0.0.1", NULL));
	CHECK(!dc_host_trusted("10.0.0.1:8000", NULL));
	CHECK(!dc_host_trusted("evil.example", NULL));
	CHECK(!dc_host_trusted("localhost.evil.example", NULL));
	CHECK(!dc_host_trusted("evil.localhost", NULL));
	CHECK(!dc_host_trusted("localhost:80x", NULL));
	CHECK(!dc_host_trusted("localhost:", NULL));
	CHECK(!dc_host_trusted("localhost:123456", NULL));
	CHECK(!dc_host_trusted("", NULL));
	CHECK(!dc_host_trusted(":80", NULL));
	CHECK(!dc_host_trusted("[::1", NULL));
	CHECK(!dc_host_trusted("127.1", NULL));
	CHECK(!dc_host_trusted(NULL, NULL));
	CHECK(dc_host_trusted("api.example.com", names));
	CHECK(dc_host_trusted("dash.internal:8443", names));
	CHECK(!dc_host_trusted("example.com", names));
	CHECK(!dc_host_trusted("api.example.co", names));

	CHECK(dc_origin_same_trusted("http://localhost:8000", "localhost:8000",
	    NULL));
	CHECK(dc_origin_same_trusted("https://api.example.com",
	    "api.example.com", names));
	CHECK(!dc_origin_same_trusted("http://localhost:8001", "localhost:8000",
	    NULL));
	CHECK(!dc_origin_same_trusted("http://evil.example:8000",
	    "evil.example:8000", NULL));
	CHECK(!dc_origin_same_trusted("null", "localhost:8000", NULL));
	CHECK(!dc_origin_same_trusted("http://localhost:8000", NULL, NULL));
}

int
main(void)
{
	test_uuid();
	test_mask();
	test_scrub();
	test_type();
	test_iso8601();
	test_origins();
	test_hosts();
	T_DONE();
}
