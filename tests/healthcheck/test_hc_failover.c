/*
 * End-to-end failover of the health agents, everything real: one nats-server
 * per region joined by gateways (the supercluster meridian-regions renders,
 * as scripts/up runs it), one pdns_server, three meridian-relay processes
 * (one per region, on 127.1.0.1, 127.2.0.1, 127.3.0.1, each on its region's
 * NATS) and three meridian-healthcheck agents (each on its region's NATS). DNS is read the way
 * clients of each region would read it: with c-ares from a source address inside the region's CIDR.
 *
 * Agent C reaches its NATS through a TCP proxy owned by the test, so the test
 * can cut it off from NATS without touching the others. Killing a region's
 * nats-server and relay is a region outage: that region's agent keeps
 * running and probing but can reach no other agent.
 *
 * Every relay listens on the same port P of its own address (127.1.0.1:P,
 * 127.2.0.1:P, 127.3.0.1:P): the regions file requires one port for all
 * relays, since DNS answers carry no port.
 */
#include "hc_verify.h"
#include "mr_buf.h"
#include "mr_jwt.h"
#include "mr_test.h"
#include "mr_test_pdns.h"
#include "mr_test_region.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <event2/event.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SECRET  "healthcheck-test-secret-0123456789"
#define API_KEY "drain-key-for-tests"
/* The relays' admin_api_key, which the agents send when they drain a relay. */
#define RELAY_ADMIN_KEY "relay-admin-key-for-tests"
#define NREG            3
#define NAGENT          3

static const char *const region_names[NREG] = {"eu-west", "us-east", "ap-south"};
static const char *const relay_addr[NREG] = {"127.1.0.1", "127.2.0.1", "127.3.0.1"};
static const char *const client_src[NREG] = {"127.1.0.77", "127.2.0.77", "127.3.0.77"};

typedef struct proc {
    pid_t pid;
    int port;
    char cfg[600], log[600];
} proc;

static char *tmp;
static mr_test_deploy dep; /* the three regions' nats-servers */
static mr_test_pdns pdns;
static proc relays[NREG];
static proc agents[NAGENT];
static int relay_port, admin_port; /* the same for every relay, on its own address */
static char regions_path[600];

/* ---------- a cuttable TCP forwarder (agent C's path to NATS) ---------- */

typedef struct fwd {
    int listen_fd;
    int port;
    int upstream_port;
    char upstream_addr[32];
    atomic_bool cut;
    atomic_bool stop;
    pthread_t thread;
} fwd;

/* Agent C's path to NATS. */
static fwd nats_fwd;
#define NATS_FWD (&nats_fwd)

static void *fwd_main(void *arg)
{
    fwd *f = arg;
    int fds[64][2];
    int n = 0;
    while (!atomic_load(&f->stop)) {
        struct pollfd p[129];
        int np = 0;
        p[np++] = (struct pollfd){f->listen_fd, POLLIN, 0};
        for (int i = 0; i < n; i++) {
            p[np++] = (struct pollfd){fds[i][0], POLLIN, 0};
            p[np++] = (struct pollfd){fds[i][1], POLLIN, 0};
        }
        poll(p, (nfds_t)np, 50);
        if (atomic_load(&f->cut)) {
            for (int i = 0; i < n; i++)
                close(fds[i][0]), close(fds[i][1]);
            n = 0;
        }
        if (p[0].revents & POLLIN) {
            int c = accept(f->listen_fd, NULL, NULL);
            if (c >= 0 && (atomic_load(&f->cut) || n == 64)) {
                close(c);
            } else if (c >= 0) {
                int u = socket(AF_INET, SOCK_STREAM, 0);
                struct sockaddr_in sa = {.sin_family = AF_INET,
                                         .sin_port = htons((uint16_t)f->upstream_port)};
                inet_pton(AF_INET, f->upstream_addr, &sa.sin_addr);
                if (connect(u, (struct sockaddr *)&sa, sizeof sa) != 0) {
                    close(u);
                    close(c);
                } else {
                    fds[n][0] = c;
                    fds[n][1] = u;
                    n++;
                }
            }
            continue;
        }
        for (int i = 0; i < n; i++) {
            for (int side = 0; side < 2; side++) {
                if (!(p[1 + 2 * i + side].revents & (POLLIN | POLLHUP | POLLERR)))
                    continue;
                char buf[65536];
                ssize_t r = read(fds[i][side], buf, sizeof buf);
                if (r <= 0 || write(fds[i][!side], buf, (size_t)r) != r) {
                    close(fds[i][0]);
                    close(fds[i][1]);
                    fds[i][0] = fds[n - 1][0];
                    fds[i][1] = fds[n - 1][1];
                    n--;
                    break;
                }
            }
            if (i >= n)
                break;
        }
    }
    for (int i = 0; i < n; i++)
        close(fds[i][0]), close(fds[i][1]);
    return NULL;
}

static void fwd_start(fwd *f, const char *addr, int port, int upstream)
{
    f->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(f->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, addr, &sa.sin_addr);
    socklen_t sl = sizeof sa;
    ck_assert_msg(bind(f->listen_fd, (struct sockaddr *)&sa, sizeof sa) == 0, "bind %s:%d: %s",
                  addr, port, strerror(errno));
    ck_assert_int_eq(listen(f->listen_fd, 64), 0);
    getsockname(f->listen_fd, (struct sockaddr *)&sa, &sl);
    f->port = ntohs(sa.sin_port);
    f->upstream_port = upstream;
    /* The upstream nats-server listens on the same address as the forwarder. */
    snprintf(f->upstream_addr, sizeof f->upstream_addr, "%s", addr);
    atomic_store(&f->cut, false);
    atomic_store(&f->stop, false);
    pthread_create(&f->thread, NULL, fwd_main, f);
}

static void fwd_stop(fwd *f)
{
    atomic_store(&f->stop, true);
    pthread_join(f->thread, NULL);
    close(f->listen_fd);
}

/* ---------- processes ---------- */

static void wait_http(int port, const char *host, const char *path, int want, int timeout_ms,
                      const char *what, const char *log)
{
    int64_t deadline = mr_test_now_ms() + timeout_ms;
    int st = -1;
    while (mr_test_now_ms() < deadline) {
        char *body;
        st = mr_test_http_get(host, port, path, &body);
        free(body);
        if (st == want)
            return;
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    ck_abort_msg("%s: %s answered %d, wanted %d (log %s)", what, path, st, want, log);
}

/* MERIDIAN_RELAY_BIN in the environment overrides the build's relay (to run
 * against another build of it). */
static char *relay_bin(void)
{
    return getenv("MERIDIAN_RELAY_BIN") ? getenv("MERIDIAN_RELAY_BIN") : MERIDIAN_RELAY_BIN;
}

static void relay_start(int r)
{
    proc *p = &relays[r];
    char *argv[] = {relay_bin(), "--config", p->cfg, NULL};
    p->pid = mr_test_spawn(argv, p->log);
    wait_http(admin_port, relay_addr[r], "/readyz", 200, 15000, "relay", p->log);
    ck_assert_int_eq(mr_test_wait_port(relay_addr[r], relay_port, 5000), 0);
}

static void relay_kill(int r)
{
    if (relays[r].pid > 0)
        mr_test_stop(relays[r].pid, SIGKILL, 5000);
    relays[r].pid = 0;
}

static void write_regions(const char *path, int ttl)
{
    mr_buf b = MR_BUF_INIT;
    mr_buf_printf(
        &b,
        "{\"version\":1,\"dns\":{\"zone\":\"meridian.test.\",\"ws_name\":\"ws\","
        "\"api_name\":\"api\",\"region_name\":\"{region}.ws\",\"ttl\":%d,"
        "\"default_region\":\"eu-west\",\"nameservers\":[{\"name\":\"ns1.meridian.test.\","
        "\"address\":\"127.0.0.1\",\"port\":%d}]},\"regions\":[",
        ttl, pdns.dns_port);
    static const char *const failover[NREG] = {
        "[\"us-east\",\"ap-south\"]", "[\"eu-west\",\"ap-south\"]", "[\"us-east\",\"eu-west\"]"};
    for (int r = 0; r < NREG; r++) {
        mr_buf_printf(&b,
                      "%s{\"name\":\"%s\",\"geo\":{\"continents\":[],\"countries\":[],"
                      "\"cidrs\":[\"127.%d.0.0/16\"]},\"failover\":%s,\"min_healthy_relays\":1,"
                      "\"relays\":[{\"id\":\"%s-1\",\"address\":\"%s\",\"port\":%d,"
                      "\"ws_url\":\"ws://%s:%d/\",\"admin_url\":\"http://%s:%d\"}],"
                      /* The agents take their NATS URLs from their own config; the
                       * regions file's NATS topology is not used here. */
                      "\"nats\":{\"servers\":[{\"name\":\"%s-nats\",\"host\":\"127.%d.0.10\","
                      "\"client_port\":%d,\"cluster_port\":%d,\"gateway_port\":%d}]}}",
                      r ? "," : "", region_names[r], r + 1, failover[r], region_names[r],
                      relay_addr[r], relay_port, relay_addr[r], relay_port, relay_addr[r],
                      admin_port, region_names[r], r + 1, 4222, 6222, 7222);
    }
    mr_buf_puts(&b, "]}");
    ck_assert_int_eq(mr_test_write_file(path, b.data), 0);
    mr_buf_free(&b);
}

static void write_agent_config(int i, const char *nats_url, const char *regions,
                               const char *pdns_key)
{
    proc *p = &agents[i];
    p->port = mr_test_free_port();
    snprintf(p->cfg, sizeof p->cfg, "%s/agent-%d.json", tmp, i);
    snprintf(p->log, sizeof p->log, "%s/agent-%d.log", tmp, i);
    char text[4096];
    snprintf(text, sizeof text,
             "{\"agent_id\":\"agent-%c\",\"region\":\"%s\",\"regions_file\":\"%s\","
             "\"listen\":\"127.0.0.1:%d\",\"nats\":[\"%s\"],\"api_key\":\"%s\","
             "\"probe\":{\"interval_ms\":200,\"timeout_ms\":500,\"secret\":\"%s\"},"
             "\"quorum\":{\"agent_timeout_ms\":1000,\"publish_ms\":200},"
             "\"lease\":{\"ttl_ms\":2000,\"renew_ms\":400},"
             "\"verify\":{\"timeout_ms\":10000},"
             "\"dns\":{\"type\":\"powerdns\",\"api_url\":\"%s\",\"api_key\":\"%s\","
             "\"timeout_ms\":1000},\"drain\":{\"relay_api_key\":\"%s\"},\"log_level\":\"info\"}",
             'A' + i, region_names[i], regions, p->port, nats_url, API_KEY, SECRET, pdns.api_url,
             pdns_key, RELAY_ADMIN_KEY);
    ck_assert_int_eq(mr_test_write_file(p->cfg, text), 0);
}

static void agent_start(int i)
{
    proc *p = &agents[i];
    char *argv[] = {MERIDIAN_HC_BIN, "--config", p->cfg, NULL};
    p->pid = mr_test_spawn(argv, p->log);
    wait_http(p->port, "127.0.0.1", "/healthz", 200, 10000, "agent", p->log);
}

static void setup(void)
{
    tmp = mr_test_tmpdir("hc");
    mr_test_deploy_nats(&dep, MERIDIAN_SOURCE_DIR, MERIDIAN_REGIONS_BIN);
    mr_test_pdns_start(&pdns);
    relay_port = mr_test_free_port();
    admin_port = mr_test_free_port();
    for (int r = 0; r < NREG; r++) {
        proc *p = &relays[r];
        snprintf(p->cfg, sizeof p->cfg, "%s/relay-%d.json", tmp, r);
        snprintf(p->log, sizeof p->log, "%s/relay-%d.log", tmp, r);
        char text[2048];
        snprintf(
            text, sizeof text,
            "{\"region\":\"%s\",\"node_id\":\"%s-1\",\"listen\":\"%s:%d\","
            "\"admin_listen\":\"%s:%d\",\"nats\":[\"%s\"],\"auth\":{\"secret\":\"%s\"},"
            "\"stream\":{\"placement\":\"%s\"},\"admin_api_key\":\"%s\",\"log_level\":\"warn\"}",
            region_names[r], region_names[r], relay_addr[r], relay_port, relay_addr[r], admin_port,
            dep.r[r].nats_url, SECRET, region_names[r], RELAY_ADMIN_KEY);
        ck_assert_int_eq(mr_test_write_file(p->cfg, text), 0);
        relay_start(r);
    }
    snprintf(regions_path, sizeof regions_path, "%s/regions.json", tmp);
    write_regions(regions_path, 1);
    fwd_start(NATS_FWD, dep.r[2].host, 0, dep.r[2].client_port);
    char proxy_url[64];
    snprintf(proxy_url, sizeof proxy_url, "nats://%s:%d", dep.r[2].host, NATS_FWD->port);
    for (int i = 0; i < NAGENT; i++)
        write_agent_config(i, i == 2 ? proxy_url : dep.r[i].nats_url, regions_path, pdns.api_key);
    ck_assert_int_eq(hc_verify_global_init(), 0);
}

static void teardown(void)
{
    for (int i = 0; i < NAGENT; i++)
        if (agents[i].pid > 0) {
            int st = mr_test_stop(agents[i].pid, SIGTERM, 10000);
            agents[i].pid = 0;
            ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                          "agent %d exited with status %d; see %s", i, st, agents[i].log);
        }
    for (int r = 0; r < NREG; r++)
        relay_kill(r);
    fwd_stop(&nats_fwd);
    mr_test_pdns_stop(&pdns);
    mr_test_deploy_stop(&dep);
}

/* ---------- DNS and status from the outside ---------- */

typedef struct answer {
    bool done, ok;
    char text[512];
} answer;

static void on_answer(bool ok, double s, const char *detail, void *ud)
{
    answer *a = ud;
    a->done = true;
    a->ok = ok;
    snprintf(a->text, sizeof a->text, "%s", detail);
}

/* The A records pdns serves to a client at `source` ("" when none). */
static void dns_answer(const char *source, char *out, size_t n)
{
    struct event_base *b = event_base_new();
    answer a = {0};
    char err[256];
    ck_assert_ptr_nonnull(hc_verify_query(b, "127.0.0.1", pdns.dns_port, source,
                                          "ws.meridian.test.", 1000, on_answer, &a, err,
                                          sizeof err));
    int64_t deadline = mr_test_now_ms() + 3000;
    while (!a.done && mr_test_now_ms() < deadline)
        event_base_loop(b, EVLOOP_ONCE);
    /* Let the deferred teardown of the c-ares channel run. */
    event_base_loop(b, EVLOOP_NONBLOCK);
    event_base_free(b);
    snprintf(out, n, "%s", a.done ? a.text : "(no answer)");
}

/* Poll until clients at `source` get `want`; returns the seconds it took. */
static double wait_answer(const char *source, const char *want, int timeout_ms)
{
    int64_t t0 = mr_test_now_ms(), deadline = t0 + timeout_ms;
    char got[512] = "";
    while (mr_test_now_ms() < deadline) {
        dns_answer(source, got, sizeof got);
        if (strcmp(got, want) == 0)
            return (double)(mr_test_now_ms() - t0) / 1000.0;
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    ck_abort_msg("clients at %s get [%s], wanted [%s] within %d ms", source, got, want, timeout_ms);
    return -1;
}

/* The answer must stay `want` for `ms` (sampled): no flapping. */
static void hold_answer(const char *source, const char *want, int ms)
{
    int64_t deadline = mr_test_now_ms() + ms;
    int samples = 0;
    while (mr_test_now_ms() < deadline) {
        char got[512];
        dns_answer(source, got, sizeof got);
        ck_assert_msg(strcmp(got, want) == 0, "flapped: clients at %s got [%s] instead of [%s]",
                      source, got, want);
        samples++;
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
    ck_assert_int_gt(samples, 5);
}

static json_t *status(int i)
{
    char *body;
    int st = mr_test_http_get("127.0.0.1", agents[i].port, "/v1/status", &body);
    ck_assert_msg(st == 200, "agent %d /v1/status: %d (log %s)", i, st, agents[i].log);
    json_error_t e;
    json_t *j = json_loads(body, 0, &e);
    ck_assert_msg(j != NULL, "status is not JSON: %s", e.text);
    free(body);
    return j;
}

static json_int_t writes_of(int i)
{
    json_t *s = status(i);
    json_int_t w = json_integer_value(json_object_get(json_object_get(s, "dns"), "writes"));
    json_decref(s);
    return w;
}

static int holder_index(int timeout_ms)
{
    int64_t deadline = mr_test_now_ms() + timeout_ms;
    while (mr_test_now_ms() < deadline) {
        for (int i = 0; i < NAGENT; i++) {
            if (agents[i].pid <= 0)
                continue;
            json_t *s = status(i);
            bool held = json_is_true(json_object_get(json_object_get(s, "agent"), "lease_held"));
            json_decref(s);
            if (held)
                return i;
        }
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
    ck_abort_msg("no agent holds the lease");
    return -1;
}

static int live_agents(int i)
{
    json_t *s = status(i);
    int n = 0;
    json_t *a;
    size_t k;
    json_array_foreach(json_object_get(s, "agents"), k, a) n +=
        json_is_true(json_object_get(a, "live"));
    json_decref(s);
    return n;
}

/* Start the three agents; return once each sees all three live (so every
 * verdict from here on is a majority of three) and DNS answers each region. */
static void start_agents_and_wait_dns(void)
{
    for (int i = 0; i < NAGENT; i++)
        agent_start(i);
    int64_t deadline = mr_test_now_ms() + 10000;
    for (int i = 0; i < NAGENT; i++) {
        while (live_agents(i) != NAGENT) {
            ck_assert_msg(mr_test_now_ms() < deadline, "agent %d does not see the others", i);
            struct timespec ts = {0, 50 * 1000000};
            nanosleep(&ts, NULL);
        }
    }
    wait_answer(client_src[0], "127.1.0.1", 15000);
    wait_answer(client_src[1], "127.2.0.1", 5000);
    wait_answer(client_src[2], "127.3.0.1", 5000);
}

/* ---------- tests ---------- */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A client of region r's relay (through its public address), past welcome. */
static void client_connect(mr_ws *ws, const char *addr)
{
    ck_assert_int_eq(mr_ws_connect(ws, addr, relay_port, NULL), 101);
    json_t *claims =
        json_pack("{s:s, s:I}", "sub", "bench-client", "exp", (json_int_t)(wall_ms() / 1000) + 600);
    char *token = mr_jwt_sign((const unsigned char *)SECRET, strlen(SECRET), claims);
    json_decref(claims);
    char hello[2048];
    snprintf(hello, sizeof hello, "{\"type\":\"hello\",\"id\":1,\"token\":\"%s\"}", token);
    free(token);
    ck_assert_int_eq(mr_ws_send_text(ws, hello), 0);
    char *w = mr_ws_expect(ws, "\"welcome\"", 5000);
    ck_assert_msg(w != NULL, "no welcome from %s", addr);
    free(w);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void pct(const char *what, double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int i99 = (int)((n * 99 + 99) / 100) - 1;
    fprintf(stderr, "HC_BENCH %-34s p50 %.3f s  p99 %.3f s  (min %.3f, max %.3f, n=%d)\n", what,
            v[n / 2], v[i99 < 0 ? 0 : i99], v[0], v[n - 1], n);
}

/*
 * The failover timeline, measured on every run: relays killed -> majority
 * verdict (the writer's verdict time) -> DNS written -> the new answer served
 * to the region's clients -> a disconnected client, resolving again, has its
 * welcome from the fallback region. HC_BENCH_RUNS=N repeats it N times and
 * prints p50/p99 (docs/benchmarks.md).
 */
START_TEST(kill_region_fails_over_and_back)
{
    start_agents_and_wait_dns();
    int runs = getenv("HC_BENCH_RUNS") ? atoi(getenv("HC_BENCH_RUNS")) : 2;
    if (runs < 1 || runs > 1000)
        runs = 2;
    double *verdict = calloc((size_t)runs, sizeof(double)),
           *written = calloc((size_t)runs, sizeof(double)),
           *served = calloc((size_t)runs, sizeof(double)),
           *reconn = calloc((size_t)runs, sizeof(double)),
           *backs = calloc((size_t)runs, sizeof(double));
    for (int run = 0; run < runs; run++) {
        mr_ws ws;
        client_connect(&ws, relay_addr[0]);
        int writer = holder_index(5000);
        json_int_t writes0 = writes_of(writer);
        int64_t t_kill = wall_ms();
        relay_kill(0);
        ck_assert_int_eq(mr_ws_wait_close(&ws, 5000), 1006);
        mr_ws_close(&ws);
        /* The client resolves again until DNS sends it elsewhere, then connects. */
        double moved = wait_answer(client_src[0], "127.2.0.1", 10000);
        int64_t t_served = wall_ms();
        client_connect(&ws, "127.2.0.1");
        int64_t t_reconn = wall_ms();
        mr_ws_close(&ws);
        int h = holder_index(5000);
        json_t *st = status(h);
        json_t *eu = json_array_get(json_object_get(st, "regions"), 0);
        json_t *dns = json_object_get(st, "dns");
        int64_t t_verdict = json_integer_value(json_object_get(eu, "since"));
        int64_t t_written = json_integer_value(json_object_get(dns, "last_write_at"));
        ck_assert_str_eq(json_string_value(json_object_get(eu, "verdict")), "down");
        json_decref(st);
        verdict[run] = (double)(t_verdict - t_kill) / 1000.0;
        written[run] = (double)(t_written - t_kill) / 1000.0;
        served[run] = (double)(t_served - t_kill) / 1000.0;
        reconn[run] = (double)(t_reconn - t_kill) / 1000.0;
        /* Other regions are untouched, and nothing flaps while eu-west is dead. */
        char got[256];
        dns_answer(client_src[2], got, sizeof got);
        ck_assert_str_eq(got, "127.3.0.1");
        hold_answer(client_src[0], "127.2.0.1", 1500);
        /* One decision, one write: the writer did not flap either. */
        ck_assert_int_eq(holder_index(1000), writer);
        ck_assert_int_eq(writes_of(writer), writes0 + 1);
        int64_t t1 = mr_test_now_ms();
        relay_start(0);
        double ready = (double)(mr_test_now_ms() - t1) / 1000.0;
        double back = wait_answer(client_src[0], "127.1.0.1", 15000);
        backs[run] = back + ready;
        hold_answer(client_src[0], "127.1.0.1", 1000);
        ck_assert_int_eq(writes_of(writer), writes0 + 2);
        fprintf(stderr,
                "HC_FAILOVER run %d: killed -> verdict %.3f s -> written %.3f s -> served %.3f s "
                "-> client reconnected %.3f s (DNS poll saw it after %.3f s); relay restarted "
                "(ready in %.3f s) -> eu-west answered again %.3f s later\n",
                run, verdict[run], written[run], served[run], reconn[run], moved, ready, back);
        ck_assert_msg(served[run] < 5.0, "failover took %.3f s, aim is 5 s", served[run]);
    }
    pct("relays killed -> verdict", verdict, runs);
    pct("relays killed -> DNS written", written, runs);
    pct("relays killed -> answer served", served, runs);
    pct("relays killed -> client reconnected", reconn, runs);
    pct("relay back -> answer restored", backs, runs);
    free(verdict);
    free(written);
    free(served);
    free(reconn);
    free(backs);
}
END_TEST

START_TEST(partitioned_agent_never_writes_and_lease_moves)
{
    start_agents_and_wait_dns();
    /* Cut agent C off from NATS. Whoever held the lease, C must end up
     * disconnected, holding nothing and writing nothing. */
    atomic_store(&NATS_FWD->cut, true);
    int64_t deadline = mr_test_now_ms() + 10000;
    for (;;) {
        json_t *s = status(2);
        json_t *ag = json_object_get(s, "agent");
        bool off = json_is_false(json_object_get(ag, "nats")) &&
                   json_is_false(json_object_get(ag, "lease_held"));
        json_decref(s);
        if (off)
            break;
        ck_assert_msg(mr_test_now_ms() < deadline, "agent C did not notice the cut");
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
    json_int_t c_writes = writes_of(2);
    int h = holder_index(8000);
    ck_assert_int_ne(h, 2);

    /* ap-south dies: the majority (A and B) decides, the holder writes. */
    relay_kill(2);
    double moved = wait_answer(client_src[2], "127.2.0.1", 10000);
    fprintf(stderr,
            "HC_PARTITION: ap-south clients moved to us-east in %.3f s with agent C cut off\n",
            moved);
    ck_assert_int_eq(writes_of(2), c_writes);
    json_t *s = status(2);
    ck_assert(json_is_false(json_object_get(json_object_get(s, "agent"), "lease_held")));
    json_decref(s);

    /* C comes back; then the lease holder is killed outright: a majority
     * (the other agent and C) remains, one of them takes over and moves
     * us-east's clients when us-east dies. */
    atomic_store(&NATS_FWD->cut, false);
    int other = h == 0 ? 1 : 0;
    json_int_t other_writes = writes_of(other) + writes_of(2);
    mr_test_stop(agents[h].pid, SIGKILL, 5000);
    agents[h].pid = 0;
    int h2 = holder_index(8000);
    ck_assert_int_ne(h2, h);
    relay_kill(1);
    /* us-east fails over to eu-west; ap-south (us-east first) now also to eu-west. */
    double moved2 = wait_answer(client_src[1], "127.1.0.1", 10000);
    wait_answer(client_src[2], "127.1.0.1", 5000);
    fprintf(stderr, "HC_TAKEOVER: holder killed; us-east clients moved to eu-west in %.3f s\n",
            moved2);
    ck_assert_int_gt(writes_of(other) + writes_of(2), other_writes);
}
END_TEST

/*
 * A whole region dies (its nats-server and its relay, SIGKILL) while its
 * agent holds the lease; the agent itself keeps running, cut off from every
 * other agent. With the lease stored in one region's NATS (the KV bucket the
 * first agent created, in the first agent's region), nobody could take the
 * lease over and DNS stayed on the dead region ("fail static"). The other
 * two agents must now take over and move the dead region's clients, and
 * the isolated agent must write nothing.
 */
START_TEST(lease_region_dies_dns_moves)
{
    start_agents_and_wait_dns();
    int h = holder_index(8000);
    json_int_t old_writes = writes_of(h);
    int next = h == 0 ? 1 : h == 1 ? 0 : 1; /* failover order: eu<->us, ap->us */
    char want[32];
    snprintf(want, sizeof want, "%s", relay_addr[next]);
    int64_t t0 = mr_test_now_ms();
    kill(dep.r[h].nats_pid, SIGKILL);
    relay_kill(h);
    mr_test_stop(dep.r[h].nats_pid, SIGKILL, 5000);
    dep.r[h].nats_pid = 0;
    wait_answer(client_src[h], want, 15000);
    fprintf(stderr,
            "HC_LEASE_REGION: %s (lease holder's region) killed; its clients answered %s after "
            "%.3f s\n",
            region_names[h], want, (double)(mr_test_now_ms() - t0) / 1000.0);
    int h2 = holder_index(5000);
    ck_assert_int_ne(h2, h);
    /* The isolated old holder knows it no longer holds and wrote nothing. */
    json_t *s = status(h);
    ck_assert(json_is_false(json_object_get(json_object_get(s, "agent"), "lease_held")));
    json_decref(s);
    ck_assert_int_eq(writes_of(h), old_writes);
    hold_answer(client_src[h], want, 1500);
    /* The region comes back: its clients return to it. */
    mr_test_deploy_nats_restart(&dep, h);
    relay_start(h);
    wait_answer(client_src[h], relay_addr[h], 20000);
}
END_TEST

START_TEST(all_regions_down_fails_open)
{
    start_agents_and_wait_dns();
    for (int r = 0; r < NREG; r++)
        relay_kill(r);
    double t = wait_answer(client_src[1], "127.1.0.1,127.2.0.1,127.3.0.1", 10000);
    wait_answer(client_src[0], "127.1.0.1,127.2.0.1,127.3.0.1", 2000);
    fprintf(stderr, "HC_FAILOPEN: every region down -> all relays answered after %.3f s\n", t);
    relay_start(1);
    /* us-east is back: everyone whose failover order reaches it goes there. */
    wait_answer(client_src[0], "127.2.0.1", 15000);
    wait_answer(client_src[2], "127.2.0.1", 5000);
}
END_TEST

static int post(int port, const char *path, const char *key, char **body)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    char req[512];
    int n =
        snprintf(req, sizeof req, "POST %s HTTP/1.0\r\nHost: x\r\n%s%s%sContent-Length: 0\r\n\r\n",
                 path, key ? "X-API-Key: " : "", key ? key : "", key ? "\r\n" : "");
    ck_assert_int_eq(write(fd, req, (size_t)n), n);
    char buf[4096];
    size_t len = 0;
    int64_t deadline = mr_test_now_ms() + 5000;
    while (len < sizeof buf - 1 && mr_test_now_ms() < deadline) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t r = read(fd, buf + len, sizeof buf - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    int st = -1;
    if (sscanf(buf, "HTTP/1.%*d %d", &st) != 1)
        st = -1; /* no status line */
    char *b = strstr(buf, "\r\n\r\n");
    *body = strdup(b ? b + 4 : "");
    return st;
}

START_TEST(drain_takes_region_out_of_dns)
{
    start_agents_and_wait_dns();
    mr_ws client;
    client_connect(&client, relay_addr[0]);
    char *body;
    ck_assert_int_eq(post(agents[1].port, "/v1/regions/eu-west/drain", NULL, &body), 401);
    free(body);
    ck_assert_int_eq(post(agents[1].port, "/v1/regions/nowhere/drain", API_KEY, &body), 404);
    free(body);
    /* Drain through agent B; the flag reaches the writer through NATS KV. */
    ck_assert_int_eq(post(agents[1].port, "/v1/regions/eu-west/drain", API_KEY, &body), 200);
    ck_assert_ptr_nonnull(strstr(body, "\"drained\":true"));
    free(body);
    double t = wait_answer(client_src[0], "127.2.0.1", 10000);
    fprintf(stderr, "HC_DRAIN: eu-west drained -> its clients answered us-east after %.3f s\n", t);
    /* DNS moved first; then the writer asks eu-west's relay to drain, and the
     * relay's clients are told to reconnect to us-east's relay. */
    char us_url[64];
    snprintf(us_url, sizeof us_url, "ws://127.2.0.1:%d/", relay_port);
    char *frame = mr_ws_expect(&client, "\"reconnect\"", 10000);
    ck_assert_msg(frame != NULL, "the drained relay's client got no reconnect frame");
    ck_assert_msg(strstr(frame, us_url), "reconnect frame without the fallback URL: %s", frame);
    fprintf(stderr, "HC_DRAIN: client of the drained relay got %s\n", frame);
    free(frame);
    mr_ws_close(&client);
    /* Every agent learns the flag from NATS KV within a renewal period, and
     * the writer's timeline shows the relay accepted. */
    int64_t until = mr_test_now_ms() + 5000;
    for (;;) {
        json_t *s = status(0);
        json_t *eu = json_array_get(json_object_get(s, "regions"), 0);
        bool drained = json_is_true(json_object_get(eu, "drained"));
        json_decref(s);
        if (drained)
            break;
        ck_assert_msg(mr_test_now_ms() < until, "agent A never saw the drain flag");
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
    /* The relay's frames can reach the client before the writer has read
     * the relay's answer: poll the writer's timeline. */
    int w = holder_index(5000);
    until = mr_test_now_ms() + 5000;
    for (;;) {
        json_t *st = status(w);
        char *ev = json_dumps(json_object_get(st, "events"), JSON_COMPACT);
        json_decref(st);
        bool seen = strstr(ev, "relay eu-west-1 is moving its clients away") != NULL;
        if (!seen && mr_test_now_ms() >= until)
            ck_abort_msg("events: %.2000s", ev);
        free(ev);
        if (seen)
            break;
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }

    /* Undrain through agent C: the relay returns to service, and DNS follows
     * once its probes pass again. */
    ck_assert_int_eq(post(agents[2].port, "/v1/regions/eu-west/undrain", API_KEY, &body), 200);
    free(body);
    double back = wait_answer(client_src[0], "127.1.0.1", 15000);
    fprintf(stderr, "HC_DRAIN: undrained -> eu-west clients back on eu-west after %.3f s\n", back);
    client_connect(&client, relay_addr[0]);
    mr_ws_close(&client);
}
END_TEST

START_TEST(dashboard_and_metrics_are_served)
{
    start_agents_and_wait_dns();
    char *body;
    ck_assert_int_eq(mr_test_http_get("127.0.0.1", agents[0].port, "/", &body), 200);
    ck_assert_ptr_nonnull(strstr(body, "<title>Meridian health</title>"));
    free(body);
    /* Poll: the agents started one after the other and history builds up. */
    int64_t deadline = mr_test_now_ms() + 8000;
    for (;;) {
        ck_assert_int_eq(mr_test_http_get("127.0.0.1", agents[0].port, "/metrics", &body), 200);
        const char *live = strstr(body, "\nmeridian_hc_live_agents ");
        bool ok = live && atoi(live + 25) == 3 &&
                  strstr(body, "meridian_hc_region_up{region=\"eu-west\"} 1") &&
                  strstr(body, "meridian_hc_probe_latency_seconds"
                               "{region=\"us-east\",relay=\"us-east-1\",kind=\"ws\"}");
        json_t *s = status(0);
        json_t *ep = json_array_get(
            json_object_get(json_array_get(json_object_get(s, "regions"), 1), "endpoints"), 0);
        /* Endpoint transitions are in the timeline under their kind (the
         * dashboard colours by kind). */
        char *ev = json_dumps(json_object_get(s, "events"), JSON_COMPACT);
        bool has_endpoint = ev && strstr(ev, "\"kind\":\"endpoint\"") != NULL;
        free(ev);
        ok = ok && has_endpoint && json_array_size(json_object_get(s, "regions")) == 3 &&
             json_array_size(json_object_get(s, "agents")) == 3 &&
             json_real_value(json_object_get(json_object_get(ep, "latency_ms"), "ws")) > 0 &&
             json_array_size(json_object_get(ep, "history")) > 5;
        if (ok) {
            json_decref(s);
            free(body);
            break;
        }
        if (mr_test_now_ms() >= deadline) {
            char *txt = json_dumps(json_object_get(s, "agents"), JSON_COMPACT);
            ck_abort_msg("status/metrics incomplete; agents %s; metrics %.2000s", txt, body);
        }
        json_decref(s);
        free(body);
        struct timespec ts = {0, 100 * 1000000};
        nanosleep(&ts, NULL);
    }
}
END_TEST

/* ---------- bad input: clear errors, the agent keeps running ---------- */

START_TEST(bad_input_clear_errors)
{
    /* A broken regions file: refused at start with the file and the field. */
    char bad[600];
    snprintf(bad, sizeof bad, "%s/broken.json", tmp);
    mr_test_write_file(bad,
                       "{\"version\":1,\"dns\":{\"zone\":\"meridian.test.\"},\"regions\":[{]}");
    write_agent_config(0, dep.r[0].nats_url, bad, pdns.api_key);
    char *argv[] = {MERIDIAN_HC_BIN, "--config", agents[0].cfg, NULL};
    pid_t pid = mr_test_spawn(argv, agents[0].log);
    int st = mr_test_wait_exit(pid, 10000);
    ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 2, "status %d", st);
    char *log = NULL;
    FILE *f = fopen(agents[0].log, "r");
    ck_assert_ptr_nonnull(f);
    mr_buf b = MR_BUF_INIT;
    char line[1024];
    while (fgets(line, sizeof line, f))
        mr_buf_puts(&b, line);
    (void)fclose(f); /* opened to read only */
    log = b.data;
    ck_assert_msg(strstr(log, "broken.json"), "log: %s", log);
    mr_buf_free(&b);

    /* Wrong PowerDNS key and an unreachable endpoint: the agents run on,
     * say why in their status, and keep retrying. (All three: one agent
     * alone is no majority and never writes.) */
    relay_kill(1);
    char proxy_url[64];
    snprintf(proxy_url, sizeof proxy_url, "nats://%s:%d", dep.r[2].host, NATS_FWD->port);
    for (int i = 0; i < NAGENT; i++) {
        write_agent_config(i, i == 2 ? proxy_url : dep.r[i].nats_url, regions_path, "wrong-key");
        agent_start(i);
    }
    int w = holder_index(10000);
    int64_t deadline = mr_test_now_ms() + 10000;
    for (;;) {
        json_t *s = status(w);
        json_t *dns = json_object_get(s, "dns");
        json_t *us_ep = json_array_get(
            json_object_get(json_array_get(json_object_get(s, "regions"), 1), "endpoints"), 0);
        const char *werr = json_string_value(json_object_get(dns, "last_error"));
        const char *perr = json_string_value(json_object_get(us_ep, "last_error"));
        bool done = json_integer_value(json_object_get(dns, "write_errors")) >= 2 && werr &&
                    strstr(werr, "HTTP 401") && perr && perr[0] &&
                    strcmp(json_string_value(json_object_get(us_ep, "state")), "down") == 0;
        if (done) {
            fprintf(stderr, "HC_BADINPUT: write error \"%s\"; endpoint error \"%s\"\n", werr, perr);
            json_decref(s);
            break;
        }
        if (mr_test_now_ms() >= deadline) {
            char *txt = json_dumps(s, JSON_COMPACT);
            ck_abort_msg("agent did not report the errors: %.3000s", txt);
        }
        json_decref(s);
        struct timespec ts = {0, 100 * 1000000};
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < NAGENT; i++)
        ck_assert(mr_test_alive(agents[i].pid));
}
END_TEST

/* ---------- the dashboard in a real browser ---------- */

static bool file_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    (void)fclose(f); /* opened to read only */
    return found;
}

START_TEST(dashboard_in_chromium)
{
    const char *dir = MERIDIAN_HC_TEST_DIR "/dashboard";
    char modules[600];
    snprintf(modules, sizeof modules, "%s/node_modules/playwright-core", dir);
    ck_assert_msg(access(modules, R_OK) == 0,
                  "playwright-core is not installed: run npm ci --prefix %s (the "
                  "healthcheck_dashboard_deps test does)",
                  dir);
    start_agents_and_wait_dns();
    const char *art = getenv("HC_ARTIFACT_DIR") ? getenv("HC_ARTIFACT_DIR") : MERIDIAN_HC_ARTIFACTS;
    mkdir(art, 0755);
    char url[128], script[600], log[700];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", agents[1].port);
    snprintf(script, sizeof script, "%s/dashboard_check.mjs", dir);
    snprintf(log, sizeof log, "%s/chromium.log", tmp);
    char *argv[] = {"node", script, url, "eu-west", (char *)art, NULL};
    pid_t node = mr_test_spawn(argv, log);
    int64_t deadline = mr_test_now_ms() + 60000;
    while (!file_has(log, "READY")) {
        ck_assert_msg(mr_test_alive(node), "the browser check failed before READY; see %s", log);
        ck_assert_msg(mr_test_now_ms() < deadline,
                      "the dashboard never showed three regions up; see %s", log);
        struct timespec ts = {0, 100 * 1000000};
        nanosleep(&ts, NULL);
    }
    relay_kill(0);
    int st = mr_test_wait_exit(node, 40000);
    if (st == -1)
        mr_test_stop(node, SIGKILL, 1000);
    ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "the dashboard did not turn eu-west red; see %s", log);
    ck_assert(file_has(log, "DOWN eu-west"));
    fprintf(stderr, "HC_DASHBOARD: screenshots in %s (dashboard-before.png, dashboard-after.png)\n",
            art);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("healthcheck-failover");
    TCase *tc = tcase_create("failover");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, getenv("HC_BENCH_RUNS") ? 1800 : 90);
    tcase_add_test(tc, kill_region_fails_over_and_back);
    tcase_add_test(tc, partitioned_agent_never_writes_and_lease_moves);
    tcase_add_test(tc, lease_region_dies_dns_moves);
    tcase_add_test(tc, all_regions_down_fails_open);
    tcase_add_test(tc, drain_takes_region_out_of_dns);
    tcase_add_test(tc, dashboard_and_metrics_are_served);
    tcase_add_test(tc, bad_input_clear_errors);
    suite_add_tcase(s, tc);
    /* The agents' threads under TSan (scripts/test --tsan runs only this case): a failover,
     * and a drain whose flags travel between agents on NATS threads. */
    TCase *threads = tcase_create("threads");
    tcase_add_checked_fixture(threads, setup, teardown);
    tcase_set_timeout(threads, 150);
    tcase_set_tags(threads, "tsan_only");
    tcase_add_test(threads, kill_region_fails_over_and_back);
    tcase_add_test(threads, drain_takes_region_out_of_dns);
    suite_add_tcase(s, threads);
    TCase *browser = tcase_create("dashboard");
    tcase_add_checked_fixture(browser, setup, teardown);
    tcase_set_timeout(browser, 150);
    tcase_add_test(browser, dashboard_in_chromium);
    suite_add_tcase(s, browser);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
