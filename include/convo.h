/*
 * convo.h - conversation memory: what a chat remembers between turns and
 * where.
 *
 * A turn is what one question left behind: the question, the target it
 * ran on, the SQL, the answer and the shape of the result.  The turns of
 * a conversation come from the server's own store when it has them (the
 * system database's datachatd_conversations table, shared by every worker
 * and every instance on that database, a bounded number of turns per
 * conversation, forgotten after conversation_ttl), else from what the
 * client sent (conversation_history and session_state).  They become the
 * "conversation so far" of the next LLM prompt, within a budget, so "and
 * by region?" is read against the previous question and its SQL.
 *
 * session_state is DataChat's: the client gets it with every answer and
 * sends it back.  This module is the one place that reads and writes it
 * (last_goal, resolved_query, last_sql, table_hints, slots,
 * clarification_count, ...); session_summary is its one-line digest.
 */
#ifndef DC_CONVO_H
#define DC_CONVO_H

#include <stddef.h>

#include <json-c/json.h>

struct dc_worker;

/* What one answered question leaves for the next. */
struct dc_convo_turn {
	const char	*question;
	const char	*resolved;	/* the question read as a follow-up */
	const char	*target;	/* connection id */
	const char	*dbtype;
	const char	*sql;		/* NULL: none ran */
	const char	*answer;
	const char	*source;	/* answer_source */
	const char *const *columns;	/* of the result */
	int		 ncolumns;
	int		 rows;		/* -1: no result */
	struct json_object *clarifying;	/* questions asked back, or NULL */
};

/* A turn as the store keeps it (a JSON object), or NULL. */
struct json_object *dc_convo_turn_json(const struct dc_convo_turn *t);

/*
 * The turns the client's conversation_history and session_state tell of
 * (the SQL only for the last one, from session_state.last_sql): an array,
 * maybe empty, or NULL when out of memory.
 */
struct json_object *dc_convo_from_client(struct json_object *history,
		     struct json_object *state);

/*
 * Whether question reads as a follow-up of the one before ("and by
 * region?", "only for 2025", "show that as a chart", "what about the
 * other database?").
 */
int		 dc_convo_followup(const char *question);

/*
 * "The previous question, then this": the question resolved against
 * the last one.  Malloc'ed.
 */
char		*dc_convo_resolve(const char *last_goal, const char *question);

/*
 * The conversation so far for the prompt: the latest turns that fit in
 * budget characters, oldest first, each with its question, target, SQL
 * and result shape; target is the database of the question being asked.
 * Malloc'ed ("" when there is nothing to say), NULL when out of memory.
 */
char		*dc_convo_context(struct json_object *turns, const char *target,
		     size_t budget);

/* The last question of turns, or NULL. */
const char	*dc_convo_last_goal(struct json_object *turns,
		     struct json_object *state);

/*
 * The session_state after turn t, from the one before (prev, maybe NULL;
 * keys this module does not know are kept).  A new object, or NULL.
 */
struct json_object *dc_convo_next_state(struct json_object *prev,
		     const struct dc_convo_turn *t, int turn_count);

/* session_summary of state: DataChat's "Intent summary: ..." line. */
char		*dc_convo_summary(struct json_object *state);

/* Tables a statement reads (FROM and JOIN), up to max, as written. */
int		 dc_convo_sql_tables(const char *sql, char out[][128], int max);

/*
 * The store.  Load and save return DC_OK, set *op and call cb later
 * (from the loop; the callback ends op, so clear the handle there), or
 * return an error and never call it: DC_EINVAL when there is no store
 * (no system database, or conversation_turns 0).  What a loaded callback
 * gets lives only during the call.
 */
struct dc_convo_op;
typedef void (*dc_convo_loaded_cb)(struct json_object *turns,
		     struct json_object *state, const char *summary,
		     const char *error, void *arg);
typedef void (*dc_convo_saved_cb)(const char *error, void *arg);

int		 dc_convo_enabled(const struct dc_worker *w);
int		 dc_convo_load(struct dc_worker *w, const char *conversation_id,
		     dc_convo_loaded_cb cb, void *arg, struct dc_convo_op **op);
int		 dc_convo_save(struct dc_worker *w, const char *conversation_id,
		     struct json_object *turn, const char *summary,
		     struct json_object *state, dc_convo_saved_cb cb,
		     void *arg, struct dc_convo_op **op);

/* Stop a load or save in flight; its callback never runs. */
void		 dc_convo_cancel(struct dc_convo_op *op);

#endif /* DC_CONVO_H */
