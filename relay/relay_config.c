/*
 * Relay configuration. Defaults first, then the JSON file, then flags; the
 * final validation reports the first problem with the key it concerns.
 * Every key is documented in docs/relay.md.
 */
#include "relay_config.h"
#include "mr_alloc.h"
#include "mr_check.h"
#include "mr_config.h"
#include "mr_log.h"

#include <errno.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void relay_config_set_str(char **slot, const char *value)
{
    free(*slot);
    *slot = value ? mr_strdup(value) : NULL;
}

void relay_config_defaults(relay_config *c)
{
    memset(c, 0, sizeof *c);
    relay_config_set_str(&c->region, "local");
    relay_config_set_str(&c->node_id, "relay-1");
    relay_config_set_str(&c->listen, "127.0.0.1:8080");
    relay_config_set_str(&c->admin_listen, "127.0.0.1:9090");
    mr_nats_conf_init(&c->nats, "nats://127.0.0.1:4222");
    c->leeway_s = 5;
    c->refresh_hint_s = 60;
    c->signal_rate = 20;
    c->signal_burst = 40;
    c->signal_max_bytes = 1024;
    c->hsts_max_age = 31536000;
    c->limits = (relay_limits){
        .max_message_bytes = 65536,
        .publish_rate = 50,
        .publish_burst = 100,
        .rate_limit_strikes = 100,
        .max_rooms_per_connection = 100,
        .max_connections_per_ip = 1000,
        .max_outbound_bytes = 1048576,
        .handshake_timeout_ms = 10000,
        .ping_interval_s = 25,
        .idle_timeout_s = 60,
        .max_bad_frames = 20,
        .dedup_window = 65536,
        .receive_buffer_bytes = 2048,
    };
    c->drain_grace_ms = 10000;
    c->drain_batch = 100;
    relay_config_set_str(&c->log_level, "info");
    relay_config_set_str(&c->log_format, "text");
    c->workers = 1;
    c->send_threads = 1;
    c->jetstream = true;
    c->publish_ack_timeout_ms = 5000;
    c->publish_retries = 2;
    c->stream_max_age_s = 7 * 24 * 3600;
    c->stream_max_bytes = (int64_t)10 << 30;
    c->stream_duplicate_window_s = 120;
    c->stream_replicas = 1;
    c->resume_limit = 1000;
    c->rewind_max = 100;
    c->resume_timeout_ms = 5000;
    c->commit_repair_ms = 3000;
    c->presence_heartbeat_ms = 1000;
    c->presence_expire_heartbeats = 3;
    c->hooks.max_connections = 16;
    c->hooks.max_pending = 64;
    c->hooks.cache_entries = 65536;
}

void relay_config_set_nats(relay_config *c, const char *csv)
{
    mr_nats_conf_set_urls(&c->nats, csv);
}

static void copy_str_array(json_t *arr, char ***out, size_t *count)
{
    for (size_t i = 0; i < *count; i++)
        free((*out)[i]);
    free(*out);
    *out = NULL;
    *count = 0;
    if (!arr)
        return;
    *count = json_array_size(arr);
    *out = mr_calloc(*count ? *count : 1, sizeof(char *));
    for (size_t i = 0; i < *count; i++)
        (*out)[i] = mr_strdup(json_string_value(json_array_get(arr, i)));
}

/* A secret from a file: its bytes up to 4 KiB, without trailing line ends. Owned, or NULL. */
static unsigned char *read_secret_file(mr_cfg *cfg, const char *key, const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        mr_cfg_error(cfg, key, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    unsigned char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    (void)fclose(f); /* opened to read only */
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    if (n == 0) {
        mr_cfg_error(cfg, key, "%s is empty", path);
        return NULL;
    }
    unsigned char *s = mr_malloc(n);
    memcpy(s, buf, n);
    *len = n;
    return s;
}

static void free_keys(relay_config *c)
{
    for (size_t i = 0; i < c->nkeys; i++) {
        free((char *)c->keys[i].kid);
        free((unsigned char *)c->keys[i].secret);
    }
    free(c->keys);
    c->keys = NULL;
    c->nkeys = 0;
}

static void add_key(relay_config *c, const char *kid, unsigned char *secret, size_t len)
{
    c->keys = mr_realloc(c->keys, (c->nkeys + 1) * sizeof *c->keys);
    c->keys[c->nkeys++] = (mr_jwt_key){kid ? mr_strdup(kid) : NULL, secret, len};
}

static bool kid_valid(const char *kid)
{
    size_t n = strlen(kid);
    if (n == 0 || n > 64)
        return false;
    for (const char *p = kid; *p; p++)
        if (*p <= ' ' || *p > '~' || *p == '"' || *p == '\\')
            return false;
    return true;
}

/*
 * One entry of auth.secrets or auth.secret_files: an object {"kid", "secret"
 * or "secret_file"}, or (secret_files only) a path. `path` names it in errors.
 */
static void read_key_entry(relay_config *c, mr_cfg *cfg, json_t *e, const char *path,
                           bool files_only)
{
    if (files_only && json_is_string(e)) {
        size_t len = 0;
        unsigned char *s = read_secret_file(cfg, path, json_string_value(e), &len);
        if (s)
            add_key(c, NULL, s, len);
        return;
    }
    if (!json_is_object(e)) {
        mr_cfg_error(cfg, path,
                     files_only ? "must be a path or {\"kid\", \"secret_file\"}"
                                : "must be {\"kid\", \"secret\" or \"secret_file\"}");
        return;
    }
    static const char *const entry_keys[] = {"kid", "secret", "secret_file", NULL};
    static const char *const file_entry_keys[] = {"kid", "secret_file", NULL};
    mr_cfg_check_keys(cfg, e, path, files_only ? file_entry_keys : entry_keys);
    const char *kid = mr_cfg_str(cfg, e, path, "kid", NULL);
    const char *secret = mr_cfg_str(cfg, e, path, "secret", NULL);
    const char *file = mr_cfg_str(cfg, e, path, "secret_file", NULL);
    if (kid && !kid_valid(kid)) {
        mr_cfg_error(cfg, path, "kid \"%.70s\" must be 1-64 printable characters", kid);
        return;
    }
    for (size_t i = 0; kid && i < c->nkeys; i++)
        if (c->keys[i].kid && strcmp(c->keys[i].kid, kid) == 0) {
            mr_cfg_error(cfg, path, "kid \"%s\" is given twice", kid);
            return;
        }
    if (!secret == !file) {
        mr_cfg_error(cfg, path, "set either secret or secret_file");
        return;
    }
    if (secret && !secret[0]) {
        mr_cfg_error(cfg, path, "secret is empty");
        return;
    }
    size_t len = secret ? strlen(secret) : 0;
    unsigned char *s =
        secret ? (unsigned char *)mr_strdup(secret) : read_secret_file(cfg, path, file, &len);
    if (s)
        add_key(c, kid, s, len);
}

/* auth: exactly one of secret, secret_file, secrets and secret_files gives the keys. */
static void read_auth_keys(relay_config *c, mr_cfg *cfg, json_t *auth)
{
    const char *secret = mr_cfg_str(cfg, auth, "auth", "secret", NULL);
    const char *secret_file = mr_cfg_str(cfg, auth, "auth", "secret_file", NULL);
    json_t *secrets = json_object_get(auth, "secrets");
    json_t *files = json_object_get(auth, "secret_files");
    int forms = !!secret + !!secret_file + !!secrets + !!files;
    if (forms == 0)
        return;
    if (forms > 1) {
        mr_cfg_error(cfg, "auth",
                     "set one of secret, secret_file, secrets and secret_files, not several");
        return;
    }
    free_keys(c);
    if (secret) {
        add_key(c, NULL, (unsigned char *)mr_strdup(secret), strlen(secret));
        return;
    }
    if (secret_file) {
        size_t len = 0;
        unsigned char *s = read_secret_file(cfg, "auth.secret_file", secret_file, &len);
        if (s)
            add_key(c, NULL, s, len);
        return;
    }
    json_t *list = secrets ? secrets : files;
    const char *name = secrets ? "auth.secrets" : "auth.secret_files";
    size_t n = json_array_size(list);
    if (!json_is_array(list) || n == 0 || n > RELAY_AUTH_KEYS_MAX) {
        mr_cfg_error(cfg, name, "must be a list of 1 to %d keys", RELAY_AUTH_KEYS_MAX);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char path[64];
        snprintf(path, sizeof path, "%s[%zu]", name, i);
        read_key_entry(c, cfg, json_array_get(list, i), path, files != NULL);
    }
}

/* The admin key from a file (one line; what meridian-init-secrets writes). */
static void read_admin_key_file(relay_config *c, mr_cfg *cfg, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        mr_cfg_error(cfg, "admin_api_key_file", "cannot read %s: %s", path, strerror(errno));
        return;
    }
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    (void)fclose(f); /* opened to read only */
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
    if (n == 0 || strlen(buf) != n || strchr(buf, '\n')) {
        mr_cfg_error(cfg, "admin_api_key_file", "%s must hold one line: the key", path);
        return;
    }
    relay_config_set_str(&c->admin_api_key, buf);
}

static const char *const top_keys[] = {"region",        "node_id",
                                       "listen",        "admin_listen",
                                       "nats",          "auth",
                                       "tls",           "limits",
                                       "origins",       "drain_grace_ms",
                                       "static_dir",    "log_level",
                                       "workers",       "jetstream",
                                       "publish",       "stream",
                                       "resume",        "presence",
                                       "drain_batch",   "fallback_urls",
                                       "admin_api_key", "admin_api_key_file",
                                       "log_format",    "hooks",
                                       "signals",       "send_threads",
                                       "event_loop",    NULL};
static const char *const hooks_keys[] = {"rules", "max_connections", "max_pending", "cache_entries",
                                         NULL};
static const char *const hook_rule_keys[] = {"on",         "rooms",      "url",
                                             "timeout_ms", "on_failure", NULL};
static const char *const presence_keys[] = {"heartbeat_ms", "expire_heartbeats", NULL};
static const char *const signal_keys[] = {"rate", "burst", "max_bytes", NULL};
static const char *const publish_keys[] = {"ack_timeout_ms", "retries", NULL};
static const char *const stream_keys[] = {"max_age_s", "max_bytes", "duplicate_window_s",
                                          "replicas",  "placement", NULL};
static const char *const resume_keys[] = {"limit", "timeout_ms", "commit_repair_ms", "rewind_max",
                                          NULL};
static const char *const auth_keys[] = {"secret",       "secret_file",    "secrets",
                                        "secret_files", "issuer",         "audience",
                                        "leeway_s",     "refresh_hint_s", NULL};
static const char *const tls_keys[] = {"cert", "key", "ciphersuites", "hsts_max_age", NULL};
static const char *const limit_keys[] = {"max_message_bytes",
                                         "publish_rate",
                                         "publish_burst",
                                         "rate_limit_strikes",
                                         "max_rooms_per_connection",
                                         "max_connections_per_ip",
                                         "max_outbound_bytes",
                                         "handshake_timeout_ms",
                                         "ping_interval_s",
                                         "idle_timeout_s",
                                         "max_bad_frames",
                                         "dedup_window",
                                         "receive_buffer_bytes",
                                         NULL};

/* OpenSSL accepts the list (it rejects a list without one suite it knows). */
static bool ciphersuites_valid(const char *list)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    bool ok = ctx && SSL_CTX_set_ciphersuites(ctx, list) == 1;
    SSL_CTX_free(ctx);
    return ok;
}

static void hooks_free(relay_hooks_conf *h)
{
    for (size_t i = 0; i < h->rule_count; i++) {
        json_decref(h->rules[i].rooms);
        free(h->rules[i].url);
    }
    free(h->rules);
    h->rules = NULL;
    h->rule_count = 0;
}

/* One entry of hooks.rules at `path` ("hooks.rules[2]"); false after an error. */
static bool read_hook_rule(relay_hook_rule *rule, mr_cfg *cfg, json_t *o, const char *path)
{
    if (!json_is_object(o)) {
        mr_cfg_error(cfg, path, "must be an object");
        return false;
    }
    mr_cfg_check_keys(cfg, o, path, hook_rule_keys);
    json_t *on = mr_cfg_str_array(cfg, o, path, "on");
    size_t i;
    json_t *e;
    json_array_foreach(on, i, e)
    {
        if (strcmp(json_string_value(e), "join") == 0)
            rule->events |= RELAY_HOOK_ON_JOIN;
        else if (strcmp(json_string_value(e), "publish") == 0)
            rule->events |= RELAY_HOOK_ON_PUBLISH;
        else
            mr_cfg_error(cfg, path, "on: \"%.40s\" is not join or publish", json_string_value(e));
    }
    if (!rule->events)
        mr_cfg_error(cfg, path, "on: list join, publish or both");
    json_t *rooms = mr_cfg_str_array(cfg, o, path, "rooms");
    if (rooms)
        rule->rooms = json_incref(rooms);
    const char *url = mr_cfg_str(cfg, o, path, "url", NULL);
    if (!url || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) ||
        strlen(url) > RELAY_URL_MAX)
        mr_cfg_error(cfg, path, "url: an http:// or https:// URL of at most %d bytes is required",
                     RELAY_URL_MAX);
    else
        rule->url = mr_strdup(url);
    rule->timeout_ms = mr_cfg_int(cfg, o, path, "timeout_ms", 500, 10, 60000);
    const char *fail = mr_cfg_str(cfg, o, path, "on_failure", "refuse");
    if (strcmp(fail, "allow") == 0)
        rule->fail_open = true;
    else if (strcmp(fail, "refuse") != 0)
        mr_cfg_error(cfg, path, "on_failure: \"%.40s\" must be refuse or allow", fail);
    return !mr_cfg_failed(cfg);
}

/* The "hooks" object (docs/relay.md, "Backend hooks"); a file's rules replace earlier ones. */
static void read_hooks(relay_hooks_conf *h, mr_cfg *cfg, json_t *o)
{
    if (!o)
        return;
    mr_cfg_check_keys(cfg, o, "hooks", hooks_keys);
    h->max_connections =
        mr_cfg_int(cfg, o, "hooks", "max_connections", h->max_connections, 1, 1024);
    h->max_pending = mr_cfg_int(cfg, o, "hooks", "max_pending", h->max_pending, 1, 100000);
    h->cache_entries = mr_cfg_int(cfg, o, "hooks", "cache_entries", h->cache_entries, 0, 1 << 22);
    json_t *rules = json_object_get(o, "rules");
    if (!rules)
        return;
    if (!json_is_array(rules) || json_array_size(rules) > 64) {
        mr_cfg_error(cfg, "hooks.rules", "must be an array of at most 64 rules");
        return;
    }
    hooks_free(h);
    h->rules = mr_calloc(json_array_size(rules) + 1, sizeof *h->rules);
    for (size_t i = 0; i < json_array_size(rules); i++) {
        char path[40];
        snprintf(path, sizeof path, "hooks.rules[%zu]", i);
        h->rule_count++;
        if (!read_hook_rule(&h->rules[i], cfg, json_array_get(rules, i), path))
            return;
    }
}

static void set_from(mr_cfg *cfg, json_t *o, const char *path, const char *key, char **slot)
{
    const char *v = mr_cfg_str(cfg, o, path, key, NULL);
    if (v)
        relay_config_set_str(slot, v);
}

int relay_config_load(relay_config *c, const char *path, char *err, size_t errlen)
{
    mr_cfg cfg = {.file = path};
    json_t *root = mr_cfg_load(&cfg, path);
    if (!root) {
        snprintf(err, errlen, "%s", cfg.err);
        return -1;
    }
    mr_cfg_check_keys(&cfg, root, "", top_keys);
    set_from(&cfg, root, "", "region", &c->region);
    set_from(&cfg, root, "", "node_id", &c->node_id);
    set_from(&cfg, root, "", "listen", &c->listen);
    set_from(&cfg, root, "", "admin_listen", &c->admin_listen);
    set_from(&cfg, root, "", "static_dir", &c->static_dir);
    set_from(&cfg, root, "", "log_level", &c->log_level);
    set_from(&cfg, root, "", "log_format", &c->log_format);
    mr_nats_conf_read(&c->nats, &cfg, root, "nats");
    json_t *origins = mr_cfg_str_array(&cfg, root, "", "origins");
    if (origins)
        copy_str_array(origins, &c->origins, &c->origin_count);
    c->drain_grace_ms = mr_cfg_int(&cfg, root, "", "drain_grace_ms", c->drain_grace_ms, 0, 3600000);
    c->drain_batch = mr_cfg_int(&cfg, root, "", "drain_batch", c->drain_batch, 1, 1000000);
    json_t *fallback = mr_cfg_str_array(&cfg, root, "", "fallback_urls");
    if (fallback)
        copy_str_array(fallback, &c->fallback_urls, &c->fallback_count);
    const char *admin_key = mr_cfg_str(&cfg, root, "", "admin_api_key", NULL);
    const char *admin_key_file = mr_cfg_str(&cfg, root, "", "admin_api_key_file", NULL);
    if (admin_key && admin_key_file)
        mr_cfg_error(&cfg, "admin_api_key", "set either admin_api_key or admin_api_key_file");
    else if (admin_key)
        relay_config_set_str(&c->admin_api_key, admin_key);
    else if (admin_key_file)
        read_admin_key_file(c, &cfg, admin_key_file);
    c->workers = mr_cfg_int(&cfg, root, "", "workers", c->workers, 1, 64);
    c->send_threads = mr_cfg_int(&cfg, root, "", "send_threads", c->send_threads, 1, 64);
    const char *loop = mr_cfg_str(&cfg, root, "", "event_loop", NULL);
    if (loop && strcmp(loop, "libuv") == 0)
        c->event_loop_uv = true;
    else if (loop && strcmp(loop, "poll") != 0)
        mr_cfg_error(&cfg, "event_loop", "\"%s\" must be poll or libuv", loop);

    json_t *auth = mr_cfg_obj(&cfg, root, "", "auth");
    mr_cfg_check_keys(&cfg, auth, "auth", auth_keys);
    read_auth_keys(c, &cfg, auth);
    set_from(&cfg, auth, "auth", "issuer", &c->issuer);
    set_from(&cfg, auth, "auth", "audience", &c->audience);
    c->leeway_s = mr_cfg_int(&cfg, auth, "auth", "leeway_s", c->leeway_s, 0, 3600);
    c->refresh_hint_s =
        mr_cfg_int(&cfg, auth, "auth", "refresh_hint_s", c->refresh_hint_s, 0, 86400);

    json_t *tls = mr_cfg_obj(&cfg, root, "", "tls");
    mr_cfg_check_keys(&cfg, tls, "tls", tls_keys);
    set_from(&cfg, tls, "tls", "cert", &c->tls_cert);
    set_from(&cfg, tls, "tls", "key", &c->tls_key);
    set_from(&cfg, tls, "tls", "ciphersuites", &c->tls_ciphersuites);
    if (!c->tls_ciphersuites)
        c->tls_ciphersuites = mr_strdup(RELAY_TLS_DEFAULT_SUITES);
    else if (!ciphersuites_valid(c->tls_ciphersuites))
        mr_cfg_error(&cfg, "tls.ciphersuites",
                     "not a list of TLS 1.3 suites OpenSSL knows (example: "
                     "\"TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256\")");
    c->hsts_max_age = mr_cfg_int(&cfg, tls, "tls", "hsts_max_age", c->hsts_max_age, 0, 63072000);
    if (tls && (!c->tls_cert != !c->tls_key))
        mr_cfg_error(&cfg, "tls", "cert and key must be given together");

    json_t *lim = mr_cfg_obj(&cfg, root, "", "limits");
    mr_cfg_check_keys(&cfg, lim, "limits", limit_keys);
    relay_limits *l = &c->limits;
    const char *lp = "limits";
    l->max_message_bytes =
        mr_cfg_int(&cfg, lim, lp, "max_message_bytes", l->max_message_bytes, 256, 16 << 20);
    l->publish_rate = mr_cfg_num(&cfg, lim, lp, "publish_rate", l->publish_rate, 0.001, 1e7);
    l->publish_burst = mr_cfg_num(&cfg, lim, lp, "publish_burst", l->publish_burst, 1, 1e7);
    l->rate_limit_strikes =
        mr_cfg_int(&cfg, lim, lp, "rate_limit_strikes", l->rate_limit_strikes, 1, 1000000);
    l->max_rooms_per_connection = mr_cfg_int(&cfg, lim, lp, "max_rooms_per_connection",
                                             l->max_rooms_per_connection, 1, 100000);
    l->max_connections_per_ip =
        mr_cfg_int(&cfg, lim, lp, "max_connections_per_ip", l->max_connections_per_ip, 0, 10000000);
    l->max_outbound_bytes = mr_cfg_int(&cfg, lim, lp, "max_outbound_bytes", l->max_outbound_bytes,
                                       4096, (int64_t)1 << 32);
    l->handshake_timeout_ms =
        mr_cfg_int(&cfg, lim, lp, "handshake_timeout_ms", l->handshake_timeout_ms, 100, 600000);
    l->ping_interval_s = mr_cfg_int(&cfg, lim, lp, "ping_interval_s", l->ping_interval_s, 1, 3600);
    l->idle_timeout_s = mr_cfg_int(&cfg, lim, lp, "idle_timeout_s", l->idle_timeout_s, 2, 7200);
    l->max_bad_frames = mr_cfg_int(&cfg, lim, lp, "max_bad_frames", l->max_bad_frames, 1, 1000000);
    l->dedup_window = mr_cfg_int(&cfg, lim, lp, "dedup_window", l->dedup_window, 16, 1 << 20);
    l->receive_buffer_bytes =
        mr_cfg_int(&cfg, lim, lp, "receive_buffer_bytes", l->receive_buffer_bytes, 128, 65536);

    c->jetstream = mr_cfg_bool(&cfg, root, "", "jetstream", c->jetstream);
    json_t *pub = mr_cfg_obj(&cfg, root, "", "publish");
    mr_cfg_check_keys(&cfg, pub, "publish", publish_keys);
    c->publish_ack_timeout_ms =
        mr_cfg_int(&cfg, pub, "publish", "ack_timeout_ms", c->publish_ack_timeout_ms, 100, 600000);
    c->publish_retries = mr_cfg_int(&cfg, pub, "publish", "retries", c->publish_retries, 0, 100);
    json_t *st = mr_cfg_obj(&cfg, root, "", "stream");
    mr_cfg_check_keys(&cfg, st, "stream", stream_keys);
    c->stream_max_age_s = mr_cfg_int(&cfg, st, "stream", "max_age_s", c->stream_max_age_s, 0,
                                     (int64_t)10 * 365 * 24 * 3600);
    c->stream_max_bytes =
        mr_cfg_int(&cfg, st, "stream", "max_bytes", c->stream_max_bytes, 0, INT64_MAX);
    c->stream_duplicate_window_s = mr_cfg_int(&cfg, st, "stream", "duplicate_window_s",
                                              c->stream_duplicate_window_s, 1, 7 * 24 * 3600);
    c->stream_replicas = mr_cfg_int(&cfg, st, "stream", "replicas", c->stream_replicas, 1, 5);
    set_from(&cfg, st, "stream", "placement", &c->stream_placement);
    json_t *res = mr_cfg_obj(&cfg, root, "", "resume");
    mr_cfg_check_keys(&cfg, res, "resume", resume_keys);
    c->resume_limit = mr_cfg_int(&cfg, res, "resume", "limit", c->resume_limit, 1, 1000);
    c->rewind_max = mr_cfg_int(&cfg, res, "resume", "rewind_max", c->rewind_max, 0, 1000);
    c->resume_timeout_ms =
        mr_cfg_int(&cfg, res, "resume", "timeout_ms", c->resume_timeout_ms, 100, 600000);
    c->commit_repair_ms =
        mr_cfg_int(&cfg, res, "resume", "commit_repair_ms", c->commit_repair_ms, 0, 600000);

    json_t *pr = mr_cfg_obj(&cfg, root, "", "presence");
    mr_cfg_check_keys(&cfg, pr, "presence", presence_keys);
    c->presence_heartbeat_ms =
        mr_cfg_int(&cfg, pr, "presence", "heartbeat_ms", c->presence_heartbeat_ms, 50, 60000);
    c->presence_expire_heartbeats = mr_cfg_int(&cfg, pr, "presence", "expire_heartbeats",
                                               c->presence_expire_heartbeats, 2, 100);
    read_hooks(&c->hooks, &cfg, mr_cfg_obj(&cfg, root, "", "hooks"));

    json_t *sig = mr_cfg_obj(&cfg, root, "", "signals");
    mr_cfg_check_keys(&cfg, sig, "signals", signal_keys);
    c->signal_rate = mr_cfg_num(&cfg, sig, "signals", "rate", c->signal_rate, 0.001, 1e7);
    c->signal_burst = mr_cfg_num(&cfg, sig, "signals", "burst", c->signal_burst, 1, 1e7);
    c->signal_max_bytes =
        mr_cfg_int(&cfg, sig, "signals", "max_bytes", c->signal_max_bytes, 1, 16384);

    json_decref(root);
    if (mr_cfg_failed(&cfg)) {
        snprintf(err, errlen, "%s", cfg.err);
        return -1;
    }
    return 0;
}

bool relay_config_url_valid(const char *url)
{
    size_t n = strnlen(url, RELAY_URL_MAX + 1);
    if (n > RELAY_URL_MAX)
        return false;
    size_t scheme = strncmp(url, "wss://", 6) == 0 ? 6 : strncmp(url, "ws://", 5) == 0 ? 5 : 0;
    /* A host follows the scheme: not empty, and not straight into a path, query or port. */
    if (!scheme || n == scheme || strchr("/?#:@", url[scheme]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (url[i] <= ' ' || url[i] > '~' || strchr("\"\\<>`{}|^", url[i]))
            return false;
    return true;
}

static bool token_safe(const char *s)
{
    if (!*s || strlen(s) > 64)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_'))
            return false;
    return true;
}

int relay_config_validate(const relay_config *c, char *err, size_t errlen)
{
    char host[256];
    int port;
    if (c->nkeys == 0) {
        snprintf(err, errlen,
                 "auth.secret: a token secret is required (auth.secret, secret_file, secrets or "
                 "secret_files)");
        return -1;
    }
    for (size_t i = 0; i < c->nkeys; i++)
        if (c->keys[i].secret_len < RELAY_SECRET_MIN)
            mr_log_warn("auth: token key %zu%s%s%s is %zu bytes; HS256 wants at least %d random "
                        "bytes (--check fails on it)",
                        i, c->keys[i].kid ? " (kid \"" : "", c->keys[i].kid ? c->keys[i].kid : "",
                        c->keys[i].kid ? "\")" : "", c->keys[i].secret_len, RELAY_SECRET_MIN);
    if (!token_safe(c->region)) {
        snprintf(err, errlen, "region: \"%s\" must be 1-64 characters of A-Z a-z 0-9 _ -",
                 c->region);
        return -1;
    }
    if (!token_safe(c->node_id)) {
        snprintf(err, errlen, "node_id: \"%s\" must be 1-64 characters of A-Z a-z 0-9 _ -",
                 c->node_id);
        return -1;
    }
    if (mr_parse_hostport(c->listen, host, sizeof host, &port) != 0) {
        snprintf(err, errlen, "listen: \"%s\" is not host:port", c->listen);
        return -1;
    }
    if (mr_parse_hostport(c->admin_listen, host, sizeof host, &port) != 0) {
        snprintf(err, errlen, "admin_listen: \"%s\" is not host:port", c->admin_listen);
        return -1;
    }
    if (mr_nats_conf_check(&c->nats, "nats", err, errlen) != 0)
        return -1;
    if (c->fallback_count > RELAY_DRAIN_URLS_MAX) {
        snprintf(err, errlen, "fallback_urls: at most %d URLs", RELAY_DRAIN_URLS_MAX);
        return -1;
    }
    for (size_t i = 0; i < c->fallback_count; i++) {
        if (!relay_config_url_valid(c->fallback_urls[i])) {
            snprintf(err, errlen,
                     "fallback_urls: \"%.100s\" must be a ws:// or wss:// URL of at most %d bytes",
                     c->fallback_urls[i], RELAY_URL_MAX);
            return -1;
        }
    }
    if (c->admin_api_key && strlen(c->admin_api_key) < 16) {
        snprintf(err, errlen, "admin_api_key: use at least 16 characters (a long random key)");
        return -1;
    }
    if (c->limits.max_outbound_bytes < c->limits.max_message_bytes) {
        /* A single publish of the largest size would close every member as a slow consumer. */
        snprintf(err, errlen,
                 "limits.max_outbound_bytes: must be at least limits.max_message_bytes (%lld)",
                 (long long)c->limits.max_message_bytes);
        return -1;
    }
    if (c->limits.idle_timeout_s <= c->limits.ping_interval_s) {
        snprintf(err, errlen, "limits.idle_timeout_s: must be greater than limits.ping_interval_s");
        return -1;
    }
    if (mr_log_level_parse(c->log_level) < 0) {
        snprintf(err, errlen, "log_level: \"%s\" must be error, warn, info or debug", c->log_level);
        return -1;
    }
    if (mr_log_format_parse(c->log_format) < 0) {
        snprintf(err, errlen, "log_format: \"%s\" must be text or json", c->log_format);
        return -1;
    }
    return 0;
}

void relay_config_check(const relay_config *c, mr_check *chk)
{
    mr_check_bindable(chk, "listen", c->listen);
    mr_check_bindable(chk, "admin_listen", c->admin_listen);
    if (c->tls_cert)
        mr_check_tls_pair(chk, "tls", c->tls_cert, c->tls_key);
    for (size_t i = 0; i < c->nkeys; i++)
        if (c->keys[i].secret_len < RELAY_SECRET_MIN)
            mr_check_error(chk, "auth",
                           "token key %zu%s%s%s is %zu bytes; HS256 needs at least "
                           "%d bytes (32 bytes from a random source)",
                           i, c->keys[i].kid ? " (kid \"" : "",
                           c->keys[i].kid ? c->keys[i].kid : "", c->keys[i].kid ? "\")" : "",
                           c->keys[i].secret_len, RELAY_SECRET_MIN);
    if (c->stream_max_age_s > 0 && c->stream_duplicate_window_s > c->stream_max_age_s)
        mr_check_error(
            chk, "stream.duplicate_window_s",
            "%lld s is longer than stream.max_age_s (%lld s): NATS refuses such a stream",
            (long long)c->stream_duplicate_window_s, (long long)c->stream_max_age_s);
    if (c->static_dir && access(c->static_dir, R_OK | X_OK) != 0)
        mr_check_error(chk, "static_dir", "cannot read %s: %s", c->static_dir, strerror(errno));
    mr_check_note(chk, "nats",
                  "not checked offline: whether NATS is reachable and accepts the credentials, "
                  "and the settings of an existing stream (a start compares them)");
}

void relay_config_free(relay_config *c)
{
    free(c->region);
    free(c->node_id);
    free(c->listen);
    free(c->admin_listen);
    mr_nats_conf_free(&c->nats);
    free_keys(c);
    free(c->issuer);
    free(c->audience);
    free(c->tls_cert);
    free(c->tls_key);
    free(c->tls_ciphersuites);
    for (size_t i = 0; i < c->origin_count; i++)
        free(c->origins[i]);
    free(c->origins);
    free(c->static_dir);
    free(c->log_level);
    free(c->log_format);
    free(c->stream_placement);
    for (size_t i = 0; i < c->fallback_count; i++)
        free(c->fallback_urls[i]);
    free(c->fallback_urls);
    free(c->admin_api_key);
    hooks_free(&c->hooks);
    memset(c, 0, sizeof *c);
}
