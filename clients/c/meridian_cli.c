/*
 * meridian-cli: mint development tokens, follow rooms and publish messages
 * from a shell (docs/cli.md).
 *
 * Each subcommand is a function; `tail` and `send` drive one mr_client and
 * wait on a condition variable that the client's callbacks signal (they run
 * on the client's service thread). SIGINT and SIGTERM are blocked in every
 * thread and taken by a small thread with sigwait(), which asks the client to
 * close normally; the main thread then sees the close like any other and
 * exits 0. Errors are one line on stderr starting with "meridian-cli:".
 *
 * Exit status: 0 success; 1 failure (cannot connect, authentication or a
 * request refused, no ack in time); 2 usage error; 3 the relay closed an
 * established connection abnormally (any close code other than 1000).
 */
#include "mrc_client.h"
#include "mrc_token.h"

#include "mr_alloc.h"
#include "mr_log.h"
#include "mr_proto.h"
#include "mr_time.h"

#include <errno.h>
#include <getopt.h>
#include <libwebsockets.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXIT_FAIL   1
#define EXIT_USAGE  2
#define EXIT_CLOSED 3

#define MAX_ROOMS 128

static void die_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void die_line(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    /* stderr is where failures go: if it cannot take them, nothing else can. */
    (void)fputs("meridian-cli: ", stderr);
    (void)vfprintf(stderr, fmt, ap);
    (void)fputc('\n', stderr);
    va_end(ap);
}

/* --help: the text on stdout; a stdout that cannot take it fails the command. */
static int print_help(const char *text)
{
    if (fputs(text, stdout) < 0 || fflush(stdout) != 0) {
        die_line("cannot write the output: %s", strerror(errno));
        return EXIT_FAIL;
    }
    return 0;
}

/* ---- options shared by the subcommands ---- */

enum {
    OPT_SECRET = 256,
    OPT_SECRET_FILE,
    OPT_SUB,
    OPT_TTL,
    OPT_ROOM,
    OPT_ISS,
    OPT_AUD,
    OPT_URL,
    OPT_TOKEN,
    OPT_CA_FILE,
    OPT_INSECURE,
    OPT_TIMEOUT,
    OPT_MID,
    OPT_JSON,
    OPT_SINCE,
    OPT_REWIND,
    OPT_COUNT,
    OPT_QUIET,
    OPT_SIGNALS,
    OPT_SIGNAL,
    OPT_NO_ECHO,
    OPT_VERBOSE,
    OPT_HELP
};

typedef struct cli_opts {
    /* token minting */
    const char *secret;
    const char *secret_file;
    const char *sub;
    long long ttl;
    const char *rooms[MAX_ROOMS];
    size_t n_rooms;
    const char *iss;
    const char *aud;
    /* connection */
    const char *url;
    const char *token;
    const char *ca_file;
    bool insecure;
    long long timeout_ms;
    /* send / tail */
    const char *mid;
    bool json;
    long long since;
    long long rewind;
    long long count;
    bool quiet;
    bool signals; /* tail: print signals too */
    bool signal;  /* send: an ephemeral signal, not a message */
    bool no_echo; /* send: hello "echo":false (the relay does not send our message back) */
    bool verbose;
} cli_opts;

static const struct option token_longopts[] = {
    {"secret", required_argument, NULL, OPT_SECRET},
    {"secret-file", required_argument, NULL, OPT_SECRET_FILE},
    {"sub", required_argument, NULL, OPT_SUB},
    {"ttl", required_argument, NULL, OPT_TTL},
    {"room", required_argument, NULL, OPT_ROOM},
    {"iss", required_argument, NULL, OPT_ISS},
    {"aud", required_argument, NULL, OPT_AUD},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* tail and send: connection flags plus the minting flags (a token minted on the fly). */
#define CONN_LONGOPTS                                                                              \
    {"secret", required_argument, NULL, OPT_SECRET},                                               \
        {"secret-file", required_argument, NULL, OPT_SECRET_FILE},                                 \
        {"sub", required_argument, NULL, OPT_SUB}, {"ttl", required_argument, NULL, OPT_TTL},      \
        {"room", required_argument, NULL, OPT_ROOM}, {"iss", required_argument, NULL, OPT_ISS},    \
        {"aud", required_argument, NULL, OPT_AUD}, {"url", required_argument, NULL, OPT_URL},      \
        {"token", required_argument, NULL, OPT_TOKEN},                                             \
        {"ca-file", required_argument, NULL, OPT_CA_FILE},                                         \
        {"insecure", no_argument, NULL, OPT_INSECURE},                                             \
        {"timeout", required_argument, NULL, OPT_TIMEOUT},                                         \
        {"verbose", no_argument, NULL, OPT_VERBOSE},                                               \
    {                                                                                              \
        "help", no_argument, NULL, OPT_HELP                                                        \
    }

static const struct option tail_longopts[] = {
    CONN_LONGOPTS,
    {"since", required_argument, NULL, OPT_SINCE},
    {"rewind", required_argument, NULL, OPT_REWIND},
    {"count", required_argument, NULL, OPT_COUNT},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"signals", no_argument, NULL, OPT_SIGNALS},
    {NULL, 0, NULL, 0},
};

static const struct option send_longopts[] = {
    CONN_LONGOPTS,
    {"mid", required_argument, NULL, OPT_MID},
    {"json", no_argument, NULL, OPT_JSON},
    {"signal", no_argument, NULL, OPT_SIGNAL},
    {"no-echo", no_argument, NULL, OPT_NO_ECHO},
    {NULL, 0, NULL, 0},
};

static const char usage_main[] = "usage: meridian-cli COMMAND [OPTIONS] [ARGS]\n"
                                 "\n"
                                 "commands:\n"
                                 "  token   mint a development token (HS256 JWT)\n"
                                 "  tail    join rooms and print every message as one JSON line\n"
                                 "  send    publish one message and wait for its ack\n"
                                 "\n"
                                 "meridian-cli COMMAND --help shows the options of a command.\n"
                                 "meridian-cli --version prints the version.\n";

static const char usage_token[] =
    "usage: meridian-cli token (--secret S | --secret-file F) --sub USER [--ttl SECONDS]\n"
    "                          [--room PATTERN]... [--iss ISSUER] [--aud AUDIENCE]\n"
    "\n"
    "Print an HS256 JWT the relay accepts (its auth.secret must be S).\n"
    "  --secret S         the signing secret\n"
    "  --secret-file F    read the secret from F (trailing newlines are dropped)\n"
    "  --sub USER         the user id (required)\n"
    "  --ttl SECONDS      lifetime, default 3600\n"
    "  --room PATTERN     allow only this room, or rooms starting with PREFIX for 'PREFIX*';\n"
    "                     repeat for more (default: every room)\n"
    "  --iss ISSUER       set the iss claim\n"
    "  --aud AUDIENCE     set the aud claim\n";

#define USAGE_CONN                                                                                 \
    "  --url URL          relay URL, ws://HOST:PORT/ or wss://... (default: $MERIDIAN_URL)\n"      \
    "  --token T          token to log in with (default: $MERIDIAN_TOKEN)\n"                       \
    "  --secret S | --secret-file F, --sub USER [--ttl, --room, --iss, --aud]\n"                   \
    "                     mint a token on the fly instead (see `meridian-cli token --help`)\n"     \
    "  --ca-file F        wss: trust the CA certificates in PEM file F\n"                          \
    "  --insecure         wss: accept any server certificate (self-signed test setups)\n"          \
    "  --verbose          log connection details to stderr\n"

static const char usage_tail[] =
    "usage: meridian-cli tail [OPTIONS] ROOM...\n"
    "\n"
    "Join the rooms and print each message frame on stdout as one JSON line.\n"
    "Runs until the connection closes or SIGINT/SIGTERM (exit 0). Exits 3 when the\n"
    "relay closes the connection with any code but 1000, 1 when it cannot connect,\n"
    "log in or join.\n" USAGE_CONN
    "  --timeout MS       time allowed to connect, log in and join, default 10000\n"
    "  --since SEQ        ask for history after sequence SEQ when joining\n"
    "  --rewind N         ask for the room's last N messages when joining (not with --since)\n"
    "  --count N          exit 0 after N messages\n"
    "  --quiet            do not report 'joined ROOM' on stderr\n"
    "  --signals          print the rooms' ephemeral signals too (one JSON line each)\n";

static const char usage_send[] =
    "usage: meridian-cli send [OPTIONS] ROOM TEXT\n"
    "\n"
    "Join ROOM, publish {\"text\":TEXT}, wait for the relay's ack and print the\n"
    "message id (msg_id). Exits 0 on ack, 1 on error or time-out.\n" USAGE_CONN
    "  --timeout MS       time allowed for everything up to the ack, default 10000\n"
    "  --mid MID          client message id (default: a random one); reuse it to retry\n"
    "  --json             TEXT is a JSON value to publish as the data as it is\n"
    "  --signal           send TEXT as an ephemeral signal (no ack, no history); exits\n"
    "                     once the relay has handled it, printing nothing\n"
    "  --no-echo          say \"echo\":false in hello: the relay sends this connection\n"
    "                     only the ack, not the message itself\n";

static int parse_ll(const char *flag, const char *s, long long min, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min) {
        die_line("%s needs an integer >= %lld, got '%s'", flag, min, s);
        return -1;
    }
    *out = v;
    return 0;
}

/* Parse argv for one subcommand; returns 0, or EXIT_USAGE after printing why, or -1 for --help. */
static int parse_opts(int argc, char **argv, const struct option *longopts, cli_opts *o)
{
    memset(o, 0, sizeof *o);
    o->ttl = 3600;
    o->timeout_ms = 10000;
    o->since = -1;
    o->rewind = -1;
    o->url = getenv("MERIDIAN_URL");
    o->token = getenv("MERIDIAN_TOKEN");
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
        switch (ch) {
        case OPT_SECRET:
            o->secret = optarg;
            break;
        case OPT_SECRET_FILE:
            o->secret_file = optarg;
            break;
        case OPT_SUB:
            o->sub = optarg;
            break;
        case OPT_TTL:
            if (parse_ll("--ttl", optarg, 1, &o->ttl) < 0)
                return EXIT_USAGE;
            break;
        case OPT_ROOM:
            if (o->n_rooms == MAX_ROOMS) {
                die_line("at most %d --room options", MAX_ROOMS);
                return EXIT_USAGE;
            }
            o->rooms[o->n_rooms++] = optarg;
            break;
        case OPT_ISS:
            o->iss = optarg;
            break;
        case OPT_AUD:
            o->aud = optarg;
            break;
        case OPT_URL:
            o->url = optarg;
            break;
        case OPT_TOKEN:
            o->token = optarg;
            break;
        case OPT_CA_FILE:
            o->ca_file = optarg;
            break;
        case OPT_INSECURE:
            o->insecure = true;
            break;
        case OPT_TIMEOUT:
            if (parse_ll("--timeout", optarg, 1, &o->timeout_ms) < 0)
                return EXIT_USAGE;
            break;
        case OPT_MID:
            o->mid = optarg;
            break;
        case OPT_JSON:
            o->json = true;
            break;
        case OPT_SINCE:
            if (parse_ll("--since", optarg, 0, &o->since) < 0)
                return EXIT_USAGE;
            break;
        case OPT_REWIND:
            if (parse_ll("--rewind", optarg, 0, &o->rewind) < 0)
                return EXIT_USAGE;
            break;
        case OPT_COUNT:
            if (parse_ll("--count", optarg, 1, &o->count) < 0)
                return EXIT_USAGE;
            break;
        case OPT_QUIET:
            o->quiet = true;
            break;
        case OPT_SIGNALS:
            o->signals = true;
            break;
        case OPT_SIGNAL:
            o->signal = true;
            break;
        case OPT_NO_ECHO:
            o->no_echo = true;
            break;
        case OPT_VERBOSE:
            o->verbose = true;
            break;
        case 'h':
        case OPT_HELP:
            return -1;
        case ':':
            die_line("option '%s' needs a value", argv[optind - 1]);
            return EXIT_USAGE;
        default:
            die_line("unknown option '%s' (see --help)", argv[optind - 1]);
            return EXIT_USAGE;
        }
    }
    return 0;
}

/* Mint from the minting flags; NULL after printing why. */
static char *mint(const cli_opts *o)
{
    if (o->secret && o->secret_file) {
        die_line("give --secret or --secret-file, not both");
        return NULL;
    }
    if (!o->secret && !o->secret_file) {
        die_line("a secret is required: --secret S or --secret-file F");
        return NULL;
    }
    if (!o->sub) {
        die_line("--sub USER is required");
        return NULL;
    }
    char err[256];
    unsigned char *secret;
    size_t secret_len;
    if (o->secret_file) {
        secret = mrc_token_read_secret(o->secret_file, &secret_len, err, sizeof err);
        if (!secret) {
            die_line("%s", err);
            return NULL;
        }
    } else {
        secret_len = strlen(o->secret);
        secret = (unsigned char *)mr_strdup(o->secret);
    }
    mrc_token_params p = {
        .secret = secret,
        .secret_len = secret_len,
        .sub = o->sub,
        .ttl_s = o->ttl,
        .rooms = o->n_rooms ? o->rooms : NULL,
        .n_rooms = o->n_rooms,
        .iss = o->iss,
        .aud = o->aud,
    };
    char *tok = mrc_token_mint(&p, err, sizeof err);
    free(secret);
    if (!tok)
        die_line("%s", err);
    return tok;
}

static int cmd_token(int argc, char **argv)
{
    cli_opts o;
    int r = parse_opts(argc, argv, token_longopts, &o);
    if (r < 0) {
        return print_help(usage_token);
    }
    if (r)
        return r;
    if (optind < argc) {
        die_line("token takes no arguments, got '%s' (see --help)", argv[optind]);
        return EXIT_USAGE;
    }
    if (!o.secret && !o.secret_file) {
        die_line("a secret is required: --secret S or --secret-file F");
        return EXIT_USAGE;
    }
    if (!o.sub) {
        die_line("--sub USER is required");
        return EXIT_USAGE;
    }
    char *tok = mint(&o);
    if (!tok)
        return EXIT_USAGE;
    printf("%s\n", tok);
    free(tok);
    return fflush(stdout) == 0 ? 0 : EXIT_FAIL;
}

/* ---- a session: one client and what its callbacks have seen ---- */

typedef struct session {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    mrc_client *client;
    bool quiet;
    /* guarded by mu */
    bool welcomed;
    size_t joined;
    int64_t join_ids[MAX_ROOMS];
    size_t n_join_ids;
    int64_t pub_id;
    bool acked;
    char msg_id[MR_MSG_ID_LEN + 8];
    bool failed;
    char fail[512];
    bool closed;
    int close_code;
    char close_reason[256];
    bool interrupted;
    bool client_gone; /* mrc_client_free() has begun: the signal thread keeps off */
    long long messages;
    long long max_messages;
    bool print_signals;
    int64_t ping_id; /* send --signal: the ping that follows the signal */
} session;

/*
 * tail's frames go to stdout; one that cannot take them (a full disk, a
 * closed pipe) ends the session as a failure, so that no frame is lost
 * without the exit status saying so.
 */
static bool output_written(session *s)
{
    if (fflush(stdout) == 0)
        return true;
    int e = errno;
    pthread_mutex_lock(&s->mu);
    if (!s->failed) {
        s->failed = true;
        snprintf(s->fail, sizeof s->fail, "cannot write the output: %s", strerror(e));
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    mrc_close(s->client);
    return false;
}

static bool is_own_request(session *s, int64_t id)
{
    if (id < 0)
        return false;
    if (id == s->pub_id || id == 1) /* 1 is hello's id */
        return true;
    for (size_t i = 0; i < s->n_join_ids; i++)
        if (s->join_ids[i] == id)
            return true;
    return false;
}

static void on_welcome(mrc_client *c, const char *user, json_t *welcome, void *ud)
{
    session *s = ud;
    pthread_mutex_lock(&s->mu);
    s->welcomed = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    mr_log_debug("logged in as %s", user);
}

static void on_joined(mrc_client *c, int64_t id, const char *room, void *ud)
{
    session *s = ud;
    pthread_mutex_lock(&s->mu);
    s->joined++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (!s->quiet) {
        fprintf(stderr, "meridian-cli: joined %s\n", room);
        (void)fflush(stderr); /* progress only */
    }
}

static void on_error(mrc_client *c, int64_t id, const char *code, const char *message,
                     bool retryable, void *ud)
{
    session *s = ud;
    pthread_mutex_lock(&s->mu);
    bool fatal = is_own_request(s, id);
    if (fatal && !s->failed) {
        s->failed = true;
        if (strcmp(code, "auth_failed") == 0)
            snprintf(s->fail, sizeof s->fail, "authentication failed: %s", message);
        else
            snprintf(s->fail, sizeof s->fail, "relay refused the request: %s: %s", code, message);
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    if (!fatal)
        die_line("relay error: %s: %s", code, message);
}

static void on_ack(mrc_client *c, int64_t id, const char *room, const char *mid, const char *msg_id,
                   void *ud)
{
    session *s = ud;
    pthread_mutex_lock(&s->mu);
    if (id == s->pub_id) {
        s->acked = true;
        snprintf(s->msg_id, sizeof s->msg_id, "%s", msg_id);
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
}

static void on_message_print(mrc_client *c, const mrc_message *m, void *ud)
{
    session *s = ud;
    /*
     * Print the frame as the relay sent it, on one line: raw newlines can
     * only sit between JSON tokens (inside strings they are escaped), so
     * turning them into spaces keeps the JSON identical in meaning.
     */
    for (size_t i = 0; i < m->frame_len; i++) {
        char ch = m->frame[i];
        putchar(ch == '\n' || ch == '\r' ? ' ' : ch);
    }
    putchar('\n');
    if (!output_written(s))
        return;
    pthread_mutex_lock(&s->mu);
    s->messages++;
    bool enough = s->max_messages > 0 && s->messages >= s->max_messages;
    pthread_mutex_unlock(&s->mu);
    if (enough)
        mrc_close(c);
}

/* tail --signals prints signal frames; send --signal waits for the pong after its signal. */
static void on_frame(mrc_client *c, const char *type, json_t *frame, void *ud)
{
    session *s = ud;
    if (strcmp(type, "signal") == 0 && s->print_signals) {
        char *text = json_dumps(frame, JSON_COMPACT);
        if (text)
            puts(text);
        free(text);
        (void)output_written(s);
    } else if (strcmp(type, "pong") == 0) {
        json_t *id = json_object_get(frame, "id");
        pthread_mutex_lock(&s->mu);
        if (json_is_integer(id) && json_integer_value(id) == s->ping_id) {
            s->acked = true;
            pthread_cond_broadcast(&s->cv);
        }
        pthread_mutex_unlock(&s->mu);
    }
}

static void on_reconnect(mrc_client *c, const char *reason, json_t *urls, void *ud)
{
    die_line("relay asks clients to reconnect (%s)", reason);
}

static void on_close(mrc_client *c, int code, const char *reason, void *ud)
{
    session *s = ud;
    pthread_mutex_lock(&s->mu);
    s->closed = true;
    s->close_code = code;
    snprintf(s->close_reason, sizeof s->close_reason, "%s", reason);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void *signal_main(void *arg)
{
    session *s = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    for (;;) {
        int sig;
        if (sigwait(&set, &sig) != 0)
            continue;
        /* Lock order is always session, then client (mrc_close takes the client's lock). */
        pthread_mutex_lock(&s->mu);
        s->interrupted = true;
        if (!s->client_gone)
            mrc_close(s->client);
        pthread_mutex_unlock(&s->mu);
    }
    return NULL;
}

/* Connect with the session's callbacks. Returns 0, or an exit status after printing why. */
static int session_open(session *s, const cli_opts *o, mrc_callbacks cb)
{
    if (!o->url) {
        die_line("--url URL is required (or set MERIDIAN_URL)");
        return EXIT_USAGE;
    }
    char *minted = NULL;
    const char *token = o->token;
    if (o->secret || o->secret_file) {
        minted = mint(o);
        if (!minted)
            return EXIT_USAGE;
        token = minted;
    } else if (!token) {
        die_line("a token is required: --token T, MERIDIAN_TOKEN, or --secret S --sub USER");
        return EXIT_USAGE;
    }
    pthread_mutex_init(&s->mu, NULL);
    /* Timeouts are durations: measured on CLOCK_MONOTONIC, whatever the wall clock does. */
    if (mr_cond_init_monotonic(&s->cv) != 0) {
        die_line("cannot create a condition variable");
        return EXIT_FAIL;
    }

    /* Block the stop signals before any thread exists so that only signal_main takes them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    (void)signal(SIGPIPE,
                 SIG_IGN); /* cannot fail for SIGPIPE; a closed stdout is an error, not death */

    cb.welcome_cb = on_welcome;
    cb.joined_cb = on_joined;
    cb.error_cb = on_error;
    cb.ack_cb = on_ack;
    cb.reconnect_cb = on_reconnect;
    cb.close_cb = on_close;
    mrc_options mo = {
        .url = o->url,
        .token = token,
        .ca_file = o->ca_file,
        .insecure = o->insecure,
        .no_echo = o->no_echo,
        .connect_timeout_s = (int)((o->timeout_ms + 999) / 1000),
        .cb = cb,
        .user_data = s,
    };
    char err[256];
    int r = mrc_client_new(&mo, &s->client, err, sizeof err);
    free(minted);
    if (r != MRC_OK) {
        die_line("%s", err);
        return r == MRC_EINVAL ? EXIT_USAGE : EXIT_FAIL;
    }
    pthread_t sig_thread;
    if (pthread_create(&sig_thread, NULL, signal_main, s) == 0)
        pthread_detach(sig_thread);
    return 0;
}

/* Close and free the client; the session's fields stay readable. */
static void session_close(session *s)
{
    pthread_mutex_lock(&s->mu);
    s->client_gone = true;
    pthread_mutex_unlock(&s->mu);
    mrc_client_free(s->client);
}

/* Report why the session ended badly; returns the exit status to use. */
static int session_failure(session *s, const char *what)
{
    if (s->failed) {
        die_line("%s", s->fail);
        return EXIT_FAIL;
    }
    if (s->closed) {
        if (!s->welcomed) {
            if (s->close_code == MR_CLOSE_AUTH_FAILED)
                die_line("authentication failed (close %d: %s)", s->close_code, s->close_reason);
            else if (s->close_code == MRC_CLOSE_ABNORMAL || s->close_code == MRC_CLOSE_TLS_FAILED)
                die_line("%s", s->close_reason);
            else
                die_line("connection closed before login: %d (%s)", s->close_code, s->close_reason);
            return EXIT_FAIL;
        }
        die_line("connection closed: %d (%s)", s->close_code, s->close_reason);
        return s->close_code == MR_CLOSE_NORMAL ? EXIT_FAIL : EXIT_CLOSED;
    }
    die_line("%s", what);
    return EXIT_FAIL;
}

static void setup_logging(const cli_opts *o)
{
    mr_log_init("meridian-cli", o->verbose ? MR_LOG_DEBUG : MR_LOG_WARN);
    lws_set_log_level(o->verbose ? LLL_ERR | LLL_WARN : 0, NULL);
}

static int cmd_tail(int argc, char **argv)
{
    cli_opts o;
    int r = parse_opts(argc, argv, tail_longopts, &o);
    if (r < 0) {
        return print_help(usage_tail);
    }
    if (r)
        return r;
    if (optind >= argc) {
        die_line("tail needs at least one ROOM (see --help)");
        return EXIT_USAGE;
    }
    size_t n_rooms = (size_t)(argc - optind);
    if (n_rooms > MAX_ROOMS) {
        die_line("at most %d rooms", MAX_ROOMS);
        return EXIT_USAGE;
    }
    if (o.since >= 0 && o.rewind >= 0) {
        die_line("give --since or --rewind, not both");
        return EXIT_USAGE;
    }
    for (int i = optind; i < argc; i++) {
        if (!mr_room_valid(argv[i], strlen(argv[i]))) {
            die_line("invalid room name '%s': use 1..128 of A-Z a-z 0-9 _ -", argv[i]);
            return EXIT_USAGE;
        }
    }
    setup_logging(&o);
    static session s;
    s.quiet = o.quiet;
    s.max_messages = o.count;
    s.pub_id = -1;
    s.print_signals = o.signals;
    mrc_callbacks cb = {.message_cb = on_message_print, .frame_cb = on_frame};
    if ((r = session_open(&s, &o, cb)) != 0)
        return r;
    pthread_mutex_lock(&s.mu);
    for (int i = optind; i < argc; i++) {
        int64_t id = o.rewind >= 0 ? mrc_join_rewind(s.client, argv[i], o.rewind)
                                   : mrc_join(s.client, argv[i], o.since);
        if (id > 0)
            s.join_ids[s.n_join_ids++] = id;
    }
    struct timespec deadline = mr_deadline_ms(o.timeout_ms);
    while (!s.closed && !s.failed && s.joined < n_rooms)
        if (pthread_cond_timedwait(&s.cv, &s.mu, &deadline) != 0)
            break;
    if (!s.closed && !s.failed && s.joined < n_rooms) {
        pthread_mutex_unlock(&s.mu);
        session_close(&s);
        die_line("could not %s within %lld ms", s.welcomed ? "join" : "connect and log in",
                 o.timeout_ms);
        return EXIT_FAIL;
    }
    /* Joined everything (or failed): now follow until the connection ends. */
    while (!s.closed && !s.failed)
        pthread_cond_wait(&s.cv, &s.mu);
    bool ok = !s.failed && (s.interrupted || s.close_code == MR_CLOSE_NORMAL ||
                            (s.max_messages && s.messages >= s.max_messages));
    pthread_mutex_unlock(&s.mu);
    session_close(&s);
    if (ok)
        return 0;
    return session_failure(&s, "connection ended");
}

static void random_mid(char *out, size_t n)
{
    unsigned char b[8];
    if (RAND_bytes(b, sizeof b) != 1) {
        /* RAND_bytes only fails without entropy; fall back to time and pid. */
        unsigned long long v =
            (unsigned long long)time(NULL) ^ ((unsigned long long)getpid() << 32);
        memcpy(b, &v, sizeof b);
    }
    snprintf(out, n, "cli-%02x%02x%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5],
             b[6], b[7]);
}

static int cmd_send(int argc, char **argv)
{
    cli_opts o;
    int r = parse_opts(argc, argv, send_longopts, &o);
    if (r < 0) {
        return print_help(usage_send);
    }
    if (r)
        return r;
    if (argc - optind != 2) {
        die_line("send needs ROOM and TEXT (see --help)");
        return EXIT_USAGE;
    }
    const char *room = argv[optind], *text = argv[optind + 1];
    if (!mr_room_valid(room, strlen(room))) {
        die_line("invalid room name '%s': use 1..128 of A-Z a-z 0-9 _ -", room);
        return EXIT_USAGE;
    }
    char mid[MR_MID_MAX + 1];
    if (o.mid) {
        if (!mrc_mid_valid(o.mid)) {
            die_line("invalid --mid '%s': use 1..64 printable ASCII characters, no spaces", o.mid);
            return EXIT_USAGE;
        }
        snprintf(mid, sizeof mid, "%s", o.mid);
    } else {
        random_mid(mid, sizeof mid);
    }
    json_t *data;
    if (o.json) {
        json_error_t je;
        data = json_loads(text, JSON_DECODE_ANY, &je);
        if (!data) {
            die_line("--json: TEXT is not valid JSON: %s", je.text);
            return EXIT_USAGE;
        }
    } else {
        data = json_pack("{s:s}", "text", text);
        if (!data) {
            die_line("TEXT is not valid UTF-8");
            return EXIT_USAGE;
        }
    }
    setup_logging(&o);
    static session s;
    s.quiet = true;
    s.pub_id = -1;
    s.ping_id = -1;
    mrc_callbacks cb = {.frame_cb = on_frame};
    if ((r = session_open(&s, &o, cb)) != 0) {
        json_decref(data);
        return r;
    }
    pthread_mutex_lock(&s.mu);
    /* The relay handles a connection's frames in order, so the join lands before the publish. */
    int64_t jid = mrc_join(s.client, room, -1);
    if (jid > 0)
        s.join_ids[s.n_join_ids++] = jid;
    if (o.signal) {
        /* No ack for a signal: the pong of a ping sent after it says the relay handled it. */
        s.pub_id = mrc_signal(s.client, room, data);
        s.ping_id = mrc_ping(s.client);
    } else {
        s.pub_id = mrc_publish(s.client, room, mid, data);
    }
    json_decref(data);
    struct timespec deadline = mr_deadline_ms(o.timeout_ms);
    while (!s.acked && !s.failed && !s.closed)
        if (pthread_cond_timedwait(&s.cv, &s.mu, &deadline) != 0)
            break;
    /* An error for our join or signal comes before the pong that follows them (the relay
     * answers in order) but may be read in the same pass: the error wins. */
    bool acked = s.acked && !s.failed;
    /* Decide before closing: our own close must not be mistaken for the relay's. */
    bool timed_out = !s.acked && !s.failed && !s.closed;
    pthread_mutex_unlock(&s.mu);
    int output_errno = 0;
    if (acked && !o.signal) {
        printf("%s\n", s.msg_id);
        if (fflush(stdout) != 0)
            output_errno = errno;
    }
    session_close(&s);
    if (acked && output_errno) {
        die_line("published, but cannot write its msg_id: %s", strerror(output_errno));
        return EXIT_FAIL;
    }
    if (acked)
        return 0;
    if (timed_out) {
        if (s.welcomed)
            die_line("no ack for mid %s within %lld ms", mid, o.timeout_ms);
        else
            die_line("could not connect and log in within %lld ms", o.timeout_ms);
        return EXIT_FAIL;
    }
    return session_failure(&s, "connection ended");
}

int main(int argc, char **argv)
{
    mr_alloc_use_for_jansson();
    if (argc < 2) {
        (void)fputs(usage_main, stderr); /* the exit status says it anyway */
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        return print_help(usage_main);
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("meridian-cli %s (libwebsockets %s)\n", MERIDIAN_VERSION, lws_get_library_version());
        return 0;
    }
    if (strcmp(cmd, "token") == 0)
        return cmd_token(argc - 1, argv + 1);
    if (strcmp(cmd, "tail") == 0)
        return cmd_tail(argc - 1, argv + 1);
    if (strcmp(cmd, "send") == 0)
        return cmd_send(argc - 1, argv + 1);
    die_line("unknown command '%s' (try --help)", cmd);
    return EXIT_USAGE;
}
