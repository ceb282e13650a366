/* Start, query and stop tests/support/hook_backend.py (mr_test_backend.h). */
#include "mr_test_backend.h"
#include "mr_test.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

void mr_test_backend_start(mr_test_backend *b, const char *dir, const char *secret_file,
                           int fail_first)
{
    /* A port taken between mr_test_free_port() and the bind: the backend exits, try another. */
    for (int attempt = 0; attempt < 3; attempt++) {
        b->port = mr_test_free_port();
        snprintf(b->log, sizeof b->log, "%s/backend-%d.log", dir, b->port);
        char port[16], fail[16];
        snprintf(port, sizeof port, "%d", b->port);
        snprintf(fail, sizeof fail, "%d", fail_first);
        char *argv[] = {"python3",       MR_TEST_BACKEND_PY,  port, "--fail-first", fail,
                        "--secret-file", (char *)secret_file, NULL};
        if (!secret_file)
            argv[5] = NULL;
        b->pid = mr_test_spawn(argv, b->log);
        ck_assert_msg(b->pid > 0, "cannot start python3 %s", MR_TEST_BACKEND_PY);
        int64_t deadline = mr_test_now_ms() + 30000;
        while (mr_test_now_ms() < deadline && mr_test_alive(b->pid)) {
            if (mr_test_wait_port("127.0.0.1", b->port, 200) == 0)
                return;
        }
        char *log = mr_test_read_file(b->log);
        fprintf(stderr, "test backend on %d did not listen: %.500s\n", b->port, log ? log : "");
        free(log);
        mr_test_stop(b->pid, SIGKILL, 5000);
    }
    ck_abort_msg("the test backend (%s) did not start", MR_TEST_BACKEND_PY);
}

json_t *mr_test_backend_stats(mr_test_backend *b)
{
    char *body = NULL;
    int st = mr_test_http_get("127.0.0.1", b->port, "/stats", &body);
    ck_assert_msg(st == 200, "backend /stats answered %d", st);
    json_t *j = json_loads(body, 0, NULL);
    ck_assert_msg(j != NULL, "backend /stats: not JSON: %.200s", body);
    free(body);
    return j;
}

void mr_test_backend_stop(mr_test_backend *b)
{
    if (b->pid > 0)
        mr_test_stop(b->pid, SIGTERM, 5000);
    b->pid = 0;
}
