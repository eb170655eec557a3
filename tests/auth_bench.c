/*
 * auth_bench.c - what the token check's own steps cost, for
 * scripts/bench-registry: SHA-256 of a token (dc_token_hash) and its
 * lookup in the shared table (dc_tokens_lookup, which compares every
 * entry in constant time), with 1, 64 and DC_TOKENS_MAX tokens.
 *
 *   auth_bench [ITERATIONS]
 *
 * Prints one line per table size: "tokens N: hash X ns, lookup Y ns,
 * both Z ns per check", the best of five runs of ITERATIONS (default
 * 200000) checks each, since a shared machine only ever adds time.
 * A measurement, not a test: it exits 0 unless something failed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dc.h"
#include "fernet.h"
#include "tokens.h"

#define RUNS	5

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Best of RUNS, in ns per iteration; what == 0 hash, 1 lookup, 2 both. */
static double
best(struct dc_tokens *t, const char *tok, long iters, int what)
{
	uint8_t hash[DC_TOKEN_HASH_LEN];
	struct dc_token out;
	volatile unsigned sink = 0;
	double b = 0.0, ns;
	uint64_t t0;
	long i;
	int r;

	dc_token_hash(tok, DC_TOKEN_LEN, hash);
	for (r = 0; r < RUNS; r++) {
		t0 = now_ns();
		for (i = 0; i < iters; i++) {
			if (what != 1)
				dc_token_hash(tok, DC_TOKEN_LEN, hash);
			if (what != 0 && dc_tokens_lookup(t, hash, &out) ==
			    DC_OK)
				sink += (unsigned)out.role;
			sink += hash[0];
		}
		ns = (double)(now_ns() - t0) / (double)iters;
		if (r == 0 || ns < b)
			b = ns;
	}
	(void)sink;
	return b;
}

int
main(int argc, char **argv)
{
	static const int sizes[] = { 1, 64, DC_TOKENS_MAX };
	struct dc_token *list = NULL;
	struct dc_tokens *t = NULL;
	char tok[DC_TOKEN_LEN + 1];
	long iters = argc > 1 ? strtol(argv[1], NULL, 10) : 200000;
	size_t k;
	int i, rc = 1;

	if (iters <= 0 || dc_fernet_init() != DC_OK ||
	    dc_tokens_create(&t, DC_TOKENS_MAX) != DC_OK ||
	    (list = calloc(DC_TOKENS_MAX, sizeof(*list))) == NULL) {
		fprintf(stderr, "auth_bench: cannot set up\n");
		goto out;
	}
	for (i = 0; i < DC_TOKENS_MAX; i++) {
		if (dc_token_generate(tok, list[i].hash) != DC_OK)
			goto out;
		snprintf(list[i].name, sizeof(list[i].name), "bench-%d", i);
		list[i].role = DC_ROLE_READ;
	}
	/* the token presented is the last of each table: found, as a
	 * valid one is; the lookup costs the same wherever it is */
	for (k = 0; k < DC_ARRAY_SIZE(sizes); k++) {
		if (sizes[k] < DC_TOKENS_MAX)
			memcpy(&list[sizes[k] - 1], &list[DC_TOKENS_MAX - 1],
			    sizeof(*list));
		if (dc_tokens_publish(t, list, sizes[k]) != sizes[k])
			goto out;
		printf("tokens %4d: hash %6.0f ns, lookup %6.0f ns, both %6.0f "
		    "ns per check\n", sizes[k], best(t, tok, iters, 0),
		    best(t, tok, iters, 1), best(t, tok, iters, 2));
	}
	rc = 0;
out:
	free(list);
	dc_tokens_destroy(t);
	return rc;
}
