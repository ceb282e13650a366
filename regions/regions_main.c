/*
 * meridian-regions: checks a regions file and renders from it what each
 * region's servers need.
 *
 *   meridian-regions check FILE
 *   meridian-regions nats-conf FILE --region R --store-dir DIR [options]
 *   meridian-regions nkeys FILE --dir DIR
 *   meridian-regions nats-permissions FILE
 *   meridian-regions endpoints FILE
 *   meridian-regions listeners FILE
 *   meridian-regions route FILE [--healthy R1,R2...]
 *
 * Every subcommand loads and validates the whole file first, so a broken
 * file is reported the same way whatever was asked. Output goes to stdout,
 * or atomically (temporary file + rename) to --out.
 */
#include "mr_alloc.h"
#include "mr_buf.h"
#include "mr_nkey.h"
#include "mr_regions.h"
#include "regions_render.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *f)
{
    /* On stdout (--help) a failed write is caught at exit; on stderr it has nowhere to go. */
    (void)fputs(
        "usage:\n"
        "  meridian-regions --version\n"
        "  meridian-regions check FILE\n"
        "      validate FILE; prints a one-line summary, exit 1 with FILE: FIELD: PROBLEM\n"
        "  meridian-regions nats-conf FILE --region R --store-dir DIR [--server NAME]\n"
        "      [--tls-cert PEM --tls-key PEM --tls-ca PEM\n"
        "       [--client-tls [--client-verify [--client-ca PEM]]]]\n"
        "      [--nkeys-dir DIR] [--user U (--password P | --password-file F)]\n"
        "      [--token T | --token-file F] [--listen ADDR] [--out PATH]\n"
        "      nats-server config for one server of region R (--server when it has several)\n"
        "  meridian-regions nkeys FILE --dir DIR\n"
        "      create the NATS user nkeys of every role and region that DIR lacks:\n"
        "      ROLE-REGION.nk (seed, mode 0600) and ROLE-REGION.pub; prints\n"
        "      ROLE REGION PUBLIC-KEY per line (tab-separated)\n"
        "  meridian-regions nats-permissions FILE [--out PATH]\n"
        "      JSON of the NATS subject permissions of every role in every region\n"
        "  meridian-regions endpoints FILE [--out PATH]\n"
        "      JSON of every derived URL per region (see regions/README.md)\n"
        "  meridian-regions listeners FILE [--out PATH]\n"
        "      one line per listening socket: KIND REGION ID HOST PORT (tab-separated)\n"
        "  meridian-regions route FILE [--healthy R1,R2,...]\n"
        "      the DNS answer for each region's geography given the healthy regions\n"
        "      (default: all healthy)\n",
        f);
}

/*
 * `rc`, or 1 with a message when stdout lost output (a full disk, a closed
 * pipe). A write larger than the buffer fails at once, sets the stream's
 * error flag and leaves fflush nothing to report: hence ferror as well.
 */
static int flush_stdout(int rc)
{
    if (fflush(stdout) != 0) {
        fprintf(stderr, "meridian-regions: cannot write the output: %s\n", strerror(errno));
        return 1;
    }
    if (ferror(stdout)) {
        fprintf(stderr, "meridian-regions: cannot write the output\n");
        return 1;
    }
    return rc;
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    /* A message that stderr cannot take has nowhere else to go. */
    fprintf(stderr, "meridian-regions: ");
    (void)vfprintf(stderr, fmt, ap);
    (void)fputc('\n', stderr);
    va_end(ap);
    return 1;
}

/* Read a secret from a file: the first line, without its newline. */
static char *read_secret(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char line[1024];
    char *r = fgets(line, sizeof line, f);
    (void)fclose(f); /* opened to read only */
    if (!r)
        return NULL;
    line[strcspn(line, "\r\n")] = '\0';
    return strdup(line);
}

static int write_out(const char *path, const mr_buf *b, bool secret)
{
    const char *data = b->data ? b->data : "";
    if (!path) {
        if (fwrite(data, 1, b->len, stdout) != b->len) {
            fprintf(stderr, "meridian-regions: cannot write the output: %s\n", strerror(errno));
            return 1;
        }
        return 0; /* flushed and checked by main() */
    }
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    /* A config holding credentials is readable by its owner only. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, secret ? 0600 : 0644);
    if (fd < 0) {
        fprintf(stderr, "meridian-regions: %s: %s\n", tmp, strerror(errno));
        return 1;
    }
    size_t off = 0;
    while (off < b->len) {
        ssize_t w = write(fd, data + off, b->len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            fprintf(stderr, "meridian-regions: %s: %s\n", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            return 1;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "meridian-regions: %s: %s\n", path, strerror(errno));
        unlink(tmp);
        return 1;
    }
    return 0;
}

/*
 * The public keys of a .pub file, one per non-empty line, joined by '\n'
 * (several keys of one role are how a key is rotated without a gap), or
 * NULL when the file is unreadable, empty or holds anything else.
 */
static char *read_pubs(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    mr_buf b = MR_BUF_INIT;
    char line[256];
    bool ok = true;
    while (ok && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0])
            continue;
        ok = mr_nkey_public_valid(line);
        mr_buf_printf(&b, "%s%s", b.len ? "\n" : "", line);
    }
    (void)fclose(f); /* opened to read only */
    if (!ok || !b.len) {
        mr_buf_free(&b);
        return NULL;
    }
    return b.data;
}

/* DIR/ROLE-REGION.EXT for key number i (region i / roles, role i % roles). */
static void nkey_path(char *out, size_t n, const char *dir, const mr_regions *r, size_t i,
                      const char *ext)
{
    snprintf(out, n, "%s/%s-%s.%s", dir, mr_nats_role_name((mr_nats_role)(i % MR_NATS_NROLES)),
             r->regions[i / MR_NATS_NROLES].name, ext);
}

static void free_list(char **list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        free(list[i]);
    free(list);
}

static mr_regions *load(const char *path)
{
    char err[1024];
    mr_regions *r = mr_regions_load(path, err, sizeof err);
    if (!r)
        fprintf(stderr, "%s\n", err);
    return r;
}

static int cmd_check(mr_regions *r)
{
    size_t nats = 0;
    for (size_t i = 0; i < r->n_regions; i++)
        nats += r->regions[i].n_nats;
    printf("%s: ok: %zu regions, %zu relays, %zu NATS servers, zone %s\n", r->file, r->n_regions,
           r->n_relays_total, nats, r->zone);
    return 0;
}

enum {
    OPT_REGION = 1,
    OPT_SERVER,
    OPT_STORE,
    OPT_CERT,
    OPT_KEY,
    OPT_CA,
    OPT_CLIENT_TLS,
    OPT_CLIENT_VERIFY,
    OPT_CLIENT_CA,
    OPT_NKEYS_DIR,
    OPT_DIR,
    OPT_USER,
    OPT_PASSWORD,
    OPT_PASSWORD_FILE,
    OPT_TOKEN,
    OPT_TOKEN_FILE,
    OPT_OUT,
    OPT_HEALTHY,
    OPT_LISTEN,
    OPT_HELP,
};

static const struct option long_opts[] = {
    {"region", required_argument, NULL, OPT_REGION},
    {"server", required_argument, NULL, OPT_SERVER},
    {"store-dir", required_argument, NULL, OPT_STORE},
    {"tls-cert", required_argument, NULL, OPT_CERT},
    {"tls-key", required_argument, NULL, OPT_KEY},
    {"tls-ca", required_argument, NULL, OPT_CA},
    {"client-tls", no_argument, NULL, OPT_CLIENT_TLS},
    {"client-verify", no_argument, NULL, OPT_CLIENT_VERIFY},
    {"client-ca", required_argument, NULL, OPT_CLIENT_CA},
    {"nkeys-dir", required_argument, NULL, OPT_NKEYS_DIR},
    {"dir", required_argument, NULL, OPT_DIR},
    {"user", required_argument, NULL, OPT_USER},
    {"password", required_argument, NULL, OPT_PASSWORD},
    {"password-file", required_argument, NULL, OPT_PASSWORD_FILE},
    {"token", required_argument, NULL, OPT_TOKEN},
    {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
    {"out", required_argument, NULL, OPT_OUT},
    {"healthy", required_argument, NULL, OPT_HEALTHY},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

typedef struct args {
    const char *region, *server, *out, *healthy, *nkeys_dir, *dir;
    regions_nats_opts nats;
    char *secrets[2]; /* read from files; freed at exit */
} args;

/* Parse options after "SUBCOMMAND FILE". Returns 0, 1 on error, 2 after --help. */
static int parse_opts(int argc, char **argv, args *a)
{
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        switch (c) {
        case OPT_REGION:
            a->region = optarg;
            break;
        case OPT_SERVER:
            a->server = optarg;
            break;
        case OPT_STORE:
            a->nats.store_dir = optarg;
            break;
        case OPT_CERT:
            a->nats.tls_cert = optarg;
            break;
        case OPT_KEY:
            a->nats.tls_key = optarg;
            break;
        case OPT_CA:
            a->nats.tls_ca = optarg;
            break;
        case OPT_CLIENT_TLS:
            a->nats.client_tls = true;
            break;
        case OPT_CLIENT_VERIFY:
            a->nats.client_verify = true;
            break;
        case OPT_CLIENT_CA:
            a->nats.client_ca = optarg;
            break;
        case OPT_NKEYS_DIR:
            a->nkeys_dir = optarg;
            break;
        case OPT_DIR:
            a->dir = optarg;
            break;
        case OPT_USER:
            a->nats.user = optarg;
            break;
        case OPT_PASSWORD:
            a->nats.password = optarg;
            break;
        case OPT_PASSWORD_FILE:
        case OPT_TOKEN_FILE: {
            char *s = read_secret(optarg);
            if (!s || !*s)
                return fail("cannot read a secret from %s", optarg);
            a->secrets[c == OPT_TOKEN_FILE] = s;
            if (c == OPT_TOKEN_FILE)
                a->nats.token = s;
            else
                a->nats.password = s;
            break;
        }
        case OPT_TOKEN:
            a->nats.token = optarg;
            break;
        case OPT_OUT:
            a->out = optarg;
            break;
        case OPT_HEALTHY:
            a->healthy = optarg;
            break;
        case OPT_LISTEN:
            a->nats.listen = optarg;
            break;
        case OPT_HELP:
            usage(stdout);
            return 2;
        default:
            usage(stderr);
            return 1;
        }
    }
    if (optind != argc)
        return fail("unexpected argument: %s", argv[optind]);
    return 0;
}

static int cmd_nats_conf(mr_regions *r, args *a)
{
    if (!a->region)
        return fail("%s", "nats-conf needs --region");
    int gi = mr_regions_find(r, a->region);
    if (gi < 0)
        return fail("no region named \"%s\" in the regions file", a->region);
    const mr_region *g = &r->regions[gi];
    size_t si = 0;
    if (a->server) {
        for (si = 0; si < g->n_nats && strcmp(g->nats[si].name, a->server) != 0; si++)
            ;
        if (si == g->n_nats)
            return fail("region has no NATS server named \"%s\"", a->server);
    } else if (g->n_nats > 1) {
        return fail("region \"%s\" has several NATS servers: choose one with --server", g->name);
    }
    a->nats.region = (size_t)gi;
    a->nats.server = si;
    size_t nk = r->n_regions * MR_NATS_NROLES;
    char **pubs = NULL;
    if (a->nkeys_dir) {
        pubs = mr_calloc(nk, sizeof *pubs);
        for (size_t i = 0; i < nk; i++) {
            char path[4096];
            nkey_path(path, sizeof path, a->nkeys_dir, r, i, "pub");
            pubs[i] = read_pubs(path);
            if (!pubs[i]) {
                fail("%s: %s (create the keys with: meridian-regions nkeys FILE --dir %s)", path,
                     access(path, R_OK) == 0 ? "not a NATS user public key" : "cannot read it",
                     a->nkeys_dir);
                free_list(pubs, nk);
                return 1;
            }
        }
        a->nats.nkeys = (const char *const *)pubs;
    }
    mr_buf out = MR_BUF_INIT;
    char err[256];
    int rc = 1;
    if (regions_render_nats(r, &a->nats, &out, err, sizeof err) != 0)
        fail("%s", err);
    else
        rc = write_out(a->out, &out, a->nats.user || a->nats.token);
    mr_buf_free(&out);
    free_list(pubs, nk);
    return rc;
}

/*
 * Every role's key in every region: a seed that exists is kept (its .pub is
 * rewritten from it), a .pub without its seed is kept too (the seed may
 * live elsewhere), and a key with neither is generated.
 */
static int cmd_nkeys(mr_regions *r, args *a)
{
    if (!a->dir)
        return fail("%s", "nkeys needs --dir");
    if (mkdir(a->dir, 0700) != 0 && errno != EEXIST)
        return fail("%s: %s", a->dir, strerror(errno));
    for (size_t i = 0; i < r->n_regions * MR_NATS_NROLES; i++) {
        char seed_path[4096], pub_path[4096], seed[MR_NKEY_SEED_LEN + 1];
        char pub[MR_NKEY_PUBLIC_LEN + 1], err[600];
        nkey_path(seed_path, sizeof seed_path, a->dir, r, i, "nk");
        nkey_path(pub_path, sizeof pub_path, a->dir, r, i, "pub");
        char *have_pub = read_secret(pub_path);
        bool write_seed = false;
        if (access(seed_path, F_OK) == 0) {
            if (mr_nkey_read_seed_file(seed_path, pub, err, sizeof err) != 0) {
                free(have_pub);
                return fail("%s", err);
            }
        } else if (have_pub && mr_nkey_public_valid(have_pub)) {
            snprintf(pub, sizeof pub, "%s", have_pub);
        } else if (mr_nkey_generate(seed, pub) == 0) {
            write_seed = true;
        } else {
            free(have_pub);
            return fail("%s", "cannot generate a key (OpenSSL)");
        }
        mr_buf b = MR_BUF_INIT;
        int rc = 0;
        if (write_seed) {
            mr_buf_printf(&b, "%s\n", seed);
            rc = write_out(seed_path, &b, true);
            memset(seed, 0, sizeof seed);
            memset(b.data, 0, b.len);
            mr_buf_reset(&b);
        }
        /* A .pub that lists this key (maybe with another, mid-rotation) is kept as it is. */
        char *listed = read_pubs(pub_path);
        bool keep = listed && strstr(listed, pub);
        free(listed);
        if (rc == 0 && !keep) {
            mr_buf_printf(&b, "%s\n", pub);
            rc = write_out(pub_path, &b, false);
        }
        mr_buf_free(&b);
        free(have_pub);
        if (rc != 0)
            return rc;
        printf("%s\t%s\t%s\n", mr_nats_role_name((mr_nats_role)(i % MR_NATS_NROLES)),
               r->regions[i / MR_NATS_NROLES].name, pub);
    }
    return 0; /* stdout is flushed and checked by main() */
}

static int cmd_permissions(mr_regions *r, args *a)
{
    mr_buf out = MR_BUF_INIT;
    regions_render_permissions(r, &out);
    int rc = write_out(a->out, &out, false);
    mr_buf_free(&out);
    return rc;
}

static int cmd_endpoints(mr_regions *r, args *a)
{
    mr_buf out = MR_BUF_INIT;
    regions_render_endpoints(r, &out);
    int rc = write_out(a->out, &out, false);
    mr_buf_free(&out);
    return rc;
}

static int cmd_listeners(mr_regions *r, args *a)
{
    mr_buf out = MR_BUF_INIT;
    regions_render_listeners(r, &out);
    int rc = write_out(a->out, &out, false);
    mr_buf_free(&out);
    return rc;
}

static int cmd_route(mr_regions *r, args *a)
{
    bool *healthy = calloc(r->n_regions ? r->n_regions : 1, sizeof *healthy);
    if (!a->healthy) {
        for (size_t i = 0; i < r->n_regions; i++)
            healthy[i] = true;
    } else {
        char *list = strdup(a->healthy), *save = NULL;
        for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            int i = mr_regions_find(r, t);
            if (i < 0) {
                fail("--healthy: no region named \"%s\"", t);
                free(list);
                free(healthy);
                return 1;
            }
            healthy[i] = true;
        }
        free(list);
    }
    const char **addrs = calloc(r->n_relays_total, sizeof *addrs);
    for (size_t i = 0; i < r->n_regions; i++) {
        int x = mr_regions_route(r, i, healthy);
        size_t n = mr_regions_answer(r, i, healthy, NULL, addrs, r->n_relays_total);
        printf("%s%s -> %s:", r->regions[i].name, i == r->default_region ? " (default)" : "",
               x == MR_REGIONS_FAIL_OPEN ? "fail-open" : r->regions[x].name);
        for (size_t k = 0; k < n; k++)
            printf(" %s", addrs[k]);
        putchar('\n');
    }
    free(addrs);
    free(healthy);
    return 0;
}

int main(int argc, char **argv)
{
    mr_alloc_use_for_jansson();
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return flush_stdout(0);
    }
    if (argc >= 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)) {
        printf("meridian-regions %s\n", MERIDIAN_VERSION);
        return flush_stdout(0);
    }
    if (argc < 3) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1], *file = argv[2];
    bool known = strcmp(cmd, "check") == 0 || strcmp(cmd, "nats-conf") == 0 ||
                 strcmp(cmd, "endpoints") == 0 || strcmp(cmd, "route") == 0 ||
                 strcmp(cmd, "listeners") == 0 || strcmp(cmd, "nkeys") == 0 ||
                 strcmp(cmd, "nats-permissions") == 0;
    if (!known) {
        fprintf(stderr, "meridian-regions: unknown command \"%s\"\n", cmd);
        usage(stderr);
        return 2;
    }
    args a = {0};
    /* getopt sees "FILE OPTIONS...", with FILE in the place of argv[0]. */
    int rc = parse_opts(argc - 2, argv + 2, &a);
    if (rc != 0) {
        free(a.secrets[0]);
        free(a.secrets[1]);
        return rc == 2 ? flush_stdout(0) : 2;
    }
    mr_regions *r = load(file);
    if (!r) {
        rc = 1;
    } else if (strcmp(cmd, "check") == 0) {
        rc = cmd_check(r);
    } else if (strcmp(cmd, "nats-conf") == 0) {
        rc = cmd_nats_conf(r, &a);
    } else if (strcmp(cmd, "endpoints") == 0) {
        rc = cmd_endpoints(r, &a);
    } else if (strcmp(cmd, "listeners") == 0) {
        rc = cmd_listeners(r, &a);
    } else if (strcmp(cmd, "nkeys") == 0) {
        rc = cmd_nkeys(r, &a);
    } else if (strcmp(cmd, "nats-permissions") == 0) {
        rc = cmd_permissions(r, &a);
    } else {
        rc = cmd_route(r, &a);
    }
    mr_regions_free(r);
    free(a.secrets[0]);
    free(a.secrets[1]);
    /* A failed command has said why; a successful one must not lose its output. */
    return rc == 0 ? flush_stdout(rc) : rc;
}
