/*
 * The chaos suite's load: publishers that retry like the SDKs and
 * subscribers that resume, against the relays of a running deployment,
 * writing every event that matters to an event log (format in
 * chaos_count.h). One process, one thread, one epoll loop over lg_conn
 * (bench/lg_conn.c) connections.
 */
#ifndef CHAOS_LOAD_H
#define CHAOS_LOAD_H

#define CHAOS_MAX_URLS    16
#define CHAOS_MAX_CLIENTS 64

typedef struct chaos_opts {
    const char *urls[CHAOS_MAX_URLS]; /* relays; clients get homes round robin */
    int nurls;
    const char *secret_file; /* HS256 secret of the relays (for tokens) */
    const char *pg;          /* libpq conninfo of the history database */
    const char *phase;       /* name of the phase, in the log and the room names */
    const char *run_id;      /* distinguishes runs on one database */
    int rooms;
    int publishers, subscribers;
    double rate;              /* publishes per second, all publishers together */
    int size;                 /* padding bytes in each message's data */
    double max_seconds;       /* publishing stops after this long at the latest */
    double settle_seconds;    /* then at most this long for acks, deliveries and history */
    int ack_timeout_ms;       /* a sent publish without ack this long: try another relay */
    int connect_timeout_ms;   /* socket to `welcome` */
    int backoff_max_ms;       /* reconnect backoff ceiling (full jitter from 500 ms) */
    int retry_delay_ms;       /* resend after a retryable error */
    int unavailable_failover; /* this many `unavailable` in a row: try another relay */
    const char *log_path;
    const char *ready_path; /* created once every client has joined */
    int quiet;
} chaos_opts;

/** Defaults for everything but urls, secret_file, pg and log_path. */
void chaos_opts_defaults(chaos_opts *o);

/**
 * Run one phase: connect, join, publish until SIGTERM/SIGINT or
 * max_seconds, then settle and read history. SIGUSR1 and SIGUSR2 mark the
 * fault's start and end in the log. Returns 0 when the phase ran to its end
 * (whatever it counted), 1 on a setup error (message on stderr).
 */
int chaos_load_run(const chaos_opts *o);

#endif
