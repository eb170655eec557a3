/*
 * pgurl.h - what a PostgreSQL target URL may say, and what libpq gets.
 *
 * A target URL comes from whoever may register a connection (the REST
 * API, DataChat, psql on the system database).  It is parsed by libpq
 * itself (PQconninfoParse, which percent-decodes names and values) and
 * may only use the parameters a remote database needs: host and
 * hostaddr (TCP: no socket path unless allow_socket_targets), port,
 * dbname, user, password, sslmode, connect_timeout, keepalives*,
 * target_session_attrs.  Anything naming a file, a service, a peer or
 * session options is refused, with a reason that never quotes a value.
 *
 * The parameters handed to PQconnectStartParams (expand_dbname 0) are
 * the URL's, plus explicit values for what libpq would otherwise take
 * from the daemon's home directory: no ~/.pgpass, no client certificate
 * or key, no CRL, and the CA bundle of target_ssl_root_cert for
 * verify-ca and verify-full.
 *
 * target_networks (struct dc_netlist) lists CIDRs and host names; it is
 * checked on the URL (names, literal addresses) and again on the address
 * a name resolves to, before any connection is attempted.
 */
#ifndef DC_PGURL_H
#define DC_PGURL_H

#include <stddef.h>

#include <libpq-fe.h>

#define DC_PGPARAMS_MAX	40

struct dc_netlist;

struct dc_pgurl_policy {
	int		 allow_sockets;		/* allow_socket_targets */
	const char	*ssl_root_cert;		/* target_ssl_root_cert */
	const struct dc_netlist *networks;	/* target_networks; NULL: any */
};

struct dc_config;

/*
 * The policy of a configuration (its strings are borrowed: keep cfg
 * alive).  DC_OK, DC_EINVAL (target_networks does not parse: the config
 * was not validated), DC_ENOMEM.  Free with dc_pgurl_policy_free().
 */
int		 dc_pgurl_policy_init(struct dc_pgurl_policy *pol,
		     const struct dc_config *cfg);
void		 dc_pgurl_policy_free(struct dc_pgurl_policy *pol);

/* The keywords and values of one target connection. */
struct dc_pgparams {
	int		 n;
	const char	*keys[DC_PGPARAMS_MAX + 1];	/* NULL-terminated */
	const char	*vals[DC_PGPARAMS_MAX + 1];
	PQconninfoOption *opts;		/* the URL's values (secret) */
	char		*own[DC_PGPARAMS_MAX];	/* values of ours */
	int		 nown;
	int		 resolve;	/* a host name whose addresses must
					   be checked against the networks */
};

/*
 * Parse url (postgresql:// or postgres://, maybe with a +driver suffix)
 * under pol into p.  DC_OK; DC_EINVAL with why (no secret in it);
 * DC_ENOMEM.  Free p with dc_pgparams_free() in every case.
 */
int		 dc_pgurl_params(const char *url,
		     const struct dc_pgurl_policy *pol, struct dc_pgparams *p,
		     char *why, size_t whysz);
void		 dc_pgparams_free(struct dc_pgparams *p);

/* Add or replace key (value copied).  0 or DC_ENOMEM. */
int		 dc_pgparams_set(struct dc_pgparams *p, const char *key,
		     const char *val);

/* The value of key, or NULL. */
const char	*dc_pgparams_get(const struct dc_pgparams *p, const char *key);

/* dc_pgurl_params() without keeping the result: the write-path check. */
int		 dc_pgurl_check(const char *url,
		     const struct dc_pgurl_policy *pol, char *why,
		     size_t whysz);

/*
 * target_networks: "10.0.0.0/8, 2001:db8::/32, db.example.com,
 * .internal.example" (a leading dot: the domain and its sub-domains).
 * DC_OK, DC_EINVAL with why, DC_ENOMEM.  An empty text gives NULL (any).
 */
int		 dc_netlist_parse(const char *text, struct dc_netlist **out,
		     char *why, size_t whysz);
void		 dc_netlist_free(struct dc_netlist *nl);

/*
 * Is host (a name, or a literal IPv4/IPv6 address) allowed?  1 yes, 0 no,
 * -1 a name not listed by name: allowed only if every address it
 * resolves to is (dc_netlist_addr).
 */
int		 dc_netlist_host(const struct dc_netlist *nl, const char *host);

/* Is the address (text, as inet_ntop writes it) in one of the CIDRs? */
int		 dc_netlist_addr(const struct dc_netlist *nl, const char *addr);

#endif /* DC_PGURL_H */
