/*
 * The agents' shared plane over NATS.
 *
 * libnats runs here in its own threads rather than on the agent's libevent
 * loop (its libevent adapter exists, but KV operations are synchronous
 * requests, and a synchronous request issued from the thread that must read
 * its reply would wait for its own time-out). So: message callbacks run on
 * libnats' delivery thread and hand data to the agent through a callback
 * that copies under the agent's lock, and a lease thread does all blocking
 * KV work. The agent's loop only reads atomics and mutex-protected copies.
 *
 * The lease. The bucket has a TTL, so the key "lease" disappears lease_ttl
 * after its last write. An agent acquires with Create (succeeds only when
 * the key does not exist), renews with Update on the revision it last wrote
 * (fails when anyone else wrote since), and counts itself holder only until
 * last renewal + 3/4 TTL by its own monotonic clock. Another agent can only
 * Create after the key expired on the server, a full TTL after the last
 * renewal, so two agents never both believe they hold it. An agent that
 * loses NATS drops the lease at once (disconnect callback) and, in any
 * case, by its local deadline.
 */
#include "hc_cluster.h"
#include "mr_alloc.h"
#include "mr_log.h"
#include "mr_time.h"

#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hc_cluster {
    hc_cluster_conf conf;
    char *agent_id;
    char *bucket;
    char **regions;
    natsConnection *nc;
    natsSubscription *sub;
    jsCtx *js;
    kvStore *kv;       /* lease bucket: entries expire after the lease TTL */
    kvStore *kv_drain; /* drain flags: no TTL */
    char *drain_bucket;
    hc_cluster_obs_cb cb;
    void *ud;

    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool stopping;
    bool closed; /* the connection's closed callback ran: no callback follows */

    atomic_bool connected;
    atomic_bool held;
    _Atomic int64_t held_until_us;
    uint64_t lease_rev;
    char holder[128]; /* under mu */
    bool *drained;    /* under mu */
};

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    hc_cluster *c = closure;
    c->cb(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), c->ud);
    natsMsg_Destroy(msg);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    hc_cluster *c = closure;
    if (atomic_exchange(&c->connected, false))
        mr_log_warn("NATS: disconnected; this agent stops writing DNS");
    atomic_store(&c->held, false);
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

static kvStore *open_bucket(hc_cluster *c, const char *name, int64_t ttl_ms)
{
    kvStore *kv = NULL;
    kvConfig kc;
    kvConfig_Init(&kc);
    kc.Bucket = name;
    kc.History = 1;
    kc.Replicas = c->conf.replicas > 0 ? c->conf.replicas : 1;
    kc.TTL =
        ttl_ms * 1000000; /* nanoseconds in libnats 3.4 (its checks say so); 0 = keep forever */
    natsStatus s = js_CreateKeyValue(&kv, c->js, &kc);
    if (s != NATS_OK) {
        /* Created by another agent with other settings: use it as it is. */
        s = js_KeyValue(&kv, c->js, name);
    }
    if (s != NATS_OK) {
        mr_log_warn("NATS: KV bucket %s unavailable: %s (JetStream enabled?)", name,
                    natsStatus_GetText(s));
        return NULL;
    }
    return kv;
}

static bool kv_ready(hc_cluster *c)
{
    if (c->kv && c->kv_drain)
        return true;
    if (!c->js) {
        jsOptions o;
        jsOptions_Init(&o);
        o.Wait = 1000;
        if (natsConnection_JetStream(&c->js, c->nc, &o) != NATS_OK)
            return false;
    }
    if (!c->kv)
        c->kv = open_bucket(c, c->bucket, c->conf.lease_ttl_ms);
    if (!c->kv_drain)
        c->kv_drain = open_bucket(c, c->drain_bucket, 0);
    return c->kv && c->kv_drain;
}

static void set_holder(hc_cluster *c, const char *h)
{
    pthread_mutex_lock(&c->mu);
    snprintf(c->holder, sizeof c->holder, "%s", h);
    pthread_mutex_unlock(&c->mu);
}

static void lease_step(hc_cluster *c)
{
    int64_t t0 = mr_now_us();
    int64_t valid = t0 + (int64_t)c->conf.lease_ttl_ms * 750;
    uint64_t rev = 0;
    natsStatus s;
    if (atomic_load(&c->held)) {
        s = kvStore_UpdateString(&rev, c->kv, "lease", c->agent_id, c->lease_rev);
        if (s == NATS_OK) {
            c->lease_rev = rev;
            atomic_store(&c->held_until_us, valid);
            return;
        }
        mr_log_warn("lease: renewal failed (%s); no longer writing DNS", natsStatus_GetText(s));
        atomic_store(&c->held, false);
    }
    s = kvStore_CreateString(&rev, c->kv, "lease", c->agent_id);
    if (s == NATS_OK) {
        c->lease_rev = rev;
        atomic_store(&c->held_until_us, valid);
        atomic_store(&c->held, true);
        set_holder(c, c->agent_id);
        mr_log_info("lease: acquired; this agent writes DNS");
        return;
    }
    kvEntry *e = NULL;
    s = kvStore_Get(&e, c->kv, "lease");
    if (s == NATS_OK && e) {
        const char *v = kvEntry_ValueString(e);
        set_holder(c, v ? v : "");
        /* Our own lease from before a reconnect: take it back by revision. */
        if (v && strcmp(v, c->agent_id) == 0 &&
            kvStore_UpdateString(&rev, c->kv, "lease", c->agent_id, kvEntry_Revision(e)) ==
                NATS_OK) {
            c->lease_rev = rev;
            atomic_store(&c->held_until_us, valid);
            atomic_store(&c->held, true);
            mr_log_info("lease: reclaimed; this agent writes DNS");
        }
        kvEntry_Destroy(e);
    } else {
        set_holder(c, "");
    }
}

static void drains_step(hc_cluster *c)
{
    bool *d = mr_calloc(c->conf.n_regions + 1, sizeof *d);
    for (size_t i = 0; i < c->conf.n_regions; i++) {
        char key[128];
        snprintf(key, sizeof key, "drain.%s", c->regions[i]);
        kvEntry *e = NULL;
        if (kvStore_Get(&e, c->kv_drain, key) == NATS_OK && e) {
            const char *v = kvEntry_ValueString(e);
            d[i] = v && strcmp(v, "1") == 0;
            kvEntry_Destroy(e);
        }
    }
    pthread_mutex_lock(&c->mu);
    memcpy(c->drained, d, c->conf.n_regions * sizeof *d);
    pthread_mutex_unlock(&c->mu);
    free(d);
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
    clock_gettime(CLOCK_REALTIME, &ts);
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
        pthread_mutex_lock(&c->mu);
        bool stop = c->stopping;
        pthread_mutex_unlock(&c->mu);
        if (stop)
            break;
        if (atomic_load(&c->connected) && kv_ready(c)) {
            lease_step(c);
            drains_step(c);
        } else {
            atomic_store(&c->held, false);
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + (int64_t)c->conf.lease_renew_ms * 1000000;
        ts.tv_sec += ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        pthread_mutex_lock(&c->mu);
        if (!c->stopping)
            pthread_cond_timedwait(&c->cond, &c->mu, &ts);
        pthread_mutex_unlock(&c->mu);
    }
    return NULL;
}

hc_cluster *hc_cluster_start(const hc_cluster_conf *conf, hc_cluster_obs_cb cb, void *ud, char *err,
                             size_t errlen)
{
    if (conf->n_urls == 0) {
        snprintf(err, errlen, "nats: at least one URL is required");
        return NULL;
    }
    hc_cluster *c = mr_calloc(1, sizeof *c);
    c->conf = *conf;
    c->agent_id = mr_strdup(conf->agent_id);
    c->bucket = mr_strdup(conf->bucket ? conf->bucket : "meridian_hc");
    c->drain_bucket = mr_malloc(strlen(c->bucket) + 8);
    sprintf(c->drain_bucket, "%s_drain", c->bucket);
    c->regions = mr_calloc(conf->n_regions + 1, sizeof(char *));
    for (size_t i = 0; i < conf->n_regions; i++)
        c->regions[i] = mr_strdup(conf->regions[i]);
    c->drained = mr_calloc(conf->n_regions + 1, sizeof(bool));
    c->cb = cb;
    c->ud = ud;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cond, NULL);

    natsOptions *o = NULL;
    natsOptions_Create(&o);
    natsOptions_SetServers(o, (const char **)conf->urls, (int)conf->n_urls);
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
    natsOptions_SetRetryOnFailedConnect(o, true, on_connected, c);
    natsStatus s = natsConnection_Connect(&c->nc, o);
    natsOptions_Destroy(o);
    if (s == NATS_OK) {
        atomic_store(&c->connected, true);
    } else if (s == NATS_NOT_YET_CONNECTED) {
        mr_log_warn("NATS: no server reachable yet; retrying in the background");
    } else {
        snprintf(err, errlen, "nats: %s", natsStatus_GetText(s));
        goto err;
    }
    s = natsConnection_Subscribe(&c->sub, c->nc, HC_CLUSTER_OBS_SUBJECT, on_msg, c);
    if (s != NATS_OK) {
        snprintf(err, errlen, "nats subscribe: %s", natsStatus_GetText(s));
        goto err;
    }
    if (pthread_create(&c->thread, NULL, lease_main, c) != 0) {
        snprintf(err, errlen, "cannot start the lease thread");
        goto err;
    }
    return c;
err:
    natsSubscription_Destroy(c->sub);
    close_connection(c);
    for (size_t i = 0; i < conf->n_regions; i++)
        free(c->regions[i]);
    free(c->regions);
    free(c->drained);
    free(c->agent_id);
    free(c->bucket);
    free(c->drain_bucket);
    free(c);
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
    pthread_join(c->thread, NULL);
    /* Give the lease back so another agent need not wait for the TTL. */
    if (atomic_load(&c->held) && c->kv)
        kvStore_Delete(c->kv, "lease");
    natsSubscription_Unsubscribe(c->sub);
    natsSubscription_Destroy(c->sub);
    kvStore_Destroy(c->kv);
    kvStore_Destroy(c->kv_drain);
    jsCtx_Destroy(c->js);
    close_connection(c);
    for (size_t i = 0; i < c->conf.n_regions; i++)
        free(c->regions[i]);
    free(c->regions);
    free(c->drained);
    free(c->agent_id);
    free(c->bucket);
    free(c->drain_bucket);
    free(c);
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

bool hc_cluster_lease_held(hc_cluster *c)
{
    return atomic_load(&c->connected) && atomic_load(&c->held) &&
           mr_now_us() < atomic_load(&c->held_until_us);
}

void hc_cluster_lease_holder(hc_cluster *c, char *out, size_t n)
{
    pthread_mutex_lock(&c->mu);
    snprintf(out, n, "%s", c->holder);
    pthread_mutex_unlock(&c->mu);
}

int hc_cluster_set_drain(hc_cluster *c, const char *region, bool drained, char *err, size_t errlen)
{
    /* Runs on the caller's thread with its own JetStream context: the lease
     * thread's handles are not shared. */
    if (!atomic_load(&c->connected)) {
        snprintf(err, errlen, "not connected to NATS");
        return -1;
    }
    jsCtx *js = NULL;
    kvStore *kv = NULL;
    jsOptions o;
    jsOptions_Init(&o);
    o.Wait = 1000;
    char key[128];
    snprintf(key, sizeof key, "drain.%s", region);
    natsStatus s = natsConnection_JetStream(&js, c->nc, &o);
    if (s == NATS_OK)
        s = js_KeyValue(&kv, js, c->drain_bucket);
    if (s == NATS_OK) {
        uint64_t rev;
        s = kvStore_PutString(&rev, kv, key, drained ? "1" : "0");
    }
    if (s != NATS_OK)
        snprintf(err, errlen, "cannot store the drain flag: %s", natsStatus_GetText(s));
    kvStore_Destroy(kv);
    jsCtx_Destroy(js);
    if (s == NATS_OK) {
        for (size_t i = 0; i < c->conf.n_regions; i++) {
            if (strcmp(c->regions[i], region) == 0) {
                pthread_mutex_lock(&c->mu);
                c->drained[i] = drained;
                pthread_mutex_unlock(&c->mu);
            }
        }
    }
    return s == NATS_OK ? 0 : -1;
}

void hc_cluster_drains(hc_cluster *c, bool *out)
{
    pthread_mutex_lock(&c->mu);
    memcpy(out, c->drained, c->conf.n_regions * sizeof *out);
    pthread_mutex_unlock(&c->mu);
}
