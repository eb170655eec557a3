/*
 * fernet.c - Fernet tokens as Python's cryptography.fernet writes them,
 * so the registry's stored credentials stay readable by both sides.
 *
 * A token is base64url (padded) of
 *	0x80 | timestamp (8 bytes, big endian) | iv (16) | ciphertext | mac (32)
 * where the ciphertext is AES-128-CBC of the PKCS7-padded message and the
 * mac is HMAC-SHA256 over everything before it.  A key is base64url of 32
 * bytes: signing key first, encryption key second.  A ring holds up to
 * DC_FERNET_MAX_KEYS keys: encrypt with the first, decrypt with any, as
 * MultiFernet does, so keys can be rotated.
 *
 * Every way a token can be bad (base64, version, length, time, mac,
 * padding) ends in the same DC_ETOKEN, and the mac is compared in
 * constant time.  Key material and plaintext are wiped before they are
 * freed.  Nothing here prints anything.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <gcrypt.h>

#include "dc.h"
#include "fernet.h"

#define FERNET_VERSION		0x80
#define FERNET_BLOCK		16
#define FERNET_MAC_LEN		32
#define FERNET_HDR_LEN		(1 + 8 + FERNET_BLOCK)	/* version|ts|iv */
#define FERNET_MIN_LEN		(FERNET_HDR_LEN + FERNET_BLOCK + FERNET_MAC_LEN)
#define FERNET_KEY_LEN		32
#define FERNET_MAX_SKEW		60	/* seconds, as in Python */

#define FERNET_STR(x)		#x
#define FERNET_XSTR(x)		FERNET_STR(x)

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/*
 * libgcrypt wants to be told once that the application has finished
 * setting it up.  Secure memory is disabled rather than initialised: keys
 * live in our own ring (wiped on the way out) and only pass through
 * short-lived cipher handles, while a mlock'ed pool would need
 * RLIMIT_MEMLOCK or privileges a non-root daemon does not have, and
 * would warn on every start.  A second call, or a call after some other
 * library finished the set-up, changes nothing.
 */
int
dc_fernet_init(void)
{
	if (gcry_check_version(GCRYPT_VERSION) == NULL)
		return DC_ERR;
	if (gcry_control(GCRYCTL_INITIALIZATION_FINISHED_P))
		return DC_OK;
	gcry_control(GCRYCTL_DISABLE_SECMEM, 0);
	gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
	return DC_OK;
}

/* Base64url. */

static size_t
b64url_encoded_len(size_t len)
{
	return (len + 2) / 3 * 4;
}

/* Write the encoding of in into out, which holds encoded_len + 1. */
static void
b64url_encode_buf(const uint8_t *in, size_t len, char *out)
{
	uint32_t v;
	size_t i;
	char *o = out;

	for (i = 0; i + 3 <= len; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		*o++ = b64url_alphabet[v >> 18 & 63];
		*o++ = b64url_alphabet[v >> 12 & 63];
		*o++ = b64url_alphabet[v >> 6 & 63];
		*o++ = b64url_alphabet[v & 63];
	}
	if (len - i == 1) {
		v = (uint32_t)in[i] << 16;
		*o++ = b64url_alphabet[v >> 18 & 63];
		*o++ = b64url_alphabet[v >> 12 & 63];
		*o++ = '=';
		*o++ = '=';
	} else if (len - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		*o++ = b64url_alphabet[v >> 18 & 63];
		*o++ = b64url_alphabet[v >> 12 & 63];
		*o++ = b64url_alphabet[v >> 6 & 63];
		*o++ = '=';
	}
	*o = '\0';
}

char *
dc_b64url_encode(const uint8_t *in, size_t len)
{
	char *out;

	if (len > (SIZE_MAX - 4) / 4 * 3 || (in == NULL && len > 0))
		return NULL;
	if ((out = malloc(b64url_encoded_len(len) + 1)) == NULL)
		return NULL;
	b64url_encode_buf(in, len, out);
	return out;
}

/* The value of one url-safe base64 character, or -1. */
static int
b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/*
 * Strict decoding into out (outsz bytes): the length a multiple of 4,
 * only the url-safe alphabet, one or two '=' at the very end and nowhere
 * else, and the unused bits of the last character zero, so every byte
 * string has exactly one accepted spelling.
 */
static int
b64url_decode_buf(const char *in, size_t inlen, uint8_t *out, size_t outsz,
    size_t *outlen)
{
	size_t i, npad = 0, n, o = 0;
	uint32_t v;
	int c, j, rc = DC_EINVAL;

	if (inlen % 4 != 0)
		goto out;
	if (inlen > 0 && in[inlen - 1] == '=') {
		npad++;
		if (in[inlen - 2] == '=')
			npad++;
	}
	n = inlen / 4 * 3 - npad;
	if (n > outsz)
		goto out;
	for (i = 0; i < inlen; i += 4) {
		v = 0;
		for (j = 0; j < 4; j++) {
			if (i + j >= inlen - npad) {
				v <<= 6;
				continue;
			}
			if ((c = b64url_value((unsigned char)in[i + j])) < 0)
				goto out;
			v = v << 6 | (uint32_t)c;
		}
		out[o++] = v >> 16 & 0xff;
		if (o < n)
			out[o++] = v >> 8 & 0xff;
		if (o < n)
			out[o++] = v & 0xff;
		else if (i + 4 == inlen && (npad == 2 ? v & 0xffff : v & 0xff))
			goto out;	/* non-zero bits after the last byte */
	}
	*outlen = n;
	rc = DC_OK;
out:
	if (rc != DC_OK && outsz > 0)
		dc_explicit_bzero(out, outsz);
	return rc;
}

int
dc_b64url_decode(const char *in, size_t inlen, uint8_t **out, size_t *outlen)
{
	uint8_t *buf = NULL;
	size_t cap, n = 0;
	int rc = DC_EINVAL;

	*out = NULL;
	*outlen = 0;
	if (in == NULL)
		goto out;
	cap = inlen / 4 * 3;
	rc = DC_ENOMEM;
	if ((buf = malloc(cap + 1)) == NULL)
		goto out;
	if ((rc = b64url_decode_buf(in, inlen, buf, cap, &n)) != DC_OK)
		goto out;
	buf[n] = '\0';
	*out = buf;
	*outlen = n;
	buf = NULL;
out:
	if (buf != NULL) {
		dc_explicit_bzero(buf, cap + 1);
		free(buf);
	}
	return rc;
}

/* Keys. */

static int
ring_is_sep(char c)
{
	return c == ',' || isspace((unsigned char)c);
}

/*
 * Runs of separators count as one, so "k1, k2" and a key file with one
 * key a line (and a final newline) both work.  *bad_index is -1 when the
 * list as a whole is wrong (no key at all).
 */
int
dc_fernet_ring_parse(struct dc_fernet_ring *ring, const char *text,
    const char **why, int *bad_index)
{
	uint8_t raw[FERNET_KEY_LEN];
	const char *p = text, *start, *reason = NULL;
	size_t n, rawlen;
	int idx = -1, rc = DC_EINVAL;

	dc_fernet_ring_wipe(ring);
	if (p == NULL)
		p = "";
	for (;;) {
		while (*p != '\0' && ring_is_sep(*p))
			p++;
		if (*p == '\0')
			break;
		start = p;
		while (*p != '\0' && !ring_is_sep(*p))
			p++;
		n = (size_t)(p - start);
		idx = ring->nkeys;
		if (ring->nkeys == DC_FERNET_MAX_KEYS) {
			reason = "too many keys (at most "
			    FERNET_XSTR(DC_FERNET_MAX_KEYS) ")";
			goto out;
		}
		if (n != DC_FERNET_KEY_B64_LEN) {
			reason = "key is not "
			    FERNET_XSTR(DC_FERNET_KEY_B64_LEN)
			    " characters of url-safe base64";
			goto out;
		}
		if (b64url_decode_buf(start, n, raw, sizeof(raw), &rawlen) !=
		    DC_OK || rawlen != FERNET_KEY_LEN) {
			reason = "key is not url-safe base64 of 32 bytes";
			goto out;
		}
		memcpy(ring->keys[idx].signing, raw, 16);
		memcpy(ring->keys[idx].encryption, raw + 16, 16);
		ring->nkeys++;
	}
	if (ring->nkeys == 0) {
		idx = -1;
		reason = "no key given";
		goto out;
	}
	idx = -1;
	rc = DC_OK;
out:
	dc_explicit_bzero(raw, sizeof(raw));
	if (rc != DC_OK)
		dc_fernet_ring_wipe(ring);
	if (why != NULL)
		*why = reason;
	if (bad_index != NULL)
		*bad_index = idx;
	return rc;
}

int
dc_fernet_genkey(char out[DC_FERNET_KEY_B64_LEN + 1])
{
	uint8_t raw[FERNET_KEY_LEN];

	if (dc_fernet_init() != DC_OK)
		return DC_ERR;
	gcry_randomize(raw, sizeof(raw), GCRY_VERY_STRONG_RANDOM);
	b64url_encode_buf(raw, sizeof(raw), out);
	dc_explicit_bzero(raw, sizeof(raw));
	return DC_OK;
}

void
dc_fernet_ring_wipe(struct dc_fernet_ring *ring)
{
	if (ring != NULL)
		dc_explicit_bzero(ring, sizeof(*ring));
}

/* Tokens. */

static int
fernet_hmac(const uint8_t signing[16], const uint8_t *data, size_t len,
    uint8_t mac[FERNET_MAC_LEN])
{
	gcry_mac_hd_t h = NULL;
	size_t maclen = FERNET_MAC_LEN;
	int rc = DC_ERR;

	if (gcry_mac_open(&h, GCRY_MAC_HMAC_SHA256, 0, NULL) != 0)
		goto out;
	if (gcry_mac_setkey(h, signing, 16) != 0 ||
	    gcry_mac_write(h, data, len) != 0 ||
	    gcry_mac_read(h, mac, &maclen) != 0 || maclen != FERNET_MAC_LEN)
		goto out;
	rc = DC_OK;
out:
	if (h != NULL)
		gcry_mac_close(h);
	return rc;
}

/* AES-128-CBC, in place when in is NULL. */
static int
fernet_aes(int encrypt, const uint8_t key[16], const uint8_t iv[16],
    uint8_t *out, const uint8_t *in, size_t len)
{
	gcry_cipher_hd_t h = NULL;
	gcry_error_t err;
	int rc = DC_ERR;

	if (gcry_cipher_open(&h, GCRY_CIPHER_AES128, GCRY_CIPHER_MODE_CBC,
	    0) != 0)
		goto out;
	if (gcry_cipher_setkey(h, key, 16) != 0 ||
	    gcry_cipher_setiv(h, iv, FERNET_BLOCK) != 0)
		goto out;
	if (encrypt)
		err = gcry_cipher_encrypt(h, out, len, in, in ? len : 0);
	else
		err = gcry_cipher_decrypt(h, out, len, in, in ? len : 0);
	if (err != 0)
		goto out;
	rc = DC_OK;
out:
	if (h != NULL)
		gcry_cipher_close(h);
	return rc;
}

static int
ct_equal(const uint8_t *a, const uint8_t *b, size_t len)
{
	volatile uint8_t d = 0;
	size_t i;

	for (i = 0; i < len; i++)
		d |= a[i] ^ b[i];
	return d == 0;
}

int
dc_fernet_encrypt(const struct dc_fernet_ring *ring, const void *msg,
    size_t len, uint64_t now, const uint8_t *iv, char **token)
{
	const struct dc_fernet_key *key;
	uint8_t *buf = NULL, *ct;
	size_t padded, total = 0;
	int i, pad, rc = DC_EINVAL;

	*token = NULL;
	if (ring == NULL || ring->nkeys < 1 || (msg == NULL && len > 0))
		goto out;
	if (len > SIZE_MAX / 2 - FERNET_MIN_LEN)
		goto out;
	rc = DC_ERR;
	if (dc_fernet_init() != DC_OK)
		goto out;
	key = &ring->keys[0];
	pad = FERNET_BLOCK - (int)(len % FERNET_BLOCK);
	padded = len + (size_t)pad;
	total = FERNET_HDR_LEN + padded + FERNET_MAC_LEN;
	rc = DC_ENOMEM;
	if ((buf = malloc(total)) == NULL)
		goto out;

	buf[0] = FERNET_VERSION;
	for (i = 0; i < 8; i++)
		buf[1 + i] = (uint8_t)(now >> (56 - 8 * i));
	if (iv != NULL)
		memcpy(buf + 9, iv, FERNET_BLOCK);
	else
		gcry_randomize(buf + 9, FERNET_BLOCK, GCRY_STRONG_RANDOM);
	ct = buf + FERNET_HDR_LEN;
	if (len > 0)
		memcpy(ct, msg, len);
	memset(ct + len, pad, (size_t)pad);

	rc = DC_ERR;
	if (fernet_aes(1, key->encryption, buf + 9, ct, NULL, padded) !=
	    DC_OK)
		goto out;
	if (fernet_hmac(key->signing, buf, FERNET_HDR_LEN + padded,
	    ct + padded) != DC_OK)
		goto out;
	rc = DC_ENOMEM;
	if ((*token = dc_b64url_encode(buf, total)) == NULL)
		goto out;
	rc = DC_OK;
out:
	if (buf != NULL) {
		dc_explicit_bzero(buf, total);
		free(buf);
	}
	return rc;
}

/*
 * Check data (a whole decoded token) against one key and decrypt it into
 * pt, which holds the ciphertext's length.  DC_ETOKEN when the key does
 * not fit, DC_ERR if libgcrypt fails.
 */
static int
fernet_open_one(const struct dc_fernet_key *key, const uint8_t *data,
    size_t len, uint8_t *pt, size_t *ptlen)
{
	uint8_t mac[FERNET_MAC_LEN];
	size_t ctlen = len - FERNET_HDR_LEN - FERNET_MAC_LEN, i;
	unsigned int pad, bad;
	int rc = DC_ERR;

	if (fernet_hmac(key->signing, data, len - FERNET_MAC_LEN, mac) !=
	    DC_OK)
		goto out;
	rc = DC_ETOKEN;
	if (!ct_equal(mac, data + len - FERNET_MAC_LEN, FERNET_MAC_LEN))
		goto out;
	rc = DC_ERR;
	if (fernet_aes(0, key->encryption, data + 9, pt, data +
	    FERNET_HDR_LEN, ctlen) != DC_OK)
		goto out;
	rc = DC_ETOKEN;
	pad = pt[ctlen - 1];
	if (pad < 1 || pad > FERNET_BLOCK)
		goto out;
	for (bad = 0, i = ctlen - pad; i < ctlen; i++)
		bad |= pt[i] ^ pad;
	if (bad != 0)
		goto out;
	*ptlen = ctlen - pad;
	rc = DC_OK;
out:
	dc_explicit_bzero(mac, sizeof(mac));
	return rc;
}

int
dc_fernet_decrypt(const struct dc_fernet_ring *ring, const char *token,
    uint64_t now, long ttl, char **msg, size_t *len)
{
	uint8_t *data = NULL, *pt = NULL;
	size_t dlen = 0, ctlen = 0, ptlen = 0;
	uint64_t ts = 0;
	int i, r, rc = DC_ETOKEN;

	*msg = NULL;
	*len = 0;
	if (ring == NULL || ring->nkeys < 1 || token == NULL)
		goto out;
	if ((r = dc_b64url_decode(token, strlen(token), &data, &dlen)) !=
	    DC_OK) {
		if (r == DC_ENOMEM)
			rc = DC_ENOMEM;
		goto out;
	}
	if (dlen < FERNET_MIN_LEN || data[0] != FERNET_VERSION)
		goto out;
	ctlen = dlen - FERNET_HDR_LEN - FERNET_MAC_LEN;
	if (ctlen % FERNET_BLOCK != 0)
		goto out;
	for (i = 0; i < 8; i++)
		ts = ts << 8 | data[1 + i];
	/* Python: ts + ttl < now is expired, now + 60 < ts is skewed. */
	if (ttl > 0) {
		if (now > ts && now - ts > (uint64_t)ttl)
			goto out;
		if (ts > now && ts - now > FERNET_MAX_SKEW)
			goto out;
	}

	rc = DC_ERR;
	if (dc_fernet_init() != DC_OK)
		goto out;
	rc = DC_ENOMEM;
	if ((pt = malloc(ctlen)) == NULL)
		goto out;
	/* MultiFernet: the first key that opens the token wins. */
	rc = DC_ETOKEN;
	for (i = 0; i < ring->nkeys && i < DC_FERNET_MAX_KEYS; i++) {
		r = fernet_open_one(&ring->keys[i], data, dlen, pt, &ptlen);
		if (r == DC_OK || r == DC_ERR) {
			rc = r;
			break;
		}
	}
	if (rc != DC_OK)
		goto out;

	rc = DC_ENOMEM;
	if ((*msg = malloc(ptlen + 1)) == NULL)
		goto out;
	memcpy(*msg, pt, ptlen);
	(*msg)[ptlen] = '\0';
	*len = ptlen;
	rc = DC_OK;
out:
	if (pt != NULL) {
		dc_explicit_bzero(pt, ctlen);
		free(pt);
	}
	if (data != NULL) {
		dc_explicit_bzero(data, dlen);
		free(data);
	}
	return rc;
}
