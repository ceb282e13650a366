/* Running meridian-cli from tests: stdout and stderr captured separately, with deadlines. */
#ifndef CLI_RUN_H
#define CLI_RUN_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct cli_proc {
    pid_t pid;
    char out_path[512];
    char err_path[512];
} cli_proc;

/**
 * Start meridian-cli with `args` (NULL-terminated, without argv[0]); stdout
 * and stderr go to files in `dir`, named after `tag`. Aborts the test when
 * the program cannot be started.
 */
void cli_start(cli_proc *p, const char *dir, const char *tag, const char *const args[]);
/**
 * As cli_start, with stdout to `stdout_path` (say /dev/full) when it is not
 * NULL; cli_out must not be used then.
 */
void cli_start_to(cli_proc *p, const char *dir, const char *tag, const char *const args[],
                  const char *stdout_path);
/** Wait for the exit within `timeout_ms`; returns the exit code, or -1 (time-out or signal). */
int cli_wait(cli_proc *p, int timeout_ms);
/** The captured stdout / stderr so far (malloc'd, NUL-terminated). */
char *cli_out(const cli_proc *p);
char *cli_err(const cli_proc *p);
/** Poll until stderr (err=true) or stdout contains `needle`; true when it did in time. */
bool cli_wait_output(const cli_proc *p, bool err, const char *needle, int timeout_ms);
/** Run to completion within `timeout_ms`: exit code (or -1), outputs malloc'd into *out, *err. */
int cli_run(const char *dir, const char *tag, const char *const args[], int timeout_ms, char **out,
            char **err);
/** Count the lines of `s` (a final line without '\n' counts). */
int cli_count_lines(const char *s);

#endif
