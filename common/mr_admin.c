/*
 * Admin HTTP routes on evhttp. Rendering reads only atomics and callbacks
 * that are safe from the admin thread, so the daemon's own loop is never
 * blocked by a scrape.
 */
#include "mr_admin.h"
#include "mr_alloc.h"
#include "mr_config.h"
#include "mr_metrics.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

typedef struct admin_routes {
    mr_admin_ready_cb ready;
    void *ud;
} admin_routes;

static void reply(struct evhttp_request *req, int code, const char *ctype, const char *body,
                  size_t len)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", ctype);
    evhttp_add_header(h, "Cache-Control", "no-store");
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, body, len);
    /* NULL: evhttp uses the standard reason phrase of `code`. */
    evhttp_send_reply(req, code, NULL, b);
    evbuffer_free(b);
}

static void on_healthz(struct evhttp_request *req, void *arg)
{
    reply(req, 200, "application/json", "{\"status\":\"ok\"}\n", 16);
}

static void on_readyz(struct evhttp_request *req, void *arg)
{
    admin_routes *r = arg;
    mr_buf detail = MR_BUF_INIT, body = MR_BUF_INIT;
    bool ok = r->ready ? r->ready(r->ud, &detail) : true;
    mr_buf_printf(&body, "{\"ready\":%s,\"detail\":%s}\n", ok ? "true" : "false",
                  detail.len ? detail.data : "{}");
    reply(req, ok ? 200 : 503, "application/json", body.data, body.len);
    mr_buf_free(&detail);
    mr_buf_free(&body);
}

static void on_metrics(struct evhttp_request *req, void *arg)
{
    admin_routes *r = arg;
    mr_buf body = MR_BUF_INIT;
    /* The readiness callback also refreshes state gauges (control's ready, nats_connected...):
     * evaluate it so a scrape never reads what the last /readyz left, however old. */
    if (r && r->ready) {
        mr_buf_reset(&body);
        r->ready(r->ud, &body);
        mr_buf_reset(&body);
    }
    mr_metrics_render(&body);
    reply(req, 200, "text/plain; version=0.0.4", body.data ? body.data : "", body.len);
    mr_buf_free(&body);
}

/*
 * Paths without a route. evhttp's own 404 (evhttp_send_error) adds
 * "Connection: close" and closes the connection, which drops any request a
 * client pipelined behind it; this answer keeps the connection.
 */
static void on_other(struct evhttp_request *req, void *arg)
{
    static const char body[] = "{\"error\":\"no such resource\"}\n";
    reply(req, 404, "application/json", body, sizeof body - 1);
}

void mr_admin_attach(struct evhttp *http, mr_admin_ready_cb ready, void *ud)
{
    /*
     * Routes live as long as the process; a small static table avoids a
     * heap object that nobody could free. A process attaches a few at most.
     */
    static admin_routes table[8];
    static _Atomic int used;
    int slot = atomic_fetch_add(&used, 1);
    if (slot >= 8)
        abort();
    admin_routes *r = &table[slot];
    r->ready = ready;
    r->ud = ud;
    evhttp_set_cb(http, "/healthz", on_healthz, r);
    evhttp_set_cb(http, "/readyz", on_readyz, r);
    evhttp_set_cb(http, "/metrics", on_metrics, r);
    /* A daemon with routes of its own may set its own catch-all after this. */
    evhttp_set_gencb(http, on_other, r);
}

struct mr_admin_thread {
    struct event_base *base;
    struct evhttp *http;
    pthread_t thread;
    int port;
};

static void *admin_main(void *arg)
{
    mr_admin_thread *a = arg;
    event_base_dispatch(a->base);
    return NULL;
}

mr_admin_thread *mr_admin_thread_start(const char *listen, mr_admin_ready_cb ready, void *ud,
                                       void (*routes)(struct evhttp *http, void *ud), char *err,
                                       size_t errlen)
{
    char host[256];
    int port;
    if (mr_parse_hostport(listen, host, sizeof host, &port) != 0) {
        snprintf(err, errlen, "admin listen address \"%s\" is not host:port", listen);
        return NULL;
    }
    evthread_use_pthreads();
    mr_admin_thread *a = mr_calloc(1, sizeof *a);
    a->base = event_base_new();
    a->http = evhttp_new(a->base);
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST);
    evhttp_set_max_headers_size(a->http, 8192);
    evhttp_set_max_body_size(a->http, 65536);
    evhttp_set_timeout(a->http, 10);
    struct evhttp_bound_socket *s =
        evhttp_bind_socket_with_handle(a->http, host[0] ? host : "0.0.0.0", (ev_uint16_t)port);
    if (!s) {
        snprintf(err, errlen, "cannot bind admin address %s", listen);
        goto err;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(evhttp_bound_socket_get_fd(s), (struct sockaddr *)&ss, &sl) == 0)
        a->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    mr_admin_attach(a->http, ready, ud);
    if (routes)
        routes(a->http, ud);
    if (pthread_create(&a->thread, NULL, admin_main, a) != 0) {
        snprintf(err, errlen, "cannot start the admin thread");
        goto err;
    }
    return a;
err:
    evhttp_free(a->http);
    event_base_free(a->base);
    free(a);
    return NULL;
}

int mr_admin_thread_port(mr_admin_thread *a)
{
    return a->port;
}

void mr_admin_thread_stop(mr_admin_thread *a)
{
    if (!a)
        return;
    event_base_loopbreak(a->base);
    pthread_join(a->thread, NULL);
    evhttp_free(a->http);
    event_base_free(a->base);
    free(a);
}
