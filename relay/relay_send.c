/*
 * Sender threads (relay_send.h). One generation of jobs at a time: the lws
 * thread publishes the jobs and a generation number under the lock, every
 * sender writes its share of the array, and the lws thread waits until all
 * have reported. The lock and the condition variables order the job array
 * between the threads; the sockets are plain non-blocking TCP sockets that
 * lws does not touch while the lws thread is in relay_senders_run.
 */
#include "relay_send.h"
#include "mr_alloc.h"
#include "mr_log.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>

struct relay_senders {
    int threads; /* the caller included */
    pthread_t *tids;
    pthread_mutex_t lock;
    pthread_cond_t go;   /* a new generation, or stop */
    pthread_cond_t done; /* a sender finished its share */
    uint64_t generation;
    int pending; /* senders still writing this generation's shares */
    bool stop;
    relay_send_job *jobs;
    size_t njobs;
    int shares; /* senders taking part in this generation, the caller included */
};

typedef struct sender_arg {
    relay_senders *s;
    int index; /* 1.. (the caller is 0) */
} sender_arg;

static void send_one(relay_send_job *j)
{
    struct iovec iov[2] = {{.iov_base = j->hdr, .iov_len = j->hdr_len},
                           {.iov_base = (void *)j->payload, .iov_len = j->payload_len}};
    struct msghdr mh = {.msg_iov = j->hdr_len ? iov : iov + 1, .msg_iovlen = j->hdr_len ? 2 : 1};
    ssize_t n;
    do
        n = sendmsg(j->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n >= 0) {
        j->sent = n;
        j->err = 0;
    } else {
        j->sent = 0;
        j->err = errno == EAGAIN || errno == EWOULDBLOCK ? 0 : errno;
    }
}

/* Share k of `shares` of the jobs: contiguous, so each thread walks its own memory. */
static void run_share(relay_send_job *jobs, size_t n, int k, int shares)
{
    size_t from = n * (size_t)k / (size_t)shares, to = n * (size_t)(k + 1) / (size_t)shares;
    for (size_t i = from; i < to; i++)
        send_one(&jobs[i]);
}

static void *sender_main(void *arg)
{
    sender_arg *a = arg;
    relay_senders *s = a->s;
    uint64_t seen = 0;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->stop && s->generation == seen)
            pthread_cond_wait(&s->go, &s->lock);
        if (s->stop)
            break;
        seen = s->generation;
        if (a->index >= s->shares)
            continue; /* too few jobs this time to wake everyone */
        relay_send_job *jobs = s->jobs;
        size_t n = s->njobs;
        int shares = s->shares;
        pthread_mutex_unlock(&s->lock);
        run_share(jobs, n, a->index, shares);
        pthread_mutex_lock(&s->lock);
        if (--s->pending == 0)
            pthread_cond_signal(&s->done);
    }
    pthread_mutex_unlock(&s->lock);
    free(a);
    return NULL;
}

relay_senders *relay_senders_new(int threads)
{
    if (threads < 1)
        threads = 1;
    relay_senders *s = mr_calloc(1, sizeof *s);
    s->threads = 1;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->go, NULL);
    pthread_cond_init(&s->done, NULL);
    s->tids = mr_calloc((size_t)threads, sizeof *s->tids);
    for (int i = 1; i < threads; i++) {
        sender_arg *a = mr_malloc(sizeof *a);
        a->s = s;
        a->index = i;
        if (pthread_create(&s->tids[i], NULL, sender_main, a) != 0) {
            free(a);
            mr_log_error("cannot start sender thread %d", i);
            relay_senders_free(s);
            return NULL;
        }
        s->threads++;
    }
    return s;
}

int relay_senders_count(const relay_senders *s)
{
    return s ? s->threads : 1;
}

void relay_senders_run(relay_senders *s, relay_send_job *jobs, size_t n)
{
    int shares = s ? s->threads : 1;
    if (n < RELAY_SEND_MIN_SPLIT * 2)
        shares = 1;
    else if ((size_t)shares > n / RELAY_SEND_MIN_SPLIT)
        shares = (int)(n / RELAY_SEND_MIN_SPLIT);
    if (shares <= 1) {
        run_share(jobs, n, 0, 1);
        return;
    }
    pthread_mutex_lock(&s->lock);
    s->jobs = jobs;
    s->njobs = n;
    s->shares = shares;
    s->pending = shares - 1;
    s->generation++;
    pthread_cond_broadcast(&s->go);
    pthread_mutex_unlock(&s->lock);
    run_share(jobs, n, 0, shares);
    pthread_mutex_lock(&s->lock);
    while (s->pending > 0)
        pthread_cond_wait(&s->done, &s->lock);
    s->jobs = NULL;
    pthread_mutex_unlock(&s->lock);
}

void relay_senders_free(relay_senders *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    pthread_cond_broadcast(&s->go);
    pthread_mutex_unlock(&s->lock);
    for (int i = 1; i < s->threads; i++)
        pthread_join(s->tids[i], NULL);
    pthread_cond_destroy(&s->go);
    pthread_cond_destroy(&s->done);
    pthread_mutex_destroy(&s->lock);
    free(s->tids);
    free(s);
}
