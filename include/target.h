/*
 * target.h - from a request to a registry entry.
 *
 * One function resolves which database a request means, with the same
 * rules and errors for every route: a valid target_database is used;
 * omitted means the registry default, else the environment DATABASE_URL
 * entry, else 400; not a UUID is 400; unknown is 404; a registry that was
 * never loaded is 503 (never a silent fallback to another database).
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
 * Resolve target (NULL or a JSON value, maybe null) into *e.
 * Returns 0, or DC_ERR with err filled.
 */
int		 dc_target_resolve(struct dc_worker *w, struct json_object *target,
		     struct dc_entry *e, struct dc_resolve_err *err);

/* Fill e with the environment DATABASE_URL entry.  0 or DC_ENOENT. */
int		 dc_target_env_entry(struct dc_worker *w, struct dc_entry *e);

/* 1 when id is the environment entry's id. */
int		 dc_target_is_env(const uint8_t id[16]);

/* The API's connection object (URL masked). */
struct json_object *dc_entry_to_json(const struct dc_entry *e);

#endif /* DC_TARGET_H */
