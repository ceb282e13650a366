/*
 * Helper for the client tests: run meridian-cli as a child process with its
 * stdout and stderr in two files, so that tests can parse stdout (tokens,
 * JSON lines) and match error lines on stderr separately. Waiting is always
 * bounded: polls with a deadline, never a fixed sleep.
 */
#include "cli_run.h"

#include "mr_test.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void cli_start(cli_proc *p, const char *dir, const char *tag, const char *const args[])
{
    cli_start_to(p, dir, tag, args, NULL);
}

void cli_start_to(cli_proc *p, const char *dir, const char *tag, const char *const args[],
                  const char *stdout_path)
{
    if (stdout_path)
        snprintf(p->out_path, sizeof p->out_path, "%s", stdout_path);
    else
        snprintf(p->out_path, sizeof p->out_path, "%s/%s.out", dir, tag);
    snprintf(p->err_path, sizeof p->err_path, "%s/%s.err", dir, tag);
    const char *argv[64];
    int n = 0;
    argv[n++] = MERIDIAN_CLI_BIN;
    for (int i = 0; args[i] && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    int errpipe[2];
    ck_assert(pipe2(errpipe, O_CLOEXEC) == 0);
    pid_t pid = fork();
    ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int o = open(p->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = open(p->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int in = open("/dev/null", O_RDONLY);
        if (o < 0 || e < 0 || in < 0)
            _exit(126);
        dup2(o, 1);
        dup2(e, 2);
        dup2(in, 0);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execv(argv[0], (char *const *)argv);
        int err = errno;
        ssize_t w = write(errpipe[1], &err, sizeof err);
        (void)w;
        _exit(127);
    }
    close(errpipe[1]);
    int err = 0;
    ssize_t r = read(errpipe[0], &err, sizeof err);
    close(errpipe[0]);
    ck_assert_msg(r <= 0, "cannot start %s: %s", argv[0], strerror(err));
    p->pid = pid;
}

int cli_wait(cli_proc *p, int timeout_ms)
{
    int st = mr_test_wait_exit(p->pid, timeout_ms);
    if (st == -1) {
        mr_test_stop(p->pid, SIGKILL, 2000);
        p->pid = 0;
        return -1;
    }
    p->pid = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return strdup("");
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (n + 1 == cap)
            buf = realloc(buf, cap *= 2);
    }
    (void)fclose(f); /* opened to read only */
    buf[n] = '\0';
    return buf;
}

char *cli_out(const cli_proc *p)
{
    return slurp(p->out_path);
}

char *cli_err(const cli_proc *p)
{
    return slurp(p->err_path);
}

bool cli_wait_output(const cli_proc *p, bool err, const char *needle, int timeout_ms)
{
    int64_t deadline = mr_test_now_ms() + timeout_ms;
    for (;;) {
        char *s = slurp(err ? p->err_path : p->out_path);
        bool found = strstr(s, needle) != NULL;
        free(s);
        if (found)
            return true;
        if (mr_test_now_ms() >= deadline)
            return false;
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
}

int cli_run(const char *dir, const char *tag, const char *const args[], int timeout_ms, char **out,
            char **err)
{
    cli_proc p;
    cli_start(&p, dir, tag, args);
    int rc = cli_wait(&p, timeout_ms);
    if (out)
        *out = cli_out(&p);
    if (err)
        *err = cli_err(&p);
    return rc;
}

int cli_count_lines(const char *s)
{
    int n = 0;
    size_t len = strlen(s);
    for (size_t i = 0; i < len; i++)
        if (s[i] == '\n')
            n++;
    if (len > 0 && s[len - 1] != '\n')
        n++;
    return n;
}
