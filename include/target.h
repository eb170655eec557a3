/*
 * target.h - from a request to a registry entry.
 *
 * One function resolves which database a request means, with the same
 * rules and errors for every route, DataChat's: a given target_database
 * is used; omitted or "" means the registry default, else the
 * environment DATABASE_URL entry, else nothing; not a UUID is 400;
 * unknown is 404; a registry that was never loaded is 503 (never a
 * silent fallback to another database); an entry of an engine this
 * datachatd does not serve is 400.
 * The virtual environment entry and the JSON shape of a connection live
 * here too, so the databases routes and the query routes agree.
 */
#ifndef DC_TARGET_H
#define DC_TARGET_H

#include <json-c/json.h>

#include "shreg.h"

struct dc_worker;

struct dc_resolve_err {
	int		 status;	/* HTTP status */
	char		 detail[256];
};

/*
 * Resolve target (NULL or a JSON value, maybe null or "") into *e, by
 * DataChat's rules.  Returns 0; DC_ERR with err filled (400, 404, 503);
 * or DC_ENOENT when no target was given and none is configured anywhere
 * (DataChat's system_not_initialized).
 */
int		 dc_target_resolve(struct dc_worker *w, struct json_object *target,
		     struct dc_entry *e, struct dc_resolve_err *err);

/*
 * Fill e with the environment DATABASE_URL entry (routing uses it even
 * when a registry row has the same URL).  0, DC_ENOENT or DC_ENOMEM.
 */
int		 dc_target_env_entry(struct dc_worker *w, struct dc_entry *e);

/*
 * The same, for GET /databases: DC_ENOENT too when a row has its URL;
 * DC_ENOMEM.
 */
int		 dc_target_env_listed(struct dc_worker *w, struct dc_entry *e);

/* A registry that can store connections: system database and a key. */
int		 dc_target_registry_usable(struct dc_worker *w);

/* 1 when id is the environment entry's id. */
int		 dc_target_is_env(const uint8_t id[16]);

/*
 * The registry's refused rows (shreg.h) as a JSON array of
 * {connection_id, name, reason}, for /ready and datachatctl status.
 */
struct json_object *dc_refused_rows_json(const struct dc_shreg *reg);

/* The API's connection object (URL masked). */
struct json_object *dc_entry_to_json(const struct dc_entry *e);

#endif /* DC_TARGET_H */
