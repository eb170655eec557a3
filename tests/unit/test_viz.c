/*
 * test_viz.c - unit tests for src/chat/viz.c: DataChat's visualization
 * rules (the cases of its own tests and the edges of each rule) and
 * which text Python's float() reads.
 */
#include <stdio.h>
#include <string.h>

#include "viz.h"
#include "t.h"

static void
test_hint(void)
{
	const char *one[] = { "n" };
	const char *two[] = { "month", "revenue" };
	const char *cat[] = { "region", "revenue" };
	const char *nums[] = { "a", "b" };
	int yes[] = { 1 }, no[] = { 0 }, dn[] = { 0, 1 }, nn[] = { 1, 1 },
	    cc[] = { 0, 0 };

	CHECK_STR(dc_viz_hint(0, one, yes, 3), "none");
	CHECK_STR(dc_viz_hint(1, one, yes, 0), "none");
	CHECK_STR(dc_viz_hint(1, one, yes, 1), "table");
	CHECK_STR(dc_viz_hint(1, one, no, 9), "table");
	CHECK_STR(dc_viz_hint(2, two, dn, 12), "line_chart");
	CHECK_STR(dc_viz_hint(2, two, dn, 5000), "line_chart");
	CHECK_STR(dc_viz_hint(2, cat, dn, 40), "bar_chart");
	CHECK_STR(dc_viz_hint(2, cat, dn, 41), "table");
	CHECK_STR(dc_viz_hint(2, nums, nn, 400), "scatter");
	CHECK_STR(dc_viz_hint(2, nums, nn, 401), "table");
	CHECK_STR(dc_viz_hint(2, cat, cc, 3), "table");
}

static void
test_date_like(void)
{
	CHECK(dc_viz_date_like("order_date"));
	CHECK(dc_viz_date_like("Month"));
	CHECK(dc_viz_date_like("created-time"));
	CHECK(dc_viz_date_like("__year__"));
	CHECK(!dc_viz_date_like("updated"));
	CHECK(!dc_viz_date_like("dates"));
	CHECK(!dc_viz_date_like("weekday"));
	CHECK(!dc_viz_date_like(""));
}

static void
test_number(void)
{
	static const char *yes[] = { "1", " 2.5 ", "-3e-2", "1,234.5", "+.5",
	    "5.", "1_000", "inf", "-Infinity", "NaN", "1e5", "\t7\n",
	    "1,2,3" };
	static const char *no[] = { "", "  ", "abc", "1_", "_1", "1__0", ".",
	    "e5", "1e", "0x10", "1.2.3", "$5", "12 3", "infinit", "--1" };
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (!dc_viz_text_is_number(yes[i])) {
			fprintf(stderr, "should be a number: \"%s\"\n", yes[i]);
			CHECK(0);
		}
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (dc_viz_text_is_number(no[i])) {
			fprintf(stderr, "should not be a number: \"%s\"\n",
			    no[i]);
			CHECK(0);
		}
}

int
main(void)
{
	test_hint();
	test_date_like();
	test_number();
	T_DONE();
}
