/*
 * sse.h - an incremental parser of server-sent events (text/event-stream,
 * as the HTML standard defines it), the format in which OpenAI's and
 * Anthropic's APIs (and the local servers that copy OpenAI's) stream a
 * reply with "stream": true.
 *
 * Bytes go in as they arrive, split anywhere; every complete event (a
 * blank line after one or more "data:" lines) comes out through the
 * callback with its "event:" name ("" when it had none) and its data
 * lines joined by '\n'.  Lines may end in CRLF, LF or CR; comments and
 * the fields other than event and data are skipped.
 */
#ifndef DC_SSE_H
#define DC_SSE_H

#include <stddef.h>

#define DC_SSE_EVENT_MAX	64	/* longer event names are cut */

struct dc_sse {
	char		*line;		/* the line being read */
	size_t		 len, cap;
	char		*data;		/* the event's data so far */
	size_t		 dlen, dcap;
	char		 event[DC_SSE_EVENT_MAX];
	size_t		 max;		/* largest line or event */
	int		 cr;		/* the last byte was a CR */
	int		 bom;		/* bytes of a byte order mark seen;
					   3: past it */
};

/*
 * Called for each event; data is NUL-terminated after len bytes.  A
 * non-zero return stops the parser, and dc_sse_feed returns it.
 */
typedef int (*dc_sse_cb)(const char *event, const char *data, size_t len,
    void *arg);

void		 dc_sse_init(struct dc_sse *p, size_t max);
void		 dc_sse_free(struct dc_sse *p);

/*
 * Parse len more bytes.  Returns 0, DC_EINVAL when a line or an event is
 * larger than max, DC_ENOMEM, or what the callback returned.
 */
int		 dc_sse_feed(struct dc_sse *p, const char *buf, size_t len,
		     dc_sse_cb cb, void *arg);

#endif /* DC_SSE_H */
