/*
 * systemd's notify protocol without libsystemd: one datagram per state
 * change to the unix socket named by NOTIFY_SOCKET (a path, or "@name" in
 * the abstract namespace). Units of Type=notify wait for READY=1; with
 * WatchdogSec= systemd sets WATCHDOG_USEC and restarts a service whose
 * WATCHDOG=1 pings stop. Without NOTIFY_SOCKET every call does nothing, so
 * the daemons run the same under a shell, a container or another init.
 */
#ifndef MR_SDNOTIFY_H
#define MR_SDNOTIFY_H

#include <stdint.h>

/**
 * Send `state` (one or more "KEY=VALUE" lines) to NOTIFY_SOCKET. Returns 0
 * when sent or when there is no socket to send to, -1 (errno set) when the
 * send failed; a daemon logs that once and carries on.
 */
int mr_sdnotify(const char *state);

/** READY=1 with the status line `status` (may be NULL). */
int mr_sdnotify_ready(const char *status);
/** RELOADING=1 with MONOTONIC_USEC, as Type=notify-reload units expect; then READY=1 after. */
int mr_sdnotify_reloading(void);
/** STOPPING=1: the service is shutting down on purpose. */
int mr_sdnotify_stopping(void);

/**
 * The watchdog period systemd asks for in microseconds (WATCHDOG_USEC when
 * WATCHDOG_PID is unset or names this process), 0 when there is none.
 */
int64_t mr_sdnotify_watchdog_usec(void);

/**
 * Send WATCHDOG=1 when at least a third of the watchdog period has passed since
 * the last ping. Call it from the event loop that must not get stuck, as
 * often as that loop turns; it does nothing without a watchdog.
 */
void mr_sdnotify_watchdog_feed(void);

#endif
