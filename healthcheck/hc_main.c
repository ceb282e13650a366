/*
 * meridian-healthcheck: one agent per region. Reads its configuration and
 * the regions file, then runs the agent (hc_agent.c) on a libevent loop
 * until SIGTERM or SIGINT, with its HTTP routes (hc_status.c) attached.
 */
#include "hc_agent.h"
#include "hc_status.h"
#include "mr_alloc.h"
#include "mr_check.h"
#include "mr_log.h"
#include "mr_reload.h"
#include "mr_sdnotify.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    mr_log_info("signal %d: stopping", (int)sig);
    mr_sdnotify_stopping();
    event_base_loopexit(arg, NULL);
}

/* The running agent and what a reload needs to read its files again. */
typedef struct hc_life {
    hc_agent *a;
    struct event_base *base;
    const char *config, *listen;
    json_t *running; /* the config file at start: what a reload compares edits with */
    bool ready_notified;
} hc_life;

/* What SIGHUP applies; any other changed key waits for a restart. */
static const char *const reloadable[] = {"api_key", "drain.relay_api_key", "probe.secret",
                                         "log_level", NULL};

/*
 * SIGHUP: read the configuration and the regions file again into a new
 * agent that is never started, so the whole file is proven the way a start
 * would prove it; then take over the keys and the log level. Probing, the
 * lease and DNS state are untouched.
 */
static void on_reload(evutil_socket_t sig, short what, void *arg)
{
    hc_life *l = arg;
    mr_sdnotify_reloading();
    mr_log_info("SIGHUP: reloading %s", l->config);
    char err[1024];
    mr_log_level level = mr_log_get_level();
    mr_log_format format = mr_log_get_format();
    hc_agent *next = hc_agent_new(l->base, l->config, l->listen, err, sizeof err);
    mr_log_set_level(level);   /* the load applied the file's; only an accepted file changes it */
    mr_log_set_format(format); /* log_format needs a restart */
    if (!next) {
        mr_log_error("reload: refused: %s; the running configuration stays", err);
        mr_sdnotify_ready(NULL);
        return;
    }
    json_t *json = mr_reload_read_json(l->config);
    int refused = mr_reload_refuse_changes(l->running, json, reloadable);
    json_decref(json);
    hc_agent_take_reloadable(l->a, next);
    hc_agent_free(next);
    int new_level, new_format;
    hc_agent_log_settings(l->a, &new_level, &new_format);
    mr_log_set_level((mr_log_level)new_level);
    mr_log_info("reload: applied: API keys, probe secret and log level%s",
                refused ? "; see above for keys that need a restart" : "");
    mr_sdnotify_ready(NULL);
}

/* Every 100 ms: READY=1 once bound and connected, and the watchdog ping from this loop. */
static void on_lifecycle_tick(evutil_socket_t fd, short what, void *arg)
{
    hc_life *l = arg;
    mr_sdnotify_watchdog_feed();
    if (!l->ready_notified && hc_agent_ready(l->a)) {
        l->ready_notified = true;
        mr_sdnotify_ready(NULL);
    }
}

static void usage(FILE *f)
{
    fprintf(f, "usage: meridian-healthcheck --config FILE [--listen HOST:PORT] [--check]\n"
               "  --check    read the configuration and the regions file, check that the\n"
               "             listen address binds and the probe secret is long enough, exit\n"
               "  --version  print the version and exit\n"
               "  see docs/healthcheck.md for the configuration file\n\n"
               "Signals: SIGTERM or SIGINT stop. SIGHUP reloads api_key, drain.relay_api_key,\n"
               "probe.secret and log_level; other changed keys are logged as needing a\n"
               "restart, and a file that is not valid changes nothing.\n\n"
               "Exit status: 0 after a clean stop (or --check finding no error), 1 when the\n"
               "agent could not start (its port in use, NATS refusing it), 2 for a\n"
               "configuration or usage error (with --check: anything a start would trip over).\n");
}

int main(int argc, char **argv)
{
    mr_alloc_use_for_jansson();
    const char *config = NULL, *listen = NULL;
    bool check = false;
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"listen", required_argument, NULL, 'l'},
        {"check", no_argument, NULL, 'k'},        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "c:l:hV", opts, NULL)) != -1) {
        switch (ch) {
        case 'V':
            printf("meridian-healthcheck %s\n", MERIDIAN_VERSION);
            return 0;
        case 'c':
            config = optarg;
            break;
        case 'l':
            listen = optarg;
            break;
        case 'k':
            check = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!config) {
        usage(stderr);
        return 2;
    }
    mr_log_init("healthcheck", MR_LOG_INFO);
    /* signal() fails only for an invalid signal number. */
    (void)signal(SIGPIPE, SIG_IGN);
    /* Until the reload handler is installed, a hangup must not kill the agent. */
    (void)signal(SIGHUP, SIG_IGN);
    evthread_use_pthreads();
    struct event_base *base = event_base_new();
    char err[1024];
    hc_agent *a = hc_agent_new(base, config, listen, err, sizeof err);
    if (!a) {
        mr_log_error("%s", err);
        event_base_free(base);
        return 2;
    }
    if (check) {
        mr_check chk = {.prog = "meridian-healthcheck"};
        hc_agent_check(a, &chk);
        hc_agent_free(a);
        event_base_free(base);
        if (chk.errors) {
            fprintf(stderr, "meridian-healthcheck: %d problem(s) found\n", chk.errors);
            return 2;
        }
        printf("%s: OK\n", config);
        return 0;
    }
    if (hc_agent_start(a, err, sizeof err) != 0) {
        mr_log_error("%s", err);
        hc_agent_free(a);
        event_base_free(base);
        return 1;
    }
    hc_status_attach(hc_agent_http(a), a);
    hc_life life = {.a = a, .base = base, .config = config, .listen = listen};
    life.running = mr_reload_read_json(config);
    struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, base);
    struct event *sigint = evsignal_new(base, SIGINT, on_signal, base);
    struct event *sighup = evsignal_new(base, SIGHUP, on_reload, &life);
    struct event *tick = event_new(base, -1, EV_PERSIST, on_lifecycle_tick, &life);
    struct timeval tick_tv = {0, 100000};
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    event_add(sighup, NULL);
    event_add(tick, &tick_tv);
    event_base_dispatch(base);
    event_free(sigterm);
    event_free(sigint);
    event_free(sighup);
    event_free(tick);
    json_decref(life.running);
    hc_agent_stop(a);
    hc_agent_free(a);
    event_base_free(base);
    return 0;
}
