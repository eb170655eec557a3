/*
 * log.c - one logging function for every process.
 *
 * Foreground runs log to stderr; a daemon logs to syslog or a file.  A
 * file is opened O_APPEND so master and workers can share it (each line
 * is one write(2)), and reopened on SIGUSR1 after logrotate moved it.
 * The master opens it as root, before it drops privileges, and hands it
 * to `user` (dc_log_chown), so that it can still be reopened afterwards.
 * A reopen that fails keeps the old descriptor and says so there and to
 * syslog: nothing is lost silently.
 *
 * Lines are text ("TIME UTC [PID] PROCESS LEVEL: message") or, with
 * log_format = json, one JSON object per line.  The access log line of a
 * request is structured (dc_log_access) so that the JSON form carries
 * its fields one by one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"

static int	 log_fd = 2;
static int	 log_use_syslog;
static int	 log_lvl = DC_LOG_INFO;
static int	 log_json;
static char	 log_path[1024];

static const char *const level_names[] = { "ERROR", "WARNING", "INFO", "DEBUG" };
static const char *const json_levels[] = { "error", "warning", "info", "debug" };
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
dc_log_open(const char *target, int level, int json)
{
	char old[sizeof(log_path)];
	int err;

	log_lvl = level;
	log_json = json;
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
	/* a file that cannot be opened leaves the current log as it is */
	dc_strlcpy(old, log_path, sizeof(old));
	dc_strlcpy(log_path, target, sizeof(log_path));
	if (log_open_file() != DC_OK) {
		err = errno;
		dc_strlcpy(log_path, old, sizeof(log_path));
		errno = err;
		return DC_ERR;
	}
	if (log_use_syslog)
		closelog();
	log_use_syslog = 0;
	return DC_OK;
}

const char *
dc_log_target(const struct dc_config *cfg, int foreground)
{
	if (strcmp(cfg->log, "stderr") == 0 && !foreground)
		return "syslog";	/* a daemon's stderr is /dev/null */
	return cfg->log;
}

int
dc_log_reopen(void)
{
	int err;

	if (log_path[0] == '\0')
		return DC_OK;
	if (log_open_file() == DC_OK)
		return DC_OK;
	/* still on the old descriptor: say it there, and to syslog */
	err = errno;
	log_error("cannot reopen log file %s: %s; still writing to the "
	    "file it replaced", log_path, strerror(err));
	openlog(DC_NAME, LOG_PID, LOG_DAEMON);
	syslog(LOG_ERR, "%s: cannot reopen log file %s: %s", dc_proc_title,
	    log_path, strerror(err));
	closelog();
	errno = err;
	return DC_ERR;
}

int
dc_log_chown(uid_t uid, gid_t gid)
{
	if (log_path[0] == '\0' || log_fd <= 2)
		return DC_OK;
	return fchown(log_fd, uid, gid) == 0 ? DC_OK : DC_ERR;
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

/* Append s to buf as the inside of a JSON string; returns the new length. */
static size_t
json_escape(char *buf, size_t len, size_t size, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char c;

	for (; *s != '\0' && len + 7 < size; s++) {
		c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			buf[len++] = '\\';
			buf[len++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			memcpy(buf + len, "\\u00", 4);
			buf[len + 4] = hex[c >> 4];
			buf[len + 5] = hex[c & 0xf];
			len += 6;
		} else
			buf[len++] = (char)c;
	}
	buf[len] = '\0';
	return len;
}

/* Printable text for a text line: control characters become '?'. */
static void
text_clean(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

static void
timestamp(char *ts, size_t size, int iso)
{
	struct timespec now;
	struct tm tm;
	char base[32];

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(base, sizeof(base), iso ? "%Y-%m-%dT%H:%M:%S" :
	    "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(ts, size, iso ? "%s.%03ldZ" : "%s.%03ld UTC", base,
	    now.tv_nsec / 1000000);
}

/* One line out: syslog, or the log descriptor in one write. */
static void
emit(int level, const char *text_msg, const char *json_fields)
{
	char line[4096], ts[48];
	size_t n;

	if (log_use_syslog) {
		if (log_json)
			syslog(syslog_prio[level], "{\"process\":\"%s\","
			    "\"level\":\"%s\",%s}", dc_proc_title,
			    json_levels[level], json_fields);
		else
			syslog(syslog_prio[level], "%s: %s: %s", dc_proc_title,
			    level_names[level], text_msg);
		return;
	}
	timestamp(ts, sizeof(ts), log_json);
	if (log_json)
		n = (size_t)snprintf(line, sizeof(line), "{\"time\":\"%s\","
		    "\"pid\":%d,\"process\":\"%s\",\"level\":\"%s\",%s}\n", ts,
		    (int)getpid(), dc_proc_title, json_levels[level],
		    json_fields);
	else
		n = (size_t)snprintf(line, sizeof(line), "%s [%d] %s %s: %s\n",
		    ts, (int)getpid(), dc_proc_title, level_names[level],
		    text_msg);
	if (n > sizeof(line) - 1) {
		/* cut, but keep it one line (and, for JSON, one object) */
		n = sizeof(line) - 1;
		if (log_json)
			memcpy(line + n - 5, "...}\n", 5);
		else
			line[n - 1] = '\n';
	}
	if (write(log_fd, line, n) < 0) {
		/* nowhere left to report it */
	}
}

void
dc_log_libevent(int severity, const char *msg)
{
	static uint64_t window, dropped;
	static int n;
	uint64_t now = dc_now_ms();
	int level;

	if (now - window >= 60000 || window == 0) {
		if (dropped > 0)
			dc_log(DC_LOG_WARNING, "libevent: %llu message(s) left "
			    "out in the last minute", (unsigned long long)dropped);
		window = now;
		n = 0;
		dropped = 0;
	}
	if (++n > DC_LOG_LIBEVENT_BURST) {
		dropped++;
		return;
	}
	switch (severity) {
	case EVENT_LOG_DEBUG:	level = DC_LOG_DEBUG; break;
	case EVENT_LOG_MSG:	level = DC_LOG_INFO; break;
	case EVENT_LOG_WARN:	level = DC_LOG_WARNING; break;
	default:		level = DC_LOG_ERROR; break;
	}
	dc_log(level, "libevent: %s", msg);
}

void
dc_log(int level, const char *fmt, ...)
{
	char msg[2048], fields[2200];
	va_list ap;
	int saved = errno;
	size_t n;

	if (level > log_lvl)
		return;
	if (level < DC_LOG_ERROR)
		level = DC_LOG_ERROR;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (log_json) {
		n = (size_t)snprintf(fields, sizeof(fields), "\"msg\":\"");
		n = json_escape(fields, n, sizeof(fields) - 2, msg);
		memcpy(fields + n, "\"", 2);
	} else
		fields[0] = '\0';
	emit(level, msg, fields);
	errno = saved;
}

void
dc_log_access(const struct dc_access *a)
{
	char msg[2048], ua[256], fields[2600];
	int saved = errno;
	size_t n;

	if (DC_LOG_INFO > log_lvl)
		return;
	if (log_json) {
		n = (size_t)snprintf(fields, sizeof(fields),
		    "\"type\":\"access\",\"request_id\":\"");
		n = json_escape(fields, n, sizeof(fields), a->id);
		n += (size_t)snprintf(fields + n, sizeof(fields) - n,
		    "\",\"client\":\"");
		n = json_escape(fields, n, sizeof(fields), a->client);
		n += (size_t)snprintf(fields + n, sizeof(fields) - n,
		    "\",\"method\":\"%s\",\"path\":\"", a->method);
		n = json_escape(fields, n, sizeof(fields), a->path);
		n += (size_t)snprintf(fields + n, sizeof(fields) - n,
		    "\",\"status\":%d,\"bytes\":%zu,\"duration_ms\":%llu,"
		    "\"client_gone\":%s,\"user_agent\":\"", a->status, a->bytes,
		    (unsigned long long)a->ms, a->gone ? "true" : "false");
		n = json_escape(fields, n, sizeof(fields) - 2, a->user_agent);
		memcpy(fields + n, "\"", 2);
		emit(DC_LOG_INFO, NULL, fields);
	} else {
		dc_strlcpy(ua, a->user_agent, sizeof(ua));
		for (n = 0; ua[n] != '\0'; n++)
			if (ua[n] == '"')
				ua[n] = '\'';	/* the quotes delimit it */
		snprintf(msg, sizeof(msg), "%s %s %s %s %d %zu %llums \"%s\"%s",
		    a->id, a->client, a->method, a->path, a->status, a->bytes,
		    (unsigned long long)a->ms, ua,
		    a->gone ? " (client gone)" : "");
		text_clean(msg);
		emit(DC_LOG_INFO, msg, NULL);
	}
	errno = saved;
}
