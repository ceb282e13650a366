/* See mr_test_member.h. */
#include "mr_test_member.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Delay before a publish answered `unavailable` is sent again. */
#define RETRY_MS 200

void mr_test_member_init(mr_test_member *m, const char *user, const char *room,
                         mr_test_relay *const *relays, int n)
{
    memset(m, 0, sizeof *m);
    snprintf(m->user, sizeof m->user, "%s", user);
    snprintf(m->room, sizeof m->room, "%s", room);
    ck_assert_int_le(n, MR_TEST_MEMBER_RELAYS);
    for (int i = 0; i < n; i++)
        m->relays[i] = relays[i];
    m->nrelays = n;
    m->since = -1;
    m->session_ids = json_object();
    m->ever = json_object();
    m->seqs = json_object();
    m->pending = json_object();
    m->acked = json_object();
}

void mr_test_member_free(mr_test_member *m)
{
    if (m->open)
        mr_ws_close(&m->ws);
    m->open = false;
    json_decref(m->session_ids);
    json_decref(m->ever);
    json_decref(m->seqs);
    json_decref(m->pending);
    json_decref(m->acked);
    json_decref(m->joined);
    free(m->have);
    m->session_ids = m->ever = m->seqs = m->pending = m->acked = m->joined = NULL;
    m->have = NULL;
}

static void mark_seq(mr_test_member *m, const char *id, int64_t seq)
{
    if (seq <= 0)
        return;
    if ((size_t)seq >= m->have_cap) {
        size_t cap = m->have_cap ? m->have_cap : 1024;
        while (cap <= (size_t)seq)
            cap *= 2;
        m->have = realloc(m->have, cap);
        memset(m->have + m->have_cap, 0, cap - m->have_cap);
        m->have_cap = cap;
    }
    m->have[seq] = 1;
    json_object_set_new(m->seqs, id, json_integer(seq));
}

int64_t mr_test_member_contiguous(const mr_test_member *m)
{
    int64_t s = 0;
    while ((size_t)(s + 1) < m->have_cap && m->have[s + 1])
        s++;
    return s;
}

bool mr_test_member_has(const mr_test_member *m, const char *msg_id)
{
    return json_object_get(m->ever, msg_id) && json_object_get(m->seqs, msg_id);
}

static void send_publish(mr_test_member *m, const char *mid, json_t *p)
{
    if (!m->open)
        return;
    const char *data = json_string_value(json_object_get(p, "data"));
    size_t n = strlen(data) + strlen(m->room) + 2 * strlen(mid) + 128;
    char *frame = malloc(n);
    snprintf(frame, n,
             "{\"type\":\"publish\",\"id\":\"%s\",\"room\":\"%s\",\"mid\":\"%s\",\"data\":%s}", mid,
             m->room, mid, data);
    /* A relay that died: the next pump reconnects and sends it again. */
    if (mr_ws_send_text(&m->ws, frame) != 0) {
        mr_ws_close(&m->ws);
        m->open = false;
    }
    free(frame);
    json_object_set_new(p, "due", json_integer(INT64_MAX));
}

void mr_test_member_publish(mr_test_member *m, const char *mid, const char *data)
{
    json_t *p = json_pack("{s:s}", "data", data);
    json_object_set_new(m->pending, mid, p);
    send_publish(m, mid, p);
}

static void handle(mr_test_member *m, const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    ck_assert_msg(j != NULL, "%s: not JSON: %.200s", m->user, text);
    const char *type = json_string_value(json_object_get(j, "type"));
    const char *id = json_string_value(json_object_get(j, "msg_id"));
    json_t *seqj = json_object_get(j, "seq");
    int64_t seq = json_is_integer(seqj) ? json_integer_value(seqj) : 0;
    if (!type) {
        json_decref(j);
        return;
    }
    if (strcmp(type, "message") == 0 && id) {
        int64_t had = json_integer_value(json_object_get(m->session_ids, id));
        if (had & 1)
            m->dup_messages++;
        else if (json_object_get(m->ever, id))
            m->again_after_resume++;
        if (seq > 0 && m->since >= 0 && seq <= m->since)
            m->below_since++;
        json_object_set_new(m->session_ids, id, json_integer(had | 1 | (seq > 0 ? 2 : 0)));
        json_object_set_new(m->ever, id, json_true());
        mark_seq(m, id, seq);
    } else if (strcmp(type, "commit") == 0 && id) {
        int64_t had = json_integer_value(json_object_get(m->session_ids, id));
        if (had & 2)
            m->dup_commits++;
        json_object_set_new(m->session_ids, id, json_integer(had | 2));
        mark_seq(m, id, seq);
    } else if (strcmp(type, "ack") == 0 && id) {
        const char *mid = json_string_value(json_object_get(j, "mid"));
        if (mid) {
            json_object_del(m->pending, mid);
            json_object_set_new(m->acked, mid, json_string(id));
        }
    } else if (strcmp(type, "error") == 0) {
        const char *code = json_string_value(json_object_get(j, "code"));
        const char *rid = json_string_value(json_object_get(j, "id"));
        json_t *p = rid ? json_object_get(m->pending, rid) : NULL;
        if (p && code && strcmp(code, "unavailable") == 0)
            json_object_set_new(p, "due", json_integer(mr_test_now_ms() + RETRY_MS));
    } else if (strcmp(type, "joined") == 0) {
        json_decref(m->joined);
        m->joined = json_incref(j);
    }
    json_decref(j);
}

/* Read one frame; false on time-out or when the session ended. */
static bool read_one(mr_test_member *m, int timeout_ms)
{
    char *p = NULL;
    int cc = 0;
    int op = mr_ws_recv(&m->ws, timeout_ms, &p, NULL, &cc);
    if (op == 1 && p)
        handle(m, p);
    if (op == 8 || op == -2) {
        if (op == 8 && cc == 4008)
            m->slow_closes++;
        mr_ws_close(&m->ws);
        m->open = false;
    }
    free(p);
    return op == 1;
}

/* Connect and hello to one relay; false when it does not answer. */
static bool hello(mr_test_member *m, mr_test_relay *rp)
{
    if (mr_ws_connect(&m->ws, "127.0.0.1", rp->port, NULL) != 101) {
        mr_ws_close(&m->ws);
        return false;
    }
    char *t = mr_test_token(m->user, 3600, NULL);
    char frame[2048];
    snprintf(frame, sizeof frame, "{\"type\":\"hello\",\"id\":1,\"token\":\"%s\"}", t);
    free(t);
    if (mr_ws_send_text(&m->ws, frame) != 0) {
        mr_ws_close(&m->ws);
        return false;
    }
    char *w = mr_ws_expect(&m->ws, "\"type\":\"welcome\"", 5000);
    if (!w) {
        mr_ws_close(&m->ws);
        return false;
    }
    free(w);
    return true;
}

bool mr_test_member_connect(mr_test_member *m, int timeout_ms)
{
    int64_t deadline = mr_test_now_ms() + timeout_ms;
    while (mr_test_now_ms() < deadline) {
        for (int i = 0; i < m->nrelays && !m->open; i++) {
            if (!hello(m, m->relays[i]))
                continue;
            m->open = true;
            json_object_clear(m->session_ids);
            json_decref(m->joined);
            m->joined = NULL;
            m->since = m->sessions > 0 ? mr_test_member_contiguous(m) : -1;
            m->sessions++;
            char frame[256];
            if (m->since >= 0)
                snprintf(frame, sizeof frame,
                         "{\"type\":\"join\",\"id\":\"j%d\",\"room\":\"%s\",\"since\":%lld}",
                         m->sessions, m->room, (long long)m->since);
            else
                snprintf(frame, sizeof frame, "{\"type\":\"join\",\"id\":\"j%d\",\"room\":\"%s\"}",
                         m->sessions, m->room);
            mr_ws_send_text(&m->ws, frame);
            int64_t jd = mr_test_now_ms() + 15000;
            while (m->open && !m->joined && mr_test_now_ms() < jd)
                read_one(m, 100);
            if (!m->joined) {
                if (m->open)
                    mr_ws_close(&m->ws);
                m->open = false;
                continue;
            }
            const char *mid;
            json_t *p;
            json_object_foreach(m->pending, mid, p) send_publish(m, mid, p);
        }
        if (m->open)
            return true;
        struct timespec ts = {0, 100 * 1000000};
        nanosleep(&ts, NULL);
    }
    return false;
}

bool mr_test_member_pump(mr_test_member *m, int timeout_ms)
{
    if (!m->open && !mr_test_member_connect(m, 20000))
        ck_abort_msg("%s: cannot connect to any of its relays", m->user);
    int64_t now = mr_test_now_ms();
    const char *mid;
    json_t *p;
    json_object_foreach(m->pending, mid, p)
    {
        if (json_integer_value(json_object_get(p, "due")) <= now)
            send_publish(m, mid, p);
    }
    return read_one(m, timeout_ms);
}

void mr_test_members_publish(mr_test_member *ms, int n, mr_test_member *pub, const char *tag,
                             int from, int to)
{
    char mid[48], data[64];
    for (int i = from; i < to; i++) {
        snprintf(mid, sizeof mid, "%s-%d", tag, i);
        snprintf(data, sizeof data, "{\"i\":%d}", i);
        mr_test_member_publish(pub, mid, data);
        for (int k = 0; k < n; k++)
            while (mr_test_member_pump(&ms[k], 1))
                ;
    }
}

/* Whether every member has every acknowledged message and nothing waits for an ack. */
static bool settled(mr_test_member *ms, int n, const char **missing_user, const char **missing)
{
    for (int i = 0; i < n; i++)
        if (json_object_size(ms[i].pending)) {
            *missing_user = ms[i].user;
            *missing = "(its own publishes are not all acknowledged)";
            return false;
        }
    for (int k = 0; k < n; k++) {
        const char *mid;
        json_t *v;
        json_object_foreach(ms[k].acked, mid, v)
        {
            for (int i = 0; i < n; i++)
                if (!mr_test_member_has(&ms[i], json_string_value(v))) {
                    *missing_user = ms[i].user;
                    *missing = mid;
                    return false;
                }
        }
    }
    return true;
}

void mr_test_members_settle(mr_test_member *ms, int n, int timeout_ms, int quiet_ms)
{
    int64_t deadline = mr_test_now_ms() + timeout_ms;
    const char *who = "", *what = "";
    for (;;) {
        for (int i = 0; i < n; i++)
            while (mr_test_member_pump(&ms[i], 5))
                ;
        if (settled(ms, n, &who, &what))
            break;
        ck_assert_msg(mr_test_now_ms() < deadline, "%s still lacks %s after %d ms", who, what,
                      timeout_ms);
    }
    int64_t end = mr_test_now_ms() + quiet_ms;
    while (mr_test_now_ms() < end)
        for (int i = 0; i < n; i++)
            while (mr_test_now_ms() < end && mr_test_member_pump(&ms[i], 5))
                ;
}

void mr_test_member_report(const mr_test_member *m, const char *what)
{
    printf("%s: %s: %d sessions, %zu messages, duplicate messages %ld, duplicate commits %ld, "
           "replayed at or below since %ld, again after a resume %ld, slow-consumer closes %ld\n",
           what, m->user, m->sessions, json_object_size(m->ever), m->dup_messages, m->dup_commits,
           m->below_since, m->again_after_resume, m->slow_closes);
    (void)fflush(stdout); /* a progress line: the verdict is the test's own */
}
