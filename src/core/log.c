/*
 * log.c - one logging function for every process.
 *
 * Foreground runs log to stderr; a daemon logs to syslog or a file.  A
 * file is opened O_APPEND so master and workers can share it (each line
 * is one write(2)), and reopened on SIGUSR1 after logrotate moved it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int	 log_fd = 2;
static int	 log_use_syslog;
static int	 log_lvl = DC_LOG_INFO;
static char	 log_path[1024];

static const char *const level_names[] = { "ERROR", "WARNING", "INFO", "DEBUG" };
static const int syslog_prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

static int
log_open_file(void)
{
	int fd;

	fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd == -1)
		return DC_ERR;
	if (log_fd > 2)
		close(log_fd);
	log_fd = fd;
	return DC_OK;
}

int
dc_log_open(const char *target, int level)
{
	log_lvl = level;
	if (target == NULL || strcmp(target, "stderr") == 0) {
		if (log_use_syslog)
			closelog();
		log_use_syslog = 0;
		if (log_fd > 2)
			close(log_fd);
		log_fd = 2;
		log_path[0] = '\0';
		return DC_OK;
	}
	if (strcmp(target, "syslog") == 0) {
		openlog(DC_NAME, LOG_PID | LOG_NDELAY, LOG_DAEMON);
		log_use_syslog = 1;
		log_path[0] = '\0';
		return DC_OK;
	}
	dc_strlcpy(log_path, target, sizeof(log_path));
	log_use_syslog = 0;
	return log_open_file();
}

int
dc_log_reopen(void)
{
	if (log_path[0] == '\0')
		return DC_OK;
	return log_open_file();
}

void
dc_log_set_level(int level)
{
	log_lvl = level;
}

int
dc_log_level(void)
{
	return log_lvl;
}

void
dc_log_close(void)
{
	if (log_use_syslog)
		closelog();
	if (log_fd > 2)
		close(log_fd);
	log_fd = 2;
}

void
dc_log(int level, const char *fmt, ...)
{
	char msg[2048], line[2300], ts[40];
	struct timespec now;
	struct tm tm;
	va_list ap;
	int n, saved = errno;

	if (level > log_lvl)
		return;
	if (level < DC_LOG_ERROR)
		level = DC_LOG_ERROR;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	if (log_use_syslog) {
		syslog(syslog_prio[level], "%s: %s: %s", dc_proc_title,
		    level_names[level], msg);
		errno = saved;
		return;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "%s.%03ld UTC [%d] %s %s: %s\n", ts,
	    now.tv_nsec / 1000000, (int)getpid(), dc_proc_title,
	    level_names[level], msg);
	if (n > (int)sizeof(line) - 1)
		n = (int)sizeof(line) - 1;
	if (write(log_fd, line, (size_t)n) < 0) {
		/* nowhere left to report it */
	}
	errno = saved;
}
