/*
 * sd_notify(3) in a few lines (mr_sdnotify.h). The message is a single
 * datagram on a fresh SOCK_DGRAM socket: systemd reads the sender's
 * credentials from it, and a datagram either arrives whole or not at all.
 * The socket is opened per message rather than kept, so a daemon that
 * forks or closes descriptors has nothing to keep track of; messages are
 * rare (a watchdog ping every few seconds at most).
 */
#include "mr_sdnotify.h"
#include "mr_time.h"

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int mr_sdnotify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !path[0])
        return 0;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    size_t n = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || n >= sizeof sa.sun_path) {
        errno = EINVAL;
        return -1;
    }
    memcpy(sa.sun_path, path, n);
    if (path[0] == '@')
        sa.sun_path[0] = '\0'; /* the abstract namespace: the length delimits the name */
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    /*
     * Never wait: a unix datagram socket queues only a few messages
     * (net.unix.max_dgram_qlen, 10 by default) and a reader that falls behind
     * would otherwise stall the event loop that sends the watchdog pings. A
     * ping dropped on a full queue is followed by the next one.
     */
    ssize_t r =
        sendto(fd, state, strlen(state), MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&sa, len);
    int saved = errno;
    close(fd);
    errno = saved;
    return r < 0 ? -1 : 0;
}

int mr_sdnotify_ready(const char *status)
{
    char msg[512];
    if (status)
        snprintf(msg, sizeof msg, "READY=1\nSTATUS=%s", status);
    else
        snprintf(msg, sizeof msg, "READY=1");
    return mr_sdnotify(msg);
}

int mr_sdnotify_reloading(void)
{
    /* systemd 253+ wants the CLOCK_MONOTONIC time of the reload's start beside RELOADING=1. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char msg[128];
    snprintf(msg, sizeof msg, "RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
    return mr_sdnotify(msg);
}

int mr_sdnotify_stopping(void)
{
    return mr_sdnotify("STOPPING=1\nSTATUS=stopping");
}

int64_t mr_sdnotify_watchdog_usec(void)
{
    const char *usec = getenv("WATCHDOG_USEC");
    if (!usec || !usec[0] || !getenv("NOTIFY_SOCKET"))
        return 0;
    const char *pid = getenv("WATCHDOG_PID");
    if (pid && pid[0] && strtol(pid, NULL, 10) != (long)getpid())
        return 0; /* meant for another process (a parent that exec'd us with its environment) */
    char *end;
    long long v = strtoll(usec, &end, 10);
    return *end == '\0' && v > 0 ? (int64_t)v : 0;
}

void mr_sdnotify_watchdog_feed(void)
{
    /* -1: not looked up yet. Written by the one loop thread that feeds, read by it alone. */
    static _Atomic int64_t period_us = -1;
    static _Atomic int64_t last_us;
    int64_t period = atomic_load(&period_us);
    if (period < 0) {
        period = mr_sdnotify_watchdog_usec();
        atomic_store(&period_us, period);
    }
    if (period == 0)
        return;
    int64_t now = mr_now_us();
    /* A third, not systemd's suggested half: loop ticks may land just after a deadline. */
    if (now - atomic_load(&last_us) < period / 3)
        return;
    atomic_store(&last_us, now);
    mr_sdnotify("WATCHDOG=1");
}
