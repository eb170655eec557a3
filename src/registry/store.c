/*
 * store.c - the registry in the system database (store.h).
 *
 * The table is DataChat's database_connections, created only when
 * missing so an existing DataChat table is adopted as it is; so are
 * DataChat's ui_conversations and ui_feedback, which the conversation
 * and feedback routes use.  What we add
 * is a trigger that NOTIFYs the changed id on every INSERT, UPDATE and
 * DELETE (and a TRUNCATE marker), whoever wrote it; DataChat's own
 * statements keep working because no column is added.  Schema setup runs
 * under an advisory lock so two datachatd instances starting on one
 * system database do not race on CREATE.
 *
 * These functions block on the master's connection; they are short
 * statements on a small table, bounded by the connection's
 * statement_timeout.  Rows that do not decrypt are skipped with a log
 * line that names the id, never the token or the URL.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc.h"
#include "log.h"
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
get_i64(PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return 0;
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

int
dc_store_row_to_entry(PGresult *res, int row,
    const struct dc_fernet_ring *ring, struct dc_entry *e)
{
	char *url = NULL;
	size_t len;
	int rc;

	memset(e, 0, sizeof(*e));
	if (dc_uuid_parse(PQgetvalue(res, row, 0), e->id) != DC_OK)
		return DC_EINVAL;
	dc_strlcpy(e->name, PQgetvalue(res, row, 1), sizeof(e->name));
	rc = dc_fernet_decrypt(ring, PQgetvalue(res, row, 2), 0, 0, &url, &len);
	if (rc != DC_OK)
		return DC_ETOKEN;
	if (len >= sizeof(e->url)) {
		dc_explicit_bzero(url, len);
		free(url);
		return DC_EINVAL;
	}
	memcpy(e->url, url, len + 1);
	dc_explicit_bzero(url, len);
	free(url);
	dc_strlcpy(e->type, PQgetvalue(res, row, 3), sizeof(e->type));
	e->is_active = PQgetvalue(res, row, 4)[0] == 't';
	e->is_default = PQgetvalue(res, row, 5)[0] == 't';
	dc_strlcpy(e->tags, PQgetisnull(res, row, 6) ? "[]" :
	    PQgetvalue(res, row, 6), sizeof(e->tags));
	if (!PQgetisnull(res, row, 7)) {
		e->has_description = 1;
		dc_strlcpy(e->description, PQgetvalue(res, row, 7),
		    sizeof(e->description));
	}
	e->created_at = get_i64(res, row, 8);
	e->last_profiled = get_i64(res, row, 9);
	e->datapoint_count = (int32_t)get_i64(res, row, 10);
	return DC_OK;
}

static int
put_row(PGresult *res, int row, const struct dc_fernet_ring *ring,
    struct dc_shreg *reg, int *bad)
{
	struct dc_entry *e;
	const char *id = PQgetvalue(res, row, 0);
	uint8_t raw[16];
	int rc;

	e = malloc(sizeof(*e));
	if (e == NULL)
		return DC_ENOMEM;
	rc = dc_store_row_to_entry(res, row, ring, e);
	if (rc == DC_ETOKEN || rc == DC_EINVAL) {
		log_warn("connection %s: its stored URL does not decrypt with "
		    "any configured credentials key; skipped", id);
		if (bad != NULL)
			(*bad)++;
		if (dc_uuid_parse(id, raw) == DC_OK)
			dc_shreg_remove(reg, raw);
	} else if (rc == DC_OK) {
		rc = dc_shreg_put(reg, e);
		if (rc == DC_EFULL)
			log_error("connection %s: the registry is full (%d "
			    "entries, registry_capacity); skipped", id,
			    dc_shreg_capacity(reg));
	}
	dc_explicit_bzero(e, sizeof(*e));
	free(e);
	return DC_OK;
}

int
dc_store_load_all(PGconn *c, const struct dc_fernet_ring *ring,
    struct dc_shreg *reg, int *bad, char *err, size_t errsz)
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
	n = PQntuples(res);
	for (i = 0; i < n; i++)
		put_row(res, i, ring, reg, bad);
	dc_shreg_sweep(reg);
	PQclear(res);
	return DC_OK;
}

int
dc_store_load_one(PGconn *c, const struct dc_fernet_ring *ring,
    struct dc_shreg *reg, const uint8_t id[16], char *err, size_t errsz)
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
	if (PQntuples(res) == 0)
		dc_shreg_remove(reg, id);
	else
		put_row(res, 0, ring, reg, NULL);
	PQclear(res);
	return DC_OK;
}
