/*
 * The `nats` section of the daemons' configs, applied to natsOptions, and
 * the reporting of why a connection is not up.
 *
 * Reporting needs a probe of its own. libnats 3.4 keeps no reliable record
 * of why a retrying connection failed: its reconnect thread clears the
 * error before each round and ends with "No server available". Worse, when
 * the first attempt of a connection made with natsOptions_SetRetryOnFailed
 * Connect reaches a server but fails in the handshake (TLS, credentials),
 * the connection is closed for good instead of retried (fixed upstream in
 * libnats 3.12, commit 77843e7). So while a daemon's connection is not up,
 * a watcher thread makes one plain connection attempt every few seconds
 * with the same options and reads the error that attempt returns: that is
 * deterministic, costs nothing while connected, and also tells the operator
 * when the daemon must be restarted because libnats gave up.
 * mr_nats_connect() keeps that from happening for a passing failure: it
 * makes the first attempts in the foreground. And the nonce's signature is
 * made here (mr_nats_sign_nonce), never one libnats would fail to send.
 */
#include "mr_nats_opts.h"
#include "mr_alloc.h"
#include "mr_log.h"
#include "mr_nkey.h"
#include "mr_time.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROBE_EVERY_MS   2000
#define PROBE_TIMEOUT_MS 2000
#define WATCH_TICK_MS    250

/* ---- configuration ---- */

static void urls_free(mr_nats_conf *c)
{
    for (size_t i = 0; i < c->n_urls; i++)
        free(c->urls[i]);
    free(c->urls);
    c->urls = NULL;
    c->n_urls = 0;
}

static void url_push(mr_nats_conf *c, const char *s, size_t n)
{
    c->urls = mr_realloc(c->urls, (c->n_urls + 1) * sizeof *c->urls);
    c->urls[c->n_urls++] = mr_strndup(s, n);
}

void mr_nats_conf_init(mr_nats_conf *c, const char *default_url)
{
    memset(c, 0, sizeof *c);
    if (default_url)
        url_push(c, default_url, strlen(default_url));
}

static void set(char **slot, const char *v)
{
    free(*slot);
    *slot = v ? mr_strdup(v) : NULL;
}

void mr_nats_conf_free(mr_nats_conf *c)
{
    urls_free(c);
    free(c->user);
    free(c->password_file);
    free(c->nkey_seed_file);
    free(c->tls_ca);
    free(c->tls_cert);
    free(c->tls_key);
    memset(c, 0, sizeof *c);
}

void mr_nats_conf_set_urls(mr_nats_conf *c, const char *csv)
{
    urls_free(c);
    for (const char *p = csv; *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len > 0)
            url_push(c, p, len);
        p += len + (comma ? 1 : 0);
    }
}

static void read_urls(mr_nats_conf *c, mr_cfg *cfg, json_t *arr, const char *kp)
{
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        if (!json_is_string(e)) {
            mr_cfg_error(cfg, kp, "must be an array of strings (URLs)");
            return;
        }
    }
    urls_free(c);
    json_array_foreach(arr, i, e) url_push(c, json_string_value(e), json_string_length(e));
}

static void str_from(mr_cfg *cfg, json_t *obj, const char *path, const char *key, char **slot)
{
    const char *v = mr_cfg_str(cfg, obj, path, key, NULL);
    if (v)
        set(slot, v);
}

void mr_nats_conf_read(mr_nats_conf *c, mr_cfg *cfg, json_t *obj, const char *key)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    if (!v || json_is_null(v))
        return;
    if (json_is_string(v)) {
        mr_nats_conf_set_urls(c, json_string_value(v));
        return;
    }
    if (json_is_array(v)) {
        read_urls(c, cfg, v, key);
        return;
    }
    if (!json_is_object(v)) {
        mr_cfg_error(cfg, key, "must be a list of URLs or an object with \"urls\"");
        return;
    }
    static const char *const keys[] = {"urls",           "user", "password_file",
                                       "nkey_seed_file", "tls",  NULL};
    static const char *const tls_keys[] = {"ca", "cert", "key", NULL};
    char kp[128];
    mr_cfg_check_keys(cfg, v, key, keys);
    json_t *urls = json_object_get(v, "urls");
    snprintf(kp, sizeof kp, "%s.urls", key);
    if (!json_is_array(urls))
        mr_cfg_error(cfg, kp, "is required: a list of URLs");
    else
        read_urls(c, cfg, urls, kp);
    str_from(cfg, v, key, "user", &c->user);
    str_from(cfg, v, key, "password_file", &c->password_file);
    str_from(cfg, v, key, "nkey_seed_file", &c->nkey_seed_file);
    snprintf(kp, sizeof kp, "%s.tls", key);
    json_t *tls = mr_cfg_obj(cfg, v, key, "tls");
    if (tls) {
        c->tls = true;
        mr_cfg_check_keys(cfg, tls, kp, tls_keys);
        str_from(cfg, tls, kp, "ca", &c->tls_ca);
        str_from(cfg, tls, kp, "cert", &c->tls_cert);
        str_from(cfg, tls, kp, "key", &c->tls_key);
    }
}

void mr_nats_url_redact(const char *url, char *out, size_t n)
{
    const char *scheme = strstr(url, "://");
    const char *host = scheme ? scheme + 3 : url;
    const char *end = host + strcspn(host, "/?#");
    const char *at = memchr(host, '@', (size_t)(end - host));
    /* The last '@' of the authority ends the user information. */
    while (at) {
        const char *next = memchr(at + 1, '@', (size_t)(end - at - 1));
        if (!next)
            break;
        at = next;
    }
    if (!at) {
        snprintf(out, n, "%s", url);
        return;
    }
    snprintf(out, n, "%.*s%s", (int)(host - url), url, at + 1);
}

static int check_readable(const char *path, const char *kp, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot read %s: %s", kp, path, strerror(errno));
        return -1;
    }
    (void)fclose(f); /* opened only to learn that it can be */
    return 0;
}

/* The password: the file's first line without its line end. */
static char *read_password(const char *path, char *err, size_t errlen, const char *kp)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "%s: cannot read %s: %s", kp, path, strerror(errno));
        return NULL;
    }
    char line[1024];
    char *r = fgets(line, sizeof line, f);
    (void)fclose(f); /* opened to read only */
    if (r)
        line[strcspn(line, "\r\n")] = '\0';
    if (!r || !line[0]) {
        snprintf(err, errlen, "%s: %s is empty (the password is its first line)", kp, path);
        OPENSSL_cleanse(line, sizeof line);
        return NULL;
    }
    char *pw = mr_strdup(line);
    OPENSSL_cleanse(line, sizeof line);
    return pw;
}

static void free_secret(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

int mr_nats_conf_check(const mr_nats_conf *c, const char *key, char *err, size_t errlen)
{
    char kp[128];
    if (c->n_urls == 0) {
        snprintf(err, errlen, "%s: at least one NATS URL is required", key);
        return -1;
    }
    for (size_t i = 0; i < c->n_urls; i++) {
        const char *u = c->urls[i];
        char shown[512];
        mr_nats_url_redact(u, shown, sizeof shown);
        if (strncmp(u, "nats://", 7) != 0 && strncmp(u, "tls://", 6) != 0) {
            snprintf(err, errlen, "%s: \"%s\" must start with nats:// or tls://", key, shown);
            return -1;
        }
        if (strcmp(shown, u) != 0) {
            snprintf(err, errlen,
                     "%s: \"%s\": credentials in a URL are not accepted (URLs end up in logs "
                     "and process lists); use %s.user with %s.password_file, or "
                     "%s.nkey_seed_file",
                     key, shown, key, key, key);
            return -1;
        }
    }
    if (c->nkey_seed_file && (c->user || c->password_file)) {
        snprintf(err, errlen, "%s: set either nkey_seed_file or user and password_file, not both",
                 key);
        return -1;
    }
    if (!c->user != !c->password_file) {
        snprintf(err, errlen, "%s: user and password_file go together", key);
        return -1;
    }
    if (c->password_file) {
        snprintf(kp, sizeof kp, "%s.password_file", key);
        char *pw = read_password(c->password_file, err, errlen, kp);
        if (!pw)
            return -1;
        free_secret(pw);
    }
    if (c->nkey_seed_file) {
        char pub[MR_NKEY_PUBLIC_LEN + 1], why[512];
        if (mr_nkey_read_seed_file(c->nkey_seed_file, pub, why, sizeof why) != 0) {
            snprintf(err, errlen, "%s.nkey_seed_file: %s", key, why);
            return -1;
        }
    }
    if (!c->tls_cert != !c->tls_key) {
        snprintf(err, errlen, "%s.tls: cert and key go together", key);
        return -1;
    }
    const char *files[3] = {c->tls_ca, c->tls_cert, c->tls_key};
    const char *names[3] = {"ca", "cert", "key"};
    for (int i = 0; i < 3; i++) {
        snprintf(kp, sizeof kp, "%s.tls.%s", key, names[i]);
        if (files[i] && check_readable(files[i], kp, err, errlen) != 0)
            return -1;
    }
    return 0;
}

/*
 * Errors the server sends while connected: a permission violation means a
 * message was dropped (a misconfigured role, or a bug), so it is an error
 * in the log, at most a few lines a second.
 */
int mr_nats_sign_nonce(const char *seed_file, const char *nonce, unsigned char sig[MR_NKEY_SIG_LEN],
                       char *err, size_t errlen)
{
    char seed[MR_NKEY_SEED_LEN + 1];
    if (mr_nkey_load_seed_file(seed_file, seed, err, errlen) != 0)
        return -1;
    int rc = mr_nkey_sign(seed, (const unsigned char *)nonce, strlen(nonce), sig);
    OPENSSL_cleanse(seed, sizeof seed);
    if (rc != 0) {
        snprintf(err, errlen, "%s: cannot sign the server's nonce", seed_file);
        return -1;
    }
    /* libnats 3.4 base64-encodes the signature with a helper that returns
     * nothing for input starting with a zero byte, and then sends the
     * CONNECT without "sig": the server refuses it ("Signature missing"),
     * and libnats gives the connection up for good. Ed25519 signatures are
     * deterministic, so for this nonce there is no other one: fail the
     * attempt here instead, which libnats retries on a new connection,
     * with a new nonce (1 attempt in 256). */
    if (sig[0] == 0) {
        snprintf(err, errlen,
                 "the nonce's signature starts with a zero byte, which libnats cannot send; "
                 "retrying with a new nonce");
        return -1;
    }
    return 0;
}

/* libnats' signature handler: signs with mr_nats_sign_nonce. The memory
 * handed back is freed by libnats. */
static natsStatus sign_nonce_cb(char **custom_err, unsigned char **psig, int *plen,
                                const char *nonce, void *closure)
{
    const char *seed_file = closure;
    unsigned char *sig = malloc(MR_NKEY_SIG_LEN);
    char err[512];
    if (!sig)
        return NATS_NO_MEMORY;
    if (!nonce || mr_nats_sign_nonce(seed_file, nonce, sig, err, sizeof err) != 0) {
        free(sig);
        if (custom_err)
            *custom_err = strdup(nonce ? err : "the server sent no nonce to sign");
        return NATS_ERR;
    }
    *psig = sig;
    *plen = MR_NKEY_SIG_LEN;
    return NATS_OK;
}

static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *ud)
{
    static _Atomic int64_t last_us;
    static atomic_int suppressed;
    int64_t now = mr_now_us(), prev = atomic_load(&last_us);
    if (now - prev < 200000 || !atomic_compare_exchange_strong(&last_us, &prev, now)) {
        atomic_fetch_add(&suppressed, 1);
        return;
    }
    const char *text = NULL;
    natsConnection_GetLastError(nc, &text);
    int n = atomic_exchange(&suppressed, 0);
    if (err == NATS_NOT_PERMITTED)
        mr_log_error("nats: %s (the server dropped it; %d more suppressed)",
                     text && *text ? text : "permissions violation", n);
    else
        mr_log_warn("nats: %s (%d more suppressed)", text && *text ? text : natsStatus_GetText(err),
                    n);
}

/*
 * libnats 3.4's final cleanup (nats_Close(), or its atexit handler) frees
 * OpenSSL's list of compression methods, sk_SSL_COMP_free(SSL_COMP_get_
 * compression_methods()), without clearing OpenSSL's pointer to it, and
 * OpenSSL 3 frees the list again in its own atexit handler: every daemon
 * that used TLS towards NATS crashed on exit. Taking the list away from
 * OpenSSL first leaves NULL to both of them. It runs before libnats'
 * cleanup on both paths: mr_nats_lib_close() calls it first, and the
 * atexit handler registered here, after libnats registered its own (on its
 * first use, natsOptions_Create), runs before it.
 */
static void comp_free(SSL_COMP *c)
{
    OPENSSL_free(c);
}

static void detach_comp_methods(void)
{
    STACK_OF(SSL_COMP) *m = SSL_COMP_set0_compression_methods(NULL);
    sk_SSL_COMP_pop_free(m, comp_free);
}

static void register_detach(void)
{
    /* atexit fails only when out of memory; say what that costs. */
    if (atexit(detach_comp_methods) != 0)
        mr_log_warn("nats: cannot register the exit handler: a TLS client may crash on exit");
}

void mr_nats_lib_close(int64_t timeout_ms)
{
    detach_comp_methods();
    nats_CloseAndWait(timeout_ms);
}

int mr_nats_conf_apply(const mr_nats_conf *c, natsOptions *o, char *err, size_t errlen)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, register_detach);
    natsStatus s = natsOptions_SetServers(o, (const char **)c->urls, (int)c->n_urls);
    const char *what = "nats.urls";
    if (s == NATS_OK && c->tls) {
        s = natsOptions_SetSecure(o, true);
        if (s == NATS_OK && c->tls_ca) {
            what = "nats.tls.ca";
            s = natsOptions_LoadCATrustedCertificates(o, c->tls_ca);
        }
        if (s == NATS_OK && c->tls_cert) {
            what = "nats.tls.cert/key";
            s = natsOptions_LoadCertificatesChain(o, c->tls_cert, c->tls_key);
        }
    }
    if (s == NATS_OK && c->nkey_seed_file) {
        char pub[MR_NKEY_PUBLIC_LEN + 1], why[512];
        if (mr_nkey_read_seed_file(c->nkey_seed_file, pub, why, sizeof why) != 0) {
            snprintf(err, errlen, "nats.nkey_seed_file: %s", why);
            return -1;
        }
        what = "nats.nkey_seed_file";
        /* Our own signature handler rather than natsOptions_SetNKeyFromSeed:
         * see mr_nats_sign_nonce. The seed file is read at every connect, so
         * a rotated key is picked up on the next reconnect. */
        s = natsOptions_SetNKey(o, pub, sign_nonce_cb, c->nkey_seed_file);
    }
    if (s == NATS_OK && c->user) {
        char *pw = read_password(c->password_file, err, errlen, "nats.password_file");
        if (!pw)
            return -1;
        what = "nats.user";
        s = natsOptions_SetUserInfo(o, c->user, pw);
        free_secret(pw);
    }
    if (s == NATS_OK) {
        what = "nats";
        s = natsOptions_SetErrorHandler(o, on_async_error, NULL);
    }
    if (s != NATS_OK) {
        const char *detail = nats_GetLastError(NULL);
        snprintf(err, errlen, "%s: %s%s%s", what, natsStatus_GetText(s), detail ? ": " : "",
                 detail ? detail : "");
        return -1;
    }
    return 0;
}

/* ---- why a connection is not up ---- */

static mr_nats_state classify(natsStatus s, const char *text, char *why, size_t n)
{
    const char *t = text && *text ? text : natsStatus_GetText(s);
    switch (s) {
    case NATS_OK:
        snprintf(why, n, "connected");
        return MR_NATS_UP;
    case NATS_CONNECTION_AUTH_FAILED:
        snprintf(why, n,
                 "authorization violation: the server refused this daemon's credentials "
                 "(nats.nkey_seed_file, or nats.user and nats.password_file): %s",
                 t);
        return MR_NATS_AUTH;
    case NATS_SSL_ERROR:
        snprintf(why, n, "TLS: %s (check nats.tls.ca, nats.tls.cert and nats.tls.key)", t);
        return MR_NATS_TLS;
    case NATS_SECURE_CONNECTION_REQUIRED:
        snprintf(why, n, "TLS: the server requires TLS: set nats.tls");
        return MR_NATS_TLS;
    case NATS_SECURE_CONNECTION_WANTED:
        snprintf(why, n, "TLS: nats.tls is set but the server does not offer TLS");
        return MR_NATS_TLS;
    case NATS_NO_SERVER:
    case NATS_IO_ERROR:
    case NATS_TIMEOUT:
        snprintf(why, n, "not reachable: %s", t);
        return MR_NATS_UNREACHABLE;
    default:
        snprintf(why, n, "%s: %s", natsStatus_GetText(s), t);
        return MR_NATS_OTHER;
    }
}

/*
 * With TLS 1.3 a server checks the client's certificate after the client
 * considers the handshake done; a refused certificate then shows up in
 * libnats as the server hanging up on the first write or before the first
 * PONG.
 */
static bool hung_up_after_tls(const mr_nats_conf *c, natsStatus s, const char *text)
{
    return c->tls && s != NATS_OK && s != NATS_SSL_ERROR &&
           (strstr(text, "got ''") || strstr(text, "SSL_write error") ||
            strstr(text, "SSL_read error"));
}

natsStatus mr_nats_connect(natsConnection **nc, natsOptions *o, natsConnectionHandler connected_cb,
                           void *closure)
{
    /* libnats 3.4 retrying in the background gives a connection up for good
     * when its first attempt reached a server but failed in the handshake
     * (TLS, credentials, or a signature refused by mr_nats_sign_nonce): it
     * forgets which server it was on and its reconnect thread finds "no
     * server available". Only a first attempt that found no server at all
     * may be left to the background. So first try in the foreground, a few
     * times, each on a new connection with a new nonce. */
    natsStatus s = natsOptions_SetRetryOnFailedConnect(o, false, NULL, NULL);
    for (int i = 0; s == NATS_OK && i < MR_NATS_CONNECT_TRIES; i++) {
        *nc = NULL;
        s = natsConnection_Connect(nc, o);
        if (s == NATS_OK || s == NATS_NO_SERVER)
            break;
        natsConnection_Destroy(*nc);
        *nc = NULL;
        s = NATS_OK;
    }
    if (s == NATS_OK && *nc)
        return NATS_OK;
    *nc = NULL;
    s = natsOptions_SetRetryOnFailedConnect(o, true, connected_cb, closure);
    return s == NATS_OK ? natsConnection_Connect(nc, o) : s;
}

mr_nats_state mr_nats_probe(const mr_nats_conf *c, int timeout_ms, char *why, size_t n)
{
    natsOptions *o = NULL;
    char err[512];
    natsStatus s = natsOptions_Create(&o);
    if (s != NATS_OK) {
        snprintf(why, n, "nats options: %s", natsStatus_GetText(s));
        return MR_NATS_OTHER;
    }
    if (mr_nats_conf_apply(c, o, err, sizeof err) != 0) {
        natsOptions_Destroy(o);
        snprintf(why, n, "%s", err);
        return MR_NATS_OTHER;
    }
    natsOptions_SetName(o, "meridian probe");
    natsOptions_SetTimeout(o, timeout_ms);
    natsOptions_SetAllowReconnect(o, false);
    natsConnection *nc = NULL;
    s = natsConnection_Connect(&nc, o);
    char text[512] = "";
    if (s != NATS_OK) {
        const char *t = nats_GetLastError(NULL);
        /* Drop libnats' "(conn.c:1905): " source locations. */
        while (t && t[0] == '(' && strstr(t, "): "))
            t = strstr(t, "): ") + 3;
        snprintf(text, sizeof text, "%s", t ? t : "");
    }
    natsConnection_Destroy(nc);
    natsOptions_Destroy(o);
    if (hung_up_after_tls(c, s, text)) {
        snprintf(why, n,
                 "TLS: the server hung up right after the handshake: it probably refused this "
                 "daemon's client certificate (nats.tls.cert and nats.tls.key must be signed by "
                 "a CA the server trusts)");
        return MR_NATS_TLS;
    }
    return classify(s, text, why, n);
}

struct mr_nats_watch {
    const mr_nats_conf *conf;
    natsConnection *nc;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;        /* under mu */
    bool up;          /* under mu */
    char why[640];    /* under mu */
    char logged[640]; /* watcher thread only: the last reason logged */
};

static void log_reason(mr_nats_state st, const char *why)
{
    if (st == MR_NATS_AUTH || st == MR_NATS_TLS)
        mr_log_error("nats: cannot connect: %s", why);
    else
        mr_log_warn("nats: not connected: %s", why);
}

static void watch_step(mr_nats_watch *w, int64_t *next_probe_ms)
{
    natsConnStatus cs = natsConnection_Status(w->nc);
    bool up = cs == NATS_CONN_STATUS_CONNECTED || cs == NATS_CONN_STATUS_DRAINING_SUBS ||
              cs == NATS_CONN_STATUS_DRAINING_PUBS;
    char why[640];
    if (up) {
        *next_probe_ms = 0;
        w->logged[0] = '\0';
        pthread_mutex_lock(&w->mu);
        w->up = true;
        snprintf(w->why, sizeof w->why, "connected");
        pthread_mutex_unlock(&w->mu);
        return;
    }
    int64_t now = mr_now_us() / 1000;
    if (now < *next_probe_ms)
        return;
    *next_probe_ms = now + PROBE_EVERY_MS;
    char probe[560];
    mr_nats_state st = mr_nats_probe(w->conf, PROBE_TIMEOUT_MS, probe, sizeof probe);
    /* A closed connection is never retried by libnats: only a restart helps. */
    bool closed = natsConnection_Status(w->nc) == NATS_CONN_STATUS_CLOSED;
    if (closed && st == MR_NATS_UP)
        snprintf(why, sizeof why,
                 "the connection was given up after a server refused it (libnats 3.4 does not "
                 "retry it); a server accepts it now: restart this daemon");
    else if (closed)
        snprintf(why, sizeof why,
                 "%s; the connection was given up: restart this daemon once "
                 "this is fixed",
                 probe);
    else if (st == MR_NATS_UP)
        snprintf(why, sizeof why, "connecting");
    else
        snprintf(why, sizeof why, "%s", probe);
    pthread_mutex_lock(&w->mu);
    w->up = false;
    snprintf(w->why, sizeof w->why, "%s", why);
    pthread_mutex_unlock(&w->mu);
    if (st != MR_NATS_UP || closed) {
        if (strcmp(why, w->logged) != 0)
            log_reason(closed ? MR_NATS_AUTH : st, why);
        snprintf(w->logged, sizeof w->logged, "%s", why);
    }
}

static void *watch_main(void *arg)
{
    mr_nats_watch *w = arg;
    int64_t next_probe_ms = 0;
    for (;;) {
        watch_step(w, &next_probe_ms);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += WATCH_TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&w->mu);
        if (!w->stop)
            pthread_cond_timedwait(&w->cv, &w->mu, &ts);
        bool stop = w->stop;
        pthread_mutex_unlock(&w->mu);
        if (stop)
            return NULL;
    }
}

mr_nats_watch *mr_nats_watch_start(const mr_nats_conf *c, natsConnection *nc)
{
    mr_nats_watch *w = mr_calloc(1, sizeof *w);
    w->conf = c;
    w->nc = nc;
    snprintf(w->why, sizeof w->why, "connecting");
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        free(w);
        return NULL;
    }
    return w;
}

void mr_nats_watch_stop(mr_nats_watch *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}

bool mr_nats_watch_up(mr_nats_watch *w, char *why, size_t n)
{
    if (!w) {
        snprintf(why, n, "not started");
        return false;
    }
    pthread_mutex_lock(&w->mu);
    bool up = w->up;
    snprintf(why, n, "%s", w->why);
    pthread_mutex_unlock(&w->mu);
    return up;
}

void mr_nats_watch_describe(mr_nats_watch *w, bool connected, mr_buf *json)
{
    if (connected) {
        mr_buf_puts(json, "\"nats\":\"connected\"");
        return;
    }
    mr_buf_puts(json, "\"nats\":\"disconnected\"");
    /* A watcher that still saw it up has not looked since it went down: no reason yet. */
    char why[640];
    if (!mr_nats_watch_up(w, why, sizeof why)) {
        mr_buf_puts(json, ",\"nats_error\":");
        mr_buf_json_str(json, why, strlen(why));
    }
}

int mr_nats_wait_reachable(const mr_nats_conf *c, volatile int *stop)
{
    char why[560], logged[560] = "";
    for (;;) {
        if (stop && *stop)
            return -1;
        mr_nats_state st = mr_nats_probe(c, PROBE_TIMEOUT_MS, why, sizeof why);
        if (st == MR_NATS_UP)
            return 0;
        if (strcmp(why, logged) != 0)
            log_reason(st, why);
        snprintf(logged, sizeof logged, "%s", why);
        struct timespec ts = {0, 250 * 1000000L};
        nanosleep(&ts, NULL);
    }
}
