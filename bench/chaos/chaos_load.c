/*
 * The chaos suite's load (chaos_load.h): P publishers and S subscribers
 * on one epoll loop, behaving like a client built on the SDKs
 * (clients/js/README.md, docs/protocol.md) would:
 *
 * - A publisher keeps an outbox. Every publish is an application call at a
 *   fixed rate, logged with the time of the call, whether or not the
 *   publisher is connected; it is sent when the publisher is connected and
 *   joined, and sent again with the same `mid` after every reconnect until
 *   its `ack` comes. A retryable error (`unavailable`, `rate_limited`,
 *   `internal`) resends after a delay. A publisher whose relay keeps
 *   answering `unavailable` or leaves a publish without ack too long (a
 *   relay cut off from NATS, or stopped) gives that relay up and reconnects
 *   to the next relay of the list: the same region's other relay, then the
 *   other regions.
 * - A subscriber joins every room of the phase with `since` = the highest
 *   contiguous seq it has seen (from `message` and `commit` frames), at
 *   first 0, again after every reconnect, and `have` = the msg_ids it got
 *   after `since`: without a seq (whose seq it has not learnt), or with a
 *   seq above `since` (commits come out of order: it may know 580 and not
 *   579), at most 1024, so that the resume sends their commits instead of
 *   the messages again. After `recovered:false` with a
 *   `last_seq` it continues after last_seq, as the JS SDK does.
 * - Both reconnect as the SDK does: full-jitter backoff from 500 ms, each
 *   attempt on the next URL, starting from the client's own relay after an
 *   outage (from the relay after the one given up for the failovers
 *   above); a silent connection gets a `ping` after the heartbeat interval
 *   and is dropped after twice that plus 5 s.
 *
 * At the end (SIGTERM, or max_seconds) publishing stops and the phase
 * settles: publishers keep resending until every publish is acked,
 * subscribers stay until they got every acked message, and history is read
 * from PostgreSQL until it holds them all, each bounded by settle_seconds.
 * Then the history rows of the phase's rooms go to the log and the
 * publishes still without ack are logged as given up.
 */
#include "chaos_load.h"

#include "lg_conn.h"
#include "mr_alloc.h"
#include "mr_jwt.h"
#include "mr_map.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

/* Request ids: publishes use their sequence number (1...), joins and pings these. */
#define ID_HELLO 1000000001
#define ID_PING  1000000002
#define ID_JOIN  1000000100

enum { C_WAIT, C_CONNECTING, C_HELLO, C_READY };

typedef struct pub_entry {
    int64_t pub_t;    /* the application's call */
    int64_t sent_t;   /* last send, -1 when it is not out on the current session */
    long sent_sess;   /* the session of that send */
    int64_t retry_at; /* resend after a retryable error at this time, 0 for none */
    int acked;
} pub_entry;

typedef struct room_state {
    unsigned char *seen; /* seqs known, by index */
    int64_t cap;
    int64_t contig;     /* highest seq with every seq up to it known */
    int64_t join_since; /* the `since` the current session's join sent */
    int joined;         /* `joined` received on the current session */
    mr_map pending;     /* msg_ids got as `message` without a seq, seq not known yet: `have` */
    mr_map above;       /* msg_ids got with a seq above contig (intptr_t seq): `have` too */
} room_state;

typedef struct client {
    lg_conn conn;
    int is_pub, idx;
    char name[16];
    char *token;
    int home, cur, base, attempt;
    long sess;
    int st;
    int64_t retry_at, conn_started, last_rx;
    int ping_sent, heartbeat_s;
    /* publisher */
    int room;
    int room_joined;
    pub_entry *out;
    long nout, cout, first_unacked;
    int64_t next_due;
    int unavail;
    /* subscriber */
    room_state *rs;
} client;

typedef struct got_rec {
    uint64_t subs; /* bit per subscriber that got it as a `message` */
    int acked;
    int room;
} got_rec;

static struct {
    const chaos_opts *o;
    lg_loop loop;
    lg_url urls[CHAOS_MAX_URLS];
    client *clients;
    int nclients;
    char rooms[64][140];
    char prefix[128];
    char *secret;
    size_t secret_len;
    FILE *log;
    struct timespec t0;
    mr_map got; /* normalised msg_id -> got_rec */
    uint64_t all_subs;
    int publishing;
    uint64_t rng;
    long acked_total;
} L;

static volatile sig_atomic_t sig_fault, sig_restored, sig_stop;

static void on_signal(int s)
{
    if (s == SIGUSR1)
        sig_fault = 1;
    else if (s == SIGUSR2)
        sig_restored = 1;
    else
        sig_stop++;
}

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)(t.tv_sec - L.t0.tv_sec) * 1000 + (t.tv_nsec - L.t0.tv_nsec) / 1000000;
}

static uint64_t rnd(void)
{
    uint64_t x = L.rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return L.rng = x;
}

static void ev(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void ev(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    /* A failed write stays in the stream's error flag, checked when the log
     * is closed: the run then fails rather than be counted from a short log. */
    (void)vfprintf(L.log, fmt, ap);
    va_end(ap);
    (void)fputc('\n', L.log);
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    if (L.o->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[chaos %6.1fs] ", (double)now_ms() / 1000.0);
    (void)vfprintf(stderr, fmt, ap); /* progress only */
    va_end(ap);
    (void)fputc('\n', stderr);
}

static void norm_id(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    for (; *in && n + 1 < cap; in++)
        if (*in != '-')
            out[n++] = (char)(*in >= 'A' && *in <= 'F' ? *in + 32 : *in);
    out[n] = '\0';
}

static got_rec *got_get(const char *msg_id, int room)
{
    char k[80];
    norm_id(msg_id, k, sizeof k);
    got_rec *g = mr_map_get(&L.got, k, strlen(k));
    if (!g) {
        g = mr_calloc(1, sizeof *g);
        g->room = room;
        mr_map_put(&L.got, k, strlen(k), g);
    }
    return g;
}

static int room_index(const char *room)
{
    for (int r = 0; r < L.o->rooms; r++)
        if (strcmp(L.rooms[r], room) == 0)
            return r;
    return -1;
}

/* ---- connections ---- */

static void send_json(client *c, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    lg_conn_send(&c->conn, s, strlen(s));
    free(s);
}

static void schedule_reconnect(client *c, int64_t now)
{
    int shift = c->attempt > 10 ? 10 : c->attempt;
    int64_t ceil = (int64_t)500 << shift;
    if (ceil > L.o->backoff_max_ms)
        ceil = L.o->backoff_max_ms;
    c->retry_at = now + (int64_t)(rnd() % (uint64_t)(ceil + 1));
    c->st = C_WAIT;
}

/* The session ended (the relay closed, the network failed or we gave it up). */
static void session_over(client *c, int code, const char *why, int soft)
{
    int64_t now = now_ms();
    if (c->sess > 0 && (c->st == C_READY))
        ev("close %" PRId64 " %s %ld %d", now, c->name, c->sess, code);
    if (c->st == C_READY) {
        say("%s: session %ld on %s ended: %d %s", c->name, c->sess, L.o->urls[c->cur], code, why);
        /* After a working connection the SDK starts again from its main URL. */
        c->base = soft ? c->cur + 1 : c->home;
        c->attempt = 0;
    } else {
        c->attempt++;
    }
    c->room_joined = 0;
    if (c->rs)
        for (int r = 0; r < L.o->rooms; r++)
            c->rs[r].joined = 0;
    if (soft) {
        c->st = C_WAIT;
        c->retry_at = now;
    } else {
        schedule_reconnect(c, now);
    }
}

/* Give the current connection up ourselves (no lg_conn callback follows). */
static void give_up(client *c, const char *why)
{
    say("%s: giving up %s: %s", c->name, L.o->urls[c->cur], why);
    lg_conn_close(&c->conn, 1000);
    session_over(c, -1, why, 1);
}

static void start_connect(client *c, int64_t now)
{
    c->cur = (c->base + c->attempt) % L.o->nurls;
    memset(&c->conn, 0, sizeof c->conn);
    c->conn.fd = -1;
    c->conn.owner = c;
    c->conn_started = now;
    c->st = C_CONNECTING;
    if (lg_conn_start(&L.loop, &c->conn, &L.urls[c->cur], 0) != 0) {
        c->attempt++;
        schedule_reconnect(c, now);
    }
}

static void on_open(lg_conn *conn)
{
    client *c = conn->owner;
    c->st = C_HELLO;
    send_json(c, json_pack("{s:s, s:i, s:s}", "type", "hello", "id", ID_HELLO, "token", c->token));
}

static void on_close(lg_conn *conn, int code, const char *why)
{
    session_over(conn->owner, code, why, 0);
}

static void send_publish(client *c, long n, int64_t now)
{
    char mid[48], pad[4096];
    snprintf(mid, sizeof mid, "%s-%ld", c->name, n);
    int sz = L.o->size < (int)sizeof pad - 1 ? L.o->size : (int)sizeof pad - 1;
    memset(pad, 'x', (size_t)sz);
    pad[sz] = '\0';
    pub_entry *e = &c->out[n - 1];
    e->sent_t = now;
    e->sent_sess = c->sess;
    e->retry_at = 0;
    send_json(c, json_pack("{s:s, s:I, s:s, s:s, s:{s:s, s:I, s:s}}", "type", "publish", "id",
                           (json_int_t)n, "room", L.rooms[c->room], "mid", mid, "data", "p",
                           c->name, "n", (json_int_t)n, "pad", pad));
}

static void pub_joined(client *c, int64_t now)
{
    c->room_joined = 1;
    c->unavail = 0;
    for (long n = c->first_unacked + 1; n <= c->nout; n++)
        if (!c->out[n - 1].acked)
            send_publish(c, n, now);
}

static void mark_seq(room_state *rs, int64_t seq)
{
    if (seq < 1)
        return;
    if (seq >= rs->cap) {
        int64_t cap = rs->cap ? rs->cap : 1024;
        while (cap <= seq)
            cap *= 2;
        rs->seen = mr_realloc(rs->seen, (size_t)cap);
        memset(rs->seen + rs->cap, 0, (size_t)(cap - rs->cap));
        rs->cap = cap;
    }
    rs->seen[seq] = 1;
    while (rs->contig + 1 < rs->cap && rs->seen[rs->contig + 1])
        rs->contig++;
}

static json_int_t jint(json_t *o, const char *k, json_int_t dflt)
{
    json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? json_integer_value(v) : dflt;
}

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

static void on_welcome(client *c, json_t *f, int64_t now)
{
    c->st = C_READY;
    c->sess++;
    c->attempt = 0;
    c->heartbeat_s = (int)jint(f, "heartbeat", 25);
    if (c->heartbeat_s < 1)
        c->heartbeat_s = 25;
    ev("sess %" PRId64 " %s %ld", now, c->name, c->sess);
    if (c->sess > 1)
        say("%s: session %ld on %s", c->name, c->sess, L.o->urls[c->cur]);
    if (c->is_pub) {
        send_json(c, json_pack("{s:s, s:i, s:s, s:b}", "type", "join", "id", ID_JOIN + c->room,
                               "room", L.rooms[c->room], "presence", 0));
        return;
    }
    for (int r = 0; r < L.o->rooms; r++) {
        room_state *rs = &c->rs[r];
        rs->join_since = rs->contig;
        json_t *have = json_array();
        size_t b;
        for (mr_map_entry *e = mr_map_first(&rs->pending, &b); e && json_array_size(have) < 1024;
             e = mr_map_next(&rs->pending, &b, e))
            json_array_append_new(have, json_string(e->key));
        mr_map_entry *e = mr_map_first(&rs->above, &b);
        while (e) {
            mr_map_entry *next = mr_map_next(&rs->above, &b, e);
            if ((intptr_t)e->value <= rs->contig) {
                char key[33];
                snprintf(key, sizeof key, "%s", e->key);
                mr_map_del(&rs->above, key, strlen(key)); /* frees only this entry */
            } else if (json_array_size(have) < 1024)
                json_array_append_new(have, json_string(e->key));
            e = next;
        }
        send_json(c, json_pack("{s:s, s:i, s:s, s:I, s:o, s:b}", "type", "join", "id", ID_JOIN + r,
                               "room", L.rooms[r], "since", (json_int_t)rs->contig, "have", have,
                               "presence", 0));
    }
}

static void on_joined(client *c, json_t *f, int64_t now)
{
    int r = room_index(jstr(f, "room"));
    if (r < 0)
        return;
    if (c->is_pub) {
        if (r == c->room)
            pub_joined(c, now);
        return;
    }
    room_state *rs = &c->rs[r];
    json_t *rec = json_object_get(f, "recovered");
    json_int_t last = jint(f, "last_seq", -1);
    ev("join %" PRId64 " %s %ld %s %" PRId64 " %s %" PRId64, now, c->name, c->sess, L.rooms[r],
       rs->join_since,
       json_is_true(rec)    ? "1"
       : json_is_false(rec) ? "0"
                            : "-",
       (int64_t)last);
    if (json_is_false(rec)) {
        say("%s: %s joined with recovered:false (%s)", c->name, L.rooms[r], jstr(f, "reason"));
        if (last > rs->contig)
            rs->contig = last;
    }
    rs->joined = 1;
}

static void on_ack(client *c, json_t *f, int64_t now)
{
    const char *mid = jstr(f, "mid");
    const char *dash = strrchr(mid, '-');
    long n = dash ? strtol(dash + 1, NULL, 10) : 0;
    if (n < 1 || n > c->nout || c->out[n - 1].acked)
        return;
    c->out[n - 1].acked = 1;
    c->unavail = 0;
    L.acked_total++;
    ev("ack %" PRId64 " %s %s %s %s", now, c->name, L.rooms[c->room], mid, jstr(f, "msg_id"));
    got_get(jstr(f, "msg_id"), c->room)->acked = 1;
    while (c->first_unacked < c->nout && c->out[c->first_unacked].acked)
        c->first_unacked++;
}

static void on_error(client *c, json_t *f, int64_t now)
{
    json_int_t id = jint(f, "id", -1);
    const char *code = jstr(f, "code");
    if (!c->is_pub || id < 1 || id > c->nout) {
        ev("# error %s %s %s", c->name, code, jstr(f, "message"));
        return;
    }
    pub_entry *e = &c->out[id - 1];
    if (e->acked)
        return;
    /*
     * Retryable or not, the message must get through: a real client would
     * surface a final error, the suite resends and reports the error here.
     */
    if (!json_is_true(json_object_get(f, "retryable")))
        ev("# error %s %s %s id=%" PRId64, c->name, code, jstr(f, "message"), (int64_t)id);
    e->sent_t = -1;
    e->retry_at = now + L.o->retry_delay_ms + (int64_t)(rnd() % 250);
    if (strcmp(code, "unavailable") == 0 && ++c->unavail >= L.o->unavailable_failover)
        give_up(c, "relay keeps answering unavailable");
}

static void on_sub_message(client *c, json_t *f, int64_t now, int is_commit)
{
    int r = room_index(jstr(f, "room"));
    if (r < 0)
        return;
    const char *id = jstr(f, "msg_id");
    json_int_t seq = jint(f, "seq", -1);
    ev("%s %" PRId64 " %s %ld %s %s %" PRId64, is_commit ? "commit" : "msg", now, c->name, c->sess,
       L.rooms[r], id, (int64_t)seq);
    mark_seq(&c->rs[r], seq);
    if (seq > 0)
        mr_map_del(&c->rs[r].pending, id, strlen(id));
    if (seq > c->rs[r].contig && strlen(id) == 32)
        mr_map_put(&c->rs[r].above, id, strlen(id), (void *)(intptr_t)seq);
    else if (!is_commit && strlen(id) == 32)
        mr_map_put(&c->rs[r].pending, id, strlen(id), (void *)1);
    if (!is_commit)
        got_get(id, r)->subs |= 1ull << c->idx;
}

static void on_text(lg_conn *conn, const char *p, size_t n)
{
    client *c = conn->owner;
    int64_t now = now_ms();
    c->last_rx = now;
    c->ping_sent = 0;
    json_t *f = json_loadb(p, n, 0, NULL);
    const char *type = jstr(f, "type");
    if (!f) {
        ev("# bad frame from relay to %s", c->name);
    } else if (strcmp(type, "welcome") == 0) {
        on_welcome(c, f, now);
    } else if (strcmp(type, "joined") == 0) {
        on_joined(c, f, now);
    } else if (strcmp(type, "ack") == 0) {
        if (c->is_pub)
            on_ack(c, f, now);
    } else if (strcmp(type, "error") == 0) {
        on_error(c, f, now);
    } else if (strcmp(type, "message") == 0 || strcmp(type, "commit") == 0) {
        if (!c->is_pub)
            on_sub_message(c, f, now, type[0] == 'c');
    } else if (strcmp(type, "reconnect") == 0) {
        ev("# reconnect frame to %s", c->name);
        json_decref(f);
        give_up(c, "relay asked for a reconnect");
        return;
    }
    json_decref(f);
}

/* ---- timers ---- */

static void tick_client(client *c, int64_t now)
{
    if (c->st == C_WAIT) {
        if (now >= c->retry_at)
            start_connect(c, now);
        return;
    }
    if (c->st != C_READY) {
        if (now - c->conn_started > L.o->connect_timeout_ms) {
            lg_conn_close(&c->conn, 1000);
            session_over(c, 0, "connect timeout", 0);
        }
        return;
    }
    int64_t hb = (int64_t)c->heartbeat_s * 1000;
    if (now - c->last_rx > 2 * hb + 5000) {
        lg_conn_close(&c->conn, 1000);
        session_over(c, 0, "heartbeat timeout", 0);
        return;
    }
    if (now - c->last_rx > hb && !c->ping_sent) {
        c->ping_sent = 1;
        send_json(c, json_pack("{s:s, s:i}", "type", "ping", "id", ID_PING));
    }
    if (!c->is_pub || !c->room_joined)
        return;
    for (long n = c->first_unacked + 1; n <= c->nout; n++) {
        pub_entry *e = &c->out[n - 1];
        if (e->acked)
            continue;
        if (e->retry_at && now >= e->retry_at) {
            send_publish(c, n, now);
        } else if (e->sent_t >= 0 && e->sent_sess == c->sess &&
                   now - e->sent_t > L.o->ack_timeout_ms) {
            give_up(c, "no ack in time");
            return;
        }
    }
}

static void publish_due(client *c, int64_t now, double interval_ms)
{
    while (L.publishing && now >= c->next_due) {
        if (c->nout == c->cout) {
            c->cout = c->cout ? c->cout * 2 : 1024;
            c->out = mr_realloc(c->out, (size_t)c->cout * sizeof *c->out);
        }
        long n = ++c->nout;
        pub_entry *e = &c->out[n - 1];
        memset(e, 0, sizeof *e);
        e->pub_t = now;
        e->sent_t = -1;
        ev("pub %" PRId64 " %s %s %s-%ld", now, c->name, L.rooms[c->room], c->name, n);
        if (c->st == C_READY && c->room_joined)
            send_publish(c, n, now);
        c->next_due += (int64_t)interval_ms;
        if (c->next_due <= now - 1000)
            c->next_due = now; /* a stalled loop does not burst afterwards */
    }
}

/* ---- history ---- */

/* Rows of the phase's rooms: how many acked messages are there; with `dump`, log them. */
static long history(PGconn **pg, int dump)
{
    if (!*pg || PQstatus(*pg) != CONNECTION_OK) {
        if (*pg)
            PQfinish(*pg);
        *pg = PQconnectdb(L.o->pg);
        if (PQstatus(*pg) != CONNECTION_OK) {
            say("history: %s", PQerrorMessage(*pg));
            return -1;
        }
    }
    char pat[160];
    snprintf(pat, sizeof pat, "%s-", L.prefix);
    const char *params[1] = {pat};
    PGresult *res = PQexecParams(*pg,
                                 "SELECT room, seq, msg_id::text FROM messages "
                                 "WHERE starts_with(room, $1) ORDER BY room, seq",
                                 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        say("history: %s", PQerrorMessage(*pg));
        PQclear(res);
        return -1;
    }
    long have = 0;
    mr_map seen;
    mr_map_init(&seen);
    for (int i = 0; i < PQntuples(res); i++) {
        const char *id = PQgetvalue(res, i, 2);
        if (dump)
            ev("hist %s %s %s", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), id);
        char k[80];
        norm_id(id, k, sizeof k);
        got_rec *g = mr_map_get(&L.got, k, strlen(k));
        if (g && g->acked && !mr_map_get(&seen, k, strlen(k))) {
            mr_map_put(&seen, k, strlen(k), g);
            have++;
        }
    }
    mr_map_free(&seen, NULL);
    PQclear(res);
    return have;
}

/* Acked messages some subscriber has not received yet. */
static long deliveries_pending(void)
{
    long pending = 0;
    size_t it;
    for (mr_map_entry *e = mr_map_first(&L.got, &it); e; e = mr_map_next(&L.got, &it, e)) {
        got_rec *g = e->value;
        if (g->acked && (g->subs & L.all_subs) != L.all_subs)
            pending++;
    }
    return pending;
}

static long acks_pending(void)
{
    long n = 0;
    for (int i = 0; i < L.nclients; i++)
        if (L.clients[i].is_pub)
            n += L.clients[i].nout - L.clients[i].first_unacked;
    return n;
}

/* ---- setup ---- */

static int read_secret(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "meridian-chaos: cannot read %s: %s\n", path, strerror(errno));
        return -1;
    }
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    (void)fclose(f); /* opened to read only */
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    if (n == 0) {
        fprintf(stderr, "meridian-chaos: %s is empty\n", path);
        return -1;
    }
    L.secret = mr_malloc(n);
    memcpy(L.secret, buf, n);
    L.secret_len = n;
    return 0;
}

static char *mint(const char *sub)
{
    json_t *claims = json_pack("{s:s, s:I}", "sub", sub, "exp", (json_int_t)time(NULL) + 86400);
    char *tok = mr_jwt_sign((const unsigned char *)L.secret, L.secret_len, claims);
    json_decref(claims);
    return tok;
}

void chaos_opts_defaults(chaos_opts *o)
{
    memset(o, 0, sizeof *o);
    o->phase = "phase";
    o->run_id = "0";
    o->rooms = 3;
    o->publishers = 6;
    o->subscribers = 6;
    o->rate = 30;
    o->size = 100;
    o->max_seconds = 300;
    o->settle_seconds = 60;
    o->ack_timeout_ms = 20000;
    o->connect_timeout_ms = 5000;
    o->backoff_max_ms = 5000;
    o->retry_delay_ms = 1000;
    o->unavailable_failover = 2;
}

static int setup(const chaos_opts *o)
{
    if (o->nurls < 1 || o->publishers < 1 || o->subscribers < 1 || o->rooms < 1 || o->rooms > 64 ||
        o->publishers + o->subscribers > CHAOS_MAX_CLIENTS || o->subscribers > 63 || o->rate <= 0) {
        fprintf(stderr,
                "meridian-chaos: need 1+ URL, 1..64 rooms, 1+ publishers, 1..63 "
                "subscribers (at most %d clients), a rate above 0\n",
                CHAOS_MAX_CLIENTS);
        return -1;
    }
    snprintf(L.prefix, sizeof L.prefix, "chaos-%s-%s", o->run_id, o->phase);
    for (const char *p = L.prefix; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_')) {
            fprintf(stderr, "meridian-chaos: run id and phase may hold A-Z a-z 0-9 _ - only\n");
            return -1;
        }
    }
    if (strlen(L.prefix) > 120) {
        fprintf(stderr, "meridian-chaos: run id and phase are too long for room names\n");
        return -1;
    }
    for (int r = 0; r < o->rooms; r++)
        snprintf(L.rooms[r], sizeof L.rooms[r], "%.120s-%d", L.prefix, r);
    for (int i = 0; i < o->nurls; i++) {
        if (lg_url_parse(o->urls[i], &L.urls[i]) != 0 || L.urls[i].http) {
            fprintf(stderr, "meridian-chaos: bad relay URL %s\n", o->urls[i]);
            return -1;
        }
    }
    if (read_secret(o->secret_file) != 0)
        return -1;
    L.log = fopen(o->log_path, "w");
    if (!L.log) {
        fprintf(stderr, "meridian-chaos: cannot write %s: %s\n", o->log_path, strerror(errno));
        return -1;
    }
    static const lg_conn_cbs cbs = {.open_cb = on_open, .text_cb = on_text, .close_cb = on_close};
    if (lg_loop_init(&L.loop, &cbs) != 0) {
        fprintf(stderr, "meridian-chaos: epoll: %s\n", strerror(errno));
        return -1;
    }
    L.nclients = o->publishers + o->subscribers;
    L.clients = mr_calloc((size_t)L.nclients, sizeof *L.clients);
    for (int i = 0; i < L.nclients; i++) {
        client *c = &L.clients[i];
        c->is_pub = i < o->publishers;
        c->idx = c->is_pub ? i : i - o->publishers;
        snprintf(c->name, sizeof c->name, "%c%d", c->is_pub ? 'p' : 's', c->idx);
        char user[48];
        snprintf(user, sizeof user, "chaos-%s", c->name);
        c->token = mint(user);
        c->home = c->base = c->idx % o->nurls;
        c->room = c->idx % o->rooms;
        c->conn.fd = -1;
        if (!c->is_pub) {
            c->rs = mr_calloc((size_t)o->rooms, sizeof *c->rs);
            for (int r = 0; r < o->rooms; r++) {
                mr_map_init(&c->rs[r].pending);
                mr_map_init(&c->rs[r].above);
            }
            L.all_subs |= 1ull << c->idx;
            for (int r = 0; r < o->rooms; r++)
                ev("member %s %s", c->name, L.rooms[r]);
        }
    }
    mr_map_init(&L.got);
    return 0;
}

static int all_joined(void)
{
    for (int i = 0; i < L.nclients; i++) {
        client *c = &L.clients[i];
        if (c->st != C_READY)
            return 0;
        if (c->is_pub && !c->room_joined)
            return 0;
        for (int r = 0; !c->is_pub && r < L.o->rooms; r++)
            if (!c->rs[r].joined)
                return 0;
    }
    return 1;
}

static void poll_once(int64_t timeout_ms)
{
    struct epoll_event evs[64];
    int n = epoll_wait(L.loop.epfd, evs, 64, (int)timeout_ms);
    for (int i = 0; i < n; i++)
        lg_conn_event(evs[i].data.ptr, evs[i].events);
}

static void handle_signals(void)
{
    if (sig_fault) {
        sig_fault = 0;
        ev("fault %" PRId64, now_ms());
        say("fault injected");
    }
    if (sig_restored) {
        sig_restored = 0;
        ev("restored %" PRId64, now_ms());
        say("fault over");
    }
}

int chaos_load_run(const chaos_opts *o)
{
    L.o = o;
    clock_gettime(CLOCK_MONOTONIC, &L.t0);
    L.rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid() ^ (uint64_t)time(NULL);
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    (void)signal(SIGPIPE, SIG_IGN); /* fails only for an invalid signal number */
    if (setup(o) != 0)
        return 1;
    ev("phase %s", o->phase);
    int64_t now = now_ms();
    for (int i = 0; i < L.nclients; i++)
        start_connect(&L.clients[i], now);

    /* Everyone connected and joined, within a bound. */
    int64_t deadline = now + 60000;
    while (!all_joined()) {
        now = now_ms();
        if (now > deadline || sig_stop) {
            fprintf(stderr,
                    "meridian-chaos: clients not all joined within 60 s: is the deployment up?\n");
            (void)fclose(L.log); /* the run has failed already */
            return 1;
        }
        poll_once(20);
        for (int i = 0; i < L.nclients; i++)
            tick_client(&L.clients[i], now_ms());
    }
    now = now_ms();
    ev("ready %" PRId64, now);
    if (o->ready_path) {
        FILE *rf = fopen(o->ready_path, "w");
        if (rf)
            (void)fclose(rf); /* empty: that it exists is the signal */
    }
    say("%d clients joined; publishing %.1f msgs/s into %d rooms", L.nclients, o->rate, o->rooms);
    double interval = 1000.0 * o->publishers / o->rate;
    for (int i = 0; i < o->publishers; i++)
        L.clients[i].next_due = now + (int64_t)(interval * i / o->publishers);
    L.publishing = 1;
    int64_t stop_at = now + (int64_t)(o->max_seconds * 1000);
    int64_t last_flush = now, settle_end = -1, last_hist = 0;
    long hist_have = -1;
    PGconn *pg = NULL;
    for (;;) {
        now = now_ms();
        handle_signals();
        if (L.publishing && (sig_stop || now >= stop_at)) {
            L.publishing = 0;
            settle_end = now + (int64_t)(o->settle_seconds * 1000);
            ev("stop %" PRId64, now);
            say("publishing stopped; settling (at most %.0f s)", o->settle_seconds);
        }
        for (int i = 0; i < L.nclients; i++) {
            client *c = &L.clients[i];
            if (c->is_pub)
                publish_due(c, now, interval);
            tick_client(c, now);
        }
        if (!L.publishing) {
            if (sig_stop > 1 || now >= settle_end)
                break;
            if (now - last_hist >= 1000 && acks_pending() == 0) {
                last_hist = now;
                hist_have = history(&pg, 0);
                if (hist_have == L.acked_total && deliveries_pending() == 0)
                    break;
            }
        }
        if (now - last_flush >= 1000) {
            (void)fflush(L.log); /* an error is kept in the stream's flag: see ev() */
            last_flush = now;
        }
        poll_once(10);
    }
    now = now_ms();
    say("settled: %ld acks pending, %ld deliveries pending, history holds %ld of %ld acked",
        acks_pending(), deliveries_pending(), hist_have, L.acked_total);
    if (history(&pg, 1) < 0)
        ev("# history could not be read");
    if (pg)
        PQfinish(pg);
    for (int i = 0; i < L.nclients; i++) {
        client *c = &L.clients[i];
        for (long n = 1; c->is_pub && n <= c->nout; n++)
            if (!c->out[n - 1].acked)
                ev("giveup %s %s %s-%ld", c->name, L.rooms[c->room], c->name, n);
        if (c->st != C_WAIT)
            lg_conn_close(&c->conn, 1000);
        free(c->token);
        free(c->out);
        if (c->rs) {
            for (int r = 0; r < o->rooms; r++) {
                free(c->rs[r].seen);
                mr_map_free(&c->rs[r].pending, NULL);
                mr_map_free(&c->rs[r].above, NULL);
            }
            free(c->rs);
        }
    }
    ev("end %" PRId64, now);
    int rc = 0;
    bool lost = ferror(L.log) != 0;
    if (fclose(L.log) != 0 || lost) {
        fprintf(stderr, "meridian-chaos: the event log %s is incomplete (a write failed)\n",
                o->log_path);
        rc = 1;
    }
    free(L.clients);
    free(L.secret);
    mr_map_free(&L.got, free);
    lg_loop_free(&L.loop);
    return rc;
}
