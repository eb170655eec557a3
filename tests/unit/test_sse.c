/*
 * test_sse.c - unit tests for src/chat/sse.c: OpenAI's and Anthropic's
 * streams fed whole and one byte at a time, the three line ends, data
 * split over lines, comments and unknown fields, the byte order mark,
 * the size limit, and a callback that stops the parser.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc.h"
#include "sse.h"
#include "t.h"

struct seen {
	char	 out[4096];
	int	 n;
	int	 stop_after;
};

static int
collect(const char *event, const char *data, size_t len, void *arg)
{
	struct seen *s = arg;
	size_t o = strlen(s->out);

	CHECK(strlen(data) == len);
	snprintf(s->out + o, sizeof(s->out) - o, "[%s|%s]", event, data);
	s->n++;
	return s->stop_after > 0 && s->n >= s->stop_after ? 42 : 0;
}

/* Feed text whole and byte by byte; both must give want. */
static void
feed_both(const char *text, const char *want)
{
	struct dc_sse p;
	struct seen s;
	size_t i;

	memset(&s, 0, sizeof(s));
	dc_sse_init(&p, 1024);
	CHECK(dc_sse_feed(&p, text, strlen(text), collect, &s) == 0);
	CHECK_STR(s.out, want);
	dc_sse_free(&p);

	memset(&s, 0, sizeof(s));
	dc_sse_init(&p, 1024);
	for (i = 0; text[i] != '\0'; i++)
		CHECK(dc_sse_feed(&p, text + i, 1, collect, &s) == 0);
	CHECK_STR(s.out, want);
	dc_sse_free(&p);
}

static void
test_providers(void)
{
	/* OpenAI: data lines only, [DONE] at the end */
	feed_both("data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n",
	    "[|{\"a\":1}][|{\"b\":2}][|[DONE]]");
	/* Anthropic: named events, a ping among them */
	feed_both("event: message_start\ndata: {\"type\":\"message_start\"}\n\n"
	    "event: ping\ndata: {\"type\": \"ping\"}\n\n"
	    "event: content_block_delta\ndata: {\"t\":\"x\"}\n\n",
	    "[message_start|{\"type\":\"message_start\"}]"
	    "[ping|{\"type\": \"ping\"}][content_block_delta|{\"t\":\"x\"}]");
}

static void
test_format(void)
{
	/* CRLF, CR and LF line ends, mixed */
	feed_both("data: a\r\n\r\ndata: b\r\rdata: c\n\n", "[|a][|b][|c]");
	/* several data lines are joined by \n; no space after the colon */
	feed_both("data:one\ndata: two\ndata\n\n", "[|one\ntwo\n]");
	/* comments, ids, retries and unknown fields are skipped */
	feed_both(": keep-alive\nid: 7\nretry: 10\nfoo: bar\ndata: x\n\n",
	    "[|x]");
	/* an event name without data dispatches nothing, and is forgotten */
	feed_both("event: lonely\n\ndata: y\n\n", "[|y]");
	/* only one space is removed */
	feed_both("data:  two spaces\n\n", "[| two spaces]");
	/* a byte order mark at the very start */
	feed_both("\xef\xbb\xbf" "data: bom\n\n", "[|bom]");
	/* an event without its blank line is not dispatched */
	feed_both("data: unfinished\n", "");
}

static void
test_limits(void)
{
	struct dc_sse p;
	struct seen s;
	char big[200];

	memset(big, 'x', sizeof(big));
	memset(&s, 0, sizeof(s));
	dc_sse_init(&p, 100);
	/* a line longer than max */
	CHECK(dc_sse_feed(&p, "data: ", 6, collect, &s) == 0);
	CHECK(dc_sse_feed(&p, big, sizeof(big), collect, &s) == DC_EINVAL);
	dc_sse_free(&p);

	/* an event whose lines fit but whose data does not */
	memset(&s, 0, sizeof(s));
	dc_sse_init(&p, 100);
	CHECK(dc_sse_feed(&p, "data: 0123456789012345678901234567890123456789"
	    "\n", 47, collect, &s) == 0);
	CHECK(dc_sse_feed(&p, "data: 0123456789012345678901234567890123456789"
	    "\n", 47, collect, &s) == 0);
	CHECK(dc_sse_feed(&p, "data: 0123456789012345678901234567890123456789"
	    "\n", 47, collect, &s) == DC_EINVAL);
	CHECK(s.n == 0);
	dc_sse_free(&p);

	/* the callback stops the parser; its value comes back */
	memset(&s, 0, sizeof(s));
	s.stop_after = 1;
	dc_sse_init(&p, 100);
	CHECK(dc_sse_feed(&p, "data: a\n\ndata: b\n\n", 18, collect, &s) == 42);
	CHECK_STR(s.out, "[|a]");
	dc_sse_free(&p);
}

int
main(void)
{
	test_providers();
	test_format();
	test_limits();
	T_DONE();
}
