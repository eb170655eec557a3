/*
 * check.h - `datachatd -t` and `-T`: after the configuration validated,
 * report what a start would run into (system database, stored keys, LLM
 * settings) and, for -T, print the effective configuration with its
 * secrets masked.
 */
#ifndef DC_CHECK_H
#define DC_CHECK_H

struct dc_config;

/* Print the report (and the configuration when dump); the exit status. */
int		 dc_check_run(const struct dc_config *cfg, int dump);

#endif /* DC_CHECK_H */
