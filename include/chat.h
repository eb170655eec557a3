/*
 * chat.h - the one chat pipeline: a question (DataChat's ChatRequest) in,
 * a sequence of events out, the last of which is the answer (a
 * ChatResponse) or the reason there is none.
 *
 * POST /api/v1/chat and /ws/chat are two consumers of the same run:
 * the REST route keeps only the last event and replies with it, the
 * WebSocket forwards every event as it happens (DataChat's agent_start,
 * agent_complete, thinking and answer_chunk) and ends with the answer as
 * its "complete" event.  Target resolution, the SQL guard, read-only
 * execution, limits and conversation memory are the pipeline's, so both
 * routes behave alike.
 */
#ifndef DC_CHAT_H
#define DC_CHAT_H

#include <stddef.h>

#include <json-c/json.h>

struct dc_worker;
struct dc_chat;

/* A ChatRequest as the routes validated it; the run copies what it keeps. */
struct dc_chat_request {
	const char	*message;
	int		 direct;		/* execution_mode "direct_sql" */
	const char	*sql;			/* direct_sql: what runs */
	const char	*conversation_id;	/* NULL: a new one */
	struct json_object *target;		/* target_database, or NULL */
	struct json_object *history;		/* [{role, content}], or NULL */
	const char	*session_summary;
	struct json_object *session_state;	/* an object, or NULL */
	int		 synthesize;		/* synthesize_simple_sql */
};

/* Why a question got no answer, for either route. */
struct dc_chat_failure {
	int		 status;	/* HTTP status of the REST reply */
	const char	*error;		/* DataChat's WebSocket error code */
	int		 close;		/* WebSocket close code after it */
	const char	*message;	/* the REST detail, the event's message */
	int		 setup;		/* no target anywhere: DataChat's
					   system_not_initialized, with its
					   setup steps (system.h) */
};

struct dc_chat_sink {
	/*
	 * A progress event, already the JSON object /ws/chat sends
	 * ({"event":"agent_start",...}).  NULL: the consumer wants none,
	 * and none is built.
	 */
	void	(*event)(void *arg, const char *json, size_t len);
	/* The answer: a ChatResponse object.  The run is over. */
	void	(*complete)(void *arg, const char *json, size_t len);
	/* No answer.  The run is over. */
	void	(*fail)(void *arg, const struct dc_chat_failure *f);
	/*
	 * How the answer's data values are written (result.h's enum
	 * dc_enc): DataChat's REST route through pydantic, its WebSocket
	 * through jsonable_encoder.
	 */
	int	  enc;
};

/*
 * Answer req on worker w.  *out is set first; then the run reports to
 * sink, possibly before this returns (a request refused at once), so
 * the caller must not touch what the sink frees once this is called.
 * Exactly one of complete and fail runs, unless dc_chat_cancel comes
 * first.
 */
void		 dc_chat_start(struct dc_worker *w,
		     const struct dc_chat_request *req,
		     const struct dc_chat_sink *sink, void *arg,
		     struct dc_chat **out);

/* The consumer left: stop the query and the LLM call; no sink call. */
void		 dc_chat_cancel(struct dc_chat *q);

#endif /* DC_CHAT_H */
