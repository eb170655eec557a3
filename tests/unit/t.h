/*
 * t.h - the smallest unit test harness that reports honestly: every CHECK
 * counts, a failure prints file:line and the expression, and main returns
 * non-zero when anything failed (automake's test driver reads the status).
 */
#ifndef DC_T_H
#define DC_T_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_checks, t_failures;

#define CHECK(expr) do {						\
	t_checks++;							\
	if (!(expr)) {							\
		t_failures++;						\
		fprintf(stderr, "%s:%d: CHECK failed: %s\n",		\
		    __FILE__, __LINE__, #expr);				\
	}								\
} while (0)

#define CHECK_STR(a, b) do {						\
	const char *t_a = (a), *t_b = (b);				\
	t_checks++;							\
	if (t_a == NULL || t_b == NULL || strcmp(t_a, t_b) != 0) {	\
		t_failures++;						\
		fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n",		\
		    __FILE__, __LINE__, t_a ? t_a : "(null)",		\
		    t_b ? t_b : "(null)");				\
	}								\
} while (0)

#define T_DONE() do {							\
	printf("%d checks, %d failed\n", t_checks, t_failures);	\
	return t_failures ? 1 : 0;					\
} while (0)

#endif /* DC_T_H */
