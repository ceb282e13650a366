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
 * Two ways to publish, both measured (--mode):
 *   raw    natsConnection_PublishMsg to the stream subject with a reply
 *          subject on one wildcard inbox; PubAcks matched by that subject
 *          (what the relay does)
 *   async  libnats' js_PublishMsgAsync with an ack handler
 *
 *   meridian-js-pub --url nats://127.0.0.1:4222 [--region bench] [--mode raw|async]
 *                   [--inflight 1024] [--size 330] [--duration 10] [--warmup 2]
 *                   [--json FILE]
 */
#include "lg_hist.h"
#include "mr_stream.h"

#include <getopt.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static void usage(FILE *f)
{
    (void)fputs("usage: meridian-js-pub --url nats://HOST:PORT [--region R] [--mode raw|async]\n"
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
    bool raw = strcmp(mode, "raw") == 0;
    if (!url || (!raw && strcmp(mode, "async") != 0) || inflight < 1 || size < 8 || duration <= 0 ||
        warmup < 0) {
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
    if (!raw) {
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
    for (;;) {
        int64_t t = now_us();
        if (t >= S.t_stop)
            break;
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
    while (S.inflight > 0 && now_us() < drain_end) {
        pthread_mutex_unlock(&S.mu);
        nats_Sleep(10);
        pthread_mutex_lock(&S.mu);
    }
    uint64_t acks = S.acks_measured, errors = S.errors;
    lg_hist lat = S.lat;
    pthread_mutex_unlock(&S.mu);

    double rate = (double)acks / duration;
    printf("\nmeridian-js-pub %s: inflight %d, %d-byte payloads, stream of region %s\n", mode,
           inflight, size, region);
    printf("  %-26s %.0f /s (%llu in %.1f s; %llu sent)\n", "acknowledged publishes", rate,
           (unsigned long long)acks, duration, (unsigned long long)sent_measured);
    printf("  %-26s p50 %8.3f  p90 %8.3f  p99 %8.3f  max %8.3f ms\n", "publish-to-ack latency",
           lg_hist_quantile(&lat, 0.5) / 1e3, lg_hist_quantile(&lat, 0.9) / 1e3,
           lg_hist_quantile(&lat, 0.99) / 1e3, (double)lat.max_us / 1e3);
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
                " \"latency\": {\"p50_us\": %llu, \"p90_us\": %llu, \"p99_us\": %llu, "
                "\"max_us\": %llu}}\n",
                mode, inflight, size, duration, rate, (unsigned long long)acks,
                (unsigned long long)errors, (unsigned long long)lg_hist_quantile(&lat, 0.5),
                (unsigned long long)lg_hist_quantile(&lat, 0.9),
                (unsigned long long)lg_hist_quantile(&lat, 0.99), (unsigned long long)lat.max_us);
        if (fclose(f) != 0) {
            perror(json_path);
            return 1;
        }
    }
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    free(payload);
    free(S.sent_at);
    nats_Close();
    return errors && !acks ? 1 : 0;
}
