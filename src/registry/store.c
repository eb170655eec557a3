/*
 * store.c - the registry in the system database (store.h).
 *
 * The table is DataChat's database_connections, created only when
 * missing so an existing DataChat table is adopted as it is; so are
 * DataChat's ui_conversations and ui_feedback, which the conversation
 * and feedback routes use.  What we add
 * is a trigger that NOTIFYs the changed id on every INSERT, UPDATE and
 * DELETE (and a TRUNCATE marker), whoever wrote it; DataChat's own
 * statements keep working because no column is added.  Beside it live
 * datachatd's own tables: the API tokens (hashes, tokens.h) and which
 * token created which connection (registry_token_quota).  Schema setup runs
 * under an advisory lock so two datachatd instances starting on one
 * system database do not race on CREATE.
 *
 * These functions block on the master's connection; they are short
 * statements on a small table, bounded by the connection's
 * statement_timeout.  A row is served as it is or not at all: one that
 * does not decrypt, whose fields do not fit the registry, whose type or
 * URL datachatd refuses, goes on the registry's list of refused rows
 * with the reason (/ready, datachatctl status) and a log line that names
 * the id, never the token or the URL.  Nothing is cut short.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc.h"
#include "log.h"
#include "pgurl.h"
#include "store.h"
#include "util.h"

static const char schema_sql[] =
	"BEGIN;"
	"SET LOCAL client_min_messages = warning;"
	"SELECT pg_advisory_xact_lock(727274);"
	"CREATE TABLE IF NOT EXISTS database_connections ("
	"  connection_id UUID PRIMARY KEY,"
	"  name TEXT NOT NULL,"
	"  database_url_encrypted TEXT NOT NULL,"
	"  database_type TEXT NOT NULL,"
	"  is_active BOOLEAN NOT NULL DEFAULT TRUE,"
	"  is_default BOOLEAN NOT NULL DEFAULT FALSE,"
	"  tags TEXT[] NOT NULL DEFAULT '{}',"
	"  description TEXT,"
	"  created_at TIMESTAMPTZ NOT NULL,"
	"  last_profiled TIMESTAMPTZ,"
	"  datapoint_count INTEGER NOT NULL DEFAULT 0"
	");"
	"CREATE UNIQUE INDEX IF NOT EXISTS database_connections_default_idx"
	"  ON database_connections (is_default) WHERE is_default;"
	/* DataChat's UI history and feedback tables (conversations/store.py,
	 * feedback/store.py), so both share them */
	"CREATE TABLE IF NOT EXISTS ui_conversations ("
	"  frontend_session_id TEXT PRIMARY KEY,"
	"  title TEXT NOT NULL,"
	"  target_database_id TEXT,"
	"  conversation_id TEXT,"
	"  session_summary TEXT,"
	"  session_state JSONB NOT NULL,"
	"  messages JSONB NOT NULL,"
	"  created_at TIMESTAMPTZ NOT NULL,"
	"  updated_at TIMESTAMPTZ NOT NULL"
	");"
	"CREATE INDEX IF NOT EXISTS ui_conversations_updated_at_idx"
	"  ON ui_conversations (updated_at DESC);"
	"CREATE TABLE IF NOT EXISTS ui_feedback ("
	"  feedback_id UUID PRIMARY KEY,"
	"  category TEXT NOT NULL,"
	"  sentiment TEXT,"
	"  message TEXT,"
	"  context JSONB NOT NULL,"
	"  conversation_id TEXT,"
	"  message_id TEXT,"
	"  target_database_id TEXT,"
	"  answer_source TEXT,"
	"  answer_confidence DOUBLE PRECISION,"
	"  created_at TIMESTAMPTZ NOT NULL"
	");"
	"CREATE INDEX IF NOT EXISTS ui_feedback_created_at_idx"
	"  ON ui_feedback (created_at DESC);"
	/* datachatd's own: conversation memory (convo.c) */
	"CREATE TABLE IF NOT EXISTS datachatd_conversations ("
	"  conversation_id TEXT PRIMARY KEY,"
	"  turns JSONB NOT NULL,"
	"  session_summary TEXT,"
	"  session_state JSONB,"
	"  updated_at TIMESTAMPTZ NOT NULL"
	");"
	"CREATE INDEX IF NOT EXISTS datachatd_conversations_updated_idx"
	"  ON datachatd_conversations (updated_at);"
	"CREATE OR REPLACE FUNCTION datachatd_notify_change() RETURNS trigger"
	"  LANGUAGE plpgsql AS $dc$ "
	"BEGIN"
	"  IF TG_OP = 'TRUNCATE' THEN"
	"    PERFORM pg_notify('" DC_NOTIFY_CHANNEL "', 'resync');"
	"    RETURN NULL;"
	"  END IF;"
	"  IF TG_OP IN ('UPDATE', 'DELETE') THEN"
	"    PERFORM pg_notify('" DC_NOTIFY_CHANNEL "', OLD.connection_id::text);"
	"  END IF;"
	"  IF TG_OP IN ('INSERT', 'UPDATE') THEN"
	"    PERFORM pg_notify('" DC_NOTIFY_CHANNEL "', NEW.connection_id::text);"
	"  END IF;"
	"  RETURN NULL;"
	"END $dc$;"
	"DO $dc$ BEGIN"
	"  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname ="
	"      'datachatd_notify' AND tgrelid = 'database_connections'::regclass)"
	"  THEN"
	"    CREATE TRIGGER datachatd_notify AFTER INSERT OR UPDATE OR DELETE"
	"      ON database_connections FOR EACH ROW"
	"      EXECUTE FUNCTION datachatd_notify_change();"
	"    CREATE TRIGGER datachatd_notify_truncate AFTER TRUNCATE"
	"      ON database_connections FOR EACH STATEMENT"
	"      EXECUTE FUNCTION datachatd_notify_change();"
	"  END IF;"
	"END $dc$;"
	/* API tokens: hashes only; any change means reload them all */
	"CREATE TABLE IF NOT EXISTS datachatd_api_tokens ("
	"  name TEXT PRIMARY KEY,"
	"  token_sha256 BYTEA NOT NULL UNIQUE,"
	"  role TEXT NOT NULL,"
	"  created_at TIMESTAMPTZ NOT NULL,"
	"  expires_at TIMESTAMPTZ"
	");"
	"CREATE OR REPLACE FUNCTION datachatd_notify_tokens() RETURNS trigger"
	"  LANGUAGE plpgsql AS $dc$ "
	"BEGIN"
	"  PERFORM pg_notify('" DC_NOTIFY_CHANNEL "', '" DC_NOTIFY_TOKENS "');"
	"  RETURN NULL;"
	"END $dc$;"
	"DO $dc$ BEGIN"
	"  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname ="
	"      'datachatd_tokens_notify' AND tgrelid ="
	"      'datachatd_api_tokens'::regclass)"
	"  THEN"
	"    CREATE TRIGGER datachatd_tokens_notify AFTER INSERT OR UPDATE OR"
	"      DELETE OR TRUNCATE ON datachatd_api_tokens FOR EACH STATEMENT"
	"      EXECUTE FUNCTION datachatd_notify_tokens();"
	"  END IF;"
	"END $dc$;"
	/*
	 * Which token created a connection, for registry_token_quota.  No
	 * foreign key: DataChat's table is adopted as it is, and a row
	 * deleted by someone else simply stops counting (the count joins).
	 */
	"CREATE TABLE IF NOT EXISTS datachatd_connection_owners ("
	"  connection_id UUID PRIMARY KEY,"
	"  token_name TEXT NOT NULL"
	");"
	"CREATE INDEX IF NOT EXISTS datachatd_connection_owners_token_idx"
	"  ON datachatd_connection_owners (token_name);"
	/*
	 * Refuse a token's create past its quota, in the creating
	 * transaction and under a lock per token, so concurrent creates
	 * cannot all slip under it.
	 */
	"CREATE OR REPLACE FUNCTION datachatd_claim_quota(tok text, quota int)"
	"  RETURNS void LANGUAGE plpgsql AS $dc$ "
	"DECLARE n bigint; "
	"BEGIN"
	"  PERFORM pg_advisory_xact_lock(727275, hashtext(tok));"
	"  SELECT count(*) INTO n FROM datachatd_connection_owners o"
	"    JOIN database_connections c USING (connection_id)"
	"    WHERE o.token_name = tok;"
	"  IF n >= quota THEN"
	"    RAISE EXCEPTION 'token % has created % connections, its quota "
	"(registry_token_quota)', tok, n USING ERRCODE = '" DC_SQLSTATE_QUOTA "';"
	"  END IF;"
	"END $dc$;"
	"COMMIT;";

static void
set_err(char *err, size_t errsz, const char *what, PGconn *c)
{
	const char *m = c != NULL ? PQerrorMessage(c) : "";
	size_t n;

	snprintf(err, errsz, "%s: %s", what, m);
	n = strlen(err);
	while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
		err[--n] = '\0';
}

int
dc_store_ensure_schema(PGconn *c, char *err, size_t errsz)
{
	PGresult *res;
	int ok;

	res = PQexec(c, schema_sql);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!ok)
		set_err(err, errsz, "creating the registry table", c);
	PQclear(res);
	if (!ok) {
		res = PQexec(c, "ROLLBACK");
		PQclear(res);
		return DC_ERR;
	}
	return DC_OK;
}

int
dc_store_expire_conversations(PGconn *c, int ttl, char *err, size_t errsz)
{
	const char *p[1];
	char secs[16];
	PGresult *res;
	int ok;

	snprintf(secs, sizeof(secs), "%d", ttl);
	p[0] = secs;
	res = PQexecParams(c, "DELETE FROM datachatd_conversations WHERE "
	    "updated_at < now() - make_interval(secs => $1::int)", 1, NULL, p,
	    NULL, NULL, 0);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!ok)
		set_err(err, errsz, "forgetting old conversations", c);
	else if (atoi(PQcmdTuples(res)) > 0)
		log_debug("forgot %s conversation(s) older than %d s",
		    PQcmdTuples(res), ttl);
	PQclear(res);
	return ok ? DC_OK : DC_ERR;
}

static int64_t
get_i64(const char *v)
{
	return v != NULL ? strtoll(v, NULL, 10) : 0;
}

/* A text field into dst, or a reason when it does not fit. */
static int
copy_field(char *dst, size_t dstsz, const char *src, const char *what,
    char *why, size_t whysz)
{
	size_t n = strlen(src);

	if (n >= dstsz) {
		snprintf(why, whysz, "its %s is %zu bytes long; datachatd "
		    "keeps up to %zu", what, n, dstsz - 1);
		return DC_EINVAL;
	}
	memcpy(dst, src, n + 1);
	return DC_OK;
}

/*
 * The database types DataChat writes.  Rows of the others are refused;
 * rows of these are served, or listed and refused at query time by an
 * engine datachatd does not drive.
 */
static const char *const known_types[] = { "postgresql", "mysql",
    "clickhouse" };

static int
check_type(const struct dc_entry *e, char *why, size_t whysz)
{
	const char *implied = dc_url_type(e->url);
	size_t i;

	for (i = 0; i < DC_ARRAY_SIZE(known_types); i++)
		if (strcmp(e->type, known_types[i]) == 0)
			break;
	if (i == DC_ARRAY_SIZE(known_types)) {
		snprintf(why, whysz, "its database_type \"%.32s\" is none of "
		    "postgresql, mysql, clickhouse", e->type);
		return DC_EINVAL;
	}
	if (implied == NULL || strcmp(implied, e->type) != 0) {
		snprintf(why, whysz, "its database_type is %s but its URL's "
		    "scheme is %s", e->type, implied != NULL ? implied :
		    "none datachatd knows");
		return DC_EINVAL;
	}
	return DC_OK;
}

int
dc_store_row_to_entry(PGresult *res, int row,
    const struct dc_fernet_ring *ring, const struct dc_pgurl_policy *pol,
    struct dc_entry *e, char *why, size_t whysz)
{
	const char *v[DC_STORE_NCOLS];
	int i;

	if (PQnfields(res) != DC_STORE_NCOLS) {
		memset(e, 0, sizeof(*e));
		snprintf(why, whysz, "the row has %d columns, not %d",
		    PQnfields(res), DC_STORE_NCOLS);
		return DC_EINVAL;
	}
	for (i = 0; i < DC_STORE_NCOLS; i++)
		v[i] = PQgetisnull(res, row, i) ? NULL :
		    PQgetvalue(res, row, i);
	return dc_store_cells_to_entry(v, ring, pol, e, why, whysz);
}

int
dc_store_cells_to_entry(const char *const *v,
    const struct dc_fernet_ring *ring, const struct dc_pgurl_policy *pol,
    struct dc_entry *e, char *why, size_t whysz)
{
	char *url = NULL, reason[256];
	size_t len;
	int rc = DC_EINVAL;

	memset(e, 0, sizeof(*e));
	why[0] = '\0';
	if (v[0] == NULL || dc_uuid_parse(v[0], e->id) != DC_OK) {
		snprintf(why, whysz, "its connection_id is not a UUID");
		goto out;
	}
	if (v[2] == NULL || dc_fernet_decrypt(ring, v[2], 0, 0, &url,
	    &len) != DC_OK) {
		snprintf(why, whysz, "its stored URL does not decrypt with any "
		    "configured credentials key");
		rc = DC_ETOKEN;
		goto out;
	}
	if (copy_field(e->url, sizeof(e->url), url, "URL", why, whysz) !=
	    DC_OK ||
	    copy_field(e->name, sizeof(e->name), v[1] != NULL ? v[1] : "",
	    "name", why, whysz) != DC_OK ||
	    copy_field(e->type, sizeof(e->type), v[3] != NULL ? v[3] : "",
	    "database_type", why, whysz) != DC_OK ||
	    copy_field(e->tags, sizeof(e->tags), v[6] == NULL ?
	    "[]" : v[6], "tag list", why, whysz) != DC_OK)
		goto out;
	if (v[7] != NULL) {
		e->has_description = 1;
		if (copy_field(e->description, sizeof(e->description),
		    v[7], "description", why, whysz) !=
		    DC_OK)
			goto out;
	}
	e->is_active = v[4] != NULL && v[4][0] == 't';
	e->is_default = v[5] != NULL && v[5][0] == 't';
	e->created_at = get_i64(v[8]);
	e->last_profiled = get_i64(v[9]);
	e->datapoint_count = (int32_t)get_i64(v[10]);
	if (check_type(e, why, whysz) != DC_OK)
		goto out;
	/* a PostgreSQL URL must pass what the API checks on a write */
	if (pol != NULL && strcmp(e->type, "postgresql") == 0 &&
	    dc_pgurl_check(e->url, pol, reason, sizeof(reason)) != DC_OK) {
		snprintf(why, whysz, "%s", reason);
		goto out;
	}
	rc = DC_OK;
out:
	if (url != NULL) {
		dc_explicit_bzero(url, len);
		free(url);
	}
	if (rc != DC_OK)
		dc_explicit_bzero(e->url, sizeof(e->url));
	return rc;
}

/*
 * One row into the registry, or onto its list of refused rows with the
 * reason (logged by id and name, never with the token or the URL).
 */
static int
put_row(PGresult *res, int row, const struct dc_fernet_ring *ring,
    const struct dc_pgurl_policy *pol, struct dc_shreg *reg, int *bad)
{
	struct dc_entry *e;
	const char *id = PQgetvalue(res, row, 0);
	char why[DC_REASON_MAX];
	uint8_t raw[16];
	int rc;

	e = malloc(sizeof(*e));
	if (e == NULL)
		return DC_ENOMEM;
	rc = dc_store_row_to_entry(res, row, ring, pol, e, why, sizeof(why));
	if (rc == DC_OK) {
		rc = dc_shreg_put(reg, e);
		if (rc == DC_EFULL) {
			snprintf(why, sizeof(why), "the registry is full (%d "
			    "entries, registry_capacity)",
			    dc_shreg_capacity(reg));
			log_error("connection %s: %s; skipped", id, why);
			dc_shreg_refuse(reg, e->id, PQgetvalue(res, row, 1),
			    why);
		} else
			dc_shreg_accept(reg, e->id);
	} else {
		log_warn("connection %s: %s; not served", id, why);
		if (rc == DC_ETOKEN && bad != NULL)
			(*bad)++;
		if (dc_uuid_parse(id, raw) == DC_OK) {
			dc_shreg_remove(reg, raw);
			dc_shreg_refuse(reg, raw, PQgetvalue(res, row, 1), why);
		}
	}
	dc_explicit_bzero(e, sizeof(*e));
	free(e);
	return DC_OK;
}

int
dc_store_load_all(PGconn *c, const struct dc_fernet_ring *ring,
    const struct dc_pgurl_policy *pol, struct dc_shreg *reg, int *bad,
    char *err, size_t errsz)
{
	PGresult *res;
	int i, n;

	res = PQexec(c, "SELECT " DC_STORE_COLUMNS " FROM database_connections"
	    " WHERE is_active");
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		set_err(err, errsz, "reading the registry", c);
		PQclear(res);
		return DC_EUNAVAIL;
	}
	*bad = 0;
	dc_shreg_mark_all(reg);
	dc_shreg_refuse_clear(reg);
	n = PQntuples(res);
	for (i = 0; i < n; i++)
		put_row(res, i, ring, pol, reg, bad);
	dc_shreg_sweep(reg);
	PQclear(res);
	return DC_OK;
}

int
dc_store_load_one(PGconn *c, const struct dc_fernet_ring *ring,
    const struct dc_pgurl_policy *pol, struct dc_shreg *reg,
    const uint8_t id[16], char *err, size_t errsz)
{
	char ids[DC_UUID_STR_LEN + 1];
	const char *params[1] = { ids };
	PGresult *res;

	dc_uuid_format(id, ids);
	res = PQexecParams(c, "SELECT " DC_STORE_COLUMNS
	    " FROM database_connections WHERE connection_id = $1::uuid"
	    " AND is_active", 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		set_err(err, errsz, "reading a registry row", c);
		PQclear(res);
		return DC_EUNAVAIL;
	}
	if (PQntuples(res) == 0) {
		dc_shreg_remove(reg, id);
		dc_shreg_accept(reg, id);	/* gone: nothing to refuse */
	} else
		put_row(res, 0, ring, pol, reg, NULL);
	PQclear(res);
	return DC_OK;
}
