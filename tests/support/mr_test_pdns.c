/*
 * PowerDNS for tests. The database is created with the schema Debian ships
 * in pdns-backend-sqlite3, through the sqlite3 program (run as a child like
 * any other server, so a missing program fails the test with its name).
 * The server runs in the foreground (no guardian, no daemon) with every
 * cache at 0: tests look at what the API just wrote, not at cached answers.
 */
#include "mr_test_pdns.h"
#include "mr_test.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PDNS_SCHEMA "/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql"

static const char *find_pdns(void)
{
    static const char *const candidates[] = {"/usr/sbin/pdns_server", "/usr/local/sbin/pdns_server",
                                             NULL};
    for (int i = 0; candidates[i]; i++)
        if (access(candidates[i], X_OK) == 0)
            return candidates[i];
    return "pdns_server"; /* let PATH decide; mr_test_spawn fails loudly if absent */
}

int mr_test_pdns_api(mr_test_pdns *p, const char *method, const char *path, const char *body,
                     char **resp)
{
    *resp = NULL;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p->api_port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    size_t blen = body ? strlen(body) : 0;
    char *req = malloc(blen + 1024);
    int n = snprintf(req, blen + 1024,
                     "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\nX-API-Key: %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     method, path, p->api_key, blen, body ? body : "");
    ssize_t w = write(fd, req, (size_t)n);
    free(req);
    if (w != n) {
        close(fd);
        return -1;
    }
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    int64_t deadline = mr_test_now_ms() + 5000;
    for (;;) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int left = (int)(deadline - mr_test_now_ms());
        if (left <= 0 || poll(&pfd, 1, left) <= 0)
            break;
        if (len + 4096 > cap)
            buf = realloc(buf, cap *= 2);
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    int status = -1;
    if (sscanf(buf, "HTTP/%*d.%*d %d", &status) != 1)
        status = -1;
    char *b = strstr(buf, "\r\n\r\n");
    *resp = strdup(b ? b + 4 : "");
    free(buf);
    return status;
}

void mr_test_pdns_start(mr_test_pdns *p)
{
    memset(p, 0, sizeof *p);
    ck_assert_msg(access(PDNS_SCHEMA, R_OK) == 0,
                  "%s is missing: install pdns-backend-sqlite3 (scripts/deps)", PDNS_SCHEMA);
    p->dir = mr_test_tmpdir("pdns");
    p->dns_port = mr_test_free_port();
    p->api_port = mr_test_free_port();
    snprintf(p->api_url, sizeof p->api_url, "http://127.0.0.1:%d", p->api_port);
    snprintf(p->api_key, sizeof p->api_key, "test-pdns-key-%d", (int)getpid());
    snprintf(p->log, sizeof p->log, "%s/pdns.log", p->dir);

    char db[600], read_cmd[700], conf[600];
    snprintf(db, sizeof db, "%s/pdns.sqlite3", p->dir);
    snprintf(read_cmd, sizeof read_cmd, ".read %s", PDNS_SCHEMA);
    char *sq[] = {"sqlite3", db, read_cmd, NULL};
    pid_t sp = mr_test_spawn(sq, p->log);
    int st = mr_test_wait_exit(sp, 20000);
    ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "sqlite3 could not create the PowerDNS database; see %s", p->log);

    snprintf(conf, sizeof conf, "%s/pdns.conf", p->dir);
    char text[2048];
    snprintf(text, sizeof text,
             "launch=gsqlite3\ngsqlite3-database=%s\n"
             "local-address=127.0.0.1\nlocal-port=%d\n"
             "api=yes\napi-key=%s\nwebserver=yes\nwebserver-address=127.0.0.1\n"
             "webserver-port=%d\nwebserver-allow-from=127.0.0.0/8\n"
             "enable-lua-records=yes\n"
             "cache-ttl=0\nnegquery-cache-ttl=0\nquery-cache-ttl=0\nzone-cache-refresh-interval=0\n"
             "disable-syslog=yes\ndaemon=no\nguardian=no\nsocket-dir=%s\nloglevel=4\n"
             "distributor-threads=1\nreceiver-threads=1\n",
             db, p->dns_port, p->api_key, p->api_port, p->dir);
    ck_assert_int_eq(mr_test_write_file(conf, text), 0);
    char cfgdir[620];
    snprintf(cfgdir, sizeof cfgdir, "--config-dir=%s", p->dir);
    char *argv[] = {(char *)find_pdns(), cfgdir, NULL};
    p->pid = mr_test_spawn(argv, p->log);

    /* Ready when the API answers with the key and the DNS port takes TCP. */
    int64_t deadline = mr_test_now_ms() + 15000;
    int status = -1;
    while (mr_test_now_ms() < deadline) {
        ck_assert_msg(mr_test_alive(p->pid), "pdns_server exited at start; see %s", p->log);
        char *resp;
        status = mr_test_pdns_api(p, "GET", "/api/v1/servers/localhost", NULL, &resp);
        free(resp);
        if (status == 200)
            break;
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    ck_assert_msg(status == 200, "pdns_server API did not answer (last status %d); see %s", status,
                  p->log);
    ck_assert_msg(mr_test_wait_port("127.0.0.1", p->dns_port, 10000) == 0,
                  "pdns_server DNS port did not open; see %s", p->log);
}

void mr_test_pdns_stop(mr_test_pdns *p)
{
    if (p->pid > 0)
        mr_test_stop(p->pid, SIGTERM, 5000);
    p->pid = 0;
}
