/*
 * fuzz_https.c - fuzz_http.c on a TLS listener: the same harness, built
 * with FUZZ_HTTP_TLS (its header says what changes).  The bytes of an
 * input are the application data its client sends after the handshake.
 */
#define FUZZ_HTTP_TLS 1
#include "fuzz_http.c"
