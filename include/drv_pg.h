/*
 * drv_pg.h - the PostgreSQL driver (src/drivers/pg/): libpq in
 * non-blocking pipeline mode on the worker's loop.  Only the driver
 * table (drivers.c) and the driver's own tests include this; everything
 * else reaches PostgreSQL through driver.h and reads rows through rows.h.
 */
#ifndef DC_DRV_PG_H
#define DC_DRV_PG_H

#include <libpq-fe.h>

struct dc_driver;
struct dc_rows;

extern const struct dc_driver dc_driver_pg;

/* The neutral type (rows.h) of a column of type OID oid. */
int		 dc_pg_vtype(Oid oid);

/*
 * A whole PGresult as rows, without copying: *out holds res and clears
 * it when freed (so does a failure).  0 or DC_ENOMEM.
 */
int		 dc_pg_rows(PGresult *res, struct dc_rows **out);

#endif /* DC_DRV_PG_H */
