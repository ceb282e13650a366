/*
 * Backend hooks over HTTP.
 *
 * The lws thread must never wait for an app's backend, so the requests are
 * made by libcurl's multi interface on a thread of this module: the lws
 * thread appends a job under the lock and calls curl_multi_wakeup(); the
 * thread adds it to the multi handle, drives every transfer with
 * curl_multi_perform/curl_multi_poll, turns each finished transfer into a
 * verdict and queues it for the lws thread, which it wakes through the
 * callback (lws_cancel_service, as the NATS bridge does). The multi handle
 * keeps a cache of open connections, so consecutive requests to a backend
 * reuse a kept-alive connection (at most hooks.max_connections per host).
 *
 * Why libcurl rather than libevent's HTTP client (already linked by the
 * admin server): an evhttp_connection is one connection that sends its
 * requests one after the other, so a pool, HTTPS with certificate checks and
 * a limit on the answer's size would all be ours to write; libcurl's multi
 * handle has a connection cache with a per-host limit, verifies TLS by
 * default, bounds the whole exchange with CURLOPT_TIMEOUT_MS and is safe to
 * wake from another thread (curl_multi_wakeup). docs/relay.md says the same.
 *
 * Everything a backend sends is bounded and checked here, on the hook
 * thread: the answer's size (aborted past the limit), its status, that it is
 * a JSON object with a boolean "allow", the reason's length and characters,
 * the replacement data's size. Any failure is logged (at most once a second,
 * with a count) and counted, and becomes the rule's on_failure verdict.
 *
 * The decision cache (lws thread only) remembers publish decisions by
 * msg_id in a ring of hooks.cache_entries slots, each valid for the
 * stream's duplicate window: the window in which a retried mid is
 * deduplicated, hence must get the same message.
 */
#include "relay_hook.h"
#include "mr_alloc.h"
#include "mr_buf.h"
#include "mr_jwt.h"
#include "mr_log.h"
#include "mr_map.h"
#include "mr_time.h"
#include "relay_metrics.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes an answer may have beyond limits.max_message_bytes (allow, reason, punctuation). */
#define ANSWER_SLACK 4096
/* The longest the thread sleeps in curl_multi_poll without a wake-up. */
#define POLL_MS 1000

typedef struct hook_job {
    struct hook_job *next, *prev; /* the submitted list, then the running list */
    uint64_t id;
    /*
     * What the job needs of its rule, copied when it is asked: a SIGHUP may
     * replace the rules (relay_reload.c) while the job is on this thread.
     */
    char *url;
    int64_t timeout_ms;
    bool fail_open;
    bool publish; /* a publish hook: "data" in the answer replaces the message's */
    char *body;
    mr_buf answer;
    size_t answer_max;
    size_t data_max; /* limits.max_message_bytes when asked (a reload may change it) */
    bool too_large;  /* the answer passed answer_max and the transfer was aborted */
    CURL *easy;
    int64_t start_us;
} hook_job;

typedef struct cache_slot {
    char msg_id[MR_MSG_ID_LEN + 1]; /* "" when free */
    int64_t expires_us;
    relay_hook_verdict verdict;
    char *reason; /* DENY only (most slots are allows: no room for a reason in each) */
    json_t *data;
} cache_slot;

struct relay_hooks {
    const relay_config *cfg;
    relay_hooks_wake_cb wake;
    void *ud;
    CURLM *multi;
    struct curl_slist *headers;
    pthread_t thread;
    pthread_mutex_t lock;
    hook_job *jobs, **jobs_tail;          /* submitted, not yet started (under lock) */
    relay_hook_result *done, **done_tail; /* finished, not yet taken (under lock) */
    bool stop;                            /* under lock */
    hook_job *running;                    /* hook thread: transfers in the multi handle */
    int64_t warned_us;                    /* hook thread: last failure warning */
    uint64_t failures_unlogged;           /* hook thread: failures since that warning */
    /* Decision cache (lws thread). */
    cache_slot *slots;
    size_t slot_count, slot_next;
    mr_map cache; /* msg_id -> cache_slot* */
};

/* Answers past their limit abort the transfer (a write callback taking less fails it). */
static size_t on_answer(char *ptr, size_t size, size_t nmemb, void *ud)
{
    hook_job *job = ud;
    size_t n = size * nmemb;
    if (job->answer.len + n > job->answer_max) {
        job->too_large = true;
        return 0;
    }
    mr_buf_append(&job->answer, ptr, n);
    return n;
}

/* Keep the printable characters of a valid UTF-8 reason, cut at a character boundary. */
static void sanitise_reason(const char *in, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        unsigned char ch = (unsigned char)in[i];
        size_t n = ch < 0x80 ? 1 : ch >= 0xf0 ? 4 : ch >= 0xe0 ? 3 : 2;
        if (i + n > len || o + n > RELAY_HOOK_REASON_MAX)
            break;
        if (n == 1 && (ch < 0x20 || ch == 0x7f)) {
            out[o++] = ' '; /* control characters would let a backend forge lines in UIs */
        } else {
            memcpy(out + o, in + i, n);
            o += n;
        }
        i += n;
    }
    out[o] = '\0';
}

/* Count a backend failure and log it, at most once a second (a down backend fails them all). */
static void failure(relay_hooks *h, hook_job *job, const char *why)
{
    mr_metric_inc(&relay_m.hook_failures);
    h->failures_unlogged++;
    int64_t now = mr_now_us();
    if (now - h->warned_us < 1000000)
        return;
    mr_log_warn("hook %s: %s; %s (%llu failures since the last warning)", job->url, why,
                job->fail_open ? "allowed (on_failure: allow)" : "refused as unavailable",
                (unsigned long long)h->failures_unlogged);
    h->warned_us = now;
    h->failures_unlogged = 0;
}

/* Read a 200 answer: {"allow":true|false, "reason":"...", "data":...}. Sets `why` if bad. */
static void read_answer(relay_hooks *h, hook_job *job, relay_hook_result *res, char *why,
                        size_t whylen)
{
    json_error_t jerr;
    json_t *root = json_loadb(job->answer.data ? job->answer.data : "", job->answer.len,
                              JSON_REJECT_DUPLICATES, &jerr);
    json_t *allow = json_object_get(root, "allow");
    json_t *reason = json_object_get(root, "reason");
    json_t *data = json_object_get(root, "data");
    if (!json_is_object(root)) {
        snprintf(why, whylen, "the answer is not a JSON object");
    } else if (!json_is_boolean(allow)) {
        snprintf(why, whylen, "the answer has no boolean \"allow\"");
    } else if (reason && !json_is_string(reason)) {
        snprintf(why, whylen, "\"reason\" is not a string");
    } else if (!json_is_true(allow)) {
        res->verdict = RELAY_HOOK_DENY;
        if (reason)
            sanitise_reason(json_string_value(reason), json_string_length(reason), res->reason);
        mr_metric_inc(&relay_m.hook_denials);
    } else if (data && job->publish) {
        /* The message frame carries the data as compact JSON: bound that, as for clients. */
        size_t n = json_dumpb(data, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
        if (n == 0 || n > job->data_max) {
            snprintf(why, whylen, "replacement data of %zu bytes is over limits.max_message_bytes",
                     n);
        } else {
            res->data = json_incref(data);
            mr_metric_inc(&relay_m.hook_replacements);
        }
    }
    json_decref(root);
}

/* Turn a finished transfer into a verdict (hook thread). */
static relay_hook_result *decide(relay_hooks *h, hook_job *job, CURLcode rc)
{
    relay_hook_result *res = mr_calloc(1, sizeof *res);
    res->id = job->id;
    char why[160] = "";
    long status = 0;
    if (job->easy)
        curl_easy_getinfo(job->easy, CURLINFO_RESPONSE_CODE, &status);
    if (job->too_large)
        snprintf(why, sizeof why, "answer larger than %zu bytes", job->answer_max);
    else if (rc == CURLE_OPERATION_TIMEDOUT)
        snprintf(why, sizeof why, "no answer within %lld ms", (long long)job->timeout_ms);
    else if (rc != CURLE_OK)
        snprintf(why, sizeof why, "%s", curl_easy_strerror(rc));
    else if (status != 200)
        snprintf(why, sizeof why, "HTTP status %ld (200 expected)", status);
    else
        read_answer(h, job, res, why, sizeof why);
    if (why[0]) {
        failure(h, job, why);
        res->failed = true;
        res->verdict = job->fail_open ? RELAY_HOOK_ALLOW : RELAY_HOOK_UNAVAILABLE;
    }
    mr_metric_observe_us(&relay_m.hook_latency, (uint64_t)(mr_now_us() - job->start_us));
    return res;
}

static void job_free(hook_job *job)
{
    free(job->body);
    free(job->url);
    mr_buf_free(&job->answer);
    free(job);
}

static void finish(relay_hooks *h, hook_job *job, CURLcode rc)
{
    relay_hook_result *res = decide(h, job, rc);
    if (job->easy) {
        curl_multi_remove_handle(h->multi, job->easy);
        curl_easy_cleanup(job->easy);
        if (job->prev)
            job->prev->next = job->next;
        else
            h->running = job->next;
        if (job->next)
            job->next->prev = job->prev;
    }
    job_free(job);
    pthread_mutex_lock(&h->lock);
    *h->done_tail = res;
    h->done_tail = &res->next;
    pthread_mutex_unlock(&h->lock);
}

static void start(relay_hooks *h, hook_job *job)
{
    job->start_us = mr_now_us();
    CURL *e = job->body ? curl_easy_init() : NULL; /* no body: json_dumps failed */
    if (!e) {
        finish(h, job, CURLE_OUT_OF_MEMORY);
        return;
    }
    curl_easy_setopt(e, CURLOPT_URL, job->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->headers);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, job->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(job->body));
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)job->timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_USERAGENT, "meridian-relay");
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_answer);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, job);
    curl_easy_setopt(e, CURLOPT_PRIVATE, job);
    if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        finish(h, job, CURLE_FAILED_INIT);
        return;
    }
    job->easy = e;
    job->prev = NULL;
    job->next = h->running;
    if (h->running)
        h->running->prev = job;
    h->running = job;
}

static void *hook_main(void *arg)
{
    relay_hooks *h = arg;
    for (;;) {
        pthread_mutex_lock(&h->lock);
        bool stop = h->stop;
        hook_job *jobs = h->jobs;
        h->jobs = NULL;
        h->jobs_tail = &h->jobs;
        pthread_mutex_unlock(&h->lock);
        while (jobs) {
            hook_job *next = jobs->next;
            if (stop)
                job_free(jobs);
            else
                start(h, jobs);
            jobs = next;
        }
        if (stop)
            break;
        int running = 0;
        curl_multi_perform(h->multi, &running);
        CURLMsg *m;
        int left;
        bool finished = false;
        while ((m = curl_multi_info_read(h->multi, &left))) {
            if (m->msg != CURLMSG_DONE)
                continue;
            char *job = NULL;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &job);
            finish(h, (hook_job *)(void *)job, m->data.result);
            finished = true;
        }
        if (finished)
            h->wake(h->ud);
        curl_multi_poll(h->multi, NULL, 0, POLL_MS, NULL);
    }
    /* Transfers still running are dropped with the relay. */
    while (h->running) {
        hook_job *job = h->running;
        h->running = job->next;
        curl_multi_remove_handle(h->multi, job->easy);
        curl_easy_cleanup(job->easy);
        job_free(job);
    }
    return NULL;
}

relay_hooks *relay_hooks_new(const relay_config *cfg, relay_hooks_wake_cb wake, void *ud,
                             bool *failed)
{
    *failed = false;
    if (cfg->hooks.rule_count == 0)
        return NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        mr_log_error("hooks: libcurl cannot start");
        *failed = true;
        return NULL;
    }
    relay_hooks *h = mr_calloc(1, sizeof *h);
    h->cfg = cfg;
    h->wake = wake;
    h->ud = ud;
    h->jobs_tail = &h->jobs;
    h->done_tail = &h->done;
    pthread_mutex_init(&h->lock, NULL);
    mr_map_init(&h->cache);
    h->slot_count = (size_t)cfg->hooks.cache_entries;
    if (h->slot_count)
        h->slots = mr_calloc(h->slot_count, sizeof *h->slots);
    h->multi = curl_multi_init();
    if (h->multi) {
        curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                          (long)cfg->hooks.max_connections);
        /* Room in the cache for every rule's host, so no kept-alive connection is closed. */
        curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS,
                          (long)(cfg->hooks.max_connections * (int64_t)cfg->hooks.rule_count));
    }
    /* No "Expect: 100-continue": it would cost a round trip on larger bodies. */
    h->headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (h->headers)
        h->headers = curl_slist_append(h->headers, "Expect:");
    if (!h->multi || !h->headers || pthread_create(&h->thread, NULL, hook_main, h) != 0) {
        mr_log_error("hooks: cannot start the hook thread");
        curl_multi_cleanup(h->multi);
        curl_slist_free_all(h->headers);
        mr_map_free(&h->cache, NULL);
        free(h->slots);
        pthread_mutex_destroy(&h->lock);
        free(h);
        curl_global_cleanup();
        *failed = true;
        return NULL;
    }
    return h;
}

const relay_hook_rule *relay_hooks_match(relay_hooks *h, int event, const char *room,
                                         size_t room_len)
{
    if (!h)
        return NULL;
    for (size_t i = 0; i < h->cfg->hooks.rule_count; i++) {
        const relay_hook_rule *rule = &h->cfg->hooks.rules[i];
        if ((rule->events & event) && mr_jwt_room_allowed(rule->rooms, room, room_len))
            return rule;
    }
    return NULL;
}

void relay_hooks_call(relay_hooks *h, const relay_hook_rule *rule, int event, uint64_t id,
                      char *body)
{
    hook_job *job = mr_calloc(1, sizeof *job);
    job->id = id;
    job->url = mr_strdup(rule->url);
    job->timeout_ms = rule->timeout_ms;
    job->fail_open = rule->fail_open;
    job->publish = event == RELAY_HOOK_ON_PUBLISH;
    job->body = body;
    job->data_max = (size_t)h->cfg->limits.max_message_bytes;
    job->answer_max = job->data_max + ANSWER_SLACK;
    mr_metric_inc(&relay_m.hook_calls);
    pthread_mutex_lock(&h->lock);
    *h->jobs_tail = job;
    h->jobs_tail = &job->next;
    pthread_mutex_unlock(&h->lock);
    curl_multi_wakeup(h->multi);
}

relay_hook_result *relay_hooks_take(relay_hooks *h)
{
    if (!h)
        return NULL;
    pthread_mutex_lock(&h->lock);
    relay_hook_result *list = h->done;
    h->done = NULL;
    h->done_tail = &h->done;
    pthread_mutex_unlock(&h->lock);
    return list;
}

void relay_hook_result_free(relay_hook_result *res)
{
    if (!res)
        return;
    json_decref(res->data);
    free(res);
}

bool relay_hooks_cached(relay_hooks *h, const char *msg_id, relay_hook_result *out)
{
    if (!h)
        return false;
    cache_slot *s = mr_map_get(&h->cache, msg_id, MR_MSG_ID_LEN);
    if (!s || s->expires_us < mr_now_us())
        return false;
    memset(out, 0, sizeof *out);
    out->verdict = s->verdict;
    snprintf(out->reason, sizeof out->reason, "%s", s->reason ? s->reason : "");
    out->data = s->data ? json_incref(s->data) : NULL;
    mr_metric_inc(&relay_m.hook_cached);
    return true;
}

void relay_hooks_remember(relay_hooks *h, const char *msg_id, const relay_hook_result *res)
{
    if (!h || h->slot_count == 0)
        return;
    cache_slot *s = mr_map_get(&h->cache, msg_id, MR_MSG_ID_LEN);
    if (!s) {
        /* The oldest slot goes: the ring holds the latest cache_entries decisions. */
        s = &h->slots[h->slot_next];
        h->slot_next = (h->slot_next + 1) % h->slot_count;
        if (s->msg_id[0])
            mr_map_del(&h->cache, s->msg_id, MR_MSG_ID_LEN);
        memcpy(s->msg_id, msg_id, MR_MSG_ID_LEN + 1);
        mr_map_put(&h->cache, s->msg_id, MR_MSG_ID_LEN, s);
    }
    json_decref(s->data);
    free(s->reason);
    s->verdict = res->verdict;
    s->reason = res->verdict == RELAY_HOOK_DENY ? mr_strdup(res->reason) : NULL;
    s->data = res->data ? json_incref(res->data) : NULL;
    s->expires_us = mr_now_us() + h->cfg->stream_duplicate_window_s * 1000000;
}

void relay_hooks_free(relay_hooks *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->lock);
    h->stop = true;
    pthread_mutex_unlock(&h->lock);
    curl_multi_wakeup(h->multi);
    pthread_join(h->thread, NULL);
    relay_hook_result *res = relay_hooks_take(h);
    while (res) {
        relay_hook_result *next = res->next;
        relay_hook_result_free(res);
        res = next;
    }
    for (size_t i = 0; i < h->slot_count; i++) {
        json_decref(h->slots[i].data);
        free(h->slots[i].reason);
    }
    free(h->slots);
    mr_map_free(&h->cache, NULL);
    curl_multi_cleanup(h->multi);
    curl_slist_free_all(h->headers);
    pthread_mutex_destroy(&h->lock);
    free(h);
    curl_global_cleanup();
}
