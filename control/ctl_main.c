/*
 * meridian-control: the control plane daemon.
 *
 * Threads: the main thread runs the libevent loop (HTTP API, admin
 * endpoints, signals); one ingest thread per region stream persists
 * messages (ctl_ingest.c); a pool of history workers, each with its own
 * PostgreSQL session, answers history requests from NATS and HTTP; a small
 * pool publishes API messages and waits for their PubAcks. The loop itself
 * never blocks on PostgreSQL or NATS.
 */
#include "ctl_config.h"
#include "ctl_db.h"
#include "ctl_history.h"
#include "ctl_http.h"
#include "ctl_ingest.h"
#include "ctl_pool.h"
#include "ctl_presence.h"
#include "ctl_webhook.h"
#include "mr_admin.h"
#include "mr_alloc.h"
#include "mr_check.h"
#include "mr_config.h"
#include "mr_log.h"
#include "mr_metrics.h"
#include "mr_nats_opts.h"
#include "mr_reload.h"
#include "mr_sdnotify.h"

#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <getopt.h>
#include <libpq-fe.h>
#include <nats/nats.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static mr_metric m_schema =
    MR_GAUGE("meridian_control_schema_version", "Database schema version applied");
static mr_metric m_nats_up =
    MR_GAUGE("meridian_control_nats_connected", "1 while connected to NATS");
static mr_metric m_ready = MR_GAUGE("meridian_control_ready", "1 while /readyz reports ready");
static mr_metric m_pg_up = MR_GAUGE("meridian_control_postgres_connected",
                                    "1 while every ingest lane has a PostgreSQL session");

/* The command line's settings, applied over the file at start and on every reload. */
typedef struct ctl_flags {
    const char *config, *nats, *pg, *http, *admin, *region, *regions, *log;
} ctl_flags;

typedef struct ctl_state {
    ctl_config cfg;
    ctl_flags flags;
    json_t *running_json; /* the config file at start: what a reload compares edits with */
    struct ctl_http *http;
    bool ready_notified; /* READY=1 sent to systemd */
    natsConnection *nc;
    mr_nats_watch *watch; /* why NATS is not up, for the logs and /readyz */
    ctl_ingest **ingest;
    size_t ningest;
} ctl_state;

static void usage(FILE *f)
{
    fprintf(f, "Usage: meridian-control [options]\n"
               "       meridian-control migrate [--check] [--config FILE] [--postgres CONNINFO]\n"
               "Persists region streams to PostgreSQL, serves history and the publish API.\n"
               "`migrate` applies the schema migrations this binary carries and exits;\n"
               "with --check it only tells whether any is pending (exit 0: none, 3: pending,\n"
               "1: cannot tell, or the database is newer than this binary).\n\n"
               "  --config FILE        JSON configuration (see docs/control.md)\n"
               "  --nats URLS          NATS server URLs, comma-separated\n"
               "  --postgres CONNINFO  libpq connection string or URI (multi-host allowed)\n"
               "  --http-listen H:P    HTTP API address\n"
               "  --admin-listen H:P   /healthz, /readyz and /metrics address\n"
               "  --region NAME        own region (API publishes go to its stream)\n"
               "  --regions LIST       regions whose streams to persist, comma-separated\n"
               "  --log-level LEVEL    error, warn, info or debug\n"
               "  --check              validate the configuration and exit (with migrate:\n"
               "                       report pending migrations, change nothing)\n"
               "  --version            print the version and exit\n"
               "  --help               this text\n\n"
               "Signals: SIGTERM or SIGINT stop. SIGHUP reloads the API keys (api_keys,\n"
               "api_keys_file), the TLS certificate and key and the log level; other changed\n"
               "keys are logged as needing a restart, and a file that is not valid changes\n"
               "nothing.\n\n"
               "Exit status: 0 after a clean stop (or --check finding no error), 1 when the\n"
               "daemon could not start (a port in use, a database newer than this binary),\n"
               "2 for a configuration or usage error (with --check: anything a start would\n"
               "trip over). `migrate --check` exits 3 when migrations are pending.\n");
}

static bool ready_cb(void *ud, mr_buf *detail)
{
    ctl_state *st = ud;
    bool nats_ok = natsConnection_Status(st->nc) == NATS_CONN_STATUS_CONNECTED;
    bool ok = nats_ok && ctl_db_schema_version() > 0;
    bool pg_ok = true;
    mr_buf_putc(detail, '{');
    mr_nats_watch_describe(st->watch, nats_ok, detail);
    mr_buf_printf(detail, ",\"schema_version\":%d,\"regions\":{", ctl_db_schema_version());
    for (size_t i = 0; i < st->ningest; i++) {
        if (i)
            mr_buf_putc(detail, ',');
        ctl_ingest_describe(st->ingest[i], detail);
        ok = ok && ctl_ingest_ready(st->ingest[i]);
        pg_ok = pg_ok && ctl_ingest_db_connected(st->ingest[i]);
    }
    mr_buf_puts(detail, "}}");
    mr_metric_set(&m_nats_up, nats_ok);
    mr_metric_set(&m_schema, ctl_db_schema_version());
    mr_metric_set(&m_ready, ok);
    mr_metric_set(&m_pg_up, pg_ok);
    return ok;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    mr_log_info("signal %d: shutting down", (int)sig);
    mr_sdnotify_stopping();
    event_base_loopexit(arg, NULL);
}

static void on_nats_disconnected(natsConnection *nc, void *closure)
{
    mr_metric_set(&m_nats_up, 0);
    /* Closing the connection at shutdown also lands here: not worth a warning. */
    if (natsConnection_IsClosed(nc))
        return;
    mr_log_warn("NATS disconnected; reconnecting");
}

static void on_nats_reconnected(natsConnection *nc, void *closure)
{
    mr_metric_set(&m_nats_up, 1);
    mr_log_info("NATS reconnected");
}

/*
 * The control plane does nothing useful without NATS, so it waits for a
 * server that accepts it before connecting (as it always has: the connect
 * below retries synchronously). Probing first means a refused credential
 * or certificate is logged as what it is and retried, and the real
 * connection never meets libnats 3.4's habit of giving up for good on a
 * first attempt that failed in the handshake (see mr_nats_opts.c).
 */
static int nats_connect(ctl_state *st, char *err, size_t errlen)
{
    mr_nats_wait_reachable(&st->cfg.nats, NULL);
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK && mr_nats_conf_apply(&st->cfg.nats, o, err, errlen) != 0) {
        natsOptions_Destroy(o);
        return -1;
    }
    if (s == NATS_OK)
        s = natsOptions_SetName(o, "meridian-control");
    /* Never give up: the stream keeps the backlog while NATS is away. */
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(o, 250);
    if (s == NATS_OK)
        s = natsOptions_SetRetryOnFailedConnect(o, true, NULL, NULL);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectBufSize(o, 64 * 1024 * 1024);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(o, on_nats_disconnected, NULL);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(o, on_nats_reconnected, NULL);
    if (s == NATS_OK) {
        s = natsConnection_Connect(&st->nc, o);
        if (s == NATS_NOT_YET_CONNECTED) {
            mr_log_warn("NATS not reachable yet; connecting in the background");
            s = NATS_OK;
        }
    }
    natsOptions_Destroy(o);
    if (s != NATS_OK) {
        snprintf(err, errlen, "NATS: %s", natsStatus_GetText(s));
        return -1;
    }
    st->watch = mr_nats_watch_start(&st->cfg.nats, st->nc);
    return 0;
}

/* `migrate --check` exits with this when migrations are pending. */
#define EXIT_MIGRATIONS_PENDING 3

/*
 * meridian-control migrate [--check]: the schema step of an upgrade, run
 * once per database before the new binaries start (auto_migrate off), or
 * to see where a database stands. Needs only `postgres` from the config.
 */
static int run_migrate(const ctl_config *cfg, bool check)
{
    if (!cfg->postgres || !cfg->postgres[0]) {
        fprintf(stderr, "meridian-control migrate: postgres: a conninfo is required "
                        "(--postgres or the config's \"postgres\")\n");
        return 2;
    }
    char err[1536];
    PGconn *c = ctl_db_connect(cfg->postgres, "meridian-control/migrate", 10, err, sizeof err);
    if (!c) {
        fprintf(stderr, "meridian-control migrate: PostgreSQL: %s\n", err);
        return 1;
    }
    ctl_db_schema st;
    int rc = 1;
    if (ctl_db_inspect(c, &st, err, sizeof err) != 0) {
        fprintf(stderr, "meridian-control migrate: %s\n", err);
        goto out;
    }
    if (st.version > st.latest) {
        ctl_db_newer_message(&st, err, sizeof err);
        fprintf(stderr, "meridian-control migrate: %s\n", err);
        goto out;
    }
    if (check) {
        if (st.pending == 0) {
            printf("schema up to date: version %d\n", st.version);
            rc = 0;
        } else {
            printf("migrations pending: the schema is at version %d, this meridian-control %s "
                   "needs %d (%d pending, first %s); run meridian-control migrate\n",
                   st.version, MERIDIAN_VERSION, st.latest, st.pending, st.next);
            rc = EXIT_MIGRATIONS_PENDING;
        }
        goto out;
    }
    int applied = 0;
    int v = ctl_db_migrate(c, &applied, err, sizeof err);
    if (v < 0) {
        fprintf(stderr, "meridian-control migrate: %s\n", err);
        goto out;
    }
    printf("schema at version %d (%d migration(s) applied)\n", v, applied);
    rc = 0;
out:
    PQfinish(c);
    return rc;
}

/*
 * At start, one look at the schema (with a short connect timeout, so an
 * absent PostgreSQL does not delay the start: ingest and history keep
 * trying on their own). A newer schema is fatal: no later retry can fix
 * it. Returns 0 to go on, -1 to exit.
 */
static int startup_schema_check(const ctl_config *cfg)
{
    char err[1536];
    PGconn *c = ctl_db_connect(cfg->postgres, "meridian-control/start", 5, err, sizeof err);
    if (!c) {
        mr_log_warn("PostgreSQL not reachable at start (%s); ingest and history keep trying", err);
        return 0;
    }
    ctl_db_schema st;
    int rc = 0;
    if (ctl_db_inspect(c, &st, err, sizeof err) != 0) {
        mr_log_warn("schema check at start: %s", err);
    } else if (st.version > st.latest) {
        ctl_db_newer_message(&st, err, sizeof err);
        mr_log_error("%s", err);
        rc = -1;
    } else if (st.pending > 0 && !cfg->auto_migrate) {
        mr_log_warn("the database schema is at version %d and this binary needs %d; auto_migrate "
                    "is off: waiting for `meridian-control migrate` (not ready until then)",
                    st.version, st.latest);
    }
    PQfinish(c);
    return rc;
}

/*
 * The file (when given) over the defaults, then the flags over it, then
 * the merged checks: the same steps at start and on SIGHUP. Returns 0, or
 * -1 with `err` naming the key.
 */
static int build_config(ctl_config *cfg, const ctl_flags *f, char *err, size_t errlen)
{
    if (f->config && ctl_config_load(cfg, f->config, err, errlen) != 0)
        return -1;
    if (f->nats)
        mr_nats_conf_set_urls(&cfg->nats, f->nats);
    if (f->pg)
        ctl_config_set(&cfg->postgres, f->pg);
    if (f->http)
        ctl_config_set(&cfg->http_listen, f->http);
    if (f->admin)
        ctl_config_set(&cfg->admin_listen, f->admin);
    if (f->region)
        ctl_config_set(&cfg->region, f->region);
    if (f->regions)
        ctl_config_set_list(&cfg->regions, &cfg->nregions, f->regions);
    if (f->log)
        ctl_config_set(&cfg->log_level, f->log);
    if (mr_log_level_parse(cfg->log_level) < 0) {
        snprintf(err, errlen, "log_level: \"%s\" is not error, warn, info or debug",
                 cfg->log_level);
        return -1;
    }
    if (mr_log_format_parse(cfg->log_format) < 0) {
        snprintf(err, errlen, "log_format: \"%s\" is not text or json", cfg->log_format);
        return -1;
    }
    return 0;
}

/* What SIGHUP applies; any other changed key waits for a restart. */
static const char *const reloadable[] = {"api_keys", "api_keys_file", "tls.cert",
                                         "tls.key",  "log_level",     NULL};

/*
 * SIGHUP, on the loop thread (which alone reads the API keys and the TLS
 * context): read the file again into a new configuration, prove it whole,
 * then apply the reloadable part. Ingest and history keep running.
 */
static void on_reload(evutil_socket_t sig, short what, void *arg)
{
    ctl_state *st = arg;
    mr_sdnotify_reloading();
    mr_log_info("SIGHUP: reloading %s", st->flags.config ? st->flags.config : "(no file)");
    ctl_config next;
    ctl_config_init(&next);
    char err[1200];
    if (build_config(&next, &st->flags, err, sizeof err) != 0 ||
        ctl_config_finish(&next, err, sizeof err) != 0 ||
        ctl_http_reload(st->http, &next, err, sizeof err) != 0) {
        mr_log_error("reload: refused: %s; the running configuration stays", err);
        ctl_config_free(&next);
        mr_sdnotify_ready(NULL);
        return;
    }
    json_t *json = st->flags.config ? mr_reload_read_json(st->flags.config) : NULL;
    int refused = mr_reload_refuse_changes(st->running_json, json, reloadable);
    json_decref(json);
    ctl_config *cur = &st->cfg;
    MR_SWAP(cur->api_keys, next.api_keys);
    MR_SWAP(cur->napi_keys, next.napi_keys);
    MR_SWAP(cur->api_keys_file, next.api_keys_file);
    if (cur->tls_cert && next.tls_cert) {
        MR_SWAP(cur->tls_cert, next.tls_cert);
        MR_SWAP(cur->tls_key, next.tls_key);
    } else if (!cur->tls_cert != !next.tls_cert) {
        mr_log_warn("reload: tls changed between TLS and plain HTTP but needs a restart; the "
                    "running value stays");
    }
    MR_SWAP(cur->log_level, next.log_level);
    mr_log_set_level((mr_log_level)mr_log_level_parse(cur->log_level));
    ctl_config_free(&next);
    mr_log_info("reload: applied: %zu API key(s)%s, log level %s%s", cur->napi_keys,
                cur->tls_cert ? ", certificate from the files" : "", cur->log_level,
                refused ? "; see above for keys that need a restart" : "");
    mr_sdnotify_ready(NULL);
}

/* Every LIFECYCLE_TICK_MS: READY=1 once ready (NATS up, schema there), the watchdog ping. */
#define LIFECYCLE_TICK_MS 100
static void on_lifecycle_tick(evutil_socket_t fd, short what, void *arg)
{
    ctl_state *st = arg;
    mr_sdnotify_watchdog_feed();
    if (st->ready_notified)
        return;
    mr_buf scratch = MR_BUF_INIT;
    bool ready = ready_cb(st, &scratch);
    mr_buf_free(&scratch);
    if (ready) {
        st->ready_notified = true;
        mr_sdnotify_ready(NULL);
        mr_log_info("ready");
    }
}

/*
 * --check beyond the configuration's syntax: addresses that bind, TLS files
 * that belong together, a conninfo libpq understands, history kept at least
 * as long as the streams keep messages.
 */
static void check_offline(const ctl_config *cfg, mr_check *chk)
{
    mr_check_bindable(chk, "http_listen", cfg->http_listen);
    mr_check_bindable(chk, "admin_listen", cfg->admin_listen);
    if (cfg->tls_cert)
        mr_check_tls_pair(chk, "tls", cfg->tls_cert, cfg->tls_key);
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(cfg->postgres, &perr);
    if (!opts) {
        /* libpq's message ends with a newline; keep the finding on one line. */
        size_t n = perr ? strcspn(perr, "\n") : 0;
        mr_check_error(chk, "postgres", "%.*s", (int)n,
                       perr ? perr : "not a conninfo libpq parses");
    }
    PQconninfoFree(opts);
    PQfreemem(perr);
    int64_t kept_s = (int64_t)cfg->retention_days * 86400;
    if (cfg->stream.max_age_s > 0 && kept_s < cfg->stream.max_age_s)
        mr_check_error(chk, "retention_days",
                       "%d days is shorter than stream.max_age_s (%lld s): a client resuming from "
                       "the stream's oldest message would find history gone",
                       cfg->retention_days, (long long)cfg->stream.max_age_s);
    else if (cfg->stream.max_age_s < 0)
        mr_check_note(chk, "retention_days",
                      "stream.max_age_s is not set here: the stream's own max_age (on the NATS "
                      "server) is compared at start, not offline");
    mr_check_note(chk, "nats",
                  "not checked offline: whether NATS and PostgreSQL are reachable and accept the "
                  "credentials, and the schema version (meridian-control migrate --check)");
}

enum {
    OPT_CONFIG = 256,
    OPT_NATS,
    OPT_POSTGRES,
    OPT_HTTP,
    OPT_ADMIN,
    OPT_REGION,
    OPT_REGIONS,
    OPT_LOG,
    OPT_CHECK,
    OPT_VERSION,
    OPT_HELP
};

int main(int argc, char **argv)
{
    mr_alloc_use_for_jansson();
    static const struct option opts[] = {{"config", required_argument, NULL, OPT_CONFIG},
                                         {"nats", required_argument, NULL, OPT_NATS},
                                         {"postgres", required_argument, NULL, OPT_POSTGRES},
                                         {"http-listen", required_argument, NULL, OPT_HTTP},
                                         {"admin-listen", required_argument, NULL, OPT_ADMIN},
                                         {"region", required_argument, NULL, OPT_REGION},
                                         {"regions", required_argument, NULL, OPT_REGIONS},
                                         {"log-level", required_argument, NULL, OPT_LOG},
                                         {"check", no_argument, NULL, OPT_CHECK},
                                         {"version", no_argument, NULL, OPT_VERSION},
                                         {"help", no_argument, NULL, OPT_HELP},
                                         {NULL, 0, NULL, 0}};
    static ctl_state st;
    ctl_config *cfg = &st.cfg;
    ctl_config_init(cfg);
    ctl_flags *f = &st.flags;
    bool check = false;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case OPT_CONFIG:
            f->config = optarg;
            break;
        case OPT_NATS:
            f->nats = optarg;
            break;
        case OPT_POSTGRES:
            f->pg = optarg;
            break;
        case OPT_HTTP:
            f->http = optarg;
            break;
        case OPT_ADMIN:
            f->admin = optarg;
            break;
        case OPT_REGION:
            f->region = optarg;
            break;
        case OPT_REGIONS:
            f->regions = optarg;
            break;
        case OPT_LOG:
            f->log = optarg;
            break;
        case OPT_CHECK:
            check = true;
            break;
        case OPT_VERSION:
            printf("meridian-control %s\n", MERIDIAN_VERSION);
            return 0;
        case OPT_HELP:
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    bool migrate = optind < argc && strcmp(argv[optind], "migrate") == 0;
    if (migrate)
        optind++;
    if (optind < argc) {
        fprintf(stderr, "meridian-control: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    char err[640];
    if (build_config(cfg, f, err, sizeof err) != 0) {
        fprintf(stderr, "meridian-control: %s\n", err);
        return 2;
    }
    int level = mr_log_level_parse(cfg->log_level);
    int format = mr_log_format_parse(cfg->log_format);
    if (migrate) {
        mr_log_init("control", (mr_log_level)level);
        mr_log_set_format((mr_log_format)format);
        int rc = run_migrate(cfg, check);
        ctl_config_free(cfg);
        return rc;
    }
    if (ctl_config_finish(cfg, err, sizeof err) != 0) {
        fprintf(stderr, "meridian-control: %s%s%s\n", f->config ? f->config : "",
                f->config ? ": " : "", err);
        return 2;
    }
    if (check) {
        mr_check chk = {.prog = "meridian-control"};
        check_offline(cfg, &chk);
        ctl_config_free(cfg);
        if (chk.errors) {
            fprintf(stderr, "meridian-control: %d problem(s) found\n", chk.errors);
            return 2;
        }
        printf("configuration OK\n");
        return 0;
    }
    st.running_json = f->config ? mr_reload_read_json(f->config) : NULL;
    mr_log_init("control", (mr_log_level)level);
    mr_log_set_format((mr_log_format)format);
    signal(SIGPIPE, SIG_IGN);
    /* Until the reload handler is installed (the loop starts after NATS), a hangup must not
     * kill the daemon: systemd may send one while a long migration runs. */
    signal(SIGHUP, SIG_IGN);
    ctl_db_set_auto_migrate(cfg->auto_migrate);
    if (startup_schema_check(cfg) != 0) {
        ctl_config_free(cfg);
        return 1;
    }

    /* libevent must know about threads before the base exists: workers post replies to it. */
    evthread_use_pthreads();
    struct event_base *base = event_base_new();
    mr_metric_register(&m_schema);
    mr_metric_register(&m_nats_up);
    mr_metric_register(&m_ready);
    mr_metric_register(&m_pg_up);
    ctl_ingest_metrics_register();
    ctl_history_metrics_register();
    ctl_http_metrics_register();
    ctl_webhook_metrics_register();
    ctl_presence_metrics_register();

    int rc = 1;
    ctl_pool *db_pool = NULL, *pub_pool = NULL;
    ctl_history_service *hist = NULL;
    ctl_http *http = NULL;
    ctl_webhook *webhook = NULL;
    ctl_presence *presence = NULL;
    struct evhttp *admin = NULL;
    if (nats_connect(&st, err, sizeof err) != 0) {
        mr_log_error("%s", err);
        goto out;
    }
    st.ningest = cfg->nregions;
    st.ingest = mr_calloc(st.ningest, sizeof *st.ingest);
    for (size_t i = 0; i < st.ningest; i++)
        st.ingest[i] = ctl_ingest_start(cfg, st.nc, cfg->regions[i], i == 0);
    ctl_ingest_lag_metrics_register(st.ingest, st.ningest);
    webhook = ctl_webhook_start(cfg);
    presence = ctl_presence_start(cfg, st.nc);
    db_pool = ctl_pool_start(cfg->history_workers, cfg->postgres, "history", 10000);
    pub_pool = ctl_pool_start(2, NULL, "publish", 10000);
    hist = ctl_history_service_start(st.nc, db_pool, err, sizeof err);
    if (!hist) {
        mr_log_error("%s", err);
        goto out;
    }
    http = ctl_http_start(base, cfg, db_pool, pub_pool, st.nc, err, sizeof err);
    if (!http) {
        mr_log_error("%s", err);
        goto out;
    }
    st.http = http;
    admin = evhttp_new(base);
    mr_admin_attach(admin, ready_cb, &st);
    char host[256];
    int port;
    mr_parse_hostport(cfg->admin_listen, host, sizeof host, &port);
    if (!evhttp_bind_socket_with_handle(admin, host[0] ? host : "0.0.0.0", (uint16_t)port)) {
        mr_log_error("admin_listen %s: cannot bind", cfg->admin_listen);
        goto out;
    }
    struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, base);
    struct event *sigint = evsignal_new(base, SIGINT, on_signal, base);
    struct event *sighup = evsignal_new(base, SIGHUP, on_reload, &st);
    struct event *tick = event_new(base, -1, EV_PERSIST, on_lifecycle_tick, &st);
    struct timeval tick_tv = {0, LIFECYCLE_TICK_MS * 1000};
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    event_add(sighup, NULL);
    event_add(tick, &tick_tv);
    mr_log_info("meridian-control %s: region %s, %zu region stream(s), admin on %s",
                MERIDIAN_VERSION, cfg->region, cfg->nregions, cfg->admin_listen);
    event_base_dispatch(base);
    event_free(sigterm);
    event_free(sigint);
    event_free(sighup);
    event_free(tick);
    rc = 0;
out:
    /* Order matters: producers of work stop before the pools, the pools before HTTP. */
    for (size_t i = 0; i < st.ningest; i++)
        ctl_ingest_stop(st.ingest[i]);
    free(st.ingest);
    ctl_presence_stop(presence);
    ctl_webhook_stop(webhook);
    ctl_history_service_stop(hist);
    ctl_pool_stop(db_pool);
    ctl_pool_stop(pub_pool);
    ctl_http_stop(http);
    if (admin)
        evhttp_free(admin);
    /* Run the completions the pools posted, which free their jobs. */
    event_base_loop(base, EVLOOP_NONBLOCK);
    mr_nats_watch_stop(st.watch);
    if (st.nc) {
        natsConnection_FlushTimeout(st.nc, 2000);
        natsConnection_Destroy(st.nc);
    }
    event_base_free(base);
    json_decref(st.running_json);
    ctl_config_free(cfg);
    mr_nats_lib_close(5000);
    mr_log_info("stopped");
    return rc;
}
