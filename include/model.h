/*
 * model.h - DataChat's request models as declarative field tables.
 *
 * Every request body, query string and tool argument list DataChat
 * validates with pydantic is described here once, as a table of fields
 * (name, type, required or default, nullable, constraints).  From that
 * one table come the validation of a request, pydantic 2's 422 error
 * list (type, loc, msg, input, ctx, with pydantic's own words and its
 * lax coercions: "false" and 0 are booleans, "5" is an integer in a
 * query string), and the JSON Schema a tool publishes as
 * parameters_schema.  Routes never check a field by hand.
 *
 * Validation borrows from the JSON it is given: the values it hands back
 * point into that object and live as long as it does.
 */
#ifndef DC_MODEL_H
#define DC_MODEL_H

#include <stdint.h>

#include <json-c/json.h>

enum dc_ftype {
	DC_FT_STR = 1,		/* str */
	DC_FT_BOOL,		/* bool */
	DC_FT_INT,		/* int */
	DC_FT_FLOAT,		/* float */
	DC_FT_LITERAL,		/* Literal["a", "b"]: one of choices */
	DC_FT_DICT,		/* dict / dict[str, Any] */
	DC_FT_LIST_STR,		/* list[str] */
	DC_FT_LIST_DICT,	/* list[dict[str, Any]] */
	DC_FT_LIST_MODEL,	/* list[sub] */
	DC_FT_UUID,		/* UUID */
	DC_FT_DATETIME,		/* datetime */
};

#define DC_F_REQUIRED	0x01	/* no default: absent is "missing" */
#define DC_F_NULLABLE	0x02	/* X | None */
#define DC_F_GE		0x04	/* int: >= ge */
#define DC_F_LE		0x08	/* int: <= le */
#define DC_F_GT		0x10	/* int: > gt (stored in ge) */
#define DC_F_NO_DEFAULT_KEY 0x20 /* schema: no "default" (DataChat's tools) */
#define DC_F_SECRET	0x40	/* never echoed in an error's input */

struct dc_model;

struct dc_field {
	const char	*name;
	int		 type;		/* enum dc_ftype */
	int		 flags;		/* DC_F_* */
	const char	*dflt;		/* default unless REQUIRED: a string's
					   value, "true"/"false", a number;
					   NULL: null (containers: empty) */
	int		 min_length;	/* str: at least this many chars */
	int		 max_length;	/* str: at most this many bytes (0:
					   any); datachatd's storage limits */
	const char *const *choices;	/* LITERAL: NULL-terminated */
	int64_t		 ge, le;	/* INT bounds, with DC_F_GE/LE/GT */
	const struct dc_model *sub;	/* LIST_MODEL: the items' model */
	const char	*desc;		/* parameters_schema description */
};

struct dc_model {
	const char	*name;		/* pydantic's class name */
	const struct dc_field *fields;	/* terminated by name == NULL */
};

/* One validated field. */
struct dc_val {
	int		 set;		/* present in the input */
	int		 null;		/* null (given, or the default) */
	struct json_object *v;		/* the input value, when set */
	const char	*s;		/* STR, LITERAL, UUID, DATETIME text */
	size_t		 slen;
	int64_t		 i;		/* INT, BOOL (0/1) */
	double		 d;		/* FLOAT */
	int64_t		 usec;		/* DATETIME: microseconds since epoch */
	uint8_t		 uuid[16];	/* UUID */
};

#define DC_MODEL_MAX_FIELDS	24

/*
 * Where each model is used: every src/api file that validates requests
 * lists its models once, next to its route table, in dc_models_NAME
 * (terminated by model == NULL).  The model fuzzer
 * (tests/fuzz/fuzz_model.c) walks these lists.
 */
struct dc_model_use {
	const char	*route;		/* "POST /api/v1/databases", "tool x" */
	const char	*where;		/* loc[0]: body, query, path, arguments */
	const struct dc_model *model;
};

extern const struct dc_model_use dc_models_chat[];
extern const struct dc_model_use dc_models_conversations[];
extern const struct dc_model_use dc_models_databases[];
extern const struct dc_model_use dc_models_datapoints[];
extern const struct dc_model_use dc_models_feedback[];
extern const struct dc_model_use dc_models_system[];
extern const struct dc_model_use dc_models_tools[];

/* Number of fields of m. */
int		 dc_model_nfields(const struct dc_model *m);

/* Index of field name in m, or -1. */
int		 dc_model_field(const struct dc_model *m, const char *name);

/*
 * Validate obj against m as pydantic does with from_attributes (what
 * FastAPI asks for): vals (dc_model_nfields(m) of them) receive the
 * values, defaults filled in; each error is appended to errs (a JSON
 * array) as {"type","loc","msg","input"[,"ctx"]} with loc starting with
 * where ("body", "query", "path").  obj may be any JSON value: one that
 * is not an object is model_attributes_type.  Returns the number of
 * errors appended (0: valid), or -1 when out of memory.
 */
int		 dc_model_validate(const struct dc_model *m,
		     struct json_object *obj, const char *where,
		     struct dc_val *vals, struct json_object *errs);

/*
 * Append the error {type, loc, msg, input[, ctx]} to errs.  loc and ctx
 * (may be NULL: no ctx) are taken whatever happens; input is referenced
 * (NULL: null).  1, or -1 when out of memory.
 */
int		 dc_model_error(struct json_object *errs, const char *type,
		     struct json_object *loc, const char *msg,
		     struct json_object *input, struct json_object *ctx);

/* The "missing" error FastAPI gives for an absent required body. */
int		 dc_model_missing_body(struct json_object *errs);

/*
 * The JSON Schema of m as DataChat's tools publish it:
 * {"type":"object","properties":{...},"required":[...],
 *  "additionalProperties":false}.
 */
struct json_object *dc_model_schema(const struct dc_model *m);

/* Parse a UUID the way Python's uuid.UUID(str) does (hyphens optional,
 * braces, urn:uuid:, any case).  0 or DC_EINVAL. */
int		 dc_model_uuid_lax(const char *s, uint8_t out[16]);

/*
 * Microseconds since the epoch as pydantic writes a UTC datetime in
 * JSON: 2026-01-02T03:04:05.123456Z, the fraction left out when zero.
 */
void		 dc_model_datetime(int64_t usec, char *out, size_t outsz);

#endif /* DC_MODEL_H */
