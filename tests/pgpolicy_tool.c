/*
 * pgpolicy_tool.c - the guard and the function policy (pgguard.c,
 * pgpolicy.c) on a real catalog, for tests/integration/test_guard.py.
 *
 *   pgpolicy_tool CATALOG          statements on stdin, one a line
 *   pgpolicy_tool --sql            print the catalog query
 *
 * CATALOG holds dc_pgcat_sql's rows as tab-separated text (\N for NULL),
 * as the test reads them from a throwaway PostgreSQL 15.  For each line
 * of stdin it prints one line: "ok UNUSUAL" (0 or 1), or
 * "guard|refused|unknown<TAB>node<TAB>reason".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc.h"
#include "pgguard.h"
#include "pgpolicy.h"

static int
load(struct dc_pgcat *cat, const char *path)
{
	const char	*f[DC_PGCAT_COLUMNS];
	char		*line = NULL, *p, *tab;
	size_t		 cap = 0;
	ssize_t		 n;
	FILE		*fp;
	int		 i, rc = 0, lineno = 0;

	if ((fp = fopen(path, "r")) == NULL) {
		perror(path);
		return -1;
	}
	while ((n = getline(&line, &cap, fp)) > 0) {
		lineno++;
		if (line[n - 1] == '\n')
			line[n - 1] = '\0';
		for (i = 0, p = line; i < DC_PGCAT_COLUMNS; i++) {
			tab = p != NULL ? strchr(p, '\t') : NULL;
			if (tab != NULL)
				*tab = '\0';
			f[i] = p == NULL || strcmp(p, "\\N") == 0 ? NULL : p;
			p = tab != NULL ? tab + 1 : NULL;
		}
		if (dc_pgcat_add_row(cat, f) != DC_OK) {
			fprintf(stderr, "%s:%d: bad row\n", path, lineno);
			rc = -1;
		}
	}
	free(line);
	fclose(fp);
	return rc;
}

int
main(int argc, char **argv)
{
	struct dc_pgcat		*cat;
	struct dc_pgstmt	*st;
	struct dc_pg_refusal	 ref;
	char			*line = NULL;
	size_t			 cap = 0;
	ssize_t			 n;
	int			 rc, unusual;

	if (argc == 2 && strcmp(argv[1], "--sql") == 0) {
		printf("%s\n", dc_pgcat_sql);
		return 0;
	}
	if (argc != 2) {
		fprintf(stderr, "usage: pgpolicy_tool CATALOG < statements\n");
		return 2;
	}
	if ((cat = dc_pgcat_new()) == NULL || load(cat, argv[1]) != 0 ||
	    dc_pgcat_finish(cat) != DC_OK)
		return 1;
	while ((n = getline(&line, &cap, stdin)) > 0) {
		if (line[n - 1] == '\n')
			line[--n] = '\0';
		rc = dc_pgguard_parse(line, (size_t)n, &st, &ref);
		if (rc == DC_OK) {
			rc = dc_pgpolicy_check(cat, st, line, (size_t)n, &ref,
			    &unusual);
			dc_pgguard_free(st);
			if (rc == DC_OK) {
				printf("ok %d\n", unusual);
				continue;
			}
			printf("%s\t%s\t%s\n", rc == DC_ENOENT ? "unknown" :
			    "refused", ref.node, ref.reason);
		} else if (rc == DC_EINVAL)
			printf("guard\t%s\t%s\n", ref.node, ref.reason);
		else
			return 1;
		fflush(stdout);
	}
	free(line);
	dc_pgcat_free(cat);
	return 0;
}
