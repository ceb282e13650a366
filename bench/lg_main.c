/*
 * meridian-loadgen: the parent process. It parses the options, maps the
 * shared statistics, forks the workers (one process cannot open more than
 * 20,000 files here, so 100,000 connections need at least six), steers them
 * through the phases (connect, run, stop, exit), shows progress once a
 * second, samples the servers' RSS and CPU from /proc, and prints the result
 * as a table and, when asked, as JSON.
 *
 * Every phase is bounded: connecting gives up after --connect-timeout, the
 * run lasts --warmup + --duration, draining at most --drain, and an alarm
 * kills everything if the whole run overstays its budget by 30 seconds.
 */
#include "lg_worker.h"

#include "mr_alloc.h"
#include "mr_log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Files one worker may hold: the per-process limit is 20,000 here. */
#define LG_CONNS_PER_WORKER 18000

static lg_opts O;
static lg_shared *SH;
static pid_t kids[LG_MAX_WORKERS];

static const char *const mode_names[] = {"connect", "fanout", "publish", "churn", "generic"};

static void usage(FILE *f)
{
    (void)fputs(
        "usage: meridian-loadgen MODE [options]\n"
        "\n"
        "modes:\n"
        "  connect   open N idle authenticated connections, hold them, report server RSS\n"
        "  fanout    N subscribers over M rooms, P publishers at --rate msgs/s in total;\n"
        "            end-to-end latency from the intended send time in each message\n"
        "  publish   P publishers; acknowledged publishes/s and publish-to-ack latency\n"
        "            (closed loop with --window outstanding, or open loop with --rate)\n"
        "  churn     --conns concurrent slots doing connect, hello, welcome, close\n"
        "  generic   any WebSocket pub/sub server: --url subscribe URL(s), --pub-url\n"
        "            ws:// or http:// (POST) publish URL(s), payload {\"lg_t\":..,\"p\":..};\n"
        "            {{room}} in a --url path, or in an http:// --pub-url path, is the\n"
        "            room (lg-<n>): subscriber g in room g % rooms, each POST to its room\n"
        "\n"
        "target:\n"
        "  --url URL            ws:// or wss:// relay (repeat to spread connections)\n"
        "  --pub-url URL        generic: ws(s):// or http(s):// publish target (repeat)\n"
        "  --secret S           HS256 secret for minting tokens (dev-secret)\n"
        "  --server-pid PID     sample this server's RSS and CPU (repeat)\n"
        "load:\n"
        "  -n, --conns N        connections / subscribers / churn slots (1000)\n"
        "  --rooms M            rooms (1; publish: by default each publisher its own)\n"
        "  --publishers P       publishing connections (1)\n"
        "  --users K            distinct user ids among subscribers; 0 = one per\n"
        "                       connection (default 1 in fanout, 0 otherwise)\n"
        "  --rate R             messages/s in total (1000); publish: 0 = closed loop;\n"
        "                       churn: cycles/s (0 = as fast as possible)\n"
        "  --window W           publish closed loop: outstanding per publisher (16)\n"
        "  --size B             payload bytes (100)\n"
        "  --join               connect/churn: also join a room\n"
        "  --signal             fanout: send ephemeral signals instead of publishes\n"
        "  --no-echo            publishers say \"echo\":false in hello: the relay does not\n"
        "                       send them their own messages (publish: only the acks)\n"
        "  --room-prefix S      room names are S-<n> (lg)\n"
        "  --sub-msg TEXT       generic: sent after connecting; {{room}} is replaced\n"
        "  --pub-template TEXT  generic: message body; {{payload}}, {{room}} replaced\n"
        "time (seconds):\n"
        "  --duration D (10)  --warmup W (2)  --drain D (2)  --hold H (connect: 3)\n"
        "  --connect-timeout T (60)\n"
        "processes and addresses:\n"
        "  --workers W          worker processes (default: one per 18,000 connections)\n"
        "  --connect-rate R     new connections/s, all workers (20000)\n"
        "  --inflight N         handshakes in flight per worker (64)\n"
        "  --src-base ADDR      first source address (127.100.0.1)\n"
        "  --src-count N        source addresses to rotate over (64; 0 = kernel's choice)\n"
        "output:\n"
        "  --json FILE          also write the result as JSON (- for stdout)\n"
        "  -q, --quiet          no progress lines\n"
        "  -h, --help\n",
        f);
}

static double now_s(void)
{
    return (double)lg_now_us() / 1e6;
}

static long read_rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1)
            break;
    (void)fclose(f); /* opened to read only */
    return kb;
}

/* utime + stime in seconds, from /proc/PID/stat. */
static double read_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    (void)fclose(f); /* opened to read only */
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long ut = 0, st = 0;
    /* Fields after the command: state is 3rd, utime 14th, stime 15th. */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static uint64_t sum_ctr(int c)
{
    uint64_t s = 0;
    for (int i = 0; i < O.workers; i++)
        s += __atomic_load_n(&SH->w[i].ctr[c], __ATOMIC_RELAXED);
    return s;
}

static void set_phase(int32_t ph)
{
    __atomic_store_n(&SH->phase, ph, __ATOMIC_RELEASE);
}

static void progress(const char *what, double t, uint64_t prev[LG_C_COUNT], double dt)
{
    uint64_t cur[LG_C_COUNT];
    for (int c = 0; c < LG_C_COUNT; c++)
        cur[c] = sum_ctr(c);
    if (!O.quiet && dt > 0)
        fprintf(stderr,
                "[%6.1fs] %-8s live %-7llu ready %-7llu failed %-5llu dropped %-5llu "
                "sent/s %-8.0f deliv/s %-9.0f acks/s %-8.0f cycles/s %-6.0f\n",
                t, what, (unsigned long long)cur[LG_C_LIVE], (unsigned long long)cur[LG_C_READY],
                (unsigned long long)cur[LG_C_FAILED], (unsigned long long)cur[LG_C_DROPPED],
                (double)(cur[LG_C_SENT] - prev[LG_C_SENT]) / dt,
                (double)(cur[LG_C_DELIV] - prev[LG_C_DELIV]) / dt,
                (double)(cur[LG_C_ACKS] - prev[LG_C_ACKS]) / dt,
                (double)(cur[LG_C_CYCLES] - prev[LG_C_CYCLES]) / dt);
    memcpy(prev, cur, sizeof cur);
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "meridian-loadgen: run overstayed its time budget; killing workers\n";
    if (write(2, msg, sizeof msg - 1) < 0) {
        /* Nothing more to do in a signal handler. */
    }
    for (int i = 0; i < O.workers; i++)
        if (kids[i] > 0)
            kill(kids[i], SIGKILL);
    _exit(3);
}

static int parse_addr(const char *s, uint32_t *out)
{
    struct in_addr a;
    if (inet_pton(AF_INET, s, &a) != 1)
        return -1;
    *out = ntohl(a.s_addr);
    return 0;
}

static json_t *hist_json(const lg_hist *h)
{
    return json_pack("{s:I, s:f, s:I, s:I, s:I, s:I, s:I, s:I}", "count", (json_int_t)h->count,
                     "mean_us", h->count ? (double)h->sum_us / (double)h->count : 0.0, "p50_us",
                     (json_int_t)lg_hist_quantile(h, 0.50), "p90_us",
                     (json_int_t)lg_hist_quantile(h, 0.90), "p99_us",
                     (json_int_t)lg_hist_quantile(h, 0.99), "p999_us",
                     (json_int_t)lg_hist_quantile(h, 0.999), "max_us", (json_int_t)h->max_us,
                     "min_us", (json_int_t)(h->count ? h->min_us : 0));
}

static void print_hist(const char *name, const lg_hist *h)
{
    if (h->count == 0) {
        printf("  %-26s (no samples)\n", name);
        return;
    }
    printf("  %-26s p50 %8.3f  p90 %8.3f  p99 %8.3f  p99.9 %8.3f  max %8.3f ms  (n=%llu)\n", name,
           lg_hist_quantile(h, 0.5) / 1e3, lg_hist_quantile(h, 0.9) / 1e3,
           lg_hist_quantile(h, 0.99) / 1e3, lg_hist_quantile(h, 0.999) / 1e3,
           (double)h->max_us / 1e3, (unsigned long long)h->count);
}

int main(int argc, char **argv)
{
    mr_alloc_use_for_jansson();
    mr_log_init("loadgen", MR_LOG_INFO);
    memset(&O, 0, sizeof O);
    O.mode = LG_MODE_FANOUT;
    O.secret = "dev-secret";
    O.conns = 1000;
    O.rooms = 0; /* not given: 1, or in publish mode a room of its own per publisher */
    O.publishers = 1;
    O.users = -1;
    O.rate = -1;
    O.window = 16;
    O.size = 100;
    O.duration = 10;
    O.warmup = 2;
    O.drain = 2;
    O.connect_timeout = 60;
    O.hold = 3;
    O.connect_rate = 20000;
    O.inflight = 64;
    O.src_count = 64;
    O.room_prefix = "lg";
    parse_addr("127.100.0.1", &O.src_base);

    enum {
        OPT_URL = 256,
        OPT_PUB_URL,
        OPT_SECRET,
        OPT_PID,
        OPT_ROOMS,
        OPT_PUBS,
        OPT_USERS,
        OPT_RATE,
        OPT_WINDOW,
        OPT_SIZE,
        OPT_JOIN,
        OPT_SIGNAL,
        OPT_NO_ECHO,
        OPT_PREFIX,
        OPT_SUBMSG,
        OPT_TMPL,
        OPT_DURATION,
        OPT_WARMUP,
        OPT_DRAIN,
        OPT_HOLD,
        OPT_CTIMEOUT,
        OPT_WORKERS,
        OPT_CRATE,
        OPT_INFLIGHT,
        OPT_SRCBASE,
        OPT_SRCCOUNT,
        OPT_JSON,
        OPT_MODE
    };
    static const struct option longopts[] = {
        {"url", required_argument, 0, OPT_URL},
        {"pub-url", required_argument, 0, OPT_PUB_URL},
        {"secret", required_argument, 0, OPT_SECRET},
        {"server-pid", required_argument, 0, OPT_PID},
        {"conns", required_argument, 0, 'n'},
        {"rooms", required_argument, 0, OPT_ROOMS},
        {"publishers", required_argument, 0, OPT_PUBS},
        {"users", required_argument, 0, OPT_USERS},
        {"rate", required_argument, 0, OPT_RATE},
        {"window", required_argument, 0, OPT_WINDOW},
        {"size", required_argument, 0, OPT_SIZE},
        {"join", no_argument, 0, OPT_JOIN},
        {"signal", no_argument, 0, OPT_SIGNAL},
        {"no-echo", no_argument, 0, OPT_NO_ECHO},
        {"room-prefix", required_argument, 0, OPT_PREFIX},
        {"sub-msg", required_argument, 0, OPT_SUBMSG},
        {"pub-template", required_argument, 0, OPT_TMPL},
        {"duration", required_argument, 0, OPT_DURATION},
        {"warmup", required_argument, 0, OPT_WARMUP},
        {"drain", required_argument, 0, OPT_DRAIN},
        {"hold", required_argument, 0, OPT_HOLD},
        {"connect-timeout", required_argument, 0, OPT_CTIMEOUT},
        {"workers", required_argument, 0, OPT_WORKERS},
        {"connect-rate", required_argument, 0, OPT_CRATE},
        {"inflight", required_argument, 0, OPT_INFLIGHT},
        {"src-base", required_argument, 0, OPT_SRCBASE},
        {"src-count", required_argument, 0, OPT_SRCCOUNT},
        {"json", required_argument, 0, OPT_JSON},
        {"mode", required_argument, 0, OPT_MODE},
        {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *mode = NULL;
    int ch;
    while ((ch = getopt_long(argc, argv, "n:qh", longopts, NULL)) != -1) {
        switch (ch) {
        case OPT_URL:
        case OPT_PUB_URL: {
            lg_url *arr = ch == OPT_URL ? O.urls : O.pub_urls;
            int *cnt = ch == OPT_URL ? &O.nurls : &O.npub_urls;
            if (*cnt >= LG_MAX_URLS || lg_url_parse(optarg, &arr[*cnt]) != 0) {
                fprintf(stderr, "meridian-loadgen: bad or too many URLs: %s\n", optarg);
                return 2;
            }
            (*cnt)++;
            break;
        }
        case OPT_SECRET:
            O.secret = optarg;
            break;
        case OPT_PID:
            if (O.nserver_pids < LG_MAX_PIDS)
                O.server_pids[O.nserver_pids++] = (pid_t)atoi(optarg);
            break;
        case 'n':
            O.conns = atoi(optarg);
            break;
        case OPT_ROOMS:
            O.rooms = atoi(optarg);
            break;
        case OPT_PUBS:
            O.publishers = atoi(optarg);
            break;
        case OPT_USERS:
            O.users = atoi(optarg);
            break;
        case OPT_RATE:
            O.rate = atof(optarg);
            break;
        case OPT_WINDOW:
            O.window = atoi(optarg);
            break;
        case OPT_SIZE:
            O.size = atoi(optarg);
            break;
        case OPT_JOIN:
            O.join = 1;
            break;
        case OPT_SIGNAL:
            O.signal = 1;
            break;
        case OPT_NO_ECHO:
            O.no_echo = 1;
            break;
        case OPT_PREFIX:
            O.room_prefix = optarg;
            break;
        case OPT_SUBMSG:
            O.sub_msg = optarg;
            break;
        case OPT_TMPL:
            O.pub_tmpl = optarg;
            break;
        case OPT_DURATION:
            O.duration = atof(optarg);
            break;
        case OPT_WARMUP:
            O.warmup = atof(optarg);
            break;
        case OPT_DRAIN:
            O.drain = atof(optarg);
            break;
        case OPT_HOLD:
            O.hold = atof(optarg);
            break;
        case OPT_CTIMEOUT:
            O.connect_timeout = atof(optarg);
            break;
        case OPT_WORKERS:
            O.workers = atoi(optarg);
            break;
        case OPT_CRATE:
            O.connect_rate = atof(optarg);
            break;
        case OPT_INFLIGHT:
            O.inflight = atoi(optarg);
            break;
        case OPT_SRCBASE:
            if (parse_addr(optarg, &O.src_base) != 0) {
                fprintf(stderr, "meridian-loadgen: bad --src-base %s\n", optarg);
                return 2;
            }
            break;
        case OPT_SRCCOUNT:
            O.src_count = (uint32_t)atoi(optarg);
            break;
        case OPT_JSON:
            O.json_path = optarg;
            break;
        case OPT_MODE:
            mode = optarg;
            break;
        case 'q':
            O.quiet = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!mode && optind < argc)
        mode = argv[optind++];
    if (!mode) {
        usage(stderr);
        return 2;
    }
    int found = 0;
    for (int i = 0; i < 5; i++)
        if (strcmp(mode, mode_names[i]) == 0)
            O.mode = (lg_mode)i, found = 1;
    if (!found) {
        fprintf(stderr, "meridian-loadgen: unknown mode %s\n", mode);
        return 2;
    }
    if (O.nurls == 0) {
        fprintf(stderr, "meridian-loadgen: --url is required\n");
        return 2;
    }
    if (O.mode == LG_MODE_GENERIC) {
        if (O.npub_urls == 0) {
            memcpy(O.pub_urls, O.urls, sizeof O.urls);
            O.npub_urls = O.nurls;
        }
        if (!O.pub_tmpl)
            O.pub_tmpl = "{{payload}}";
    }
    if (O.rate < 0)
        O.rate = (O.mode == LG_MODE_PUBLISH || O.mode == LG_MODE_CHURN) ? 0 : 1000;
    if (O.users < 0)
        O.users = O.mode == LG_MODE_FANOUT ? 1 : 0;
    /*
     * publish measures the publish path: without --rooms each publisher is
     * alone in its own room (with one room for all, every publish went to
     * every publisher: a fan-out of P per publish).
     */
    if (O.rooms == 0 && O.mode != LG_MODE_PUBLISH)
        O.rooms = 1;
    if (O.rooms < 0 || O.conns < 0 || O.publishers < 0 || O.window < 1 || O.size < 24 ||
        O.duration <= 0 || O.connect_rate <= 0 || O.inflight < 1) {
        fprintf(stderr, "meridian-loadgen: invalid option values (size must be >= 24)\n");
        return 2;
    }
    int total =
        O.conns + ((O.mode == LG_MODE_CONNECT || O.mode == LG_MODE_CHURN) ? 0 : O.publishers);
    if (O.workers <= 0)
        O.workers = (total + LG_CONNS_PER_WORKER - 1) / LG_CONNS_PER_WORKER;
    if (O.workers < 1)
        O.workers = 1;
    if (O.workers > LG_MAX_WORKERS)
        O.workers = LG_MAX_WORKERS;
    if (O.mode == LG_MODE_CHURN && O.workers > O.conns)
        O.workers = O.conns > 0 ? O.conns : 1;

    size_t shsz = sizeof(lg_shared) + (size_t)O.workers * sizeof(lg_wstats);
    SH = mmap(NULL, shsz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (SH == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    memset(SH, 0, shsz);
    int expected = 0;
    for (int i = 0; i < O.workers; i++)
        expected += lg_worker_conn_count(&O, i);
    if (O.mode == LG_MODE_CHURN)
        expected = 0;

    long rss0[LG_MAX_PIDS], rss1[LG_MAX_PIDS];
    double cpu0[LG_MAX_PIDS], cpu1[LG_MAX_PIDS];
    for (int i = 0; i < O.nserver_pids; i++) {
        rss0[i] = read_rss_kb(O.server_pids[i]), rss1[i] = rss0[i];
        cpu0[i] = read_cpu_s(O.server_pids[i]), cpu1[i] = cpu0[i];
    }

    double budget = O.connect_timeout + O.warmup + O.duration + O.drain + O.hold + 30;
    /* signal() cannot fail for these signals and handlers. */
    (void)signal(SIGALRM, on_alarm);
    alarm((unsigned)ceil(budget));
    (void)signal(SIGPIPE, SIG_IGN);

    double t_begin = now_s();
    for (int i = 0; i < O.workers; i++) {
        pid_t p = fork();
        if (p < 0) {
            perror("fork");
            set_phase(LG_PHASE_EXIT);
            return 1;
        }
        if (p == 0) {
            (void)signal(SIGALRM, SIG_DFL);
            lg_worker_run(&O, SH, i);
        }
        kids[i] = p;
    }
    if (!O.quiet)
        fprintf(stderr,
                "meridian-loadgen: %s, %d connection(s) over %d worker(s), %d source address(es)\n",
                mode_names[O.mode], O.mode == LG_MODE_CHURN ? O.conns : expected, O.workers,
                (int)O.src_count);

    uint64_t prev[LG_C_COUNT] = {0};
    double last_prog = t_begin;
    double connect_s = 0;
    /* Phase 1: connect (every mode but churn). */
    if (O.mode != LG_MODE_CHURN) {
        for (;;) {
            usleep(50000);
            double t = now_s();
            uint64_t done = sum_ctr(LG_C_READY) + sum_ctr(LG_C_FAILED);
            if (t - last_prog >= 1.0) {
                progress("connect", t - t_begin, prev, t - last_prog);
                last_prog = t;
            }
            if (done >= (uint64_t)expected || t - t_begin > O.connect_timeout)
                break;
        }
        connect_s = now_s() - t_begin;
    }
    uint64_t ready_after_connect = sum_ctr(LG_C_READY);
    double t_meas0 = 0, t_meas1 = 0;
    /* Deliveries received during the window, whenever sent: the throughput when saturated. */
    uint64_t recv0 = 0, recv1 = 0;
    if (O.mode == LG_MODE_CONNECT) {
        /* Let the server settle (lazy allocations, freed handshake buffers) before sampling. */
        double end = now_s() + O.hold;
        while (now_s() < end) {
            usleep(100000);
            double t = now_s();
            if (t - last_prog >= 1.0) {
                progress("hold", t - t_begin, prev, t - last_prog);
                last_prog = t;
            }
        }
        /* In connect mode the window is the whole run: CPU spent accepting and holding. */
        t_meas0 = t_begin;
        t_meas1 = now_s();
        for (int i = 0; i < O.nserver_pids; i++) {
            rss1[i] = read_rss_kb(O.server_pids[i]);
            cpu1[i] = read_cpu_s(O.server_pids[i]);
        }
    } else {
        int64_t now = lg_now_us();
        SH->t_run_us = now + 200000;
        SH->t_measure_us = SH->t_run_us + (int64_t)(O.warmup * 1e6);
        SH->t_stop_us = SH->t_measure_us + (int64_t)(O.duration * 1e6);
        set_phase(LG_PHASE_RUN);
        int sampled0 = 0;
        for (;;) {
            usleep(20000);
            int64_t n = lg_now_us();
            double t = now_s();
            if (!sampled0 && n >= SH->t_measure_us) {
                sampled0 = 1;
                t_meas0 = t;
                recv0 = sum_ctr(LG_C_DELIV);
                for (int i = 0; i < O.nserver_pids; i++)
                    cpu0[i] = read_cpu_s(O.server_pids[i]);
            }
            if (t - last_prog >= 1.0) {
                progress(n < SH->t_measure_us ? "warmup" : "run", t - t_begin, prev, t - last_prog);
                last_prog = t;
            }
            if (n >= SH->t_stop_us)
                break;
        }
        t_meas1 = now_s();
        recv1 = sum_ctr(LG_C_DELIV);
        for (int i = 0; i < O.nserver_pids; i++) {
            cpu1[i] = read_cpu_s(O.server_pids[i]);
            rss1[i] = read_rss_kb(O.server_pids[i]);
        }
        set_phase(LG_PHASE_STOP);
        /* Drain: wait until deliveries and acks stop moving, at most --drain seconds. */
        double dend = now_s() + O.drain;
        uint64_t last = 0;
        double still = now_s();
        while (now_s() < dend) {
            usleep(50000);
            uint64_t v = sum_ctr(LG_C_DELIV) + sum_ctr(LG_C_ACKS) + sum_ctr(LG_C_SELF);
            if (v != last) {
                last = v;
                still = now_s();
            } else if (now_s() - still > 0.3) {
                break;
            }
        }
    }
    set_phase(LG_PHASE_EXIT);
    for (int i = 0; i < O.workers; i++) {
        int st;
        while (waitpid(kids[i], &st, 0) < 0 && errno == EINTR) {
        }
        kids[i] = 0;
    }
    alarm(0);
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);

    /* ---- merge and report ---- */
    lg_hist lat, conn;
    lg_hist_init(&lat);
    lg_hist_init(&conn);
    uint64_t c[LG_C_COUNT] = {0};
    const char *last_error = "";
    for (int i = 0; i < O.workers; i++) {
        lg_hist_merge(&lat, &SH->w[i].lat);
        lg_hist_merge(&conn, &SH->w[i].conn);
        for (int k = 0; k < LG_C_COUNT; k++)
            c[k] += SH->w[i].ctr[k];
        if (SH->w[i].last_error[0])
            last_error = SH->w[i].last_error;
    }
    double dur = O.duration;
    double members = O.rooms > 0 ? (double)O.conns / O.rooms : 0;
    double expected_deliv = (double)c[LG_C_SENT_M] * members;

    printf("\nmeridian-loadgen %s: %d worker(s)\n", mode_names[O.mode], O.workers);
    if (O.mode != LG_MODE_CHURN)
        printf("  %-26s %llu of %d ready, %llu failed, %llu dropped, in %.2f s (%.0f/s)\n",
               "connections", (unsigned long long)ready_after_connect, expected,
               (unsigned long long)c[LG_C_FAILED], (unsigned long long)c[LG_C_DROPPED], connect_s,
               connect_s > 0 ? (double)ready_after_connect / connect_s : 0.0);
    print_hist(O.mode == LG_MODE_CHURN ? "connect-to-welcome" : "connect-to-ready", &conn);
    if (O.mode == LG_MODE_FANOUT || O.mode == LG_MODE_GENERIC) {
        printf("  %-26s %.0f msgs/s offered, %llu sent in window\n", "publish", O.rate,
               (unsigned long long)c[LG_C_SENT_M]);
        printf("  %-26s %.0f /s (%llu in %.1f s; %.2f%% of expected)\n", "deliveries",
               (double)c[LG_C_DELIV_M] / dur, (unsigned long long)c[LG_C_DELIV_M], dur,
               expected_deliv > 0 ? 100.0 * (double)c[LG_C_DELIV_M] / expected_deliv : 0.0);
        printf("  %-26s %.0f /s (all messages received during the window)\n", "received",
               t_meas1 > t_meas0 ? (double)(recv1 - recv0) / (t_meas1 - t_meas0) : 0.0);
        print_hist("end-to-end latency", &lat);
    } else if (O.mode == LG_MODE_PUBLISH) {
        printf("  %-26s %.0f /s (%llu in %.1f s; %s)\n", "acknowledged publishes",
               (double)c[LG_C_ACKS_M] / dur, (unsigned long long)c[LG_C_ACKS_M], dur,
               O.rate > 0 ? "open loop" : "closed loop");
        print_hist("publish-to-ack latency", &lat);
    } else if (O.mode == LG_MODE_CHURN) {
        printf("  %-26s %.0f /s (%llu in %.1f s, %d slots)\n", "connect+close cycles",
               (double)c[LG_C_CYCLES_M] / dur, (unsigned long long)c[LG_C_CYCLES_M], dur, O.conns);
    }
    printf("  %-26s %llu\n", "error frames", (unsigned long long)c[LG_C_ERRORS]);
    for (int i = 0; i < O.nserver_pids; i++) {
        double cpu = (t_meas1 > t_meas0 && cpu0[i] >= 0 && cpu1[i] >= 0)
                         ? 100.0 * (cpu1[i] - cpu0[i]) / (t_meas1 - t_meas0)
                         : -1;
        printf("  server pid %-15d RSS %ld -> %ld KiB", (int)O.server_pids[i], rss0[i], rss1[i]);
        if (O.mode == LG_MODE_CONNECT && ready_after_connect > 0)
            printf(" (%.0f bytes per connection over all servers)",
                   1024.0 * (double)(rss1[i] - rss0[i]) /
                       ((double)ready_after_connect / O.nserver_pids));
        if (cpu >= 0)
            printf(", CPU %.0f%% during the window", cpu);
        printf("\n");
    }
    printf("  %-26s user %.2f s, system %.2f s\n", "loadgen CPU",
           (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
    if (last_error[0])
        printf("  %-26s %s\n", "last error", last_error);

    if (O.json_path) {
        json_t *servers = json_array();
        for (int i = 0; i < O.nserver_pids; i++) {
            double cpu = (t_meas1 > t_meas0 && cpu0[i] >= 0 && cpu1[i] >= 0)
                             ? 100.0 * (cpu1[i] - cpu0[i]) / (t_meas1 - t_meas0)
                             : -1;
            double per = ready_after_connect > 0
                             ? 1024.0 * (double)(rss1[i] - rss0[i]) /
                                   ((double)ready_after_connect / O.nserver_pids)
                             : 0;
            json_array_append_new(
                servers, json_pack("{s:i, s:I, s:I, s:f, s:f}", "pid", (int)O.server_pids[i],
                                   "rss_before_kb", (json_int_t)rss0[i], "rss_after_kb",
                                   (json_int_t)rss1[i], "rss_bytes_per_conn", per, "cpu_pct", cpu));
        }
        json_t *counters = json_object();
        static const char *const names[LG_C_COUNT] = {
            "started",        "open",      "ready",
            "failed",         "dropped",   "sent",
            "sent_measured",  "delivered", "delivered_measured",
            "self_delivered", "acks",      "acks_measured",
            "errors",         "cycles",    "cycles_measured",
            "bytes_in",       "bytes_out", "live"};
        for (int k = 0; k < LG_C_COUNT; k++)
            json_object_set_new(counters, names[k], json_integer((json_int_t)c[k]));
        json_t *root = json_pack(
            "{s:s, s:i, s:i, s:i, s:i, s:i, s:f, s:i, s:f, s:f, s:f, s:i, s:I, s:f, s:f, s:f,"
            " s:f, s:f, s:o, s:o, s:o, s:o, s:f, s:f, s:s, s:f}",
            "mode", mode_names[O.mode], "workers", O.workers, "conns", O.conns, "rooms", O.rooms,
            "publishers", O.publishers, "size", O.size, "rate", O.rate, "expected_conns", expected,
            "duration_s", O.duration, "connect_s", connect_s, "connect_per_s",
            connect_s > 0 ? (double)ready_after_connect / connect_s : 0.0, "window", O.window,
            "ready_after_connect", (json_int_t)ready_after_connect, "deliveries_per_s",
            (double)c[LG_C_DELIV_M] / dur, "acks_per_s", (double)c[LG_C_ACKS_M] / dur,
            "cycles_per_s", (double)c[LG_C_CYCLES_M] / dur, "delivery_ratio",
            expected_deliv > 0 ? (double)c[LG_C_DELIV_M] / expected_deliv : 0.0, "sent_per_s",
            (double)c[LG_C_SENT_M] / dur, "latency", hist_json(&lat), "connect_latency",
            hist_json(&conn), "counters", counters, "servers", servers, "loadgen_user_s",
            (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6, "loadgen_sys_s",
            (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6, "last_error",
            last_error, "received_per_s",
            t_meas1 > t_meas0 ? (double)(recv1 - recv0) / (t_meas1 - t_meas0) : 0.0);
        if (strcmp(O.json_path, "-") == 0) {
            json_dumpf(root, stdout, JSON_INDENT(2));
            printf("\n");
        } else if (json_dump_file(root, O.json_path, JSON_INDENT(2)) != 0) {
            fprintf(stderr, "meridian-loadgen: cannot write %s\n", O.json_path);
        }
        json_decref(root);
    }
    munmap(SH, shsz);
    return 0;
}
