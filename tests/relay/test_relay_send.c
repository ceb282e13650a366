/*
 * The sender threads (relay_send.c): every job's bytes reach its own socket
 * once, whichever thread wrote them; a socket that takes nothing or part
 * reports what it took; a dead peer reports its error; and the threads stop
 * when freed. Sockets are socketpairs; TSan runs the "threads" case.
 */
#include "relay_send.h"
#include "mr_test.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NSOCK 300

static void pair(int sv[2])
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
    ck_assert_int_eq(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
}

static void job_for(relay_send_job *j, int fd, const char *hdr, const char *payload, void *ud)
{
    memset(j, 0, sizeof *j);
    j->fd = fd;
    j->hdr_len = strlen(hdr);
    memcpy(j->hdr, hdr, j->hdr_len);
    j->payload = payload;
    j->payload_len = strlen(payload);
    j->sent = -7; /* the run must set it */
    j->err = -7;
    j->ud = ud;
}

static ssize_t total(const relay_send_job *j)
{
    return (ssize_t)(j->hdr_len + j->payload_len);
}

/* Read everything waiting on fd (non-blocking) into buf; returns the bytes. */
static size_t drain(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    for (;;) {
        ssize_t k = read(fd, buf + n, cap - n);
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    return n;
}

/* Each of NSOCK sockets gets its own bytes, exactly once, with 1, 2 and 4 senders. */
static void run_many(int threads)
{
    relay_senders *s = relay_senders_new(threads);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(relay_senders_count(s), threads);
    static int sv[NSOCK][2];
    static char payload[NSOCK][32];
    static relay_send_job filled[NSOCK], jobs[NSOCK];
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < NSOCK; i++) {
            if (round == 0)
                pair(sv[i]);
            snprintf(payload[i], sizeof payload[i], "<%d:%d>", i, round);
            job_for(&filled[i], sv[i][0], "H", payload[i], &sv[i]);
        }
        /* Jobs are moved after they are filled (the relay's array grows): nothing points into them.
         */
        memcpy(jobs, filled, sizeof jobs);
        memset(filled, 0xa5, sizeof filled);
        relay_senders_run(s, jobs, NSOCK);
        for (int i = 0; i < NSOCK; i++) {
            ck_assert_int_eq(jobs[i].err, 0);
            ck_assert_int_eq(jobs[i].sent, total(&jobs[i]));
            ck_assert_ptr_eq(jobs[i].ud, &sv[i]);
            char got[128], want[64];
            size_t n = drain(sv[i][1], got, sizeof got - 1);
            got[n] = '\0';
            snprintf(want, sizeof want, "H<%d:%d>", i, round);
            ck_assert_str_eq(got, want);
        }
    }
    for (int i = 0; i < NSOCK; i++) {
        close(sv[i][0]);
        close(sv[i][1]);
    }
    relay_senders_free(s);
}

START_TEST(every_socket_gets_its_bytes_once)
{
    run_many(1);
    run_many(2);
    run_many(4);
}
END_TEST

/* A full socket takes part or nothing, without error; a dead peer gives its error. */
START_TEST(full_and_dead_sockets_report_what_happened)
{
    relay_senders *s = relay_senders_new(2);
    ck_assert_ptr_nonnull(s);
    int full[2], dead[2];
    pair(full);
    pair(dead);
    /* Fill `full` until the kernel refuses. */
    char block[4096];
    memset(block, 'x', sizeof block);
    while (write(full[0], block, sizeof block) > 0)
        ;
    ck_assert_int_eq(errno, EAGAIN);
    close(dead[1]);
    /* Enough jobs to be split: the two sockets' jobs are among many to a quiet one. */
    int quiet[2];
    pair(quiet);
    ck_assert_int_eq(setsockopt(quiet[0], SOL_SOCKET, SO_SNDBUF, &(int){1 << 20}, sizeof(int)), 0);
    enum { N = 4 * RELAY_SEND_MIN_SPLIT };
    static relay_send_job jobs[N];
    for (int i = 0; i < N; i++)
        job_for(&jobs[i], quiet[0], "", "q", NULL);
    job_for(&jobs[0], full[0], "HH", "payload", NULL);
    job_for(&jobs[N - 1], dead[0], "HH", "payload", NULL);
    relay_senders_run(s, jobs, N);
    ck_assert_int_eq(jobs[0].err, 0);
    ck_assert_int_lt(jobs[0].sent, total(&jobs[0]));
    ck_assert_int_ge(jobs[0].sent, 0);
    ck_assert_int_eq(jobs[N - 1].err, EPIPE);
    ck_assert_int_eq(jobs[N - 1].sent, 0);
    char got[N];
    ck_assert_int_eq(drain(quiet[1], got, sizeof got), N - 2);
    relay_senders_free(s);
    close(full[0]);
    close(full[1]);
    close(dead[0]);
    close(quiet[0]);
    close(quiet[1]);
}
END_TEST

/* Threads that never ran a job, and NULL, are freed without hanging. */
START_TEST(idle_senders_stop)
{
    relay_senders_free(NULL);
    ck_assert_int_eq(relay_senders_count(NULL), 1);
    relay_senders *s = relay_senders_new(8);
    ck_assert_ptr_nonnull(s);
    relay_senders_free(s);
    s = relay_senders_new(0);
    ck_assert_int_eq(relay_senders_count(s), 1);
    relay_senders_run(s, NULL, 0);
    relay_senders_free(s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("relay_send");
    TCase *tc = mr_test_case(s, "threads", NULL, NULL, 60);
    tcase_add_test(tc, every_socket_gets_its_bytes_once);
    tcase_add_test(tc, full_and_dead_sockets_report_what_happened);
    tcase_add_test(tc, idle_senders_stop);
    return mr_test_run(s);
}
