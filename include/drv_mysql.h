/*
 * drv_mysql.h - the MySQL/MariaDB driver (src/drivers/mysql/): MariaDB
 * Connector/C's non-blocking API on the worker's loop.  Only the driver
 * table (drivers.c) and the driver's own tests include this.
 */
#ifndef DC_DRV_MYSQL_H
#define DC_DRV_MYSQL_H

#include <stddef.h>

struct dc_driver;

extern const struct dc_driver dc_driver_mysql;

enum dc_mysql_tls {
	DC_MY_TLS_PREFERRED = 0,	/* the connector's default */
	DC_MY_TLS_DISABLED,
	DC_MY_TLS_REQUIRED,		/* encrypted, certificate not checked */
	DC_MY_TLS_VERIFY_CA,		/* encrypted, certificate verified */
};

/* A mysql:// URL taken apart; the password is a secret. */
struct dc_mysql_url {
	char		 host[256];	/* name or address, no brackets */
	unsigned int	 port;
	char		 user[128];
	char		 password[256];
	char		 db[128];	/* "" for none */
	int		 tls;		/* enum dc_mysql_tls */
};

/*
 * Parse url the way DataChat's connector reads it (mysql[+driver]://
 * [user[:password]@]host[:port][/db][?params], user "root" and port 3306
 * by default, percent-decoded), with the query parameters ssl / tls
 * (true, false), ssl_mode / sslmode (disabled, preferred, required,
 * verify_ca) and charset (ignored: connections are utf8mb4).  0, or
 * DC_EINVAL with err saying why (never the password).
 */
int		 dc_mysql_url_parse(const char *url, struct dc_mysql_url *u,
		     char *err, size_t errsz);

/*
 * sql with each $1..$9 replaced by params[i - 1] as a literal that reads
 * the same whatever the session's sql_mode (_utf8mb4 X'...'), or NULL.
 * Only for the dialect's own statements: a '$' inside a quoted part is
 * replaced too.  Malloc'ed, NULL when out of memory or a $n has no param.
 */
char		*dc_mysql_bind(const char *sql, int nparams,
		     const char *const *params);

#endif /* DC_DRV_MYSQL_H */
