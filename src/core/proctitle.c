/*
 * proctitle.c - the process title (proctitle.h).
 *
 * Linux shows /proc/PID/cmdline, which is the memory argv's strings
 * were in; the environment's strings follow them.  dc_proctitle_init
 * copies the environment to the heap (getenv and setenv keep working),
 * and dc_proctitle_set writes the title over that whole area, padded
 * with NULs so nothing of the old command line shows through.  The
 * process name in /proc/PID/comm (what start-stop-daemon --name and
 * pgrep match) stays the executable's name.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proctitle.h"

extern char **environ;

static char	*title;		/* start of argv[0] */
static size_t	 room;		/* bytes up to the end of the env strings */

void
dc_proctitle_init(int argc, char **argv)
{
	char *end, **env;
	int i, n;

	if (argc < 1 || argv[0] == NULL)
		return;
	end = argv[0] + strlen(argv[0]) + 1;
	for (i = 1; i < argc; i++)
		if (argv[i] == end)
			end = argv[i] + strlen(argv[i]) + 1;
	for (n = 0; environ[n] != NULL; n++)
		;
	if ((env = calloc((size_t)n + 1, sizeof(*env))) == NULL)
		return;
	for (i = 0; i < n; i++) {
		if (environ[i] == end)
			end = environ[i] + strlen(environ[i]) + 1;
		if ((env[i] = strdup(environ[i])) == NULL) {
			while (i-- > 0)
				free(env[i]);
			free(env);
			return;		/* no title then, but nothing broken */
		}
	}
	environ = env;
	title = argv[0];
	room = (size_t)(end - argv[0]);
}

void
dc_proctitle_set(const char *fmt, ...)
{
	va_list ap;
	int n;

	if (title == NULL || room < 2)
		return;
	va_start(ap, fmt);
	n = vsnprintf(title, room, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n < room)
		memset(title + n, 0, room - (size_t)n);
}
