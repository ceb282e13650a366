/*
 * Cross-region delivery latency, measured against in-region delivery on the
 * same run. One publisher connects to the first relay URL; one subscriber
 * connects to each relay URL given (the publisher's own relay, a sibling
 * relay in the same region, relays in other regions). Every message carries
 * its send time (CLOCK_MONOTONIC, ns): all connections live in this one
 * process, so receive minus send is the end-to-end fast-path latency with
 * no clock skew. The difference between the in-region and the cross-region
 * figures is the gateway hop. The publisher's `ack` latency (JetStream
 * PubAck) and the time until the control plane's `commit` reaches the
 * publisher are reported too.
 *
 * Usage: meridian-bench-crossregion --secret-file F [--count N] [--rate R]
 *            [--room ROOM] [--warmup N] HOST:PORT[=LABEL]...
 * The first address is the publisher's relay (its subscriber is "same relay").
 */
#include "mr_alloc.h"
#include "mr_jwt.h"
#include "mr_test.h"

#include <jansson.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SUBS 16

typedef struct series {
    double *v;
    size_t n;
} series;

typedef struct sub {
    char host[64];
    int port;
    char label[64];
    mr_ws ws;
    series lat;
    long received; /* messages of this run, warm-up included */
} sub;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void push(series *s, double v, size_t cap)
{
    if (!s->v)
        s->v = calloc(cap, sizeof *s->v);
    if (s->n < cap)
        s->v[s->n++] = v;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(series *s, double p)
{
    if (s->n == 0)
        return -1;
    size_t i = (size_t)(p / 100.0 * (double)(s->n - 1) + 0.5);
    return s->v[i];
}

static void report(const char *label, series *s, size_t expected)
{
    qsort(s->v, s->n, sizeof *s->v, cmp_d);
    printf("%-28s %6zu/%-6zu p50 %8.3f ms  p90 %8.3f ms  p99 %8.3f ms  max %8.3f ms\n", label, s->n,
           expected, pct(s, 50), pct(s, 90), pct(s, 99), s->n ? s->v[s->n - 1] : -1);
}

/*
 * The test client's mr_ws_recv() polls only while its deadline lies ahead,
 * so a zero timeout never reads. Here the socket is read when poll() says
 * so, and mr_ws_recv() is called only for a frame that is already complete
 * in the buffer: then it returns at once, and no socket waits for another.
 */
static int read_some(mr_ws *ws)
{
    if (ws->rcap - ws->rlen < 4096) {
        ws->rcap = ws->rlen + 65536;
        ws->rbuf = realloc(ws->rbuf, ws->rcap);
    }
    ssize_t r = read(ws->fd, ws->rbuf + ws->rlen, ws->rcap - ws->rlen);
    if (r <= 0)
        return -1;
    ws->rlen += (size_t)r;
    return 0;
}

static bool frame_ready(const mr_ws *ws)
{
    const unsigned char *h = (const unsigned char *)ws->rbuf;
    if (ws->rlen < 2)
        return false;
    size_t plen = h[1] & 0x7f, hl = 2;
    if (plen == 126) {
        if (ws->rlen < 4)
            return false;
        plen = (size_t)h[2] << 8 | h[3];
        hl = 4;
    } else if (plen == 127) {
        if (ws->rlen < 10)
            return false;
        plen = 0;
        for (int i = 0; i < 8; i++)
            plen = plen << 8 | h[2 + i];
        hl = 10;
    }
    return ws->rlen >= hl + plen;
}

static char *token(const char *secret, const char *user)
{
    json_t *c = json_pack("{s:s,s:I}", "sub", user, "exp", (json_int_t)time(NULL) + 3600);
    char *t = mr_jwt_sign((const unsigned char *)secret, strlen(secret), c);
    json_decref(c);
    return t;
}

/* Connect, hello, join; returns 0 or -1 with a message on stderr. */
static int open_member(mr_ws *ws, const char *host, int port, const char *secret, const char *user,
                       const char *room)
{
    if (mr_ws_connect(ws, host, port, NULL) != 101) {
        fprintf(stderr, "cannot connect to ws://%s:%d/\n", host, port);
        return -1;
    }
    char *t = token(secret, user), frame[2048];
    snprintf(frame, sizeof frame, "{\"type\":\"hello\",\"id\":1,\"token\":\"%s\"}", t);
    free(t);
    mr_ws_send_text(ws, frame);
    char *w = mr_ws_expect(ws, "\"type\":\"welcome\"", 5000);
    if (!w) {
        fprintf(stderr, "%s:%d: no welcome (wrong secret?)\n", host, port);
        return -1;
    }
    free(w);
    snprintf(frame, sizeof frame, "{\"type\":\"join\",\"id\":2,\"room\":\"%s\"}", room);
    mr_ws_send_text(ws, frame);
    w = mr_ws_expect(ws, "\"type\":\"joined\"", 5000);
    if (!w) {
        fprintf(stderr, "%s:%d: no joined\n", host, port);
        return -1;
    }
    free(w);
    return 0;
}

static char *read_secret(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char buf[512] = "";
    if (!fgets(buf, sizeof buf, f))
        buf[0] = '\0';
    (void)fclose(f); /* opened to read only */
    buf[strcspn(buf, "\r\n")] = '\0';
    return strdup(buf);
}

int main(int argc, char **argv)
{
    mr_alloc_use_for_jansson();
    const char *secret_file = NULL, *room = "bench-crossregion";
    long count = 1000, warmup = 50;
    double rate = 40; /* under the relay's default publish_rate of 50/s per connection */
    sub subs[MAX_SUBS];
    int nsubs = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--secret-file") && i + 1 < argc)
            secret_file = argv[++i];
        else if (!strcmp(argv[i], "--count") && i + 1 < argc)
            count = atol(argv[++i]);
        else if (!strcmp(argv[i], "--warmup") && i + 1 < argc)
            warmup = atol(argv[++i]);
        else if (!strcmp(argv[i], "--rate") && i + 1 < argc)
            rate = atof(argv[++i]);
        else if (!strcmp(argv[i], "--room") && i + 1 < argc)
            room = argv[++i];
        else if (argv[i][0] != '-' && nsubs < MAX_SUBS) {
            sub *s = &subs[nsubs];
            memset(s, 0, sizeof *s);
            char *eq = strchr(argv[i], '=');
            snprintf(s->label, sizeof s->label, "%s", eq ? eq + 1 : argv[i]);
            if (sscanf(argv[i], "%63[^:]:%d", s->host, &s->port) != 2) {
                fprintf(stderr, "bad address %s (want HOST:PORT[=LABEL])\n", argv[i]);
                return 2;
            }
            nsubs++;
        } else {
            fprintf(stderr,
                    "usage: %s --secret-file F [--count N] [--rate R] [--warmup N] "
                    "[--room ROOM] HOST:PORT[=LABEL]...\n",
                    argv[0]);
            return 2;
        }
    }
    if (!secret_file || nsubs == 0 || count <= 0 || rate <= 0) {
        fprintf(stderr, "need --secret-file, a positive --count and --rate, and relay addresses\n");
        return 2;
    }
    char *secret = read_secret(secret_file);
    if (!secret) {
        fprintf(stderr, "cannot read %s\n", secret_file);
        return 1;
    }
    mr_ws pub;
    if (open_member(&pub, subs[0].host, subs[0].port, secret, "bench-pub", room) != 0)
        return 1;
    for (int i = 0; i < nsubs; i++) {
        char user[32];
        snprintf(user, sizeof user, "bench-sub-%d", i);
        if (open_member(&subs[i].ws, subs[i].host, subs[i].port, secret, user, room) != 0)
            return 1;
    }
    /* Presence events of the joins are still in flight: they are skipped below. */
    long total = count + warmup;
    int64_t *sent = calloc((size_t)total, sizeof *sent);
    json_t *ids = json_object();   /* msg_id -> index, from the acks */
    json_t *early = json_object(); /* msg_id -> receive time of a commit before its ack */
    series ack = {0}, commit = {0};
    int64_t interval = (int64_t)(1e9 / rate), start = now_ns(), end_by = 0;
    long next = 0, got_commits = 0;
    struct pollfd pfd[MAX_SUBS + 1];
    for (;;) {
        int64_t now = now_ns();
        if (next < total && now >= start + next * interval) {
            char frame[256];
            snprintf(frame, sizeof frame,
                     "{\"type\":\"publish\",\"id\":%ld,\"room\":\"%s\",\"mid\":\"b%ld-%lld\","
                     "\"data\":{\"i\":%ld,\"t\":%lld}}",
                     next, room, next, (long long)start, next, (long long)now);
            sent[next] = now;
            mr_ws_send_text(&pub, frame);
            if (++next == total)
                end_by = now + 5000000000LL; /* stragglers: 5 s at most */
            continue;
        }
        /* Done when every subscriber has every message and the publisher every commit. */
        bool all_in = got_commits >= total;
        for (int i = 0; i < nsubs && all_in; i++)
            all_in = subs[i].received >= total;
        if (next == total && (now >= end_by || all_in))
            break;
        int64_t wait_ns = next < total ? start + next * interval - now : end_by - now;
        int wait_ms = (int)(wait_ns / 1000000);
        pfd[0].fd = pub.fd;
        pfd[0].events = POLLIN;
        for (int i = 0; i < nsubs; i++) {
            pfd[i + 1].fd = subs[i].ws.fd;
            pfd[i + 1].events = POLLIN;
        }
        poll(pfd, (nfds_t)nsubs + 1, wait_ms > 0 ? wait_ms : 0);
        int64_t rcv = now_ns();
        for (int i = -1; i < nsubs; i++) {
            mr_ws *ws = i < 0 ? &pub : &subs[i].ws;
            char *p;
            int cc;
            if ((pfd[i + 1].revents & (POLLIN | POLLHUP | POLLERR)) && read_some(ws) != 0) {
                fprintf(stderr, "connection %d closed\n", i);
                return 1;
            }
            while (frame_ready(ws) && mr_ws_recv(ws, 1, &p, NULL, &cc) > 0) {
                if (!p)
                    continue;
                json_t *j = json_loads(p, 0, NULL);
                free(p);
                const char *type = json_string_value(json_object_get(j, "type"));
                json_t *data = json_object_get(j, "data");
                long idx = -1;
                if (type && !strcmp(type, "message") && i >= 0) {
                    idx = (long)json_integer_value(json_object_get(data, "i"));
                    subs[i].received++;
                    if (idx >= warmup && idx < total)
                        push(&subs[i].lat,
                             (double)(rcv - json_integer_value(json_object_get(data, "t"))) / 1e6,
                             (size_t)count);
                } else if (type && !strcmp(type, "ack") && i < 0) {
                    idx = (long)json_integer_value(json_object_get(j, "id"));
                    const char *id = json_string_value(json_object_get(j, "msg_id"));
                    if (id && idx >= 0 && idx < total) {
                        json_object_set_new(ids, id, json_integer(idx));
                        if (idx >= warmup)
                            push(&ack, (double)(rcv - sent[idx]) / 1e6, (size_t)count);
                        /* The commit may have overtaken the ack. */
                        json_t *at = json_object_get(early, id);
                        if (at) {
                            got_commits++;
                            if (idx >= warmup)
                                push(&commit, (double)(json_integer_value(at) - sent[idx]) / 1e6,
                                     (size_t)count);
                            json_object_del(early, id);
                        }
                    }
                } else if (type && i < 0 && json_is_integer(json_object_get(j, "seq"))) {
                    /* A commit (or a message delivered from its commit) for the publisher. */
                    const char *id = json_string_value(json_object_get(j, "msg_id"));
                    json_t *ix = id ? json_object_get(ids, id) : NULL;
                    if (!ix && id)
                        json_object_set_new(early, id, json_integer(rcv));
                    if (ix) {
                        idx = (long)json_integer_value(ix);
                        got_commits++;
                        if (idx >= warmup)
                            push(&commit, (double)(rcv - sent[idx]) / 1e6, (size_t)count);
                    }
                }
                json_decref(j);
            }
        }
    }
    printf("room %s, %ld messages at %.0f/s after %ld warm-up, publisher on %s:%d\n", room, count,
           rate, warmup, subs[0].host, subs[0].port);
    printf(
        "(a message whose commit reached a relay before its fast-path copy is delivered from the "
        "commit: its latency is the commit's)\n");
    for (int i = 0; i < nsubs; i++)
        report(subs[i].label, &subs[i].lat, (size_t)count);
    report("publish -> ack (JetStream)", &ack, (size_t)count);
    report("publish -> commit (seq)", &commit, (size_t)count);
    return 0;
}
