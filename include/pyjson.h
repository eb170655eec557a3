/*
 * pyjson.h - Python's json module's verdict on a document that json-c
 * refused: the message and the character position CPython 3.13 reports,
 * which FastAPI puts in its 422 json_invalid error.
 */
#ifndef DC_PYJSON_H
#define DC_PYJSON_H

#include <stddef.h>

/*
 * 1 with *msg ("Expecting value", ...) and *pos (in code points) when
 * Python's json.loads would refuse buf; 0 when it would accept it (NaN,
 * Infinity, nesting deeper than json-c follows).  buf must be UTF-8.
 */
int		 dc_pyjson_error(const char *buf, size_t len, const char **msg,
		     size_t *pos);

/* 1 when buf is well-formed UTF-8 (what bytes.decode() accepts). */
int		 dc_pyjson_utf8_ok(const char *buf, size_t len);

#endif /* DC_PYJSON_H */
