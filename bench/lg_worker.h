/*
 * A load generator worker: one process, one epoll loop, a share of the
 * connections. The parent forks the workers after filling lg_opts and
 * steers them through the phases in shared memory (lg_shared); each worker
 * publishes its counters there every 100 ms and its histograms at exit.
 */
#ifndef LG_WORKER_H
#define LG_WORKER_H

#include "lg_conn.h"
#include "lg_hist.h"

#include <stdint.h>
#include <sys/types.h>

#define LG_MAX_URLS    16
#define LG_MAX_WORKERS 64
#define LG_MAX_PIDS    8

typedef enum {
    LG_MODE_CONNECT, /* N idle authenticated connections, held */
    LG_MODE_FANOUT,  /* N subscribers over M rooms, P publishers at a fixed rate */
    LG_MODE_PUBLISH, /* P publishers; acknowledged publishes per second */
    LG_MODE_CHURN,   /* connect, hello, welcome, close, again */
    LG_MODE_GENERIC  /* any WebSocket pub/sub server: raw subscribe and publish */
} lg_mode;

typedef struct lg_opts {
    lg_mode mode;
    lg_url urls[LG_MAX_URLS]; /* relays, or the generic subscribe URLs */
    int nurls;
    lg_url pub_urls[LG_MAX_URLS]; /* generic: where publishers send (ws or http) */
    int npub_urls;
    const char *secret;
    int conns;      /* connect: N; fanout/generic: subscribers; churn: concurrency */
    int rooms;      /* M */
    int publishers; /* P */
    int users;      /* distinct user ids among subscribers; 0 = one per connection */
    double rate;    /* messages/s in total (0 in publish mode = closed loop); churn: cycles/s */
    int window;     /* publish closed loop: outstanding publishes per publisher */
    int size;       /* payload (the `data` JSON) bytes */
    double duration, warmup, drain, connect_timeout, hold;
    double connect_rate; /* new connections per second, all workers together */
    int inflight;        /* handshakes in progress per worker at most */
    int workers;
    uint32_t src_base; /* host order; first source address */
    uint32_t src_count;
    const char *room_prefix;
    const char *sub_msg;  /* generic: sent after the upgrade; {{room}} is replaced */
    const char *pub_tmpl; /* generic: message body; {{payload}} and {{room}} are replaced */
    int join;             /* connect mode: also join a room */
    int signal;           /* fanout: publishers send ephemeral `signal` frames, not publishes */
    int no_echo;          /* publishers' hello says "echo":false: no copy of their own messages */
    pid_t server_pids[LG_MAX_PIDS];
    int nserver_pids;
    const char *json_path;
    int quiet;
} lg_opts;

/* Counters each worker publishes; indices into lg_wstats.ctr. */
enum {
    LG_C_STARTED,  /* connection attempts */
    LG_C_OPEN,     /* WebSocket (or HTTP) connections established */
    LG_C_READY,    /* authenticated and joined: counted once per connection */
    LG_C_FAILED,   /* attempts that never became ready */
    LG_C_DROPPED,  /* ready connections that were closed under us */
    LG_C_SENT,     /* publishes sent */
    LG_C_SENT_M,   /* ... whose intended time is in the measured window */
    LG_C_DELIV,    /* messages received by subscribers */
    LG_C_DELIV_M,  /* ... sent in the measured window */
    LG_C_SELF,     /* messages received back by publishers */
    LG_C_ACKS,     /* acks (or HTTP 2xx answers) */
    LG_C_ACKS_M,   /* ... for publishes sent in the measured window */
    LG_C_ERRORS,   /* error frames, HTTP errors */
    LG_C_CYCLES,   /* churn: completed connect-welcome-close cycles */
    LG_C_CYCLES_M, /* ... finished in the measured window */
    LG_C_BYTES_IN,
    LG_C_BYTES_OUT,
    LG_C_LIVE, /* gauge: connections currently open */
    LG_C_COUNT
};

typedef struct lg_wstats {
    uint64_t ctr[LG_C_COUNT];
    lg_hist lat;  /* delivery latency (fanout, generic) or publish-to-ack (publish) */
    lg_hist conn; /* connect start to ready */
    char last_error[192];
    int32_t done;
} lg_wstats;

enum { LG_PHASE_CONNECT = 0, LG_PHASE_RUN, LG_PHASE_STOP, LG_PHASE_EXIT };

typedef struct lg_shared {
    int32_t phase;
    int64_t t_run_us;     /* publishing starts (monotonic us) */
    int64_t t_measure_us; /* measured window [t_measure, t_stop) */
    int64_t t_stop_us;
    lg_wstats w[];
} lg_shared;

/** Run worker `id` of `o->workers` until the parent says exit; never returns. */
void lg_worker_run(const lg_opts *o, lg_shared *sh, int id) __attribute__((noreturn));

/** Connections (all roles) that worker `id` will open; churn counts slots. */
int lg_worker_conn_count(const lg_opts *o, int id);

/** Monotonic microseconds, shared by every process on the machine. */
int64_t lg_now_us(void);

#endif
