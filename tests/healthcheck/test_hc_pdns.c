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
#include <stdatomic.h>
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

/* ---------- Route 53: a fake endpoint with Route 53's batch rules ---------- */

/*
 * Serves ListResourceRecordSets (GET .../rrset?...) and
 * ChangeResourceRecordSets (POST .../rrset/) for the fence record only, with
 * the two rules the agent's compare-and-set relies on: a batch applies all
 * or nothing, a DELETE must match the existing record exactly and a CREATE
 * fails on an existing one (400 InvalidChangeBatch). Keeps the last POST
 * as sent. One connection at a time, bounded by poll time-outs.
 */
typedef struct fake53 {
    int listen_fd;
    int port;
    atomic_bool stop;
    pthread_t thread;
    pthread_mutex_t mu;
    char fence[256]; /* the stored fence value as Route 53 returns it, "" when none */
    int fence_ttl;
    char last_post[65536];
    int posts, gets, rejected;
} fake53;

static void xml_unquote(const char *in, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < outlen; i++) {
        if (strncmp(in + i, "&quot;", 6) == 0) {
            out[o++] = '"';
            i += 5;
        } else {
            out[o++] = in[i];
        }
    }
    out[o] = '\0';
}

/* The fence change of `action` in the batch: its value and TTL. */
static bool fence_change(const char *body, const char *action, char *value, size_t n, int *ttl)
{
    char pat[64];
    snprintf(pat, sizeof pat, "<Action>%s</Action>", action);
    for (const char *c = strstr(body, pat); c; c = strstr(c + 1, pat)) {
        const char *end = strstr(c, "</Change>");
        const char *t = strstr(c, "<Type>TXT</Type>");
        if (!end || !t || t > end)
            continue;
        const char *tl = strstr(c, "<TTL>"), *v = strstr(c, "<Value>"), *ve = strstr(c, "</Value>");
        *ttl = atoi(tl + 5);
        xml_unquote(v + 7, (size_t)(ve - v - 7), value, n);
        return true;
    }
    return false;
}

static void fake53_serve(fake53 *f, int fd)
{
    char req[65536];
    size_t len = 0;
    int64_t deadline = mr_test_now_ms() + 5000;
    for (;;) {
        struct pollfd q = {fd, POLLIN, 0};
        int left = (int)(deadline - mr_test_now_ms());
        if (left <= 0 || poll(&q, 1, left) <= 0)
            return;
        ssize_t r = read(fd, req + len, sizeof req - 1 - len);
        if (r <= 0)
            return;
        len += (size_t)r;
        req[len] = '\0';
        char *end = strstr(req, "\r\n\r\n");
        const char *cl = strcasestr(req, "\r\nContent-Length: ");
        if (end && (!cl || len >= (size_t)(end + 4 - req) + (size_t)atoi(cl + 18)))
            break;
    }
    char resp[4096];
    int status = 200;
    pthread_mutex_lock(&f->mu);
    if (strncmp(req, "GET ", 4) == 0) {
        f->gets++;
        char set[1024] = "";
        if (f->fence[0]) {
            char q[600] = "";
            for (const char *c = f->fence; *c; c++)
                strcat(q, *c == '"' ? "&quot;" : (char[2]){*c, 0});
            snprintf(set, sizeof set,
                     "<ResourceRecordSet><Name>_meridian-lease.meridian.test.</Name><Type>TXT"
                     "</Type><TTL>%d</TTL><ResourceRecords><ResourceRecord><Value>%s</Value>"
                     "</ResourceRecord></ResourceRecords></ResourceRecordSet>",
                     f->fence_ttl, q);
        } else {
            /* What Route 53 does when the name does not exist: the next one. */
            snprintf(set, sizeof set,
                     "<ResourceRecordSet><Name>eu-west.ws.meridian.test.</Name><Type>A</Type>"
                     "<TTL>5</TTL><ResourceRecords><ResourceRecord><Value>127.1.0.1</Value>"
                     "</ResourceRecord></ResourceRecords></ResourceRecordSet>");
        }
        snprintf(resp, sizeof resp,
                 "<?xml version=\"1.0\"?><ListResourceRecordSetsResponse><ResourceRecordSets>%s"
                 "</ResourceRecordSets><IsTruncated>true</IsTruncated><MaxItems>1</MaxItems>"
                 "</ListResourceRecordSetsResponse>",
                 set);
    } else {
        f->posts++;
        snprintf(f->last_post, sizeof f->last_post, "%s", req);
        const char *body = strstr(req, "\r\n\r\n") + 4;
        char del[256], cre[256];
        int dttl = 0, cttl = 0;
        bool has_del = fence_change(body, "DELETE", del, sizeof del, &dttl);
        bool has_cre = fence_change(body, "CREATE", cre, sizeof cre, &cttl);
        bool ok = true;
        if (has_del && (strcmp(del, f->fence) != 0 || dttl != f->fence_ttl))
            ok = false; /* the DELETE does not match the existing record */
        if (has_cre && f->fence[0] && !has_del)
            ok = false; /* CREATE of an existing record */
        if (ok && has_cre) {
            snprintf(f->fence, sizeof f->fence, "%s", cre);
            f->fence_ttl = cttl;
        }
        if (ok) {
            snprintf(resp, sizeof resp, "<ChangeResourceRecordSetsResponse/>");
        } else {
            f->rejected++;
            status = 400;
            snprintf(resp, sizeof resp,
                     "<ErrorResponse><Error><Code>InvalidChangeBatch</Code><Message>Tried to "
                     "delete resource record set but it was not found</Message></Error>"
                     "</ErrorResponse>");
        }
    }
    pthread_mutex_unlock(&f->mu);
    char head[256];
    int hn = snprintf(head, sizeof head,
                      "HTTP/1.1 %d %s\r\nContent-Type: text/xml\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n",
                      status, status == 200 ? "OK" : "Bad Request", strlen(resp));
    if (write(fd, head, (size_t)hn) != hn || write(fd, resp, strlen(resp)) < 0)
        return;
}

static void *fake53_main(void *arg)
{
    fake53 *f = arg;
    while (!atomic_load(&f->stop)) {
        struct pollfd p = {f->listen_fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept(f->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        fake53_serve(f, fd);
        close(fd);
    }
    return NULL;
}

static void fake53_start(fake53 *f)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    f->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    ck_assert_int_eq(bind(f->listen_fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(f->listen_fd, 8), 0);
    getsockname(f->listen_fd, (struct sockaddr *)&sa, &sl);
    f->port = ntohs(sa.sin_port);
    pthread_create(&f->thread, NULL, fake53_main, f);
}

static void fake53_stop(fake53 *f)
{
    atomic_store(&f->stop, true);
    pthread_join(f->thread, NULL);
    close(f->listen_fd);
    pthread_mutex_destroy(&f->mu);
}

static hc_dns_provider *route53_at(int port)
{
    char conf[512];
    snprintf(conf, sizeof conf,
             "{\"type\":\"route53\",\"hosted_zone_id\":\"Z0EXAMPLE\",\"access_key_id\":"
             "\"AKIDEXAMPLE\",\"secret_access_key\":\"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\","
             "\"endpoint\":\"http://127.0.0.1:%d\",\"timeout_ms\":3000}",
             port);
    json_t *j = json_loads(conf, 0, NULL);
    mr_cfg cf = {.file = "test"};
    hc_dns_provider *p = hc_dns_new(base, regions, &cf, j);
    json_decref(j);
    ck_assert_msg(p != NULL, "%s", cf.err);
    return p;
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
    fake53 f;
    fake53_start(&f);
    hc_dns_provider *p = route53_at(f.port);
    bool eu_down[3] = {false, true, true};
    result w = write_plan(p, eu_down);
    fake53_stop(&f);
    ck_assert_msg(w.rc == 0, "%s", w.err);
    /* First the fence was read (none yet), then one batch was sent. */
    ck_assert_int_eq(f.gets, 1);
    ck_assert_int_eq(f.posts, 1);
    const char *req = f.last_post;
    ck_assert_msg(strncmp(req, "POST /2013-04-01/hostedzone/Z0EXAMPLE/rrset/ HTTP/1.1\r\n", 54) ==
                      0,
                  "%.200s", req);
    char *host = header(req, "Host"), *date = header(req, "X-Amz-Date"),
         *auth = header(req, "Authorization"), *ctype = header(req, "Content-Type");
    const char *body = strstr(req, "\r\n\r\n") + 4;
    hc_dns_plan plan;
    hc_dns_plan_build(&plan, regions, eu_down, NULL);
    mr_buf want = MR_BUF_INIT;
    hc_dns_fence fence = {.term = 1, .holder = "test-agent"};
    hc_dns_route53_fenced_request(&plan, NULL, 0, &fence, "meridian-healthcheck", &want);
    ck_assert_str_eq(body, want.data);
    ck_assert_ptr_nonnull(strstr(body, "<Action>CREATE</Action><ResourceRecordSet><Name>"
                                       "_meridian-lease.meridian.test.</Name><Type>TXT</Type>"));
    ck_assert_ptr_nonnull(strstr(body, "&quot;term=1 holder=test-agent&quot;"));
    ck_assert_ptr_null(strstr(body, "<Action>DELETE</Action>"));
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

/*
 * The fence as a compare-and-set: agent A (term 5) writes; agent B takes the
 * lease over (term 6) and writes, replacing A's fence; A, still believing
 * it holds and remembering its own fence, tries again: its DELETE of the
 * term-5 fence no longer matches, Route 53 rejects the whole batch, and A's
 * next try reads the fence and refuses by itself. B's answer stays.
 */
START_TEST(route53_fence_is_compare_and_set)
{
    fake53 f;
    fake53_start(&f);
    hc_dns_provider *a = route53_at(f.port), *b = route53_at(f.port);
    bool all[3] = {true, true, true}, eu_down[3] = {false, true, true};
    result w = write_fenced(a, all, 5);
    ck_assert_msg(w.rc == 0, "%s", w.err);
    ck_assert_str_eq(f.fence, "\"term=5 holder=test-agent\"");
    w = write_fenced(b, eu_down, 6);
    ck_assert_msg(w.rc == 0, "%s", w.err);
    ck_assert_str_eq(f.fence, "\"term=6 holder=test-agent\"");
    ck_assert_ptr_nonnull(strstr(f.last_post, "<Action>DELETE</Action>"));
    int posts = f.posts;
    w = write_fenced(a, all, 5);
    ck_assert_int_eq(w.rc, -1);
    ck_assert_msg(strstr(w.err, "InvalidChangeBatch"), "%s", w.err);
    ck_assert_int_eq(f.rejected, 1);
    ck_assert_int_eq(f.posts, posts + 1);
    w = write_fenced(a, all, 5);
    ck_assert_int_eq(w.rc, -1);
    ck_assert_msg(strstr(w.err, "fenced") && strstr(w.err, "term 6"), "%s", w.err);
    ck_assert_int_eq(f.posts, posts + 1); /* refused before sending anything */
    ck_assert_str_eq(f.fence, "\"term=6 holder=test-agent\"");
    /* B goes on writing in its term (its fence is the stored one). */
    w = write_fenced(b, all, 6);
    ck_assert_msg(w.rc == 0, "%s", w.err);
    fake53_stop(&f);
    hc_dns_free(a);
    hc_dns_free(b);
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
    tcase_add_test(tc, route53_fence_is_compare_and_set);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
