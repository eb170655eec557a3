/*
 * main.c - datachatd's launcher: command-line options, configuration
 * check (-t), library initialisation that must happen once before fork
 * (libgcrypt, libcurl), then the master.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "check.h"
#include "dc.h"
#include "config.h"
#include "fernet.h"
#include "log.h"
#include "master.h"
#include "proctitle.h"

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: datachatd [-fhTtVv] [-c file] [--dump-config]\n"
	    "\n"
	    "  -c file        read the configuration from file\n"
	    "  -f             stay in the foreground, log to stderr\n"
	    "  -t             check the configuration (file and environment),\n"
	    "                 the system database and the LLM settings, and"
	    " exit\n"
	    "  -T             like -t, then print the effective configuration\n"
	    "                 with its secrets masked\n"
	    "  -v             verbose: log at debug level\n"
	    "  -V             print the version and exit\n"
	    "  -h             print this help and exit\n"
	    "  --dump-config  print a sample configuration with every key\n"
	    "\n"
	    "Environment: SYSTEM_DATABASE_URL, DATABASE_CREDENTIALS_KEY,\n"
	    "DATABASE_URL and the LLM_* variables override the file.\n"
	    "Signals: HUP reload, TERM smart shutdown, INT fast shutdown,\n"
	    "QUIT immediate shutdown, USR1 reopen log files.\n"
	    "See datachatd(8) and datachatd.conf(5).\n");
}

static void
report_stderr(void *arg, const char *file, int line, const char *msg)
{
	int *n = arg;

	if (line > 0)
		fprintf(stderr, "%s:%d: %s\n", file, line, msg);
	else
		fprintf(stderr, "%s: %s\n", file, msg);
	(*n)++;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dump-config", no_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	struct dc_master_opts opts;
	struct dc_config cfg;
	char *path = NULL, abspath[PATH_MAX];
	int ch, test = 0, problems, reported = 0, rc;

	/* before anything points into argv: the title will overwrite it */
	dc_proctitle_init(argc, argv);
	memset(&opts, 0, sizeof(opts));
	while ((ch = getopt_long(argc, argv, "c:fhTtvV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'f':
			opts.foreground = 1;
			break;
		case 't':
			test = 1;
			break;
		case 'T':
			test = 2;
			break;
		case 'v':
			opts.verbose = 1;
			break;
		case 'V':
			printf("datachatd %s\n", DC_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		case 'D':
			dc_config_dump_sample(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (path != NULL) {
		/* a daemon chdirs to /: keep the file reachable for reload */
		if (realpath(path, abspath) == NULL) {
			fprintf(stderr, "datachatd: %s: %s\n", path,
			    strerror(errno));
			return 1;
		}
		opts.config_path = abspath;
	}
	if (dc_fernet_init() != DC_OK) {
		fprintf(stderr, "datachatd: libgcrypt initialisation failed\n");
		return 1;
	}
	memset(&cfg, 0, sizeof(cfg));
	problems = dc_config_load(&cfg, opts.config_path, report_stderr,
	    &reported);
	if (test) {
		if (problems != 0) {
			fprintf(stderr, "datachatd: configuration has %d "
			    "problem(s)\n", reported > 0 ? reported : 1);
			dc_config_free(&cfg);
			return 1;
		}
		rc = dc_check_run(&cfg, test == 2);
		dc_config_free(&cfg);
		return rc;
	}
	if (problems != 0) {
		fprintf(stderr, "datachatd: not starting: the configuration "
		    "has %d problem(s)\n", reported > 0 ? reported : 1);
		dc_config_free(&cfg);
		return 1;
	}
	if (opts.verbose)
		cfg.log_level = DC_LOG_DEBUG;
	/* a daemon that logs to stderr switches to syslog once detached */
	if (dc_log_open(cfg.log, cfg.log_level,
	    strcmp(cfg.log_format, "json") == 0) != DC_OK) {
		fprintf(stderr, "datachatd: cannot open log %s: %s\n", cfg.log,
		    strerror(errno));
		dc_config_free(&cfg);
		return 1;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = dc_master_main(&cfg, &opts);
	curl_global_cleanup();
	dc_config_free(&cfg);
	dc_log_close();
	return rc;
}
