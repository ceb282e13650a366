/*
 * Configuration loading. The file is read with mr_cfg so every error names
 * its key; unknown keys are rejected (a typo must not silently fall back to
 * a default). Flags are applied by main between ctl_config_load() and
 * ctl_config_finish(), which validates the merged result.
 */
#include "ctl_config.h"
#include "mr_alloc.h"
#include "mr_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void ctl_config_init(ctl_config *c)
{
    memset(c, 0, sizeof *c);
    char host[256] = "control";
    if (gethostname(host, sizeof host - 1) != 0)
        snprintf(host, sizeof host, "control");
    c->node = mr_strdup(host);
    c->http_listen = mr_strdup("127.0.0.1:8480");
    c->admin_listen = mr_strdup("127.0.0.1:8481");
    c->hsts_max_age = 31536000;
    c->http_max_body = 64 * 1024;
    c->batch_max_messages = 1000;
    c->batch_max_wait_ms = 20;
    c->batch_lanes = 2;
    c->ack_wait_ms = 30000;
    c->max_ack_pending = 20000;
    /* Expectations only (the relays own the stream): nothing is checked unless configured. */
    mr_stream_config_unset(&c->stream);
    c->retention_days = 30;
    c->partition_interval = mr_strdup("day");
    c->partitions_ahead = 3;
    c->history_workers = 2;
    c->auto_migrate = true;
    c->log_level = mr_strdup("info");
    c->log_format = mr_strdup("text");
    c->webhook.timeout_ms = 5000;
    c->webhook.batch_max = 100;
    c->webhook.retry_min_ms = 500;
    c->webhook.retry_max_ms = 60000;
    c->webhook.poll_ms = 200;
    c->webhook.messages = true;
    c->webhook.presence = false;
    c->webhook.presence_expire_ms = 10000;
}

void ctl_config_set(char **slot, const char *value)
{
    free(*slot);
    *slot = value ? mr_strdup(value) : NULL;
}

static void list_free(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

static void list_push(char ***list, size_t *n, const char *s, size_t len)
{
    *list = mr_realloc(*list, (*n + 1) * sizeof **list);
    (*list)[(*n)++] = mr_strndup(s, len);
}

void ctl_config_set_list(char ***list, size_t *n, const char *value)
{
    list_free(*list, *n);
    *list = NULL;
    *n = 0;
    for (const char *p = value; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len > 0)
            list_push(list, n, p, len);
        p += len + (comma ? 1 : 0);
    }
}

/* Copy a JSON array of strings (already type-checked by mr_cfg) into a list. */
static void list_from_json(char ***list, size_t *n, json_t *arr)
{
    if (!arr)
        return;
    list_free(*list, *n);
    *list = NULL;
    *n = 0;
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e) list_push(list, n, json_string_value(e), json_string_length(e));
}

/* webhook.events: a non-empty list of "message" and "presence". */
static void events_from_json(mr_cfg *m, ctl_config *c, json_t *arr)
{
    if (!arr)
        return;
    c->webhook.messages = c->webhook.presence = false;
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        const char *v = json_string_value(e);
        if (strcmp(v, "message") == 0)
            c->webhook.messages = true;
        else if (strcmp(v, "presence") == 0)
            c->webhook.presence = true;
        else
            mr_cfg_error(m, "webhook.events", "unknown event kind \"%.40s\" (message, presence)",
                         v);
    }
    if (!c->webhook.messages && !c->webhook.presence)
        mr_cfg_error(m, "webhook.events", "must name at least one of message, presence");
}

static void str_from_json(mr_cfg *m, json_t *obj, const char *path, const char *key, char **slot)
{
    const char *v = mr_cfg_str(m, obj, path, key, NULL);
    if (v)
        ctl_config_set(slot, v);
}

bool ctl_region_valid(const char *region)
{
    size_t n = strlen(region);
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = region[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'))
            return false;
    }
    return true;
}

int ctl_config_load(ctl_config *c, const char *path, char *err, size_t errlen)
{
    mr_cfg m = {.file = path};
    json_t *root = mr_cfg_load(&m, path);
    if (!root) {
        snprintf(err, errlen, "%s", m.err);
        return -1;
    }
    static const char *const top[] = {"region",
                                      "regions",
                                      "node",
                                      "nats",
                                      "postgres",
                                      "http_listen",
                                      "admin_listen",
                                      "api_keys",
                                      "api_keys_file",
                                      "tls",
                                      "http",
                                      "batch",
                                      "consumer",
                                      "stream",
                                      "retention_days",
                                      "partition_interval",
                                      "partitions_ahead",
                                      "history_workers",
                                      "auto_migrate",
                                      "log_level",
                                      "log_format",
                                      "webhook",
                                      NULL};
    mr_cfg_check_keys(&m, root, "", top);
    str_from_json(&m, root, "", "region", &c->region);
    list_from_json(&c->regions, &c->nregions, mr_cfg_str_array(&m, root, "", "regions"));
    str_from_json(&m, root, "", "node", &c->node);
    /* URLs (a list, or one comma-separated string) or the object with credentials and TLS. */
    mr_nats_conf_read(&c->nats, &m, root, "nats");
    str_from_json(&m, root, "", "postgres", &c->postgres);
    str_from_json(&m, root, "", "http_listen", &c->http_listen);
    str_from_json(&m, root, "", "admin_listen", &c->admin_listen);
    list_from_json(&c->api_keys, &c->napi_keys, mr_cfg_str_array(&m, root, "", "api_keys"));
    str_from_json(&m, root, "", "api_keys_file", &c->api_keys_file);
    str_from_json(&m, root, "", "log_level", &c->log_level);
    str_from_json(&m, root, "", "log_format", &c->log_format);

    json_t *tls = mr_cfg_obj(&m, root, "", "tls");
    static const char *const tls_keys[] = {"cert", "key", "hsts_max_age", NULL};
    mr_cfg_check_keys(&m, tls, "tls", tls_keys);
    str_from_json(&m, tls, "tls", "cert", &c->tls_cert);
    str_from_json(&m, tls, "tls", "key", &c->tls_key);
    c->hsts_max_age = mr_cfg_int(&m, tls, "tls", "hsts_max_age", c->hsts_max_age, 0, 1LL << 31);

    json_t *http = mr_cfg_obj(&m, root, "", "http");
    static const char *const http_keys[] = {"max_body", NULL};
    mr_cfg_check_keys(&m, http, "http", http_keys);
    c->http_max_body = mr_cfg_int(&m, http, "http", "max_body", c->http_max_body, 256, 1 << 20);

    json_t *batch = mr_cfg_obj(&m, root, "", "batch");
    static const char *const batch_keys[] = {"max_messages", "max_wait_ms", "lanes", NULL};
    mr_cfg_check_keys(&m, batch, "batch", batch_keys);
    c->batch_max_messages =
        (int)mr_cfg_int(&m, batch, "batch", "max_messages", c->batch_max_messages, 1, 10000);
    c->batch_max_wait_ms =
        (int)mr_cfg_int(&m, batch, "batch", "max_wait_ms", c->batch_max_wait_ms, 1, 60000);
    c->batch_lanes = (int)mr_cfg_int(&m, batch, "batch", "lanes", c->batch_lanes, 1, 16);

    json_t *cons = mr_cfg_obj(&m, root, "", "consumer");
    static const char *const cons_keys[] = {"ack_wait_ms", "max_ack_pending", NULL};
    mr_cfg_check_keys(&m, cons, "consumer", cons_keys);
    c->ack_wait_ms = mr_cfg_int(&m, cons, "consumer", "ack_wait_ms", c->ack_wait_ms, 500, 3600000);
    c->max_ack_pending =
        mr_cfg_int(&m, cons, "consumer", "max_ack_pending", c->max_ack_pending, 1, 1000000);

    json_t *st = mr_cfg_obj(&m, root, "", "stream");
    static const char *const st_keys[] = {"max_age_s", "max_bytes", "duplicate_window_s",
                                          "replicas",  "placement", NULL};
    mr_cfg_check_keys(&m, st, "stream", st_keys);
    c->stream.max_age_s =
        mr_cfg_int(&m, st, "stream", "max_age_s", c->stream.max_age_s, 0, 10LL * 365 * 86400);
    c->stream.max_bytes =
        mr_cfg_int(&m, st, "stream", "max_bytes", c->stream.max_bytes, 0, INT64_MAX / 2);
    c->stream.duplicate_window_s = mr_cfg_int(&m, st, "stream", "duplicate_window_s",
                                              c->stream.duplicate_window_s, 1, 7 * 86400);
    c->stream.replicas = (int)mr_cfg_int(&m, st, "stream", "replicas", c->stream.replicas, 1, 5);
    str_from_json(&m, st, "stream", "placement", &c->stream_placement);

    c->retention_days =
        (int)mr_cfg_int(&m, root, "", "retention_days", c->retention_days, 1, 36500);
    str_from_json(&m, root, "", "partition_interval", &c->partition_interval);
    c->partitions_ahead =
        (int)mr_cfg_int(&m, root, "", "partitions_ahead", c->partitions_ahead, 1, 100);
    c->history_workers =
        (int)mr_cfg_int(&m, root, "", "history_workers", c->history_workers, 1, 32);
    c->auto_migrate = mr_cfg_bool(&m, root, "", "auto_migrate", c->auto_migrate);
    json_t *wh = mr_cfg_obj(&m, root, "", "webhook");
    static const char *const wh_keys[] = {
        "url",          "secret_file", "timeout_ms", "batch_max",          "retry_min_ms",
        "retry_max_ms", "poll_ms",     "events",     "presence_expire_ms", NULL};
    mr_cfg_check_keys(&m, wh, "webhook", wh_keys);
    str_from_json(&m, wh, "webhook", "url", &c->webhook.url);
    str_from_json(&m, wh, "webhook", "secret_file", &c->webhook.secret_file);
    c->webhook.timeout_ms =
        mr_cfg_int(&m, wh, "webhook", "timeout_ms", c->webhook.timeout_ms, 100, 600000);
    c->webhook.batch_max =
        (int)mr_cfg_int(&m, wh, "webhook", "batch_max", c->webhook.batch_max, 1, 10000);
    c->webhook.retry_min_ms =
        mr_cfg_int(&m, wh, "webhook", "retry_min_ms", c->webhook.retry_min_ms, 10, 3600000);
    c->webhook.retry_max_ms =
        mr_cfg_int(&m, wh, "webhook", "retry_max_ms", c->webhook.retry_max_ms, 10, 86400000);
    c->webhook.poll_ms = mr_cfg_int(&m, wh, "webhook", "poll_ms", c->webhook.poll_ms, 10, 60000);
    c->webhook.presence_expire_ms = mr_cfg_int(&m, wh, "webhook", "presence_expire_ms",
                                               c->webhook.presence_expire_ms, 1000, 3600000);
    events_from_json(&m, c, mr_cfg_str_array(&m, wh, "webhook", "events"));
    json_decref(root);
    if (mr_cfg_failed(&m)) {
        snprintf(err, errlen, "%s", m.err);
        return -1;
    }
    return 0;
}

/* Read one API key per line; blank lines and lines starting with '#' are skipped. */
static int load_keys_file(ctl_config *c, char *err, size_t errlen)
{
    FILE *f = fopen(c->api_keys_file, "r");
    if (!f) {
        snprintf(err, errlen, "api_keys_file %s: %s", c->api_keys_file, strerror(errno));
        return -1;
    }
    char line[1024];
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t n = strcspn(line, "\r\n");
        if (line[n] == '\0' && !feof(f)) {
            snprintf(err, errlen, "api_keys_file %s:%d: line too long", c->api_keys_file, lineno);
            fclose(f);
            return -1;
        }
        line[n] = '\0';
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        size_t len = strlen(p);
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            p[--len] = '\0';
        if (len == 0 || p[0] == '#')
            continue;
        list_push(&c->api_keys, &c->napi_keys, p, len);
    }
    fclose(f);
    return 0;
}

/* The webhook secret: the file's bytes without a trailing newline, 16 to 4096 of them. */
static int load_webhook_secret(ctl_config *c, char *err, size_t errlen)
{
    const char *url = c->webhook.url;
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        snprintf(err, errlen, "webhook.url: \"%.100s\" must be an http:// or https:// URL", url);
        return -1;
    }
    if (!c->webhook.secret_file) {
        snprintf(err, errlen, "webhook.secret_file: required with webhook.url (the signing key)");
        return -1;
    }
    FILE *f = fopen(c->webhook.secret_file, "rb");
    if (!f) {
        snprintf(err, errlen, "webhook.secret_file %s: %s", c->webhook.secret_file,
                 strerror(errno));
        return -1;
    }
    unsigned char buf[4097];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    if (n < 16 || n > 4096) {
        snprintf(err, errlen, "webhook.secret_file %s: the secret must be 16 to 4096 bytes",
                 c->webhook.secret_file);
        return -1;
    }
    free(c->webhook.secret);
    c->webhook.secret = mr_malloc(n);
    memcpy(c->webhook.secret, buf, n);
    c->webhook.secret_len = n;
    if (c->webhook.retry_max_ms < c->webhook.retry_min_ms)
        c->webhook.retry_max_ms = c->webhook.retry_min_ms;
    return 0;
}

int ctl_config_finish(ctl_config *c, char *err, size_t errlen)
{
    if (c->webhook.url && load_webhook_secret(c, err, errlen) != 0)
        return -1;
    if (!c->region || !ctl_region_valid(c->region)) {
        snprintf(err, errlen, "region: required, [a-z0-9-] 1..64 bytes");
        return -1;
    }
    if (c->nregions == 0)
        ctl_config_set_list(&c->regions, &c->nregions, c->region);
    for (size_t i = 0; i < c->nregions; i++) {
        if (!ctl_region_valid(c->regions[i])) {
            snprintf(err, errlen, "regions[%zu]: \"%s\" is not a valid region name", i,
                     c->regions[i]);
            return -1;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->regions[i], c->regions[j]) == 0) {
                snprintf(err, errlen, "regions: \"%s\" listed twice", c->regions[i]);
                return -1;
            }
    }
    if (c->nats.n_urls == 0)
        mr_nats_conf_set_urls(&c->nats, "nats://127.0.0.1:4222");
    if (mr_nats_conf_check(&c->nats, "nats", err, errlen) != 0)
        return -1;
    if (!c->postgres || !c->postgres[0]) {
        snprintf(err, errlen, "postgres: required (a libpq connection string)");
        return -1;
    }
    char host[256];
    int port;
    if (mr_parse_hostport(c->http_listen, host, sizeof host, &port) != 0) {
        snprintf(err, errlen, "http_listen: \"%s\" is not host:port", c->http_listen);
        return -1;
    }
    if (mr_parse_hostport(c->admin_listen, host, sizeof host, &port) != 0) {
        snprintf(err, errlen, "admin_listen: \"%s\" is not host:port", c->admin_listen);
        return -1;
    }
    if (!!c->tls_cert != !!c->tls_key) {
        snprintf(err, errlen, "tls: cert and key must be given together");
        return -1;
    }
    if (c->partition_interval == NULL || !ctl_config_interval_sql(c)) {
        snprintf(err, errlen, "partition_interval: must be \"hour\", \"day\" or \"week\"");
        return -1;
    }
    if (c->api_keys_file && load_keys_file(c, err, errlen) != 0)
        return -1;
    if (c->napi_keys == 0) {
        snprintf(err, errlen, "api_keys: at least one key is required (api_keys or api_keys_file)");
        return -1;
    }
    for (size_t i = 0; i < c->napi_keys; i++)
        if (strlen(c->api_keys[i]) < 16) {
            snprintf(err, errlen, "api_keys[%zu]: keys must be at least 16 characters", i);
            return -1;
        }
    if (!c->node || !c->node[0] || strlen(c->node) > 128) {
        snprintf(err, errlen, "node: must be 1..128 bytes");
        return -1;
    }
    c->stream.placement = c->stream_placement;
    return 0;
}

const char *ctl_config_interval_sql(const ctl_config *c)
{
    if (strcmp(c->partition_interval, "hour") == 0)
        return "1 hour";
    if (strcmp(c->partition_interval, "day") == 0)
        return "1 day";
    if (strcmp(c->partition_interval, "week") == 0)
        return "7 days";
    return NULL;
}

void ctl_config_free(ctl_config *c)
{
    free(c->region);
    list_free(c->regions, c->nregions);
    free(c->node);
    mr_nats_conf_free(&c->nats);
    free(c->postgres);
    free(c->http_listen);
    free(c->admin_listen);
    list_free(c->api_keys, c->napi_keys);
    free(c->api_keys_file);
    free(c->tls_cert);
    free(c->tls_key);
    free(c->stream_placement);
    free(c->partition_interval);
    free(c->log_level);
    free(c->log_format);
    free(c->webhook.url);
    free(c->webhook.secret_file);
    free(c->webhook.secret);
    memset(c, 0, sizeof *c);
}
