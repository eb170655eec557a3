/*
 * drivers.c - the database engines datachatd speaks, one table
 * (driver.h), and what every dialect shares.
 *
 * A database_type without a driver here is refused when a connection is
 * registered, and answered 400 when a query names an entry of that type
 * that came into the registry by another way (DataChat itself).
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "dc.h"
#include "driver.h"
#include "drv_clickhouse.h"
#include "drv_mysql.h"
#include "drv_pg.h"

static const struct dc_driver *const drivers[] = {
	&dc_driver_pg,
	&dc_driver_mysql,
	&dc_driver_clickhouse,
};

const struct dc_driver *
dc_driver_find(const char *type)
{
	size_t i;

	for (i = 0; type != NULL && i < DC_ARRAY_SIZE(drivers); i++)
		if (strcmp(drivers[i]->type, type) == 0)
			return drivers[i];
	return NULL;
}

const char *
dc_driver_names(void)
{
	static char names[128];
	size_t i, o = 0;

	if (names[0] != '\0')
		return names;
	/* "a", "a and b", "a, b and c" */
	for (i = 0; i < DC_ARRAY_SIZE(drivers) && o < sizeof(names); i++)
		o += (size_t)snprintf(names + o, sizeof(names) - o, "%s%s",
		    i == 0 ? "" : i + 1 == DC_ARRAY_SIZE(drivers) ? " and " :
		    ", ", drivers[i]->type);
	return names;
}

int
dc_dialect_table(const struct dc_dialect *d, const char *schema,
    const char *table, char *out, size_t outsz)
{
	int n;

	/* names come through dc_sql_ident_ok(): nothing to escape */
	assert(strchr(table, d->quote) == NULL &&
	    (schema == NULL || strchr(schema, d->quote) == NULL));
	if (schema != NULL)
		n = snprintf(out, outsz, "%c%s%c.%c%s%c", d->quote, schema,
		    d->quote, d->quote, table, d->quote);
	else
		n = snprintf(out, outsz, "%c%s%c", d->quote, table, d->quote);
	return n < 0 || (size_t)n >= outsz ? DC_EINVAL : DC_OK;
}
