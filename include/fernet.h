/*
 * fernet.h - Fernet tokens (the spec of Python's cryptography.fernet),
 * implemented with libgcrypt: AES-128-CBC with PKCS7 padding,
 * HMAC-SHA256 over version|timestamp|iv|ciphertext, url-safe base64 with
 * padding.  A keyring holds one or more keys: encrypt with the first,
 * decrypt with any (MultiFernet).  Every bad token gets the same error,
 * DC_ETOKEN, and the MAC is compared in constant time.
 *
 * dc_fernet_init() must run once in the master before fork.
 */
#ifndef DC_FERNET_H
#define DC_FERNET_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define DC_FERNET_KEY_B64_LEN	44	/* base64url of 32 bytes, padded */
#define DC_FERNET_MAX_KEYS	8

struct dc_fernet_key {
	uint8_t		signing[16];
	uint8_t		encryption[16];
};

struct dc_fernet_ring {
	int		 nkeys;
	struct dc_fernet_key keys[DC_FERNET_MAX_KEYS];
};

/* Initialise libgcrypt (version check, secure memory, finished). */
int		 dc_fernet_init(void);

/*
 * Parse a key list: keys separated by commas, newlines or whitespace
 * (so both DATABASE_CREDENTIALS_KEY and a key file work).  On failure
 * *why says which key (by position, never its text) and why.
 * Returns 0, DC_EINVAL.
 */
int		 dc_fernet_ring_parse(struct dc_fernet_ring *ring,
		     const char *text, const char **why, int *bad_index);

/* Make a new random key, written as 44 characters plus NUL into out. */
int		 dc_fernet_genkey(char out[DC_FERNET_KEY_B64_LEN + 1]);

/*
 * Encrypt msg with the ring's first key at time now (seconds) and iv
 * (NULL: random from the system RNG).  *token is malloc'ed, NUL ended.
 */
int		 dc_fernet_encrypt(const struct dc_fernet_ring *ring,
		     const void *msg, size_t len, uint64_t now,
		     const uint8_t *iv, char **token);

/*
 * Decrypt a token with any key of the ring.  ttl <= 0 means no expiry
 * check (the registry's tokens never expire); otherwise tokens older
 * than ttl seconds or more than 60 s in the future are refused.
 * *msg is malloc'ed with a NUL after *len bytes.  Returns 0, DC_ETOKEN
 * for every bad token, or DC_ENOMEM/DC_ERR when the library fails.
 */
int		 dc_fernet_decrypt(const struct dc_fernet_ring *ring,
		     const char *token, uint64_t now, long ttl,
		     char **msg, size_t *len);

/* Strict url-safe base64 with padding. */
char		*dc_b64url_encode(const uint8_t *in, size_t len);
int		 dc_b64url_decode(const char *in, size_t inlen, uint8_t **out,
		     size_t *outlen);

void		 dc_fernet_ring_wipe(struct dc_fernet_ring *ring);

#endif /* DC_FERNET_H */
