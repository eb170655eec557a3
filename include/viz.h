/*
 * viz.h - DataChat's deterministic visualization hint for a result
 * (backend/api/visualization.py): "none", "table", "scatter",
 * "line_chart" or "bar_chart" from the columns' names, which columns
 * hold a number, and the row count.
 */
#ifndef DC_VIZ_H
#define DC_VIZ_H

/*
 * The hint for ncols columns named names[], numeric[i] non-zero when
 * column i holds at least one value DataChat's _to_float reads as a
 * number, over nrows rows.
 */
const char	*dc_viz_hint(int ncols, const char *const *names,
		     const int *numeric, int nrows);

/*
 * Whether Python's float(s.strip().replace(",", "")) succeeds: how
 * DataChat decides that a text value is numeric.
 */
int		 dc_viz_text_is_number(const char *s);

/* A column name DataChat calls date-like (date, time, day, month...). */
int		 dc_viz_date_like(const char *name);

#endif /* DC_VIZ_H */
