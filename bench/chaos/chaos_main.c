/*
 * meridian-chaos: the load and the counter of the chaos suite
 * (bench/chaos/run drives it; docs/benchmarks.md, "Chaos suite").
 *
 *   meridian-chaos run --url WS_URL... --secret-file F --pg CONNINFO --log FILE [options]
 *   meridian-chaos count [--json] [--strict] [--detail] LOG...
 */
#include "chaos_count.h"
#include "chaos_load.h"
#include "mr_alloc.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    chaos_opts d;
    chaos_opts_defaults(&d);
    fprintf(f,
            "usage: meridian-chaos run --url WS_URL [--url ...] --secret-file F --pg CONNINFO\n"
            "                          --log FILE [options]\n"
            "       meridian-chaos count [--json] [--strict] [--detail] LOG...\n"
            "\n"
            "run: publishers and subscribers against the relays; the events go to --log.\n"
            "  --phase NAME            phase name, part of the room names (%s)\n"
            "  --run-id ID             distinguishes runs on one database (%s)\n"
            "  --rooms N               rooms (%d)\n"
            "  --publishers P          publishers, one room each, homes round robin (%d)\n"
            "  --subscribers S         subscribers in every room, homes round robin (%d)\n"
            "  --rate R                publishes per second, all publishers together (%.0f)\n"
            "  --size B                padding bytes per message (%d)\n"
            "  --max-seconds S         stop publishing after S seconds at the latest (%.0f)\n"
            "  --settle S              then wait at most S seconds for acks, deliveries, history "
            "(%.0f)\n"
            "  --ack-timeout-ms MS     a publish without ack this long: try another relay (%d)\n"
            "  --connect-timeout-ms MS socket to welcome (%d)\n"
            "  --backoff-max-ms MS     reconnect backoff ceiling (%d)\n"
            "  --retry-delay-ms MS     resend after a retryable error (%d)\n"
            "  --unavailable-failover N  this many `unavailable` in a row: another relay (%d)\n"
            "  --ready-file FILE       created once every client has joined\n"
            "  -q                      no progress lines on stderr\n"
            "Signals: SIGUSR1 = the fault begins, SIGUSR2 = it is over, SIGTERM/SIGINT =\n"
            "stop publishing and settle (twice: end now).\n"
            "\n"
            "count: one markdown table row per log (--json: one JSON object per log;\n"
            "--detail: each defect found, one line each, on stderr).\n"
            "--strict exits 3 when a log shows a defect (anything but latency, reconnects,\n"
            "unacked publishes, unrecovered joins and repeated commits).\n",
            d.phase, d.run_id, d.rooms, d.publishers, d.subscribers, d.rate, d.size, d.max_seconds,
            d.settle_seconds, d.ack_timeout_ms, d.connect_timeout_ms, d.backoff_max_ms,
            d.retry_delay_ms, d.unavailable_failover);
}

static int cmd_count(int argc, char **argv)
{
    int json = 0, strict = 0, first = 1, dirty = 0, failed = 0, detail = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = 1;
            continue;
        }
        if (strcmp(argv[i], "--strict") == 0) {
            strict = 1;
            continue;
        }
        if (strcmp(argv[i], "--detail") == 0) {
            detail = 1;
            continue;
        }
        if (argv[i][0] == '-') {
            usage(stderr);
            return 2;
        }
        FILE *f = fopen(argv[i], "r");
        if (!f) {
            fprintf(stderr, "meridian-chaos: cannot read %s\n", argv[i]);
            failed = 1;
            continue;
        }
        chaos_counts c;
        char err[128];
        int r = chaos_count_file(f, &c, detail ? stderr : NULL, err, sizeof err);
        (void)fclose(f); /* opened to read only */
        if (r != 0) {
            fprintf(stderr, "meridian-chaos: %s: %s\n", argv[i], err);
            failed = 1;
            continue;
        }
        if (json) {
            chaos_count_print_json(stdout, &c);
        } else {
            if (first)
                chaos_count_print_header(stdout);
            chaos_count_print_row(stdout, &c);
        }
        first = 0;
        if (!chaos_count_clean(&c))
            dirty = 1;
    }
    if (first && !failed) {
        usage(stderr);
        return 2;
    }
    if (failed)
        return 1;
    return strict && dirty ? 3 : 0;
}

enum {
    O_URL = 256,
    O_SECRET,
    O_PG,
    O_LOG,
    O_PHASE,
    O_RUN,
    O_ROOMS,
    O_PUBS,
    O_SUBS,
    O_RATE,
    O_SIZE,
    O_MAX,
    O_SETTLE,
    O_ACKTO,
    O_CONNTO,
    O_BACKOFF,
    O_RETRY,
    O_UNAV,
    O_READY
};

static int num(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int cmd_run(int argc, char **argv)
{
    chaos_opts o;
    chaos_opts_defaults(&o);
    static const struct option lo[] = {{"url", required_argument, 0, O_URL},
                                       {"secret-file", required_argument, 0, O_SECRET},
                                       {"pg", required_argument, 0, O_PG},
                                       {"log", required_argument, 0, O_LOG},
                                       {"phase", required_argument, 0, O_PHASE},
                                       {"run-id", required_argument, 0, O_RUN},
                                       {"rooms", required_argument, 0, O_ROOMS},
                                       {"publishers", required_argument, 0, O_PUBS},
                                       {"subscribers", required_argument, 0, O_SUBS},
                                       {"rate", required_argument, 0, O_RATE},
                                       {"size", required_argument, 0, O_SIZE},
                                       {"max-seconds", required_argument, 0, O_MAX},
                                       {"settle", required_argument, 0, O_SETTLE},
                                       {"ack-timeout-ms", required_argument, 0, O_ACKTO},
                                       {"connect-timeout-ms", required_argument, 0, O_CONNTO},
                                       {"backoff-max-ms", required_argument, 0, O_BACKOFF},
                                       {"retry-delay-ms", required_argument, 0, O_RETRY},
                                       {"unavailable-failover", required_argument, 0, O_UNAV},
                                       {"ready-file", required_argument, 0, O_READY},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
    int ch;
    double v;
    while ((ch = getopt_long(argc, argv, "qh", lo, NULL)) != -1) {
        int bad = 0;
        switch (ch) {
        case O_URL:
            if (o.nurls == CHAOS_MAX_URLS)
                bad = 1;
            else
                o.urls[o.nurls++] = optarg;
            break;
        case O_SECRET:
            o.secret_file = optarg;
            break;
        case O_PG:
            o.pg = optarg;
            break;
        case O_LOG:
            o.log_path = optarg;
            break;
        case O_PHASE:
            o.phase = optarg;
            break;
        case O_RUN:
            o.run_id = optarg;
            break;
        case O_READY:
            o.ready_path = optarg;
            break;
        case O_ROOMS:
            bad = num(optarg, 1, 64, &v);
            o.rooms = (int)v;
            break;
        case O_PUBS:
            bad = num(optarg, 1, CHAOS_MAX_CLIENTS, &v);
            o.publishers = (int)v;
            break;
        case O_SUBS:
            bad = num(optarg, 1, 63, &v);
            o.subscribers = (int)v;
            break;
        case O_RATE:
            bad = num(optarg, 0.1, 10000, &v);
            o.rate = v;
            break;
        case O_SIZE:
            bad = num(optarg, 0, 4000, &v);
            o.size = (int)v;
            break;
        case O_MAX:
            bad = num(optarg, 1, 86400, &v);
            o.max_seconds = v;
            break;
        case O_SETTLE:
            bad = num(optarg, 1, 3600, &v);
            o.settle_seconds = v;
            break;
        case O_ACKTO:
            bad = num(optarg, 100, 600000, &v);
            o.ack_timeout_ms = (int)v;
            break;
        case O_CONNTO:
            bad = num(optarg, 100, 600000, &v);
            o.connect_timeout_ms = (int)v;
            break;
        case O_BACKOFF:
            bad = num(optarg, 500, 600000, &v);
            o.backoff_max_ms = (int)v;
            break;
        case O_RETRY:
            bad = num(optarg, 10, 600000, &v);
            o.retry_delay_ms = (int)v;
            break;
        case O_UNAV:
            bad = num(optarg, 1, 1000, &v);
            o.unavailable_failover = (int)v;
            break;
        case 'q':
            o.quiet = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "meridian-chaos: bad value for --%s: %s\n", lo[ch - O_URL].name,
                    optarg);
            return 2;
        }
    }
    if (optind < argc || o.nurls == 0 || !o.secret_file || !o.pg || !o.log_path) {
        fprintf(stderr, "meridian-chaos run: --url, --secret-file, --pg and --log are required\n");
        usage(stderr);
        return 2;
    }
    return chaos_load_run(&o);
}

int main(int argc, char **argv)
{
    mr_alloc_use_for_jansson();
    if (argc >= 2 && strcmp(argv[1], "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "count") == 0)
        return cmd_count(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    usage(stderr);
    return 2;
}
