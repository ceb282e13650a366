/*
 * The app backend of the hook and webhook tests: tests/support/hook_backend.py
 * (Python's http.server) started on a free port; what it answers is in that
 * file's docstring.
 */
#ifndef MR_TEST_BACKEND_H
#define MR_TEST_BACKEND_H

#include <jansson.h>
#include <sys/types.h>

typedef struct mr_test_backend {
    pid_t pid;
    int port;
    char log[600];
} mr_test_backend;

/**
 * Start the backend in `dir` and wait until it listens. `secret_file` (may be
 * NULL) checks webhook signatures; the first `fail_first` webhooks get 503.
 */
void mr_test_backend_start(mr_test_backend *b, const char *dir, const char *secret_file,
                           int fail_first);
/** GET /stats, parsed (the caller decrefs). */
json_t *mr_test_backend_stats(mr_test_backend *b);
void mr_test_backend_stop(mr_test_backend *b);

#endif
