/*
 * meridian-ws-floor: the least work a WebSocket broadcaster can do per
 * delivery, as a floor to measure the relay against with `meridian-loadgen
 * generic`. One thread, epoll, no authentication, no JSON, no NATS, no
 * rooms: a text frame from any client is written unchanged, as one frame
 * built once, to every other open client with one send() each. What a
 * client cannot take at once waits in its own buffer until the socket is
 * writable again. Only for benchmarks: it trusts its clients (it still
 * checks lengths, so bad input closes a connection, never the process).
 *
 *   meridian-ws-floor [--host 127.0.0.1] [--port 8091]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FRAME (1 << 20)

typedef struct {
    unsigned char *data;
    size_t len, cap;
} bytes;

typedef struct client {
    int fd;
    bool open; /* handshake done */
    bool dead; /* closed; freed after the current batch of events */
    bytes in, out;
    struct client *prev, *next;
} client;

static client *clients;   /* open and opening connections */
static client *graveyard; /* closed in this batch of events, freed after it */
static int ep;
static unsigned long long frames_in, deliveries;

static void bytes_add(bytes *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *d = realloc(b->data, cap);
        if (!d) {
            perror("realloc");
            exit(1);
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void bytes_drop(bytes *b, size_t n)
{
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

/* Close now; the struct lives until the batch of events that may still name it is done. */
static void client_close(client *c)
{
    if (c->dead)
        return;
    c->dead = true;
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = graveyard;
    graveyard = c;
}

static void bury(void)
{
    while (graveyard) {
        client *c = graveyard;
        graveyard = c->next;
        free(c->in.data);
        free(c->out.data);
        free(c);
    }
}

static void watch(client *c, bool want_out)
{
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Write what is waiting; returns false when the connection failed. */
static bool client_flush(client *c)
{
    while (c->out.len) {
        ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0)
            return false;
        bytes_drop(&c->out, (size_t)n);
    }
    watch(c, c->out.len > 0);
    return true;
}

/* Send `frame` to `c`: straight to the socket unless something already waits. */
static bool client_send(client *c, const unsigned char *frame, size_t len)
{
    if (c->out.len) {
        bytes_add(&c->out, frame, len);
        return true;
    }
    ssize_t n = send(c->fd, frame, len, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        n = 0;
    if (n < 0)
        return false;
    if ((size_t)n < len) {
        bytes_add(&c->out, frame + n, len - (size_t)n);
        watch(c, true);
    }
    return true;
}

static void broadcast(client *from, const unsigned char *payload, size_t len)
{
    static unsigned char frame[MAX_FRAME + 10];
    size_t h = 0;
    frame[h++] = 0x81;
    if (len < 126) {
        frame[h++] = (unsigned char)len;
    } else if (len < 65536) {
        frame[h++] = 126;
        frame[h++] = (unsigned char)(len >> 8);
        frame[h++] = (unsigned char)len;
    } else {
        frame[h++] = 127;
        for (int i = 7; i >= 0; i--)
            frame[h++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    memcpy(frame + h, payload, len);
    frames_in++;
    for (client *c = clients, *next; c; c = next) {
        next = c->next;
        if (c == from || !c->open)
            continue;
        if (client_send(c, frame, h + len))
            deliveries++;
        else
            client_close(c);
    }
}

/* Answer the upgrade request in c->in, if it is complete. Returns false to close. */
static bool handshake(client *c)
{
    unsigned char *end = memmem(c->in.data, c->in.len, "\r\n\r\n", 4);
    if (!end)
        return c->in.len < 8192;
    size_t head = (size_t)(end - c->in.data) + 4;
    char req[8192];
    if (head > sizeof req)
        return false;
    memcpy(req, c->in.data, head - 2);
    req[head - 2] = '\0';
    char *key = NULL;
    for (char *line = strstr(req, "\r\n"); line && line[2]; line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "Sec-WebSocket-Key:", 18) == 0) {
            key = line + 20;
            while (*key == ' ')
                key++;
            char *e = strstr(key, "\r\n");
            if (e)
                *e = '\0';
            break;
        }
    }
    if (!key || strlen(key) > 64)
        return false;
    char material[128];
    snprintf(material, sizeof material, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1((unsigned char *)material, strlen(material), digest);
    unsigned char accept[64];
    EVP_EncodeBlock(accept, digest, sizeof digest);
    char resp[256];
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                     accept);
    bytes_drop(&c->in, head);
    c->open = true;
    return client_send(c, (unsigned char *)resp, (size_t)n);
}

/* Take whole frames from c->in. Returns false to close the connection. */
static bool frames(client *c)
{
    for (;;) {
        unsigned char *p = c->in.data;
        size_t have = c->in.len;
        if (have < 2)
            return true;
        int op = p[0] & 0x0f;
        bool masked = p[1] & 0x80;
        uint64_t len = p[1] & 0x7f;
        size_t h = 2;
        if (len == 126) {
            if (have < 4)
                return true;
            len = (uint64_t)p[2] << 8 | p[3];
            h = 4;
        } else if (len == 127) {
            if (have < 10)
                return true;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | p[2 + i];
            h = 10;
        }
        if (!masked || len > MAX_FRAME || !(p[0] & 0x80))
            return false; /* clients mask; fragments are not supported here */
        if (have < h + 4 + len)
            return true;
        unsigned char *mask = p + h, *payload = p + h + 4;
        for (uint64_t i = 0; i < len; i++)
            payload[i] ^= mask[i & 3];
        if (op == 0x8)
            return false;
        if (op == 0x9) { /* ping: pong with the same payload */
            unsigned char pong[2 + 125];
            if (len > 125)
                return false;
            pong[0] = 0x8a;
            pong[1] = (unsigned char)len;
            memcpy(pong + 2, payload, len);
            if (!client_send(c, pong, 2 + len))
                return false;
        } else if (op == 0x1) {
            broadcast(c, payload, (size_t)len);
        }
        bytes_drop(&c->in, h + 4 + (size_t)len);
    }
}

static bool client_read(client *c)
{
    unsigned char buf[65536];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (n <= 0)
            return false;
        bytes_add(&c->in, buf, (size_t)n);
        if (!c->open && !handshake(c))
            return false;
        if (c->open && !frames(c))
            return false;
    }
}

static volatile sig_atomic_t stop;
static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    int port = 8091;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--host") == 0 && i + 1 < argc) {
            host = argv[++i];
        } else if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            port = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: meridian-ws-floor [--host ADDR] [--port PORT]\n");
            return 2;
        }
    }
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
        bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 4096) < 0) {
        fprintf(stderr, "meridian-ws-floor: cannot listen on %s:%d: %s\n", host, port,
                strerror(errno));
        return 1;
    }
    /* signal() fails only for an invalid signal number. */
    (void)signal(SIGINT, on_signal);
    (void)signal(SIGTERM, on_signal);
    ep = epoll_create1(0);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
    fprintf(stderr, "meridian-ws-floor: listening on %s:%d\n", host, port);
    struct epoll_event evs[256];
    while (!stop) {
        int n = epoll_wait(ep, evs, 256, 1000);
        for (int i = 0; i < n; i++) {
            client *c = evs[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    client *nc = calloc(1, sizeof *nc);
                    nc->fd = fd;
                    nc->next = clients;
                    if (clients)
                        clients->prev = nc;
                    clients = nc;
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = nc};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                }
                continue;
            }
            if (c->dead) /* closed by a broadcast earlier in this batch */
                continue;
            bool ok = true;
            if (evs[i].events & (EPOLLERR | EPOLLHUP))
                ok = false;
            if (ok && (evs[i].events & EPOLLOUT))
                ok = client_flush(c);
            if (ok && (evs[i].events & EPOLLIN))
                ok = client_read(c);
            if (!ok)
                client_close(c);
        }
        bury();
    }
    fprintf(stderr, "meridian-ws-floor: %llu frames in, %llu deliveries\n", frames_in, deliveries);
    return 0;
}
