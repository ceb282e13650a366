/*
 * meridian-healthcheck: one agent per region. Reads its configuration and
 * the regions file, then runs the agent (hc_agent.c) on a libevent loop
 * until SIGTERM or SIGINT, with its HTTP routes (hc_status.c) attached.
 */
#include "hc_agent.h"
#include "hc_status.h"
#include "mr_alloc.h"
#include "mr_log.h"

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
    event_base_loopexit(arg, NULL);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: meridian-healthcheck --config FILE [--listen HOST:PORT] [--check]\n"
               "  --check    read the configuration and the regions file, report, exit\n"
               "  --version  print the version and exit\n"
               "  see docs/healthcheck.md for the configuration file\n");
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
    signal(SIGPIPE, SIG_IGN);
    /* No reload yet: a hangup from a closing terminal must not kill the agent. */
    signal(SIGHUP, SIG_IGN);
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
        printf("%s: OK\n", config);
        hc_agent_free(a);
        event_base_free(base);
        return 0;
    }
    if (hc_agent_start(a, err, sizeof err) != 0) {
        mr_log_error("%s", err);
        hc_agent_free(a);
        event_base_free(base);
        return 1;
    }
    hc_status_attach(hc_agent_http(a), a);
    struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, base);
    struct event *sigint = evsignal_new(base, SIGINT, on_signal, base);
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    event_base_dispatch(base);
    event_free(sigterm);
    event_free(sigint);
    hc_agent_stop(a);
    hc_agent_free(a);
    event_base_free(base);
    return 0;
}
