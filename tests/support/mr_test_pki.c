/* Certificates and nkeys for locked NATS in tests (see mr_test_pki.h). */
#include "mr_test_pki.h"
#include "mr_buf.h"
#include "mr_nkey.h"
#include "mr_test.h"

#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* Run openssl to completion; the test fails unless it exits 0. */
static void openssl(char *const argv[], const char *log)
{
    pid_t pid = mr_test_spawn(argv, log);
    int st = mr_test_wait_exit(pid, 60000);
    if (st == -1) {
        mr_test_stop(pid, SIGKILL, 1000);
        ck_abort_msg("openssl %s did not finish in 60 s; see %s", argv[1], log);
    }
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "openssl %s failed; see %s", argv[1], log);
}

static void make_ca(const char *cert, const char *key, const char *cn, const char *log)
{
    char subj[128];
    snprintf(subj, sizeof subj, "/CN=%s", cn);
    char *argv[] = {"openssl",
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-keyout",
                    (char *)key,
                    "-out",
                    (char *)cert,
                    "-days",
                    "2",
                    "-subj",
                    subj,
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                    NULL};
    openssl(argv, log);
}

/* A key and a certificate signed by ca/ca_key with the extensions in `ext_text`. */
static void make_cert(const char *dir, const char *name, const char *ca, const char *ca_key,
                      const char *ext_text, char *cert, char *key, const char *log)
{
    char csr[600], ext[600], serial[600];
    snprintf(cert, 600, "%s/%s.pem", dir, name);
    snprintf(key, 600, "%s/%s.key", dir, name);
    snprintf(csr, sizeof csr, "%s/%s.csr", dir, name);
    snprintf(ext, sizeof ext, "%s/%s.ext", dir, name);
    snprintf(serial, sizeof serial, "%s/%s.srl", dir, name);
    ck_assert(mr_test_write_file(ext, ext_text) == 0);
    char subj[128];
    snprintf(subj, sizeof subj, "/CN=meridian test %s", name);
    char *req[] = {
        "openssl", "req",     "-newkey", "ec",   "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes",  "-keyout", key,       "-out", csr,        "-subj",
        subj,      NULL};
    openssl(req, log);
    char *sign[] = {
        "openssl",  "x509",   "-req",         "-in",       csr,        "-CA",
        (char *)ca, "-CAkey", (char *)ca_key, "-CAserial", serial,     "-CAcreateserial",
        "-out",     cert,     "-days",        "2",         "-extfile", ext,
        NULL};
    openssl(sign, log);
}

void mr_test_pki_make(mr_test_pki *p, const char *dir, const char *const *hosts, size_t nhosts)
{
    memset(p, 0, sizeof *p);
    snprintf(p->dir, sizeof p->dir, "%s", dir);
    char log[600];
    snprintf(log, sizeof log, "%s/openssl.log", dir);
    snprintf(p->ca, sizeof p->ca, "%s/ca.pem", dir);
    snprintf(p->ca_key, sizeof p->ca_key, "%s/ca.key", dir);
    make_ca(p->ca, p->ca_key, "meridian test CA", log);
    char ext[1024];
    int n = snprintf(ext, sizeof ext,
                     "basicConstraints = critical, CA:FALSE\n"
                     "keyUsage = critical, digitalSignature, keyEncipherment\n"
                     "extendedKeyUsage = serverAuth, clientAuth\n"
                     "subjectAltName = IP:127.0.0.1, DNS:localhost");
    for (size_t i = 0; i < nhosts && n > 0 && (size_t)n < sizeof ext; i++)
        n += snprintf(ext + n, sizeof ext - (size_t)n, ", IP:%s", hosts[i]);
    snprintf(ext + n, sizeof ext - (size_t)n, "\n");
    make_cert(dir, "server", p->ca, p->ca_key, ext, p->cert, p->key, log);
    const char *client_ext = "basicConstraints = critical, CA:FALSE\n"
                             "keyUsage = critical, digitalSignature\n"
                             "extendedKeyUsage = clientAuth\n";
    make_cert(dir, "client", p->ca, p->ca_key, client_ext, p->client_cert, p->client_key, log);
    char other_key[600];
    snprintf(p->other_ca, sizeof p->other_ca, "%s/other-ca.pem", dir);
    snprintf(other_key, sizeof other_key, "%s/other-ca.key", dir);
    make_ca(p->other_ca, other_key, "someone else's CA", log);
    make_cert(dir, "other-client", p->other_ca, other_key, client_ext, p->other_cert, p->other_key,
              log);
}

void mr_test_nkeys_make(const char *dir, const char *const *regions, size_t nregions, char **pubs)
{
    for (size_t i = 0; i < nregions; i++) {
        for (int role = 0; role < MR_NATS_NROLES; role++) {
            char seed[MR_NKEY_SEED_LEN + 1], path[700], text[128];
            char *pub = malloc(MR_NKEY_PUBLIC_LEN + 1);
            ck_assert_int_eq(mr_nkey_generate(seed, pub), 0);
            snprintf(path, sizeof path, "%s/%s-%s.nk", dir, mr_nats_role_name((mr_nats_role)role),
                     regions[i]);
            snprintf(text, sizeof text, "%s\n", seed);
            ck_assert_int_eq(mr_test_write_file(path, text), 0);
            snprintf(path, sizeof path, "%s/%s-%s.pub", dir, mr_nats_role_name((mr_nats_role)role),
                     regions[i]);
            snprintf(text, sizeof text, "%s\n", pub);
            ck_assert_int_eq(mr_test_write_file(path, text), 0);
            pubs[i * MR_NATS_NROLES + (size_t)role] = pub;
        }
    }
}

char *mr_test_nats_json_locked(const char *url, const mr_test_pki *p, const char *keys_dir,
                               mr_nats_role role, const char *region)
{
    char *out = malloc(4096);
    snprintf(out, 4096,
             "{\"urls\":[\"%s\"],\"nkey_seed_file\":\"%s/%s-%s.nk\","
             "\"tls\":{\"ca\":\"%s\",\"cert\":\"%s\",\"key\":\"%s\"}}",
             url, keys_dir, mr_nats_role_name(role), region, p->ca, p->client_cert, p->client_key);
    return out;
}

/* Locked single servers (declared in mr_test.h; here so mr_test.c needs no keys or certificates).
 */
void mr_test_nats_start_locked(mr_test_nats *n, bool jetstream, const char *const *regions,
                               size_t nregions)
{
    memset(n, 0, sizeof *n);
    n->locked = true;
    n->jetstream = jetstream;
    n->port = mr_test_free_port();
    n->dir = mr_test_tmpdir("nats-locked");
    snprintf(n->url, sizeof n->url, "nats://127.0.0.1:%d", n->port);
    snprintf(n->log, sizeof n->log, "%s/nats.log", n->dir);
    snprintf(n->conf, sizeof n->conf, "%s/nats.conf", n->dir);
    n->pki = malloc(sizeof *n->pki);
    mr_test_pki_make(n->pki, n->dir, NULL, 0);
    char **pubs = calloc(nregions * MR_NATS_NROLES, sizeof *pubs);
    mr_test_nkeys_make(n->dir, regions, nregions, pubs);
    mr_buf b = MR_BUF_INIT;
    mr_buf_printf(&b,
                  "listen: \"127.0.0.1:%d\"\n"
                  "tls {\n  cert_file: \"%s\"\n  key_file: \"%s\"\n  ca_file: \"%s\"\n"
                  "  verify: true\n  timeout: 5\n}\n",
                  n->port, n->pki->cert, n->pki->key, n->pki->ca);
    mr_nats_accounts_render(&b, regions, nregions, (const char *const *)pubs);
    if (jetstream)
        mr_buf_printf(&b, "jetstream {\n  store_dir: \"%s\"\n}\n", n->dir);
    ck_assert_int_eq(mr_test_write_file(n->conf, b.data), 0);
    mr_buf_free(&b);
    for (size_t i = 0; i < nregions * MR_NATS_NROLES; i++)
        free(pubs[i]);
    free(pubs);
    mr_test_nats_restart(n); /* spawns with n->conf */
}

char *mr_test_nats_json(const mr_test_nats *n, const char *role, const char *region)
{
    if (!n->locked) {
        char *out = malloc(128);
        snprintf(out, 128, "[\"%s\"]", n->url);
        return out;
    }
    int r = mr_nats_role_find(role);
    ck_assert_msg(r >= 0, "no NATS role %s", role);
    return mr_test_nats_json_locked(n->url, n->pki, n->dir, (mr_nats_role)r, region);
}
