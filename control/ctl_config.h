/*
 * Configuration of meridian-control: a JSON file (every key optional but
 * region, regions and postgres) overlaid by command-line flags. See
 * docs/control.md for the reference of every key.
 */
#ifndef CTL_CONFIG_H
#define CTL_CONFIG_H

#include "mr_nats_opts.h"
#include "mr_stream.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ctl_config {
    char *region; /* own region: POST publishes into its stream */
    char **regions;
    size_t nregions;
    char *node;        /* envelope "node" for messages published through the API */
    mr_nats_conf nats; /* URLs, credentials and TLS (the "nats" key, mr_nats_opts.h) */
    char *postgres;    /* libpq conninfo or URI (multi-host allowed) */
    char *http_listen;
    char *admin_listen;
    char **api_keys;
    size_t napi_keys;
    char *api_keys_file;
    char *tls_cert;
    char *tls_key;
    int64_t hsts_max_age;
    int64_t http_max_body;
    int batch_max_messages;
    int batch_max_wait_ms;
    int batch_lanes; /* parallel database sessions per region stream */
    int64_t ack_wait_ms;
    int64_t max_ack_pending;
    char *stream_placement; /* owned storage behind stream.placement */
    /*
     * What each region stream must look like; members not configured are
     * unset (mr_stream_config_unset) and not checked. Control never changes
     * a stream: the relays own its configuration.
     */
    mr_stream_config stream;
    int retention_days;
    char *partition_interval; /* "hour", "day" or "week" */
    int partitions_ahead;
    int history_workers;
    bool auto_migrate; /* apply pending migrations at start (default), else wait for `migrate` */
    char *log_level;
    char *log_format; /* "text" or "json" */
    /* Webhooks (ctl_webhook.c, ctl_presence.c); off while url is NULL. */
    struct {
        char *url;
        char *secret_file;
        unsigned char *secret; /* read from secret_file by ctl_config_finish */
        size_t secret_len;
        int64_t timeout_ms;
        int batch_max;
        int64_t retry_min_ms, retry_max_ms;
        int64_t poll_ms;
        /* webhook.events: what is sent; messages by default, presence on request. */
        bool messages, presence;
        int64_t presence_expire_ms; /* a relay silent this long has left (relay_lost) */
    } webhook;
} ctl_config;

/** Defaults for every key; strings are NULL where there is no default. */
void ctl_config_init(ctl_config *c);

/**
 * Read `path` into `c` (over the defaults). Returns 0, or -1 with `err` set
 * to a message naming the file and the key ("control.json: batch.max_messages: ...").
 */
int ctl_config_load(ctl_config *c, const char *path, char *err, size_t errlen);

/**
 * Check the merged configuration (file plus flags) and load api_keys_file.
 * Returns 0, or -1 with `err` set.
 */
int ctl_config_finish(ctl_config *c, char *err, size_t errlen);

/** Replace a string setting (used for flags). */
void ctl_config_set(char **slot, const char *value);
/** Replace a list setting with the comma-separated `value`. */
void ctl_config_set_list(char ***list, size_t *n, const char *value);

/** True for region names usable as a NATS subject token: [a-z0-9-], 1..64 bytes. */
bool ctl_region_valid(const char *region);

/** The partition interval as a PostgreSQL interval literal ("1 day"). */
const char *ctl_config_interval_sql(const ctl_config *c);

void ctl_config_free(ctl_config *c);

#endif
