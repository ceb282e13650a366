/*
 * DNS answer verification with c-ares on the agent's libevent loop.
 *
 * c-ares tells us which sockets it wants watched through its socket-state
 * callback; each gets a libevent event that calls ares_process_fd(). A timer
 * drives c-ares' own retransmission (ares_timeout). After each answer that
 * does not match yet, the next query waits a short poll interval, so a
 * server that is slow to apply a change is asked about ten times a second
 * until the deadline.
 *
 * The query goes from a source address inside the geography being checked
 * (ares_set_local_ip4): PowerDNS's LUA record picks its answer by that
 * address, exactly as it does for a real client there.
 *
 * A channel cannot be destroyed from inside one of its own callbacks, so
 * teardown is deferred to the next loop turn.
 */
#include "hc_verify.h"
#include "mr_alloc.h"
#include "mr_time.h"

#include <arpa/inet.h>
#include <ares.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HC_VERIFY_MAX_FDS 8
#define HC_VERIFY_POLL_MS 100

struct hc_verify {
    struct event_base *base;
    ares_channel channel;
    struct {
        int fd;
        struct event *ev;
    } fds[HC_VERIFY_MAX_FDS];
    struct event *tick; /* c-ares timeouts and the poll interval */
    char *name;
    char **expected; /* sorted */
    size_t n_expected;
    bool query_only; /* report the first answer, whatever it is */
    int64_t t0_us;
    int64_t deadline_us;
    bool in_flight;
    bool done;
    char last[512];
    hc_verify_cb cb;
    void *ud;
};

int hc_verify_global_init(void)
{
    return ares_library_init(ARES_LIB_INIT_ALL) == ARES_SUCCESS ? 0 : -1;
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void destroy_now(evutil_socket_t fd, short what, void *arg)
{
    hc_verify *v = arg;
    /* ares_destroy first: it closes its sockets through on_sock_state, which
     * frees their events, and calls a pending query's callback with
     * ARES_EDESTRUCTION (`done` is set, so it returns at once). */
    ares_destroy(v->channel);
    for (int i = 0; i < HC_VERIFY_MAX_FDS; i++)
        if (v->fds[i].ev)
            event_free(v->fds[i].ev);
    event_free(v->tick);
    for (size_t i = 0; i < v->n_expected; i++)
        free(v->expected[i]);
    free(v->expected);
    free(v->name);
    free(v);
}

static void finish(hc_verify *v, bool ok)
{
    if (v->done)
        return;
    v->done = true;
    double s = (double)(mr_now_us() - v->t0_us) / 1e6;
    if (v->cb)
        v->cb(ok, s, v->last, v->ud);
    struct timeval zero = {0, 0};
    event_base_once(v->base, -1, EV_TIMEOUT, destroy_now, v, &zero);
}

static void arm_tick(hc_verify *v, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    struct timeval max = tv, *t = ares_timeout(v->channel, &max, &tv);
    event_add(v->tick, t);
}

static void send_query(hc_verify *v);

static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    hc_verify *v = arg;
    v->in_flight = false;
    if (v->done || status == ARES_EDESTRUCTION)
        return;
    char *got[64];
    size_t n = 0;
    if (status == ARES_SUCCESS) {
        struct ares_addrttl ttls[64];
        int nttl = 64;
        struct hostent *he = NULL;
        int pr = ares_parse_a_reply(abuf, alen, &he, ttls, &nttl);
        if (pr == ARES_SUCCESS) {
            for (int i = 0; i < nttl && n < 64; i++) {
                char ip[INET_ADDRSTRLEN];
                inet_ntop(AF_INET, &ttls[i].ipaddr, ip, sizeof ip);
                got[n++] = mr_strdup(ip);
            }
        } else {
            status = pr;
        }
        if (he)
            ares_free_hostent(he);
    }
    if (status == ARES_SUCCESS || status == ARES_ENODATA) {
        qsort(got, n, sizeof *got, str_cmp);
        size_t off = 0;
        v->last[0] = '\0';
        for (size_t i = 0; i < n && off < sizeof v->last - 20; i++)
            off +=
                (size_t)snprintf(v->last + off, sizeof v->last - off, "%s%s", i ? "," : "", got[i]);
        bool same = n == v->n_expected;
        for (size_t i = 0; same && i < n; i++)
            same = strcmp(got[i], v->expected[i]) == 0;
        for (size_t i = 0; i < n; i++)
            free(got[i]);
        if (same || v->query_only) {
            finish(v, true);
            return;
        }
    } else {
        snprintf(v->last, sizeof v->last, "query failed: %s", ares_strerror(status));
    }
    if (mr_now_us() >= v->deadline_us) {
        finish(v, false);
        return;
    }
    arm_tick(v, HC_VERIFY_POLL_MS);
}

static void send_query(hc_verify *v)
{
    v->in_flight = true;
    ares_query(v->channel, v->name, 1 /* C_IN */, 1 /* T_A */, on_answer, v);
}

static void on_fd(evutil_socket_t fd, short what, void *arg)
{
    hc_verify *v = arg;
    ares_process_fd(v->channel, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
                    (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
    if (!v->done && v->in_flight)
        arm_tick(v, 1000);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    hc_verify *v = arg;
    if (v->done)
        return;
    if (v->in_flight) {
        /* Let c-ares retransmit or give up on its own timers. */
        ares_process_fd(v->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
        if (!v->done && v->in_flight)
            arm_tick(v, 1000);
        return;
    }
    if (mr_now_us() >= v->deadline_us) {
        finish(v, false);
        return;
    }
    send_query(v);
    if (!v->done && v->in_flight)
        arm_tick(v, 1000);
}

static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    hc_verify *v = data;
    int slot = -1, free_slot = -1;
    for (int i = 0; i < HC_VERIFY_MAX_FDS; i++) {
        if (v->fds[i].ev && v->fds[i].fd == fd)
            slot = i;
        else if (!v->fds[i].ev && free_slot < 0)
            free_slot = i;
    }
    if (slot >= 0) {
        event_free(v->fds[slot].ev);
        v->fds[slot].ev = NULL;
    }
    if (!readable && !writable)
        return;
    if (slot < 0)
        slot = free_slot;
    if (slot < 0)
        return; /* cannot happen with one server and one query at a time */
    short what = (short)(EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0));
    v->fds[slot].fd = fd;
    v->fds[slot].ev = event_new(v->base, fd, what, on_fd, v);
    event_add(v->fds[slot].ev, NULL);
}

static hc_verify *start(struct event_base *base, const char *server_ip, int port,
                        const char *source_ip, const char *name, char *const *expected,
                        size_t n_expected, bool query_only, int64_t t0_us, int timeout_ms,
                        hc_verify_cb cb, void *ud, char *err, size_t errlen)
{
    struct in_addr src = {0};
    if (source_ip && inet_pton(AF_INET, source_ip, &src) != 1) {
        snprintf(err, errlen, "source address \"%s\" is not an IPv4 literal", source_ip);
        return NULL;
    }
    hc_verify *v = mr_calloc(1, sizeof *v);
    v->base = base;
    struct ares_options opts = {0};
    opts.sock_state_cb = on_sock_state;
    opts.sock_state_cb_data = v;
    opts.timeout = 300;
    opts.tries = 2;
    opts.flags = ARES_FLAG_NORECURSE | ARES_FLAG_NOSEARCH;
    int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS;
    int rc = ares_init_options(&v->channel, &opts, mask);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "c-ares init: %s", ares_strerror(rc));
        free(v);
        return NULL;
    }
    char csv[128];
    snprintf(csv, sizeof csv, "%s:%d", server_ip, port);
    rc = ares_set_servers_ports_csv(v->channel, csv);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "c-ares server \"%s\": %s", csv, ares_strerror(rc));
        ares_destroy(v->channel);
        free(v);
        return NULL;
    }
    if (source_ip)
        ares_set_local_ip4(v->channel, ntohl(src.s_addr));
    v->name = mr_strdup(name);
    v->expected = mr_calloc(n_expected + 1, sizeof(char *));
    for (size_t i = 0; i < n_expected; i++)
        v->expected[i] = mr_strdup(expected[i]);
    qsort(v->expected, n_expected, sizeof(char *), str_cmp);
    v->n_expected = n_expected;
    v->query_only = query_only;
    v->t0_us = t0_us;
    v->deadline_us = mr_now_us() + (int64_t)timeout_ms * 1000;
    v->cb = cb;
    v->ud = ud;
    v->tick = evtimer_new(base, on_tick, v);
    send_query(v);
    arm_tick(v, 1000);
    return v;
}

hc_verify *hc_verify_start(struct event_base *base, const char *server_ip, int port,
                           const char *source_ip, const char *name, char *const *expected,
                           size_t n_expected, int64_t t0_us, int timeout_ms, hc_verify_cb cb,
                           void *ud, char *err, size_t errlen)
{
    return start(base, server_ip, port, source_ip, name, expected, n_expected, false, t0_us,
                 timeout_ms, cb, ud, err, errlen);
}

hc_verify *hc_verify_query(struct event_base *base, const char *server_ip, int port,
                           const char *source_ip, const char *name, int timeout_ms, hc_verify_cb cb,
                           void *ud, char *err, size_t errlen)
{
    return start(base, server_ip, port, source_ip, name, NULL, 0, true, mr_now_us(), timeout_ms, cb,
                 ud, err, errlen);
}

void hc_verify_cancel(hc_verify *v)
{
    if (!v || v->done)
        return;
    v->done = true;
    struct timeval zero = {0, 0};
    event_base_once(v->base, -1, EV_TIMEOUT, destroy_now, v, &zero);
}
