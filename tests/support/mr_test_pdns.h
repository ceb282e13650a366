/*
 * A real PowerDNS authoritative server for tests: pdns_server with the
 * gsqlite3 backend (a fresh database in a temporary directory), its HTTP API
 * and LUA records enabled, on free loopback ports. Caches are off so a
 * change made through the API is served at once.
 */
#ifndef MR_TEST_PDNS_H
#define MR_TEST_PDNS_H

#include <sys/types.h>

typedef struct mr_test_pdns {
    pid_t pid;
    int dns_port; /* UDP and TCP on 127.0.0.1 */
    int api_port;
    char api_url[64]; /* "http://127.0.0.1:PORT" */
    char api_key[64];
    char *dir;
    char log[512];
} mr_test_pdns;

/**
 * Create the database and start pdns_server; returns when the API answers.
 * Fails the test (never skips) when pdns_server, its sqlite3 backend or the
 * sqlite3 program is missing.
 */
void mr_test_pdns_start(mr_test_pdns *p);
void mr_test_pdns_stop(mr_test_pdns *p);

/** Blocking HTTP request to the API with the key; returns the status and the body (malloc'd). */
int mr_test_pdns_api(mr_test_pdns *p, const char *method, const char *path, const char *body,
                     char **resp);

#endif
