/*
 * The relay's trust boundaries against real processes (issue 12): what a
 * NATS publisher, an admin-port caller or a misbehaving client can and
 * cannot do, and whether /readyz tells the truth. A real nats-server and
 * relay per test; every wait is a poll with a deadline.
 */
#include "mr_buf.h"
#include "mr_test.h"
#include "mr_test_relay.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <nats/nats.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>

static mr_test_nats nats;
static mr_test_relay relays[2];
static char *tmp;

static void stop_all(void)
{
    for (int i = 0; i < 2; i++)
        mr_test_relay_stop_clean(&relays[i]);
    mr_test_nats_stop(&nats);
}

/* Poll /readyz until it answers `status` with `needle` in its body; the last body is returned. */
static char *wait_readyz(mr_test_relay *rp, int status, const char *needle, int timeout_ms)
{
    int64_t deadline = mr_test_now_ms() + timeout_ms;
    int got = -1;
    char *body = NULL;
    while (mr_test_now_ms() < deadline) {
        free(body);
        got = mr_test_http_get("127.0.0.1", rp->admin_port, "/readyz", &body);
        if (got == status && (!needle || (body && strstr(body, needle))))
            return body;
        usleep(50 * 1000); /* between polls */
    }
    ck_abort_msg("/readyz answered %d %s, wanted %d with %s", got, body ? body : "", status,
                 needle ? needle : "-");
    return NULL;
}

/* ---- /readyz: a stuck service loop, a listener that is not bound ---- */

static char fifo[700];

static void setup_stall(void)
{
    tmp = mr_test_tmpdir("relaytrust");
    mr_test_nats_start(&nats, false);
    char www[600], extra[800];
    snprintf(www, sizeof www, "%s/www", tmp);
    ck_assert_int_eq(mkdir(www, 0755), 0);
    /*
     * lws serves static files on its service thread and opens them with a
     * blocking open(): a GET of a FIFO stops the loop until someone opens the
     * FIFO for writing. That is a stuck loop on demand, without a test hook.
     */
    snprintf(fifo, sizeof fifo, "%s/stall", www);
    ck_assert_int_eq(mkfifo(fifo, 0644), 0);
    snprintf(extra, sizeof extra, "\"jetstream\":false,\"static_dir\":\"%s\"", www);
    mr_test_relay_config(&relays[0], tmp, "test", "relay-1", nats.url, "", extra);
    mr_test_relay_start(&relays[0], MERIDIAN_RELAY_BIN);
}

START_TEST(readyz_says_not_ready_while_the_loop_is_stuck)
{
    free(wait_readyz(&relays[0], 200, "\"loop\":\"running\"", 5000));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)relays[0].port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    const char req[] = "GET /stall HTTP/1.1\r\nHost: x\r\n\r\n";
    ck_assert_int_eq(write(fd, req, sizeof req - 1), (ssize_t)(sizeof req - 1));
    /* The loop is stuck in open(): upgrades go unanswered, and /readyz must say so. */
    char *body = wait_readyz(&relays[0], 503, "\"loop\":\"stalled\"", 15000);
    free(body);
    mr_ws w;
    ck_assert_int_ne(mr_ws_connect(&w, "127.0.0.1", relays[0].port, NULL), 101);
    mr_ws_close(&w);
    /* Let it go: the loop runs again and the relay is ready again. */
    int opened = 0;
    int64_t deadline = mr_test_now_ms() + 10000;
    for (;;) {
        /* lws may open the file more than once: answer every open that waits. */
        int wfd = open(fifo, O_WRONLY | O_NONBLOCK);
        if (wfd >= 0) {
            opened++;
            close(wfd);
        }
        char *b;
        int st = mr_test_http_get("127.0.0.1", relays[0].admin_port, "/readyz", &b);
        bool running = st == 200 && strstr(b, "\"loop\":\"running\"");
        free(b);
        if (running)
            break;
        ck_assert_msg(mr_test_now_ms() < deadline, "the loop never ran again");
        usleep(50 * 1000); /* between polls */
    }
    ck_assert_int_ge(opened, 1);
    close(fd);
    ck_assert_int_eq(mr_ws_connect(&w, "127.0.0.1", relays[0].port, NULL), 101);
    mr_ws_close(&w);
}
END_TEST

static void setup_unbound(void)
{
    tmp = mr_test_tmpdir("relaytrust");
    mr_test_nats_start(&nats, false);
    mr_test_relay_config(&relays[0], tmp, "test", "relay-1", nats.url, "", "\"jetstream\":false");
    /*
     * An address this host does not have (TEST-NET-1): lws 4.1 starts anyway,
     * without a listening socket, waiting for the interface to appear.
     */
    char text[4096];
    FILE *f = fopen(relays[0].cfg, "r");
    size_t n = fread(text, 1, sizeof text - 1, f);
    (void)fclose(f); /* opened to read only */
    text[n] = '\0';
    char *at = strstr(text, "\"listen\":\"127.0.0.1:");
    ck_assert_ptr_nonnull(at);
    char fixed[4200];
    snprintf(fixed, sizeof fixed, "%.*s\"listen\":\"192.0.2.77:%s", (int)(at - text), text,
             at + strlen("\"listen\":\"127.0.0.1:"));
    ck_assert_int_eq(mr_test_write_file(relays[0].cfg, fixed), 0);
    char *argv[] = {(char *)MERIDIAN_RELAY_BIN, "--config", relays[0].cfg, NULL};
    relays[0].pid = mr_test_spawn(argv, relays[0].log);
    ck_assert_int_eq(mr_test_wait_port("127.0.0.1", relays[0].admin_port, 10000), 0);
}

START_TEST(readyz_says_not_ready_without_a_bound_listener)
{
    /* NATS is up and the loop runs: only the listener is missing. */
    char *body = wait_readyz(&relays[0], 503, "\"nats\":\"connected\"", 10000);
    ck_assert_msg(strstr(body, "\"listener\":\"unbound\""), "%s", body);
    free(body);
    /* And it stays so (the first answer is not a startup transient). */
    usleep(1500 * 1000); /* longer than the listener check's period */
    ck_assert_int_eq(mr_test_http_get("127.0.0.1", relays[0].admin_port, "/readyz", &body), 503);
    free(body);
}
END_TEST

/* ---- input from NATS ---- */

static void setup_nats_input(void)
{
    tmp = mr_test_tmpdir("relaytrust");
    mr_test_nats_start(&nats, false);
    const char *extra = "\"jetstream\":false,\"presence\":{\"heartbeat_ms\":200,"
                        "\"expire_heartbeats\":3}";
    mr_test_relay_config(&relays[0], tmp, "test", "relay-1", nats.url, "", extra);
    mr_test_relay_config(&relays[1], tmp, "test", "relay-2", nats.url, "", extra);
    mr_test_relay_start(&relays[0], MERIDIAN_RELAY_BIN);
    mr_test_relay_start(&relays[1], MERIDIAN_RELAY_BIN);
}

static natsConnection *nats_client(void)
{
    natsConnection *nc = NULL;
    ck_assert_int_eq(natsConnection_ConnectTo(&nc, nats.url), NATS_OK);
    return nc;
}

/*
 * Any process on NATS could stop every relay with one heartbeat or presence
 * delta whose node id was 160 bytes or more (an endless loop at expiry, a
 * few heartbeats later). Now such input is dropped and counted, and both
 * relays go on serving.
 */
START_TEST(hostile_presence_input_stops_no_relay)
{
    mr_ws a;
    mr_test_hello(&a, &relays[0], "alice", NULL);
    mr_test_join(&a, "p");
    char node[300], body[700];
    memset(node, 'n', sizeof node - 1);
    node[sizeof node - 1] = '\0';
    natsConnection *nc = nats_client();
    snprintf(body, sizeof body, "{\"node\":\"%s\",\"interval_ms\":200}", node);
    ck_assert_int_eq(natsConnection_PublishString(nc, "meridian.relay.hb", body), NATS_OK);
    snprintf(body, sizeof body, "{\"op\":\"set\",\"node\":\"%s\",\"user\":\"x\",\"sessions\":1}",
             node);
    ck_assert_int_eq(natsConnection_PublishString(nc, "meridian.presence.p", body), NATS_OK);
    /* Not JSON, not a message frame, not UTF-8: dropped before any client sees them. */
    ck_assert_int_eq(natsConnection_PublishString(nc, "meridian.msg.test.p", "\xff\xfe"), NATS_OK);
    ck_assert_int_eq(natsConnection_Flush(nc), NATS_OK);
    for (int i = 0; i < 2; i++) {
        int64_t deadline = mr_test_now_ms() + 5000;
        while (mr_test_relay_metric(&relays[i], "meridian_relay_nats_rejected_total") < (i ? 1 : 3))
            ck_assert_msg(mr_test_now_ms() < deadline, "relay %d did not count the bad input", i);
    }
    /* Well past the expiry (3 heartbeats of 200 ms) of a node that was never taken in. */
    usleep(1500 * 1000); /* the time a relay used to need to hang */
    for (int i = 0; i < 2; i++) {
        free(wait_readyz(&relays[i], 200, "\"loop\":\"running\"", 3000));
        mr_ws w;
        ck_assert_int_eq(mr_ws_connect(&w, "127.0.0.1", relays[i].port, NULL), 101);
        mr_ws_close(&w);
    }
    /* alice saw nothing of it: her next frame is the answer to her ping. */
    mr_ws_send_text(&a, "{\"type\":\"ping\",\"id\":\"after\"}");
    char *f;
    int cc;
    ck_assert_int_eq(mr_ws_recv(&a, 5000, &f, NULL, &cc), 1);
    ck_assert_msg(strstr(f, "\"type\":\"pong\""), "alice got %s", f);
    free(f);
    natsConnection_Destroy(nc);
    mr_ws_close(&a);
}
END_TEST

/* A room named hb: its presence subject was once the relays' heartbeat subject. */
START_TEST(presence_in_a_room_named_hb_across_relays)
{
    mr_ws a, b;
    mr_test_hello(&a, &relays[0], "alice", NULL);
    mr_test_join(&a, "hb");
    mr_test_hello(&b, &relays[1], "bob", NULL);
    mr_test_join(&b, "hb");
    mr_test_expect(&a, "\"event\":\"join\",\"user\":\"bob\"");
    int64_t deadline = mr_test_now_ms() + 5000;
    bool both = false;
    while (!both && mr_test_now_ms() < deadline) {
        mr_ws_send_text(&b, "{\"type\":\"presence\",\"id\":3,\"room\":\"hb\"}");
        char *f = mr_ws_expect(&b, "\"members\"", 5000);
        both = f && strstr(f, "\"user\":\"alice\"") && strstr(f, "\"user\":\"bob\"");
        free(f);
    }
    ck_assert_msg(both, "bob never saw alice in room hb");
    mr_ws_close(&b);
    mr_test_expect(&a, "\"event\":\"leave\",\"user\":\"bob\"");
    mr_ws_close(&a);
}
END_TEST

/* ---- the admin port ---- */

#define KEY_HEADER "Authorization: Bearer admin-key-0123456789abcdef\r\n"

static void start_admin(const char *extra)
{
    tmp = mr_test_tmpdir("relaytrust");
    mr_test_nats_start(&nats, false);
    char all[1024];
    snprintf(all, sizeof all, "\"jetstream\":false%s%s", extra[0] ? "," : "", extra);
    mr_test_relay_config(&relays[0], tmp, "test", "relay-1", nats.url, "", all);
    mr_test_relay_start(&relays[0], MERIDIAN_RELAY_BIN);
}

static void setup_admin_nokey(void)
{
    start_admin("");
}

static void setup_admin_key(void)
{
    start_admin("\"admin_api_key\":\"admin-key-0123456789abcdef\"");
}

static int post(const char *path, const char *headers, const char *body)
{
    char *reply;
    int st = mr_test_http("127.0.0.1", relays[0].admin_port, "POST", path, headers, body, &reply);
    free(reply);
    return st;
}

/* Without admin_api_key nobody may drain the relay: state changes need a key. */
START_TEST(admin_without_a_key_refuses_drain)
{
    char *body;
    ck_assert_int_eq(mr_test_http("127.0.0.1", relays[0].admin_port, "POST", "/v1/drain", NULL,
                                  "{\"urls\":[\"wss://elsewhere.example/\"]}", &body),
                     403);
    ck_assert_msg(strstr(body, "admin_api_key"), "%s", body);
    free(body);
    ck_assert_int_eq(post("/v1/undrain", NULL, NULL), 403);
    ck_assert_int_eq(post("/v1/drain", "Authorization: Bearer \r\n", NULL), 403);
    /* Reading stays open: the balancer and Prometheus need no key. */
    free(wait_readyz(&relays[0], 200, "\"draining\":false", 2000));
    ck_assert_int_eq(mr_test_http_get("127.0.0.1", relays[0].admin_port, "/metrics", &body), 200);
    free(body);
}
END_TEST

/* Clients follow reconnect URLs: only ws:// and wss://, few and short. */
START_TEST(admin_drain_accepts_only_websocket_urls)
{
    const char *bad[] = {
        "{\"urls\":[\"javascript:alert(1)\"]}",
        "{\"urls\":[\"http://evil.example/\"]}",
        "{\"urls\":[\"wss://\"]}",
        "{\"urls\":[\"wss://a b/\"]}",
        "{\"urls\":[\"wss://x.example/\\u0000\"]}",
        "{\"urls\":[\"WSS://x.example/\\n\"]}",
        "{\"urls\":\"wss://x.example/\"}",
        "{\"urls\":[\"wss://x.example/\"],\"extra\":1}",
        "[]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(post("/v1/drain", KEY_HEADER, bad[i]) == 400, "accepted %s", bad[i]);
    /* A thousand entries, and one entry past 512 bytes. */
    mr_buf b = MR_BUF_INIT;
    mr_buf_puts(&b, "{\"urls\":[");
    for (int i = 0; i < 1000; i++)
        mr_buf_printf(&b, "%s\"wss://r%d.example/\"", i ? "," : "", i);
    mr_buf_puts(&b, "]}");
    mr_buf_putc(&b, '\0');
    ck_assert_int_eq(post("/v1/drain", KEY_HEADER, b.data), 400);
    mr_buf_reset(&b);
    mr_buf_puts(&b, "{\"urls\":[\"wss://long.example/");
    for (int i = 0; i < 600; i++)
        mr_buf_putc(&b, 'x');
    mr_buf_puts(&b, "\"]}");
    mr_buf_putc(&b, '\0');
    ck_assert_int_eq(post("/v1/drain", KEY_HEADER, b.data), 400);
    mr_buf_free(&b);
    /* Nothing of that drained the relay. */
    free(wait_readyz(&relays[0], 200, "\"draining\":false", 2000));
    ck_assert_int_eq(
        post("/v1/drain", KEY_HEADER, "{\"urls\":[\"wss://eu.example/\",\"ws://127.0.0.1:1/\"]}"),
        202);
    free(wait_readyz(&relays[0], 503, "\"draining\":true", 5000));
}
END_TEST

/* The path decides, not the raw URI: a query string used to turn a drain into an undrain. */
START_TEST(admin_drain_with_a_query_string_drains)
{
    ck_assert_int_eq(post("/v1/drain?reason=maintenance", KEY_HEADER, NULL), 202);
    free(wait_readyz(&relays[0], 503, "\"draining\":true", 5000));
    ck_assert_int_eq(post("/v1/undrain?x=1", KEY_HEADER, NULL), 202);
    free(wait_readyz(&relays[0], 200, "\"draining\":false", 5000));
}
END_TEST

/* An undrain must not cancel a SIGTERM drain: the relay used to stay up, ready, forever. */
START_TEST(undrain_cannot_cancel_a_sigterm_drain)
{
    mr_ws a;
    mr_test_hello(&a, &relays[0], "alice", NULL);
    kill(relays[0].pid, SIGTERM);
    free(wait_readyz(&relays[0], 503, "\"draining\":true", 5000));
    char *body;
    ck_assert_int_eq(mr_test_http("127.0.0.1", relays[0].admin_port, "POST", "/v1/undrain",
                                  KEY_HEADER, NULL, &body),
                     409);
    free(body);
    int st = mr_test_wait_exit(relays[0].pid, 10000);
    ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "relay exit status %d", st);
    relays[0].pid = 0;
    mr_ws_close(&a);
}
END_TEST

/* Read HTTP responses from `fd` until `want` have arrived whole or the deadline passes. */
static int read_responses(int fd, int want, char *buf, size_t cap)
{
    size_t n = 0;
    int64_t deadline = mr_test_now_ms() + 5000;
    int got = 0;
    while (got < want && mr_test_now_ms() < deadline) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        buf[n] = '\0';
        /* Count complete responses: a status line, headers, and Content-Length bytes. */
        got = 0;
        const char *p2 = buf;
        for (;;) {
            const char *h = strstr(p2, "HTTP/1.1 ");
            const char *end = h ? strstr(h, "\r\n\r\n") : NULL;
            const char *cl = h ? strcasestr(h, "Content-Length: ") : NULL;
            if (!end || !cl || cl > end)
                break;
            size_t len = (size_t)atol(cl + 16);
            if ((size_t)(buf + n - (end + 4)) < len)
                break;
            got++;
            p2 = end + 4 + len;
        }
    }
    return got;
}

/* Two requests in one write get two responses (HTTP/1.1 pipelining). */
START_TEST(admin_port_answers_pipelined_requests)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)relays[0].admin_port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    const char two[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n";
    ck_assert_int_eq(write(fd, two, sizeof two - 1), (ssize_t)(sizeof two - 1));
    char buf[8192];
    ck_assert_msg(read_responses(fd, 2, buf, sizeof buf) == 2, "got: %s", buf);
    /* A state change and a read, pipelined, on the same connection. */
    const char more[] =
        "POST /v1/drain HTTP/1.1\r\nHost: x\r\n" KEY_HEADER "Content-Length: 0\r\n\r\n"
        "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n";
    ck_assert_int_eq(write(fd, more, sizeof more - 1), (ssize_t)(sizeof more - 1));
    ck_assert_msg(read_responses(fd, 2, buf, sizeof buf) == 2, "got: %s", buf);
    ck_assert_msg(strstr(buf, "202") && strstr(buf, "\"draining\":true"), "%s", buf);
    /* A path without a route gets its 404 and the connection goes on. */
    const char lost[] = "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
                        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    ck_assert_int_eq(write(fd, lost, sizeof lost - 1), (ssize_t)(sizeof lost - 1));
    ck_assert_msg(read_responses(fd, 2, buf, sizeof buf) == 2, "got: %s", buf);
    ck_assert_msg(strstr(buf, "404") && strstr(buf, "\"status\":\"ok\""), "%s", buf);
    close(fd);
}
END_TEST

/* ---- close frames a busy client can read ---- */

static void setup_close(void)
{
    tmp = mr_test_tmpdir("relaytrust");
    mr_test_nats_start(&nats, false);
    mr_test_relay_config(&relays[0], tmp, "test", "relay-1", nats.url,
                         "\"publish_rate\":5,\"publish_burst\":5,\"rate_limit_strikes\":20,"
                         "\"max_bad_frames\":20",
                         "\"jetstream\":false");
    mr_test_relay_start(&relays[0], MERIDIAN_RELAY_BIN);
}

/* The close code Node's ws reports when the relay closes a client that keeps writing. */
static int node_close_code(const char *mode)
{
    char *token = mr_test_token("busy", 3600, NULL);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "node %s/ws_close_client.mjs ws://127.0.0.1:%d/ %s %s",
             MERIDIAN_TEST_SOURCE_DIR, relays[0].port, token, mode);
    free(token);
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    char line[1024] = "";
    char *got = fgets(line, sizeof line, f);
    int st = pclose(f);
    ck_assert_msg(got && st == 0, "node client failed (status %d): %s", st, line);
    json_t *j = json_loads(line, 0, NULL);
    ck_assert_msg(json_is_object(j), "node client said: %s", line);
    int code = (int)json_integer_value(json_object_get(j, "code"));
    json_decref(j);
    return code;
}

/*
 * The relay used to close TCP 0.2 ms after its close frame while the client
 * was still writing: the client's kernel got a reset and Node's ws reported
 * 1006 without the close frame. Several rounds, since it is a race.
 */
START_TEST(busy_client_reads_4029_and_4009)
{
    for (int i = 0; i < 5; i++) {
        int code = node_close_code("flood");
        ck_assert_msg(code == 4029, "round %d: a flooding client saw close %d, not 4029", i, code);
        code = node_close_code("bad");
        ck_assert_msg(code == 4009, "round %d: a client sending bad frames saw %d, not 4009", i,
                      code);
    }
}
END_TEST

/* ---- docs/protocol.md says what the relay does ---- */

static void setup_protocol(void)
{
    tmp = mr_test_tmpdir("relaytrust");
    mr_test_nats_start(&nats, false);
    mr_test_relay_config(&relays[0], tmp, "test", "relay-1", nats.url, "",
                         "\"jetstream\":false,\"origins\":[\"https://chat.example\"]");
    mr_test_relay_start(&relays[0], MERIDIAN_RELAY_BIN);
}

static void expect_error(mr_ws *ws, const char *frame, const char *code)
{
    mr_ws_send_text(ws, frame);
    char needle[128];
    snprintf(needle, sizeof needle, "\"code\":\"%s\"", code);
    char *f = mr_ws_expect(ws, "\"type\":\"error\"", 5000);
    ck_assert_msg(f && strstr(f, needle), "%s: want %s, got %s", frame, code, f ? f : "nothing");
    free(f);
}

/* A refused Origin gets no HTTP answer at all: the connection is closed. */
START_TEST(bad_origin_is_refused_by_closing)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)relays[0].port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    const char req[] =
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Origin: https://evil.example\r\n\r\n";
    ck_assert_int_eq(write(fd, req, sizeof req - 1), (ssize_t)(sizeof req - 1));
    struct pollfd p = {fd, POLLIN, 0};
    ck_assert_int_eq(poll(&p, 1, 5000), 1);
    char buf[256];
    ck_assert_int_eq(read(fd, buf, sizeof buf), 0); /* EOF, no status line */
    close(fd);
    mr_ws w;
    ck_assert_int_eq(
        mr_ws_connect(&w, "127.0.0.1", relays[0].port, "Origin: https://chat.example\r\n"), 101);
    mr_ws_close(&w);
}
END_TEST

START_TEST(json_limits_and_utf8)
{
    mr_ws w;
    mr_test_hello(&w, &relays[0], "eve", NULL);
    mr_test_join(&w, "r");
    /* Numbers a double cannot hold, and NUL in a string, are not JSON the relay takes. */
    expect_error(&w, "{\"type\":\"ping\",\"id\":1e400}", "bad_json");
    expect_error(&w, "{\"type\":\"publish\",\"room\":\"r\",\"mid\":\"a\",\"data\":-1e309}",
                 "bad_json");
    expect_error(&w, "{\"type\":\"ping\",\"id\":123456789012345678901234567890}", "bad_json");
    expect_error(&w, "{\"type\":\"ping\",\"id\":\"a\\u0000b\"}", "bad_json");
    expect_error(&w, "{\"type\":\"publish\",\"room\":\"r\",\"mid\":\"b\",\"data\":\"\\u0000\"}",
                 "bad_json");
    /* The largest double is still a number. */
    mr_ws_send_text(&w, "{\"type\":\"ping\",\"id\":\"big\",\"x\":1.7976931348623157e308}");
    mr_test_expect(&w, "\"type\":\"pong\",\"id\":\"big\"");
    /* Invalid UTF-8 in a text frame closes with 1007. */
    mr_ws_send_frame(&w, 1, "{\"type\":\"ping\",\"id\":\"\xff\xfe\"}", 22);
    int code = mr_ws_wait_close(&w, 5000);
    ck_assert_msg(code == 1007, "close %d, want 1007", code);
    mr_ws_close(&w);
}
END_TEST

/* hello.token is at most 8192 bytes: longer is a bad_frame, before any verification. */
START_TEST(token_size_limit)
{
    mr_ws w;
    ck_assert_int_eq(mr_ws_connect(&w, "127.0.0.1", relays[0].port, NULL), 101);
    char *hello = malloc(8300);
    int n = snprintf(hello, 8300, "{\"type\":\"hello\",\"token\":\"");
    memset(hello + n, 'a', 8193);
    strcpy(hello + n + 8193, "\"}");
    expect_error(&w, hello, "bad_frame");
    /* 8192 bytes is a size the relay reads: the token is then refused as a token. */
    strcpy(hello + n + 8192, "\"}");
    expect_error(&w, hello, "auth_failed");
    free(hello);
    mr_ws_close(&w);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("relay_trust");
    TCase *tc = mr_test_case(s, "readyz_stall", setup_stall, stop_all, 60);
    tcase_add_test(tc, readyz_says_not_ready_while_the_loop_is_stuck);
    tc = mr_test_case(s, "readyz_unbound", setup_unbound, stop_all, 60);
    tcase_add_test(tc, readyz_says_not_ready_without_a_bound_listener);
    tc = mr_test_case(s, "nats_input", setup_nats_input, stop_all, 60);
    tcase_add_test(tc, hostile_presence_input_stops_no_relay);
    tcase_add_test(tc, presence_in_a_room_named_hb_across_relays);
    tc = mr_test_case(s, "admin_nokey", setup_admin_nokey, stop_all, 60);
    tcase_add_test(tc, admin_without_a_key_refuses_drain);
    tc = mr_test_case(s, "admin_key", setup_admin_key, stop_all, 60);
    tcase_add_test(tc, admin_drain_accepts_only_websocket_urls);
    tcase_add_test(tc, admin_drain_with_a_query_string_drains);
    tcase_add_test(tc, undrain_cannot_cancel_a_sigterm_drain);
    tcase_add_test(tc, admin_port_answers_pipelined_requests);
    tc = mr_test_case(s, "protocol", setup_protocol, stop_all, 60);
    tcase_add_test(tc, bad_origin_is_refused_by_closing);
    tcase_add_test(tc, json_limits_and_utf8);
    tcase_add_test(tc, token_size_limit);
    tc = mr_test_case(s, "close_handshake", setup_close, stop_all, 180);
    tcase_add_test(tc, busy_client_reads_4029_and_4009);
    return mr_test_run(s);
}
