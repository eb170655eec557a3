/*
 * test_tokens.c - unit tests for API tokens (src/registry/tokens.c) and
 * the failed-attempt limit of src/http/auth.c: the role table, token
 * format and hash, the shared table's publish and lookup (also from a
 * forked reader while the writer republishes), and the per-address
 * window.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "dc.h"
#include "fernet.h"
#include "tokens.h"
#include "t.h"

static void
test_roles(void)
{
	CHECK(dc_role_parse("read") == DC_ROLE_READ);
	CHECK(dc_role_parse("query") == DC_ROLE_QUERY);
	CHECK(dc_role_parse("admin") == DC_ROLE_ADMIN);
	CHECK(dc_role_parse("Admin") == DC_EINVAL);
	CHECK(dc_role_parse("") == DC_EINVAL);
	CHECK(dc_role_parse("none") == DC_EINVAL);
	CHECK_STR(dc_role_name(DC_ROLE_QUERY), "query");
	CHECK_STR(dc_role_name(DC_ROLE_NONE), "none");
	/* each role includes the ones before it */
	CHECK(DC_ROLE_READ < DC_ROLE_QUERY && DC_ROLE_QUERY < DC_ROLE_ADMIN);
}

static void
test_names(void)
{
	char long_name[DC_TOKEN_NAME_MAX + 1];

	CHECK(dc_token_name_valid("grafana"));
	CHECK(dc_token_name_valid("ci.deploy-bot_2@eu"));
	CHECK(!dc_token_name_valid(""));
	CHECK(!dc_token_name_valid("a b"));
	CHECK(!dc_token_name_valid("a\nb"));
	CHECK(!dc_token_name_valid("x\"y"));
	memset(long_name, 'a', DC_TOKEN_NAME_MAX);
	long_name[DC_TOKEN_NAME_MAX] = '\0';
	CHECK(!dc_token_name_valid(long_name));
	long_name[DC_TOKEN_NAME_MAX - 1] = '\0';
	CHECK(dc_token_name_valid(long_name));
}

static void
test_generate(void)
{
	char a[DC_TOKEN_LEN + 1], b[DC_TOKEN_LEN + 1];
	uint8_t ha[DC_TOKEN_HASH_LEN], hb[DC_TOKEN_HASH_LEN];
	uint8_t h[DC_TOKEN_HASH_LEN];
	size_t i;
	/* SHA-256("abc"), FIPS 180-2 */
	static const uint8_t abc[DC_TOKEN_HASH_LEN] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41,
		0x40, 0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3,
		0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00,
		0x15, 0xad };

	dc_token_hash("abc", 3, h);
	CHECK(memcmp(h, abc, sizeof(h)) == 0);
	CHECK(dc_token_generate(a, ha) == DC_OK);
	CHECK(dc_token_generate(b, hb) == DC_OK);
	CHECK(strlen(a) == DC_TOKEN_LEN);
	CHECK(strncmp(a, DC_TOKEN_PREFIX, 5) == 0);
	for (i = 5; i < DC_TOKEN_LEN; i++)
		CHECK((a[i] >= 'A' && a[i] <= 'Z') || (a[i] >= 'a' &&
		    a[i] <= 'z') || (a[i] >= '0' && a[i] <= '9') ||
		    a[i] == '-' || a[i] == '_');
	CHECK(strcmp(a, b) != 0);
	dc_token_hash(a, strlen(a), h);
	CHECK(memcmp(h, ha, sizeof(h)) == 0);
	CHECK(memcmp(ha, hb, sizeof(ha)) != 0);
}

static void
make(struct dc_token *t, const char *name, int role, int64_t exp)
{
	memset(t, 0, sizeof(*t));
	dc_token_hash(name, strlen(name), t->hash);
	dc_strlcpy(t->name, name, sizeof(t->name));
	t->role = role;
	t->expires_ms = exp;
}

static void
test_table(void)
{
	struct dc_tokens *tt;
	struct dc_token list[3], got;
	uint8_t h[DC_TOKEN_HASH_LEN];

	CHECK(dc_tokens_create(&tt, 0) == DC_EINVAL);
	CHECK(dc_tokens_create(&tt, DC_TOKENS_MAX + 1) == DC_EINVAL);
	CHECK(dc_tokens_create(&tt, 2) == DC_OK);
	CHECK(dc_tokens_count(tt) == 0 && !dc_tokens_loaded(tt));
	make(&list[0], "one", DC_ROLE_READ, 0);
	make(&list[1], "two", DC_ROLE_ADMIN, 123);
	make(&list[2], "three", DC_ROLE_QUERY, 0);
	/* a third one does not fit a table of two */
	CHECK(dc_tokens_publish(tt, list, 3) == 2);
	CHECK(dc_tokens_count(tt) == 2);
	dc_token_hash("two", 3, h);
	CHECK(dc_tokens_lookup(tt, h, &got) == DC_OK);
	CHECK_STR(got.name, "two");
	CHECK(got.role == DC_ROLE_ADMIN && got.expires_ms == 123);
	dc_token_hash("three", 5, h);
	CHECK(dc_tokens_lookup(tt, h, &got) == DC_ENOENT);
	/* a republish replaces everything: revoked tokens are gone */
	CHECK(dc_tokens_publish(tt, &list[2], 1) == 1);
	CHECK(dc_tokens_lookup(tt, h, &got) == DC_OK);
	dc_token_hash("two", 3, h);
	CHECK(dc_tokens_lookup(tt, h, &got) == DC_ENOENT);
	CHECK(dc_tokens_publish(tt, NULL, 0) == 0);
	CHECK(dc_tokens_count(tt) == 0);
	dc_tokens_set_loaded(tt, 1);
	CHECK(dc_tokens_loaded(tt));
	dc_tokens_destroy(tt);
}

/* A full table, published in no order: each token found, others not. */
static void
test_many(void)
{
	struct dc_tokens *tt;
	struct dc_token *list, got;
	uint8_t h[DC_TOKEN_HASH_LEN];
	char name[32];
	int i, found = 0, n;

	CHECK(dc_tokens_create(&tt, DC_TOKENS_MAX) == DC_OK);
	CHECK((list = calloc(DC_TOKENS_MAX, sizeof(*list))) != NULL);
	for (i = 0; i < DC_TOKENS_MAX; i++) {
		snprintf(name, sizeof(name), "tok%d", i);
		make(&list[i], name, DC_ROLE_READ, i);
	}
	for (n = 1; n <= DC_TOKENS_MAX; n = n * 3 + 1) {
		CHECK(dc_tokens_publish(tt, list, n) == n);
		for (i = 0; i < DC_TOKENS_MAX; i++) {
			snprintf(name, sizeof(name), "tok%d", i);
			dc_token_hash(name, strlen(name), h);
			if (i < n) {
				found += dc_tokens_lookup(tt, h, &got) ==
				    DC_OK && strcmp(got.name, name) == 0 &&
				    got.expires_ms == i;
			} else
				CHECK(dc_tokens_lookup(tt, h, &got) ==
				    DC_ENOENT);
		}
	}
	/* n = 1, 4, 13, 40, 121, 364 */
	CHECK(found == 1 + 4 + 13 + 40 + 121 + 364);
	CHECK(dc_tokens_publish(tt, list, DC_TOKENS_MAX) == DC_TOKENS_MAX);
	for (i = 0, found = 0; i < DC_TOKENS_MAX; i++) {
		snprintf(name, sizeof(name), "tok%d", i);
		dc_token_hash(name, strlen(name), h);
		found += dc_tokens_lookup(tt, h, &got) == DC_OK &&
		    strcmp(got.name, name) == 0;
	}
	CHECK(found == DC_TOKENS_MAX);
	dc_token_hash("not a token", 11, h);
	CHECK(dc_tokens_lookup(tt, h, &got) == DC_ENOENT);
	free(list);
	dc_tokens_destroy(tt);
}

/*
 * A forked reader looks up "keep" while the writer republishes tables
 * that always contain it (at varying positions) with other tokens: a
 * lookup that ever misses it, or sees another name, read a torn table.
 */
static void
test_concurrent(void)
{
	struct dc_tokens *tt;
	struct dc_token list[8], got;
	uint8_t h[DC_TOKEN_HASH_LEN];
	char name[16];
	int i, round, status;
	pid_t pid;

	CHECK(dc_tokens_create(&tt, 8) == DC_OK);
	make(&list[0], "keep", DC_ROLE_QUERY, 0);
	dc_tokens_publish(tt, list, 1);
	dc_token_hash("keep", 4, h);
	pid = fork();
	if (pid == 0) {
		int bad = 0, n;

		for (n = 0; n < 200000; n++)
			if (dc_tokens_lookup(tt, h, &got) != DC_OK ||
			    strcmp(got.name, "keep") != 0 ||
			    got.role != DC_ROLE_QUERY)
				bad++;
		_exit(bad != 0);
	}
	for (round = 0; round < 20000; round++) {
		int n = 1 + round % 8, at = round % n;

		for (i = 0; i < n; i++) {
			snprintf(name, sizeof(name), "other%d", round + i);
			make(&list[i], name, DC_ROLE_READ, round);
		}
		make(&list[at], "keep", DC_ROLE_QUERY, 0);
		dc_tokens_publish(tt, list, n);
	}
	CHECK(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	dc_tokens_destroy(tt);
}

static void
test_limits(void)
{
	int retry = -1, i;

	dc_auth_reset_limits();
	CHECK(!dc_auth_limited("10.0.0.1", 1000, 3, &retry));
	for (i = 0; i < 3; i++)
		dc_auth_note_failure("10.0.0.1", 1000 + i);
	CHECK(dc_auth_limited("10.0.0.1", 2000, 3, &retry));
	CHECK(retry == 59);
	CHECK(!dc_auth_limited("10.0.0.2", 2000, 3, &retry));
	/* the window is a minute from the first failure */
	CHECK(dc_auth_limited("10.0.0.1", 60999, 3, &retry));
	CHECK(retry == 1);
	CHECK(!dc_auth_limited("10.0.0.1", 61000, 3, &retry));
	/* an IPv6 address counts by its /64 */
	for (i = 0; i < 3; i++)
		dc_auth_note_failure(i % 2 ? "2001:db8:1:2::1" :
		    "2001:db8:1:2:ffff::9", 5000);
	CHECK(dc_auth_limited("2001:db8:1:2:abcd::1", 5000, 3, &retry));
	CHECK(!dc_auth_limited("2001:db8:1:3::1", 5000, 3, &retry));
	dc_auth_reset_limits();
	CHECK(!dc_auth_limited("2001:db8:1:2::1", 5000, 3, &retry));
}

int
main(void)
{
	if (dc_fernet_init() != DC_OK) {
		fprintf(stderr, "libgcrypt initialisation failed\n");
		return 1;
	}
	test_roles();
	test_names();
	test_generate();
	test_table();
	test_many();
	test_concurrent();
	test_limits();
	T_DONE();
}
