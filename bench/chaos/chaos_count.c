/*
 * The chaos suite's counter (chaos_count.h has the event log format).
 *
 * One pass reads the log into maps keyed by strings (publishes by
 * "pub room mid", messages by "room msg_id", what each subscriber got by
 * "sub room msg_id"), keeping the `message` frames in log order; a second
 * pass classifies. Two passes because history rows come last: a duplicate
 * `message` without a seq is placed above or below the session's `since`
 * by the seq history gave it, and a message is only known to be expected
 * once history has been read.
 */
#include "chaos_count.h"

#include "mr_alloc.h"
#include "mr_map.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX  512
#define MAX_TOKS 10

typedef struct pub_rec {
    char msgkey[KEY_MAX]; /* "room\tmsg_id" once acked */
    int64_t pub_t, ack_t;
} pub_rec;

typedef struct msg_rec {
    char room[160];
    int acked;
    int64_t pub_t, ack_t; /* -1 when unknown */
    long hist_rows;
    int64_t seq; /* from history, -1 when not there */
} msg_rec;

typedef struct join_rec {
    int64_t t, since;
} join_rec;

typedef struct sess_rec {
    char client[64];
    long sess;
    int64_t end_t;
    struct sess_rec *next;
} sess_rec;

typedef struct msg_ev {
    char sub[64];
    long sess;
    int64_t t;
    char key[KEY_MAX]; /* "room\tmsg_id" */
    int64_t seq;
} msg_ev;

typedef struct member_rec {
    char sub[64];
    char room[160];
} member_rec;

typedef struct count_state {
    chaos_counts *out;
    FILE *detail; /* one line per defect found, or NULL */
    mr_map pubs, msgs, joins, got, commits, hist_seq, clients;
    sess_rec *sessions;
    msg_ev *evs;
    size_t nevs, cevs;
    member_rec *members;
    size_t nmembers, cmembers;
} count_state;

static void detail(count_state *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void detail(count_state *st, const char *fmt, ...)
{
    if (!st->detail)
        return;
    va_list ap;
    va_start(ap, fmt);
    /* Diagnostics to the terminal: the counts are the result, not these lines. */
    (void)vfprintf(st->detail, fmt, ap);
    va_end(ap);
    (void)fputc('\n', st->detail);
}

/* "room\tmsg_id" printed as "room msg_id". */
static void split_key(const char *key, char *out, size_t cap)
{
    snprintf(out, cap, "%s", key);
    char *tab = strchr(out, '\t');
    if (tab)
        *tab = ' ';
}

/* The msg_id without dashes, lower case: PostgreSQL's uuid text has dashes. */
static void norm_id(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    for (; *in && n + 1 < cap; in++)
        if (*in != '-')
            out[n++] = (char)tolower((unsigned char)*in);
    out[n] = '\0';
}

static void msg_key(const char *room, const char *id, char *out)
{
    char nid[128];
    norm_id(id, nid, sizeof nid);
    snprintf(out, KEY_MAX, "%s\t%s", room, nid);
}

static int parse_i64(const char *s, int64_t *v)
{
    if (strcmp(s, "-") == 0) {
        *v = -1;
        return 0;
    }
    char *end;
    long long x = strtoll(s, &end, 10);
    if (end == s || *end)
        return -1;
    *v = x;
    return 0;
}

static msg_rec *msg_get(count_state *st, const char *room, const char *id, char *key)
{
    msg_key(room, id, key);
    msg_rec *m = mr_map_get(&st->msgs, key, strlen(key));
    if (!m) {
        m = mr_calloc(1, sizeof *m);
        snprintf(m->room, sizeof m->room, "%s", room);
        m->pub_t = m->ack_t = m->seq = -1;
        mr_map_put(&st->msgs, key, strlen(key), m);
    }
    return m;
}

static void note_client(count_state *st, const char *client)
{
    if (!mr_map_get(&st->clients, client, strlen(client)))
        mr_map_put(&st->clients, client, strlen(client), mr_strdup(client));
}

static sess_rec *sess_find(count_state *st, const char *client, long sess)
{
    for (sess_rec *s = st->sessions; s; s = s->next)
        if (s->sess == sess && strcmp(s->client, client) == 0)
            return s;
    return NULL;
}

/* One line, split into tokens. Returns 0, or -1 when it is malformed. */
static int handle(count_state *st, char **t, int n)
{
    char key[KEY_MAX];
    int64_t a, b, c;
    const char *ev = t[0];
    if (strcmp(ev, "phase") == 0 && n == 2) {
        snprintf(st->out->phase, sizeof st->out->phase, "%s", t[1]);
    } else if (strcmp(ev, "fault") == 0 && n == 2) {
        return parse_i64(t[1], &st->out->fault_ms);
    } else if (strcmp(ev, "restored") == 0 && n == 2) {
        return parse_i64(t[1], &st->out->restored_ms);
    } else if (strcmp(ev, "member") == 0 && n == 3) {
        if (st->nmembers == st->cmembers) {
            st->cmembers = st->cmembers ? st->cmembers * 2 : 64;
            st->members = mr_realloc(st->members, st->cmembers * sizeof *st->members);
        }
        member_rec *m = &st->members[st->nmembers++];
        snprintf(m->sub, sizeof m->sub, "%s", t[1]);
        snprintf(m->room, sizeof m->room, "%s", t[2]);
    } else if (strcmp(ev, "pub") == 0 && n == 5) {
        if (parse_i64(t[1], &a) != 0)
            return -1;
        snprintf(key, sizeof key, "%s %s %s", t[2], t[3], t[4]);
        if (mr_map_get(&st->pubs, key, strlen(key)))
            return 0;
        pub_rec *p = mr_calloc(1, sizeof *p);
        p->pub_t = a;
        p->ack_t = -1;
        mr_map_put(&st->pubs, key, strlen(key), p);
        st->out->published++;
    } else if (strcmp(ev, "ack") == 0 && n == 6) {
        if (parse_i64(t[1], &a) != 0)
            return -1;
        snprintf(key, sizeof key, "%s %s %s", t[2], t[3], t[4]);
        pub_rec *p = mr_map_get(&st->pubs, key, strlen(key));
        if (!p)
            return -1; /* an ack for something never published */
        if (p->ack_t >= 0)
            return 0;
        p->ack_t = a;
        msg_rec *m = msg_get(st, t[3], t[5], p->msgkey);
        if (!m->acked) {
            m->acked = 1;
            m->pub_t = p->pub_t;
            m->ack_t = a;
            st->out->acked++;
        }
    } else if (strcmp(ev, "giveup") == 0 && n == 4) {
        /* Counted at the end from publishes without an ack. */
    } else if (strcmp(ev, "sess") == 0 && n == 4) {
        if (parse_i64(t[1], &a) != 0 || parse_i64(t[3], &b) != 0)
            return -1;
        note_client(st, t[2]);
        sess_rec *s = mr_calloc(1, sizeof *s);
        snprintf(s->client, sizeof s->client, "%s", t[2]);
        s->sess = (long)b;
        s->end_t = INT64_MAX;
        s->next = st->sessions;
        st->sessions = s;
        st->out->sessions++;
    } else if (strcmp(ev, "close") == 0 && n == 5) {
        if (parse_i64(t[1], &a) != 0 || parse_i64(t[3], &b) != 0)
            return -1;
        sess_rec *s = sess_find(st, t[2], (long)b);
        if (s && s->end_t == INT64_MAX)
            s->end_t = a;
    } else if (strcmp(ev, "join") == 0 && n == 8) {
        if (parse_i64(t[1], &a) != 0 || parse_i64(t[3], &b) != 0 || parse_i64(t[5], &c) != 0)
            return -1;
        if (strcmp(t[6], "0") == 0)
            st->out->unrecovered++;
        snprintf(key, sizeof key, "%s %" PRId64 " %s", t[2], b, t[4]);
        if (!mr_map_get(&st->joins, key, strlen(key))) {
            join_rec *j = mr_calloc(1, sizeof *j);
            j->t = a;
            j->since = c;
            mr_map_put(&st->joins, key, strlen(key), j);
        }
    } else if (strcmp(ev, "msg") == 0 && n == 7) {
        if (parse_i64(t[1], &a) != 0 || parse_i64(t[3], &b) != 0 || parse_i64(t[6], &c) != 0)
            return -1;
        if (st->nevs == st->cevs) {
            st->cevs = st->cevs ? st->cevs * 2 : 1024;
            st->evs = mr_realloc(st->evs, st->cevs * sizeof *st->evs);
        }
        msg_ev *e = &st->evs[st->nevs++];
        e->t = a;
        snprintf(e->sub, sizeof e->sub, "%s", t[2]);
        e->sess = (long)b;
        msg_key(t[4], t[5], e->key);
        e->seq = c;
    } else if (strcmp(ev, "commit") == 0 && n == 7) {
        char k2[KEY_MAX + 96];
        msg_key(t[4], t[5], key);
        snprintf(k2, sizeof k2, "%s %s %s", t[2], t[3], key);
        if (mr_map_get(&st->commits, k2, strlen(k2))) {
            st->out->dup_commits++;
            detail(st, "dup_commit %s sess=%s t=%s %s %s seq=%s", t[2], t[3], t[1], t[4], t[5],
                   t[6]);
        } else
            mr_map_put(&st->commits, k2, strlen(k2), st); /* any non-NULL value */
    } else if (strcmp(ev, "hist") == 0 && n == 4) {
        if (parse_i64(t[2], &a) != 0 || a < 1)
            return -1;
        msg_rec *m = msg_get(st, t[1], t[3], key);
        m->hist_rows++;
        if (m->hist_rows > 1) {
            st->out->hist_dups++;
            detail(st, "hist_dup %s seq=%" PRId64 " %s (stored %ld times)", t[1], a, t[3],
                   m->hist_rows);
        }
        if (m->seq < 0)
            m->seq = a;
        char sk[KEY_MAX];
        snprintf(sk, sizeof sk, "%s\t%" PRId64, t[1], a);
        char *prev = mr_map_get(&st->hist_seq, sk, strlen(sk));
        if (!prev) {
            mr_map_put(&st->hist_seq, sk, strlen(sk), mr_strdup(key));
        } else if (strcmp(prev, key) != 0) {
            st->out->seq_reused++;
            detail(st, "seq_reused %s seq=%" PRId64 " %s", t[1], a, t[3]);
        }
    }
    return 0;
}

static int cmp_i64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return a < b ? -1 : a > b;
}

static double pct(const int64_t *v, size_t n, double p)
{
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return (double)v[i];
}

/* Per room: seqs of 1..max that no history row holds. */
static void count_gaps(count_state *st)
{
    mr_map maxes;
    mr_map_init(&maxes);
    size_t it;
    for (mr_map_entry *e = mr_map_first(&st->hist_seq, &it); e;
         e = mr_map_next(&st->hist_seq, &it, e)) {
        const char *tab = strrchr(e->key, '\t');
        size_t rl = (size_t)(tab - e->key);
        int64_t seq = strtoll(tab + 1, NULL, 10);
        int64_t *mx = mr_map_get(&maxes, e->key, rl);
        if (!mx) {
            mx = mr_calloc(2, sizeof *mx); /* [max, distinct seqs] */
            mr_map_put(&maxes, e->key, rl, mx);
        }
        if (seq > mx[0])
            mx[0] = seq;
        mx[1]++;
    }
    for (mr_map_entry *e = mr_map_first(&maxes, &it); e; e = mr_map_next(&maxes, &it, e)) {
        int64_t *mx = e->value;
        st->out->seq_gaps += (long)(mx[0] - mx[1]);
        for (int64_t q = 1; st->detail && mx[1] < mx[0] && q < mx[0]; q++) {
            char sk[KEY_MAX];
            snprintf(sk, sizeof sk, "%s\t%" PRId64, e->key, q);
            if (!mr_map_get(&st->hist_seq, sk, strlen(sk)))
                detail(st, "seq_gap %s seq=%" PRId64, e->key, q);
        }
    }
    mr_map_free(&maxes, free);
}

/* Was `sub` connected and joined to `room` from `from` through `to`? */
static int was_live(count_state *st, const char *sub, const char *room, int64_t from, int64_t to)
{
    char key[KEY_MAX];
    for (sess_rec *s = st->sessions; s; s = s->next) {
        if (strcmp(s->client, sub) != 0)
            continue;
        snprintf(key, sizeof key, "%s %ld %s", sub, s->sess, room);
        join_rec *j = mr_map_get(&st->joins, key, strlen(key));
        if (j && j->t <= from && s->end_t >= to)
            return 1;
    }
    return 0;
}

static void classify(count_state *st)
{
    chaos_counts *o = st->out;
    char key[KEY_MAX + 96];
    /* Duplicates, in log order: "sub room msg_id" -> the last session that got it. */
    for (size_t i = 0; i < st->nevs; i++) {
        msg_ev *e = &st->evs[i];
        snprintf(key, sizeof key, "%s\t%s", e->sub, e->key);
        long *last = mr_map_get(&st->got, key, strlen(key));
        if (!last) {
            last = mr_malloc(sizeof *last);
            *last = e->sess;
            mr_map_put(&st->got, key, strlen(key), last);
            continue;
        }
        char pk[KEY_MAX];
        split_key(e->key, pk, sizeof pk);
        if (*last == e->sess) {
            o->dup_session++;
            detail(st, "dup_session %s sess=%ld t=%" PRId64 " %s seq=%" PRId64, e->sub, e->sess,
                   e->t, pk, e->seq);
            continue;
        }
        long prev_sess = *last;
        *last = e->sess;
        int64_t seq = e->seq;
        if (seq < 0) {
            msg_rec *m = mr_map_get(&st->msgs, e->key, strlen(e->key));
            if (m)
                seq = m->seq;
        }
        const char *tab = strchr(e->key, '\t');
        char jk[KEY_MAX];
        snprintf(jk, sizeof jk, "%s %ld %.*s", e->sub, e->sess, (int)(tab - e->key), e->key);
        join_rec *j = mr_map_get(&st->joins, jk, strlen(jk));
        int below = j && seq >= 0 && j->since >= 0 && seq <= j->since;
        if (below)
            o->dup_resume++;
        else
            o->dup_resume_above++;
        detail(st,
               "%s %s sess=%ld (had it in sess=%ld) t=%" PRId64 " %s seq=%" PRId64
               " since=%" PRId64,
               below ? "dup_resume" : "dup_resume_above", e->sub, e->sess, prev_sess, e->t, pk, seq,
               j ? j->since : -1);
    }
    /* Missed: every message acknowledged or in history, for every member of its room. */
    size_t it;
    for (size_t k = 0; k < st->nmembers; k++) {
        member_rec *mb = &st->members[k];
        for (mr_map_entry *e = mr_map_first(&st->msgs, &it); e;
             e = mr_map_next(&st->msgs, &it, e)) {
            msg_rec *m = e->value;
            if (strcmp(m->room, mb->room) != 0 || (!m->acked && m->hist_rows == 0))
                continue;
            snprintf(key, sizeof key, "%s\t%s", mb->sub, e->key);
            if (mr_map_get(&st->got, key, strlen(key)))
                continue;
            int64_t from = m->pub_t, to = m->ack_t >= 0 ? m->ack_t : m->pub_t;
            int live = from >= 0 && was_live(st, mb->sub, mb->room, from, to);
            if (live)
                o->missed_live++;
            else
                o->missed_resume++;
            char pk[KEY_MAX];
            split_key(e->key, pk, sizeof pk);
            detail(st, "%s %s %s seq=%" PRId64 " published t=%" PRId64 " acked t=%" PRId64,
                   live ? "missed_live" : "missed_resume", mb->sub, pk, m->seq, m->pub_t, m->ack_t);
        }
    }
    for (mr_map_entry *e = mr_map_first(&st->msgs, &it); e; e = mr_map_next(&st->msgs, &it, e)) {
        msg_rec *m = e->value;
        if (m->acked && m->hist_rows == 0) {
            o->lost++;
            char pk[KEY_MAX];
            split_key(e->key, pk, sizeof pk);
            detail(st, "lost %s published t=%" PRId64 " acked t=%" PRId64, pk, m->pub_t, m->ack_t);
        }
    }
    /* Latency while the fault lasted, and publishes never acknowledged. */
    int64_t *lat = mr_malloc((st->pubs.count + 1) * sizeof *lat);
    size_t nl = 0;
    for (mr_map_entry *e = mr_map_first(&st->pubs, &it); e; e = mr_map_next(&st->pubs, &it, e)) {
        pub_rec *p = e->value;
        if (p->ack_t < 0) {
            o->unacked++;
            continue;
        }
        int in = o->fault_ms < 0 ||
                 (p->pub_t >= o->fault_ms && (o->restored_ms < 0 || p->pub_t <= o->restored_ms));
        if (in)
            lat[nl++] = p->ack_t - p->pub_t;
    }
    if (nl > 0) {
        qsort(lat, nl, sizeof *lat, cmp_i64);
        o->lat_n = (long)nl;
        o->lat_p50_ms = pct(lat, nl, 50);
        o->lat_p99_ms = pct(lat, nl, 99);
        o->lat_max_ms = (double)lat[nl - 1];
    }
    free(lat);
    o->reconnects = o->sessions - (long)st->clients.count;
    if (o->reconnects < 0)
        o->reconnects = 0;
    count_gaps(st);
}

static void state_free(count_state *st)
{
    mr_map_free(&st->pubs, free);
    mr_map_free(&st->msgs, free);
    mr_map_free(&st->joins, free);
    mr_map_free(&st->got, free);
    mr_map_free(&st->commits, NULL);
    mr_map_free(&st->hist_seq, free);
    mr_map_free(&st->clients, free);
    while (st->sessions) {
        sess_rec *n = st->sessions->next;
        free(st->sessions);
        st->sessions = n;
    }
    free(st->evs);
    free(st->members);
}

int chaos_count_file(FILE *f, chaos_counts *out, FILE *detail_to, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->fault_ms = out->restored_ms = -1;
    snprintf(out->phase, sizeof out->phase, "?");
    if (!f) {
        snprintf(err, errlen, "no log");
        return -1;
    }
    count_state st = {.out = out, .detail = detail_to};
    mr_map_init(&st.pubs);
    mr_map_init(&st.msgs);
    mr_map_init(&st.joins);
    mr_map_init(&st.got);
    mr_map_init(&st.commits);
    mr_map_init(&st.hist_seq);
    mr_map_init(&st.clients);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        char *t[MAX_TOKS + 1];
        int n = 0;
        char *save = NULL;
        for (char *tok = strtok_r(line, " ", &save); tok && n <= MAX_TOKS;
             tok = strtok_r(NULL, " ", &save))
            t[n++] = tok;
        if (n == 0)
            continue;
        if (n > MAX_TOKS || handle(&st, t, n) != 0) {
            out->bad_lines++;
            detail(&st, "bad_line %s", t[0]);
        }
    }
    free(line);
    if (ferror(f)) {
        snprintf(err, errlen, "read error");
        state_free(&st);
        return -1;
    }
    classify(&st);
    state_free(&st);
    return 0;
}

int chaos_count_text(const char *text, chaos_counts *out, char *err, size_t errlen)
{
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    int r = chaos_count_file(f, out, NULL, err, errlen);
    if (f)
        (void)fclose(f); /* opened to read only */
    return r;
}

int chaos_count_clean(const chaos_counts *c)
{
    return c->lost == 0 && c->hist_dups == 0 && c->seq_gaps == 0 && c->seq_reused == 0 &&
           c->dup_session == 0 && c->dup_resume == 0 && c->dup_resume_above == 0 &&
           c->missed_live == 0 && c->missed_resume == 0 && c->bad_lines == 0;
}

void chaos_count_print_header(FILE *f)
{
    fprintf(f, "| fault | acked | lost | hist dups | seq gaps | dup msg: session | "
               "dup msg: resume <= since | dup msg: resume > since | missed: live | "
               "missed: resumed | unrecovered joins | unacked | reconnects | commit repeats | "
               "ack p50 ms | ack p99 ms | ack max ms |\n");
    fprintf(f, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | "
               "---: | ---: | ---: | ---: | ---: | ---: |\n");
}

void chaos_count_print_row(FILE *f, const chaos_counts *c)
{
    char p50[32] = "-", p99[32] = "-", mx[32] = "-";
    if (c->lat_n > 0) {
        snprintf(p50, sizeof p50, "%.0f", c->lat_p50_ms);
        snprintf(p99, sizeof p99, "%.0f", c->lat_p99_ms);
        snprintf(mx, sizeof mx, "%.0f", c->lat_max_ms);
    }
    fprintf(f,
            "| %s%s | %ld | %ld | %ld | %ld | %ld | %ld | %ld | %ld | %ld | %ld | %ld | %ld | "
            "%ld | %s | %s | %s |\n",
            c->phase, c->bad_lines ? " (BAD LOG)" : "", c->acked, c->lost, c->hist_dups,
            c->seq_gaps + c->seq_reused, c->dup_session, c->dup_resume, c->dup_resume_above,
            c->missed_live, c->missed_resume, c->unrecovered, c->unacked, c->reconnects,
            c->dup_commits, p50, p99, mx);
}

void chaos_count_print_json(FILE *f, const chaos_counts *c)
{
    fprintf(f,
            "{\"phase\":\"%s\",\"published\":%ld,\"acked\":%ld,\"unacked\":%ld,\"lost\":%ld,"
            "\"hist_dups\":%ld,\"seq_gaps\":%ld,\"seq_reused\":%ld,\"dup_session\":%ld,"
            "\"dup_resume\":%ld,\"dup_resume_above\":%ld,\"dup_commits\":%ld,"
            "\"missed_live\":%ld,\"missed_resume\":%ld,\"unrecovered\":%ld,\"sessions\":%ld,"
            "\"reconnects\":%ld,\"lat_n\":%ld,\"lat_p50_ms\":%.1f,\"lat_p99_ms\":%.1f,"
            "\"lat_max_ms\":%.1f,\"fault_ms\":%" PRId64 ",\"restored_ms\":%" PRId64
            ",\"bad_lines\":%ld,\"clean\":%s}\n",
            c->phase, c->published, c->acked, c->unacked, c->lost, c->hist_dups, c->seq_gaps,
            c->seq_reused, c->dup_session, c->dup_resume, c->dup_resume_above, c->dup_commits,
            c->missed_live, c->missed_resume, c->unrecovered, c->sessions, c->reconnects, c->lat_n,
            c->lat_p50_ms, c->lat_p99_ms, c->lat_max_ms, c->fault_ms, c->restored_ms, c->bad_lines,
            chaos_count_clean(c) ? "true" : "false");
}
