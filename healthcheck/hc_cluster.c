/*
 * The agents' shared plane over core NATS.
 *
 * libnats runs here in its own threads rather than on the agent's libevent
 * loop: message callbacks run on libnats' delivery thread, and a lease
 * thread drives the lease's clock. The lease state machine (hc_lease.c) and
 * the drain flags are guarded by `mu`; the agent's loop reads them through
 * the accessors below.
 *
 * Every step of the lease goes the same way: under `mu`, feed the state
 * machine (a received message, or the time), write the state file when the
 * term or the vote changed, and only then publish what it asked to send: a
 * vote leaves this process only once it would survive a crash.
 *
 * The lease's clock is CLOCK_BOOTTIME, which keeps counting while the
 * machine is suspended: a holder that slept past its lease wakes up knowing
 * it no longer holds (CLOCK_MONOTONIC stops during suspend).
 */
#include "hc_cluster.h"
#include "mr_alloc.h"
#include "mr_log.h"
#include "mr_time.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LEASE_STEP_MS 20 /* the lease thread's period: elections react this fast */

struct hc_cluster {
    hc_cluster_conf conf;
    char *agent_id;
    char *state_path;
    char **regions;
    natsConnection *nc;
    mr_nats_watch *watch; /* says why NATS is not up */
    natsSubscription *sub, *lease_sub;
    hc_cluster_obs_cb cb;
    void *ud;

    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cond; /* CLOCK_MONOTONIC */
    bool stopping;
    bool closed; /* the connection's closed callback ran: no callback follows */
    /* Subscriptions whose completion callback is set, and how many have run it (under mu):
     * only then has their message handler returned for the last time. */
    int subs_watched, subs_done;

    atomic_bool connected;
    hc_lease lease;          /* under mu */
    int64_t held_since_wall; /* under mu: when the current term was taken */
    bool was_held;           /* under mu */
    hc_drain_flag *drains;   /* under mu, n_regions */
    bool persist_failed;     /* under mu: log once */
};

static int64_t lease_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---------- the state file ---------- */

static int save_state(hc_cluster *c)
{
    json_t *d = json_array();
    for (size_t i = 0; i < c->conf.n_regions; i++)
        json_array_append_new(d,
                              json_pack("{s:s, s:b, s:I, s:s}", "region", c->regions[i], "drained",
                                        c->drains[i].drained, "version",
                                        (json_int_t)c->drains[i].version, "by", c->drains[i].by));
    json_t *root = json_pack("{s:I, s:s, s:o}", "term", (json_int_t)c->lease.term, "voted_for",
                             c->lease.voted_for, "drains", d);
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    size_t n = strlen(c->state_path);
    char *tmp = mr_malloc(n + 5);
    memcpy(tmp, c->state_path, n);
    memcpy(tmp + n, ".tmp", 5);
    int rc = -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        size_t len = strlen(text);
        bool ok = write(fd, text, len) == (ssize_t)len && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
        ok = close(fd) == 0 && ok;
        if (ok && rename(tmp, c->state_path) == 0) {
            /* The rename itself must survive a crash too. */
            char *dir = mr_strdup(c->state_path);
            int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dfd >= 0) {
                fsync(dfd);
                close(dfd);
            }
            free(dir);
            rc = 0;
        }
    }
    if (rc != 0 && !c->persist_failed)
        mr_log_error("lease: cannot write the state file %s: %s; this agent neither votes nor "
                     "campaigns until it can",
                     c->state_path, strerror(errno));
    c->persist_failed = rc != 0;
    free(tmp);
    free(text);
    return rc;
}

static int load_state(hc_cluster *c, uint64_t *term, char *voted, size_t vlen, char *err,
                      size_t errlen)
{
    *term = 0;
    voted[0] = '\0';
    if (access(c->state_path, F_OK) != 0)
        return 0; /* first start */
    json_error_t je;
    json_t *root = json_load_file(c->state_path, JSON_REJECT_DUPLICATES, &je);
    json_t *t = json_object_get(root, "term"), *v = json_object_get(root, "voted_for");
    json_t *d = json_object_get(root, "drains");
    if (!root || !json_is_integer(t) || json_integer_value(t) < 0 || !json_is_string(v) ||
        json_string_length(v) >= vlen || (d && !json_is_array(d))) {
        snprintf(err, errlen,
                 "%s: not a valid health agent state file (%s); it holds this agent's lease "
                 "term and vote: remove it only with every agent stopped",
                 c->state_path, root ? "bad or missing term/voted_for/drains" : je.text);
        json_decref(root);
        return -1;
    }
    *term = (uint64_t)json_integer_value(t);
    snprintf(voted, vlen, "%s", json_string_value(v));
    size_t i;
    json_t *e;
    json_array_foreach(d, i, e)
    {
        const char *region = json_string_value(json_object_get(e, "region"));
        const char *by = json_string_value(json_object_get(e, "by"));
        json_int_t ver = json_integer_value(json_object_get(e, "version"));
        for (size_t r = 0; region && by && ver >= 0 && r < c->conf.n_regions; r++) {
            if (strcmp(c->regions[r], region) != 0)
                continue;
            c->drains[r].drained = json_is_true(json_object_get(e, "drained"));
            c->drains[r].version = (uint64_t)ver;
            snprintf(c->drains[r].by, sizeof c->drains[r].by, "%s", by);
        }
    }
    json_decref(root);
    return 0;
}

/* ---------- the lease ---------- */

/* Under mu: after any step, note a change of holding and persist. Returns
 * false when the outgoing messages must not be sent (persisting failed). */
static bool after_step(hc_cluster *c, const hc_lease_out *out, int64_t now)
{
    bool held = hc_lease_held(&c->lease, now);
    if (held && !c->was_held) {
        c->held_since_wall = mr_wall_ms();
        mr_log_info("lease: this agent holds the lease (term %llu); it writes DNS",
                    (unsigned long long)c->lease.held_term);
    } else if (!held && c->was_held) {
        mr_log_warn("lease: this agent no longer holds the lease");
    }
    c->was_held = held;
    if (out->persist && save_state(c) != 0)
        return false;
    return !c->persist_failed;
}

static void send_out(hc_cluster *c, const hc_lease_out *out)
{
    if (!atomic_load(&c->connected))
        return;
    for (size_t i = 0; i < out->n; i++) {
        mr_buf b = MR_BUF_INIT;
        hc_wire_lease_encode(&out->msg[i], &b);
        natsConnection_Publish(c->nc, HC_CLUSTER_LEASE_SUBJECT, b.data, (int)b.len);
        mr_buf_free(&b);
    }
}

static void on_lease_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    hc_cluster *c = closure;
    hc_lease_msg m;
    const char *data = natsMsg_GetData(msg);
    int len = natsMsg_GetDataLength(msg);
    if (len <= 0 || hc_wire_lease_parse(data, (size_t)len, &m) != 0) {
        mr_log_debug("lease: malformed message ignored (%d bytes)", len);
        natsMsg_Destroy(msg);
        return;
    }
    natsMsg_Destroy(msg);
    hc_lease_out out = {0};
    pthread_mutex_lock(&c->mu);
    int64_t now = lease_now_us();
    hc_lease_receive(&c->lease, &m, now, &out);
    bool send = after_step(c, &out, now);
    pthread_mutex_unlock(&c->mu);
    if (send)
        send_out(c, &out);
}

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    hc_cluster *c = closure;
    int len = natsMsg_GetDataLength(msg);
    if (len > 0 && len <= HC_WIRE_MAX_BYTES)
        c->cb(c, natsMsg_GetData(msg), (size_t)len, c->ud);
    natsMsg_Destroy(msg);
}

/* libnats: this subscription's message handler has returned and will not run again. */
static void on_sub_complete(void *closure)
{
    hc_cluster *c = closure;
    pthread_mutex_lock(&c->mu);
    c->subs_done++;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
}

static void watch_sub(hc_cluster *c, natsSubscription *sub)
{
    if (sub && natsSubscription_SetOnCompleteCB(sub, on_sub_complete, c) == NATS_OK)
        c->subs_watched++;
}

/*
 * Unsubscribing does not wait for a message handler already running on a
 * libnats thread (nats.h says so at natsSubscription_SetOnCompleteCB): wait
 * for each handler's last return before `c` is freed (bounded, like
 * close_connection).
 */
static void unsubscribe_all(hc_cluster *c)
{
    natsSubscription_Unsubscribe(c->sub);
    natsSubscription_Unsubscribe(c->lease_sub);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += 3;
    pthread_mutex_lock(&c->mu);
    while (c->subs_done < c->subs_watched)
        if (pthread_cond_timedwait(&c->cond, &c->mu, &ts) != 0)
            break;
    pthread_mutex_unlock(&c->mu);
    natsSubscription_Destroy(c->sub);
    natsSubscription_Destroy(c->lease_sub);
    c->sub = c->lease_sub = NULL;
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    hc_cluster *c = closure;
    if (atomic_exchange(&c->connected, false))
        mr_log_warn("NATS: disconnected; this agent stops writing DNS");
}

static void on_closed(natsConnection *nc, void *closure)
{
    hc_cluster *c = closure;
    pthread_mutex_lock(&c->mu);
    c->closed = true;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
}

static void on_connected(natsConnection *nc, void *closure)
{
    hc_cluster *c = closure;
    atomic_store(&c->connected, true);
    mr_log_info("NATS: connected");
}

/* libnats runs connection callbacks on its own thread, after the call that
 * causes them returns: wait for the closed callback, the last one, before
 * freeing what they touch (bounded, in case it never comes). */
static void close_connection(hc_cluster *c)
{
    if (!c->nc)
        return;
    natsConnection_Close(c->nc);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += 3;
    pthread_mutex_lock(&c->mu);
    while (!c->closed)
        if (pthread_cond_timedwait(&c->cond, &c->mu, &ts) != 0)
            break;
    pthread_mutex_unlock(&c->mu);
    natsConnection_Destroy(c->nc);
    c->nc = NULL;
}

static void *lease_main(void *arg)
{
    hc_cluster *c = arg;
    for (;;) {
        hc_lease_out out = {0};
        bool send = false;
        pthread_mutex_lock(&c->mu);
        if (c->stopping) {
            pthread_mutex_unlock(&c->mu);
            break;
        }
        int64_t now = lease_now_us();
        /* Without NATS no round can succeed: do not start one (its term
         * would only inflate), but let a held lease run out by the clock. */
        if (atomic_load(&c->connected)) {
            hc_lease_tick(&c->lease, now, &out);
            send = after_step(c, &out, now);
        } else {
            after_step(c, &out, now);
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = ts.tv_nsec + (int64_t)LEASE_STEP_MS * 1000000;
        ts.tv_sec += ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        pthread_mutex_unlock(&c->mu);
        if (send)
            send_out(c, &out);
        pthread_mutex_lock(&c->mu);
        if (!c->stopping)
            pthread_cond_timedwait(&c->cond, &c->mu, &ts);
        pthread_mutex_unlock(&c->mu);
    }
    return NULL;
}

static void free_cluster(hc_cluster *c)
{
    for (size_t i = 0; i < c->conf.n_regions; i++)
        free(c->regions[i]);
    free(c->regions);
    free(c->drains);
    free(c->agent_id);
    free(c->state_path);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

hc_cluster *hc_cluster_start(const hc_cluster_conf *conf, hc_cluster_obs_cb cb, void *ud, char *err,
                             size_t errlen)
{
    if (!conf->nats || conf->nats->n_urls == 0) {
        snprintf(err, errlen, "nats: at least one URL is required");
        return NULL;
    }
    hc_cluster *c = mr_calloc(1, sizeof *c);
    c->conf = *conf;
    c->agent_id = mr_strdup(conf->agent_id);
    c->state_path = mr_strdup(conf->state_path);
    c->regions = mr_calloc(conf->n_regions + 1, sizeof(char *));
    for (size_t i = 0; i < conf->n_regions; i++)
        c->regions[i] = mr_strdup(conf->regions[i]);
    c->drains = mr_calloc(conf->n_regions + 1, sizeof *c->drains);
    c->cb = cb;
    c->ud = ud;
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &ca);
    pthread_condattr_destroy(&ca);

    uint64_t term;
    char voted[HC_LEASE_ID_MAX];
    if (load_state(c, &term, voted, sizeof voted, err, errlen) != 0) {
        free_cluster(c);
        return NULL;
    }
    hc_lease_conf lc = {.self = conf->lease_id,
                        .members = conf->members,
                        .n_members = conf->n_members,
                        .ttl_us = (int64_t)conf->lease_ttl_ms * 1000,
                        .margin_us = (int64_t)conf->lease_margin_ms * 1000,
                        .renew_us = (int64_t)conf->lease_renew_ms * 1000,
                        .round_us = (int64_t)conf->lease_renew_ms * 1000 / 2};
    if (hc_lease_init(&c->lease, &lc, term, voted, lease_now_us()) != 0) {
        snprintf(err, errlen,
                 "lease: \"%s\" must be one of lease.members, which must be distinct "
                 "ids of 1..63 bytes",
                 conf->lease_id);
        free_cluster(c);
        return NULL;
    }
    /* Persist now: a state directory that cannot be written is a start-up
     * error, not a surprise at the first vote. */
    if (save_state(c) != 0) {
        snprintf(err, errlen, "lease: cannot write the state file %s: %s", c->state_path,
                 strerror(errno));
        free_cluster(c);
        return NULL;
    }
    mr_log_info("lease: member %s of %zu (term %llu); no votes for %d ms after start",
                conf->lease_id, conf->n_members, (unsigned long long)term, conf->lease_ttl_ms);

    natsOptions *o = NULL;
    natsOptions_Create(&o);
    if (mr_nats_conf_apply(conf->nats, o, err, errlen) != 0) {
        natsOptions_Destroy(o);
        free_cluster(c);
        return NULL;
    }
    natsOptions_SetName(o, conf->agent_id);
    natsOptions_SetTimeout(o, 1000);
    /* A dead server must be noticed within a couple of seconds. */
    natsOptions_SetPingInterval(o, 1000);
    natsOptions_SetMaxPingsOut(o, 2);
    natsOptions_SetMaxReconnect(o, -1);
    natsOptions_SetReconnectWait(o, 250);
    natsOptions_SetDisconnectedCB(o, on_disconnected, c);
    natsOptions_SetReconnectedCB(o, on_connected, c);
    natsOptions_SetClosedCB(o, on_closed, c);
    natsStatus s = mr_nats_connect(&c->nc, o, on_connected, c);
    natsOptions_Destroy(o);
    if (s == NATS_OK) {
        atomic_store(&c->connected, true);
    } else if (s == NATS_NOT_YET_CONNECTED) {
        mr_log_warn("NATS: no server reachable yet; retrying in the background");
    } else {
        snprintf(err, errlen, "nats: %s", natsStatus_GetText(s));
        goto err;
    }
    c->watch = mr_nats_watch_start(conf->nats, c->nc);
    s = natsConnection_Subscribe(&c->sub, c->nc, HC_CLUSTER_OBS_SUBJECT, on_msg, c);
    if (s == NATS_OK)
        s = natsConnection_Subscribe(&c->lease_sub, c->nc, HC_CLUSTER_LEASE_SUBJECT, on_lease_msg,
                                     c);
    watch_sub(c, c->sub);
    watch_sub(c, c->lease_sub);
    if (mr_nats_given_up(c->nc, s)) {
        /* libnats gave up on a server that refused the handshake (bad
         * credentials, untrusted certificate: mr_nats_opts.c): run on, not
         * ready, while the watcher says why. */
        s = NATS_OK;
    }
    if (s != NATS_OK) {
        snprintf(err, errlen, "nats subscribe: %s", natsStatus_GetText(s));
        goto err;
    }
    if (pthread_create(&c->thread, NULL, lease_main, c) != 0) {
        snprintf(err, errlen, "cannot start the lease thread");
        goto err;
    }
    c->thread_started = true;
    return c;
err:
    mr_nats_watch_stop(c->watch);
    natsSubscription_Destroy(c->sub);
    natsSubscription_Destroy(c->lease_sub);
    close_connection(c);
    free_cluster(c);
    return NULL;
}

void hc_cluster_stop(hc_cluster *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stopping = true;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->mu);
    if (c->thread_started)
        pthread_join(c->thread, NULL);
    /* Give the lease back so another agent need not wait for the TTL: the
     * members drop their promise to us. The agent stopped writing before. */
    hc_lease_out out = {0};
    pthread_mutex_lock(&c->mu);
    hc_lease_release(&c->lease, lease_now_us(), &out);
    pthread_mutex_unlock(&c->mu);
    send_out(c, &out);
    if (out.n && c->nc)
        natsConnection_FlushTimeout(c->nc, 500);
    unsubscribe_all(c);
    mr_nats_watch_stop(c->watch);
    close_connection(c);
    free_cluster(c);
}

int hc_cluster_publish(hc_cluster *c, const char *data, size_t len)
{
    if (!atomic_load(&c->connected))
        return -1;
    return natsConnection_Publish(c->nc, HC_CLUSTER_OBS_SUBJECT, data, (int)len) == NATS_OK ? 0
                                                                                            : -1;
}

bool hc_cluster_connected(hc_cluster *c)
{
    return atomic_load(&c->connected);
}

void hc_cluster_describe(hc_cluster *c, mr_buf *json)
{
    mr_nats_watch_describe(c->watch, hc_cluster_connected(c), json);
}

void hc_cluster_lease(hc_cluster *c, hc_cluster_lease_info *out)
{
    memset(out, 0, sizeof *out);
    bool connected = atomic_load(&c->connected);
    pthread_mutex_lock(&c->mu);
    int64_t now = lease_now_us();
    out->held = connected && hc_lease_held(&c->lease, now);
    if (out->held) {
        out->term = hc_lease_term(&c->lease, now);
        out->left_us = hc_lease_left_us(&c->lease, now);
        out->since_wall_ms = c->held_since_wall;
    }
    snprintf(out->promised, sizeof out->promised, "%s", hc_lease_promised(&c->lease, now));
    out->voted_term = c->lease.term;
    pthread_mutex_unlock(&c->mu);
}

bool hc_cluster_lease_held(hc_cluster *c)
{
    hc_cluster_lease_info li;
    hc_cluster_lease(c, &li);
    return li.held;
}

int hc_cluster_set_drain(hc_cluster *c, const char *region, bool drained, char *err, size_t errlen)
{
    if (!atomic_load(&c->connected)) {
        snprintf(err, errlen, "not connected to NATS: the flag could not reach the other agents");
        return -1;
    }
    int rc = -1;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->conf.n_regions; i++) {
        if (strcmp(c->regions[i], region) != 0)
            continue;
        /* One above every version seen for this region, so this request
         * wins over every change any agent has made so far. */
        c->drains[i].drained = drained;
        c->drains[i].version++;
        snprintf(c->drains[i].by, sizeof c->drains[i].by, "%s", c->conf.lease_id);
        rc = save_state(c);
        if (rc != 0)
            snprintf(err, errlen, "cannot store the drain flag in %s", c->state_path);
    }
    pthread_mutex_unlock(&c->mu);
    if (rc != 0 && !err[0])
        snprintf(err, errlen, "unknown region \"%s\"", region);
    return rc;
}

void hc_cluster_drains(hc_cluster *c, bool *out)
{
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->conf.n_regions; i++)
        out[i] = c->drains[i].drained;
    pthread_mutex_unlock(&c->mu);
}

void hc_cluster_drain_flags(hc_cluster *c, hc_drain_flag *out)
{
    pthread_mutex_lock(&c->mu);
    memcpy(out, c->drains, c->conf.n_regions * sizeof *out);
    pthread_mutex_unlock(&c->mu);
}

void hc_cluster_merge_drains(hc_cluster *c, const hc_drain_flag *flags, size_t n)
{
    if (n != c->conf.n_regions)
        return; /* another regions file: the caller already warned */
    bool changed = false;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < n; i++) {
        if (hc_drain_flag_newer(&flags[i], &c->drains[i])) {
            if (flags[i].drained != c->drains[i].drained)
                mr_log_info("drain: region %s %s (set by %s)", c->regions[i],
                            flags[i].drained ? "drained" : "undrained", flags[i].by);
            c->drains[i] = flags[i];
            changed = true;
        }
    }
    if (changed)
        save_state(c);
    pthread_mutex_unlock(&c->mu);
}
