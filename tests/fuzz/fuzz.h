/*
 * fuzz.h - what the libFuzzer harnesses share: the entry points libFuzzer
 * calls, and FUZZ_ASSERT, which turns a broken invariant into a crash
 * libFuzzer reports (with the input that caused it) under any build.
 */
#ifndef DC_FUZZ_H
#define DC_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int	 LLVMFuzzerInitialize(int *argc, char ***argv);
int	 LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(expr) do {						\
	if (!(expr)) {							\
		fprintf(stderr, "%s:%d: invariant broken: %s\n",	\
		    __FILE__, __LINE__, #expr);				\
		abort();						\
	}								\
} while (0)

/* A NUL-terminated copy of the input (most parsers want a C string). */
static inline char *
fuzz_cstring(const uint8_t *data, size_t size)
{
	char	*s = malloc(size + 1);

	if (s == NULL)
		abort();
	for (size_t i = 0; i < size; i++)
		s[i] = (char)data[i];
	s[size] = '\0';
	return s;
}

/* 1 when s is UTF-8 without control characters (fit for JSON and logs). */
static inline int
fuzz_clean_text(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	int	 n, k;

	while (*p != '\0') {
		if (*p < 0x20 || *p == 0x7f)
			return 0;
		if (*p < 0x80) {
			p++;
			continue;
		}
		n = *p >= 0xc2 && *p <= 0xdf ? 1 : *p >= 0xe0 && *p <= 0xef ?
		    2 : *p >= 0xf0 && *p <= 0xf4 ? 3 : 0;
		if (n == 0)
			return 0;
		for (k = 1; k <= n; k++)
			if ((p[k] & 0xc0) != 0x80)
				return 0;
		p += n + 1;
	}
	return 1;
}

#endif /* DC_FUZZ_H */
