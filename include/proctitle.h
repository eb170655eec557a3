/*
 * proctitle.h - what ps(1) shows for each process ("datachatd: master
 * -c /etc/datachatd/datachatd.conf", "datachatd: worker 1 -c ..."), as
 * nginx and PostgreSQL do, by rewriting the memory of argv.
 */
#ifndef DC_PROCTITLE_H
#define DC_PROCTITLE_H

#include "dc.h"

/*
 * Call once at the start of main, before anything keeps a pointer into
 * argv or the environment's strings: it moves the environment to the
 * heap so that argv's memory, and the environment's after it, can hold
 * a title.  argv itself must not be read after the first
 * dc_proctitle_set.
 */
void		 dc_proctitle_init(int argc, char **argv);

/* Set the title; cut to the room argv had. */
void		 dc_proctitle_set(const char *fmt, ...) DC_PRINTF(1, 2);

#endif /* DC_PROCTITLE_H */
