/*
 * fuzz_route.c - a request path -> what routing makes of it: the
 * percent-decoding (dc_http_decode_path) and the match against every
 * pattern of the route tables (dc_http_match_path), as dispatch in
 * src/http/http.c does them.
 *
 * Invariants: the decoder agrees with a reference decoder written here
 * (a % without two hex digits and an escaped NUL or control character
 * are refused, nothing else is); a decoded path is never longer than
 * the raw one; a match captures exactly one non-empty segment per {x},
 * at most DC_MAX_PATH_ARGS, and putting the captures back into the
 * pattern gives the path again; a failed match leaves no capture
 * behind; matching with and without captures agrees.
 */
#include <string.h>

#include "fuzz.h"
#include "dc.h"
#include "http.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

static int
hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The decoding routing must do, written plainly: 1 ok, 0 refused. */
static int
ref_decode(const char *raw, char *out)
{
	size_t	 i, j = 0;
	int	 v;

	for (i = 0; raw[i] != '\0'; i++) {
		if (raw[i] != '%') {
			out[j++] = raw[i];
			continue;
		}
		if (raw[i + 1] == '\0' || hex(raw[i + 1]) < 0 ||
		    raw[i + 2] == '\0' || hex(raw[i + 2]) < 0)
			return 0;
		v = hex(raw[i + 1]) * 16 + hex(raw[i + 2]);
		if (v < 0x20 || v == 0x7f)
			return 0;
		out[j++] = (char)v;
		i += 2;
	}
	out[j] = '\0';
	return 1;
}

/* The pattern with its {x} replaced by args, in buf. */
static void
rebuild(const char *pattern, char *const args[], int nargs, char *buf,
    size_t size)
{
	const char	*p = pattern;
	size_t		 n = 0, k;
	int		 a = 0;

	while (*p != '\0') {
		if (*p == '{') {
			FUZZ_ASSERT(a < nargs);
			k = strlen(args[a]);
			FUZZ_ASSERT(n + k < size);
			memcpy(buf + n, args[a++], k);
			n += k;
			p = strchr(p, '}');
			FUZZ_ASSERT(p != NULL);
			p++;
			continue;
		}
		FUZZ_ASSERT(n + 1 < size);
		buf[n++] = *p++;
	}
	FUZZ_ASSERT(a == nargs);
	buf[n] = '\0';
}

static void
check_route(const char *pattern, const char *path)
{
	char	*args[DC_MAX_PATH_ARGS] = { NULL }, *buf;
	size_t	 size = strlen(path) + 1;
	int	 nargs = -1, i, braces = 0, m;
	const char *p;

	for (p = pattern; (p = strchr(p, '{')) != NULL; p++)
		braces++;
	m = dc_http_match_path(pattern, path, args, &nargs);
	FUZZ_ASSERT(m == dc_http_match_path(pattern, path, NULL, NULL));
	if (!m) {
		FUZZ_ASSERT(nargs == -1);
		for (i = 0; i < DC_MAX_PATH_ARGS; i++)
			FUZZ_ASSERT(args[i] == NULL);
		return;
	}
	FUZZ_ASSERT(nargs == braces && nargs <= DC_MAX_PATH_ARGS);
	for (i = 0; i < nargs; i++) {
		FUZZ_ASSERT(args[i] != NULL && args[i][0] != '\0');
		FUZZ_ASSERT(strchr(args[i], '/') == NULL);
		FUZZ_ASSERT(strlen(args[i]) < size);
	}
	for (; i < DC_MAX_PATH_ARGS; i++)
		FUZZ_ASSERT(args[i] == NULL);
	if ((buf = malloc(size)) == NULL)
		abort();
	rebuild(pattern, args, nargs, buf, size);
	FUZZ_ASSERT(strcmp(buf, path) == 0);
	free(buf);
	for (i = 0; i < nargs; i++)
		free(args[i]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*method, *pattern;
	char		*raw, *path = NULL, *ref;
	int		 rc, idx, ok;

	/* evhttp hands the path over as a C string */
	raw = fuzz_cstring(data, size);
	if ((ref = malloc(strlen(raw) + 1)) == NULL)
		abort();
	ok = ref_decode(raw, ref);
	rc = dc_http_decode_path(raw, &path);
	FUZZ_ASSERT(rc == DC_OK || rc == DC_EINVAL);
	FUZZ_ASSERT(ok == (rc == DC_OK));
	if (rc != DC_OK) {
		FUZZ_ASSERT(path == NULL);
		goto out;
	}
	FUZZ_ASSERT(path != NULL && strcmp(path, ref) == 0);
	FUZZ_ASSERT(strlen(path) <= strlen(raw));
	for (idx = 0; dc_http_route_at(idx, &method, &pattern) == DC_OK;
	    idx++) {
		FUZZ_ASSERT(method != NULL && pattern != NULL);
		check_route(pattern, path);
	}
	FUZZ_ASSERT(idx > 0);
out:
	free(path);
	free(ref);
	free(raw);
	return 0;
}
