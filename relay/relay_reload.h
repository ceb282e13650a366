/*
 * The relay's life cycle under systemd and SIGHUP: READY=1 once the
 * listener is bound and NATS connected, WATCHDOG=1 from the lws thread's
 * housekeeping (a stuck loop stops the pings and systemd restarts it), and
 * reloads. A reload reads the configuration files again into a new
 * relay_config, validates it whole and proves a new certificate against
 * its key before it changes anything; then it applies what can change
 * without dropping a session (token keys, TLS certificate and key, limits,
 * log level, admin key, origins, fallback URLs, drain pacing) and logs each
 * other changed key as needing a restart. A bad file changes nothing.
 */
#ifndef RELAY_RELOAD_H
#define RELAY_RELOAD_H

#include "relay.h"

/**
 * Enable reloads: the files `paths` (in the order they were applied) are
 * read again on SIGHUP; `log_level_flag` (may be NULL), given on the command
 * line, keeps overriding the files' log_level. Keeps the files' current
 * JSON to compare later edits with.
 */
void relay_reload_init(relay *r, const char *const *paths, size_t npaths,
                       const char *log_level_flag);
void relay_reload_free(relay *r);
/** lws thread, on every wake: run the reload the signal thread asked for (reload_requested). */
void relay_reload_poll(relay *r);
/** lws thread, every housekeeping tick: READY=1 once ready, the watchdog ping. */
void relay_reload_tick(relay *r);

#endif
