/*
 * The probe kinds against a real meridian-relay (with a real nats-server):
 * plain and TLS. Over TLS the tcp probe measures the certificate's remaining
 * validity (a 2-day self-signed certificate here), a verifying probe refuses
 * the self-signed chain, and the ws probe completes hello/welcome through
 * TLS. Refused and hanging endpoints fail within the time-out, and a wrong
 * token is reported as the relay's refusal.
 */
#include "hc_probe.h"
#include "mr_jwt.h"
#include "mr_test.h"

#include <arpa/inet.h>
#include <check.h>
#include <event2/event.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SECRET "probe-test-secret-0123456789abcdef"

static mr_test_nats nats;
static char *tmp;
static pid_t relay_pid;
static int relay_port, admin_port;
static struct event_base *base;
static char *token;

static void start_relay(bool tls)
{
    relay_port = mr_test_free_port();
    admin_port = mr_test_free_port();
    char tls_cfg[1400] = "";
    if (tls) {
        char cert[600], key[600], log[600];
        snprintf(cert, sizeof cert, "%s/cert.pem", tmp);
        snprintf(key, sizeof key, "%s/key.pem", tmp);
        snprintf(log, sizeof log, "%s/openssl.log", tmp);
        char *argv[] = {"openssl",  "req",
                        "-x509",    "-newkey",
                        "rsa:2048", "-nodes",
                        "-days",    "2",
                        "-subj",    "/CN=127.0.0.1",
                        "-addext",  "subjectAltName=IP:127.0.0.1",
                        "-keyout",  key,
                        "-out",     cert,
                        NULL};
        pid_t p = mr_test_spawn(argv, log);
        ck_assert_msg(mr_test_wait_exit(p, 60000) == 0, "openssl failed; see %s", log);
        snprintf(tls_cfg, sizeof tls_cfg, ",\"tls\":{\"cert\":\"%s\",\"key\":\"%s\"}", cert, key);
    }
    char cfg[2400], path[600], log[600];
    snprintf(cfg, sizeof cfg,
             "{\"region\":\"eu-west\",\"node_id\":\"probe-relay\",\"listen\":\"127.0.0.1:%d\","
             "\"admin_listen\":\"127.0.0.1:%d\",\"nats\":[\"%s\"],\"auth\":{\"secret\":\"" SECRET
             "\"}%s}",
             relay_port, admin_port, nats.url, tls_cfg);
    snprintf(path, sizeof path, "%s/relay.json", tmp);
    snprintf(log, sizeof log, "%s/relay.log", tmp);
    ck_assert_int_eq(mr_test_write_file(path, cfg), 0);
    const char *bin =
        getenv("MERIDIAN_RELAY_BIN") ? getenv("MERIDIAN_RELAY_BIN") : MERIDIAN_RELAY_BIN;
    char *argv[] = {(char *)bin, "--config", path, NULL};
    relay_pid = mr_test_spawn(argv, log);
    ck_assert_msg(mr_test_wait_port("127.0.0.1", relay_port, 15000) == 0, "relay: see %s", log);
    ck_assert_msg(mr_test_wait_port("127.0.0.1", admin_port, 15000) == 0, "relay: see %s", log);
}

static void setup_common(bool tls)
{
    tmp = mr_test_tmpdir("hcprobe");
    mr_test_nats_start(&nats, true);
    start_relay(tls);
    base = event_base_new();
    json_t *claims =
        json_pack("{s:s, s:I}", "sub", "meridian-healthcheck", "exp", (json_int_t)time(NULL) + 600);
    token = mr_jwt_sign((const unsigned char *)SECRET, strlen(SECRET), claims);
    json_decref(claims);
}

static void setup_plain(void)
{
    setup_common(false);
}

static void setup_tls(void)
{
    setup_common(true);
}

static void teardown(void)
{
    free(token);
    event_base_free(base);
    if (relay_pid > 0)
        mr_test_stop(relay_pid, SIGKILL, 5000);
    mr_test_nats_stop(&nats);
}

typedef struct outcome {
    bool done;
    hc_probe_result res;
} outcome;

static void on_result(const hc_probe_result *res, void *ud)
{
    outcome *o = ud;
    o->done = true;
    o->res = *res;
}

static hc_probe_result run(const hc_probe_kind *k, const hc_probe_target *t, int timeout_ms)
{
    outcome o = {0};
    hc_probe_result early = {0};
    ck_assert_int_eq(k->start(base, t, timeout_ms, on_result, &o, &early), 0);
    int64_t deadline = mr_test_now_ms() + timeout_ms + 3000;
    while (!o.done && mr_test_now_ms() < deadline)
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK), usleep(1000);
    /* Let deferred releases run. */
    event_base_loop(base, EVLOOP_NONBLOCK);
    ck_assert_msg(o.done, "probe %s never reported", k->name);
    return o.res;
}

static hc_probe_target target(bool tls, bool verify)
{
    static char admin[64];
    snprintf(admin, sizeof admin, "http://127.0.0.1:%d", admin_port);
    return (hc_probe_target){.address = "127.0.0.1",
                             .port = relay_port,
                             .tls = tls,
                             .host = "127.0.0.1",
                             .path = "/",
                             .admin_url = admin,
                             .token = token,
                             .tls_verify = verify};
}

START_TEST(plain_probes_pass_and_fail_clearly)
{
    hc_probe_target t = target(false, false);
    hc_probe_result r = run(&hc_probe_tcp, &t, 1000);
    ck_assert_msg(r.ok, "%s", r.err);
    ck_assert(r.cert_days_left < 0);
    /* /readyz turns 200 once the relay has NATS; poll with a deadline. */
    int64_t deadline = mr_test_now_ms() + 15000;
    do {
        r = run(&hc_probe_readyz, &t, 1000);
    } while (!r.ok && mr_test_now_ms() < deadline);
    ck_assert_msg(r.ok, "%s", r.err);
    r = run(&hc_probe_ws, &t, 2000);
    ck_assert_msg(r.ok, "%s", r.err);
    ck_assert(r.latency_ms > 0 && r.latency_ms < 2000);

    /* A token signed with another secret: the relay's refusal is the error. */
    hc_probe_target bad = t;
    bad.token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
    r = run(&hc_probe_ws, &bad, 2000);
    ck_assert(!r.ok);
    ck_assert_msg(strstr(r.err, "auth_failed") || strstr(r.err, "4001"), "%s", r.err);

    /* Nothing listening: refused at once. */
    hc_probe_target dead = t;
    dead.port = mr_test_free_port();
    r = run(&hc_probe_tcp, &dead, 1000);
    ck_assert(!r.ok);
    ck_assert_msg(strstr(r.err, "refused"), "%s", r.err);

    /* Accepts but never speaks: the ws probe times out on time. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(fd, 4), 0);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    hc_probe_target hang = t;
    hang.port = ntohs(sa.sin_port);
    int64_t t0 = mr_test_now_ms();
    r = run(&hc_probe_ws, &hang, 300);
    ck_assert(!r.ok);
    ck_assert_str_eq(r.err, "timed out");
    ck_assert_int_lt(mr_test_now_ms() - t0, 1500);
    close(fd);

    /* Answers the upgrade, but not in HTTP: the error says so. */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sa.sin_port = 0;
    sl = sizeof sa;
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(fd, 4), 0);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        int c = accept(fd, NULL, NULL);
        char buf[4096];
        static const char answer[] = "SSH-2.0-OpenSSH_9.2\r\n\r\n";
        if (c < 0 || read(c, buf, sizeof buf) <= 0 ||
            write(c, answer, sizeof answer - 1) != (ssize_t)(sizeof answer - 1))
            _exit(1);
        while (read(c, buf, sizeof buf) > 0) /* until the probe hangs up */
            ;
        _exit(0);
    }
    close(fd);
    hc_probe_target other = t;
    other.port = ntohs(sa.sin_port);
    r = run(&hc_probe_ws, &other, 2000);
    ck_assert(!r.ok);
    ck_assert_str_eq(r.err, "upgrade answer is not an HTTP/1.1 status line");
    ck_assert_int_eq(mr_test_wait_exit(child, 5000), 0);
}
END_TEST

START_TEST(tls_probes_measure_certificate_expiry)
{
    hc_probe_target t = target(true, false);
    hc_probe_result r = run(&hc_probe_tcp, &t, 2000);
    ck_assert_msg(r.ok, "%s", r.err);
    ck_assert_msg(r.cert_days_left > 1.9 && r.cert_days_left <= 2.0, "%.3f days", r.cert_days_left);
    r = run(&hc_probe_ws, &t, 3000);
    ck_assert_msg(r.ok, "ws over TLS: %s", r.err);
    /* Verifying the chain: a self-signed certificate is refused, and says so. */
    hc_probe_target v = target(true, true);
    r = run(&hc_probe_tcp, &v, 2000);
    ck_assert(!r.ok);
    ck_assert_msg(strstr(r.err, "TLS") && strstr(r.err, "certificate"), "%s", r.err);
    /* Plain TCP to a TLS port fails the WebSocket upgrade. */
    hc_probe_target plain = target(false, false);
    r = run(&hc_probe_ws, &plain, 1000);
    ck_assert(!r.ok);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("healthcheck-probe");
    TCase *plain = tcase_create("plain");
    tcase_add_checked_fixture(plain, setup_plain, teardown);
    tcase_set_timeout(plain, 60);
    tcase_add_test(plain, plain_probes_pass_and_fail_clearly);
    suite_add_tcase(s, plain);
    TCase *tls = tcase_create("tls");
    tcase_add_checked_fixture(tls, setup_tls, teardown);
    tcase_set_timeout(tls, 90);
    tcase_add_test(tls, tls_probes_measure_certificate_expiry);
    suite_add_tcase(s, tls);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
