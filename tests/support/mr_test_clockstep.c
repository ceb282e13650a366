/*
 * Test support: a wall clock that has just been stepped backwards, for one
 * program. Preloaded (LD_PRELOAD) into a process started by a test, it adds
 * MR_TEST_CLOCK_STEP_S seconds to every CLOCK_REALTIME reading that the
 * program's own code makes (calls from shared libraries are left alone, so
 * libnats, libpq and libc keep the true time). To that code the wall clock
 * then always runs ahead of the kernel's, exactly as if it had been stepped
 * back by that much right after each reading: a deadline for
 * pthread_cond_timedwait() computed from CLOCK_REALTIME on a default
 * (CLOCK_REALTIME) condition variable ends that many seconds late, while
 * one measured on CLOCK_MONOTONIC is unaffected. No privileges needed and
 * the machine's clock is never touched.
 *
 * Built without sanitizers; a sanitized program needs
 * ASAN_OPTIONS=verify_asan_link_order=0 to accept a preload ahead of libasan
 * (mr_test_clockstep_env() in mr_test.h sets both).
 */
#include <dlfcn.h>
#include <link.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#define MAX_SEGMENTS 8

static int (*real_clock_gettime)(clockid_t, struct timespec *);
static uintptr_t seg_lo[MAX_SEGMENTS], seg_hi[MAX_SEGMENTS];
static int nseg;
static long step_s;

/* The first object dl_iterate_phdr reports is the program itself: record its code. */
static int find_program(struct dl_phdr_info *info, size_t size, void *data)
{
    for (int i = 0; i < info->dlpi_phnum && nseg < MAX_SEGMENTS; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
            seg_lo[nseg] = info->dlpi_addr + ph->p_vaddr;
            seg_hi[nseg] = seg_lo[nseg] + ph->p_memsz;
            nseg++;
        }
    }
    return 1;
}

__attribute__((constructor)) static void clockstep_init(void)
{
    const char *s = getenv("MR_TEST_CLOCK_STEP_S");
    step_s = s ? atol(s) : 0;
    real_clock_gettime = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    dl_iterate_phdr(find_program, NULL);
}

static int from_program(uintptr_t pc)
{
    for (int i = 0; i < nseg; i++)
        if (pc >= seg_lo[i] && pc < seg_hi[i])
            return 1;
    return 0;
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
    if (!real_clock_gettime)
        clockstep_init();
    int rc = real_clock_gettime(id, ts);
    if (rc == 0 && id == CLOCK_REALTIME && from_program((uintptr_t)__builtin_return_address(0)))
        ts->tv_sec += step_s;
    return rc;
}
