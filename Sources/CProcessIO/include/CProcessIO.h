// Process and descriptor calls the QEMU backend needs that Swift's Glibc module cannot
// express: posix_spawn's GNU file actions (chdir, closefrom; declared only under
// _GNU_SOURCE) and SCM_RIGHTS control messages (built from CMSG_* macros).
#pragma once
#include <sys/types.h>

/// Starts `path` with `argv` (NULL-terminated) and `envp` in `directory`, never through a
/// shell. The child's stdin, stdout and stderr are `stdin_fd`, `stdout_fd`, `stderr_fd`;
/// `inherited[i]` becomes its descriptor 3 + i; every other descriptor is closed, the
/// signal mask is emptied and signal dispositions reset. 0 and `*pid`, or an errno value.
int emupanel_spawn(pid_t *pid, const char *path, char *const argv[], char *const envp[],
                   const char *directory, int stdin_fd, int stdout_fd, int stderr_fd,
                   const int *inherited, int inherited_count);

/// Sends `length` bytes on a Unix socket with descriptor `fd` attached (SCM_RIGHTS), as
/// QMP's `getfd` expects; never raises SIGPIPE. Bytes sent, or -1 with errno.
ssize_t emupanel_send_with_fd(int socket, const void *bytes, size_t length, int fd);
