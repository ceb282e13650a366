/*
 * What a backend hook costs (docs/benchmarks.md, "Backend hooks"). One
 * client joins new rooms and publishes (one request in flight at a time),
 * alternating between rooms a hook covers ("h-*") and rooms it does not
 * ("plain-*"), so both series see the same machine load; the difference of
 * the two is the hook. The backend is in this process: a thread answering
 * {"allow":true} on kept-alive HTTP/1.1 connections after --backend-delay-us,
 * so the figure is the relay's cost (thread hand-offs, libcurl, the HTTP
 * exchange on loopback) plus that delay, and not a slow backend's.
 *
 * Usage: meridian-bench-hooks --relay HOST:PORT --secret-file F --backend-port P
 *            [--count N] [--backend-delay-us U]
 * The relay's config must send "h-*" joins and publishes to
 * http://127.0.0.1:P/hook (bench/hooks/run.sh writes one).
 */
#include "mr_alloc.h"
#include "mr_jwt.h"
#include "mr_test.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long backend_delay_us;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One kept-alive connection: read a request (headers and Content-Length body), answer, again. */
static void *serve_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[65536];
    size_t len = 0;
    static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 "Content-Length: 14\r\n\r\n{\"allow\":true}";
    for (;;) {
        char *end = memmem(buf, len, "\r\n\r\n", 4);
        if (end) {
            size_t head = (size_t)(end - buf) + 4;
            size_t body = 0;
            char *cl = memmem(buf, head, "Content-Length:", 15);
            if (!cl)
                cl = memmem(buf, head, "content-length:", 15);
            if (cl)
                body = (size_t)strtoul(cl + 15, NULL, 10);
            if (len >= head + body) {
                if (backend_delay_us > 0)
                    usleep((useconds_t)backend_delay_us);
                if (write(fd, answer, sizeof answer - 1) != (ssize_t)(sizeof answer - 1))
                    break;
                memmove(buf, buf + head + body, len - head - body);
                len -= head + body;
                continue;
            }
        }
        if (len == sizeof buf)
            break;
        ssize_t n = read(fd, buf + len, sizeof buf - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    return NULL;
}

static void *serve(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_t t;
        pthread_create(&t, NULL, serve_conn, (void *)(intptr_t)fd);
        pthread_detach(t);
    }
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, int64_t *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_i64);
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += (double)v[i];
    int p50 = n / 2, p90 = n * 9 / 10, p99 = n * 99 / 100; /* indices into the sorted v */
    printf("%-22s n=%d  p50 %7.0f us  p90 %7.0f us  p99 %7.0f us  mean %7.0f us\n", what, n,
           (double)v[p50] / 1e3, (double)v[p90] / 1e3, (double)v[p99] / 1e3, sum / n / 1e3);
}

/* Send `frame` and wait for the frame answering id `id`; returns its latency in ns. */
static int64_t request(mr_ws *ws, const char *frame, const char *id)
{
    char needle[80];
    snprintf(needle, sizeof needle, "\"id\":\"%s\"", id);
    int64_t t0 = now_ns();
    if (mr_ws_send_text(ws, frame) != 0)
        return -1;
    char *f = mr_ws_expect(ws, needle, 10000);
    int64_t dt = now_ns() - t0;
    bool ok = f && (strstr(f, "\"joined\"") || strstr(f, "\"ack\""));
    if (!ok)
        fprintf(stderr, "request %s: %s\n", id, f ? f : "no answer");
    free(f);
    return ok ? dt : -1;
}

int main(int argc, char **argv)
{
    mr_alloc_use_for_jansson();
    const char *relay = NULL, *secret_file = NULL;
    int backend_port = 0, count = 500;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--relay"))
            relay = argv[i + 1];
        else if (!strcmp(argv[i], "--secret-file"))
            secret_file = argv[i + 1];
        else if (!strcmp(argv[i], "--backend-port"))
            backend_port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--count"))
            count = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--backend-delay-us"))
            backend_delay_us = atol(argv[i + 1]);
    }
    char host[64];
    int port;
    if (!relay || !secret_file || backend_port <= 0 || count < 10 ||
        sscanf(relay, "%63[^:]:%d", host, &port) != 2) {
        fprintf(stderr,
                "usage: %s --relay HOST:PORT --secret-file F --backend-port P [--count N] "
                "[--backend-delay-us U]\n",
                argv[0]);
        return 2;
    }
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)backend_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 64) != 0) {
        perror("backend bind");
        return 1;
    }
    pthread_t bt;
    pthread_create(&bt, NULL, serve, (void *)(intptr_t)lfd);

    char *secret = mr_test_read_file(secret_file);
    if (!secret) {
        fprintf(stderr, "cannot read %s\n", secret_file);
        return 1;
    }
    secret[strcspn(secret, "\r\n")] = '\0';
    json_t *claims = json_pack("{s:s, s:I}", "sub", "bench", "exp", (json_int_t)time(NULL) + 3600);
    char *tok = mr_jwt_sign((const unsigned char *)secret, strlen(secret), claims);
    json_decref(claims);
    mr_ws ws;
    if (mr_ws_connect(&ws, host, port, NULL) != 101) {
        fprintf(stderr, "cannot connect to %s\n", relay);
        return 1;
    }
    char frame[4096];
    snprintf(frame, sizeof frame, "{\"type\":\"hello\",\"id\":\"hello\",\"token\":\"%s\"}", tok);
    mr_ws_send_text(&ws, frame);
    free(mr_ws_expect(&ws, "welcome", 5000));

    int64_t *join_plain = calloc((size_t)count, sizeof(int64_t));
    int64_t *join_hook = calloc((size_t)count, sizeof(int64_t));
    int64_t *pub_plain = calloc((size_t)count, sizeof(int64_t));
    int64_t *pub_hook = calloc((size_t)count, sizeof(int64_t));
    int64_t run = now_ns();
    /* Joins of new rooms: both include the NATS subscription's confirmation round trip. */
    for (int i = 0; i < count; i++) {
        char id[32];
        const char *kinds[] = {"plain", "h"};
        for (int k = 0; k < 2; k++) {
            snprintf(id, sizeof id, "j%d-%s", i, kinds[k]);
            snprintf(frame, sizeof frame, "{\"type\":\"join\",\"id\":\"%s\",\"room\":\"%s-%d\"}",
                     id, kinds[k], i);
            int64_t dt = request(&ws, frame, id);
            if (dt < 0)
                return 1;
            (k ? join_hook : join_plain)[i] = dt;
        }
        /* Leave again so that the connection stays under max_rooms_per_connection. */
        for (int k = 0; k < 2; k++) {
            snprintf(frame, sizeof frame,
                     "{\"type\":\"leave\",\"id\":\"l%d-%d\",\"room\":\"%s-%d\"}", i, k, kinds[k],
                     i);
            snprintf(id, sizeof id, "l%d-%d", i, k);
            mr_ws_send_text(&ws, frame);
            free(mr_ws_expect(&ws, id, 5000));
        }
    }
    const char *rooms[] = {"plain-pub", "h-pub"};
    for (int k = 0; k < 2; k++) {
        snprintf(frame, sizeof frame, "{\"type\":\"join\",\"id\":\"jp%d\",\"room\":\"%s\"}", k,
                 rooms[k]);
        if (request(&ws, frame, k ? "jp1" : "jp0") < 0)
            return 1;
    }
    for (int i = 0; i < count; i++) {
        for (int k = 0; k < 2; k++) {
            char id[32];
            snprintf(id, sizeof id, "p%d-%d", i, k);
            snprintf(frame, sizeof frame,
                     "{\"type\":\"publish\",\"id\":\"%s\",\"room\":\"%s\",\"mid\":\"%s\","
                     "\"data\":{\"text\":\"hello\"}}",
                     id, rooms[k], id);
            int64_t dt = request(&ws, frame, id);
            if (dt < 0)
                return 1;
            (k ? pub_hook : pub_plain)[i] = dt;
        }
    }
    printf("relay %s, backend delay %ld us, %d of each, %.1f s\n", relay, backend_delay_us, count,
           (now_ns() - run) / 1e9);
    report("join (no hook)", join_plain, count);
    report("join (hook)", join_hook, count);
    report("publish->ack (no hook)", pub_plain, count);
    report("publish->ack (hook)", pub_hook, count);
    return 0;
}
