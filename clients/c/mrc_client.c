/*
 * mr_client: the Meridian client protocol over one libwebsockets client
 * connection.
 *
 * How it works. Each client owns an lws context and a service thread that
 * runs lws_service() until the connection is gone. The Debian lws (4.1) has
 * no external-poll support, so the only safe way for other threads to get
 * work done on the connection is the one DESIGN.md prescribes: they append a
 * ready-made frame to a mutex-protected queue and call lws_cancel_service();
 * the service thread then gets LWS_CALLBACK_EVENT_WAIT_CANCELLED, asks for a
 * writable callback, and writes one queued frame per
 * LWS_CALLBACK_CLIENT_WRITEABLE, as lws requires.
 *
 * hello is written first, on its own; queued requests wait until welcome
 * arrives, because the relay answers any other frame sent before welcome
 * with not_authenticated. lws may hand one WebSocket message over in several
 * pieces (its rx buffer is smaller than our largest frames), so incoming
 * pieces are collected in `rx` until lws_is_final_fragment() says the
 * message is complete, then parsed with jansson and dispatched to the
 * caller's callbacks, which run on the service thread without the mutex
 * held, so they may call back into the API.
 *
 * Every path out of a connection (refused, TLS failure, relay close, our own
 * close, forced teardown) ends in report_close(), which calls close_cb once.
 */
#include "mrc_client.h"

#include "mr_alloc.h"
#include "mr_buf.h"
#include "mr_log.h"
#include "mr_proto.h"
#include "mr_time.h"

#include <libwebsockets.h>
#include <netdb.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* Incoming messages larger than this close the connection (1009). */
#define MRC_RX_MAX (16u * 1024 * 1024)
/* How long mrc_client_free() waits for a graceful close before tearing down. */
#define MRC_FREE_GRACE_MS 3000

typedef struct mrc_out {
    struct mrc_out *next;
    size_t len;
    unsigned char buf[]; /* LWS_PRE bytes of headroom, then the frame */
} mrc_out;

struct mrc_client {
    mrc_callbacks cb;
    void *ud;
    char *url_buf; /* lws_parse_uri() cuts this copy into host and path */
    const char *host;
    char *path;
    int port;
    bool tls;
    bool insecure;
    int ssl_flags;
    int connect_timeout_s;
    char *hello; /* the hello frame, sent before anything else */

    struct lws_context *ctx;
    struct lws *wsi;
    pthread_t thread;

    /* Shared with the callers' threads; guarded by mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    mrc_out *q_head, *q_tail;
    int64_t next_id;
    bool close_requested;
    bool closed;   /* close_cb has been called: new requests fail */
    bool finished; /* the service thread is done with lws */
    bool ctx_gone; /* the lws context is being destroyed: do not wake it */
    _Atomic bool force_stop;

    /* Service thread only. */
    bool established;
    bool hello_sent;
    bool welcomed;
    bool we_closed;
    bool done;
    int peer_code;
    char peer_reason[124];
    char tls_error[128]; /* why OpenSSL rejected the server's certificate, if it did */
    bool saw_reconnect;  /* the relay announced a drain */
    mr_buf rx;
    bool rx_overflow;
};

const char *mrc_strerror(int err)
{
    switch (err) {
    case MRC_OK:
        return "ok";
    case MRC_EINVAL:
        return "invalid argument";
    case MRC_ECLOSED:
        return "connection is closed";
    case MRC_ETLS:
        return "TLS setup failed";
    case MRC_ESYS:
        return "cannot create the connection context";
    }
    return "unknown error";
}

const char *mrc_close_reason(int code)
{
    switch (code) {
    case 1000:
        return "normal close";
    case 1001:
        return "relay shutting down";
    case 1003:
        return "binary frame refused";
    case 1005:
        return "closed without a status code";
    case 1006:
        return "connection lost or refused";
    case 1008:
        return "policy violation";
    case 1009:
        return "frame too large";
    case 1011:
        return "relay internal error";
    case 1012:
        return "relay restarting (drained)";
    case 1015:
        return "TLS handshake failed";
    case 4001:
        return "authentication failed";
    case 4002:
        return "no hello within the handshake timeout";
    case 4008:
        return "slow consumer";
    case 4009:
        return "too many invalid frames";
    case 4010:
        return "token expired";
    case 4029:
        return "publish rate limit exceeded repeatedly";
    }
    return "unknown close code";
}

bool mrc_mid_valid(const char *mid)
{
    size_t n = strlen(mid);
    if (n == 0 || n > MR_MID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)mid[i] <= 0x20 || (unsigned char)mid[i] >= 0x7f)
            return false;
    return true;
}

/* ---- service thread side ---- */

static void report_close(mrc_client *c, int code, const char *reason)
{
    pthread_mutex_lock(&c->mu);
    bool already = c->closed;
    c->closed = true;
    pthread_mutex_unlock(&c->mu);
    if (already)
        return;
    mr_log_debug("mr_client: closed %d (%s)", code, reason);
    if (c->cb.close_cb)
        c->cb.close_cb(c, code, reason, c->ud);
}

static int64_t frame_id(json_t *root)
{
    json_t *id = json_object_get(root, "id");
    return json_is_integer(id) ? (int64_t)json_integer_value(id) : -1;
}

static const char *str_field(json_t *root, const char *key)
{
    const char *s = json_string_value(json_object_get(root, key));
    return s ? s : "";
}

static void dispatch(mrc_client *c, const char *text, size_t len)
{
    json_error_t je;
    json_t *root = json_loadb(text, len, 0, &je);
    const char *type = json_string_value(json_object_get(root, "type"));
    if (!root || !type) {
        mr_log_warn("mr_client: ignoring a frame that is not a typed JSON object: %.80s", text);
        json_decref(root);
        return;
    }
    int64_t id = frame_id(root);
    const mrc_callbacks *cb = &c->cb;
    if (strcmp(type, "reconnect") == 0)
        c->saw_reconnect = true;
    if (strcmp(type, "message") == 0 && cb->message_cb) {
        json_t *seq = json_object_get(root, "seq");
        json_t *ts = json_object_get(root, "ts");
        mrc_message m = {
            .room = str_field(root, "room"),
            .msg_id = str_field(root, "msg_id"),
            .from = str_field(root, "from"),
            .mid = str_field(root, "mid"),
            .region = str_field(root, "region"),
            .node = str_field(root, "node"),
            .ts_ms = json_is_integer(ts) ? (int64_t)json_integer_value(ts) : 0,
            .seq = json_is_integer(seq) ? (int64_t)json_integer_value(seq) : -1,
            .data = json_object_get(root, "data"),
            .frame = text,
            .frame_len = len,
        };
        cb->message_cb(c, &m, c->ud);
    } else if (strcmp(type, "ack") == 0 && cb->ack_cb) {
        cb->ack_cb(c, id, str_field(root, "room"), str_field(root, "mid"),
                   str_field(root, "msg_id"), c->ud);
    } else if (strcmp(type, "error") == 0 && cb->error_cb) {
        cb->error_cb(c, id, str_field(root, "code"), str_field(root, "message"),
                     json_is_true(json_object_get(root, "retryable")), c->ud);
    } else if (strcmp(type, "welcome") == 0) {
        c->welcomed = true;
        /* Requests queued before welcome may go now. */
        lws_callback_on_writable(c->wsi);
        if (cb->welcome_cb)
            cb->welcome_cb(c, str_field(root, "user"), root, c->ud);
    } else if (strcmp(type, "joined") == 0 && cb->joined_cb) {
        cb->joined_cb(c, id, str_field(root, "room"), c->ud);
    } else if (strcmp(type, "left") == 0 && cb->left_cb) {
        cb->left_cb(c, id, str_field(root, "room"), c->ud);
    } else if (strcmp(type, "presence") == 0 && cb->presence_cb) {
        json_t *members = json_object_get(root, "members");
        mrc_presence p = {
            .id = id,
            .room = str_field(root, "room"),
            .event = json_string_value(json_object_get(root, "event")),
            .user = json_string_value(json_object_get(root, "user")),
            .members = json_is_array(members) ? members : NULL,
        };
        cb->presence_cb(c, &p, c->ud);
    } else if (strcmp(type, "reconnect") == 0 && cb->reconnect_cb) {
        json_t *urls = json_object_get(root, "urls");
        json_t *empty = NULL;
        if (!json_is_array(urls))
            urls = empty = json_array();
        cb->reconnect_cb(c, str_field(root, "reason"), urls, c->ud);
        json_decref(empty);
    } else if (cb->frame_cb) {
        cb->frame_cb(c, type, root, c->ud);
    }
    json_decref(root);
}

/* Write `len` bytes that sit after LWS_PRE bytes of headroom in `buf`. */
static int write_text(mrc_client *c, unsigned char *buf, size_t len)
{
    int n = lws_write(c->wsi, buf + LWS_PRE, len, LWS_WRITE_TEXT);
    if (n < (int)len) {
        mr_log_warn("mr_client: write failed");
        return -1;
    }
    return 0;
}

static int on_writeable(mrc_client *c)
{
    pthread_mutex_lock(&c->mu);
    bool closing = c->close_requested;
    pthread_mutex_unlock(&c->mu);
    if (closing) {
        c->we_closed = true;
        lws_close_reason(c->wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)"bye", 3);
        return -1;
    }
    if (!c->hello_sent) {
        size_t n = strlen(c->hello);
        unsigned char *buf = mr_malloc(LWS_PRE + n);
        memcpy(buf + LWS_PRE, c->hello, n);
        int r = write_text(c, buf, n);
        free(buf);
        c->hello_sent = true;
        return r;
    }
    if (!c->welcomed)
        return 0;
    pthread_mutex_lock(&c->mu);
    mrc_out *o = c->q_head;
    if (o) {
        c->q_head = o->next;
        if (!c->q_head)
            c->q_tail = NULL;
    }
    bool more = c->q_head != NULL;
    pthread_mutex_unlock(&c->mu);
    if (!o)
        return 0;
    int r = write_text(c, o->buf, o->len);
    free(o);
    if (r == 0 && more)
        lws_callback_on_writable(c->wsi);
    return r;
}

/* Another thread queued a frame or asked to close: get to work on the service thread. */
static void on_wakeup(mrc_client *c)
{
    if (!c->wsi)
        return;
    pthread_mutex_lock(&c->mu);
    bool closing = c->close_requested;
    bool pending = c->q_head != NULL;
    pthread_mutex_unlock(&c->mu);
    if (c->established) {
        if (closing || (pending && c->welcomed))
            lws_callback_on_writable(c->wsi);
    } else if (closing) {
        /* Still connecting: there is no WebSocket to close politely, so drop the attempt. */
        c->we_closed = true;
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
}

static void on_connection_error(mrc_client *c, const char *why)
{
    char reason[256];
    int code = MRC_CLOSE_ABNORMAL;
    if (c->we_closed) {
        report_close(c, 1000, "closed before the connection was established");
        return;
    }
    why = why && *why ? why : "unknown error";
    /*
     * lws reports TLS failures only as text; recognise them so that callers
     * can tell a certificate problem from a refused connection.
     */
    if (c->tls_error[0] ||
        (c->tls && (strcasestr(why, "ssl") || strcasestr(why, "tls") || strcasestr(why, "cert"))))
        code = MRC_CLOSE_TLS_FAILED;
    if (c->tls_error[0])
        snprintf(reason, sizeof reason,
                 "cannot connect to %s:%d: TLS: server certificate rejected: %s", c->host, c->port,
                 c->tls_error);
    else if (code == MRC_CLOSE_TLS_FAILED)
        snprintf(reason, sizeof reason, "cannot connect to %s:%d: TLS handshake failed: %s",
                 c->host, c->port, why);
    else
        snprintf(reason, sizeof reason, "cannot connect to %s:%d: %s", c->host, c->port, why);
    report_close(c, code, reason);
}

static void on_closed(mrc_client *c)
{
    char reason[192];
    if (c->peer_code) {
        snprintf(reason, sizeof reason, "%s%s%s", mrc_close_reason(c->peer_code),
                 c->peer_reason[0] ? ": " : "", c->peer_reason);
        report_close(c, c->peer_code, reason);
    } else if (c->rx_overflow) {
        report_close(c, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "incoming message too large");
    } else if (c->we_closed) {
        report_close(c, LWS_CLOSE_STATUS_NORMAL, mrc_close_reason(1000));
    } else {
        report_close(c, MRC_CLOSE_ABNORMAL, "connection lost without a close frame");
    }
}

static int on_receive(mrc_client *c, const void *in, size_t len)
{
    if (lws_frame_is_binary(c->wsi)) {
        /* The protocol has no binary frames; skip them (all of their pieces). */
        return 0;
    }
    if (c->rx.len + len > MRC_RX_MAX) {
        c->rx_overflow = true;
        lws_close_reason(c->wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, NULL, 0);
        return -1;
    }
    mr_buf_append(&c->rx, in, len);
    if (!lws_is_final_fragment(c->wsi)) {
        mr_log_debug("mr_client: partial message, %zu bytes so far", c->rx.len);
        return 0;
    }
    dispatch(c, c->rx.data ? c->rx.data : "", c->rx.len);
    mr_buf_reset(&c->rx);
    /* Keep the buffer from pinning the memory of one huge message forever. */
    if (c->rx.cap > 1024 * 1024)
        mr_buf_free(&c->rx);
    return 0;
}

static int mrc_lws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                      size_t len)
{
    /* Some lws error paths call back without a wsi; the connect call reports those. */
    struct lws_context *ctx = wsi ? lws_get_context(wsi) : NULL;
    mrc_client *c = ctx ? lws_context_user(ctx) : NULL;
    if (!c)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        on_wakeup(c);
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (in && strstr((const char *)in, "not 101")) {
            /* lws's "HS: ws upgrade response not 101" hides the useful part: the status. */
            char why[160];
            snprintf(why, sizeof why,
                     "the server refused the WebSocket upgrade (HTTP %u): wrong port or path, "
                     "Origin not allowed, or the relay is draining or full",
                     lws_http_client_http_response(wsi));
            on_connection_error(c, why);
        } else {
            on_connection_error(c, in ? (const char *)in : NULL);
        }
        c->done = true;
        break;
    case LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION:
        /*
         * lws reports a refused certificate only as an opaque OpenSSL error
         * code; remember OpenSSL's own words for the close reason. Returning
         * 0 leaves the verdict to OpenSSL and the LCCSCF_ flags.
         */
        if (!len && user && !c->insecure) {
            int e = X509_STORE_CTX_get_error((X509_STORE_CTX *)user);
            snprintf(c->tls_error, sizeof c->tls_error, "%s", X509_verify_cert_error_string(e));
        }
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        c->established = true;
        lws_callback_on_writable(wsi);
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return on_writeable(c);
    case LWS_CALLBACK_CLIENT_RECEIVE:
        return on_receive(c, in, len);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (len >= 2) {
            const unsigned char *p = in;
            c->peer_code = p[0] << 8 | p[1];
            size_t rl = len - 2 < sizeof c->peer_reason - 1 ? len - 2 : sizeof c->peer_reason - 1;
            memcpy(c->peer_reason, p + 2, rl);
            c->peer_reason[rl] = '\0';
        } else {
            c->peer_code = 1005;
        }
        /*
         * lws 4.1 predates the registration of 1012-1014 and rewrites those
         * codes to 1002 before we see them (newer lws accepts up to 1015).
         * The relay never sends 1002 and closes a drained connection with
         * 1012 after its reconnect frame, so undo the rewrite there.
         */
        if (c->peer_code == LWS_CLOSE_STATUS_PROTOCOL_ERR && c->saw_reconnect)
            c->peer_code = MR_CLOSE_RESTART;
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        on_closed(c);
        c->done = true;
        break;
    case LWS_CALLBACK_WSI_DESTROY:
        /*
         * The last callback any connection gets (lws's internal wsis get it
         * too, hence the check): whatever happened, we are done.
         */
        if (wsi != c->wsi)
            break;
        if (c->established)
            on_closed(c);
        else
            on_connection_error(c, "connection closed during the handshake");
        c->wsi = NULL;
        c->done = true;
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols mrc_protocols[] = {
    {"meridian-client", mrc_lws_cb, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void *service_main(void *arg)
{
    mrc_client *c = arg;
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = c->ctx;
    ci.address = c->host;
    ci.port = c->port;
    ci.path = c->path;
    ci.host = c->host;
    ci.ssl_connection = c->ssl_flags;
    /*
     * No subprotocol is requested (the relay accepts none), so the
     * connection is bound to our handler by its local name.
     */
    ci.local_protocol_name = mrc_protocols[0].name;
    ci.pwsi = &c->wsi;
    /*
     * lws 4.1 resolves names synchronously and, when that fails, gives up
     * without saying why; resolve first so the caller learns the real cause.
     */
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int gai = getaddrinfo(c->host, NULL, &hints, &ai);
    if (ai)
        freeaddrinfo(ai);
    if (gai != 0) {
        char why[160];
        snprintf(why, sizeof why, "cannot resolve host name: %s", gai_strerror(gai));
        on_connection_error(c, why);
        c->done = true;
    } else if (!lws_client_connect_via_info(&ci)) {
        /* lws may already have reported the reason through the callback. */
        on_connection_error(c, "connection failed");
        c->done = true;
    }
    while (!c->done && !atomic_load(&c->force_stop))
        lws_service(c->ctx, 0);
    pthread_mutex_lock(&c->mu);
    c->ctx_gone = true;
    pthread_mutex_unlock(&c->mu);
    /* Destroying the context closes a connection that is still up (forced teardown). */
    lws_context_destroy(c->ctx);
    c->ctx = NULL;
    report_close(c, MRC_CLOSE_ABNORMAL, "client shut down");
    pthread_mutex_lock(&c->mu);
    c->finished = true;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* ---- caller side ---- */

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen, const char *fmt,
                                                          ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(err, errlen, fmt, ap); /* a message cut to the caller's buffer is fine */
    va_end(ap);
}

static void client_destroy(mrc_client *c)
{
    mrc_out *o = c->q_head;
    while (o) {
        mrc_out *next = o->next;
        free(o);
        o = next;
    }
    mr_buf_free(&c->rx);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c->url_buf);
    free(c->path);
    free(c->hello);
    free(c);
}

static int parse_url(mrc_client *c, const char *url, char *err, size_t errlen)
{
    const char *prot, *ads, *path;
    c->url_buf = mr_strdup(url);
    if (lws_parse_uri(c->url_buf, &prot, &ads, &c->port, &path) != 0) {
        set_err(err, errlen, "invalid URL '%s'", url);
        return MRC_EINVAL;
    }
    if (strcmp(prot, "ws") == 0) {
        c->tls = false;
    } else if (strcmp(prot, "wss") == 0) {
        c->tls = true;
    } else {
        set_err(err, errlen, "invalid URL '%s': the scheme must be ws:// or wss://", url);
        return MRC_EINVAL;
    }
    if (!strstr(url, "://") || !*ads) {
        set_err(err, errlen, "invalid URL '%s': no host", url);
        return MRC_EINVAL;
    }
    if (c->port <= 0 || c->port > 65535) {
        set_err(err, errlen, "invalid URL '%s': bad port", url);
        return MRC_EINVAL;
    }
    /* lws_parse_uri() defaults the port from "ws"/"wss" only for http(s); do it here. */
    const char *after = strstr(url, "://") + 3;
    const char *slash = strchr(after, '/');
    const char *colon = strchr(after, ':');
    if (!colon || (slash && colon > slash))
        c->port = c->tls ? 443 : 80;
    c->host = ads;
    size_t pl = strlen(path);
    c->path = mr_malloc(pl + 2);
    c->path[0] = '/';
    memcpy(c->path + 1, path, pl + 1);
    return MRC_OK;
}

int mrc_client_new(const mrc_options *o, mrc_client **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!o || !o->url) {
        set_err(err, errlen, "%s", "no URL given");
        return MRC_EINVAL;
    }
    if (!o->token || !*o->token) {
        set_err(err, errlen, "%s", "no token given");
        return MRC_EINVAL;
    }
    mrc_client *c = mr_calloc(1, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    if (mr_cond_init_monotonic(&c->cv) != 0) {
        pthread_mutex_destroy(&c->mu);
        free(c);
        set_err(err, errlen, "%s", "cannot create a condition variable");
        return MRC_ESYS;
    }
    c->cb = o->cb;
    c->ud = o->user_data;
    c->next_id = 1;
    int rc = parse_url(c, o->url, err, errlen);
    if (rc != MRC_OK)
        goto err;
    if (c->tls) {
        c->ssl_flags = LCCSCF_USE_SSL;
        c->insecure = o->insecure;
        if (o->insecure)
            c->ssl_flags |= LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
                            LCCSCF_ALLOW_EXPIRED | LCCSCF_ALLOW_INSECURE;
        if (o->ca_file && access(o->ca_file, R_OK) != 0) {
            set_err(err, errlen, "cannot read CA file '%s'", o->ca_file);
            rc = MRC_ETLS;
            goto err;
        }
    }
    c->connect_timeout_s = o->connect_timeout_s > 0 ? o->connect_timeout_s : 10;

    mr_buf hello = MR_BUF_INIT;
    mr_buf_printf(&hello, "{\"type\":\"hello\",\"id\":%lld,\"token\":", (long long)c->next_id++);
    mr_buf_json_str(&hello, o->token, strlen(o->token));
    mr_buf_puts(&hello, o->no_echo ? ",\"echo\":false}" : "}");
    c->hello = hello.data;

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = mrc_protocols;
    info.gid = -1; /* lws: keep the process's group */
    info.uid = -1;
    info.user = c;
    info.timeout_secs = (unsigned)c->connect_timeout_s;
    info.connect_timeout_secs = (unsigned)c->connect_timeout_s;
    /* One connection per context: no need for a pollfd table sized to the fd limit. */
    info.fd_limit_per_thread = 32;
    if (c->tls) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.client_ssl_ca_filepath = o->ca_file;
    }
    c->ctx = lws_create_context(&info);
    if (!c->ctx) {
        set_err(err, errlen, "%s",
                c->tls ? "cannot create the TLS client context (check the CA file)"
                       : "cannot create the libwebsockets context");
        rc = c->tls ? MRC_ETLS : MRC_ESYS;
        goto err;
    }
    if (pthread_create(&c->thread, NULL, service_main, c) != 0) {
        lws_context_destroy(c->ctx);
        set_err(err, errlen, "%s", "cannot start the client thread");
        rc = MRC_ESYS;
        goto err;
    }
    *out = c;
    return MRC_OK;
err:
    client_destroy(c);
    return rc;
}

/* Wake the service thread; called with mu held so that the context cannot vanish meanwhile. */
static void wake_locked(mrc_client *c)
{
    if (!c->ctx_gone)
        lws_cancel_service(c->ctx);
}

/* Give `frame` (consumed) a fresh request id and queue it. */
static int64_t enqueue(mrc_client *c, json_t *frame)
{
    pthread_mutex_lock(&c->mu);
    if (c->closed || c->close_requested) {
        pthread_mutex_unlock(&c->mu);
        json_decref(frame);
        return MRC_ECLOSED;
    }
    int64_t id = c->next_id++;
    json_object_set_new(frame, "id", json_integer(id));
    char *text = json_dumps(frame, JSON_COMPACT);
    if (!text) {
        /* jansson refuses only values it cannot serialise (NaN, invalid UTF-8). */
        pthread_mutex_unlock(&c->mu);
        json_decref(frame);
        return MRC_EINVAL;
    }
    size_t n = strlen(text);
    mrc_out *o = mr_malloc(sizeof *o + LWS_PRE + n);
    o->next = NULL;
    o->len = n;
    memcpy(o->buf + LWS_PRE, text, n);
    free(text);
    json_decref(frame);
    if (c->q_tail)
        c->q_tail->next = o;
    else
        c->q_head = o;
    c->q_tail = o;
    wake_locked(c);
    pthread_mutex_unlock(&c->mu);
    return id;
}

static json_t *room_frame(const char *type, const char *room)
{
    if (!room || !mr_room_valid(room, strlen(room)))
        return NULL;
    return json_pack("{s:s, s:s}", "type", type, "room", room);
}

int64_t mrc_join(mrc_client *c, const char *room, int64_t since)
{
    json_t *f = room_frame("join", room);
    if (!f)
        return MRC_EINVAL;
    if (since >= 0)
        json_object_set_new(f, "since", json_integer(since));
    return enqueue(c, f);
}

int64_t mrc_join_rewind(mrc_client *c, const char *room, int64_t n)
{
    json_t *f = n >= 0 ? room_frame("join", room) : NULL;
    if (!f)
        return MRC_EINVAL;
    json_object_set_new(f, "rewind", json_integer(n));
    return enqueue(c, f);
}

int64_t mrc_leave(mrc_client *c, const char *room)
{
    json_t *f = room_frame("leave", room);
    return f ? enqueue(c, f) : MRC_EINVAL;
}

int64_t mrc_presence_query(mrc_client *c, const char *room)
{
    json_t *f = room_frame("presence", room);
    return f ? enqueue(c, f) : MRC_EINVAL;
}

int64_t mrc_ping(mrc_client *c)
{
    return enqueue(c, json_pack("{s:s}", "type", "ping"));
}

int64_t mrc_publish(mrc_client *c, const char *room, const char *mid, json_t *data)
{
    if (!data || (mid && !mrc_mid_valid(mid)))
        return MRC_EINVAL;
    json_t *f = room_frame("publish", room);
    if (!f)
        return MRC_EINVAL;
    if (mid)
        json_object_set_new(f, "mid", json_string(mid));
    json_object_set(f, "data", data);
    return enqueue(c, f);
}

int64_t mrc_signal(mrc_client *c, const char *room, json_t *data)
{
    json_t *f = data ? room_frame("signal", room) : NULL;
    if (!f)
        return MRC_EINVAL;
    json_object_set(f, "data", data);
    return enqueue(c, f);
}

int64_t mrc_refresh(mrc_client *c, const char *token)
{
    if (!token || !token[0])
        return MRC_EINVAL;
    return enqueue(c, json_pack("{s:s, s:s}", "type", "refresh", "token", token));
}

int64_t mrc_publish_text(mrc_client *c, const char *room, const char *mid, const char *json_text)
{
    json_error_t je;
    json_t *data = json_text ? json_loads(json_text, JSON_DECODE_ANY, &je) : NULL;
    if (!data)
        return MRC_EINVAL;
    int64_t r = mrc_publish(c, room, mid, data);
    json_decref(data);
    return r;
}

void mrc_close(mrc_client *c)
{
    pthread_mutex_lock(&c->mu);
    if (!c->close_requested) {
        c->close_requested = true;
        wake_locked(c);
    }
    pthread_mutex_unlock(&c->mu);
}

void mrc_client_free(mrc_client *c)
{
    if (!c)
        return;
    mrc_close(c);
    /* cv measures time on CLOCK_MONOTONIC (mrc_client_new): a wall clock step changes nothing. */
    struct timespec deadline = mr_deadline_ms(MRC_FREE_GRACE_MS);
    pthread_mutex_lock(&c->mu);
    while (!c->finished)
        if (pthread_cond_timedwait(&c->cv, &c->mu, &deadline) != 0)
            break;
    if (!c->finished) {
        /* The relay did not answer our close in time: tear the connection down. */
        atomic_store(&c->force_stop, true);
        wake_locked(c);
    }
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    client_destroy(c);
}
