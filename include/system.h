/*
 * system.h - DataChat's system status (is a target database there, a
 * system database, DataPoints) as datachatd knows it, and the answers
 * built from it: GET /api/v1/system/status and the
 * system_not_initialized body of a chat that has no target.
 */
#ifndef DC_SYSTEM_H
#define DC_SYSTEM_H

struct dc_worker;
struct dc_req;
struct dc_jw;

struct dc_system_status {
	int		 is_initialized;
	int		 has_databases;
	int		 has_system_database;
	int		 has_datapoints;
};

void		 dc_system_status(struct dc_worker *w,
		     struct dc_system_status *st);

/* setup_required / setup_steps: a JSON array of DataChat's SetupSteps. */
void		 dc_system_write_steps(struct dc_jw *j,
		     const struct dc_system_status *st);

/* is_initialized ... setup_required, inside an object already open. */
void		 dc_system_write_status(struct dc_jw *j,
		     const struct dc_system_status *st);

/*
 * The setup registration of POST /system/initialize (databases.c): add
 * url as DataChat's setup does; done() answers afterwards.
 */
typedef void (*dc_db_done_cb)(struct dc_req *r, void *arg);
void		 dc_databases_setup_register(struct dc_req *r, const char *url,
		     dc_db_done_cb done, void *arg);

#define DC_NOT_INITIALIZED_MESSAGE "DataChat requires a target database " \
	"connection. Run 'datachat setup' or 'datachat demo' to get started."

/*
 * "error":"system_not_initialized","message",...,"setup_steps":[...],
 * inside an object already open: the REST body and, after its "event",
 * the /ws/chat error event.
 */
void		 dc_system_write_not_initialized(struct dc_worker *w,
		     struct dc_jw *j);

/* 400 {"error":"system_not_initialized","message",...,"setup_steps"} */
void		 dc_reply_not_initialized(struct dc_req *r);

#endif /* DC_SYSTEM_H */
