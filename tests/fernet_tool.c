/*
 * fernet_tool.c - a small command line face of src/fernet.c, built but
 * not installed, so tests/integration/test_fernet_interop.py can show
 * that our tokens and Python's cryptography.fernet are interchangeable.
 *
 *	fernet_tool genkey	print a new key
 *	fernet_tool encrypt	stdin (exact bytes) -> token on stdout
 *	fernet_tool decrypt	token on stdin -> plaintext (exact bytes)
 *
 * encrypt and decrypt take the key list from DATABASE_CREDENTIALS_KEY,
 * as the daemon does (first key encrypts, any key decrypts).  decrypt
 * ignores trailing whitespace after the token, checks no TTL, and on any
 * failure says "invalid token" and exits 1.  Keys are never printed
 * except by genkey.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dc.h"
#include "fernet.h"

#define TOOL_NAME	"fernet_tool"
#define TOOL_KEY_ENV	"DATABASE_CREDENTIALS_KEY"
#define TOOL_MAX_INPUT	(16 * 1024 * 1024)

static void
usage(void)
{
	fprintf(stderr, "usage: %s genkey | encrypt | decrypt\n"
	    "  encrypt and decrypt read the keys from %s\n",
	    TOOL_NAME, TOOL_KEY_ENV);
}

/*
 * Read all of stdin into a NUL-terminated buffer.  The buffer grows by
 * copying so no stale copy of a plaintext is left behind by realloc.
 */
static int
read_stdin(char **out, size_t *outlen)
{
	char *buf = NULL, *nbuf;
	size_t cap = 4096, len = 0, n;
	int rc = DC_ENOMEM;

	if ((buf = malloc(cap)) == NULL)
		goto out;
	for (;;) {
		if (len + 1 == cap) {
			rc = DC_EINVAL;
			if (cap >= TOOL_MAX_INPUT)
				goto out;
			rc = DC_ENOMEM;
			if ((nbuf = malloc(cap * 2)) == NULL)
				goto out;
			memcpy(nbuf, buf, len);
			dc_explicit_bzero(buf, cap);
			free(buf);
			buf = nbuf;
			cap *= 2;
		}
		n = fread(buf + len, 1, cap - 1 - len, stdin);
		len += n;
		if (n == 0)
			break;
	}
	rc = DC_ERR;
	if (ferror(stdin))
		goto out;
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	buf = NULL;
	rc = DC_OK;
out:
	if (buf != NULL) {
		dc_explicit_bzero(buf, cap);
		free(buf);
	}
	return rc;
}

static int
load_ring(struct dc_fernet_ring *ring)
{
	const char *text = getenv(TOOL_KEY_ENV), *why = NULL;
	int bad = -1;

	if (text == NULL) {
		fprintf(stderr, "%s: %s is not set\n", TOOL_NAME,
		    TOOL_KEY_ENV);
		return DC_EINVAL;
	}
	if (dc_fernet_ring_parse(ring, text, &why, &bad) != DC_OK) {
		if (bad >= 0)
			fprintf(stderr, "%s: %s: key %d: %s\n", TOOL_NAME,
			    TOOL_KEY_ENV, bad, why);
		else
			fprintf(stderr, "%s: %s: %s\n", TOOL_NAME,
			    TOOL_KEY_ENV, why);
		return DC_EINVAL;
	}
	return DC_OK;
}

static int
cmd_genkey(void)
{
	char key[DC_FERNET_KEY_B64_LEN + 1];
	int rc = 1;

	if (dc_fernet_genkey(key) != DC_OK) {
		fprintf(stderr, "%s: cannot make a key\n", TOOL_NAME);
		goto out;
	}
	if (printf("%s\n", key) < 0 || fflush(stdout) != 0)
		goto out;
	rc = 0;
out:
	dc_explicit_bzero(key, sizeof(key));
	return rc;
}

static int
cmd_encrypt(void)
{
	struct dc_fernet_ring ring;
	char *msg = NULL, *token = NULL;
	size_t len = 0;
	int rc = 1;

	memset(&ring, 0, sizeof(ring));
	if (load_ring(&ring) != DC_OK)
		goto out;
	if (read_stdin(&msg, &len) != DC_OK) {
		fprintf(stderr, "%s: cannot read stdin\n", TOOL_NAME);
		goto out;
	}
	if (dc_fernet_encrypt(&ring, msg, len, (uint64_t)time(NULL), NULL,
	    &token) != DC_OK) {
		fprintf(stderr, "%s: cannot encrypt\n", TOOL_NAME);
		goto out;
	}
	if (printf("%s\n", token) < 0 || fflush(stdout) != 0)
		goto out;
	rc = 0;
out:
	if (msg != NULL) {
		dc_explicit_bzero(msg, len);
		free(msg);
	}
	free(token);
	dc_fernet_ring_wipe(&ring);
	return rc;
}

static int
cmd_decrypt(void)
{
	struct dc_fernet_ring ring;
	char *token = NULL, *msg = NULL;
	size_t tlen = 0, len = 0;
	int rc = 1;

	memset(&ring, 0, sizeof(ring));
	if (load_ring(&ring) != DC_OK)
		goto out;
	if (read_stdin(&token, &tlen) != DC_OK) {
		fprintf(stderr, "%s: cannot read stdin\n", TOOL_NAME);
		goto out;
	}
	while (tlen > 0 && (token[tlen - 1] == '\n' ||
	    token[tlen - 1] == '\r' || token[tlen - 1] == ' ' ||
	    token[tlen - 1] == '\t'))
		token[--tlen] = '\0';
	/* A NUL inside would cut the token short: refuse it instead. */
	if (strlen(token) != tlen ||
	    dc_fernet_decrypt(&ring, token, (uint64_t)time(NULL), 0, &msg,
	    &len) != DC_OK) {
		fprintf(stderr, "invalid token\n");
		goto out;
	}
	if (len > 0 && fwrite(msg, 1, len, stdout) != len)
		goto out;
	if (fflush(stdout) != 0)
		goto out;
	rc = 0;
out:
	if (msg != NULL) {
		dc_explicit_bzero(msg, len);
		free(msg);
	}
	free(token);
	dc_fernet_ring_wipe(&ring);
	return rc;
}

int
main(int argc, char *argv[])
{
	if (argc != 2) {
		usage();
		return 2;
	}
	if (dc_fernet_init() != DC_OK) {
		fprintf(stderr, "%s: libgcrypt is too old\n", TOOL_NAME);
		return 1;
	}
	if (strcmp(argv[1], "genkey") == 0)
		return cmd_genkey();
	if (strcmp(argv[1], "encrypt") == 0)
		return cmd_encrypt();
	if (strcmp(argv[1], "decrypt") == 0)
		return cmd_decrypt();
	usage();
	return 2;
}
