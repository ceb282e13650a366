/*
 * meridian-relay: command line, configuration, threads and shutdown.
 *
 * Signals are blocked in every thread and taken by one signal thread with
 * sigwait(): SIGTERM starts a drain, a second SIGTERM or SIGINT stops at
 * once. The thread only sets atomics and wakes the lws loop, so no lws call
 * is made from a signal handler.
 */
#include "mr_admin.h"
#include "mr_check.h"
#include "mr_sdnotify.h"
#include "mr_alloc.h"
#include "mr_log.h"
#include "mr_metrics.h"
#include "mr_time.h"
#include "relay.h"
#include "relay_config.h"
#include "relay_deliver.h"
#include "relay_drain.h"
#include "relay_metrics.h"
#include "relay_presence.h"
#include "relay_publish.h"
#include "relay_reload.h"
#include "relay_repair.h"
#include "relay_resume.h"
#include "relay_signal.h"
#include "relay_server.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "Usage: meridian-relay [--config FILE] [options]\n"
    "\n"
    "Regional Meridian relay: holds client WebSockets, authenticates them, fans\n"
    "messages out to room members and exchanges them with other relays over NATS.\n"
    "\n"
    "Options (override the config file; every key is documented in docs/relay.md):\n"
    "  -c, --config FILE        JSON configuration file\n"
    "  -l, --listen HOST:PORT   WebSocket listen address (default 127.0.0.1:8080)\n"
    "  -a, --admin-listen HOST:PORT\n"
    "                           admin HTTP address: /healthz /readyz /metrics\n"
    "                           (default 127.0.0.1:9090)\n"
    "  -n, --nats URL[,URL...]  NATS server URLs (default nats://127.0.0.1:4222)\n"
    "  -r, --region NAME        region name (default local)\n"
    "  -i, --node-id ID         this relay's id within the region (default relay-1)\n"
    "      --log-level LEVEL    error, warn, info or debug (default info)\n"
    "      --check              validate the configuration and exit\n"
    "  -V, --version            print the version and exit\n"
    "  -h, --help               print this help and exit\n"
    "\n"
    "Signals: SIGTERM drains (clients get a reconnect frame, then close 1012 after\n"
    "drain_grace_ms); a second SIGTERM or SIGINT stops at once. SIGHUP reloads the\n"
    "token keys, TLS certificate and key, limits, log level, admin key, origins and\n"
    "fallback URLs without dropping a session; other changed keys are logged as\n"
    "needing a restart, and a file that is not valid changes nothing.\n"
    "\n"
    "Exit status: 0 after a clean stop (or --check finding no error), 1 when the\n"
    "relay could not start (a port in use, NATS refusing it), 2 for a configuration\n"
    "or usage error (with --check: anything a start would trip over).\n";

typedef struct signal_ctx {
    relay *r;
    sigset_t set;
} signal_ctx;

static void *signal_main(void *arg)
{
    signal_ctx *sc = arg;
    for (;;) {
        int sig;
        if (sigwait(&sc->set, &sig) != 0)
            continue;
        if (sig == SIGUSR2)
            return NULL; /* main is shutting down: stop waking the lws loop */
        if (sig == SIGHUP) {
            atomic_store(&sc->r->reload_requested, true);
            relay_server_wake(sc->r);
            continue;
        }
        mr_sdnotify_stopping();
        if (sig == SIGTERM && !atomic_load(&sc->r->sigterm)) {
            mr_log_info("SIGTERM: draining");
            atomic_store(&sc->r->sigterm, true);
            atomic_store(&sc->r->draining, true);
        } else {
            mr_log_info("%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
            atomic_store(&sc->r->stopping, true);
        }
        relay_server_wake(sc->r);
    }
    return NULL;
}

static void admin_routes(struct evhttp *http, void *ud)
{
    relay_drain_admin_routes(http, ud);
}

/*
 * Ready: NATS connected, the region's stream there, not draining, the
 * WebSocket listener bound, and the service loop alive (its housekeeping
 * ran within RELAY_LOOP_STALL_MS). The admin thread runs this, so it reads
 * only atomics.
 */
static bool relay_ready(void *ud, mr_buf *detail)
{
    relay *r = ud;
    bool nats = relay_nats_healthy(r->nats); /* connected, and the server answers (relay_nats.h) */
    bool stream = relay_nats_stream_ready(r->nats);
    bool draining = atomic_load(&r->draining);
    bool listening = atomic_load(&r->listening);
    bool running = mr_now_us() - atomic_load(&r->loop_alive_us) < RELAY_LOOP_STALL_MS * 1000;
    mr_buf_putc(detail, '{');
    relay_nats_describe(r->nats, nats, detail);
    mr_buf_printf(detail, ",\"stream\":\"%s\",\"draining\":%s,\"listener\":\"%s\",\"loop\":\"%s\"}",
                  !r->cfg->jetstream ? "off"
                  : stream           ? "ready"
                                     : "missing",
                  draining ? "true" : "false", listening ? "bound" : "unbound",
                  running ? "running" : "stalled");
    return nats && stream && !draining && listening && running;
}

int main(int argc, char **argv)
{
    mr_alloc_use_for_jansson();
    enum { OPT_LOG_LEVEL = 1000, OPT_CHECK };
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"listen", required_argument, NULL, 'l'},
                                         {"admin-listen", required_argument, NULL, 'a'},
                                         {"nats", required_argument, NULL, 'n'},
                                         {"region", required_argument, NULL, 'r'},
                                         {"node-id", required_argument, NULL, 'i'},
                                         {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
                                         {"check", no_argument, NULL, OPT_CHECK},
                                         {"version", no_argument, NULL, 'V'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};

    relay_config cfg;
    relay_config_defaults(&cfg);
    mr_log_init("relay", MR_LOG_INFO);
    char err[600];
    bool check_only = false;
    const char *paths[16];
    size_t npaths = 0;
    const char *log_level_flag = NULL;

    /* The config file is applied first so that flags override it wherever they appear. */
    for (int i = 1; i < argc; i++) {
        const char *path = NULL;
        if ((strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-c") == 0) && i + 1 < argc)
            path = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            path = argv[i] + 9;
        if (path && relay_config_load(&cfg, path, err, sizeof err) != 0) {
            fprintf(stderr, "meridian-relay: %s\n", err);
            relay_config_free(&cfg); /* exit codes hold under LeakSanitizer too */
            return 2;
        }
        if (path && npaths < sizeof paths / sizeof paths[0])
            paths[npaths++] = path;
    }
    int c;
    while ((c = getopt_long(argc, argv, "c:l:a:n:r:i:Vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            break;
        case 'l':
            relay_config_set_str(&cfg.listen, optarg);
            break;
        case 'a':
            relay_config_set_str(&cfg.admin_listen, optarg);
            break;
        case 'n':
            relay_config_set_nats(&cfg, optarg);
            break;
        case 'r':
            relay_config_set_str(&cfg.region, optarg);
            break;
        case 'i':
            relay_config_set_str(&cfg.node_id, optarg);
            break;
        case OPT_LOG_LEVEL:
            relay_config_set_str(&cfg.log_level, optarg);
            log_level_flag = optarg;
            break;
        case OPT_CHECK:
            check_only = true;
            break;
        case 'V':
            printf("meridian-relay %s\n", MERIDIAN_VERSION);
            relay_config_free(&cfg);
            return 0;
        case 'h':
            relay_config_free(&cfg);
            return fputs(usage, stdout) < 0 || fflush(stdout) != 0 ? 1 : 0;
        default:
            (void)fputs(usage, stderr); /* the exit status says it anyway */
            relay_config_free(&cfg);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "meridian-relay: unexpected argument \"%s\"\n%s", argv[optind], usage);
        relay_config_free(&cfg);
        return 2;
    }
    if (relay_config_validate(&cfg, err, sizeof err) != 0) {
        fprintf(stderr, "meridian-relay: %s\n", err);
        relay_config_free(&cfg);
        return 2;
    }
    if (check_only) {
        mr_check chk = {.prog = "meridian-relay"};
        relay_config_check(&cfg, &chk);
        relay_config_free(&cfg);
        if (chk.errors) {
            fprintf(stderr, "meridian-relay: %d problem(s) found\n", chk.errors);
            return 2;
        }
        printf("meridian-relay: configuration ok\n");
        return 0;
    }
    mr_log_set_level((mr_log_level)mr_log_level_parse(cfg.log_level));
    mr_log_set_format((mr_log_format)mr_log_format_parse(cfg.log_format));

    /* Block signals before any thread starts so that they all inherit the mask. */
    signal_ctx sc;
    sigemptyset(&sc.set);
    sigaddset(&sc.set, SIGTERM);
    sigaddset(&sc.set, SIGINT);
    sigaddset(&sc.set, SIGUSR2);
    sigaddset(&sc.set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sc.set, NULL);
    (void)signal(SIGPIPE, SIG_IGN); /* cannot fail for SIGPIPE */

    relay r;
    memset(&r, 0, sizeof r);
    r.cfg = &cfg;
    relay_rooms_init(&r.rooms, (uint32_t)cfg.limits.dedup_window);
    mr_map_init(&r.ip_counts);
    mr_map_init(&r.conns_by_id);
    mr_map_init(&r.resumes);
    r.jwt = (mr_jwt_params){.keys = cfg.keys,
                            .nkeys = cfg.nkeys,
                            .issuer = cfg.issuer,
                            .audience = cfg.audience,
                            .leeway_s = cfg.leeway_s};
    relay_reload_init(&r, paths, npaths, log_level_flag);
    relay_metrics_register();
    relay_deliver_init(&r);
    relay_presence_init(&r);
    relay_repair_init(&r);
    relay_resume_init(&r);
    relay_signal_init(&r);
    relay_drain_init(&r);

    int rc = 1;
    mr_admin_thread *admin = NULL;
    pthread_t sig_thread;
    bool sig_thread_started = false;
    if (relay_server_start(&r, err, sizeof err) != 0) {
        mr_log_error("%s", err);
        goto out;
    }
    admin = mr_admin_thread_start(cfg.admin_listen, relay_ready, &r, admin_routes, err, sizeof err);
    if (!admin) {
        mr_log_error("%s", err);
        goto out;
    }
    sc.r = &r;
    if (pthread_create(&sig_thread, NULL, signal_main, &sc) != 0) {
        mr_log_error("cannot start the signal thread");
        goto out;
    }
    sig_thread_started = true;

    mr_log_info("meridian-relay %s: region %s, node %s, WebSocket on %s (port %d)%s, admin on %s",
                MERIDIAN_VERSION, cfg.region, cfg.node_id, cfg.listen, relay_server_port(&r),
                cfg.tls_cert ? " with TLS" : "", cfg.admin_listen);
    relay_server_run(&r);
    mr_log_info("stopped: %zu sessions open at exit", r.conn_count);
    rc = 0;
out:
    /* No other thread may wake the lws loop once it is being destroyed. */
    if (sig_thread_started) {
        pthread_kill(sig_thread, SIGUSR2);
        pthread_join(sig_thread, NULL);
    }
    mr_admin_thread_stop(admin);
    relay_server_stop(&r);
    relay_publish_free_all(&r);
    relay_resume_free_all(&r);
    mr_map_free(&r.conns_by_id, NULL);
    relay_presence_free(&r);
    relay_drain_free(&r);
    mr_buf_free(&r.write_batch);
    relay_rooms_free(&r.rooms);
    mr_map_free(&r.ip_counts, NULL);
    relay_reload_free(&r);
    relay_config_free(&cfg);
    return rc;
}
