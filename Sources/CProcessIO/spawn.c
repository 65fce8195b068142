#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include "CProcessIO.h"

int emupanel_spawn(pid_t *pid, const char *path, char *const argv[], char *const envp[],
                   const char *directory, int stdin_fd, int stdout_fd, int stderr_fd,
                   const int *inherited, int inherited_count) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    int error = posix_spawn_file_actions_init(&actions);
    if (error) return error;
    error = posix_spawnattr_init(&attributes);
    if (error) {
        posix_spawn_file_actions_destroy(&actions);
        return error;
    }
    // Descriptors to pass are first copied above every descriptor involved, so a dup2 onto
    // 0..2 or 3 + i can never clobber one that is still to be copied.
    int base = 3 + inherited_count;
    int given[3] = { stdin_fd, stdout_fd, stderr_fd };
    for (int i = 0; i < 3; i++) if (given[i] >= base) base = given[i] + 1;
    for (int i = 0; i < inherited_count; i++) if (inherited[i] >= base) base = inherited[i] + 1;
    for (int i = 0; i < inherited_count && !error; i++)
        error = posix_spawn_file_actions_adddup2(&actions, inherited[i], base + i);
    if (!error) error = posix_spawn_file_actions_adddup2(&actions, stdin_fd, 0);
    if (!error) error = posix_spawn_file_actions_adddup2(&actions, stdout_fd, 1);
    if (!error) error = posix_spawn_file_actions_adddup2(&actions, stderr_fd, 2);
    for (int i = 0; i < inherited_count && !error; i++)
        error = posix_spawn_file_actions_adddup2(&actions, base + i, 3 + i);
    if (!error) error = posix_spawn_file_actions_addclosefrom_np(&actions, 3 + inherited_count);
    if (!error && directory) error = posix_spawn_file_actions_addchdir_np(&actions, directory);
    // A thread's blocked signals and the parent's ignored ones (SIGPIPE) would be inherited.
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    if (!error) error = posix_spawnattr_setsigmask(&attributes, &none);
    if (!error) error = posix_spawnattr_setsigdefault(&attributes, &all);
    if (!error) error = posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (!error) error = posix_spawn(pid, path, &actions, &attributes, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    return error;
}
