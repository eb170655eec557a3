/*
 * dc.h - what every datachatd source file shares.
 *
 * The project prefix is dc_.  This header holds the few process-wide
 * globals (declared here, defined in src/core/util.c), the error codes
 * that carry a failure from where it happens to the edge that reports
 * it, the out-of-memory policy, and small helpers too trivial for a
 * module of their own.
 *
 * Out of memory.  An allocation that fails is an error like any other,
 * never a crash and never a silent loss: the function returns DC_ENOMEM
 * (or NULL, where NULL already means failure) along its one error path,
 * freeing what it made, and the edge reports it: a request gets 500
 * {"detail": "out of memory"}, a control command fails with "out of
 * memory", the master logs it and keeps its running state.  json-c is
 * held to the same rule: json_object_new_*() may return NULL, and
 * json_object_object_add() / json_object_array_add() return -1 without
 * taking the value, so building a response goes through the dc_jb_*
 * helpers of jsonw.h, which remember the first failure; the builder
 * checks once, at the end, and drops the half-built object.  Where a
 * failure cannot be reported (a log line, a best-effort metric), the
 * code says so in a comment.
 */
#ifndef DC_H
#define DC_H

#include <stddef.h>
#include <stdint.h>

#ifndef PACKAGE_VERSION
#include "config_auto.h"
#endif

#define DC_NAME		"datachatd"
#define DC_VERSION	PACKAGE_VERSION

/* The id of the virtual entry built from the environment's DATABASE_URL. */
#define DC_ENV_ENTRY_ID	"00000000-0000-0000-0000-00000000dada"

/* Error codes: 0 is success, everything else is one of these. */
enum dc_err {
	DC_OK = 0,
	DC_ERR = -1,		/* generic failure, message elsewhere */
	DC_ENOMEM = -2,
	DC_EINVAL = -3,		/* bad input */
	DC_ENOENT = -4,		/* unknown id */
	DC_EFULL = -5,		/* registry full */
	DC_EUNAVAIL = -6,	/* system database or target unreachable */
	DC_ETOKEN = -7,		/* Fernet token does not verify */
	DC_ETIMEOUT = -8,
	DC_EPERM = -9,		/* refused by policy (privileged_targets) */
};

#define DC_ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define DC_UNUSED		__attribute__((unused))
#define DC_PRINTF(f, a)		__attribute__((format(printf, f, a)))

/* Monotonic and wall clocks in milliseconds. */
uint64_t	 dc_now_ms(void);
uint64_t	 dc_now_us(void);
uint64_t	 dc_wall_ms(void);

/* strlcpy semantics: always terminates, returns strlen(src). */
size_t		 dc_strlcpy(char *dst, const char *src, size_t size);

/* Wipe memory that held a secret; not optimised away. */
void		 dc_explicit_bzero(void *p, size_t n);

/* Role of this process, for log lines: "master" or "worker N". */
extern char	 dc_proc_title[32];

#endif /* DC_H */
