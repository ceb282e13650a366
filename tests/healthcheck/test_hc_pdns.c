/*
 * The PowerDNS provider and c-ares verification against a real pdns_server
 * (gsqlite3 backend, HTTP API, LUA records) started by the test: writes
 * create the zone, answers depend on the querying source address, a changed
 * plan is served, and API failures (wrong key, broken backend, a server that
 * never answers) come back as clear errors within the time-out.
 */
#include "hc_dns.h"
#include "hc_sigv4.h"
#include "hc_verify.h"
#include "mr_buf.h"
#include "mr_regions.h"
#include "mr_test.h"
#include "mr_test_pdns.h"
#include "mr_time.h"

#include <arpa/inet.h>
#include <check.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define FIXTURE(name) MERIDIAN_HC_TEST_DIR "/fixtures/" name

static mr_test_pdns pdns;
static struct event_base *base;
static mr_regions *regions;

static void setup(void)
{
    mr_test_pdns_start(&pdns);
    base = event_base_new();
    char err[512];
    regions = mr_regions_load(FIXTURE("regions3.json"), err, sizeof err);
    ck_assert_msg(regions != NULL, "%s", err);
}

static void teardown(void)
{
    mr_regions_free(regions);
    event_base_free(base);
    mr_test_pdns_stop(&pdns);
}

typedef struct result {
    bool done;
    int rc;
    char err[512];
    bool ok;
    double seconds;
    char detail[512];
} result;

static void on_write(int rc, const char *err, void *ud)
{
    result *r = ud;
    r->done = true;
    r->rc = rc;
    snprintf(r->err, sizeof r->err, "%s", err ? err : "");
}

static void on_verify(bool ok, double seconds, const char *detail, void *ud)
{
    result *r = ud;
    r->done = true;
    r->ok = ok;
    r->seconds = seconds;
    snprintf(r->detail, sizeof r->detail, "%s", detail);
}

/* Run the loop until *done or the deadline; loops are bounded by time. */
static void run_until(bool *done, int timeout_ms)
{
    int64_t deadline = mr_test_now_ms() + timeout_ms;
    while (!*done && mr_test_now_ms() < deadline)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(1000);
}

static hc_dns_provider *provider(const char *api_url, const char *key, int timeout_ms)
{
    char conf[512];
    snprintf(conf, sizeof conf,
             "{\"type\":\"powerdns\",\"api_url\":\"%s\",\"api_key\":\"%s\",\"timeout_ms\":%d}",
             api_url, key, timeout_ms);
    json_t *j = json_loads(conf, 0, NULL);
    mr_cfg c = {.file = "test"};
    hc_dns_provider *p = hc_dns_new(base, regions, &c, j);
    json_decref(j);
    ck_assert_msg(p != NULL, "%s", c.err);
    return p;
}

static result write_fenced(hc_dns_provider *p, const bool *healthy, uint64_t term)
{
    hc_dns_plan plan;
    hc_dns_plan_build(&plan, regions, healthy, NULL);
    result r = {0};
    char err[512];
    hc_dns_fence fence = {.term = term, .holder = "test-agent"};
    ck_assert_int_eq(p->ops->write(p, &plan, &fence, on_write, &r, err, sizeof err), 0);
    run_until(&r.done, 10000);
    ck_assert_msg(r.done, "write did not complete");
    hc_dns_plan_free(&plan);
    return r;
}

/* Every write of a test in the same lease term, the first ever. */
static result write_plan(hc_dns_provider *p, const bool *healthy)
{
    return write_fenced(p, healthy, 1);
}

static result query(const char *source)
{
    result r = {0};
    char err[256];
    ck_assert_ptr_nonnull(hc_verify_query(base, "127.0.0.1", pdns.dns_port, source,
                                          "ws.meridian.test.", 3000, on_verify, &r, err,
                                          sizeof err));
    run_until(&r.done, 5000);
    ck_assert(r.done);
    return r;
}

START_TEST(pdns_write_and_answers_by_source)
{
    ck_assert_int_eq(hc_verify_global_init(), 0);
    hc_dns_provider *p = provider(pdns.api_url, pdns.api_key, 3000);
    bool all[3] = {true, true, true};
    result w = write_plan(p, all);
    ck_assert_msg(w.rc == 0, "first write (creates the zone): %s", w.err);
    ck_assert_str_eq(query("127.1.0.53").detail, "127.1.0.1,127.1.0.2");
    ck_assert_str_eq(query("127.2.0.53").detail, "127.2.0.1");
    ck_assert_str_eq(query("127.3.0.53").detail, "127.3.0.1");
    /* Outside every geography: the default region (eu-west). */
    ck_assert_str_eq(query("127.9.0.53").detail, "127.1.0.1,127.1.0.2");
    /* Region names answer the region's own relays, whoever asks. */
    result rn = {0};
    char rerr[256];
    ck_assert_ptr_nonnull(hc_verify_query(base, "127.0.0.1", pdns.dns_port, "127.2.0.53",
                                          "eu-west.ws.meridian.test.", 3000, on_verify, &rn, rerr,
                                          sizeof rerr));
    run_until(&rn.done, 5000);
    ck_assert_str_eq(rn.detail, "127.1.0.1,127.1.0.2");

    /* eu-west dies: its clients move to us-east; verification sees it served. */
    int64_t t0 = mr_now_us();
    bool eu_down[3] = {false, true, true};
    w = write_plan(p, eu_down);
    ck_assert_msg(w.rc == 0, "%s", w.err);
    char *expect[] = {"127.2.0.1"};
    result v = {0};
    char err[256];
    ck_assert_ptr_nonnull(hc_verify_start(base, "127.0.0.1", pdns.dns_port, "127.1.0.53",
                                          "ws.meridian.test.", expect, 1, t0, 5000, on_verify, &v,
                                          err, sizeof err));
    run_until(&v.done, 8000);
    ck_assert_msg(v.ok, "not served: %s", v.detail);
    fprintf(stderr, "pdns: write to served answer: %.3f s\n", v.seconds);
    ck_assert(v.seconds < 2.0);

    /* Verification of an answer that never comes times out cleanly. */
    char *wrong[] = {"127.8.8.8"};
    result nv = {0};
    ck_assert_ptr_nonnull(hc_verify_start(base, "127.0.0.1", pdns.dns_port, "127.1.0.53",
                                          "ws.meridian.test.", wrong, 1, mr_now_us(), 600,
                                          on_verify, &nv, err, sizeof err));
    run_until(&nv.done, 5000);
    ck_assert(nv.done && !nv.ok);
    ck_assert_str_eq(nv.detail, "127.2.0.1");
    hc_dns_free(p);
}
END_TEST

/*
 * Fencing: the lease term travels in a TXT record of the same PATCH, and a
 * writer whose term is below the stored one is refused before it writes (a
 * holder whose lease was taken over, still believing it holds).
 */
START_TEST(pdns_fence_refuses_an_older_term)
{
    ck_assert_int_eq(hc_verify_global_init(), 0);
    hc_dns_provider *p = provider(pdns.api_url, pdns.api_key, 3000);
    bool all[3] = {true, true, true}, eu_down[3] = {false, true, true};
    result w = write_fenced(p, all, 7);
    ck_assert_msg(w.rc == 0, "%s", w.err);
    /* An old holder (term 6) comes back and tries to move eu-west's clients. */
    w = write_fenced(p, eu_down, 6);
    ck_assert_int_eq(w.rc, -1);
    ck_assert_msg(strstr(w.err, "fenced") && strstr(w.err, "term 7"), "%s", w.err);
    ck_assert_str_eq(query("127.1.0.53").detail, "127.1.0.1,127.1.0.2");
    /* The same term writes again, and a newer one does too. */
    w = write_fenced(p, eu_down, 7);
    ck_assert_msg(w.rc == 0, "%s", w.err);
    w = write_fenced(p, all, 8);
    ck_assert_msg(w.rc == 0, "%s", w.err);
    ck_assert_str_eq(query("127.1.0.53").detail, "127.1.0.1,127.1.0.2");
    w = write_fenced(p, eu_down, 7);
    ck_assert_int_eq(w.rc, -1);
    hc_dns_free(p);
}
END_TEST

START_TEST(pdns_wrong_key_is_a_clear_error)
{
    hc_dns_provider *p = provider(pdns.api_url, "not-the-key", 3000);
    bool all[3] = {true, true, true};
    result w = write_plan(p, all);
    ck_assert_int_eq(w.rc, -1);
    ck_assert_msg(strstr(w.err, "HTTP 401"), "error was: %s", w.err);
    hc_dns_free(p);
}
END_TEST

START_TEST(pdns_broken_backend_is_a_clear_error)
{
    hc_dns_provider *p = provider(pdns.api_url, pdns.api_key, 3000);
    bool all[3] = {true, true, true};
    result w = write_plan(p, all);
    ck_assert_msg(w.rc == 0, "%s", w.err);
    /* Break the real server's database under it: it answers 5xx (or 422). */
    char db[600];
    snprintf(db, sizeof db, "%s/pdns.sqlite3", pdns.dir);
    char *argv[] = {"sqlite3", db, "DROP TABLE records;", NULL};
    pid_t pid = mr_test_spawn(argv, pdns.log);
    ck_assert(mr_test_wait_exit(pid, 10000) != -1);
    bool eu_down[3] = {false, true, true};
    w = write_plan(p, eu_down);
    ck_assert_int_eq(w.rc, -1);
    ck_assert_msg(strstr(w.err, "HTTP 5") || strstr(w.err, "HTTP 422"), "error was: %s", w.err);
    hc_dns_free(p);
}
END_TEST

START_TEST(pdns_hanging_api_times_out)
{
    /* A listener that accepts (the kernel does) but never answers. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(fd, 8), 0);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(sa.sin_port));
    hc_dns_provider *p = provider(url, "k", 500);
    bool all[3] = {true, true, true};
    int64_t t0 = mr_test_now_ms();
    result w = write_plan(p, all);
    int64_t took = mr_test_now_ms() - t0;
    ck_assert_int_eq(w.rc, -1);
    ck_assert_msg(took >= 400 && took < 3000, "took %lld ms", (long long)took);
    ck_assert_msg(strstr(w.err, "no response"), "error was: %s", w.err);
    /* Nothing listening at all: refused, at once. */
    close(fd);
    hc_dns_free(p);
    p = provider(url, "k", 500);
    w = write_plan(p, all);
    ck_assert_int_eq(w.rc, -1);
    hc_dns_free(p);
}
END_TEST

START_TEST(dryrun_writes_nothing_and_succeeds)
{
    json_t *j = json_pack("{s:s}", "type", "dry-run");
    mr_cfg c = {.file = "test"};
    hc_dns_provider *p = hc_dns_new(base, regions, &c, j);
    json_decref(j);
    ck_assert_msg(p != NULL, "%s", c.err);
    ck_assert_str_eq(p->ops->name, "dry-run");
    bool all[3] = {true, true, true};
    result w = write_plan(p, all);
    ck_assert_int_eq(w.rc, 0);
    hc_dns_free(p);
    /* Nothing reached the server: the zone does not even exist. */
    char *resp;
    ck_assert_int_eq(mr_test_pdns_api(&pdns, "GET",
                                      "/api/v1/servers/localhost/zones/meridian.test.", NULL,
                                      &resp),
                     404);
    free(resp);
    /* Unknown provider types and missing settings are configuration errors. */
    j = json_pack("{s:s}", "type", "bind");
    mr_cfg c2 = {.file = "test"};
    ck_assert_ptr_null(hc_dns_new(base, regions, &c2, j));
    ck_assert_ptr_nonnull(strstr(c2.err, "dns.type"));
    json_decref(j);
    j = json_pack("{s:s}", "type", "powerdns");
    mr_cfg c3 = {.file = "test"};
    ck_assert_ptr_null(hc_dns_new(base, regions, &c3, j));
    ck_assert_ptr_nonnull(strstr(c3.err, "dns.api_url"));
    json_decref(j);
}
END_TEST

/* ---------- Route 53: the request as sent is the request as signed ---------- */

typedef struct capture {
    int listen_fd;
    char req[65536];
    size_t len;
} capture;

/* Accept one connection, read one HTTP request (head and Content-Length
 * body), answer 200 and keep the bytes. Bounded by a 5 s deadline. */
static void *capture_main(void *arg)
{
    capture *c = arg;
    struct pollfd p = {c->listen_fd, POLLIN, 0};
    if (poll(&p, 1, 5000) <= 0)
        return NULL;
    int fd = accept(c->listen_fd, NULL, NULL);
    int64_t deadline = mr_test_now_ms() + 5000;
    for (;;) {
        struct pollfd q = {fd, POLLIN, 0};
        int left = (int)(deadline - mr_test_now_ms());
        if (left <= 0 || poll(&q, 1, left) <= 0)
            break;
        ssize_t r = read(fd, c->req + c->len, sizeof c->req - 1 - c->len);
        if (r <= 0)
            break;
        c->len += (size_t)r;
        c->req[c->len] = '\0';
        char *end = strstr(c->req, "\r\n\r\n");
        const char *cl = strcasestr(c->req, "\r\nContent-Length: ");
        if (end && cl && c->len >= (size_t)(end + 4 - c->req) + (size_t)atoi(cl + 18))
            break;
    }
    const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    ssize_t w = write(fd, ok, sizeof ok - 1);
    (void)w;
    close(fd);
    return NULL;
}

static char *header(const char *req, const char *name)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\r\n%s: ", name);
    const char *h = strcasestr(req, pat);
    ck_assert_msg(h != NULL, "no %s header in %s", name, req);
    h += strlen(pat);
    return strndup(h, strcspn(h, "\r\n"));
}

START_TEST(route53_request_is_signed_as_sent)
{
    capture c = {.listen_fd = socket(AF_INET, SOCK_STREAM, 0)};
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    ck_assert_int_eq(bind(c.listen_fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(c.listen_fd, 4), 0);
    getsockname(c.listen_fd, (struct sockaddr *)&sa, &sl);
    pthread_t t;
    pthread_create(&t, NULL, capture_main, &c);

    char conf[512];
    snprintf(conf, sizeof conf,
             "{\"type\":\"route53\",\"hosted_zone_id\":\"Z0EXAMPLE\",\"access_key_id\":"
             "\"AKIDEXAMPLE\",\"secret_access_key\":\"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\","
             "\"endpoint\":\"http://127.0.0.1:%d\",\"timeout_ms\":3000}",
             ntohs(sa.sin_port));
    json_t *j = json_loads(conf, 0, NULL);
    mr_cfg cf = {.file = "test"};
    hc_dns_provider *p = hc_dns_new(base, regions, &cf, j);
    json_decref(j);
    ck_assert_msg(p != NULL, "%s", cf.err);
    bool eu_down[3] = {false, true, true};
    result w = write_plan(p, eu_down);
    pthread_join(t, NULL);
    close(c.listen_fd);
    ck_assert_msg(w.rc == 0, "%s", w.err);

    ck_assert_msg(strncmp(c.req, "POST /2013-04-01/hostedzone/Z0EXAMPLE/rrset/ HTTP/1.1\r\n", 54) ==
                      0,
                  "%.200s", c.req);
    char *host = header(c.req, "Host"), *date = header(c.req, "X-Amz-Date"),
         *auth = header(c.req, "Authorization"), *ctype = header(c.req, "Content-Type");
    const char *body = strstr(c.req, "\r\n\r\n") + 4;
    hc_dns_plan plan;
    hc_dns_plan_build(&plan, regions, eu_down, NULL);
    mr_buf want = MR_BUF_INIT;
    hc_dns_fence fence = {.term = 1, .holder = "test-agent"};
    hc_dns_route53_fenced_request(&plan, &fence, "meridian-healthcheck", &want);
    ck_assert_str_eq(body, want.data);
    ck_assert_ptr_nonnull(
        strstr(body, "<Name>_meridian-lease.meridian.test.</Name><Type>TXT</Type>"));
    ck_assert_ptr_nonnull(strstr(body, "&quot;term=1 holder=test-agent&quot;"));
    /* Re-sign what went over the wire: it must give the same Authorization. */
    hc_sigv4_header extra[] = {{"content-type", ctype}};
    hc_sigv4_req r = {.method = "POST",
                      .path = "/2013-04-01/hostedzone/Z0EXAMPLE/rrset/",
                      .host = host,
                      .headers = extra,
                      .n_headers = 1,
                      .body = body,
                      .body_len = strlen(body),
                      .amz_date = date,
                      .region = "us-east-1",
                      .service = "route53",
                      .access_key = "AKIDEXAMPLE",
                      .secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"};
    mr_buf again = MR_BUF_INIT;
    hc_sigv4_sign(&r, &again, NULL, NULL);
    ck_assert_str_eq(auth, again.data);
    ck_assert_ptr_nonnull(strstr(auth, "SignedHeaders=content-type;host;x-amz-date"));
    mr_buf_free(&want);
    mr_buf_free(&again);
    hc_dns_plan_free(&plan);
    free(host);
    free(date);
    free(auth);
    free(ctype);
    hc_dns_free(p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("healthcheck-pdns");
    TCase *tc = tcase_create("pdns");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, pdns_write_and_answers_by_source);
    tcase_add_test(tc, pdns_fence_refuses_an_older_term);
    tcase_add_test(tc, pdns_wrong_key_is_a_clear_error);
    tcase_add_test(tc, pdns_broken_backend_is_a_clear_error);
    tcase_add_test(tc, pdns_hanging_api_times_out);
    tcase_add_test(tc, dryrun_writes_nothing_and_succeeds);
    tcase_add_test(tc, route53_request_is_signed_as_sent);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
