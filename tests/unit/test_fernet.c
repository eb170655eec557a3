/*
 * test_fernet.c - unit test of src/fernet.c.
 *
 * Runs every official Fernet vector (tests/unit/testdata/{generate,
 * verify,invalid}.json from the Fernet spec, found under $top_srcdir),
 * then the parts the vectors do not reach: key rings and rotation, key
 * list parsing and its errors, key generation, strict base64url, TTL
 * edges, tampered tokens, and tokens sealed here with libgcrypt directly
 * (a good MAC over a bad version byte or bad padding).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gcrypt.h>
#include <json-c/json.h>

#include "dc.h"
#include "fernet.h"
#include "t.h"

#define KEY1	"cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4="
#define KEY2	"Wg4Xyn1ShU2a1Jx1YWhzanZnNMr9wAEBrzpAP-d6j3U="

static int
parse_2d(const char *s)
{
	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
		return -1;
	return (s[0] - '0') * 10 + (s[1] - '0');
}

/*
 * RFC 3339 date-time ("1985-10-26T01:20:01-07:00", "...Z", optional
 * fraction) to seconds since the epoch.  0 or -1.
 */
static int
parse_rfc3339(const char *s, uint64_t *out)
{
	struct tm tm;
	time_t t;
	long off = 0;
	int y, v[5], i, oh, om;

	if (strlen(s) < 20)
		return -1;
	for (y = 0, i = 0; i < 4; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		y = y * 10 + (s[i] - '0');
	}
	if (s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
	    s[13] != ':' || s[16] != ':')
		return -1;
	for (i = 0; i < 5; i++)
		if ((v[i] = parse_2d(s + 5 + 3 * i)) < 0)
			return -1;
	s += 19;
	if (*s == '.') {
		s++;
		if (*s < '0' || *s > '9')
			return -1;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	if (*s == 'Z' || *s == 'z') {
		s++;
	} else if (*s == '+' || *s == '-') {
		if ((oh = parse_2d(s + 1)) < 0 || s[3] != ':' ||
		    (om = parse_2d(s + 4)) < 0)
			return -1;
		off = (oh * 60L + om) * 60L;
		if (*s == '-')
			off = -off;
		s += 6;
	} else
		return -1;
	if (*s != '\0')
		return -1;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = v[0] - 1;
	tm.tm_mday = v[1];
	tm.tm_hour = v[2];
	tm.tm_min = v[3];
	tm.tm_sec = v[4];
	if ((t = timegm(&tm)) == (time_t)-1)
		return -1;
	/* Local time minus its offset is UTC. */
	*out = (uint64_t)((int64_t)t - off);
	return 0;
}

static void
test_rfc3339(void)
{
	uint64_t t = 0;

	CHECK(parse_rfc3339("1985-10-26T01:20:00-07:00", &t) == 0);
	CHECK(t == 499162800);
	CHECK(parse_rfc3339("1985-10-26T08:20:00Z", &t) == 0);
	CHECK(t == 499162800);
	CHECK(parse_rfc3339("1985-10-26T10:50:00.25+02:30", &t) == 0);
	CHECK(t == 499162800);
	CHECK(parse_rfc3339("1985-10-26 08:20:00", &t) == -1);
	CHECK(parse_rfc3339("1985-10-26T08:20:00+0700", &t) == -1);
	CHECK(parse_rfc3339("1985-10-26T08:20:00Zjunk", &t) == -1);
}

static json_object *
load_vectors(const char *name)
{
	const char *top = getenv("top_srcdir");
	char path[4096];
	json_object *arr;

	if (top == NULL || *top == '\0')
		top = ".";
	snprintf(path, sizeof(path), "%s/tests/unit/testdata/%s", top, name);
	arr = json_object_from_file(path);
	if (arr == NULL || !json_object_is_type(arr, json_type_array)) {
		fprintf(stderr, "cannot read vectors from %s\n", path);
		json_object_put(arr);
		return NULL;
	}
	return arr;
}

static const char *
vec_str(json_object *o, const char *field)
{
	json_object *v;

	if (!json_object_object_get_ex(o, field, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static long
vec_long(json_object *o, const char *field)
{
	json_object *v;

	if (!json_object_object_get_ex(o, field, &v))
		return -1;
	return (long)json_object_get_int64(v);
}

/* The key and the time every vector carries.  0 or -1. */
static int
vec_setup(json_object *o, struct dc_fernet_ring *ring, uint64_t *now)
{
	const char *secret = vec_str(o, "secret"), *nowstr = vec_str(o, "now");
	const char *why = NULL;
	int bad = 0;

	if (secret == NULL || nowstr == NULL)
		return -1;
	if (dc_fernet_ring_parse(ring, secret, &why, &bad) != 0)
		return -1;
	if (parse_rfc3339(nowstr, now) != 0)
		return -1;
	return 0;
}

static void
test_generate(void)
{
	struct dc_fernet_ring ring;
	json_object *arr, *o, *ivj;
	uint8_t iv[16];
	uint64_t now = 0;
	const char *src;
	char *token;
	size_t i, j;
	int n = 0;

	CHECK((arr = load_vectors("generate.json")) != NULL);
	if (arr == NULL)
		return;
	for (i = 0; i < json_object_array_length(arr); i++) {
		o = json_object_array_get_idx(arr, i);
		CHECK(vec_setup(o, &ring, &now) == 0);
		CHECK((src = vec_str(o, "src")) != NULL);
		CHECK(json_object_object_get_ex(o, "iv", &ivj));
		CHECK(json_object_array_length(ivj) == sizeof(iv));
		for (j = 0; j < sizeof(iv); j++)
			iv[j] = (uint8_t)json_object_get_int(
			    json_object_array_get_idx(ivj, j));
		token = NULL;
		CHECK(dc_fernet_encrypt(&ring, src, strlen(src), now, iv,
		    &token) == DC_OK);
		CHECK_STR(token, vec_str(o, "token"));
		free(token);
		dc_fernet_ring_wipe(&ring);
		n++;
	}
	CHECK(n > 0);
	json_object_put(arr);
}

static void
test_verify(void)
{
	struct dc_fernet_ring ring;
	json_object *arr, *o;
	uint64_t now = 0;
	const char *src;
	char *msg;
	size_t i, len;
	int n = 0;

	CHECK((arr = load_vectors("verify.json")) != NULL);
	if (arr == NULL)
		return;
	for (i = 0; i < json_object_array_length(arr); i++) {
		o = json_object_array_get_idx(arr, i);
		CHECK(vec_setup(o, &ring, &now) == 0);
		CHECK((src = vec_str(o, "src")) != NULL);
		msg = NULL;
		len = 0;
		CHECK(dc_fernet_decrypt(&ring, vec_str(o, "token"), now,
		    vec_long(o, "ttl_sec"), &msg, &len) == DC_OK);
		CHECK(src != NULL && len == strlen(src));
		CHECK_STR(msg, src);
		free(msg);
		dc_fernet_ring_wipe(&ring);
		n++;
	}
	CHECK(n > 0);
	json_object_put(arr);
}

static void
test_invalid(void)
{
	struct dc_fernet_ring ring;
	json_object *arr, *o;
	uint64_t now = 0;
	char *msg;
	size_t i, len;
	int rc, n = 0;

	CHECK((arr = load_vectors("invalid.json")) != NULL);
	if (arr == NULL)
		return;
	for (i = 0; i < json_object_array_length(arr); i++) {
		o = json_object_array_get_idx(arr, i);
		CHECK(vec_setup(o, &ring, &now) == 0);
		msg = NULL;
		len = 99;
		rc = dc_fernet_decrypt(&ring, vec_str(o, "token"), now,
		    vec_long(o, "ttl_sec"), &msg, &len);
		if (rc != DC_ETOKEN)
			fprintf(stderr, "invalid vector \"%s\" gave %d\n",
			    vec_str(o, "desc"), rc);
		CHECK(rc == DC_ETOKEN);
		CHECK(msg == NULL && len == 0);
		free(msg);
		dc_fernet_ring_wipe(&ring);
		n++;
	}
	CHECK(n > 0);
	json_object_put(arr);
}

static int
ring_from(struct dc_fernet_ring *ring, const char *text)
{
	const char *why = NULL;
	int bad = 0;

	return dc_fernet_ring_parse(ring, text, &why, &bad);
}

/* Decrypt with ring, no TTL, and compare with want. */
static int
opens_to(const struct dc_fernet_ring *ring, const char *token,
    const char *want)
{
	char *msg = NULL;
	size_t len = 0;
	int ok;

	if (dc_fernet_decrypt(ring, token, 0, 0, &msg, &len) != DC_OK)
		return 0;
	ok = len == strlen(want) && strcmp(msg, want) == 0;
	free(msg);
	return ok;
}

static int
is_bad_token(const struct dc_fernet_ring *ring, const char *token)
{
	char *msg = NULL;
	size_t len = 0;
	int rc;

	rc = dc_fernet_decrypt(ring, token, 0, 0, &msg, &len);
	free(msg);
	return rc == DC_ETOKEN;
}

static void
test_ring(void)
{
	struct dc_fernet_ring both, k1, k2;
	char *t1 = NULL, *t2 = NULL, *t12 = NULL;

	CHECK(ring_from(&both, KEY1 "," KEY2) == DC_OK);
	CHECK(both.nkeys == 2);
	CHECK(ring_from(&k1, KEY1) == DC_OK);
	CHECK(ring_from(&k2, KEY2) == DC_OK);
	CHECK(k1.nkeys == 1 && k2.nkeys == 1);

	CHECK(dc_fernet_encrypt(&k1, "one", 3, 1000, NULL, &t1) == DC_OK);
	CHECK(dc_fernet_encrypt(&k2, "two", 3, 1000, NULL, &t2) == DC_OK);
	CHECK(dc_fernet_encrypt(&both, "both", 4, 1000, NULL, &t12) ==
	    DC_OK);

	/* Decrypt with any key of the ring. */
	CHECK(opens_to(&both, t1, "one"));
	CHECK(opens_to(&both, t2, "two"));
	CHECK(opens_to(&both, t12, "both"));
	/* Encrypt with the first. */
	CHECK(opens_to(&k1, t12, "both"));
	CHECK(is_bad_token(&k2, t12));
	CHECK(is_bad_token(&k1, t2));
	CHECK(is_bad_token(&k2, t1));

	/* Rotation: the new key first still reads the old tokens. */
	CHECK(ring_from(&both, KEY2 "\n" KEY1 "\n") == DC_OK);
	CHECK(opens_to(&both, t1, "one"));
	free(t12);
	t12 = NULL;
	CHECK(dc_fernet_encrypt(&both, "new", 3, 1000, NULL, &t12) == DC_OK);
	CHECK(opens_to(&k2, t12, "new"));
	CHECK(is_bad_token(&k1, t12));

	/* An empty ring opens nothing and seals nothing. */
	dc_fernet_ring_wipe(&k1);
	CHECK(k1.nkeys == 0);
	CHECK(is_bad_token(&k1, t1));
	free(t1);
	t1 = NULL;
	CHECK(dc_fernet_encrypt(&k1, "x", 1, 1000, NULL, &t1) == DC_EINVAL);
	CHECK(t1 == NULL);

	free(t1);
	free(t2);
	free(t12);
	dc_fernet_ring_wipe(&both);
	dc_fernet_ring_wipe(&k2);
}

/* One parse that must fail, at index want_bad, with a reason. */
static void
parse_fails(const char *text, int want_bad, int line)
{
	struct dc_fernet_ring ring;
	const char *why = NULL;
	int bad = 12345, rc;

	rc = dc_fernet_ring_parse(&ring, text, &why, &bad);
	if (rc != DC_EINVAL || bad != want_bad || why == NULL)
		fprintf(stderr, "parse case at line %d: rc %d index %d\n",
		    line, rc, bad);
	CHECK(rc == DC_EINVAL);
	CHECK(bad == want_bad);
	CHECK(why != NULL && *why != '\0');
	/* The reason never quotes the key. */
	CHECK(why == NULL || strstr(why, "cw_0x") == NULL);
	CHECK(ring.nkeys == 0);
}

static void
test_ring_parse(void)
{
	struct dc_fernet_ring ring;
	char many[(DC_FERNET_KEY_B64_LEN + 1) * (DC_FERNET_MAX_KEYS + 1) + 1];
	const char *why = "unset";
	int bad = 12345, i;

	CHECK(dc_fernet_ring_parse(&ring, " \t" KEY1 " ,\n, " KEY2 "\r\n",
	    &why, &bad) == DC_OK);
	CHECK(ring.nkeys == 2);
	CHECK(why == NULL && bad == -1);
	CHECK(dc_fernet_ring_parse(&ring, KEY1, NULL, NULL) == DC_OK);
	CHECK(ring.nkeys == 1);

	/* Empty lists. */
	parse_fails("", -1, __LINE__);
	parse_fails(" ,\n\t, ", -1, __LINE__);
	parse_fails(NULL, -1, __LINE__);
	/* Bad length: one character short or long, the second key. */
	parse_fails("cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4", 0,
	    __LINE__);
	parse_fails(KEY1 ",cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=A", 1,
	    __LINE__);
	parse_fails(KEY1 "," KEY2 ",short", 2, __LINE__);
	/* Bad characters: standard alphabet, junk, padding inside. */
	parse_fails("cw/0x689RpI+jtRR7oE8h/eQsKImvJapLeSbXpwF4e4=", 0,
	    __LINE__);
	parse_fails(KEY2 ",cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e*", 1,
	    __LINE__);
	parse_fails("cw_0x689RpI-jtRR7oE8h_eQs=ImvJapLeSbXpwF4e4=", 0,
	    __LINE__);
	/* 44 characters but 33 bytes (no padding) or 31 (two pads + junk). */
	parse_fails("cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4A", 0,
	    __LINE__);
	parse_fails("cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e==", 0,
	    __LINE__);

	/* At most DC_FERNET_MAX_KEYS. */
	many[0] = '\0';
	for (i = 0; i < DC_FERNET_MAX_KEYS; i++)
		strcat(many, KEY1 ",");
	CHECK(dc_fernet_ring_parse(&ring, many, &why, &bad) == DC_OK);
	CHECK(ring.nkeys == DC_FERNET_MAX_KEYS);
	strcat(many, KEY2);
	parse_fails(many, DC_FERNET_MAX_KEYS, __LINE__);

	/* A failed parse leaves no key behind. */
	CHECK(ring_from(&ring, KEY1 ",bad") == DC_EINVAL);
	CHECK(ring.nkeys == 0);
	dc_fernet_ring_wipe(&ring);
}

static void
test_genkey(void)
{
	struct dc_fernet_ring ring;
	char k1[DC_FERNET_KEY_B64_LEN + 1], k2[DC_FERNET_KEY_B64_LEN + 1];
	uint8_t *raw = NULL;
	size_t rawlen = 0;
	char *token = NULL;

	memset(k1, 'x', sizeof(k1));
	CHECK(dc_fernet_genkey(k1) == DC_OK);
	CHECK(dc_fernet_genkey(k2) == DC_OK);
	CHECK(strlen(k1) == DC_FERNET_KEY_B64_LEN);
	CHECK(k1[DC_FERNET_KEY_B64_LEN - 1] == '=');
	CHECK(strcmp(k1, k2) != 0);
	CHECK(dc_b64url_decode(k1, strlen(k1), &raw, &rawlen) == DC_OK);
	CHECK(rawlen == 32);
	free(raw);

	CHECK(ring_from(&ring, k1) == DC_OK);
	CHECK(dc_fernet_encrypt(&ring, "round trip", 10, 7, NULL, &token) ==
	    DC_OK);
	CHECK(opens_to(&ring, token, "round trip"));
	free(token);
	dc_fernet_ring_wipe(&ring);
	dc_explicit_bzero(k1, sizeof(k1));
	dc_explicit_bzero(k2, sizeof(k2));
}

static int
decodes_to(const char *in, size_t inlen, const void *want, size_t wantlen)
{
	uint8_t *out = NULL;
	size_t outlen = 99;
	int ok;

	if (dc_b64url_decode(in, inlen, &out, &outlen) != DC_OK)
		return 0;
	ok = outlen == wantlen && memcmp(out, want, wantlen) == 0 &&
	    out[outlen] == '\0';
	free(out);
	return ok;
}

static int
decode_rejects(const char *in, size_t inlen)
{
	uint8_t *out = (uint8_t *)"unset";
	size_t outlen = 99;
	int rc;

	rc = dc_b64url_decode(in, inlen, &out, &outlen);
	if (rc == DC_OK)
		free(out);
	return rc == DC_EINVAL && out == NULL && outlen == 0;
}

#define REJECTS(s)	decode_rejects((s), sizeof(s) - 1)

static void
test_b64url(void)
{
	static const uint8_t hi[] = { 0xfb, 0xff, 0xbf };
	static const struct {
		const char	*raw;
		const char	*enc;
	} rfc[] = {
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" },
		{ "foo", "Zm9v" }, { "foob", "Zm9vYg==" },
		{ "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
	};
	char *s;
	size_t i;

	/* RFC 4648 test vectors, both ways. */
	for (i = 0; i < DC_ARRAY_SIZE(rfc); i++) {
		s = dc_b64url_encode((const uint8_t *)rfc[i].raw,
		    strlen(rfc[i].raw));
		CHECK_STR(s, rfc[i].enc);
		free(s);
		CHECK(decodes_to(rfc[i].enc, strlen(rfc[i].enc), rfc[i].raw,
		    strlen(rfc[i].raw)));
	}
	s = dc_b64url_encode(NULL, 0);
	CHECK_STR(s, "");
	free(s);

	/* The url-safe alphabet: '-' and '_' for '+' and '/'. */
	s = dc_b64url_encode(hi, 3);
	CHECK_STR(s, "-_-_");
	free(s);
	s = dc_b64url_encode(hi, 2);
	CHECK_STR(s, "-_8=");
	free(s);
	CHECK(decodes_to("-_-_", 4, hi, 3));
	CHECK(decodes_to("-_8=", 4, hi, 2));
	/* inlen bounds the input: the rest is not read. */
	CHECK(decodes_to("Zm9vYmFy", 4, "foo", 3));

	CHECK(REJECTS("+/+/"));		/* standard alphabet */
	CHECK(REJECTS("+/8="));
	CHECK(REJECTS("Zg"));		/* missing padding */
	CHECK(REJECTS("Zg="));
	CHECK(REJECTS("Zm8"));
	CHECK(REJECTS("Zg==="));	/* too much padding */
	CHECK(REJECTS("Z==="));
	CHECK(REJECTS("===="));
	CHECK(REJECTS("Zg==Zm9v"));	/* padding inside */
	CHECK(REJECTS("Zm=v"));
	CHECK(REJECTS("Zm9v\n"));	/* whitespace */
	CHECK(REJECTS(" Zm9v"));
	CHECK(REJECTS("Zm 9v"));
	CHECK(REJECTS("Zm9v\r\n"));
	CHECK(REJECTS("Zm9vYmFy="));	/* trailing garbage */
	CHECK(REJECTS("Zm9v!"));
	CHECK(REJECTS("Zm9\0"));	/* a NUL inside inlen */
	CHECK(REJECTS("Zh=="));		/* non-zero bits after the end */
	CHECK(REJECTS("Zm9="));
	CHECK(decode_rejects(NULL, 4));
}

static void
test_tamper(void)
{
	struct dc_fernet_ring ring;
	char *token = NULL, *copy, *msg = NULL;
	size_t n, i, len = 0;
	int all_bad = 1;

	CHECK(ring_from(&ring, KEY1) == DC_OK);
	CHECK(dc_fernet_encrypt(&ring, "secret text", 11, 1000, NULL,
	    &token) == DC_OK);
	CHECK(token != NULL && opens_to(&ring, token, "secret text"));
	if (token == NULL)
		return;
	n = strlen(token);
	CHECK((copy = malloc(n + 2)) != NULL);

	/* Every single-character change anywhere must be refused. */
	for (i = 0; i < n; i++) {
		memcpy(copy, token, n + 1);
		copy[i] = copy[i] == 'A' ? 'B' : 'A';
		if (!is_bad_token(&ring, copy))
			all_bad = 0;
	}
	CHECK(all_bad);
	/* Truncated, extended, whitespace, standard alphabet. */
	memcpy(copy, token, n + 1);
	copy[n - 4] = '\0';
	CHECK(is_bad_token(&ring, copy));
	memcpy(copy, token, n + 1);
	copy[n] = '\n';
	copy[n + 1] = '\0';
	CHECK(is_bad_token(&ring, copy));
	memcpy(copy, token, n + 1);
	for (i = 0; i < n; i++)
		copy[i] = copy[i] == '-' ? '+' : copy[i] == '_' ? '/' :
		    copy[i];
	CHECK(strcmp(copy, token) == 0 || is_bad_token(&ring, copy));
	CHECK(is_bad_token(&ring, ""));
	CHECK(is_bad_token(&ring, "gAAAAA=="));
	CHECK(dc_fernet_decrypt(&ring, NULL, 0, 0, &msg, &len) == DC_ETOKEN);

	free(copy);
	free(token);
	dc_fernet_ring_wipe(&ring);
}

/* Sealed with the key's own MAC but a different version byte. */
static void
test_version(void)
{
	struct dc_fernet_ring ring;
	uint8_t *raw = NULL;
	size_t rawlen = 0;
	char *token = NULL, *forged = NULL;

	CHECK(ring_from(&ring, KEY1) == DC_OK);
	CHECK(dc_fernet_encrypt(&ring, "v", 1, 1000, NULL, &token) == DC_OK);
	CHECK(dc_b64url_decode(token, strlen(token), &raw, &rawlen) ==
	    DC_OK);
	if (raw != NULL) {
		raw[0] = 0x81;
		forged = dc_b64url_encode(raw, rawlen);
		CHECK(forged != NULL && is_bad_token(&ring, forged));
	}
	free(forged);
	free(raw);
	free(token);
	dc_fernet_ring_wipe(&ring);
}

/*
 * A token built by hand with libgcrypt: version, timestamp 1000, a zero
 * IV, ct = AES-128-CBC of pt as given (no padding added), a good MAC.
 */
static char *
seal_raw(const char *keytext, uint8_t version, const void *pt, size_t ptlen)
{
	gcry_cipher_hd_t c = NULL;
	gcry_mac_hd_t h = NULL;
	uint8_t *key = NULL, buf[25 + 64 + 32];
	size_t keylen = 0, maclen = 32, n = 25 + ptlen;
	char *token = NULL;

	if (ptlen > 64 || ptlen % 16 != 0)
		goto out;
	if (dc_b64url_decode(keytext, strlen(keytext), &key, &keylen) != 0 ||
	    keylen != 32)
		goto out;
	memset(buf, 0, sizeof(buf));
	buf[0] = version;
	buf[7] = 1000 >> 8;		/* big endian, bytes 1..8 */
	buf[8] = 1000 & 0xff;
	if (ptlen > 0 && (gcry_cipher_open(&c, GCRY_CIPHER_AES128,
	    GCRY_CIPHER_MODE_CBC, 0) != 0 ||
	    gcry_cipher_setkey(c, key + 16, 16) != 0 ||
	    gcry_cipher_setiv(c, buf + 9, 16) != 0 ||
	    gcry_cipher_encrypt(c, buf + 25, ptlen, pt, ptlen) != 0))
		goto out;
	if (gcry_mac_open(&h, GCRY_MAC_HMAC_SHA256, 0, NULL) != 0 ||
	    gcry_mac_setkey(h, key, 16) != 0 ||
	    gcry_mac_write(h, buf, n) != 0 ||
	    gcry_mac_read(h, buf + n, &maclen) != 0)
		goto out;
	token = dc_b64url_encode(buf, n + 32);
out:
	if (c != NULL)
		gcry_cipher_close(c);
	if (h != NULL)
		gcry_mac_close(h);
	free(key);
	return token;
}

static void
test_forged(void)
{
	struct dc_fernet_ring ring;
	uint8_t pt[32];
	char *t;

	CHECK(ring_from(&ring, KEY1) == DC_OK);

#define SEALED(ver, n, expr) do {					\
	t = seal_raw(KEY1, (ver), pt, (n));				\
	CHECK(t != NULL);						\
	CHECK(t != NULL && (expr));					\
	free(t);							\
} while (0)

	/* The hand-built token agrees with ours when it is well formed. */
	memcpy(pt, "hello", 5);
	memset(pt + 5, 11, 11);
	SEALED(0x80, 16, opens_to(&ring, t, "hello"));
	memset(pt, 16, 16);
	SEALED(0x80, 16, opens_to(&ring, t, ""));
	memset(pt, 'a', 16);
	memset(pt + 16, 16, 16);
	SEALED(0x80, 32, opens_to(&ring, t, "aaaaaaaaaaaaaaaa"));

	/* A good MAC does not excuse a wrong version ... */
	memset(pt, 16, 16);
	SEALED(0x81, 16, is_bad_token(&ring, t));
	SEALED(0x00, 16, is_bad_token(&ring, t));
	/* ... nor bad padding ... */
	memset(pt, 'a', 16);
	pt[15] = 0;
	SEALED(0x80, 16, is_bad_token(&ring, t));
	pt[15] = 17;
	SEALED(0x80, 16, is_bad_token(&ring, t));
	pt[15] = 2;
	SEALED(0x80, 16, is_bad_token(&ring, t));
	pt[14] = 1;
	SEALED(0x80, 16, is_bad_token(&ring, t));
	memset(pt, 16, 16);
	pt[0] = 15;
	SEALED(0x80, 16, is_bad_token(&ring, t));
	memset(pt, 'a', 16);
	memset(pt + 16, 'a', 15);
	pt[31] = 1;
	SEALED(0x80, 32, opens_to(&ring, t,
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
	/* ... nor no ciphertext at all. */
	SEALED(0x80, 0, is_bad_token(&ring, t));
#undef SEALED

	dc_fernet_ring_wipe(&ring);
}

static void
test_ttl(void)
{
	struct dc_fernet_ring ring;
	char *token = NULL, *msg = NULL;
	size_t len = 0;
	const uint64_t ts = 1700000000;

	CHECK(ring_from(&ring, KEY1) == DC_OK);
	CHECK(dc_fernet_encrypt(&ring, "t", 1, ts, NULL, &token) == DC_OK);

#define TTL_OK(now, ttl) do {						\
	msg = NULL;							\
	CHECK(dc_fernet_decrypt(&ring, token, (now), (ttl), &msg,	\
	    &len) == DC_OK);						\
	free(msg);							\
} while (0)
#define TTL_BAD(now, ttl) do {						\
	msg = NULL;							\
	CHECK(dc_fernet_decrypt(&ring, token, (now), (ttl), &msg,	\
	    &len) == DC_ETOKEN);					\
	CHECK(msg == NULL);						\
	free(msg);							\
} while (0)

	/* ttl <= 0: no check at all, however old or new. */
	TTL_OK(ts + 100000000, 0);
	TTL_OK(ts + 100000000, -5);
	TTL_OK(0, 0);
	/* Expiry: now > ts + ttl. */
	TTL_OK(ts, 60);
	TTL_OK(ts + 60, 60);
	TTL_BAD(ts + 61, 60);
	/* Skew: ts > now + 60. */
	TTL_OK(ts - 60, 60);
	TTL_BAD(ts - 61, 60);
	TTL_BAD(0, 60);
	/* No overflow near the top. */
	TTL_OK(ts, 0x7fffffffL);
	TTL_BAD(UINT64_MAX, 0x7fffffffL);
#undef TTL_OK
#undef TTL_BAD

	free(token);
	dc_fernet_ring_wipe(&ring);
}

static void
test_lengths(void)
{
	struct dc_fernet_ring ring;
	char buf[100], *token = NULL, *msg = NULL, *t2 = NULL;
	size_t n, len;
	int ok = 1;

	CHECK(ring_from(&ring, KEY2) == DC_OK);
	for (n = 0; n < sizeof(buf); n++)
		buf[n] = (char)(n * 7 + 1);
	buf[3] = '\0';	/* binary, with a NUL inside */
	for (n = 0; n <= sizeof(buf); n++) {
		token = msg = NULL;
		len = 999;
		if (dc_fernet_encrypt(&ring, buf, n, 42, NULL, &token) !=
		    DC_OK ||
		    dc_fernet_decrypt(&ring, token, 42, 60, &msg, &len) !=
		    DC_OK || len != n || memcmp(msg, buf, n) != 0 ||
		    msg[n] != '\0')
			ok = 0;
		/* 0x80, 8, 16, blocks, 32 in base64. */
		if (token != NULL && strlen(token) !=
		    ((57 + (n / 16 + 1) * 16 + 2) / 3 * 4))
			ok = 0;
		free(token);
		free(msg);
	}
	CHECK(ok);

	/* A random IV: the same message twice makes two tokens. */
	CHECK(dc_fernet_encrypt(&ring, "same", 4, 42, NULL, &token) == DC_OK);
	CHECK(dc_fernet_encrypt(&ring, "same", 4, 42, NULL, &t2) == DC_OK);
	CHECK(token != NULL && t2 != NULL && strcmp(token, t2) != 0);
	free(token);
	free(t2);
	dc_fernet_ring_wipe(&ring);
}

int
main(void)
{
	CHECK(dc_fernet_init() == DC_OK);
	CHECK(dc_fernet_init() == DC_OK);	/* twice is fine */

	test_rfc3339();
	test_generate();
	test_verify();
	test_invalid();
	test_ring();
	test_ring_parse();
	test_genkey();
	test_b64url();
	test_tamper();
	test_version();
	test_forged();
	test_ttl();
	test_lengths();
	T_DONE();
}
