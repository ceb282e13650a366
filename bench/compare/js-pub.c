/*
 * meridian-js-pub: the ceiling of durable publishes on this machine. One C
 * client on one NATS connection publishes to a file-backed JetStream stream
 * (the relay's region stream, made with the relay's own settings by
 * mr_stream_ensure) with a unique Nats-Msg-Id per message, asynchronously,
 * with at most --inflight publishes waiting for their PubAck, and counts the
 * PubAcks. bench/run's `publish-ceiling` scenario runs it next to
 * `meridian-loadgen publish` against the relay, so the relay's acknowledged
 * publishes/s can be read as a fraction of what JetStream takes here.
 *
 * Three ways to publish, all measured (--mode):
 *   raw    natsConnection_PublishMsg to the stream subject with a reply
 *          subject on one wildcard inbox; PubAcks matched by that subject
 *          (what the relay does)
 *   async  libnats' js_PublishMsgAsync with an ack handler
 *   wire   no libnats on the publish path: one thread writes the HPUB
 *          frames itself into one buffer, sends it when the socket takes it,
 *          and parses the PubAcks (MSG frames on the same inbox) in place;
 *          what a relay with its own NATS client would do (plain
 *          connections without credentials only: a benchmark server's)
 *
 * It reports the client's own CPU per acknowledged publish as well, so the
 * modes say what the NATS client library costs per publish.
 *
 *   meridian-js-pub --url nats://127.0.0.1:4222 [--region bench] [--mode raw|async|wire]
 *                   [--inflight 1024] [--size 330] [--duration 10] [--warmup 2]
 *                   [--json FILE]
 */
#include "lg_hist.h"
#include "mr_stream.h"

#include <errno.h>
#include <getopt.h>
#include <nats/nats.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Shared between the publishing thread and libnats' delivery thread, under `mu`. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int inflight;
    uint64_t acks, acks_measured, errors;
    int64_t t_measure, t_stop;
    lg_hist lat;
    int64_t *sent_at; /* raw mode: send time by token % cap */
    size_t cap;
    char last_error[160];
} S = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* One PubAck (or failure) for a message sent at `sent`. */
static void acked(int64_t sent, bool ok, const char *why)
{
    int64_t t = now_us();
    pthread_mutex_lock(&S.mu);
    if (ok) {
        S.acks++;
        if (sent >= S.t_measure && sent < S.t_stop) {
            S.acks_measured++;
            lg_hist_add(&S.lat, t - sent);
        }
    } else {
        S.errors++;
        snprintf(S.last_error, sizeof S.last_error, "%s", why);
    }
    S.inflight--;
    pthread_cond_signal(&S.cv);
    pthread_mutex_unlock(&S.mu);
}

/* A PubAck is {"stream":..,"seq":N[,"duplicate":true]}; anything else is an error. */
static bool puback_ok(natsMsg *msg)
{
    const char *d = natsMsg_GetData(msg);
    int n = natsMsg_GetDataLength(msg);
    return d && n > 0 && memmem(d, (size_t)n, "\"seq\":", 6) &&
           !memmem(d, (size_t)n, "\"error\"", 7);
}

static void on_raw_ack(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc, (void)sub, (void)closure;
    const char *subj = natsMsg_GetSubject(msg);
    const char *dot = strrchr(subj, '.');
    uint64_t token = dot ? strtoull(dot + 1, NULL, 10) : 0;
    acked(S.sent_at[token % S.cap], puback_ok(msg), "PubAck with an error");
    natsMsg_Destroy(msg);
}

static void on_async_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js, (void)closure;
    int64_t sent = 0;
    memcpy(&sent, natsMsg_GetData(msg), sizeof sent);
    acked(sent, pa != NULL, pae && pae->ErrText ? pae->ErrText : "PubAck error");
    natsMsg_Destroy(msg);
}

/* CPU seconds (user + system) this process has used so far. */
static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* --mode wire: the client's own connection and buffers. */
typedef struct wire {
    int fd;
    char *out;
    size_t out_len, out_cap;
    char *in;
    size_t in_len, in_cap;
} wire;

/* Connect to nats://HOST:PORT and finish the handshake (CONNECT, SUB, PING/PONG). */
static int wire_open(wire *w, const char *url, const char *inbox, char *err, size_t errlen)
{
    char host[256];
    const char *hp = strncmp(url, "nats://", 7) == 0 ? url + 7 : url;
    const char *colon = strrchr(hp, ':');
    if (!colon || (size_t)(colon - hp) >= sizeof host) {
        snprintf(err, errlen, "--mode wire needs nats://HOST:PORT, not %s", url);
        return -1;
    }
    memcpy(host, hp, (size_t)(colon - hp));
    host[colon - hp] = '\0';
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(host, colon + 1, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "%.128s: %.100s", host, gai_strerror(rc));
        return -1;
    }
    w->fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (w->fd < 0 || connect(w->fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        snprintf(err, errlen, "connect %s: %s", url, strerror(errno));
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    char hello[512];
    int n = snprintf(hello, sizeof hello,
                     "CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,"
                     "\"no_responders\":true,\"echo\":false,\"protocol\":1,\"lang\":\"c\","
                     "\"version\":\"meridian-js-pub\"}\r\nSUB %s.* 1\r\nPING\r\n",
                     inbox);
    if (write(w->fd, hello, (size_t)n) != n) {
        snprintf(err, errlen, "write: %s", strerror(errno));
        return -1;
    }
    /* Read until the PONG (INFO comes first); a -ERR is the server refusing us. */
    char buf[8192];
    size_t len = 0;
    for (;;) {
        struct pollfd p = {.fd = w->fd, .events = POLLIN};
        if (poll(&p, 1, 5000) != 1) {
            snprintf(err, errlen, "no PONG from %s within 5 s", url);
            return -1;
        }
        ssize_t r = read(w->fd, buf + len, sizeof buf - 1 - len);
        if (r <= 0) {
            snprintf(err, errlen, "%s closed the connection during the handshake", url);
            return -1;
        }
        len += (size_t)r;
        buf[len] = '\0';
        char *e = strstr(buf, "-ERR");
        if (e) {
            snprintf(err, errlen, "%.*s", (int)strcspn(e, "\r\n"), e);
            return -1;
        }
        if (strstr(buf, "PONG\r\n"))
            break;
        if (len == sizeof buf - 1) {
            snprintf(err, errlen, "handshake answer too long");
            return -1;
        }
    }
    w->out_cap = w->in_cap = 1 << 20;
    w->out = malloc(w->out_cap);
    w->in = malloc(w->in_cap);
    w->out_len = w->in_len = 0;
    return w->out && w->in ? 0 : -1;
}

/* Append one HPUB frame: the payload with a Nats-Msg-Id header, PubAck to `reply`. */
static void wire_hpub(wire *w, const char *subject, const char *reply, const char *id,
                      const char *payload, int size)
{
    char hdr[96];
    int hl = snprintf(hdr, sizeof hdr, "NATS/1.0\r\nNats-Msg-Id: %s\r\n\r\n", id);
    size_t need = 256 + (size_t)hl + (size_t)size;
    if (w->out_len + need > w->out_cap) {
        w->out_cap = 2 * (w->out_len + need);
        w->out = realloc(w->out, w->out_cap);
    }
    char *o = w->out + w->out_len;
    o += sprintf(o, "HPUB %s %s %d %d\r\n", subject, reply, hl, hl + size);
    memcpy(o, hdr, (size_t)hl);
    o += hl;
    memcpy(o, payload, (size_t)size);
    o += size;
    *o++ = '\r'; /* the frame's end: not a string, no terminator */
    *o++ = '\n';
    w->out_len = (size_t)(o - w->out);
}

/* Write what the socket takes now. Returns -1 when the connection is gone. */
static int wire_flush(wire *w)
{
    size_t off = 0;
    while (off < w->out_len) {
        ssize_t r = send(w->fd, w->out + off, w->out_len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno == EINTR)
                continue;
            return -1;
        }
        off += (size_t)r;
    }
    memmove(w->out, w->out + off, w->out_len - off);
    w->out_len -= off;
    return 0;
}

/*
 * Parse what has been read: each MSG on the inbox is a PubAck matched by its
 * subject's last token; PING is answered; anything else the server sends
 * (INFO, +OK, -ERR) is skipped, a -ERR counted as an error. Returns -1 on a
 * frame that cannot be parsed.
 */
static int wire_parse(wire *w)
{
    size_t pos = 0;
    while (pos < w->in_len) {
        char *line = w->in + pos;
        char *crlf = memmem(line, w->in_len - pos, "\r\n", 2);
        if (!crlf)
            break;
        size_t line_len = (size_t)(crlf - line);
        if (line_len >= 4 && memcmp(line, "MSG ", 4) == 0) {
            /* MSG <subject> <sid> <bytes> (no reply on a PubAck) */
            char subj[160];
            unsigned sid = 0;
            size_t bytes = 0;
            if (line_len > 200 || sscanf(line, "MSG %159s %u %zu", subj, &sid, &bytes) != 3)
                return -1;
            size_t frame_end = line_len + 2 + bytes + 2;
            if (pos + frame_end > w->in_len)
                break; /* the payload is not all here yet */
            const char *d = crlf + 2;
            const char *dot = strrchr(subj, '.');
            uint64_t token = dot ? strtoull(dot + 1, NULL, 10) : 0;
            bool ok =
                bytes > 0 && memmem(d, bytes, "\"seq\":", 6) && !memmem(d, bytes, "\"error\"", 7);
            acked(S.sent_at[token % S.cap], ok, "PubAck with an error");
            pos += frame_end;
            continue;
        }
        if (line_len >= 5 && memcmp(line, "HMSG ", 5) == 0) {
            /* A status (no responders: the stream is not there): an error. */
            char subj[160];
            unsigned sid = 0;
            size_t hbytes = 0, bytes = 0;
            if (line_len > 200 ||
                sscanf(line, "HMSG %159s %u %zu %zu", subj, &sid, &hbytes, &bytes) != 4)
                return -1;
            size_t frame_end = line_len + 2 + bytes + 2;
            if (pos + frame_end > w->in_len)
                break;
            const char *dot = strrchr(subj, '.');
            uint64_t token = dot ? strtoull(dot + 1, NULL, 10) : 0;
            acked(S.sent_at[token % S.cap], false, "status instead of a PubAck");
            pos += frame_end;
            continue;
        }
        if (line_len == 4 && memcmp(line, "PING", 4) == 0) {
            if (w->out_len + 6 > w->out_cap) {
                w->out_cap *= 2;
                w->out = realloc(w->out, w->out_cap);
            }
            memcpy(w->out + w->out_len, "PONG\r\n", 6);
            w->out_len += 6;
        } else if (line_len >= 4 && memcmp(line, "-ERR", 4) == 0) {
            pthread_mutex_lock(&S.mu);
            S.errors++;
            snprintf(S.last_error, sizeof S.last_error, "%.*s", (int)line_len, line);
            pthread_mutex_unlock(&S.mu);
        }
        pos += line_len + 2;
    }
    memmove(w->in, w->in + pos, w->in_len - pos);
    w->in_len -= pos;
    return 0;
}

/*
 * The wire publisher: one thread, one poll loop. Each turn fills the window
 * (at most `inflight` waiting), writes, waits for the socket, reads and
 * parses every PubAck that came. Returns the number sent in the window.
 */
static int wire_run(wire *w, const char *subject, const char *inbox, int inflight, char *payload,
                    int size, int64_t t0, uint64_t *sent_measured, double *cpu_at_measure)
{
    uint64_t sent = 0;
    char reply[96], id[40];
    for (;;) {
        int64_t t = now_us();
        if (t >= S.t_measure && *cpu_at_measure == 0)
            *cpu_at_measure = cpu_seconds();
        if (t >= S.t_stop)
            break;
        while (S.inflight < inflight && w->out_len < (1 << 18)) {
            t = now_us();
            memcpy(payload, &t, sizeof t);
            snprintf(id, sizeof id, "%016llx%016llx", (unsigned long long)t0,
                     (unsigned long long)sent);
            snprintf(reply, sizeof reply, "%s.%llu", inbox, (unsigned long long)sent);
            S.sent_at[sent % S.cap] = t;
            wire_hpub(w, subject, reply, id, payload, size);
            S.inflight++;
            sent++;
            if (t >= S.t_measure)
                (*sent_measured)++;
        }
        if (wire_flush(w) != 0) {
            fprintf(stderr, "meridian-js-pub: the server closed the connection\n");
            return -1;
        }
        struct pollfd p = {.fd = w->fd, .events = POLLIN | (w->out_len ? POLLOUT : 0)};
        if (poll(&p, 1, 100) < 0 && errno != EINTR)
            return -1;
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            if (w->in_cap - w->in_len < 65536) {
                w->in_cap *= 2;
                w->in = realloc(w->in, w->in_cap);
            }
            ssize_t r = recv(w->fd, w->in + w->in_len, w->in_cap - w->in_len, MSG_DONTWAIT);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                fprintf(stderr, "meridian-js-pub: the server closed the connection\n");
                return -1;
            }
            if (r > 0) {
                w->in_len += (size_t)r;
                if (wire_parse(w) != 0) {
                    fprintf(stderr, "meridian-js-pub: a frame from the server cannot be read\n");
                    return -1;
                }
            }
        }
    }
    return 0;
}

/* Drain the last PubAcks of the wire publisher (at most 5 s). */
static void wire_drain(wire *w)
{
    int64_t end = now_us() + 5000000;
    while (S.inflight > 0 && now_us() < end) {
        (void)wire_flush(w);
        struct pollfd p = {.fd = w->fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t r = recv(w->fd, w->in + w->in_len, w->in_cap - w->in_len, MSG_DONTWAIT);
        if (r <= 0)
            break;
        w->in_len += (size_t)r;
        if (wire_parse(w) != 0)
            break;
    }
}

static void usage(FILE *f)
{
    (void)fputs(
        "usage: meridian-js-pub --url nats://HOST:PORT [--region R] [--mode raw|async|wire]\n"
        "         [--inflight N] [--size B] [--duration S] [--warmup S] [--json FILE]\n",
        f);
}

int main(int argc, char **argv)
{
    const char *url = NULL, *region = "bench", *mode = "raw", *json_path = NULL;
    int inflight = 1024, size = 330;
    double duration = 10, warmup = 2;
    static const struct option opts[] = {
        {"url", required_argument, 0, 'u'},    {"region", required_argument, 0, 'r'},
        {"mode", required_argument, 0, 'm'},   {"inflight", required_argument, 0, 'i'},
        {"size", required_argument, 0, 's'},   {"duration", required_argument, 0, 'd'},
        {"warmup", required_argument, 0, 'w'}, {"json", required_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'u':
            url = optarg;
            break;
        case 'r':
            region = optarg;
            break;
        case 'm':
            mode = optarg;
            break;
        case 'i':
            inflight = atoi(optarg);
            break;
        case 's':
            size = atoi(optarg);
            break;
        case 'd':
            duration = atof(optarg);
            break;
        case 'w':
            warmup = atof(optarg);
            break;
        case 'j':
            json_path = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    bool raw = strcmp(mode, "raw") == 0, on_wire = strcmp(mode, "wire") == 0;
    if (!url || (!raw && !on_wire && strcmp(mode, "async") != 0) || inflight < 1 || size < 8 ||
        duration <= 0 || warmup < 0) {
        usage(stderr);
        return 2;
    }

    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    natsStatus s = natsConnection_ConnectTo(&nc, url);
    if (s != NATS_OK) {
        fprintf(stderr, "meridian-js-pub: connect %s: %s\n", url, natsStatus_GetText(s));
        return 1;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    if (!raw && !on_wire) {
        jo.PublishAsync.AckHandler = on_async_ack;
        jo.PublishAsync.MaxPending = inflight;
    }
    s = natsConnection_JetStream(&js, nc, &jo);
    mr_stream_config sc;
    mr_stream_config_init(&sc);
    char err[256] = "";
    if (s != NATS_OK || mr_stream_ensure(js, region, &sc, err, sizeof err) != 0) {
        fprintf(stderr, "meridian-js-pub: stream: %s\n", err[0] ? err : natsStatus_GetText(s));
        return 1;
    }
    S.cap = 1;
    while (S.cap < (size_t)inflight * 2)
        S.cap *= 2;
    S.sent_at = calloc(S.cap, sizeof *S.sent_at);
    lg_hist_init(&S.lat);
    char inbox[64];
    snprintf(inbox, sizeof inbox, "_INBOX.jspub%ld", (long)now_us());
    natsSubscription *sub = NULL;
    if (raw) {
        char wild[80];
        snprintf(wild, sizeof wild, "%s.*", inbox);
        s = natsConnection_Subscribe(&sub, nc, wild, on_raw_ack, NULL);
        if (s == NATS_OK)
            s = natsSubscription_SetPendingLimits(sub, -1, -1);
        if (s == NATS_OK)
            s = natsConnection_Flush(nc);
        if (s != NATS_OK) {
            fprintf(stderr, "meridian-js-pub: inbox: %s\n", natsStatus_GetText(s));
            return 1;
        }
    }

    char subject[96];
    snprintf(subject, sizeof subject, "meridian.msg.%s.jspub", region);
    char *payload = malloc((size_t)size);
    memset(payload, 'x', (size_t)size);
    int64_t t0 = now_us();
    S.t_measure = t0 + (int64_t)(warmup * 1e6);
    S.t_stop = S.t_measure + (int64_t)(duration * 1e6);
    uint64_t sent = 0, sent_measured = 0;
    char reply[96], id[40];
    wire w = {.fd = -1};
    if (on_wire && wire_open(&w, url, inbox, err, sizeof err) != 0) {
        /* libnats made the stream; the publishes and PubAcks go over our own connection. */
        fprintf(stderr, "meridian-js-pub: %s\n", err);
        return 1;
    }
    /* The client's CPU over the measured window (every thread of it, libnats' included). */
    double cpu_at_measure = 0, cpu_at_stop = 0;
    if (on_wire) {
        if (wire_run(&w, subject, inbox, inflight, payload, size, t0, &sent_measured,
                     &cpu_at_measure) != 0)
            return 1;
        cpu_at_stop = cpu_seconds();
        wire_drain(&w);
    }
    for (; !on_wire;) {
        int64_t t = now_us();
        if (t >= S.t_measure && cpu_at_measure == 0)
            cpu_at_measure = cpu_seconds();
        if (t >= S.t_stop) {
            cpu_at_stop = cpu_seconds();
            break;
        }
        pthread_mutex_lock(&S.mu);
        while (S.inflight >= inflight)
            pthread_cond_wait(&S.cv, &S.mu);
        S.inflight++;
        pthread_mutex_unlock(&S.mu);
        t = now_us();
        memcpy(payload, &t, sizeof t);
        snprintf(id, sizeof id, "%016llx%016llx", (unsigned long long)t0, (unsigned long long)sent);
        natsMsg *msg = NULL;
        if (raw) {
            snprintf(reply, sizeof reply, "%s.%llu", inbox, (unsigned long long)sent);
            S.sent_at[sent % S.cap] = t;
        }
        s = natsMsg_Create(&msg, subject, raw ? reply : NULL, payload, size);
        if (s == NATS_OK)
            s = natsMsgHeader_Set(msg, "Nats-Msg-Id", id);
        if (s == NATS_OK)
            s = raw ? natsConnection_PublishMsg(nc, msg) : js_PublishMsgAsync(js, &msg, NULL);
        natsMsg_Destroy(msg);
        if (s != NATS_OK) {
            acked(t, false, natsStatus_GetText(s));
            continue;
        }
        sent++;
        if (t >= S.t_measure)
            sent_measured++;
    }
    /* Let the last PubAcks come (at most 5 s). */
    int64_t drain_end = now_us() + 5000000;
    pthread_mutex_lock(&S.mu);
    while (!on_wire && S.inflight > 0 && now_us() < drain_end) {
        pthread_mutex_unlock(&S.mu);
        nats_Sleep(10);
        pthread_mutex_lock(&S.mu);
    }
    uint64_t acks = S.acks_measured, errors = S.errors;
    lg_hist lat = S.lat;
    pthread_mutex_unlock(&S.mu);

    double rate = (double)acks / duration;
    /* Client CPU per acknowledged publish, in microseconds (0 when nothing was acknowledged). */
    double cpu_per_ack_us = acks ? (cpu_at_stop - cpu_at_measure) * 1e6 / (double)acks : 0;
    printf("\nmeridian-js-pub %s: inflight %d, %d-byte payloads, stream of region %s\n", mode,
           inflight, size, region);
    printf("  %-26s %.0f /s (%llu in %.1f s; %llu sent)\n", "acknowledged publishes", rate,
           (unsigned long long)acks, duration, (unsigned long long)sent_measured);
    printf("  %-26s p50 %8.3f  p90 %8.3f  p99 %8.3f  max %8.3f ms\n", "publish-to-ack latency",
           lg_hist_quantile(&lat, 0.5) / 1e3, lg_hist_quantile(&lat, 0.9) / 1e3,
           lg_hist_quantile(&lat, 0.99) / 1e3, (double)lat.max_us / 1e3);
    printf("  %-26s %.1f us per acknowledged publish (%.0f %% of a core)\n", "client CPU",
           cpu_per_ack_us, (cpu_at_stop - cpu_at_measure) * 100 / duration);
    printf("  %-26s %llu%s%s\n", "errors", (unsigned long long)errors, errors ? ", last: " : "",
           errors ? S.last_error : "");
    if (json_path) {
        FILE *f = fopen(json_path, "w");
        if (!f) {
            perror(json_path);
            return 1;
        }
        fprintf(f,
                "{\"mode\": \"%s\", \"inflight\": %d, \"size\": %d, \"duration_s\": %.1f,\n"
                " \"acks_per_s\": %.1f, \"acks_measured\": %llu, \"errors\": %llu,\n"
                " \"client_cpu_us_per_ack\": %.2f,\n"
                " \"latency\": {\"p50_us\": %llu, \"p90_us\": %llu, \"p99_us\": %llu, "
                "\"max_us\": %llu}}\n",
                mode, inflight, size, duration, rate, (unsigned long long)acks,
                (unsigned long long)errors, cpu_per_ack_us,
                (unsigned long long)lg_hist_quantile(&lat, 0.5),
                (unsigned long long)lg_hist_quantile(&lat, 0.9),
                (unsigned long long)lg_hist_quantile(&lat, 0.99), (unsigned long long)lat.max_us);
        if (fclose(f) != 0) {
            perror(json_path);
            return 1;
        }
    }
    if (w.fd >= 0)
        close(w.fd);
    free(w.out);
    free(w.in);
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    free(payload);
    free(S.sent_at);
    nats_Close();
    return errors && !acks ? 1 : 0;
}
