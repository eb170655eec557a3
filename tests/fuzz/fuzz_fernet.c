/*
 * fuzz_fernet.c - Fernet decoding (fernet.c): a token from the system
 * database, or from a file an operator points at, is untrusted bytes.
 *
 * The input is tried as a token under a fixed two-key ring, as a key
 * ring text, and as plain text to encrypt and decrypt again.
 * Invariants: only a token the ring made verifies (the input is not
 * one: the harness cannot forge an HMAC); encryption round-trips.
 */
#include <string.h>

#include "fuzz.h"
#include "dc.h"
#include "fernet.h"

static struct dc_fernet_ring ring;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char	*why;
	int		 bad;

	FUZZ_ASSERT(dc_fernet_init() == DC_OK);
	FUZZ_ASSERT(dc_fernet_ring_parse(&ring,
	    "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=,"
	    "ZGF0YWNoYXRkLWZ1enotaGFybmVzcy1rZXktMzJieXQ=", &why, &bad) ==
	    DC_OK);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dc_fernet_ring	 r;
	char			*s = fuzz_cstring(data, size), *msg = NULL;
	char			*tok = NULL;
	const char		*why;
	uint8_t			 iv[16], *raw = NULL;
	size_t			 len, rawlen;
	int			 bad;

	/* an arbitrary token: it must not verify (and must not crash) */
	if (dc_fernet_decrypt(&ring, s, 0, 0, &msg, &len) == DC_OK)
		FUZZ_ASSERT(!"an input the ring did not make verified");
	free(msg);
	msg = NULL;
	/* an arbitrary key list */
	memset(&r, 0, sizeof(r));
	(void)dc_fernet_ring_parse(&r, s, &why, &bad);
	dc_fernet_ring_wipe(&r);
	/* base64url both ways */
	if (dc_b64url_decode(s, size, &raw, &rawlen) == DC_OK)
		free(raw);
	/* the input as a message: encrypt, then decrypt to the same bytes */
	memset(iv, 0x5a, sizeof(iv));
	if (dc_fernet_encrypt(&ring, data, size, 1700000000, iv, &tok) ==
	    DC_OK) {
		FUZZ_ASSERT(dc_fernet_decrypt(&ring, tok, 1700000000, 0, &msg,
		    &len) == DC_OK);
		FUZZ_ASSERT(len == size && memcmp(msg, data, size) == 0);
		free(msg);
		free(tok);
	}
	free(s);
	return 0;
}
