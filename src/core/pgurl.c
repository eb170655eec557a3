/*
 * pgurl.c - the target URL policy and target_networks (see pgurl.h).
 *
 * libpq is the only parser: PQconninfoParse gives each parameter its
 * decoded value, so "?pass%77ord=x" is the password parameter here just
 * as it is when libpq connects.  What is checked is what will be used.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc.h"
#include "config.h"
#include "pgurl.h"
#include "util.h"

/* Where a path must lead nowhere: /dev/null is no directory. */
#define NO_FILE		"/dev/null/none"

/* What a remote target needs; everything else is refused. */
static const char *const allowed_keys[] = {
	"host", "hostaddr", "port", "dbname", "user", "password", "sslmode",
	"connect_timeout", "keepalives", "keepalives_idle",
	"keepalives_interval", "keepalives_count", "target_session_attrs",
};

#define ALLOWED_TEXT	"host, hostaddr, port, dbname, user, password, " \
			"sslmode, connect_timeout, keepalives, " \
			"keepalives_idle, keepalives_interval, " \
			"keepalives_count and target_session_attrs"

/*
 * What libpq would read from the daemon's home directory unless told:
 * its password file, client certificate, key and CRLs.  Set explicitly
 * for every target (the root certificate depends on sslmode).
 */
static const struct {
	const char	*key;
	const char	*val;
} fixed_params[] = {
	{ "passfile", "/dev/null" },
	{ "sslcert", NO_FILE },
	{ "sslkey", NO_FILE },
	{ "sslcrl", NO_FILE },
	{ "sslcrldir", NO_FILE },
	{ "gssencmode", "disable" },
};

struct cidr {
	int		 family;
	unsigned char	 addr[16];
	int		 bits;
};

struct dc_netlist {
	int		 ncidrs, nnames;
	struct cidr	*cidrs;
	char		**names;	/* lower case; ".x" is a domain */
};

static void	 fail(char *, size_t, const char *, ...) DC_PRINTF(3, 4);

static void
fail(char *why, size_t whysz, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(why, whysz, fmt, ap);
	va_end(ap);
}

static int
in_list(const char *s, const char *const *list, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return 1;
	return 0;
}

/* --- parameters --- */

void
dc_pgparams_free(struct dc_pgparams *p)
{
	PQconninfoOption *o;
	int		 i;

	if (p->opts != NULL) {
		for (o = p->opts; o->keyword != NULL; o++)
			if (o->val != NULL)
				dc_explicit_bzero(o->val, strlen(o->val));
		PQconninfoFree(p->opts);
	}
	for (i = 0; i < p->nown; i++)
		free(p->own[i]);
	memset(p, 0, sizeof(*p));
}

const char *
dc_pgparams_get(const struct dc_pgparams *p, const char *key)
{
	int	 i;

	for (i = 0; i < p->n; i++)
		if (strcmp(p->keys[i], key) == 0)
			return p->vals[i];
	return NULL;
}

int
dc_pgparams_set(struct dc_pgparams *p, const char *key, const char *val)
{
	char		*v;
	int		 i;

	if (p->nown >= DC_PGPARAMS_MAX || (v = strdup(val)) == NULL)
		return DC_ENOMEM;
	p->own[p->nown++] = v;
	for (i = 0; i < p->n; i++)
		if (strcmp(p->keys[i], key) == 0) {
			p->vals[i] = v;
			return DC_OK;
		}
	if (p->n >= DC_PGPARAMS_MAX)
		return DC_ENOMEM;
	p->keys[p->n] = key;
	p->vals[p->n] = v;
	p->n++;
	p->keys[p->n] = p->vals[p->n] = NULL;
	return DC_OK;
}

/* The URL's own value, kept in opts. */
static int
add_url_param(struct dc_pgparams *p, const char *key, const char *val)
{
	if (p->n >= DC_PGPARAMS_MAX)
		return DC_ENOMEM;
	p->keys[p->n] = key;
	p->vals[p->n] = val;
	p->n++;
	p->keys[p->n] = p->vals[p->n] = NULL;
	return DC_OK;
}

static int
known_key(const PQconninfoOption *opts, const char *key)
{
	for (; opts->keyword != NULL; opts++)
		if (strcmp(opts->keyword, key) == 0)
			return 1;
	return 0;
}

/* "h1,h2" element i (empty when missing), into buf. */
static void
list_item(const char *list, int i, char *buf, size_t sz)
{
	const char	*p = list != NULL ? list : "";
	size_t		 n;

	for (; i > 0 && p != NULL; i--)
		if ((p = strchr(p, ',')) != NULL)
			p++;
	if (p == NULL) {
		buf[0] = '\0';
		return;
	}
	n = strcspn(p, ",");
	if (n >= sz)
		n = sz - 1;
	memcpy(buf, p, n);
	buf[n] = '\0';
}

static int
list_count(const char *list)
{
	int	 n = 1;

	if (list == NULL)
		return 0;
	for (; *list != '\0'; list++)
		if (*list == ',')
			n++;
	return n;
}

/* A value as it may appear in a reason: short, printable. */
static const char *
shown(const char *s, char *buf, size_t sz)
{
	size_t	 i;

	for (i = 0; s[i] != '\0' && i + 4 < sz && i < 64; i++)
		buf[i] = isprint((unsigned char)s[i]) ? s[i] : '?';
	if (s[i] != '\0') {
		memcpy(buf + i, "...", 3);
		i += 3;
	}
	buf[i] = '\0';
	return buf;
}

/*
 * Hosts: TCP names or addresses unless sockets are allowed, and within
 * target_networks when it is set.
 */
static int
check_hosts(const struct dc_pgurl_policy *pol, struct dc_pgparams *p,
    char *why, size_t whysz)
{
	const char	*host = dc_pgparams_get(p, "host");
	const char	*addr = dc_pgparams_get(p, "hostaddr");
	char		 h[256], a[64], sb[80];
	int		 i, n, rc, names = 0;

	n = list_count(host) > list_count(addr) ? list_count(host) :
	    list_count(addr);
	if (n == 0)
		n = 1;		/* neither: libpq's default, a socket */
	for (i = 0; i < n; i++) {
		list_item(host, i, h, sizeof(h));
		list_item(addr, i, a, sizeof(a));
		if (a[0] != '\0') {
			/* connects to the address; the name is for TLS */
			if (pol->networks != NULL &&
			    dc_netlist_addr(pol->networks, a) != 1) {
				fail(why, whysz, "target_networks does not "
				    "allow hostaddr %s", shown(a, sb,
				    sizeof(sb)));
				return DC_EINVAL;
			}
			continue;
		}
		if (h[0] == '\0' || h[0] == '/' || h[0] == '@') {
			if (pol->allow_sockets)
				continue;
			if (h[0] == '\0')
				fail(why, whysz, "database_url names no host: "
				    "libpq would connect through a local unix "
				    "socket, and socket targets are off "
				    "(allow_socket_targets)");
			else
				fail(why, whysz, "database_url names a unix "
				    "socket (host %s): socket targets are off "
				    "(allow_socket_targets)", shown(h, sb,
				    sizeof(sb)));
			return DC_EINVAL;
		}
		if (pol->networks == NULL)
			continue;
		rc = dc_netlist_host(pol->networks, h);
		if (rc == 0) {
			fail(why, whysz, "target_networks does not allow host "
			    "%s", shown(h, sb, sizeof(sb)));
			return DC_EINVAL;
		}
		if (rc == -1)
			names++;
	}
	if (names > 0 && n > 1) {
		fail(why, whysz, "target_networks can check the addresses of "
		    "one host name, not of a list of hosts: list these hosts "
		    "in target_networks by name, or give hostaddr");
		return DC_EINVAL;
	}
	p->resolve = names > 0;
	return DC_OK;
}

/* libpq's parse error, on one line, without any part of the URL. */
static void
parse_error(const char *msg, const char *url, char *why, size_t whysz)
{
	char	 line[256], clean[256];
	size_t	 i;

	dc_strlcpy(line, msg != NULL ? msg : "unknown error", sizeof(line));
	for (i = 0; line[i] != '\0'; i++)
		if (line[i] == '\n' || line[i] == '\r' || line[i] == '\t')
			line[i] = ' ';
	while (i > 0 && line[i - 1] == ' ')
		line[--i] = '\0';
	dc_scrub_password(line, url, clean, sizeof(clean));
	fail(why, whysz, "database_url is not a valid PostgreSQL URL: %s",
	    clean);
}

int
dc_pgurl_params(const char *url, const struct dc_pgurl_policy *pol,
    struct dc_pgparams *p, char *why, size_t whysz)
{
	const char	*type, *mode;
	char		*u = NULL, *err = NULL, clean[512];
	PQconninfoOption *o;
	size_t		 i;
	int		 rc = DC_EINVAL;

	memset(p, 0, sizeof(*p));
	why[0] = '\0';
	type = url != NULL ? dc_url_type(url) : NULL;
	if (type == NULL || strcmp(type, "postgresql") != 0) {
		fail(why, whysz, "database_url is not a postgresql:// URL");
		goto out;
	}
	if ((u = dc_url_libpq(url)) == NULL) {
		rc = DC_ENOMEM;
		goto out;
	}
	if ((p->opts = PQconninfoParse(u, &err)) == NULL) {
		if (err == NULL) {
			rc = DC_ENOMEM;
			goto out;
		}
		parse_error(err, url, why, whysz);
		goto out;
	}
	for (o = p->opts; o->keyword != NULL; o++) {
		if (o->val == NULL)
			continue;
		if (!in_list(o->keyword, allowed_keys,
		    DC_ARRAY_SIZE(allowed_keys))) {
			fail(why, whysz, "database_url parameter %s is not "
			    "allowed: a target URL may use only " ALLOWED_TEXT,
			    o->keyword);
			goto out;
		}
		if (o->val[0] != '\0' &&
		    add_url_param(p, o->keyword, o->val) != DC_OK) {
			rc = DC_ENOMEM;
			goto out;
		}
	}
	if ((rc = check_hosts(pol, p, why, whysz)) != DC_OK)
		goto out;
	rc = DC_ENOMEM;
	for (i = 0; i < DC_ARRAY_SIZE(fixed_params); i++)
		if (known_key(p->opts, fixed_params[i].key) &&
		    dc_pgparams_set(p, fixed_params[i].key,
		    fixed_params[i].val) != DC_OK)
			goto out;
	/* the CA bundle of the config, never a path from the URL */
	mode = dc_pgparams_get(p, "sslmode");
	if (dc_pgparams_set(p, "sslrootcert", mode != NULL &&
	    strncmp(mode, "verify-", 7) == 0 && pol->ssl_root_cert != NULL &&
	    pol->ssl_root_cert[0] != '\0' ? pol->ssl_root_cert : NO_FILE) !=
	    DC_OK)
		goto out;
	rc = DC_OK;
out:
	/* a host may hold anything, the password too: never quoted */
	if (rc == DC_EINVAL) {
		dc_scrub_password(why, url, clean, sizeof(clean));
		/* inside a longer value, where the scrub leaves it: say less */
		if (dc_msg_has_password(clean, url))
			snprintf(clean, sizeof(clean), "database_url is refused: "
			    "a value in it is not valid (not quoted: it holds "
			    "the password)");
		dc_strlcpy(why, clean, whysz);
	}
	if (err != NULL)
		PQfreemem(err);
	if (u != NULL) {
		dc_explicit_bzero(u, strlen(u));
		free(u);
	}
	return rc;
}

int
dc_pgurl_check(const char *url, const struct dc_pgurl_policy *pol, char *why,
    size_t whysz)
{
	struct dc_pgparams p;
	int		 rc;

	rc = dc_pgurl_params(url, pol, &p, why, whysz);
	dc_pgparams_free(&p);
	return rc;
}

/* --- target_networks --- */

static int
parse_cidr(const char *s, struct cidr *c)
{
	char		 buf[64], *slash, *end;
	long		 bits;
	int		 max;

	if (strlen(s) >= sizeof(buf))
		return -1;
	dc_strlcpy(buf, s, sizeof(buf));
	if ((slash = strchr(buf, '/')) != NULL)
		*slash = '\0';
	memset(c, 0, sizeof(*c));
	if (inet_pton(AF_INET, buf, c->addr) == 1) {
		c->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, c->addr) == 1) {
		c->family = AF_INET6;
		max = 128;
	} else
		return 0;	/* not an address: a name */
	c->bits = max;
	if (slash != NULL) {
		bits = strtol(slash + 1, &end, 10);
		if (slash[1] == '\0' || *end != '\0' || bits < 0 || bits > max)
			return -1;
		c->bits = (int)bits;
	}
	return 1;
}

static int
valid_name(const char *s)
{
	size_t	 i;

	if (s[0] == '\0' || strlen(s) > 253)
		return 0;
	/* digits and dots only: a mistyped address, not a name */
	if (strspn(s, "0123456789.") == strlen(s))
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' &&
		    s[i] != '.' && s[i] != '_')
			return 0;
	return strcmp(s, ".") != 0;
}

void
dc_netlist_free(struct dc_netlist *nl)
{
	int	 i;

	if (nl == NULL)
		return;
	for (i = 0; i < nl->nnames; i++)
		free(nl->names[i]);
	free(nl->names);
	free(nl->cidrs);
	free(nl);
}

int
dc_netlist_parse(const char *text, struct dc_netlist **out, char *why,
    size_t whysz)
{
	struct dc_netlist *nl = NULL;
	const char	*p = text != NULL ? text : "";
	char		 item[300], sb[80];
	size_t		 n, i;
	void		*mem;
	int		 rc = DC_ENOMEM, k;
	struct cidr	 c;

	*out = NULL;
	if ((nl = calloc(1, sizeof(*nl))) == NULL)
		goto out;
	for (;;) {
		p += strspn(p, ", \t");
		if (*p == '\0')
			break;
		n = strcspn(p, ", \t");
		if (n >= sizeof(item)) {
			fail(why, whysz, "target_networks: an entry is too long");
			rc = DC_EINVAL;
			goto out;
		}
		memcpy(item, p, n);
		item[n] = '\0';
		p += n;
		if ((k = parse_cidr(item, &c)) == -1) {
			fail(why, whysz, "target_networks: \"%s\" is not an "
			    "address or CIDR", shown(item, sb, sizeof(sb)));
			rc = DC_EINVAL;
			goto out;
		}
		if (k == 1) {
			mem = reallocarray(nl->cidrs, (size_t)nl->ncidrs + 1,
			    sizeof(*nl->cidrs));
			if (mem == NULL)
				goto out;
			nl->cidrs = mem;
			nl->cidrs[nl->ncidrs++] = c;
			continue;
		}
		if (!valid_name(item)) {
			fail(why, whysz, "target_networks: \"%s\" is not a CIDR "
			    "or a host name", shown(item, sb, sizeof(sb)));
			rc = DC_EINVAL;
			goto out;
		}
		for (i = 0; item[i] != '\0'; i++)
			item[i] = (char)tolower((unsigned char)item[i]);
		while (i > 1 && item[i - 1] == '.')
			item[--i] = '\0';
		mem = reallocarray(nl->names, (size_t)nl->nnames + 1,
		    sizeof(char *));
		if (mem == NULL)
			goto out;
		nl->names = mem;
		if ((nl->names[nl->nnames] = strdup(item)) == NULL)
			goto out;
		nl->nnames++;
	}
	if (nl->ncidrs + nl->nnames > 0) {
		*out = nl;
		nl = NULL;
	}
	rc = DC_OK;
out:
	dc_netlist_free(nl);
	return rc;
}

static int
cidr_has(const struct cidr *c, int family, const unsigned char *a)
{
	int	 full = c->bits / 8, rest = c->bits % 8;

	if (c->family != family)
		return 0;
	if (memcmp(c->addr, a, (size_t)full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((c->addr[full] ^ a[full]) & (0xff << (8 - rest))) == 0;
}

int
dc_netlist_addr(const struct dc_netlist *nl, const char *addr)
{
	unsigned char	 a[16];
	int		 family, i;

	if (nl == NULL)
		return 1;
	if (inet_pton(AF_INET, addr, a) == 1)
		family = AF_INET;
	else if (inet_pton(AF_INET6, addr, a) == 1)
		family = AF_INET6;
	else
		return 0;
	for (i = 0; i < nl->ncidrs; i++)
		if (cidr_has(&nl->cidrs[i], family, a))
			return 1;
	return 0;
}

int
dc_netlist_host(const struct dc_netlist *nl, const char *host)
{
	unsigned char	 a[16];
	char		 h[256];
	size_t		 n, l;
	int		 i;

	if (nl == NULL)
		return 1;
	if (inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1)
		return dc_netlist_addr(nl, host);
	if ((n = strlen(host)) >= sizeof(h))
		return 0;
	for (l = 0; l < n; l++)
		h[l] = (char)tolower((unsigned char)host[l]);
	while (n > 1 && h[n - 1] == '.')
		n--;
	h[n] = '\0';
	for (i = 0; i < nl->nnames; i++) {
		l = strlen(nl->names[i]);
		if (nl->names[i][0] == '.') {
			/* ".example.com": example.com and below */
			if (strcmp(h, nl->names[i] + 1) == 0 ||
			    (n > l && strcmp(h + n - l, nl->names[i]) == 0))
				return 1;
		} else if (strcmp(h, nl->names[i]) == 0)
			return 1;
	}
	return nl->ncidrs > 0 ? -1 : 0;
}

int
dc_pgurl_policy_init(struct dc_pgurl_policy *pol, const struct dc_config *cfg)
{
	memset(pol, 0, sizeof(*pol));
	pol->allow_sockets = cfg->allow_socket_targets;
	return DC_OK;
}

void
dc_pgurl_policy_free(struct dc_pgurl_policy *pol)
{
	dc_netlist_free((struct dc_netlist *)(uintptr_t)pol->networks);
	memset(pol, 0, sizeof(*pol));
}
