/*
 * Test support. Everything here blocks with explicit deadlines: tests poll
 * for a condition until a time limit rather than sleeping a fixed time.
 */
#include "mr_test.h"

#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A test that writes to a socket the server just closed must see EPIPE, not die. */
__attribute__((constructor)) static void ignore_sigpipe(void)
{
    (void)signal(SIGPIPE, SIG_IGN); /* fails only for an invalid signal number */
}

int mr_test_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

TCase *mr_test_case(Suite *s, const char *name, void (*setup)(void), void (*teardown)(void),
                    int timeout_s)
{
    TCase *tc = tcase_create(name);
    if (setup || teardown)
        tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, timeout_s);
    suite_add_tcase(s, tc);
    return tc;
}

void mr_test_clockstep_env(long seconds)
{
    if (seconds == 0) {
        unsetenv("LD_PRELOAD");
        unsetenv("MR_TEST_CLOCK_STEP_S");
        return;
    }
#ifndef MR_TEST_CLOCKSTEP_LIB
    /* Programs that compile this file on their own (benchmarks) have no such library. */
    ck_abort_msg("mr_test_clockstep_env: built without tests/support's clock-step library");
#else
    char v[32];
    snprintf(v, sizeof v, "%ld", seconds);
    setenv("MR_TEST_CLOCK_STEP_S", v, 1);
    setenv("LD_PRELOAD", MR_TEST_CLOCKSTEP_LIB, 1);
#endif
    /* A sanitized child would refuse to run with a library preloaded ahead of its runtime. */
    const char *asan = getenv("ASAN_OPTIONS");
    if (!asan || !strstr(asan, "verify_asan_link_order")) {
        char opts[1024];
        snprintf(opts, sizeof opts, "%s%sverify_asan_link_order=0", asan ? asan : "",
                 asan && *asan ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1);
    }
}

int64_t mr_test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The first port the kernel hands out for outgoing connections (32768 unless changed). */
static int ephemeral_low(void)
{
    int low = 32768, high;
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f) {
        if (fscanf(f, "%d %d", &low, &high) != 2)
            low = 32768;
        (void)fclose(f); /* opened to read only */
    }
    return low;
}

/*
 * A port below the ephemeral range that nothing is bound to now. A port the kernel picks
 * for us would be in that range, where the daemons' own outgoing connections (to NATS,
 * PostgreSQL) can take it before the daemon binds it.
 */
/* splitmix64: well-mixed numbers from a counter, so nearby seeds give unrelated ports. */
static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int mr_test_free_port(void)
{
    /* Per process (check forks one per test): ports handed out here are not handed again. */
    static pid_t owner;
    static uint64_t state;
    static int given[256];
    static int ngiven;
    if (owner != getpid()) {
        owner = getpid();
        state = (uint64_t)owner << 32 ^ (uint64_t)mr_test_now_ms();
        ngiven = 0;
    }
    int low = ephemeral_low();
    if (low <= 12000)
        low = 32768; /* an unusual range: stay in the common gap below 32768 */
    for (int attempt = 0; attempt < 1000; attempt++) {
        int port = 10000 + (int)(next_random(&state) % (uint64_t)(low - 10000));
        bool seen = false;
        for (int i = 0; i < ngiven; i++)
            seen = seen || given[i] == port;
        if (seen)
            continue;
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
        close(fd);
        if (ok) {
            if (ngiven < (int)(sizeof given / sizeof given[0]))
                given[ngiven++] = port;
            return port;
        }
    }
    ck_abort_msg("cannot find a free port below %d", low);
    return -1;
}

char *mr_test_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/meridian-%s-XXXXXX", base, tag);
    char *d = mkdtemp(tmpl);
    ck_assert_msg(d != NULL, "mkdtemp: %s", strerror(errno));
    chmod(d, 0777);
    return strdup(d);
}

int mr_test_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int rc = fputs(text, f) < 0 ? -1 : 0;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

char *mr_test_read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return strdup("");
    /* Read to the end rather than to a size taken first: the file may be a
     * log still growing, or a /proc file whose size reads as 0. */
    size_t cap = 4096, n = 0, r;
    char *b = malloc(cap);
    while (b && (r = fread(b + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (n + 1 == cap)
            b = realloc(b, cap *= 2);
    }
    if (!b)
        abort(); /* out of memory */
    b[n] = '\0';
    (void)fclose(f); /* opened to read only */
    return b;
}

pid_t mr_test_spawn(char *const argv[], const char *logpath)
{
    int errpipe[2];
    ck_assert(pipe2(errpipe, O_CLOEXEC) == 0);
    pid_t pid = fork();
    ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* Servers must not outlive a crashed test. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(logpath ? logpath : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execvp(argv[0], argv);
        int e = errno;
        ssize_t w = write(errpipe[1], &e, sizeof e);
        (void)w;
        _exit(127);
    }
    close(errpipe[1]);
    int e = 0;
    ssize_t r = read(errpipe[0], &e, sizeof e);
    close(errpipe[0]);
    ck_assert_msg(r <= 0, "cannot start %s: %s (run scripts/deps)", argv[0], strerror(e));
    return pid;
}

int mr_test_wait_exit(pid_t pid, int timeout_ms)
{
    int64_t deadline = mr_test_now_ms() + timeout_ms;
    int status;
    while (mr_test_now_ms() < deadline) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0)
            return -1;
        struct timespec ts = {0, 5 * 1000000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

int mr_test_stop(pid_t pid, int sig, int timeout_ms)
{
    if (pid <= 0)
        return -1;
    kill(pid, sig);
    int st = mr_test_wait_exit(pid, timeout_ms);
    if (st == -1) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    return st;
}

bool mr_test_alive(pid_t pid)
{
    int status;
    return waitpid(pid, &status, WNOHANG) == 0;
}

static int tcp_connect(const char *host, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

int mr_test_wait_port(const char *host, int port, int timeout_ms)
{
    int64_t deadline = mr_test_now_ms() + timeout_ms;
    while (mr_test_now_ms() < deadline) {
        int fd = tcp_connect(host, port);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

static int read_all(int fd, char **out, int timeout_ms)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    int64_t deadline = mr_test_now_ms() + timeout_ms;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        int left = (int)(deadline - mr_test_now_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0)
            break;
        if (len + 1024 > cap)
            buf = realloc(buf, cap *= 2);
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    *out = buf;
    return (int)len;
}

int mr_test_http(const char *host, int port, const char *method, const char *path,
                 const char *headers, const char *req_body, char **body)
{
    *body = NULL;
    int fd = tcp_connect(host, port);
    if (fd < 0)
        return -1;
    size_t bl = req_body ? strlen(req_body) : 0;
    size_t cap = 1024 + bl + (headers ? strlen(headers) : 0) + strlen(path);
    char *req = malloc(cap);
    int n = snprintf(req, cap, "%s %s HTTP/1.0\r\nHost: %s\r\n%sContent-Length: %zu\r\n\r\n%s",
                     method, path, host, headers ? headers : "", bl, req_body ? req_body : "");
    ssize_t w = write(fd, req, (size_t)n);
    free(req);
    if (w != n) {
        close(fd);
        return -1;
    }
    char *resp;
    read_all(fd, &resp, 5000);
    close(fd);
    int status = -1;
    if (sscanf(resp, "HTTP/%*d.%*d %d", &status) != 1)
        status = -1;
    char *b = strstr(resp, "\r\n\r\n");
    *body = strdup(b ? b + 4 : "");
    free(resp);
    return status;
}

int mr_test_http_get(const char *host, int port, const char *path, char **body)
{
    return mr_test_http(host, port, "GET", path, NULL, NULL, body);
}

long mr_test_metric(int admin_port, const char *name)
{
    char *body;
    ck_assert_int_eq(mr_test_http_get("127.0.0.1", admin_port, "/metrics", &body), 200);
    char needle[200];
    snprintf(needle, sizeof needle, "\n%s ", name);
    char *p = strstr(body, needle);
    long v = p ? atol(p + strlen(needle)) : -1;
    free(body);
    return v;
}

/* Length of the first complete response in buf[0..len), or 0; its status goes to *status. */
static size_t http_response_len(const char *buf, size_t len, int *status)
{
    const char *head_end = memmem(buf, len, "\r\n\r\n", 4);
    if (!head_end)
        return 0;
    size_t head = (size_t)(head_end - buf) + 4;
    long clen = 0;
    for (const char *l = memchr(buf, '\n', head); l && l < head_end; l = memchr(l + 1, '\n', head))
        if (strncasecmp(l + 1, "Content-Length:", 15) == 0)
            clen = strtol(l + 16, NULL, 10);
    if (clen < 0 || head + (size_t)clen > len)
        return 0;
    if (sscanf(buf, "HTTP/1.%*d %d", status) != 1)
        *status = -1;
    return head + (size_t)clen;
}

int mr_test_http_pipelined(int port, SSL_CTX *tls, const char *requests, int want, int *status,
                           int timeout_ms)
{
    int fd = tcp_connect("127.0.0.1", port);
    if (fd < 0)
        return 0;
    SSL *ssl = NULL;
    size_t n = strlen(requests);
    bool sent;
    if (tls) {
        ssl = SSL_new(tls);
        SSL_set_fd(ssl, fd);
        sent = SSL_connect(ssl) == 1 && SSL_write(ssl, requests, (int)n) == (int)n;
    } else {
        sent = write(fd, requests, n) == (ssize_t)n;
    }
    int got = 0;
    size_t cap = 65536, len = 0, off = 0;
    char *buf = malloc(cap);
    int64_t deadline = mr_test_now_ms() + timeout_ms;
    while (sent && got < want) {
        size_t one = http_response_len(buf + off, len - off, &status[got]);
        if (one > 0) {
            off += one;
            got++;
            continue;
        }
        if (!ssl || SSL_pending(ssl) == 0) {
            struct pollfd p = {fd, POLLIN, 0};
            int left = (int)(deadline - mr_test_now_ms());
            if (left <= 0 || poll(&p, 1, left) <= 0)
                break;
        }
        if (len + 4096 > cap)
            buf = realloc(buf, cap *= 2);
        ssize_t r =
            ssl ? SSL_read(ssl, buf + len, (int)(cap - len)) : read(fd, buf + len, cap - len);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    free(buf);
    if (ssl)
        SSL_free(ssl);
    close(fd);
    return got;
}

static void nats_spawn(mr_test_nats *n, bool jetstream)
{
    if (n->locked) {
        char *argv[] = {"nats-server", "-c", n->conf, NULL};
        n->pid = mr_test_spawn(argv, n->log);
        ck_assert_msg(mr_test_wait_port("127.0.0.1", n->port, 10000) == 0,
                      "nats-server did not start; see %s", n->log);
        return;
    }
    char port[16];
    snprintf(port, sizeof port, "%d", n->port);
    char *argv[12];
    int i = 0;
    argv[i++] = "nats-server";
    argv[i++] = "-a";
    argv[i++] = "127.0.0.1";
    argv[i++] = "-p";
    argv[i++] = port;
    if (jetstream) {
        argv[i++] = "-js";
        argv[i++] = "-sd";
        argv[i++] = n->dir;
    }
    argv[i] = NULL;
    n->pid = mr_test_spawn(argv, n->log);
    ck_assert_msg(mr_test_wait_port("127.0.0.1", n->port, 10000) == 0,
                  "nats-server did not start; see %s", n->log);
}

void mr_test_nats_start(mr_test_nats *n, bool jetstream)
{
    memset(n, 0, sizeof *n);
    n->port = mr_test_free_port();
    n->dir = mr_test_tmpdir("nats");
    snprintf(n->url, sizeof n->url, "nats://127.0.0.1:%d", n->port);
    snprintf(n->log, sizeof n->log, "%s/nats.log", n->dir);
    nats_spawn(n, jetstream);
}

void mr_test_nats_restart(mr_test_nats *n)
{
    nats_spawn(n, true);
}

void mr_test_nats_stop(mr_test_nats *n)
{
    if (n->pid > 0)
        mr_test_stop(n->pid, SIGTERM, 5000);
    n->pid = 0;
}

/* ---- raw WebSocket client ---- */

int mr_ws_connect(mr_ws *ws, const char *host, int port, const char *extra_headers)
{
    memset(ws, 0, sizeof *ws);
    ws->fd = tcp_connect(host, port);
    if (ws->fd < 0)
        return -1;
    char req[2048];
    int n =
        snprintf(req, sizeof req,
                 "GET / HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                 "%s\r\n",
                 host, port, extra_headers ? extra_headers : "");
    if (write(ws->fd, req, (size_t)n) != n)
        return -1;
    /* Read the response head byte by byte so no frame bytes are swallowed. */
    char head[4096];
    size_t hl = 0;
    int64_t deadline = mr_test_now_ms() + 5000;
    while (hl < sizeof head - 1) {
        struct pollfd p = {ws->fd, POLLIN, 0};
        int left = (int)(deadline - mr_test_now_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0)
            return -1;
        ssize_t r = read(ws->fd, head + hl, 1);
        if (r <= 0)
            return -1;
        hl++;
        if (hl >= 4 && memcmp(head + hl - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    head[hl] = '\0';
    int status = -1;
    if (sscanf(head, "HTTP/1.1 %d", &status) != 1)
        return -1;
    return status;
}

int mr_ws_send_frame(mr_ws *ws, int opcode, const void *payload, size_t len)
{
    size_t hl = 2;
    unsigned char hdr[14];
    hdr[0] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        hdr[1] = (unsigned char)(0x80 | len);
    } else if (len < 65536) {
        hdr[1] = 0x80 | 126;
        hdr[2] = (unsigned char)(len >> 8);
        hdr[3] = (unsigned char)len;
        hl = 4;
    } else {
        hdr[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            hdr[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
        hl = 10;
    }
    unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    memcpy(hdr + hl, mask, 4);
    hl += 4;
    unsigned char *buf = malloc(hl + len);
    memcpy(buf, hdr, hl);
    for (size_t i = 0; i < len; i++)
        buf[hl + i] = ((const unsigned char *)payload)[i] ^ mask[i & 3];
    size_t off = 0;
    while (off < hl + len) {
        ssize_t w = write(ws->fd, buf + off, hl + len - off);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            free(buf);
            return -1;
        }
        off += (size_t)w;
    }
    free(buf);
    return 0;
}

int mr_ws_send_text(mr_ws *ws, const char *text)
{
    return mr_ws_send_frame(ws, 1, text, strlen(text));
}

/* Ensure `need` bytes are buffered; returns 0, -1 on time-out, -2 on EOF. */
static int fill(mr_ws *ws, size_t need, int64_t deadline)
{
    while (ws->rlen < need) {
        if (ws->rcap < need + 4096) {
            ws->rcap = need + 65536;
            ws->rbuf = realloc(ws->rbuf, ws->rcap);
        }
        struct pollfd p = {ws->fd, POLLIN, 0};
        int left = (int)(deadline - mr_test_now_ms());
        if (left <= 0)
            return -1;
        int pr = poll(&p, 1, left);
        if (pr == 0)
            return -1;
        if (pr < 0)
            continue;
        ssize_t r = read(ws->fd, ws->rbuf + ws->rlen, ws->rcap - ws->rlen);
        if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN))
            return -2;
        if (r > 0)
            ws->rlen += (size_t)r;
    }
    return 0;
}

int mr_ws_recv(mr_ws *ws, int timeout_ms, char **out, size_t *len, int *close_code)
{
    int64_t deadline = mr_test_now_ms() + timeout_ms;
    *out = NULL;
    for (;;) {
        int r = fill(ws, 2, deadline);
        if (r < 0)
            return r;
        unsigned char *h = (unsigned char *)ws->rbuf;
        int opcode = h[0] & 0x0f;
        size_t plen = h[1] & 0x7f, hl = 2;
        if (plen == 126) {
            if ((r = fill(ws, 4, deadline)) < 0)
                return r;
            h = (unsigned char *)ws->rbuf;
            plen = (size_t)h[2] << 8 | h[3];
            hl = 4;
        } else if (plen == 127) {
            if ((r = fill(ws, 10, deadline)) < 0)
                return r;
            h = (unsigned char *)ws->rbuf;
            plen = 0;
            for (int i = 0; i < 8; i++)
                plen = plen << 8 | h[2 + i];
            hl = 10;
        }
        if ((r = fill(ws, hl + plen, deadline)) < 0)
            return r;
        char *payload = malloc(plen + 1);
        memcpy(payload, ws->rbuf + hl, plen);
        payload[plen] = '\0';
        memmove(ws->rbuf, ws->rbuf + hl + plen, ws->rlen - hl - plen);
        ws->rlen -= hl + plen;
        if (opcode == 9) { /* ping: answer and keep reading */
            mr_ws_send_frame(ws, 10, payload, plen);
            free(payload);
            continue;
        }
        if (opcode == 10) {
            free(payload);
            continue;
        }
        if (opcode == 8 && close_code)
            *close_code =
                plen >= 2 ? ((unsigned char)payload[0] << 8 | (unsigned char)payload[1]) : 1005;
        *out = payload;
        if (len)
            *len = plen;
        return opcode;
    }
}

char *mr_ws_expect(mr_ws *ws, const char *needle, int timeout_ms)
{
    int64_t deadline = mr_test_now_ms() + timeout_ms;
    for (;;) {
        int left = (int)(deadline - mr_test_now_ms());
        if (left <= 0)
            return NULL;
        char *p;
        int cc = 0;
        int op = mr_ws_recv(ws, left, &p, NULL, &cc);
        if (op < 0)
            return NULL;
        if (op == 8) {
            free(p);
            return NULL;
        }
        if (strstr(p, needle))
            return p;
        free(p);
    }
}

int mr_ws_wait_close(mr_ws *ws, int timeout_ms)
{
    int64_t deadline = mr_test_now_ms() + timeout_ms;
    for (;;) {
        int left = (int)(deadline - mr_test_now_ms());
        if (left <= 0)
            return -1;
        char *p;
        int cc = 0;
        int op = mr_ws_recv(ws, left, &p, NULL, &cc);
        if (op == -1)
            return -1;
        if (op == -2)
            return 1006;
        free(p);
        if (op == 8)
            return cc;
    }
}

void mr_ws_close(mr_ws *ws)
{
    if (ws->fd >= 0)
        close(ws->fd);
    ws->fd = -1;
    free(ws->rbuf);
    ws->rbuf = NULL;
}

/* True when every thread of `pid` is stopped ('T' or 't' in /proc). */
static bool all_threads_stopped(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return false;
    bool all = true;
    struct dirent *e;
    while (all && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char stat[320], buf[512];
        snprintf(stat, sizeof stat, "/proc/%d/task/%s/stat", (int)pid, e->d_name);
        FILE *f = fopen(stat, "r");
        if (!f)
            continue; /* the thread just ended */
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        (void)fclose(f); /* opened to read only */
        buf[n] = '\0';
        /* "pid (comm) S ...": the state follows the last ')'. */
        const char *p = strrchr(buf, ')');
        all = p && p[1] == ' ' && (p[2] == 'T' || p[2] == 't');
    }
    closedir(d);
    return all;
}

void mr_test_stop_process(pid_t pid)
{
    ck_assert_int_eq(kill(pid, SIGSTOP), 0);
    int64_t deadline = mr_test_now_ms() + 2000;
    while (!all_threads_stopped(pid)) {
        ck_assert_msg(mr_test_now_ms() < deadline, "process %d did not stop within 2 s", (int)pid);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}
