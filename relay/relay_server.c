/*
 * The relay's WebSocket server on libwebsockets: the top of dispatch.
 *
 * lws owns the main thread: its own poll() loop, or (event_loop "libuv")
 * a libuv loop the relay creates and runs, on which lws registers its
 * sockets and timers. Other threads talk to it only through
 * lws_cancel_service(), which makes lws call LWS_CALLBACK_EVENT_WAIT_CANCELLED
 * on the service thread: there we take queued NATS messages and act on
 * drain or stop requests.
 *
 * Upgrades are vetted in LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION (Origin
 * allowlist, per-IP limit, drain). We deliberately do not handle
 * LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: lws 4.1 has a use-after-free on that
 * path (CVE-2025-11677).
 */
#include "relay_server.h"
#include "mr_alloc.h"
#include "mr_config.h"
#include "mr_log.h"
#include "mr_time.h"
#include "relay_client.h"
#include "relay_conn.h"
#include "relay_drain.h"
#include "relay_hook.h"
#include "relay_inbound.h"
#include "relay_metrics.h"
#include "relay_presence.h"
#include "relay_publish.h"
#include "relay_reload.h"
#include "relay_repair.h"
#include "relay_resume.h"
#include "relay_send.h"

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

/* Most bytes lws writes to a socket at once (our batches are at most 64 KiB and a frame). */
#define TX_PACKET_BYTES (256 * 1024)
/* lws's per-thread buffer: the relay enforces message sizes itself, so keep it small. */
#define SERVE_BUFFER_BYTES 16384
/* Seconds lws allows for its own protocol steps (handshakes, close). */
#define LWS_TIMEOUT_S 10

/* Ticks between two checks of the listening socket. */
#define LISTEN_CHECK_TICKS 10
/* Housekeeping ticks between two malloc_trim calls (1 s). */
#define TRIM_TICKS 10

/*
 * Whether something is bound to the WebSocket address. lws 4.1 starts a
 * vhost whose interface does not exist yet without a listening socket (and
 * says nothing through its API), so ask the kernel: a bind to the same
 * address fails with EADDRINUSE exactly when a socket holds it. A probe
 * that does bind is closed at once, before any client could notice.
 */
static bool listener_bound(relay *r)
{
    int port = relay_server_port(r);
    if (port <= 0)
        return false;
    const char *host = r->listen_host;
    bool v6 = strchr(host, ':') != NULL;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t sl;
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
            return true; /* a scoped address or a name: trust the bind lws reported */
        sl = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        a->sin_addr.s_addr = htonl(INADDR_ANY);
        if (host[0] && strcmp(host, "0.0.0.0") != 0 && inet_pton(AF_INET, host, &a->sin_addr) != 1)
            return true; /* a host name: lws resolved it; trust the bind it reported */
        sl = sizeof *a;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return true; /* out of descriptors says nothing about the listener */
    int rc = bind(fd, (struct sockaddr *)&ss, sl);
    int err = errno;
    close(fd);
    return rc != 0 && err == EADDRINUSE;
}

static void check_listener(relay *r)
{
    bool bound = listener_bound(r);
    if (atomic_exchange(&r->listening, bound) != bound)
        mr_log(bound ? MR_LOG_INFO : MR_LOG_ERROR, "WebSocket listener on %s %s", r->cfg->listen,
               bound ? "bound" : "is not bound: not ready");
}

/*
 * Give the free pages inside the heap back to the kernel. A burst (a
 * presence event per join while thousands join one room, a backlog of
 * frames) frees memory scattered between live connections; glibc only
 * returns the top of the heap by itself, so it stayed in the RSS: 5,000
 * users joining one room left 2.4 MB of it (about 490 B per connection,
 * docs/benchmarks.md, "Memory per joined connection"). malloc_trim walks
 * the free chunks: 0.1-0.4 ms with 15,000 connections (perf probe).
 */
static void trim_heap(relay *r)
{
    if (--r->trim_ticks > 0)
        return;
    r->trim_ticks = TRIM_TICKS;
    int64_t t0 = mr_now_us();
    malloc_trim(0);
    int64_t took = mr_now_us() - t0;
    if (took > 2000)
        mr_log_debug("malloc_trim took %lld us", (long long)took);
}

/* Periodic work on the lws thread, every RELAY_TICK_MS. */
static void housekeeping_cb(lws_sorted_usec_list_t *sul)
{
    relay *r = lws_container_of(sul, relay, housekeeping_sul);
    atomic_store(&r->loop_alive_us, mr_now_us());
    relay_reload_tick(r);
    if (--r->listen_check_ticks <= 0) {
        r->listen_check_ticks = LISTEN_CHECK_TICKS;
        check_listener(r);
    }
    relay_resume_expire(r);
    relay_publish_tick(r, mr_now_us());
    relay_client_tick(r);
    relay_presence_tick(r);
    relay_repair_tick(r);
    relay_drain_tick(r);
    trim_heap(r);
    lws_sul_schedule(r->lws, 0, &r->housekeeping_sul, housekeeping_cb,
                     RELAY_TICK_MS * LWS_US_PER_MS);
}

static int filter_upgrade(relay *r, struct lws *wsi)
{
    if (atomic_load(&r->draining)) {
        mr_metric_inc(&relay_m.rejected_upgrades);
        return 1;
    }
    if (r->cfg->origin_count) {
        char origin[512];
        int n = lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN);
        if (n > 0) {
            bool ok = false;
            for (size_t i = 0; i < r->cfg->origin_count && !ok; i++)
                ok = strcmp(origin, r->cfg->origins[i]) == 0;
            if (!ok) {
                mr_log_info("refused upgrade from origin %s", origin);
                mr_metric_inc(&relay_m.rejected_upgrades);
                return 1;
            }
        }
    }
    int64_t limit = r->cfg->limits.max_connections_per_ip;
    if (limit > 0) {
        char ip[64];
        if (lws_get_peer_simple(wsi, ip, sizeof ip)) {
            intptr_t n = (intptr_t)mr_map_get(&r->ip_counts, ip, strlen(ip));
            if (n >= limit) {
                mr_log_info("refused upgrade from %s: %ld connections already open", ip, (long)n);
                mr_metric_inc(&relay_m.rejected_upgrades);
                return 1;
            }
        }
    }
    return 0;
}

static int callback_meridian(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                             void *in, size_t len)
{
    /* The relay rides on the context (lws_context_creation_info.user); NULL on stray wsis. */
    struct lws_context *cx = wsi ? lws_get_context(wsi) : NULL;
    relay *r = cx ? lws_context_user(cx) : NULL;
    relay_conn *c = user;
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return filter_upgrade(r, wsi);
    case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
        r->ssl_ctx = user; /* a SIGHUP installs renewed certificates here */
        /* Idle TLS connections give their read and write buffers back (about 34 KiB each). */
        SSL_CTX_set_mode((SSL_CTX *)user, SSL_MODE_RELEASE_BUFFERS);
        /*
         * The order of suites is ours, not the client's (validated with the config), except
         * that a client listing ChaCha20 first gets it: it has no AES instructions.
         */
        if (SSL_CTX_set_ciphersuites((SSL_CTX *)user, r->cfg->tls_ciphersuites) != 1)
            return 1;
        SSL_CTX_set_options((SSL_CTX *)user,
                            SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA);
        return 0;
    case LWS_CALLBACK_ESTABLISHED:
        relay_client_open(r, c, wsi);
        return 0;
    case LWS_CALLBACK_RECEIVE:
        return relay_client_receive(c, in, len, lws_frame_is_binary(wsi),
                                    lws_is_final_fragment(wsi));
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return relay_client_writable(c);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        return relay_conn_peer_closed(c);
    case LWS_CALLBACK_TIMER:
        relay_client_timer(c);
        return 0;
    case LWS_CALLBACK_CLOSED:
        relay_client_closed(c);
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (!r)
            return 0;
        relay_inbound_take(r);
        relay_client_hooks_take(r);
        relay_drain_poll(r);
        relay_reload_poll(r);
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* What every pass of the loop ends with: NATS first, the clients' writes of a big room take long.
 */
static void pass_done(relay *r)
{
    /*
     * Clients first: their frames are what someone waits for; releasing the
     * pass's NATS messages wakes libnats' GC thread, which can wait.
     */
    relay_conn_flush(r);
    relay_nats_pass_done(r->nats);
}

/* The relay stops, or a drain ended early because every client has gone. */
static bool run_over(relay *r)
{
    return atomic_load(&r->stopping) || (r->drain_started && r->drain_exit && r->conn_count == 0);
}

/*
 * event_loop libuv: lws runs on the relay's own uv loop (a "foreign" loop
 * to lws), so the relay runs it and has it end each pass here: a check
 * handle runs after every poll phase. lws_service() cannot be used: with an
 * event library it runs the library's loop until that is stopped, which is
 * why the libev experiment never stopped on SIGINT (docs/benchmarks.md,
 * "Fan-out tail").
 */
static void uv_pass_cb(uv_check_t *h)
{
    relay *r = h->data;
    pass_done(r);
    if (run_over(r))
        uv_stop(h->loop);
}

static void lws_log_emit(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n')
        n--;
    mr_log(level == LLL_ERR ? MR_LOG_ERROR : MR_LOG_WARN, "lws: %.*s", (int)n, line);
}

static void wake(void *ud)
{
    relay *r = ud;
    if (r->lws)
        lws_cancel_service(r->lws);
}

int relay_server_start(relay *r, char *err, size_t errlen)
{
    const relay_config *c = r->cfg;
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit);

    /*
     * The receive buffer's size is limits.receive_buffer_bytes (larger messages arrive in
     * fragments and are joined in relay_client.c). Sends are not cut to it: lws caps each
     * send at tx_packet_size, or at the receive buffer's size when that is 0
     * (docs/benchmarks.md, "Whole sends, and a receive buffer to choose").
     */
    r->protocols[0] = (struct lws_protocols){"meridian.v1",
                                             callback_meridian,
                                             sizeof(relay_conn),
                                             (size_t)c->limits.receive_buffer_bytes,
                                             0,
                                             NULL,
                                             TX_PACKET_BYTES};
    r->protocols[1] = (struct lws_protocols){NULL, NULL, 0, 0, 0, NULL, 0};

    char *host = r->listen_host;
    int port;
    mr_parse_hostport(c->listen, host, sizeof r->listen_host, &port);

    r->retry = (lws_retry_bo_t){
        .secs_since_valid_ping = (uint16_t)c->limits.ping_interval_s,
        .secs_since_valid_hangup = (uint16_t)c->limits.idle_timeout_s,
    };

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = port;
    info.iface = host[0] && strcmp(host, "0.0.0.0") != 0 ? host : NULL;
    info.protocols = r->protocols;
    info.user = r;
    info.gid = -1;
    info.uid = -1;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 |
                   LWS_SERVER_OPTION_HTTP_HEADERS_SECURITY_BEST_PRACTICES_ENFORCE;
    /*
     * With IPv6 enabled, lws 4.1 binds an IPv6 wildcard socket even when iface
     * names an IPv4 address; relays sharing a port on different loopback
     * addresses need the IPv4 bind.
     */
    if (strchr(host, ':') == NULL)
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    info.retry_and_idle_policy = &r->retry;
    info.timeout_secs = LWS_TIMEOUT_S;
    /* The relay enforces the message size itself; keep lws's per-connection buffers small. */
    info.pt_serv_buf_size = SERVE_BUFFER_BYTES;
    if (c->workers > 1)
        info.options |= LWS_SERVER_OPTION_ALLOW_LISTEN_SHARE;

    if (c->static_dir) {
        struct lws_http_mount *mount = &r->mount;
        memset(mount, 0, sizeof *mount);
        mount->mountpoint = "/";
        mount->mountpoint_len = 1;
        mount->origin = c->static_dir;
        mount->def = "index.html";
        mount->origin_protocol = LWSMPRO_FILE;
        info.mounts = mount;
    }

    if (c->tls_cert) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = c->tls_cert;
        info.ssl_private_key_filepath = c->tls_key;
        /* TLS 1.3 only: older versions are refused at the handshake. */
        info.ssl_options_set = SSL_OP_NO_SSLv2 | SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 |
                               SSL_OP_NO_TLSv1_1 | SSL_OP_NO_TLSv1_2;
        snprintf(r->hsts, sizeof r->hsts, "max-age=%lld; includeSubDomains",
                 (long long)c->hsts_max_age);
        r->hsts_header.name = "strict-transport-security:";
        r->hsts_header.value = r->hsts;
        info.headers = &r->hsts_header;
    }

    bool hooks_failed;
    mr_map_init(&r->hook_waits);
    r->hooks = relay_hooks_new(c, wake, r, &hooks_failed);
    if (hooks_failed) {
        snprintf(err, errlen, "hooks: cannot start the HTTP client for backend hooks");
        return -1;
    }
    if (c->event_loop_uv) {
        uv_loop_t *loop = mr_malloc(sizeof *loop);
        if (uv_loop_init(loop) != 0) {
            free(loop);
            snprintf(err, errlen, "event_loop: cannot create the libuv loop");
            return -1;
        }
        r->uv_loop = loop;
        r->uv_loops[0] = loop;
        info.foreign_loops = r->uv_loops;
        info.options |= LWS_SERVER_OPTION_LIBUV;
    }
    if (c->send_threads > 1) {
        r->senders = relay_senders_new((int)c->send_threads);
        if (!r->senders) {
            snprintf(err, errlen, "send_threads: cannot start %lld sender threads",
                     (long long)c->send_threads);
            return -1;
        }
    }
    r->nats = relay_nats_new(c, wake, r);
    r->lws = lws_create_context(&info);
    if (!r->lws) {
        snprintf(err, errlen,
                 "cannot start the WebSocket server on %s (address in use, or bad TLS files?%s)",
                 c->listen,
                 c->event_loop_uv ? " event_loop libuv needs lws's libuv plugin: Debian package "
                                    "libwebsockets-evlib-uv"
                                  : "");
        return -1;
    }
    r->vhost = lws_get_vhost_by_name(r->lws, "default");
    if (r->uv_loop) {
        uv_check_t *check = mr_malloc(sizeof *check);
        uv_check_init(r->uv_loop, check);
        check->data = r;
        uv_check_start(check, uv_pass_cb);
        r->uv_check = check;
    }
    if (relay_nats_connect(r->nats, err, errlen) != 0)
        return -1;
    mr_metric_set(&relay_m.nats_connected, relay_nats_connected(r->nats));
    atomic_store(&r->loop_alive_us, mr_now_us());
    atomic_store(&r->listening, true); /* so that the first check logs only a missing listener */
    check_listener(r);
    r->listen_check_ticks = LISTEN_CHECK_TICKS;
    lws_sul_schedule(r->lws, 0, &r->housekeeping_sul, housekeeping_cb, 100 * LWS_US_PER_MS);
    return 0;
}

int relay_server_port(relay *r)
{
    return r->vhost ? lws_get_vhost_listen_port(r->vhost) : -1;
}

void relay_server_run(relay *r)
{
    if (r->uv_loop) {
        if (!run_over(r))
            uv_run(r->uv_loop, UV_RUN_DEFAULT);
        return;
    }
    while (!run_over(r)) {
        if (lws_service(r->lws, 0) < 0)
            break;
        pass_done(r);
    }
}

void relay_server_wake(relay *r)
{
    wake(r);
}

void relay_server_stop(relay *r)
{
    /*
     * Close NATS first so no callback wakes a context being destroyed; then
     * destroy the context, which closes sessions and drops their (now inert)
     * subscriptions; then free what NATS still holds.
     */
    /*
     * The loop runs again while lws closes its handles (lws_context_destroy on a foreign
     * loop): the end-of-pass handle must not, with NATS closed and sessions going.
     */
    if (r->uv_check)
        uv_check_stop(r->uv_check);
    if (r->nats && r->instance[0]) {
        relay_presence_bye(r);
        relay_nats_flush(r->nats);
    }
    relay_nats_close(r->nats);
    relay_hooks_free(r->hooks); /* joins the hook thread: no wake-up after this */
    r->hooks = NULL;
    r->destroying = true;
    if (r->lws) {
        lws_context_destroy(r->lws);
        if (r->uv_loop) {
            /*
             * On a foreign loop lws 4.1 only starts closing its handles, which libuv closes
             * asynchronously, and their close callbacks are in lws's libuv plugin: the loop
             * runs until every handle is closed (ours too), then a second
             * lws_context_destroy frees the context and unloads the plugin
             * (lib/core/context.c, lib/event-libs/libuv).
             */
            if (r->uv_check)
                uv_close((uv_handle_t *)r->uv_check, NULL);
            uv_run(r->uv_loop, UV_RUN_DEFAULT);
            lws_context_destroy(r->lws);
        }
    }
    r->lws = NULL;
    if (r->uv_loop) {
        uv_run(r->uv_loop, UV_RUN_DEFAULT);
        if (uv_loop_close(r->uv_loop) != 0)
            mr_log_warn("libuv loop closed with handles still open");
        free(r->uv_check);
        free(r->uv_loop);
        r->uv_check = NULL;
        r->uv_loop = NULL;
    }
    if (r->hook_waits.buckets)
        relay_client_hooks_free(r);
    relay_nats_free(r->nats);
    r->nats = NULL;
    relay_senders_free(r->senders); /* idle: they only run inside relay_conn_flush */
    r->senders = NULL;
    free(r->send_jobs);
    r->send_jobs = NULL;
    r->send_jobs_cap = 0;
}
