/*
 * SIGHUP and systemd for the relay (relay_reload.h).
 *
 * Everything here runs on the lws thread, which owns the configuration:
 * the token keys, limits, origins and fallback URLs are read only there,
 * so they are swapped in place between two callbacks and no session sees
 * half a configuration. The admin key is the exception (the admin thread
 * checks it), so it changes under drain_lock. A new certificate goes into
 * the vhost's SSL_CTX: OpenSSL copies the certificate into each SSL when it
 * is created, so connections already open keep theirs and new handshakes
 * get the new one.
 */
#include "relay_reload.h"
#include "mr_alloc.h"
#include "mr_check.h"
#include "mr_log.h"
#include "mr_reload.h"
#include "mr_sdnotify.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>

typedef struct relay_reload {
    char **paths;
    size_t npaths;
    char *log_level_flag;
    json_t *running; /* the last file's JSON at start: the values still in force */
} relay_reload;

/* What a reload applies; any other key that changed waits for a restart. */
static const char *const reloadable[] = {"auth",
                                         "tls.cert",
                                         "tls.key",
                                         "limits.max_message_bytes",
                                         "limits.publish_rate",
                                         "limits.publish_burst",
                                         "limits.rate_limit_strikes",
                                         "limits.max_rooms_per_connection",
                                         "limits.max_connections_per_ip",
                                         "limits.max_outbound_bytes",
                                         "limits.handshake_timeout_ms",
                                         "limits.max_bad_frames",
                                         "log_level",
                                         "admin_api_key",
                                         "admin_api_key_file",
                                         "origins",
                                         "fallback_urls",
                                         "drain_grace_ms",
                                         "drain_batch",
                                         "hooks.rules",
                                         "hooks.max_pending",
                                         NULL};

void relay_reload_init(relay *r, const char *const *paths, size_t npaths,
                       const char *log_level_flag)
{
    relay_reload *rl = mr_calloc(1, sizeof *rl);
    rl->paths = mr_calloc(npaths ? npaths : 1, sizeof *rl->paths);
    for (size_t i = 0; i < npaths; i++)
        rl->paths[i] = mr_strdup(paths[i]);
    rl->npaths = npaths;
    rl->log_level_flag = log_level_flag ? mr_strdup(log_level_flag) : NULL;
    rl->running = npaths ? mr_reload_read_json(paths[npaths - 1]) : NULL;
    r->reload = rl;
}

void relay_reload_free(relay *r)
{
    relay_reload *rl = r->reload;
    if (!rl)
        return;
    for (size_t i = 0; i < rl->npaths; i++)
        free(rl->paths[i]);
    free(rl->paths);
    free(rl->log_level_flag);
    json_decref(rl->running);
    free(rl);
    r->reload = NULL;
}

/* Load the files into `next` and prove them; -1 with the reason in `err`. */
static int load_next(relay *r, relay_config *next, char *err, size_t errlen)
{
    relay_reload *rl = r->reload;
    relay_config_defaults(next);
    for (size_t i = 0; i < rl->npaths; i++)
        if (relay_config_load(next, rl->paths[i], err, errlen) != 0)
            return -1;
    if (rl->log_level_flag)
        relay_config_set_str(&next->log_level, rl->log_level_flag);
    if (relay_config_validate(next, err, errlen) != 0)
        return -1;
    const relay_config *cur = r->cfg;
    if (cur->tls_cert && next->tls_cert &&
        !mr_tls_pair_ok(next->tls_cert, next->tls_key, err, errlen))
        return -1;
    return 0;
}

/* The new certificate and key into the vhost's context; both were proven by load_next. */
static int swap_certificate(relay *r, relay_config *next)
{
    SSL_CTX *ctx = r->ssl_ctx;
    if (!ctx)
        return -1;
    ERR_clear_error();
    int ok = SSL_CTX_use_certificate_chain_file(ctx, next->tls_cert) == 1 &&
             SSL_CTX_use_PrivateKey_file(ctx, next->tls_key, SSL_FILETYPE_PEM) == 1 &&
             SSL_CTX_check_private_key(ctx) == 1;
    ERR_clear_error();
    return ok ? 0 : -1;
}

/* Apply the reloadable part of `next`; `next` keeps what it replaced, for freeing. */
static void apply(relay *r, relay_config *next)
{
    relay_config *cur = r->cfg;
    MR_SWAP(cur->keys, next->keys);
    MR_SWAP(cur->nkeys, next->nkeys);
    MR_SWAP(cur->issuer, next->issuer);
    MR_SWAP(cur->audience, next->audience);
    cur->leeway_s = next->leeway_s;
    cur->refresh_hint_s = next->refresh_hint_s;
    r->jwt.keys = cur->keys;
    r->jwt.nkeys = cur->nkeys;
    r->jwt.issuer = cur->issuer;
    r->jwt.audience = cur->audience;
    r->jwt.leeway_s = cur->leeway_s;

    relay_limits *l = &cur->limits;
    const relay_limits *n = &next->limits;
    l->max_message_bytes = n->max_message_bytes;
    l->publish_rate = n->publish_rate;
    l->publish_burst = n->publish_burst;
    l->rate_limit_strikes = n->rate_limit_strikes;
    l->max_rooms_per_connection = n->max_rooms_per_connection;
    l->max_connections_per_ip = n->max_connections_per_ip;
    l->max_outbound_bytes = n->max_outbound_bytes;
    l->handshake_timeout_ms = n->handshake_timeout_ms;
    l->max_bad_frames = n->max_bad_frames;

    MR_SWAP(cur->log_level, next->log_level);
    mr_log_set_level((mr_log_level)mr_log_level_parse(cur->log_level));
    pthread_mutex_lock(&r->drain_lock);
    MR_SWAP(cur->admin_api_key, next->admin_api_key);
    pthread_mutex_unlock(&r->drain_lock);
    MR_SWAP(cur->origins, next->origins);
    MR_SWAP(cur->origin_count, next->origin_count);
    MR_SWAP(cur->fallback_urls, next->fallback_urls);
    MR_SWAP(cur->fallback_count, next->fallback_count);
    cur->drain_grace_ms = next->drain_grace_ms;
    cur->drain_batch = next->drain_batch;

    /*
     * Hook rules are read on this thread only (relay_hooks_match); a request
     * already asked keeps a copy of what it needs of its old rule. A relay
     * started without rules has no hook thread to start here.
     */
    cur->hooks.max_pending = next->hooks.max_pending;
    if (r->hooks) {
        MR_SWAP(cur->hooks.rules, next->hooks.rules);
        MR_SWAP(cur->hooks.rule_count, next->hooks.rule_count);
    } else if (next->hooks.rule_count > 0) {
        mr_log_warn("reload: hooks.rules: the relay started without hooks; adding them needs a "
                    "restart");
    }

    if (cur->tls_cert && next->tls_cert) {
        if (swap_certificate(r, next) == 0) {
            MR_SWAP(cur->tls_cert, next->tls_cert);
            MR_SWAP(cur->tls_key, next->tls_key);
            mr_log_info("reload: tls: serving %s to new connections", cur->tls_cert);
        } else {
            mr_log_error("reload: tls: the certificate could not be installed; new connections "
                         "keep getting the previous one");
        }
    } else if (!cur->tls_cert != !next->tls_cert) {
        mr_log_warn("reload: tls changed between TLS and plain WebSocket but needs a restart; "
                    "the running value stays");
    }
}

void relay_reload_poll(relay *r)
{
    if (!atomic_exchange(&r->reload_requested, false))
        return;
    relay_reload *rl = r->reload;
    mr_sdnotify_reloading();
    if (!rl || rl->npaths == 0) {
        mr_log_warn("reload: refused: the relay was started without --config; nothing to read");
        mr_sdnotify_ready(NULL);
        return;
    }
    mr_log_info("SIGHUP: reloading %s", rl->paths[rl->npaths - 1]);
    relay_config next;
    char err[700];
    if (load_next(r, &next, err, sizeof err) != 0) {
        mr_log_error("reload: refused: %s; the running configuration stays", err);
        relay_config_free(&next);
        mr_sdnotify_ready(NULL);
        return;
    }
    json_t *json = mr_reload_read_json(rl->paths[rl->npaths - 1]);
    int refused = mr_reload_refuse_changes(rl->running, json, reloadable);
    json_decref(json);
    apply(r, &next);
    relay_config_free(&next);
    mr_log_info("reload: applied: %zu token key(s), log level %s%s", r->cfg->nkeys,
                r->cfg->log_level, refused ? "; see above for keys that need a restart" : "");
    mr_sdnotify_ready(NULL);
}

void relay_reload_tick(relay *r)
{
    mr_sdnotify_watchdog_feed();
    if (r->ready_notified)
        return;
    bool nats = relay_nats_connected(r->nats);
    bool stream = !r->cfg->jetstream || relay_nats_stream_ready(r->nats);
    if (nats && stream && atomic_load(&r->listening)) {
        r->ready_notified = true;
        if (mr_sdnotify_ready(NULL) != 0)
            mr_log_warn("cannot notify systemd (NOTIFY_SOCKET %s)", getenv("NOTIFY_SOCKET"));
    }
}
