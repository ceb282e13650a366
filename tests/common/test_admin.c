/*
 * The shared admin HTTP server (mr_admin_thread, the relay's admin port):
 * requests pipelined in one write are all answered, in order, whatever
 * their paths, including one that matches no route.
 */
#include "test_suites.h"
#include "mr_admin.h"
#include "mr_test.h"

#include <check.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <stdbool.h>
#include <string.h>

static bool ready_cb(void *ud, mr_buf *detail)
{
    mr_buf_puts(detail, "{\"test\":true}");
    return true;
}

static void on_extra(struct evhttp_request *req, void *arg)
{
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "{\"extra\":true}\n");
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

static void routes(struct evhttp *http, void *ud)
{
    evhttp_set_cb(http, "/v1/extra", on_extra, ud);
}

static void expect(int port, const char *text, int want, const int *statuses)
{
    int st[8];
    int got = mr_test_http_pipelined(port, NULL, text, want, st, 5000);
    ck_assert_msg(got == want, "%d of %d pipelined requests answered: %s", got, want, text);
    for (int i = 0; i < want; i++)
        ck_assert_msg(st[i] == statuses[i], "response %d: status %d, want %d", i, st[i],
                      statuses[i]);
}

#define REQ(method, path) method " " path " HTTP/1.1\r\nHost: x\r\n\r\n"

START_TEST(pipelined_requests_all_answered)
{
    char err[256];
    mr_admin_thread *a =
        mr_admin_thread_start("127.0.0.1:0", ready_cb, NULL, routes, err, sizeof err);
    ck_assert_msg(a != NULL, "%s", err);
    int port = mr_admin_thread_port(a);
    expect(port, REQ("GET", "/healthz") REQ("GET", "/readyz"), 2, (int[]){200, 200});
    expect(port, REQ("GET", "/metrics") REQ("POST", "/v1/extra") REQ("GET", "/healthz"), 3,
           (int[]){200, 200, 200});
    /* A path without a route is a 404 that keeps the connection for what follows. */
    expect(port, REQ("GET", "/nothing-here") REQ("GET", "/healthz"), 2, (int[]){404, 200});
    mr_admin_thread_stop(a);
}
END_TEST

Suite *admin_suite(void)
{
    Suite *s = suite_create("admin");
    TCase *tc = tcase_create("admin");
    tcase_add_test(tc, pipelined_requests_all_answered);
    suite_add_tcase(s, tc);
    return s;
}
