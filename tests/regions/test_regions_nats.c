/*
 * Integration test of the NATS supercluster rendered from the regions file.
 *
 * The test copies regions/local.json with every NATS port replaced by a free
 * one (addresses stay 127.1.0.10, 127.2.0.10, 127.3.0.10), renders the three
 * nats-server configs with the real `meridian-regions nats-conf`, starts the
 * three servers, polls /gatewayz until every gateway is connected both
 * ways, and then checks with the NATS C client what Meridian relies on:
 * a message published in eu-west reaches core subscribers in us-east and
 * ap-south, a JetStream stream placed in eu-west acknowledges a publish that
 * the other regions receive live, and a durable pull consumer in ap-south
 * fetches it. The second case does the same with TLS on routes, gateways and
 * clients (certificates generated with the openssl CLI) and with
 * user/password credentials, and checks that a connection without them is
 * refused. The third runs the servers locked as scripts/up runs them:
 * mutual TLS, the per-role nkey users of `meridian-regions nkeys` with the
 * permissions of docs/architecture.md, and a cluster password on routes and
 * gateways. It checks who is refused (no credentials, no or a foreign
 * client certificate, an untrusted server CA), what each role may not
 * publish (a health agent: any message; a relay: another region's), and
 * that every path Meridian uses works across the gateways with those
 * permissions: a relay's stream and JetStream publish, the control plane's
 * durable consumer, pulls and acks, history request and reply, and presence
 * snapshot replies between relays.
 *
 * Usage: test_regions_nats PATH-TO-meridian-regions
 */
#include "mr_nats_opts.h"
#include "mr_stream.h"
#include "mr_test.h"
#include "mr_test_pki.h"

#include <check.h>
#include <jansson.h>
#include <nats/nats.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MERIDIAN_SOURCE_DIR
#error "MERIDIAN_SOURCE_DIR must be defined by the build"
#endif

#define NREG 3

static const char *regions_bin;

typedef struct super {
    char *dir;
    char regions[600];
    char name[NREG][32];
    char host[NREG][32];
    int client_port[NREG];
    int monitor_port[NREG];
    pid_t pid[NREG];
    char log[NREG][700];
    bool secure; /* TLS everywhere and user/password (for routes and gateways too) */
    bool locked; /* TLS everywhere, mutual for clients, per-role nkeys, cluster password */
    mr_test_pki pki;
    char pwfile[700], keys[700];
} super;

static const char *user = "meridian";
static const char *password = "s3cret:/@word";

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Run a helper program to completion; the test fails unless it exits 0. */
static void run(char *const argv[], const char *log)
{
    pid_t pid = mr_test_spawn(argv, log);
    int st = mr_test_wait_exit(pid, 60000);
    if (st == -1) {
        mr_test_stop(pid, SIGKILL, 1000);
        ck_abort_msg("%s did not finish in 60 s; see %s", argv[0], log);
    }
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s %s failed (status %d); see %s",
                  argv[0], argv[1], st, log);
}

/* A copy of regions/local.json whose NATS ports are free ones. */
static void write_regions(super *s)
{
    json_error_t je;
    json_t *root = json_load_file(MERIDIAN_SOURCE_DIR "/regions/local.json", 0, &je);
    ck_assert_msg(root != NULL, "regions/local.json: %s", je.text);
    json_t *regs = json_object_get(root, "regions");
    ck_assert_int_eq(json_array_size(regs), NREG);
    for (size_t i = 0; i < NREG; i++) {
        json_t *g = json_array_get(regs, i);
        json_t *srv = json_array_get(json_object_get(json_object_get(g, "nats"), "servers"), 0);
        snprintf(s->name[i], sizeof s->name[i], "%s",
                 json_string_value(json_object_get(g, "name")));
        snprintf(s->host[i], sizeof s->host[i], "%s",
                 json_string_value(json_object_get(srv, "host")));
        s->client_port[i] = mr_test_free_port();
        s->monitor_port[i] = mr_test_free_port();
        json_object_set_new(srv, "client_port", json_integer(s->client_port[i]));
        json_object_set_new(srv, "cluster_port", json_integer(mr_test_free_port()));
        json_object_set_new(srv, "gateway_port", json_integer(mr_test_free_port()));
        json_object_set_new(srv, "monitor_port", json_integer(s->monitor_port[i]));
    }
    snprintf(s->regions, sizeof s->regions, "%s/regions.json", s->dir);
    ck_assert(json_dump_file(root, s->regions, JSON_INDENT(2)) == 0);
    json_decref(root);
}

/* The CA, a certificate for every server (IP SANs), the client certificates, a password. */
static void make_certs(super *s)
{
    const char *hosts[NREG] = {s->host[0], s->host[1], s->host[2]};
    mr_test_pki_make(&s->pki, s->dir, hosts, NREG);
    snprintf(s->pwfile, sizeof s->pwfile, "%s/password", s->dir);
    char text[128];
    snprintf(text, sizeof text, "%s\n", password);
    ck_assert(mr_test_write_file(s->pwfile, text) == 0);
}

static void render(super *s, int i, char *conf, size_t conflen)
{
    char store[700], log[700];
    snprintf(store, sizeof store, "%s/js-%s", s->dir, s->name[i]);
    snprintf(conf, conflen, "%s/%s.conf", s->dir, s->name[i]);
    snprintf(log, sizeof log, "%s/render.log", s->dir);
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)regions_bin;
    argv[n++] = "nats-conf";
    argv[n++] = s->regions;
    argv[n++] = "--region";
    argv[n++] = s->name[i];
    argv[n++] = "--store-dir";
    argv[n++] = store;
    argv[n++] = "--out";
    argv[n++] = conf;
    if (s->secure || s->locked) {
        argv[n++] = "--tls-cert";
        argv[n++] = s->pki.cert;
        argv[n++] = "--tls-key";
        argv[n++] = s->pki.key;
        argv[n++] = "--tls-ca";
        argv[n++] = s->pki.ca;
        argv[n++] = "--client-tls";
        argv[n++] = "--user";
        argv[n++] = (char *)user;
        argv[n++] = "--password-file";
        argv[n++] = s->pwfile;
    }
    if (s->locked) {
        argv[n++] = "--client-verify";
        argv[n++] = "--nkeys-dir";
        argv[n++] = s->keys;
    }
    argv[n] = NULL;
    run(argv, log);
}

/* Every server sees the other regions' gateways, outbound and inbound. */
static bool gateways_up(super *s, int i, char **why)
{
    char *body = NULL;
    int st = mr_test_http_get(s->host[i], s->monitor_port[i], "/gatewayz", &body);
    bool ok = false;
    if (st == 200) {
        json_t *j = json_loads(body, 0, NULL);
        json_t *out = json_object_get(j, "outbound_gateways");
        json_t *in = json_object_get(j, "inbound_gateways");
        ok = json_object_size(out) == NREG - 1 && json_object_size(in) == NREG - 1;
        /* With TLS, every gateway connection must report its TLS version. */
        if (ok && (s->secure || s->locked)) {
            const char *k;
            json_t *v;
            json_object_foreach(out, k, v)
            {
                json_t *conn = json_object_get(v, "connection");
                if (!json_is_string(json_object_get(conn, "tls_version")))
                    ok = false;
            }
        }
        json_decref(j);
    }
    free(*why);
    *why = body ? body : strdup("(no answer)");
    return ok;
}

typedef enum { PLAIN, SECURE, LOCKED } mode;

static void super_start(super *s, mode m)
{
    memset(s, 0, sizeof *s);
    s->secure = m == SECURE;
    s->locked = m == LOCKED;
    s->dir = mr_test_tmpdir(m == PLAIN ? "regions-nats" : "regions-nats-tls");
    write_regions(s);
    if (m != PLAIN)
        make_certs(s);
    if (m == LOCKED) {
        /* The keys come from the real CLI, as scripts/up makes them. */
        snprintf(s->keys, sizeof s->keys, "%s/nkeys", s->dir);
        char log[700];
        snprintf(log, sizeof log, "%s/nkeys.log", s->dir);
        char *argv[] = {(char *)regions_bin, "nkeys", s->regions, "--dir", s->keys, NULL};
        run(argv, log);
    }
    for (int i = 0; i < NREG; i++) {
        char conf[700];
        render(s, i, conf, sizeof conf);
        snprintf(s->log[i], sizeof s->log[i], "%s/%s.log", s->dir, s->name[i]);
        char *argv[] = {"nats-server", "-c", conf, NULL};
        s->pid[i] = mr_test_spawn(argv, s->log[i]);
    }
    for (int i = 0; i < NREG; i++)
        ck_assert_msg(mr_test_wait_port(s->host[i], s->client_port[i], 15000) == 0,
                      "nats-server %s did not listen on %s:%d; see %s", s->name[i], s->host[i],
                      s->client_port[i], s->log[i]);
    char *why = NULL;
    int64_t deadline = mr_test_now_ms() + 30000;
    for (int i = 0; i < NREG; i++) {
        while (!gateways_up(s, i, &why)) {
            ck_assert_msg(mr_test_alive(s->pid[i]), "nats-server %s exited; see %s", s->name[i],
                          s->log[i]);
            ck_assert_msg(mr_test_now_ms() < deadline,
                          "gateways of %s not all connected within 30 s: %s (see %s)", s->name[i],
                          why, s->log[i]);
            nap_ms(50);
        }
    }
    free(why);
}

/* Stop the servers; the directory is removed only here, so a failed test leaves it to read. */
static void super_stop(super *s)
{
    for (int i = 0; i < NREG; i++)
        if (s->pid[i] > 0)
            mr_test_stop(s->pid[i], SIGTERM, 5000);
    char log[700];
    snprintf(log, sizeof log, "%s.rm.log", s->dir);
    char *argv[] = {"rm", "-rf", s->dir, NULL};
    run(argv, log);
    unlink(log);
    free(s->dir);
}

/* Connect to region i; `auth` false omits the credentials (and, with TLS, still uses TLS). */
static natsStatus connect_to(super *s, int i, bool auth, bool tls, natsConnection **nc)
{
    natsOptions *o = NULL;
    ck_assert_int_eq(natsOptions_Create(&o), NATS_OK);
    char url[128];
    snprintf(url, sizeof url, "nats://%s:%d", s->host[i], s->client_port[i]);
    natsOptions_SetURL(o, url);
    natsOptions_SetTimeout(o, 5000);
    natsOptions_SetAllowReconnect(o, false);
    if (tls) {
        ck_assert_int_eq(natsOptions_SetSecure(o, true), NATS_OK);
        ck_assert_int_eq(natsOptions_LoadCATrustedCertificates(o, s->pki.ca), NATS_OK);
    }
    if (auth && s->secure)
        natsOptions_SetUserInfo(o, user, password);
    natsStatus st = natsConnection_Connect(nc, o);
    natsOptions_Destroy(o);
    return st;
}

static natsConnection *connect_ok(super *s, int i)
{
    natsConnection *nc = NULL;
    natsStatus st = connect_to(s, i, true, s->secure, &nc);
    ck_assert_msg(st == NATS_OK, "connect to %s: %s (%s)", s->name[i], natsStatus_GetText(st),
                  nats_GetLastError(NULL));
    return nc;
}

/*
 * Gateway interest travels asynchronously: a subscription made in region B
 * is known to region A a moment later. Publish probes on a subject the
 * subscribers match until each of them has seen one (bounded by a deadline),
 * so the real messages after that need no luck.
 */
static void await_interest(natsConnection *pub, natsSubscription **subs, int nsubs,
                           const char *probe_subject)
{
    bool seen[NREG] = {false};
    int64_t deadline = mr_test_now_ms() + 20000;
    int got = 0;
    while (got < nsubs) {
        ck_assert_msg(mr_test_now_ms() < deadline, "gateway interest did not propagate in 20 s");
        ck_assert_int_eq(natsConnection_PublishString(pub, probe_subject, "probe"), NATS_OK);
        ck_assert_int_eq(natsConnection_FlushTimeout(pub, 5000), NATS_OK);
        for (int k = 0; k < nsubs; k++) {
            natsMsg *m = NULL;
            if (!seen[k] && natsSubscription_NextMsg(&m, subs[k], 100) == NATS_OK) {
                seen[k] = true;
                got++;
                natsMsg_Destroy(m);
            }
        }
    }
    /* Drain any probes still in flight so the next reads see real messages. */
    for (int k = 0; k < nsubs; k++) {
        natsMsg *m = NULL;
        for (int n = 0; n < 10000 && natsSubscription_NextMsg(&m, subs[k], 200) == NATS_OK; n++)
            natsMsg_Destroy(m);
    }
}

/* Core publish in eu-west, received in order in us-east and ap-south. */
static void check_core(super *s)
{
    natsConnection *nc[NREG];
    for (int i = 0; i < NREG; i++)
        nc[i] = connect_ok(s, i);
    natsSubscription *subs[2];
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(natsConnection_SubscribeSync(&subs[k], nc[k + 1], "core.>"), NATS_OK);
        ck_assert_int_eq(natsConnection_FlushTimeout(nc[k + 1], 5000), NATS_OK);
    }
    await_interest(nc[0], subs, 2, "core.probe");
    enum { N = 50 };
    for (int m = 0; m < N; m++) {
        char data[32];
        snprintf(data, sizeof data, "m%d", m);
        ck_assert_int_eq(natsConnection_PublishString(nc[0], "core.room", data), NATS_OK);
    }
    ck_assert_int_eq(natsConnection_FlushTimeout(nc[0], 5000), NATS_OK);
    for (int k = 0; k < 2; k++) {
        for (int m = 0; m < N; m++) {
            natsMsg *msg = NULL;
            natsStatus st = natsSubscription_NextMsg(&msg, subs[k], 10000);
            ck_assert_msg(st == NATS_OK, "%s: message %d of %d not received: %s", s->name[k + 1], m,
                          N, natsStatus_GetText(st));
            char want[32];
            snprintf(want, sizeof want, "m%d", m);
            ck_assert_str_eq(natsMsg_GetSubject(msg), "core.room");
            ck_assert_int_eq(natsMsg_GetDataLength(msg), (int)strlen(want));
            ck_assert(memcmp(natsMsg_GetData(msg), want, strlen(want)) == 0);
            natsMsg_Destroy(msg);
        }
        natsSubscription_Destroy(subs[k]);
    }
    for (int i = 0; i < NREG; i++)
        natsConnection_Destroy(nc[i]);
}

/*
 * The message path of DESIGN.md: a stream per region placed in that region's
 * cluster, the fast path through core subscriptions in other regions, and a
 * durable pull consumer reading the stream from another region.
 */
static void check_jetstream(super *s)
{
    natsConnection *nc[NREG];
    for (int i = 0; i < NREG; i++)
        nc[i] = connect_ok(s, i);
    jsCtx *js = NULL;
    ck_assert_int_eq(natsConnection_JetStream(&js, nc[0], NULL), NATS_OK);

    /* The JetStream meta leader is elected after the gateways connect: retry until it answers. */
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    const char *subjects[] = {"meridian.msg.eu-west.>"};
    cfg.Name = "MERIDIAN_EU_WEST";
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    jsPlacement placement;
    jsPlacement_Init(&placement);
    placement.Cluster = "eu-west";
    cfg.Placement = &placement;
    int64_t deadline = mr_test_now_ms() + 30000;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus st;
    while ((st = js_AddStream(&si, js, &cfg, NULL, &jerr)) != NATS_OK) {
        ck_assert_msg(mr_test_now_ms() < deadline, "stream not created in 30 s: %s (%d) %s",
                      natsStatus_GetText(st), (int)jerr, nats_GetLastError(NULL));
        nap_ms(200);
    }
    ck_assert_ptr_nonnull(si->Cluster);
    ck_assert_str_eq(si->Cluster->Name, "eu-west");
    jsStreamInfo_Destroy(si);

    natsSubscription *subs[2];
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(natsConnection_SubscribeSync(&subs[k], nc[k + 1], "meridian.msg.*.room-1"),
                         NATS_OK);
        ck_assert_int_eq(natsConnection_FlushTimeout(nc[k + 1], 5000), NATS_OK);
    }
    /* Probes on a subject the subscribers match but the stream does not capture. */
    await_interest(nc[0], subs, 2, "meridian.msg.probe.room-1");

    const char *body = "{\"text\":\"hello from eu-west\"}";
    jsPubAck *pa = NULL;
    st = js_Publish(&pa, js, "meridian.msg.eu-west.room-1", body, (int)strlen(body), NULL, &jerr);
    ck_assert_msg(st == NATS_OK, "js publish: %s (%d)", natsStatus_GetText(st), (int)jerr);
    ck_assert_str_eq(pa->Stream, "MERIDIAN_EU_WEST");
    ck_assert_uint_eq(pa->Sequence, 1);
    jsPubAck_Destroy(pa);
    for (int k = 0; k < 2; k++) {
        natsMsg *m = NULL;
        st = natsSubscription_NextMsg(&m, subs[k], 10000);
        ck_assert_msg(st == NATS_OK, "%s did not get the JetStream publish live: %s",
                      s->name[k + 1], natsStatus_GetText(st));
        ck_assert_str_eq(natsMsg_GetSubject(m), "meridian.msg.eu-west.room-1");
        ck_assert_int_eq(natsMsg_GetDataLength(m), (int)strlen(body));
        natsMsg_Destroy(m);
        natsSubscription_Destroy(subs[k]);
    }

    /* A durable pull consumer created and fetched from ap-south. */
    jsCtx *js3 = NULL;
    ck_assert_int_eq(natsConnection_JetStream(&js3, nc[2], NULL), NATS_OK);
    natsSubscription *pull = NULL;
    deadline = mr_test_now_ms() + 20000;
    while ((st = js_PullSubscribe(&pull, js3, "meridian.msg.eu-west.>", "control-test", NULL, NULL,
                                  &jerr)) != NATS_OK) {
        ck_assert_msg(mr_test_now_ms() < deadline, "pull subscribe from ap-south: %s (%d) %s",
                      natsStatus_GetText(st), (int)jerr, nats_GetLastError(NULL));
        nap_ms(200);
    }
    natsMsgList list = {0};
    st = natsSubscription_Fetch(&list, pull, 1, 10000, &jerr);
    ck_assert_msg(st == NATS_OK, "fetch from ap-south: %s (%d)", natsStatus_GetText(st), (int)jerr);
    ck_assert_int_eq(list.Count, 1);
    ck_assert_int_eq(natsMsg_GetDataLength(list.Msgs[0]), (int)strlen(body));
    ck_assert(memcmp(natsMsg_GetData(list.Msgs[0]), body, strlen(body)) == 0);
    ck_assert_int_eq(natsMsg_Ack(list.Msgs[0], NULL), NATS_OK);
    natsMsgList_Destroy(&list);
    natsSubscription_Destroy(pull);
    jsCtx_Destroy(js3);
    jsCtx_Destroy(js);
    for (int i = 0; i < NREG; i++)
        natsConnection_Destroy(nc[i]);
}

/* ---- locked: per-role users, mutual TLS ---- */

enum { EU, US, AP };

/* The daemons' own `nats` section for `role` of region `who`, connecting to region i. */
static void conf_as(super *s, mr_nats_conf *c, int i, const char *role, int who)
{
    char url[128], seed[900];
    snprintf(url, sizeof url, "nats://%s:%d", s->host[i], s->client_port[i]);
    mr_nats_conf_init(c, url);
    snprintf(seed, sizeof seed, "%s/%s-%s.nk", s->keys, role, s->name[who]);
    c->nkey_seed_file = strdup(seed);
    c->tls = true;
    c->tls_ca = strdup(s->pki.ca);
    c->tls_cert = strdup(s->pki.client_cert);
    c->tls_key = strdup(s->pki.client_key);
    char err[600];
    ck_assert_msg(mr_nats_conf_check(c, "nats", err, sizeof err) == 0, "%s", err);
}

static natsConnection *connect_as(super *s, int i, const char *role, int who)
{
    mr_nats_conf c;
    conf_as(s, &c, i, role, who);
    natsOptions *o = NULL;
    char err[600];
    ck_assert_int_eq(natsOptions_Create(&o), NATS_OK);
    ck_assert_msg(mr_nats_conf_apply(&c, o, err, sizeof err) == 0, "%s", err);
    natsOptions_SetTimeout(o, 5000);
    natsOptions_SetAllowReconnect(o, false);
    natsConnection *nc = NULL;
    natsStatus st = natsConnection_Connect(&nc, o);
    ck_assert_msg(st == NATS_OK, "%s of %s to %s: %s (%s)", role, s->name[who], s->name[i],
                  natsStatus_GetText(st), nats_GetLastError(NULL));
    natsOptions_Destroy(o);
    mr_nats_conf_free(&c);
    return nc;
}

/* Who is refused, and what each refusal is reported as (mr_nats_probe, as the daemons log it). */
static void check_refusals(super *s)
{
    mr_nats_conf c;
    char why[600];
    conf_as(s, &c, US, "relay", US);
    ck_assert_int_eq(mr_nats_probe(&c, 5000, why, sizeof why), MR_NATS_UP);

    free(c.nkey_seed_file);
    c.nkey_seed_file = NULL; /* TLS with a client certificate, but no credentials */
    ck_assert_int_eq(mr_nats_probe(&c, 5000, why, sizeof why), MR_NATS_AUTH);
    ck_assert_msg(strstr(why, "Authorization Violation"), "%s", why);
    mr_nats_conf_free(&c);

    conf_as(s, &c, US, "relay", US);
    free(c.tls_cert);
    free(c.tls_key);
    c.tls_cert = c.tls_key = NULL; /* no client certificate */
    ck_assert_int_eq(mr_nats_probe(&c, 5000, why, sizeof why), MR_NATS_TLS);
    c.tls_cert = strdup(s->pki.other_cert); /* one the servers' CA did not sign */
    c.tls_key = strdup(s->pki.other_key);
    ck_assert_int_eq(mr_nats_probe(&c, 5000, why, sizeof why), MR_NATS_TLS);
    mr_nats_conf_free(&c);

    conf_as(s, &c, US, "relay", US);
    free(c.tls_ca);
    c.tls_ca = strdup(s->pki.other_ca); /* the servers' certificates are not trusted */
    ck_assert_int_eq(mr_nats_probe(&c, 5000, why, sizeof why), MR_NATS_TLS);
    ck_assert_msg(strstr(why, "unable to get local issuer certificate"), "%s", why);
    c.tls = false; /* and plain text is not spoken at all */
    ck_assert_int_eq(mr_nats_probe(&c, 5000, why, sizeof why), MR_NATS_TLS);
    mr_nats_conf_free(&c);
}

/* Retry `pub` publishing on `subject` until `sub` has seen one; then drain `sub`. */
static void await_delivery(natsConnection *pub, const char *subject, natsSubscription *sub)
{
    int64_t deadline = mr_test_now_ms() + 20000;
    for (;;) {
        ck_assert_msg(mr_test_now_ms() < deadline, "%s never delivered in 20 s", subject);
        ck_assert_int_eq(natsConnection_PublishString(pub, subject, "probe"), NATS_OK);
        ck_assert_int_eq(natsConnection_FlushTimeout(pub, 5000), NATS_OK);
        natsMsg *m = NULL;
        if (natsSubscription_NextMsg(&m, sub, 100) == NATS_OK) {
            natsMsg_Destroy(m);
            break;
        }
    }
    natsMsg *m = NULL;
    while (natsSubscription_NextMsg(&m, sub, 300) == NATS_OK)
        natsMsg_Destroy(m);
}

/*
 * `forger` publishes on `subject` and is told the server dropped it; then
 * `legit` (on the same server) publishes a marker, and the watcher in
 * another region sees the marker first: the forged message went nowhere.
 */
static void assert_dropped(natsConnection *forger, const char *subject, natsConnection *legit,
                           const char *marker_subject, natsSubscription *watcher)
{
    ck_assert_int_eq(natsConnection_PublishString(forger, subject, "forged"), NATS_OK);
    ck_assert_int_eq(natsConnection_FlushTimeout(forger, 5000), NATS_OK);
    const char *text = NULL;
    ck_assert_int_eq(natsConnection_GetLastError(forger, &text), NATS_NOT_PERMITTED);
    ck_assert_msg(strstr(text, "Permissions Violation for Publish to") && strstr(text, subject),
                  "%s", text);
    ck_assert_int_eq(natsConnection_PublishString(legit, marker_subject, "marker"), NATS_OK);
    ck_assert_int_eq(natsConnection_FlushTimeout(legit, 5000), NATS_OK);
    natsMsg *m = NULL;
    ck_assert_int_eq(natsSubscription_NextMsg(&m, watcher, 10000), NATS_OK);
    ck_assert_str_eq(natsMsg_GetSubject(m), marker_subject);
    ck_assert_str_eq(natsMsg_GetData(m), "marker");
    natsMsg_Destroy(m);
}

static void check_publish_permissions(super *s)
{
    natsConnection *relay_eu = connect_as(s, EU, "relay", EU);
    natsConnection *relay_us = connect_as(s, US, "relay", US);
    natsConnection *hc_eu = connect_as(s, EU, "healthcheck", EU);
    natsSubscription *watcher = NULL;
    ck_assert_int_eq(natsConnection_SubscribeSync(&watcher, relay_us, "meridian.msg.*.*"), NATS_OK);
    ck_assert_int_eq(natsConnection_FlushTimeout(relay_us, 5000), NATS_OK);
    await_delivery(relay_eu, "meridian.msg.eu-west.probe", watcher);
    /* A health agent publishes no message, in its own region or any other. */
    assert_dropped(hc_eu, "meridian.msg.eu-west.general", relay_eu, "meridian.msg.eu-west.general",
                   watcher);
    natsConnection_Destroy(hc_eu);
    hc_eu = connect_as(s, EU, "healthcheck", EU);
    assert_dropped(hc_eu, "meridian.msg.us-east.general", relay_eu, "meridian.msg.eu-west.m2",
                   watcher);
    /* An eu-west relay publishes eu-west's messages only, and no commit. */
    natsConnection *relay_eu2 = connect_as(s, EU, "relay", EU);
    assert_dropped(relay_eu2, "meridian.msg.us-east.general", relay_eu, "meridian.msg.eu-west.m3",
                   watcher);
    natsConnection_Destroy(relay_eu2);
    relay_eu2 = connect_as(s, EU, "relay", EU);
    assert_dropped(relay_eu2, "meridian.commit.general", relay_eu, "meridian.msg.eu-west.m4",
                   watcher);
    /* Signals (core NATS, no stream): a relay's own region's cross the gateways, another's not. */
    natsSubscription *sig_watcher = NULL;
    ck_assert_int_eq(natsConnection_SubscribeSync(&sig_watcher, relay_us, "meridian.sig.*.*"),
                     NATS_OK);
    ck_assert_int_eq(natsConnection_FlushTimeout(relay_us, 5000), NATS_OK);
    await_delivery(relay_eu, "meridian.sig.eu-west.probe", sig_watcher);
    natsConnection_Destroy(relay_eu2);
    relay_eu2 = connect_as(s, EU, "relay", EU);
    assert_dropped(relay_eu2, "meridian.sig.us-east.general", relay_eu, "meridian.sig.eu-west.s1",
                   sig_watcher);
    natsSubscription_Destroy(sig_watcher);
    /* Nor may a health agent even listen to them. */
    natsSubscription *spy = NULL;
    natsConnection *hc_us = connect_as(s, US, "healthcheck", US);
    natsConnection_SubscribeSync(&spy, hc_us, "meridian.msg.>");
    natsConnection_FlushTimeout(hc_us, 5000);
    const char *text = NULL;
    ck_assert_int_eq(natsConnection_GetLastError(hc_us, &text), NATS_NOT_PERMITTED);
    ck_assert_msg(strstr(text, "Permissions Violation for Subscription to"), "%s", text);
    natsSubscription_Destroy(spy);
    natsConnection_Destroy(hc_us);
    natsSubscription_Destroy(watcher);
    natsConnection_Destroy(relay_eu2);
    natsConnection_Destroy(hc_eu);
    natsConnection_Destroy(relay_us);
    natsConnection_Destroy(relay_eu);
}

static void on_history(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    natsConnection_PublishString(nc, natsMsg_GetReply(msg), "{\"messages\":[]}");
    natsMsg_Destroy(msg);
}

static void on_presence(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    if (natsMsg_GetReply(msg))
        natsConnection_PublishString(nc, natsMsg_GetReply(msg), "{\"node\":\"us-east-1\"}");
    natsMsg_Destroy(msg);
}

/* Every path Meridian uses, each by the role that uses it, across the gateways. */
static void check_meridian_paths(super *s)
{
    natsConnection *relay_eu = connect_as(s, EU, "relay", EU);
    natsConnection *relay_us = connect_as(s, US, "relay", US);
    natsConnection *control_ap = connect_as(s, AP, "control", AP);
    jsCtx *js = NULL, *cjs = NULL;
    ck_assert_int_eq(natsConnection_JetStream(&js, relay_eu, NULL), NATS_OK);
    ck_assert_int_eq(natsConnection_JetStream(&cjs, control_ap, NULL), NATS_OK);

    /* The relay creates its region's stream in its region (meta leader: retry). */
    mr_stream_config sc;
    mr_stream_config_init(&sc);
    sc.placement = "eu-west";
    char err[512];
    int64_t deadline = mr_test_now_ms() + 30000;
    while (mr_stream_ensure(js, "eu-west", &sc, err, sizeof err) != 0) {
        ck_assert_msg(mr_test_now_ms() < deadline, "stream not created in 30 s: %s", err);
        nap_ms(200);
    }
    jsPubAck *pa = NULL;
    jsErrCode jerr = 0;
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = "id-1";
    const char *body = "{\"type\":\"message\"}";
    ck_assert_int_eq(
        js_Publish(&pa, js, "meridian.msg.eu-west.general", body, (int)strlen(body), &po, &jerr),
        NATS_OK);
    ck_assert_str_eq(pa->Stream, "MERIDIAN_EU_WEST");
    jsPubAck_Destroy(pa);

    /* The control plane in ap-south: its durable consumer, a pull, an ack. */
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = MR_STREAM_CONSUMER;
    cc.AckPolicy = js_AckExplicit;
    jsConsumerInfo *ci = NULL;
    ck_assert_int_eq(js_AddConsumer(&ci, cjs, "MERIDIAN_EU_WEST", &cc, NULL, &jerr), NATS_OK);
    jsConsumerInfo_Destroy(ci);
    natsSubscription *pulls = NULL;
    ck_assert_int_eq(natsConnection_SubscribeSync(&pulls, control_ap, "_INBOX.pulls-ap"), NATS_OK);
    ck_assert_int_eq(natsConnection_PublishRequestString(
                         control_ap, "$JS.API.CONSUMER.MSG.NEXT.MERIDIAN_EU_WEST.meridian-control",
                         "_INBOX.pulls-ap", "{\"batch\":1,\"expires\":5000000000}"),
                     NATS_OK);
    natsMsg *m = NULL;
    ck_assert_int_eq(natsSubscription_NextMsg(&m, pulls, 10000), NATS_OK);
    ck_assert_str_eq(natsMsg_GetData(m), body);
    ck_assert(strstr(natsMsg_GetReply(m), "$JS.ACK.MERIDIAN_EU_WEST.meridian-control."));
    ck_assert_int_eq(natsConnection_PublishString(control_ap, natsMsg_GetReply(m), "+ACK"),
                     NATS_OK);
    ck_assert_int_eq(natsConnection_FlushTimeout(control_ap, 5000), NATS_OK);
    natsMsg_Destroy(m);
    const char *text = NULL;
    ck_assert_msg(natsConnection_GetLastError(control_ap, &text) != NATS_NOT_PERMITTED, "%s", text);
    deadline = mr_test_now_ms() + 10000;
    for (;;) {
        ci = NULL;
        ck_assert_int_eq(
            js_GetConsumerInfo(&ci, cjs, "MERIDIAN_EU_WEST", MR_STREAM_CONSUMER, NULL, &jerr),
            NATS_OK);
        bool acked = ci->NumAckPending == 0 && ci->AckFloor.Stream == 1;
        jsConsumerInfo_Destroy(ci);
        if (acked)
            break;
        ck_assert_msg(mr_test_now_ms() < deadline, "the control plane's ack never landed");
        nap_ms(50);
    }
    natsSubscription_Destroy(pulls);

    /* History: a relay in eu-west asks, the control plane in ap-south answers. */
    natsSubscription *hist = NULL;
    ck_assert_int_eq(natsConnection_QueueSubscribe(&hist, control_ap, "meridian.history.*",
                                                   "meridian-control", on_history, NULL),
                     NATS_OK);
    ck_assert_int_eq(natsConnection_FlushTimeout(control_ap, 5000), NATS_OK);
    natsMsg *reply = NULL;
    deadline = mr_test_now_ms() + 20000;
    while (natsConnection_RequestString(&reply, relay_eu, "meridian.history.general", "{}", 500) !=
           NATS_OK)
        ck_assert_msg(mr_test_now_ms() < deadline, "no history reply across the gateways");
    ck_assert_str_eq(natsMsg_GetData(reply), "{\"messages\":[]}");
    natsMsg_Destroy(reply);

    /* Presence: a us-east relay answers an eu-west relay's snapshot request on its inbox. */
    natsSubscription *pres = NULL, *inbox = NULL;
    ck_assert_int_eq(
        natsConnection_Subscribe(&pres, relay_us, "meridian.presence.*", on_presence, NULL),
        NATS_OK);
    ck_assert_int_eq(natsConnection_FlushTimeout(relay_us, 5000), NATS_OK);
    ck_assert_int_eq(natsConnection_SubscribeSync(&inbox, relay_eu, "_INBOX.relay0123.>"), NATS_OK);
    ck_assert_int_eq(natsConnection_FlushTimeout(relay_eu, 5000), NATS_OK);
    deadline = mr_test_now_ms() + 20000;
    for (;;) {
        ck_assert_msg(mr_test_now_ms() < deadline, "no presence snapshot across the gateways");
        natsConnection_PublishRequestString(relay_eu, "meridian.presence.general",
                                            "_INBOX.relay0123.p.general", "{}");
        if (natsSubscription_NextMsg(&m, inbox, 500) == NATS_OK)
            break;
    }
    ck_assert_str_eq(natsMsg_GetData(m), "{\"node\":\"us-east-1\"}");
    natsMsg_Destroy(m);
    ck_assert_int_eq(natsConnection_GetLastError(relay_us, &text), NATS_OK);
    /* ...but it cannot pass anything else off as a reply: history answers are the control plane's.
     */
    ck_assert_int_eq(natsConnection_PublishString(relay_us, "_INBOX.relay0123.tok1", "{}"),
                     NATS_OK);
    ck_assert_int_eq(natsConnection_FlushTimeout(relay_us, 5000), NATS_OK);
    ck_assert_int_eq(natsConnection_GetLastError(relay_us, &text), NATS_NOT_PERMITTED);

    /*
     * Presence webhooks: the ap-south control plane reads an eu-west relay's
     * presence deltas and heartbeats across the gateways, and may not
     * publish presence itself.
     */
    natsSubscription *cpres = NULL, *chb = NULL;
    ck_assert_int_eq(natsConnection_SubscribeSync(&cpres, control_ap, "meridian.presence.*"),
                     NATS_OK);
    ck_assert_int_eq(natsConnection_SubscribeSync(&chb, control_ap, "meridian.relay.hb"), NATS_OK);
    ck_assert_int_eq(natsConnection_FlushTimeout(control_ap, 5000), NATS_OK);
    const char *delta = "{\"op\":\"set\",\"node\":\"eu-west/r1/0123456789ab\",\"user\":\"a\","
                        "\"sessions\":1,\"seq\":1}";
    deadline = mr_test_now_ms() + 20000;
    for (;;) {
        ck_assert_msg(mr_test_now_ms() < deadline, "no presence delta reached the control plane");
        natsConnection_PublishString(relay_eu, "meridian.presence.general", delta);
        if (natsSubscription_NextMsg(&m, cpres, 500) == NATS_OK)
            break;
    }
    ck_assert_str_eq(natsMsg_GetData(m), delta);
    natsMsg_Destroy(m);
    ck_assert_int_eq(
        natsConnection_PublishString(relay_eu, "meridian.relay.hb", "{\"node\":\"eu-west/r1\"}"),
        NATS_OK);
    ck_assert_int_eq(natsSubscription_NextMsg(&m, chb, 10000), NATS_OK);
    natsMsg_Destroy(m);
    ck_assert_int_eq(natsConnection_GetLastError(control_ap, &text), NATS_OK);
    ck_assert_int_eq(natsConnection_PublishString(control_ap, "meridian.presence.general", delta),
                     NATS_OK);
    ck_assert_int_eq(natsConnection_FlushTimeout(control_ap, 5000), NATS_OK);
    ck_assert_int_eq(natsConnection_GetLastError(control_ap, &text), NATS_NOT_PERMITTED);
    natsSubscription_Destroy(chb);
    natsSubscription_Destroy(cpres);

    natsSubscription_Destroy(inbox);
    natsSubscription_Destroy(pres);
    natsSubscription_Destroy(hist);
    jsCtx_Destroy(cjs);
    jsCtx_Destroy(js);
    natsConnection_Destroy(control_ap);
    natsConnection_Destroy(relay_us);
    natsConnection_Destroy(relay_eu);
}

START_TEST(test_locked_supercluster)
{
    super s;
    super_start(&s, LOCKED);
    check_refusals(&s);
    check_publish_permissions(&s);
    check_meridian_paths(&s);
    super_stop(&s);
}
END_TEST

START_TEST(test_plain_supercluster)
{
    super s;
    super_start(&s, PLAIN);
    check_core(&s);
    check_jetstream(&s);
    super_stop(&s);
}
END_TEST

START_TEST(test_tls_credentials_supercluster)
{
    super s;
    super_start(&s, SECURE);
    /* Without credentials, and without TLS, the servers refuse the client. */
    natsConnection *nc = NULL;
    ck_assert_int_ne(connect_to(&s, 1, false, true, &nc), NATS_OK);
    nc = NULL;
    ck_assert_int_ne(connect_to(&s, 1, true, false, &nc), NATS_OK);
    check_core(&s);
    check_jetstream(&s);
    super_stop(&s);
}
END_TEST

int main(int argc, char **argv)
{
    regions_bin = argc > 1 ? argv[1] : getenv("MERIDIAN_REGIONS_BIN");
    if (!regions_bin) {
        fprintf(stderr, "usage: %s PATH-TO-meridian-regions\n", argv[0]);
        return EXIT_FAILURE;
    }
    Suite *s = suite_create("regions_nats");
    TCase *tc = tcase_create("supercluster");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, test_plain_supercluster);
    tcase_add_test(tc, test_tls_credentials_supercluster);
    tcase_add_test(tc, test_locked_supercluster);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
