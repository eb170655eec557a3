/*
 * auth.h - who a request comes from and whether its route allows it:
 * the API token (Authorization: Bearer, or for a WebSocket handshake an
 * access_token query parameter or a Sec-WebSocket-Protocol value)
 * checked against the shared token table, the route's role, 401/403
 * replies, and a per-address limit on failed attempts (429).
 */
#ifndef DC_AUTH_H
#define DC_AUTH_H

#include <stdint.h>

struct dc_req;

/*
 * Check request r against role need (enum dc_role; DC_ROLE_METRICS is
 * resolved with metrics_auth).  Fills r->who/r->role.  Returns 0 when
 * the request may go on; otherwise it has replied (401, 403, 429 or 503)
 * and returns DC_EINVAL.  The request layer calls it for every route;
 * a WebSocket route needs nothing more than its role in the table.
 */
int		 dc_auth_check(struct dc_req *r, int need);

/*
 * For a WebSocket handshake: the Sec-WebSocket-Protocol value to echo
 * back, that is the first offered protocol that is not a token (a
 * browser client offers e.g. "bearer, dcat_..."), or NULL.
 */
const char	*dc_auth_ws_protocol(struct dc_req *r);

/*
 * Per-address failure counting, exposed for the unit tests: note one
 * failure at time now_ms; 1 when addr is over limit failures within the
 * current minute (*retry_s: seconds until it may try again).
 */
int		 dc_auth_limited(const char *addr, uint64_t now_ms, int limit,
		     int *retry_s);
void		 dc_auth_note_failure(const char *addr, uint64_t now_ms);
void		 dc_auth_reset_limits(void);

#endif /* DC_AUTH_H */
