/*
 * sse.c - server-sent events, parsed as they arrive (see sse.h).
 *
 * The parser keeps the line it is reading and the data of the event it
 * is building, both bounded by max, so a provider that never ends a line
 * or an event costs at most that much memory before the call fails.
 */
#include <stdlib.h>
#include <string.h>

#include "dc.h"
#include "sse.h"

void
dc_sse_init(struct dc_sse *p, size_t max)
{
	memset(p, 0, sizeof(*p));
	p->max = max;
}

void
dc_sse_free(struct dc_sse *p)
{
	free(p->line);
	free(p->data);
	memset(p, 0, sizeof(*p));
}

/* Make room for n more bytes and a NUL in *buf; 0 or an error. */
static int
grow(char **buf, size_t *cap, size_t len, size_t n, size_t max)
{
	size_t c;
	char *b;

	if (len + n > max)
		return DC_EINVAL;
	if (len + n + 1 <= *cap)
		return DC_OK;
	for (c = *cap > 0 ? *cap : 256; c < len + n + 1; c *= 2)
		;
	if ((b = realloc(*buf, c)) == NULL)
		return DC_ENOMEM;
	*buf = b;
	*cap = c;
	return DC_OK;
}

/* One whole line (without its end). */
static int
line_done(struct dc_sse *p, dc_sse_cb cb, void *arg)
{
	const char *line = p->line != NULL ? p->line : "", *colon, *value;
	size_t nlen, vlen;
	int rc;

	if (p->len == 0) {
		/* a blank line dispatches the event, if it has data */
		if (p->dlen == 0) {
			p->event[0] = '\0';
			return DC_OK;
		}
		p->dlen--;		/* the '\n' after the last line */
		p->data[p->dlen] = '\0';
		rc = cb(p->event, p->data, p->dlen, arg);
		p->dlen = 0;
		p->event[0] = '\0';
		return rc;
	}
	if (line[0] == ':')
		return DC_OK;		/* a comment */
	colon = memchr(line, ':', p->len);
	nlen = colon != NULL ? (size_t)(colon - line) : p->len;
	value = colon != NULL ? colon + 1 : line + p->len;
	vlen = p->len - (size_t)(value - line);
	if (vlen > 0 && *value == ' ') {
		value++;
		vlen--;
	}
	if (nlen == 4 && memcmp(line, "data", 4) == 0) {
		if ((rc = grow(&p->data, &p->dcap, p->dlen, vlen + 1,
		    p->max)) != DC_OK)
			return rc;
		memcpy(p->data + p->dlen, value, vlen);
		p->dlen += vlen;
		p->data[p->dlen++] = '\n';
		p->data[p->dlen] = '\0';
	} else if (nlen == 5 && memcmp(line, "event", 5) == 0) {
		if (vlen >= sizeof(p->event))
			vlen = sizeof(p->event) - 1;
		memcpy(p->event, value, vlen);
		p->event[vlen] = '\0';
	}
	/* id, retry and unknown fields mean nothing to us */
	return DC_OK;
}

int
dc_sse_feed(struct dc_sse *p, const char *buf, size_t len, dc_sse_cb cb,
    void *arg)
{
	size_t i = 0, n;
	int rc;

	/* a UTF-8 byte order mark may open the stream, split or not */
	while (p->bom < 3 && i < len) {
		if (buf[i] != "\xef\xbb\xbf"[p->bom]) {
			p->bom = 3;
			break;
		}
		p->bom++;
		i++;
	}
	while (i < len) {
		if (p->cr) {
			/* CRLF is one line end */
			p->cr = 0;
			if (buf[i] == '\n') {
				i++;
				continue;
			}
		}
		/* the run of bytes up to the next line end */
		for (n = i; n < len && buf[n] != '\n' && buf[n] != '\r'; n++)
			;
		if (n > i) {
			if ((rc = grow(&p->line, &p->cap, p->len, n - i,
			    p->max)) != DC_OK)
				return rc;
			memcpy(p->line + p->len, buf + i, n - i);
			p->len += n - i;
			p->line[p->len] = '\0';
		}
		if (n == len)
			break;
		p->cr = buf[n] == '\r';
		i = n + 1;
		rc = line_done(p, cb, arg);
		p->len = 0;
		if (rc != DC_OK)
			return rc;
	}
	return DC_OK;
}
