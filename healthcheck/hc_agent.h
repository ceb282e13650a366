/*
 * The health agent: probes every relay endpoint of every region, runs the
 * per-endpoint state machines, shares observations with the other agents,
 * and — while it holds the lease — writes the DNS answers the quorum's
 * verdicts call for, then checks that the authoritative servers serve them.
 */
#ifndef HC_AGENT_H
#define HC_AGENT_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct evhttp;
typedef struct hc_agent hc_agent;

/**
 * Read the agent configuration file (and the regions file it names) and
 * build the agent on `base`. `listen_override` (may be NULL) replaces the
 * config's "listen". Returns NULL with a message naming the file and field.
 */
hc_agent *hc_agent_new(struct event_base *base, const char *config_path,
                       const char *listen_override, char *err, size_t errlen);
/** Bind the HTTP server, connect to NATS, start probing. Returns 0 or -1 with err. */
int hc_agent_start(hc_agent *a, char *err, size_t errlen);
/**
 * Stop probing and writing; let in-flight probes and HTTP calls end (within
 * their time-outs) and cancel verifications. Call after the loop returned
 * and before hc_agent_free.
 */
void hc_agent_stop(hc_agent *a);
/** The HTTP port actually bound. */
int hc_agent_port(hc_agent *a);
void hc_agent_free(hc_agent *a);

/** The agent's HTTP server (bound by hc_agent_start), for hc_status_attach. */
struct evhttp *hc_agent_http(hc_agent *a);

/** The log level and format the configuration asks for (mr_log_level, mr_log_format). */
void hc_agent_log_settings(const hc_agent *a, int *level, int *format);
/** Ready for systemd: the HTTP server bound and NATS connected. */
bool hc_agent_ready(hc_agent *a);
/**
 * SIGHUP: take from `next` (a new agent read from the same files, never
 * started) what can change while running: the drain API key, the relays'
 * admin key, the probe secret and the log level. `next` gets the replaced values, for
 * hc_agent_free.
 */
void hc_agent_take_reloadable(hc_agent *a, hc_agent *next);

struct mr_check;
/** --check beyond the file's syntax: the listen address binds, the probe secret is long enough. */
void hc_agent_check(hc_agent *a, struct mr_check *chk);

#endif
