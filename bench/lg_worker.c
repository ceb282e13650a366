/*
 * Load generator worker: the per-connection protocol (Meridian's hello /
 * join / publish, or raw frames in generic mode), connection pacing, and the
 * publishers' schedule.
 *
 * Latency is coordinated-omission aware: each publisher has a fixed
 * schedule (start + k * interval) and every message carries its *intended*
 * send time, not the moment the generator got around to sending it. When
 * the server (or the generator) falls behind, the backlog shows up as
 * latency instead of silently lowering the offered rate. All processes read
 * CLOCK_MONOTONIC, which is one clock for the whole machine, so a worker can
 * time a message another worker published.
 *
 * Roles of the global index space: subscribers 0..conns-1 belong to worker
 * g % workers; publisher p belongs to worker p % workers. Subscriber g is in
 * room g % rooms; publisher p publishes round-robin to the rooms r with
 * r % publishers == p (or room p % rooms when there are more publishers
 * than rooms).
 */
#include "lg_worker.h"

#include "mr_alloc.h"
#include "mr_buf.h"
#include "mr_jwt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

enum { ROLE_IDLE, ROLE_SUB, ROLE_PUB, ROLE_CHURN };
enum { APP_NONE, APP_HELLO, APP_JOINING, APP_READY };

typedef struct lg_pub lg_pub;

typedef struct lg_client {
    lg_conn c; /* first member: epoll data points at the connection */
    uint32_t gidx;
    uint8_t role;
    uint8_t app;
    uint8_t was_ready;
    uint16_t joins_pending;
    int64_t t_start;
    lg_pub *pub;
} lg_client;

struct lg_pub {
    lg_client *cl;
    int64_t next_us;
    double interval_us;
    double phase_us;
    uint64_t seq;   /* messages sent: the mid */
    uint64_t sched; /* schedule slots used, sent or not */
    int started;
    uint32_t first_room, room_step, nrooms, cur;
    int outstanding;
};

typedef struct worker {
    const lg_opts *o;
    lg_shared *sh;
    int id;
    lg_loop loop;
    lg_wstats st;
    lg_client *clients;
    int nclients;
    int next_start; /* next client to connect */
    int inflight;
    lg_pub *pubs;
    int npubs;
    lg_url *room_urls;  /* generic mode, --url with {{room}}: subscriber URLs by room */
    char *shared_token; /* when all subscribers share one user */
    char *pad;
    mr_buf out;
    int64_t t0;
    double connect_budget;
    int64_t last_tick;
    uint64_t churn_seq;
} worker;

static worker W;

int64_t lg_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int32_t phase(void)
{
    return __atomic_load_n(&W.sh->phase, __ATOMIC_ACQUIRE);
}

__attribute__((format(printf, 1, 2))) static void set_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(W.st.last_error, sizeof W.st.last_error, fmt, ap); /* cut to the buffer: fine */
    va_end(ap);
}

/* ---- role assignment ---- */

static int count_for(int total, int workers, int id)
{
    return total / workers + (id < total % workers ? 1 : 0);
}

static int n_subs(const lg_opts *o)
{
    return o->mode == LG_MODE_PUBLISH ? 0 : o->conns;
}

static int n_pubs(const lg_opts *o)
{
    return (o->mode == LG_MODE_FANOUT || o->mode == LG_MODE_PUBLISH || o->mode == LG_MODE_GENERIC)
               ? o->publishers
               : 0;
}

int lg_worker_conn_count(const lg_opts *o, int id)
{
    return count_for(n_subs(o), o->workers, id) + count_for(n_pubs(o), o->workers, id);
}

static void room_name(char *out, size_t cap, uint32_t r)
{
    snprintf(out, cap, "%s-%u", W.o->room_prefix, r);
}

/* ---- tokens and frames ---- */

static char *mint(const char *sub)
{
    json_t *claims = json_pack("{s:s, s:I}", "sub", sub, "exp", (json_int_t)time(NULL) + 86400);
    char *tok = mr_jwt_sign((const unsigned char *)W.o->secret, strlen(W.o->secret), claims);
    json_decref(claims);
    return tok;
}

static void send_hello(lg_client *cl)
{
    char sub[64];
    char *tok;
    if (cl->role == ROLE_PUB) {
        snprintf(sub, sizeof sub, "lg-pub-%u", cl->gidx);
        tok = mint(sub);
    } else if (cl->role == ROLE_SUB && W.o->users > 0) {
        if (W.o->users == 1) {
            if (!W.shared_token)
                W.shared_token = mint("lg-sub");
            tok = mr_strdup(W.shared_token);
        } else {
            snprintf(sub, sizeof sub, "lg-sub-%u", cl->gidx % (uint32_t)W.o->users);
            tok = mint(sub);
        }
    } else {
        snprintf(sub, sizeof sub, "lg-%d-%u", W.id, cl->gidx);
        tok = mint(sub);
    }
    mr_buf_reset(&W.out);
    mr_buf_printf(&W.out, "{\"type\":\"hello\",\"id\":1,\"token\":\"%s\"%s}", tok,
                  cl->role == ROLE_PUB && W.o->no_echo ? ",\"echo\":false" : "");
    free(tok);
    cl->app = APP_HELLO;
    lg_conn_send(&cl->c, W.out.data, W.out.len);
}

static void send_join(lg_client *cl, uint32_t room)
{
    char rn[160];
    room_name(rn, sizeof rn, room);
    mr_buf_reset(&W.out);
    mr_buf_printf(&W.out, "{\"type\":\"join\",\"id\":2,\"room\":\"%s\"}", rn);
    lg_conn_send(&cl->c, W.out.data, W.out.len);
}

/* Replace {{room}} and {{payload}} in a generic template. */
static void expand(mr_buf *b, const char *tmpl, const char *room, const char *payload)
{
    for (const char *p = tmpl; *p;) {
        if (strncmp(p, "{{room}}", 8) == 0) {
            mr_buf_puts(b, room);
            p += 8;
        } else if (strncmp(p, "{{payload}}", 11) == 0) {
            mr_buf_puts(b, payload);
            p += 11;
        } else {
            mr_buf_putc(b, *p++);
        }
    }
}

static void mark_ready(lg_client *cl)
{
    cl->app = APP_READY;
    int64_t now = lg_now_us();
    lg_hist_add(&W.st.conn, now - cl->t_start);
    if (!cl->was_ready) {
        cl->was_ready = 1;
        W.st.ctr[LG_C_READY]++;
        W.inflight--;
    }
    if (cl->role == ROLE_CHURN) {
        /* One cycle done: say goodbye now; the tick starts the next one. */
        W.st.ctr[LG_C_CYCLES]++;
        if (phase() == LG_PHASE_RUN && now >= W.sh->t_measure_us && now < W.sh->t_stop_us)
            W.st.ctr[LG_C_CYCLES_M]++;
        lg_conn_close(&cl->c, 1000);
        W.st.ctr[LG_C_LIVE]--;
        cl->app = APP_NONE;
        cl->was_ready = 0;
    }
}

/* Joins a publisher must make: its rooms, or nothing in generic mode. */
static void start_joins(lg_client *cl)
{
    const lg_opts *o = W.o;
    if (cl->role == ROLE_PUB) {
        lg_pub *p = cl->pub;
        cl->joins_pending = (uint16_t)p->nrooms;
        cl->app = APP_JOINING;
        for (uint32_t i = 0; i < p->nrooms; i++)
            send_join(cl, p->first_room + i * p->room_step);
        return;
    }
    if (cl->role == ROLE_SUB || (cl->role == ROLE_IDLE && o->join) ||
        (cl->role == ROLE_CHURN && o->join)) {
        cl->joins_pending = 1;
        cl->app = APP_JOINING;
        send_join(cl, cl->gidx % (uint32_t)(o->rooms > 0 ? o->rooms : 1));
        return;
    }
    mark_ready(cl);
}

/* ---- incoming frames ---- */

static int64_t find_int(const char *p, size_t n, const char *key, size_t kl, int *ok)
{
    const char *k = memmem(p, n, key, kl);
    *ok = 0;
    if (!k)
        return 0;
    const char *v = k + kl, *end = p + n;
    while (v < end && (*v == ' ' || *v == '"'))
        v++;
    int64_t x = 0;
    const char *d = v;
    while (d < end && *d >= '0' && *d <= '9')
        x = x * 10 + (*d++ - '0');
    *ok = d > v;
    return x;
}

static void got_delivery(lg_client *cl, const char *p, size_t n)
{
    int ok;
    int64_t t = find_int(p, n, "\"lg_t\":", 7, &ok);
    if (!ok)
        return;
    if (cl->role != ROLE_SUB) {
        W.st.ctr[LG_C_SELF]++;
        return;
    }
    W.st.ctr[LG_C_DELIV]++;
    if (t >= W.sh->t_measure_us && t < W.sh->t_stop_us) {
        W.st.ctr[LG_C_DELIV_M]++;
        lg_hist_add(&W.st.lat, lg_now_us() - t);
    }
}

static void pub_send(lg_pub *p, int64_t intended);

static void got_ack(lg_client *cl, const char *p, size_t n)
{
    int ok;
    int64_t t = find_int(p, n, "\"id\":", 5, &ok);
    W.st.ctr[LG_C_ACKS]++;
    if (ok && t >= W.sh->t_measure_us && t < W.sh->t_stop_us) {
        W.st.ctr[LG_C_ACKS_M]++;
        if (W.o->mode == LG_MODE_PUBLISH)
            lg_hist_add(&W.st.lat, lg_now_us() - t);
    }
    lg_pub *pb = cl->pub;
    if (pb && pb->outstanding > 0)
        pb->outstanding--;
    /* Closed loop: the window refills as acks arrive. */
    if (pb && W.o->mode == LG_MODE_PUBLISH && W.o->rate <= 0 && phase() == LG_PHASE_RUN)
        pub_send(pb, lg_now_us());
}

static void text_cb(lg_conn *c, const char *p, size_t n)
{
    lg_client *cl = (lg_client *)c;
    if (W.o->mode == LG_MODE_GENERIC) {
        got_delivery(cl, p, n);
        return;
    }
    const char *t = memmem(p, n < 48 ? n : 48, "\"type\":\"", 8);
    if (!t)
        t = memmem(p, n, "\"type\":\"", 8);
    if (!t || t + 9 >= p + n)
        return;
    t += 8;
    switch (t[0]) {
    case 'm': /* message */
    case 's': /* signal */
        got_delivery(cl, p, n);
        return;
    case 'a': /* ack */
        got_ack(cl, p, n);
        return;
    case 'w': /* welcome */
        if (cl->app == APP_HELLO)
            start_joins(cl);
        return;
    case 'j': /* joined */
        if (cl->app == APP_JOINING && --cl->joins_pending == 0)
            mark_ready(cl);
        return;
    case 'e': { /* error */
        W.st.ctr[LG_C_ERRORS]++;
        const char *code = memmem(p, n, "\"code\":\"", 8);
        if (code) {
            const char *e = memchr(code + 8, '"', (size_t)(p + n - code - 8));
            int cl_len = e ? (int)(e - code - 8) : 0;
            char tmp[64];
            snprintf(tmp, sizeof tmp, "%.*s", cl_len, code + 8);
            set_error("error frame: %s (%d so far)", tmp, (int)W.st.ctr[LG_C_ERRORS]);
        }
        if (cl->pub && cl->pub->outstanding > 0 && memmem(p, n, "\"id\":", 5))
            cl->pub->outstanding--;
        return;
    }
    default:
        return;
    }
}

static void http_cb(lg_conn *c, int status)
{
    lg_client *cl = (lg_client *)c;
    if (status >= 200 && status < 300) {
        W.st.ctr[LG_C_ACKS]++;
    } else {
        W.st.ctr[LG_C_ERRORS]++;
        set_error("HTTP status %s%d", "", status);
    }
    if (cl->pub && cl->pub->outstanding > 0)
        cl->pub->outstanding--;
}

static void open_cb(lg_conn *c)
{
    lg_client *cl = (lg_client *)c;
    W.st.ctr[LG_C_OPEN]++;
    W.st.ctr[LG_C_LIVE]++;
    if (W.o->mode != LG_MODE_GENERIC) {
        send_hello(cl);
        return;
    }
    if (cl->role == ROLE_SUB && W.o->sub_msg) {
        char rn[160];
        room_name(rn, sizeof rn, cl->gidx % (uint32_t)W.o->rooms);
        mr_buf_reset(&W.out);
        expand(&W.out, W.o->sub_msg, rn, "");
        lg_conn_send(c, W.out.data, W.out.len);
        if (c->state != LG_CONN_OPEN)
            return;
    }
    mark_ready(cl);
}

static void close_cb(lg_conn *c, int code, const char *why)
{
    lg_client *cl = (lg_client *)c;
    if (cl->app == APP_READY || cl->was_ready) {
        /* Our own churn closes do not come here; this is the server's doing. */
        W.st.ctr[LG_C_DROPPED]++;
        set_error("connection dropped: %s (close code %d)", why, code);
    } else {
        W.st.ctr[LG_C_FAILED]++;
        W.inflight--;
        set_error("connect failed: %s (code %d)", why, code);
    }
    if (cl->app != APP_NONE && W.st.ctr[LG_C_LIVE] > 0)
        W.st.ctr[LG_C_LIVE]--;
    cl->app = APP_NONE;
    cl->was_ready = 0;
}

static const lg_conn_cbs cbs = {open_cb, text_cb, close_cb, http_cb};

/* ---- publishing ---- */

static void pub_send(lg_pub *p, int64_t intended)
{
    const lg_opts *o = W.o;
    lg_client *cl = p->cl;
    if (cl->c.state != LG_CONN_OPEN || cl->app != APP_READY)
        return;
    uint32_t room = p->first_room + p->cur * p->room_step;
    p->cur = (p->cur + 1) % p->nrooms;
    char rn[160], payload[64];
    room_name(rn, sizeof rn, room);
    mr_buf_reset(&W.out);
    const char *path = NULL; /* generic, HTTP with {{room}}: this message's own path */
    char pathbuf[512];
    if (o->mode == LG_MODE_GENERIC) {
        mr_buf b = MR_BUF_INIT;
        snprintf(payload, sizeof payload, "%lld", (long long)intended);
        mr_buf_printf(&b, "{\"lg_t\":%lld,\"p\":\"%s\"}", (long long)intended, W.pad);
        expand(&W.out, o->pub_tmpl, rn, b.data);
        mr_buf_free(&b);
        if (cl->c.url->http && strstr(cl->c.url->path, "{{room}}")) {
            mr_buf pb = MR_BUF_INIT;
            expand(&pb, cl->c.url->path, rn, "");
            snprintf(pathbuf, sizeof pathbuf, "%s", pb.data);
            mr_buf_free(&pb);
            path = pathbuf;
        }
    } else if (o->signal) {
        /* No id, no mid: a signal has no ack; its delivery is timed like a message's. */
        mr_buf_printf(&W.out,
                      "{\"type\":\"signal\",\"room\":\"%s\",\"data\":{\"lg_t\":%lld,\"p\":\"%s\"}}",
                      rn, (long long)intended, W.pad);
    } else {
        mr_buf_printf(&W.out,
                      "{\"type\":\"publish\",\"id\":%lld,\"room\":\"%s\",\"mid\":\"%llu\","
                      "\"data\":{\"lg_t\":%lld,\"p\":\"%s\"}}",
                      (long long)intended, rn, (unsigned long long)p->seq, (long long)intended,
                      W.pad);
    }
    p->seq++;
    p->outstanding++;
    W.st.ctr[LG_C_SENT]++;
    if (intended >= W.sh->t_measure_us && intended < W.sh->t_stop_us)
        W.st.ctr[LG_C_SENT_M]++;
    if (path)
        lg_conn_post(&cl->c, path, W.out.data, W.out.len);
    else
        lg_conn_send(&cl->c, W.out.data, W.out.len);
}

/*
 * Send every message whose intended time has come. A publisher that fell
 * behind catches up in bursts of at most 64 per pass, so one slow socket
 * cannot starve the loop; its messages keep their intended times.
 */
static int64_t pub_tick(int64_t now)
{
    int64_t next = now + 5000;
    if (W.o->rate <= 0)
        return next;
    for (int i = 0; i < W.npubs; i++) {
        lg_pub *p = &W.pubs[i];
        if (p->next_us == 0)
            p->next_us = W.sh->t_run_us + (int64_t)p->phase_us;
        for (int k = 0; k < 64 && p->next_us <= now && p->next_us < W.sh->t_stop_us; k++) {
            /* Do not pile frames onto a socket the server is not reading. */
            if (lg_conn_pending(&p->cl->c) > (1u << 20))
                break;
            pub_send(p, p->next_us);
            p->sched++;
            p->next_us =
                W.sh->t_run_us + (int64_t)(p->phase_us + (double)p->sched * p->interval_us);
        }
        if (p->next_us < next)
            next = p->next_us;
    }
    return next;
}

/* ---- connection pacing ---- */

static uint32_t source_addr(uint64_t k)
{
    if (W.o->src_count == 0)
        return 0;
    return htonl(W.o->src_base + (uint32_t)(k % W.o->src_count));
}

static void start_client(lg_client *cl, uint64_t addr_key)
{
    const lg_opts *o = W.o;
    const lg_url *u;
    if (o->mode == LG_MODE_GENERIC && cl->role == ROLE_PUB)
        u = &o->pub_urls[cl->gidx % (uint32_t)o->npub_urls];
    else if (W.room_urls && cl->role == ROLE_SUB)
        u = &W.room_urls[cl->gidx % (uint32_t)o->rooms];
    else
        u = &o->urls[cl->gidx % (uint32_t)o->nurls];
    cl->app = APP_NONE;
    cl->was_ready = 0;
    cl->t_start = lg_now_us();
    W.st.ctr[LG_C_STARTED]++;
    W.inflight++;
    if (lg_conn_start(&W.loop, &cl->c, u, source_addr(addr_key)) != 0) {
        W.st.ctr[LG_C_FAILED]++;
        W.inflight--;
        set_error("connect: %s (errno %d)", strerror(errno), errno);
    }
}

/*
 * Open connections at the configured rate with a bounded number of
 * handshakes in flight: a burst of 20,000 SYNs would overflow the server's
 * accept backlog and turn into retransmission stalls, not a measurement.
 */
static void pace_connects(int64_t now)
{
    const lg_opts *o = W.o;
    double per_worker = o->connect_rate / o->workers;
    W.connect_budget += per_worker * (double)(now - W.last_tick) / 1e6;
    if (W.connect_budget > per_worker / 10 + 1)
        W.connect_budget = per_worker / 10 + 1;
    W.last_tick = now;
    if (o->mode == LG_MODE_CHURN) {
        if (phase() != LG_PHASE_RUN || now >= W.sh->t_stop_us)
            return;
        /* Churn: every idle slot starts its next cycle, within the rate. */
        for (int i = 0; i < W.nclients && W.inflight < o->inflight; i++) {
            lg_client *cl = &W.clients[i];
            if (cl->c.state != LG_CONN_IDLE)
                continue;
            if (o->rate > 0) {
                if (W.connect_budget < 1)
                    break;
                W.connect_budget -= 1;
            }
            start_client(cl, W.churn_seq++ * (uint64_t)o->workers + (uint64_t)W.id);
        }
        return;
    }
    while (W.next_start < W.nclients && W.inflight < o->inflight && W.connect_budget >= 1) {
        lg_client *cl = &W.clients[W.next_start++];
        W.connect_budget -= 1;
        start_client(cl, cl->gidx + (cl->role == ROLE_PUB ? 7919u : 0u));
    }
}

/* ---- setup, stats, loop ---- */

static void setup(void)
{
    const lg_opts *o = W.o;
    int ns = count_for(n_subs(o), o->workers, W.id);
    int np = count_for(n_pubs(o), o->workers, W.id);
    W.nclients = ns + np;
    W.clients = mr_calloc((size_t)(W.nclients ? W.nclients : 1), sizeof *W.clients);
    W.pubs = mr_calloc((size_t)(np ? np : 1), sizeof *W.pubs);
    W.npubs = np;
    int role = o->mode == LG_MODE_CONNECT ? ROLE_IDLE
               : o->mode == LG_MODE_CHURN ? ROLE_CHURN
                                          : ROLE_SUB;
    /* Publishers first: they need the longest to join all their rooms. */
    int k = 0;
    double total_rate = o->rate;
    int P = o->publishers > 0 ? o->publishers : 1;
    uint32_t rooms = (uint32_t)(o->rooms > 0 ? o->rooms : 1);
    for (int i = 0; i < np; i++, k++) {
        lg_client *cl = &W.clients[k];
        lg_pub *p = &W.pubs[i];
        cl->c.fd = -1;
        cl->gidx = (uint32_t)(W.id + i * o->workers);
        cl->role = ROLE_PUB;
        cl->pub = p;
        p->cl = cl;
        if (o->mode == LG_MODE_PUBLISH && o->rooms <= 0) {
            /* Each publisher in a room of its own: measures the publish path only. */
            p->first_room = 1000000 + cl->gidx;
            p->room_step = 1;
            p->nrooms = 1;
        } else if (rooms >= (uint32_t)P) {
            p->first_room = cl->gidx;
            p->room_step = (uint32_t)P;
            p->nrooms = (rooms - cl->gidx + (uint32_t)P - 1) / (uint32_t)P;
        } else {
            p->first_room = cl->gidx % rooms;
            p->room_step = 1;
            p->nrooms = 1;
        }
        if (o->mode == LG_MODE_GENERIC)
            p->nrooms = p->nrooms ? p->nrooms : 1;
        p->interval_us = total_rate > 0 ? 1e6 * P / total_rate : 0;
        /* Stagger publishers evenly over one interval. */
        p->phase_us = p->interval_us * cl->gidx / P;
    }
    for (int i = 0; i < ns; i++, k++) {
        lg_client *cl = &W.clients[k];
        cl->c.fd = -1;
        cl->gidx = (uint32_t)(W.id + i * o->workers);
        cl->role = (uint8_t)role;
    }
    /*
     * Generic mode: a subscriber URL with {{room}} names the room in its path
     * (nchan: /sub/{{room}}); subscriber g connects to room g % rooms. A
     * publisher's HTTP URL with {{room}} POSTs each message to its room's path.
     */
    if (o->mode == LG_MODE_GENERIC && strstr(o->urls[0].path, "{{room}}")) {
        W.room_urls = mr_calloc((size_t)o->rooms, sizeof *W.room_urls);
        for (int r = 0; r < o->rooms; r++) {
            char rn[160];
            room_name(rn, sizeof rn, (uint32_t)r);
            W.room_urls[r] = o->urls[r % o->nurls];
            mr_buf pb = MR_BUF_INIT;
            expand(&pb, o->urls[r % o->nurls].path, rn, "");
            snprintf(W.room_urls[r].path, sizeof W.room_urls[r].path, "%s", pb.data);
            mr_buf_free(&pb);
        }
    }
    /* Generic mode has no rooms of its own unless the templates use them. */
    int plen = o->size - 20 > 0 ? o->size - 20 : 1;
    W.pad = mr_malloc((size_t)plen + 1);
    memset(W.pad, 'x', (size_t)plen);
    W.pad[plen] = '\0';
}

static void publish_stats(int final)
{
    lg_wstats *dst = &W.sh->w[W.id];
    W.st.ctr[LG_C_BYTES_IN] = W.loop.bytes_in;
    W.st.ctr[LG_C_BYTES_OUT] = W.loop.bytes_out;
    for (int i = 0; i < LG_C_COUNT; i++)
        __atomic_store_n(&dst->ctr[i], W.st.ctr[i], __ATOMIC_RELAXED);
    if (final) {
        dst->lat = W.st.lat;
        dst->conn = W.st.conn;
        memcpy(dst->last_error, W.st.last_error, sizeof dst->last_error);
        __atomic_store_n(&dst->done, 1, __ATOMIC_RELEASE);
    }
}

void lg_worker_run(const lg_opts *o, lg_shared *sh, int id)
{
    W.o = o;
    W.sh = sh;
    W.id = id;
    lg_hist_init(&W.st.lat);
    lg_hist_init(&W.st.conn);
    if (lg_loop_init(&W.loop, &cbs) != 0) {
        snprintf(sh->w[id].last_error, sizeof sh->w[id].last_error, "epoll: %s", strerror(errno));
        sh->w[id].done = 1;
        _exit(1);
    }
    setup();
    W.last_tick = lg_now_us();
    int64_t last_pub = 0;
    struct epoll_event evs[512];
    for (;;) {
        int32_t ph = phase();
        if (ph == LG_PHASE_EXIT)
            break;
        int64_t now = lg_now_us();
        int64_t next = now + 10000;
        pace_connects(now);
        if (ph == LG_PHASE_RUN && now >= sh->t_run_us) {
            if (o->mode == LG_MODE_PUBLISH && o->rate <= 0) {
                for (int i = 0; i < W.npubs; i++) {
                    lg_pub *p = &W.pubs[i];
                    if (p->started || p->cl->app != APP_READY)
                        continue;
                    p->started = 1;
                    for (int k = 0; k < o->window; k++)
                        pub_send(p, lg_now_us());
                }
            } else {
                int64_t n2 = pub_tick(now);
                if (n2 < next)
                    next = n2;
            }
        } else if (ph == LG_PHASE_RUN && sh->t_run_us < next) {
            next = sh->t_run_us;
        }
        if (o->mode == LG_MODE_CHURN && next > now + 1000)
            next = now + 1000;
        int64_t wait = next - lg_now_us();
        if (wait < 0)
            wait = 0;
        struct timespec ts = {.tv_sec = wait / 1000000, .tv_nsec = (wait % 1000000) * 1000};
        int n = epoll_pwait2(W.loop.epfd, evs, 512, &ts, NULL);
        for (int i = 0; i < n; i++)
            lg_conn_event((lg_conn *)evs[i].data.ptr, evs[i].events);
        now = lg_now_us();
        if (now - last_pub >= 100000) {
            publish_stats(0);
            last_pub = now;
        }
    }
    publish_stats(1);
    _exit(0);
}
