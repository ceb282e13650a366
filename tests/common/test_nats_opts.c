/*
 * The shared NATS pieces: nkey encoding (against vectors from nats-server's
 * own tests), the daemons' `nats` section (every form, every refusal, no
 * secret in any message), URL redaction, and the permission table read the
 * way nats-server matches subjects.
 */
#include "test_suites.h"
#include "mr_nats_opts.h"
#include "mr_nats_perms.h"
#include "mr_nkey.h"
#include "mr_test.h"

#include <check.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* nats-server v2.9.10 server/accounts_test.go: two seeds and their users' public keys. */
static const char *const seeds[2] = {"SUAPM67TC4RHQLKBX55NIQXSMATZDOZK6FNEOSS36CAYA7F7TY66LP4BOM",
                                     "SUAIS5JPX4X4GJ7EIIJEQ56DH2GWPYJRPWN5XJEDENJOZHCBLI7SEPUQDE"};
static const char *const pubs[2] = {"UCNGL4W5QX66CFX6A6DCBVDH5VOHMI7B2UZZU7TXAUQQSI2JPHULCKBR",
                                    "UDPGQVFIWZ7Q5UH4I5E6DBCZULQS6VTVBG6CYBD7JV3G3N2GMQOMNAUH"};

START_TEST(nkey_vectors)
{
    char pub[MR_NKEY_PUBLIC_LEN + 1];
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(mr_nkey_public_from_seed(seeds[i], pub), 0);
        ck_assert_str_eq(pub, pubs[i]);
        ck_assert(mr_nkey_public_valid(pubs[i]));
    }
    /* One character changed breaks the checksum; a public key is not a seed. */
    char bad[MR_NKEY_SEED_LEN + 1];
    snprintf(bad, sizeof bad, "%s", seeds[0]);
    bad[20] = bad[20] == 'A' ? 'B' : 'A';
    ck_assert_int_eq(mr_nkey_public_from_seed(bad, pub), -1);
    ck_assert_int_eq(mr_nkey_public_from_seed(pubs[0], pub), -1);
    ck_assert_int_eq(mr_nkey_public_from_seed("SU", pub), -1);
    char badpub[MR_NKEY_PUBLIC_LEN + 1];
    snprintf(badpub, sizeof badpub, "%s", pubs[1]);
    badpub[30] = badpub[30] == 'Q' ? 'R' : 'Q';
    ck_assert(!mr_nkey_public_valid(badpub));
    ck_assert(!mr_nkey_public_valid(seeds[0]));
    ck_assert(!mr_nkey_public_valid("U"));
}
END_TEST

START_TEST(nkey_generate)
{
    char seed[MR_NKEY_SEED_LEN + 1], pub[MR_NKEY_PUBLIC_LEN + 1], again[MR_NKEY_PUBLIC_LEN + 1];
    char seed2[MR_NKEY_SEED_LEN + 1], pub2[MR_NKEY_PUBLIC_LEN + 1];
    ck_assert_int_eq(mr_nkey_generate(seed, pub), 0);
    ck_assert_int_eq(mr_nkey_generate(seed2, pub2), 0);
    ck_assert_int_eq((int)strlen(seed), MR_NKEY_SEED_LEN);
    ck_assert(strncmp(seed, "SU", 2) == 0 && pub[0] == 'U');
    ck_assert_str_ne(seed, seed2);
    ck_assert_int_eq(mr_nkey_public_from_seed(seed, again), 0);
    ck_assert_str_eq(again, pub);
    ck_assert(mr_nkey_public_valid(pub));
}
END_TEST

static char *dir;

static void setup(void)
{
    dir = mr_test_tmpdir("natsopts");
}

static void teardown(void)
{
    free(dir);
}

static char *file(const char *name, const char *text)
{
    char *p = malloc(700);
    snprintf(p, 700, "%s/%s", dir, name);
    ck_assert_int_eq(mr_test_write_file(p, text), 0);
    return p;
}

START_TEST(nkey_seed_file)
{
    char pub[MR_NKEY_PUBLIC_LEN + 1], err[600];
    char text[512];
    /* The decorated form NATS tools write. */
    snprintf(text, sizeof text,
             "-----BEGIN USER NKEY SEED-----\n%s\n------END USER NKEY SEED------\n", seeds[1]);
    char *p = file("decorated.nk", text);
    ck_assert_msg(mr_nkey_read_seed_file(p, pub, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(pub, pubs[1]);
    free(p);
    /* Trailing characters would make libnats sign with garbage: refused, seed not quoted. */
    snprintf(text, sizeof text, "%s \n", seeds[0]);
    p = file("trailing.nk", text);
    ck_assert_int_eq(mr_nkey_read_seed_file(p, pub, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "not a valid user seed") && !strstr(err, seeds[0]), "%s", err);
    free(p);
    p = file("empty.nk", "# nothing here\n");
    ck_assert_int_eq(mr_nkey_read_seed_file(p, pub, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "holds no NATS user seed"), "%s", err);
    free(p);
    ck_assert_int_eq(mr_nkey_read_seed_file("/nonexistent/x.nk", pub, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "cannot read /nonexistent/x.nk"), "%s", err);
}
END_TEST

/* The nonce's signature, as the daemons send it: one nats-server verifies
 * (Ed25519 over the nonce with the public key of the seed), and for a
 * signature starting with a zero byte an error instead, since libnats 3.4
 * would send the CONNECT without any signature (tests/regions
 * every_nkey_connect_authenticates shows what that did). */
START_TEST(nonce_signature)
{
    char *p = file("sign.nk", seeds[0]);
    char pub[MR_NKEY_PUBLIC_LEN + 1], err[600];
    ck_assert_int_eq(mr_nkey_read_seed_file(p, pub, err, sizeof err), 0);
    /* The raw public key, from nats-server's vector, to verify with OpenSSL. */
    unsigned char raw[35];
    const char *b32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    for (int i = 0, bits = 0, acc = 0, o = 0; pubs[0][i]; i++) {
        /* Only the bits not yet emitted (fewer than 8) matter: keep the shift in range. */
        acc = ((acc & 0xff) << 5) | (int)(strchr(b32, pubs[0][i]) - b32);
        if ((bits += 5) >= 8)
            raw[o++] = (unsigned char)(acc >> (bits -= 8));
    }
    EVP_PKEY *pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw + 1, 32);
    ck_assert_ptr_nonnull(pk);
    int zero = 0, ok = 0;
    for (int i = 0; i < 2000 && (zero < 2 || ok < 50); i++) {
        char nonce[32];
        unsigned char sig[MR_NKEY_SIG_LEN];
        snprintf(nonce, sizeof nonce, "nonce-%d", i);
        if (mr_nats_sign_nonce(p, nonce, sig, err, sizeof err) != 0) {
            ck_assert_msg(strstr(err, "starts with a zero byte"), "%s", err);
            unsigned char want[MR_NKEY_SIG_LEN];
            ck_assert_int_eq(mr_nkey_sign(seeds[0], (unsigned char *)nonce, strlen(nonce), want),
                             0);
            ck_assert_int_eq(want[0], 0);
            zero++;
            continue;
        }
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        ck_assert_int_eq(EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk), 1);
        ck_assert_msg(
            EVP_DigestVerify(ctx, sig, sizeof sig, (unsigned char *)nonce, strlen(nonce)) == 1,
            "signature of %s does not verify", nonce);
        EVP_MD_CTX_free(ctx);
        ck_assert_int_ne(sig[0], 0);
        ok++;
    }
    ck_assert_msg(zero >= 2 && ok >= 50, "zero-led %d, verified %d", zero, ok);
    EVP_PKEY_free(pk);
    ck_assert_int_eq(
        mr_nats_sign_nonce("/nonexistent/x.nk", "n", (unsigned char[64]){0}, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "cannot read /nonexistent/x.nk"), "%s", err);
    free(p);
}
END_TEST

/* Parse `json` (an object holding "nats") and run the final check. */
static int conf_from(const char *json, mr_nats_conf *c, char *err, size_t n)
{
    json_t *root = json_loads(json, 0, NULL);
    ck_assert_msg(root != NULL, "bad test JSON %s", json);
    mr_cfg cfg = {.file = "t.json"};
    mr_nats_conf_init(c, "nats://127.0.0.1:4222");
    mr_nats_conf_read(c, &cfg, root, "nats");
    json_decref(root);
    if (mr_cfg_failed(&cfg)) {
        snprintf(err, n, "%s", cfg.err);
        return -1;
    }
    return mr_nats_conf_check(c, "nats", err, n);
}

static void expect_error(const char *json, const char *needle)
{
    mr_nats_conf c;
    char err[700] = "";
    ck_assert_msg(conf_from(json, &c, err, sizeof err) == -1, "accepted: %s", json);
    ck_assert_msg(strstr(err, needle), "error \"%s\" lacks \"%s\"", err, needle);
    mr_nats_conf_free(&c);
}

START_TEST(conf_forms)
{
    mr_nats_conf c;
    char err[700] = "";
    ck_assert_int_eq(conf_from("{}", &c, err, sizeof err), 0);
    ck_assert_int_eq((int)c.n_urls, 1);
    ck_assert_str_eq(c.urls[0], "nats://127.0.0.1:4222");
    mr_nats_conf_free(&c);
    ck_assert_int_eq(conf_from("{\"nats\":[\"nats://a:1\",\"tls://b:2\"]}", &c, err, sizeof err),
                     0);
    ck_assert_int_eq((int)c.n_urls, 2);
    ck_assert(!c.tls && !c.user && !c.nkey_seed_file);
    mr_nats_conf_free(&c);
    ck_assert_int_eq(conf_from("{\"nats\":\"nats://a:1,nats://b:2\"}", &c, err, sizeof err), 0);
    ck_assert_int_eq((int)c.n_urls, 2);
    ck_assert_str_eq(c.urls[1], "nats://b:2");
    mr_nats_conf_free(&c);

    char *seed = file("relay.nk", seeds[0]);
    char *pw = file("pw", "s3cret\n");
    char *pem = file("ca.pem", "not checked until connect\n");
    char json[2048];
    snprintf(json, sizeof json,
             "{\"nats\":{\"urls\":[\"nats://a:1\"],\"nkey_seed_file\":\"%s\","
             "\"tls\":{\"ca\":\"%s\",\"cert\":\"%s\",\"key\":\"%s\"}}}",
             seed, pem, pem, pem);
    ck_assert_msg(conf_from(json, &c, err, sizeof err) == 0, "%s", err);
    ck_assert(c.tls);
    ck_assert_str_eq(c.nkey_seed_file, seed);
    ck_assert_str_eq(c.tls_ca, pem);
    mr_nats_conf_free(&c);
    snprintf(json, sizeof json,
             "{\"nats\":{\"urls\":[\"nats://a:1\"],\"user\":\"meridian\",\"password_file\":\"%s\","
             "\"tls\":{}}}",
             pw);
    ck_assert_msg(conf_from(json, &c, err, sizeof err) == 0, "%s", err);
    ck_assert(c.tls && !c.tls_ca);
    ck_assert_str_eq(c.user, "meridian");
    /* The flag replaces the URLs only. */
    mr_nats_conf_set_urls(&c, "nats://x:9,,nats://y:9");
    ck_assert_int_eq((int)c.n_urls, 2);
    ck_assert_str_eq(c.user, "meridian");
    mr_nats_conf_free(&c);
    free(seed);
    free(pw);
    free(pem);
}
END_TEST

START_TEST(conf_errors)
{
    expect_error("{\"nats\":[]}", "nats: at least one NATS URL is required");
    expect_error("{\"nats\":5}", "t.json: nats: must be a list of URLs or an object");
    expect_error("{\"nats\":[\"http://x\"]}", "must start with nats:// or tls://");
    expect_error("{\"nats\":[1]}", "nats: must be an array of strings");
    expect_error("{\"nats\":{\"url\":[\"nats://x:1\"]}}", "nats.url: unknown key");
    expect_error("{\"nats\":{\"user\":\"u\"}}", "nats.urls: is required");
    expect_error("{\"nats\":{\"urls\":[\"nats://x:1\"],\"tls\":{\"cafile\":\"x\"}}}",
                 "nats.tls.cafile: unknown key");
    expect_error("{\"nats\":{\"urls\":[\"nats://x:1\"],\"tls\":[]}}", "nats.tls");
    expect_error("{\"nats\":{\"urls\":[\"nats://x:1\"],\"user\":\"u\"}}",
                 "user and password_file go together");
    expect_error("{\"nats\":{\"urls\":[\"nats://x:1\"],\"password_file\":\"/x\"}}",
                 "user and password_file go together");
    expect_error("{\"nats\":{\"urls\":[\"nats://x:1\"],\"user\":\"u\",\"password_file\":\"/x\","
                 "\"nkey_seed_file\":\"/y\"}}",
                 "either nkey_seed_file or user and password_file");
    expect_error("{\"nats\":{\"urls\":[\"nats://x:1\"],\"user\":\"u\","
                 "\"password_file\":\"/nonexistent/pw\"}}",
                 "nats.password_file: cannot read /nonexistent/pw");
    expect_error("{\"nats\":{\"urls\":[\"nats://x:1\"],\"nkey_seed_file\":\"/nonexistent/s\"}}",
                 "nats.nkey_seed_file: cannot read /nonexistent/s");
    expect_error("{\"nats\":{\"urls\":[\"nats://x:1\"],\"tls\":{\"ca\":\"/nonexistent/ca\"}}}",
                 "nats.tls.ca: cannot read /nonexistent/ca");
    expect_error("{\"nats\":{\"urls\":[\"nats://x:1\"],\"tls\":{\"cert\":\"/c\"}}}",
                 "nats.tls: cert and key go together");
    char *empty = file("empty-pw", "\n");
    char json[1024];
    snprintf(json, sizeof json,
             "{\"nats\":{\"urls\":[\"nats://x:1\"],\"user\":\"u\",\"password_file\":\"%s\"}}",
             empty);
    expect_error(json, "is empty");
    free(empty);
}
END_TEST

/* A password in a URL is refused, and the message shows the URL without it. */
START_TEST(conf_refuses_credentials_in_urls)
{
    const char *cases[] = {"{\"nats\":[\"nats://meridian:hunter2@10.0.0.1:4222\"]}",
                           "{\"nats\":\"nats://a:1,tls://meridian:hunter2@b:2\"}",
                           "{\"nats\":{\"urls\":[\"nats://hunter2@10.0.0.1:4222\"]}}",
                           "{\"nats\":[\"ftp://meridian:hunter2@x\"]}"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        mr_nats_conf c;
        char err[700] = "";
        ck_assert_msg(conf_from(cases[i], &c, err, sizeof err) == -1, "accepted %s", cases[i]);
        ck_assert_msg(!strstr(err, "hunter2"), "the error shows the password: %s", err);
        ck_assert_msg(strstr(err, "credentials in a URL are not accepted") ||
                          strstr(err, "must start with nats://"),
                      "%s", err);
        mr_nats_conf_free(&c);
    }
}
END_TEST

START_TEST(url_redact)
{
    char out[256];
    mr_nats_url_redact("nats://meridian:pw@host:4222", out, sizeof out);
    ck_assert_str_eq(out, "nats://host:4222");
    mr_nats_url_redact("tls://a@b:c@[::1]:4222/x", out, sizeof out);
    ck_assert_str_eq(out, "tls://[::1]:4222/x");
    mr_nats_url_redact("nats://host:4222/path@x", out, sizeof out);
    ck_assert_str_eq(out, "nats://host:4222/path@x");
    mr_nats_url_redact("host:1", out, sizeof out);
    ck_assert_str_eq(out, "host:1");
}
END_TEST

/* nats-server's subject matching: `*` one token, `>` one or more trailing tokens. */
static bool subject_matches(const char *pattern, const char *subject)
{
    while (*pattern && *subject) {
        size_t pl = strcspn(pattern, "."), sl = strcspn(subject, ".");
        if (pl == 1 && *pattern == '>')
            return true;
        if (!(pl == 1 && *pattern == '*') && (pl != sl || strncmp(pattern, subject, pl) != 0))
            return false;
        pattern += pl + (pattern[pl] == '.');
        subject += sl + (subject[sl] == '.');
    }
    return !*pattern && !*subject;
}

static bool allowed(char *const *list, size_t n, const char *subject)
{
    for (size_t i = 0; i < n; i++)
        if (subject_matches(list[i], subject))
            return true;
    return false;
}

static const char *const regions[] = {"eu-west", "us-east", "ap-south"};

static void perms(mr_nats_perms *p, mr_nats_role role, const char *region)
{
    mr_nats_perms_build(p, role, region, regions, 3);
}

START_TEST(permission_table)
{
    mr_nats_perms relay, control, hc;
    perms(&relay, MR_NATS_ROLE_RELAY, "eu-west");
    perms(&control, MR_NATS_ROLE_CONTROL, "us-east");
    perms(&hc, MR_NATS_ROLE_HEALTHCHECK, "ap-south");
    /* A relay publishes its own region's messages only. */
    ck_assert(allowed(relay.pub, relay.npub, "meridian.msg.eu-west.general"));
    ck_assert(!allowed(relay.pub, relay.npub, "meridian.msg.us-east.general"));
    ck_assert(!allowed(relay.pub, relay.npub, "meridian.msg.eu-west.a.b"));
    ck_assert(!allowed(relay.pub, relay.npub, "meridian.commit.general"));
    ck_assert(allowed(relay.pub, relay.npub, "meridian.relay.hb"));
    ck_assert(allowed(relay.sub, relay.nsub, "meridian.relay.hb"));
    /* Signals likewise: its own region's only; every region's are read. */
    ck_assert(allowed(relay.pub, relay.npub, "meridian.sig.eu-west.general"));
    ck_assert(!allowed(relay.pub, relay.npub, "meridian.sig.us-east.general"));
    ck_assert(allowed(relay.sub, relay.nsub, "meridian.sig.us-east.general"));
    ck_assert(!allowed(control.pub, control.npub, "meridian.sig.us-east.general"));
    ck_assert(!allowed(hc.sub, hc.nsub, "meridian.sig.ap-south.general"));
    ck_assert(allowed(relay.sub, relay.nsub, "meridian.msg.us-east.general"));
    ck_assert(allowed(relay.sub, relay.nsub, "meridian.commit.general"));
    ck_assert(!allowed(relay.sub, relay.nsub, "meridian.history.general"));
    /* Its JetStream API is its own region's stream. */
    ck_assert(allowed(relay.pub, relay.npub, "$JS.API.STREAM.INFO.MERIDIAN_EU_WEST"));
    ck_assert(!allowed(relay.pub, relay.npub, "$JS.API.STREAM.DELETE.MERIDIAN_EU_WEST"));
    ck_assert(!allowed(relay.pub, relay.npub, "$JS.API.STREAM.INFO.MERIDIAN_US_EAST"));
    /* Replies: presence snapshots only, direct or gateway-mapped; never a history reply. */
    ck_assert(allowed(relay.pub, relay.npub, "_INBOX.relayab12.p.general"));
    ck_assert(allowed(relay.pub, relay.npub, "_GR_.Xk3a.Zz9q._INBOX.relayab12.p.general"));
    ck_assert(!allowed(relay.pub, relay.npub, "_INBOX.relayab12.tok123"));
    ck_assert(!allowed(relay.pub, relay.npub, "_INBOX.relayab12.c.general"));
    ck_assert(!allowed(relay.pub, relay.npub, "_GR_.Xk3a.Zz9q._INBOX.relayab12.tok"));
    ck_assert(!relay.responses);

    /* The control plane: commits, its region's API messages, history replies, every stream. */
    ck_assert(allowed(control.pub, control.npub, "meridian.commit.general"));
    ck_assert(allowed(control.pub, control.npub, "meridian.msg.us-east.general"));
    ck_assert(!allowed(control.pub, control.npub, "meridian.msg.eu-west.general"));
    ck_assert(allowed(control.pub, control.npub, "_INBOX.relayab12.tok123"));
    ck_assert(allowed(control.pub, control.npub, "_GR_.a.b._INBOX.relayab12.tok123"));
    ck_assert(allowed(control.pub, control.npub,
                      "$JS.API.CONSUMER.MSG.NEXT.MERIDIAN_AP_SOUTH.meridian-control"));
    ck_assert(
        allowed(control.pub, control.npub, "$JS.ACK.MERIDIAN_EU_WEST.meridian-control.1.2.3.4.5"));
    ck_assert(allowed(control.pub, control.npub,
                      "_GR_.a.b.$JS.ACK.MERIDIAN_EU_WEST.meridian-control.1.2.3.4.5"));
    ck_assert(!allowed(control.pub, control.npub, "$JS.API.CONSUMER.MSG.NEXT.MERIDIAN_X.other"));
    ck_assert(!allowed(control.pub, control.npub, "$JS.API.STREAM.DELETE.MERIDIAN_EU_WEST"));
    /* The relays own the streams: control may only read their configuration. */
    ck_assert(allowed(control.pub, control.npub, "$JS.API.STREAM.INFO.MERIDIAN_US_EAST"));
    ck_assert(!allowed(control.pub, control.npub, "$JS.API.STREAM.UPDATE.MERIDIAN_US_EAST"));
    ck_assert(!allowed(control.pub, control.npub, "$JS.API.STREAM.CREATE.MERIDIAN_EU_WEST"));
    ck_assert(!allowed(control.pub, control.npub, "meridian.presence.general"));
    ck_assert(!allowed(control.pub, control.npub, "meridian.relay.hb"));
    ck_assert(allowed(control.sub, control.nsub, "meridian.history.general"));
    ck_assert(!allowed(control.sub, control.nsub, "meridian.msg.us-east.general"));

    /* A health agent cannot publish or read messages at all. */
    ck_assert(!allowed(hc.pub, hc.npub, "meridian.msg.ap-south.general"));
    ck_assert(!allowed(hc.pub, hc.npub, "meridian.commit.general"));
    ck_assert(!allowed(hc.pub, hc.npub, "_INBOX.relayab12.tok123"));
    ck_assert(!allowed(hc.sub, hc.nsub, "meridian.msg.ap-south.general"));
    ck_assert(allowed(hc.pub, hc.npub, "meridian.hc.obs"));
    ck_assert(allowed(hc.pub, hc.npub, "meridian.hc.lease"));
    ck_assert(allowed(hc.sub, hc.nsub, "meridian.hc.lease"));
    /* The lease and drain flags no longer live in JetStream: no JetStream at all. */
    ck_assert(!allowed(hc.pub, hc.npub, "$KV.meridian_hc_drain.drain.eu-west"));
    ck_assert(!allowed(hc.pub, hc.npub, "$JS.API.STREAM.INFO.MERIDIAN_AP_SOUTH"));
    ck_assert(!allowed(hc.sub, hc.nsub, "_INBOX.x"));
    ck_assert(!hc.responses);
    mr_nats_perms_free(&relay);
    mr_nats_perms_free(&control);
    mr_nats_perms_free(&hc);
    ck_assert_str_eq(mr_nats_role_name(MR_NATS_ROLE_HEALTHCHECK), "healthcheck");
    ck_assert_int_eq(mr_nats_role_find("control"), MR_NATS_ROLE_CONTROL);
    ck_assert_int_eq(mr_nats_role_find("admin"), -1);
}
END_TEST

START_TEST(accounts_render)
{
    const char *keys[3 * MR_NATS_NROLES];
    for (size_t i = 0; i < 3 * MR_NATS_NROLES; i++)
        keys[i] = pubs[i % 2];
    mr_buf b = MR_BUF_INIT;
    mr_nats_accounts_render(&b, regions, 3, keys);
    ck_assert(strstr(b.data, "MERIDIAN {\n    jetstream: enabled"));
    ck_assert(strstr(b.data, "# healthcheck of ap-south"));
    ck_assert(strstr(b.data, "\"meridian.msg.us-east.*\""));
    ck_assert(!strstr(b.data, "allow_responses")); /* no role answers what it receives */
    mr_buf_free(&b);
}
END_TEST

Suite *nats_opts_suite(void)
{
    Suite *s = suite_create("nats_opts");
    TCase *tc = tcase_create("nkey");
    tcase_add_test(tc, nkey_vectors);
    tcase_add_test(tc, nkey_generate);
    suite_add_tcase(s, tc);
    tc = tcase_create("conf");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, nkey_seed_file);
    tcase_add_test(tc, nonce_signature);
    tcase_add_test(tc, conf_forms);
    tcase_add_test(tc, conf_errors);
    tcase_add_test(tc, conf_refuses_credentials_in_urls);
    tcase_add_test(tc, url_redact);
    suite_add_tcase(s, tc);
    tc = tcase_create("perms");
    tcase_add_test(tc, permission_table);
    tcase_add_test(tc, accounts_render);
    suite_add_tcase(s, tc);
    return s;
}
