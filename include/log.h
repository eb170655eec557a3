/*
 * log.h - logging to stderr, syslog or a file, as text or JSON lines,
 * with levels.
 *
 * Every line names the process role (master, worker N) and pid.  Callers
 * never pass secrets: URLs are masked before they get here, keys and
 * tokens are never logged at all.
 */
#ifndef DC_LOG_H
#define DC_LOG_H

#include <sys/types.h>

#include "dc.h"
#include "config.h"

/*
 * target: "stderr", "syslog" or a file path; json: log_format = json.
 * 0 or DC_ERR (errno set).
 */
int		 dc_log_open(const char *target, int level, int json);

/* Where cfg says to log, for a foreground run or a daemon. */
const char	*dc_log_target(const struct dc_config *cfg, int foreground);

/*
 * After rotation (USR1, log-reopen): open the file again.  On failure
 * the old descriptor is kept and the failure logged there and to syslog;
 * DC_ERR.
 */
int		 dc_log_reopen(void);

/* Hand the open log file to the user the daemon switches to. */
int		 dc_log_chown(uid_t uid, gid_t gid);

int		 dc_log_level(void);
void		 dc_log_close(void);

void		 dc_log(int level, const char *fmt, ...) DC_PRINTF(2, 3);

/* One request, for the access log line (info level). */
struct dc_access {
	const char	*id;		/* request id */
	const char	*client;	/* address, or "unix" */
	const char	*method;
	const char	*path;
	const char	*user_agent;	/* "-" when none */
	int		 status;
	size_t		 bytes;		/* response body */
	uint64_t	 ms;		/* duration */
	int		 gone;		/* the client left first */
};

void		 dc_log_access(const struct dc_access *a);

/*
 * libevent's own messages (event_set_log_callback), at most
 * DC_LOG_LIBEVENT_BURST a minute; the next line after a quiet spell
 * says how many were left out.
 */
#define DC_LOG_LIBEVENT_BURST	20
void		 dc_log_libevent(int severity, const char *msg);

#define log_error(...)	dc_log(DC_LOG_ERROR, __VA_ARGS__)
#define log_warn(...)	dc_log(DC_LOG_WARNING, __VA_ARGS__)
#define log_info(...)	dc_log(DC_LOG_INFO, __VA_ARGS__)
#define log_debug(...)	do { if (dc_log_level() >= DC_LOG_DEBUG) \
	dc_log(DC_LOG_DEBUG, __VA_ARGS__); } while (0)

#endif /* DC_LOG_H */
