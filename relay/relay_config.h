/* The relay's configuration: JSON file plus command-line overrides. */
#ifndef RELAY_CONFIG_H
#define RELAY_CONFIG_H

#include "mr_jwt.h"
#include "mr_nats_opts.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct relay_limits {
    int64_t max_message_bytes;
    double publish_rate;
    double publish_burst;
    int64_t rate_limit_strikes;
    int64_t max_rooms_per_connection;
    int64_t max_connections_per_ip; /* 0: unlimited */
    int64_t max_outbound_bytes;
    int64_t handshake_timeout_ms;
    int64_t ping_interval_s;
    int64_t idle_timeout_s;
    int64_t max_bad_frames;
    int64_t dedup_window; /* most message ids a room remembers, awaiting and committed each */
    /* lws's receive buffer per connection: memory per idle connection against how much of
     * a busy connection's input one pass of the event loop reads */
    int64_t receive_buffer_bytes;
} relay_limits;

/* Events a backend hook rule applies to (relay_hook_rule.events). */
#define RELAY_HOOK_ON_JOIN    1
#define RELAY_HOOK_ON_PUBLISH 2

/* One rule of "hooks.rules": which events and rooms go to which backend URL. */
typedef struct relay_hook_rule {
    int events;         /* RELAY_HOOK_ON_* bits */
    json_t *rooms;      /* room patterns as in a token's rooms claim, or NULL: every room */
    char *url;          /* http:// or https:// */
    int64_t timeout_ms; /* the whole exchange, connecting included */
    bool fail_open;     /* allow when the backend fails (default: refuse) */
} relay_hook_rule;

typedef struct relay_hooks_conf {
    relay_hook_rule *rules; /* the first rule matching an event and a room applies */
    size_t rule_count;
    int64_t max_connections; /* kept-alive connections per backend host */
    int64_t max_pending;     /* publishes a connection may have waiting for hooks */
    int64_t cache_entries;   /* publish decisions remembered by msg_id */
} relay_hooks_conf;

/*
 * TLS 1.3 suites when tls.ciphersuites is not set, in the server's order: AES-128-GCM is
 * the fastest with AES instructions and keeps less state per connection than the
 * AES-256-GCM that OpenSSL clients ask for first; clients that list ChaCha20 first
 * (phones without AES instructions) still get it.
 */
#define RELAY_TLS_DEFAULT_SUITES                                                                   \
    "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384"

typedef struct relay_config {
    char *region;
    char *node_id;
    char *listen;       /* host:port of the WebSocket server */
    char *admin_listen; /* host:port of the admin HTTP server */
    mr_nats_conf nats;  /* URLs, credentials and TLS (the "nats" key, mr_nats_opts.h) */
    /* auth: the token keys (auth.secret, secret_file, secrets or secret_files); the config
     * owns every kid and secret they point to */
    mr_jwt_key *keys;
    size_t nkeys;
    char *issuer;
    char *audience;
    int64_t leeway_s;
    int64_t refresh_hint_s; /* send `refresh_due` this long before a token expires (0: never) */
    /* tls */
    char *tls_cert;
    char *tls_key;
    char *tls_ciphersuites; /* OpenSSL TLS 1.3 list, in the server's order of preference */
    int64_t hsts_max_age;
    relay_limits limits;
    char **origins;
    size_t origin_count;
    int64_t drain_grace_ms;
    int64_t drain_batch;  /* reconnect frames per 100 ms during a drain */
    char **fallback_urls; /* other regions' URLs, offered in welcome and reconnect */
    size_t fallback_count;
    char *admin_api_key; /* Bearer key for POST /v1/drain and /v1/undrain; NULL: both disabled */
    char *static_dir;
    char *log_level;
    char *log_format;     /* "text" or "json" */
    int64_t workers;      /* reserved: processes sharing the listen port */
    int64_t send_threads; /* threads writing a pass's frames to plain sockets, lws's included */
    bool event_loop_uv;   /* "event_loop": "libuv": lws on a libuv loop (epoll) instead of poll() */
    /* Durability: JetStream publishes acked by the region's stream. */
    bool jetstream;
    int64_t publish_ack_timeout_ms;
    int64_t publish_retries;
    int64_t stream_max_age_s;
    int64_t stream_max_bytes;
    int64_t stream_duplicate_window_s;
    int64_t stream_replicas;
    char *stream_placement;
    /* Resume: history fetched from the control plane on join with `since`. */
    int64_t resume_limit;
    int64_t rewind_max; /* most messages a join's `rewind` replays (0: rewind is off) */
    int64_t resume_timeout_ms;
    int64_t commit_repair_ms; /* fetch commits missing for this long from history (0: off) */
    /* Presence across relays. */
    /* Ephemeral signals (relay_signal.c): per-connection bucket and the largest `data`. */
    double signal_rate, signal_burst;
    int64_t signal_max_bytes;
    int64_t presence_heartbeat_ms;
    int64_t presence_expire_heartbeats;
    relay_hooks_conf hooks; /* backend hooks on join and publish (relay_hook.c) */
} relay_config;

/* Most URLs a drain request or fallback_urls may list, and the longest one. */
#define RELAY_DRAIN_URLS_MAX 16
#define RELAY_URL_MAX        512

/**
 * A URL clients may be sent to (fallback_urls, POST /v1/drain): ws:// or
 * wss://, a host, at most RELAY_URL_MAX bytes of printable ASCII without
 * spaces, quotes, backslashes or angle brackets.
 */
bool relay_config_url_valid(const char *url);
/** Fill `c` with the documented defaults. */
void relay_config_defaults(relay_config *c);
/**
 * Apply a JSON config file on top of `c`. Returns 0, or -1 with a message
 * naming the file, the key and the reason in `err`.
 */
int relay_config_load(relay_config *c, const char *path, char *err, size_t errlen);
/** Final checks after files and flags are applied (secret present, addresses parse). */
int relay_config_validate(const relay_config *c, char *err, size_t errlen);
/* Most token keys at once: the current one, the one being retired, one being introduced. */
#define RELAY_AUTH_KEYS_MAX 8

struct mr_check;
/**
 * What --check adds to validation (relay_config_validate passed): the
 * addresses bind, the TLS files are readable and belong together, every
 * token key is long enough for HS256, the stream's settings are ones NATS
 * accepts. Findings go to `chk`.
 */
void relay_config_check(const relay_config *c, struct mr_check *chk);

/* HS256 keys shorter than this are weaker than the hash (RFC 7518 §3.2). */
#define RELAY_SECRET_MIN 32

/** Replace the NATS URL list from a comma-separated string (credentials and TLS stay). */
void relay_config_set_nats(relay_config *c, const char *csv);
void relay_config_set_str(char **slot, const char *value);
void relay_config_free(relay_config *c);

#endif
