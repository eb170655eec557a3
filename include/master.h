/*
 * master.h - the master process: owns the listening socket, the shared
 * registry (its only writer), the system-database connection that LISTENs
 * for changes, and one channel per worker.  It never serves HTTP.
 */
#ifndef DC_MASTER_H
#define DC_MASTER_H

#include "config.h"

struct dc_master_opts {
	const char	*config_path;	/* absolute, or NULL */
	int		 foreground;
	int		 verbose;
};

/* Runs until shutdown; returns the process exit status. */
int		 dc_master_main(struct dc_config *cfg,
		     const struct dc_master_opts *opts);

#endif /* DC_MASTER_H */
