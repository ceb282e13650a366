/* Helpers of the lifecycle suite (lc_notify.h). */
#include "lc_notify.h"
#include "mr_jwt.h"
#include "mr_test.h"

#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void lc_notify_open(lc_notify *n, const char *dir, bool abstract, long watchdog_us)
{
    memset(n, 0, sizeof *n);
    n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(n->fd, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    socklen_t len;
    if (abstract) {
        snprintf(n->name, sizeof n->name, "@meridian-test-%ld-%ld", (long)getpid(),
                 (long)mr_test_now_ms());
        /* An abstract name starts with a NUL byte; its length is the address's. */
        size_t l = strlen(n->name);
        memcpy(sa.sun_path + 1, n->name + 1, l - 1);
        len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + l);
    } else {
        snprintf(n->name, sizeof n->name, "%s/notify.sock", dir);
        ck_assert_msg(strlen(n->name) < sizeof sa.sun_path, "socket path too long: %s", n->name);
        strcpy(sa.sun_path, n->name);
        len = (socklen_t)sizeof sa;
    }
    ck_assert_msg(bind(n->fd, (struct sockaddr *)&sa, len) == 0, "bind %s: %s", n->name,
                  strerror(errno));
    setenv("NOTIFY_SOCKET", n->name, 1);
    if (watchdog_us > 0) {
        char v[32];
        snprintf(v, sizeof v, "%ld", watchdog_us);
        setenv("WATCHDOG_USEC", v, 1);
    } else {
        unsetenv("WATCHDOG_USEC");
    }
}

void lc_notify_close(lc_notify *n)
{
    if (n->fd > 0)
        close(n->fd);
    n->fd = -1;
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
}

/* One message within `timeout_ms` into `buf`; its length, or -1. */
static int recv_one(lc_notify *n, char *buf, size_t cap, int timeout_ms)
{
    struct pollfd p = {.fd = n->fd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) <= 0)
        return -1;
    ssize_t r = recv(n->fd, buf, cap - 1, 0);
    if (r < 0)
        return -1;
    buf[r] = '\0';
    size_t used = strlen(n->seen);
    snprintf(n->seen + used, sizeof n->seen - used, "%s%s", used ? "|" : "", buf);
    return (int)r;
}

bool lc_notify_expect(lc_notify *n, const char *needle, int timeout_ms)
{
    int64_t deadline = mr_test_now_ms() + timeout_ms;
    char buf[4096];
    for (;;) {
        int left = (int)(deadline - mr_test_now_ms());
        if (left <= 0 || recv_one(n, buf, sizeof buf, left) < 0)
            return false;
        if (strstr(buf, needle))
            return true;
    }
}

int lc_notify_count(lc_notify *n, const char *needle, int window_ms)
{
    int64_t deadline = mr_test_now_ms() + window_ms;
    char buf[4096];
    int count = 0;
    for (;;) {
        int left = (int)(deadline - mr_test_now_ms());
        if (left <= 0)
            return count;
        if (recv_one(n, buf, sizeof buf, left) >= 0 && strstr(buf, needle))
            count++;
    }
}

void lc_notify_drain(lc_notify *n)
{
    char buf[4096];
    while (recv_one(n, buf, sizeof buf, 0) >= 0)
        ;
}

int lc_log_count(const char *path, const char *needle)
{
    char *text = mr_test_read_file(path);
    int count = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        count++;
    free(text);
    return count;
}

bool lc_log_wait(const char *path, const char *needle, int timeout_ms)
{
    int64_t deadline = mr_test_now_ms() + timeout_ms;
    for (;;) {
        if (lc_log_count(path, needle) > 0)
            return true;
        if (mr_test_now_ms() >= deadline)
            return false;
        struct timespec ts = {0, 20 * 1000000}; /* between polls of the log */
        nanosleep(&ts, NULL);
    }
}

int lc_exit_status(pid_t pid, int timeout_ms)
{
    int st = mr_test_wait_exit(pid, timeout_ms);
    if (st == -1) {
        mr_test_stop(pid, SIGKILL, 5000);
        return -1;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int lc_run(char *const argv[], const char *log)
{
    return lc_exit_status(mr_test_spawn(argv, log), 20000);
}

int lc_listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ck_assert_msg(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0, "bind %d: %s", port,
                  strerror(errno));
    ck_assert_int_eq(listen(fd, 4), 0);
    return fd;
}

bool lc_tls_peer_is(int port, const char *cert_path, void **ssl_out, int *fd_out)
{
    FILE *f = fopen(cert_path, "r");
    ck_assert_ptr_nonnull(f);
    X509 *want = PEM_read_X509(f, NULL, NULL, NULL);
    (void)fclose(f); /* opened to read only */
    ck_assert_ptr_nonnull(want);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    bool same = false;
    SSL *ssl = NULL;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
        ssl = SSL_new(ctx);
        SSL_set_fd(ssl, fd);
        SSL_set_tlsext_host_name(ssl, "localhost");
        if (SSL_connect(ssl) == 1) {
            X509 *got = SSL_get1_peer_certificate(ssl);
            same = got && X509_cmp(got, want) == 0;
            X509_free(got);
        }
    }
    X509_free(want);
    SSL_CTX_free(ctx); /* the SSL keeps its own reference */
    if (ssl_out && fd_out && ssl) {
        *ssl_out = ssl;
        *fd_out = fd;
    } else {
        lc_tls_close(ssl, fd);
    }
    return same;
}

void lc_tls_close(void *ssl, int fd)
{
    if (ssl) {
        SSL_shutdown(ssl);
        SSL_free(ssl);
    }
    if (fd >= 0)
        close(fd);
}

char *lc_token(const char *secret, const char *kid, const char *sub)
{
    char header[256], payload[256];
    if (kid)
        snprintf(header, sizeof header, "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid);
    else
        snprintf(header, sizeof header, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}");
    snprintf(payload, sizeof payload, "{\"sub\":\"%s\",\"exp\":%ld}", sub, (long)time(NULL) + 3600);
    char *tok = malloc(2048);
    size_t n = mr_b64url_encode((const unsigned char *)header, strlen(header), tok);
    tok[n++] = '.';
    n += mr_b64url_encode((const unsigned char *)payload, strlen(payload), tok + n);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)tok, n, mac, &maclen);
    tok[n++] = '.';
    mr_b64url_encode(mac, maclen, tok + n);
    return tok;
}
