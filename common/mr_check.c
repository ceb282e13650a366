/*
 * --check helpers (mr_check.h). The bind test binds a socket of the same
 * family to the address and closes it at once: that is the only way to
 * learn whether the kernel would accept the address, and a port briefly
 * held by --check is no worse than a port held by the daemon it checks.
 */
#include "mr_check.h"
#include "mr_config.h"

#include <errno.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void report(mr_check *c, FILE *f, const char *kind, const char *key, const char *fmt,
                   va_list ap) __attribute__((format(printf, 5, 0)));

static void report(mr_check *c, FILE *f, const char *kind, const char *key, const char *fmt,
                   va_list ap)
{
    /* The exit status carries the verdict; a line that cannot be written
     * to the terminal or pipe has nowhere else to be reported. */
    fprintf(f, "%s: %s: %s: ", c->prog, kind, key);
    (void)vfprintf(f, fmt, ap);
    (void)fputc('\n', f);
    (void)fflush(f);
}

void mr_check_error(mr_check *c, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(c, stderr, "error", key, fmt, ap);
    va_end(ap);
    c->errors++;
}

void mr_check_note(mr_check *c, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(c, stdout, "note", key, fmt, ap);
    va_end(ap);
}

void mr_check_bindable(mr_check *c, const char *key, const char *hostport)
{
    char host[256], port_s[16];
    int port;
    if (mr_parse_hostport(hostport, host, sizeof host, &port) != 0) {
        mr_check_error(c, key, "\"%s\" is not host:port", hostport);
        return;
    }
    snprintf(port_s, sizeof port_s, "%d", port);
    struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host[0] ? host : NULL, port_s, &hints, &res);
    if (gai != 0) {
        mr_check_error(c, key, "%s: %s", hostport, gai_strerror(gai));
        return;
    }
    int fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, 0);
    int rc = -1, err = errno;
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        rc = bind(fd, res->ai_addr, res->ai_addrlen);
        err = errno;
        close(fd);
    }
    freeaddrinfo(res);
    if (rc == 0)
        return;
    if (err == EADDRINUSE)
        mr_check_note(c, key,
                      "%s is in use now (another process listens there); a start "
                      "would fail while it is",
                      hostport);
    else if (err == EACCES)
        mr_check_note(c, key, "%s needs CAP_NET_BIND_SERVICE (a port below 1024)", hostport);
    else
        mr_check_error(c, key, "cannot bind %s: %s", hostport, strerror(err));
}

bool mr_tls_pair_ok(const char *cert, const char *key, char *err, size_t errlen)
{
    FILE *f = fopen(cert, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read %s: %s", cert, strerror(errno));
        return false;
    }
    (void)fclose(f); /* opened to read only: nothing is lost */
    f = fopen(key, "r");
    if (!f) {
        snprintf(err, errlen, "cannot read %s: %s", key, strerror(errno));
        return false;
    }
    (void)fclose(f);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    bool ok = false;
    ERR_clear_error();
    if (!ctx)
        snprintf(err, errlen, "cannot create a TLS context");
    else if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        snprintf(err, errlen, "%s is not a PEM certificate chain", cert);
    else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
             SSL_CTX_check_private_key(ctx) != 1)
        snprintf(err, errlen, "the key %s does not match the certificate %s (or is not a PEM key)",
                 key, cert);
    else
        ok = true;
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return ok;
}

bool mr_check_tls_pair(mr_check *c, const char *what, const char *cert, const char *key)
{
    char err[1200];
    if (mr_tls_pair_ok(cert, key, err, sizeof err))
        return true;
    mr_check_error(c, what, "%s", err);
    return false;
}
