/*
 * log.h - logging to stderr, syslog or a file, with levels.
 *
 * Every line names the process role (master, worker N) and pid.  Callers
 * never pass secrets: URLs are masked before they get here, keys and
 * tokens are never logged at all.
 */
#ifndef DC_LOG_H
#define DC_LOG_H

#include "dc.h"
#include "config.h"

/* target: "stderr", "syslog" or a file path.  0 or DC_ERR (errno set). */
int		 dc_log_open(const char *target, int level);
int		 dc_log_reopen(void);		/* after rotation: SIGUSR1 */
void		 dc_log_set_level(int level);
int		 dc_log_level(void);
void		 dc_log_close(void);

void		 dc_log(int level, const char *fmt, ...) DC_PRINTF(2, 3);

#define log_error(...)	dc_log(DC_LOG_ERROR, __VA_ARGS__)
#define log_warn(...)	dc_log(DC_LOG_WARNING, __VA_ARGS__)
#define log_info(...)	dc_log(DC_LOG_INFO, __VA_ARGS__)
#define log_debug(...)	do { if (dc_log_level() >= DC_LOG_DEBUG) \
	dc_log(DC_LOG_DEBUG, __VA_ARGS__); } while (0)

#endif /* DC_LOG_H */
