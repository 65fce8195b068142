// Linux file calls that glibc declares only under _GNU_SOURCE, which Swift's Glibc module
// does not define.
#pragma once
#include <sys/types.h>

/// Starts writeback of a file range without waiting for it (sync_file_range with
/// SYNC_FILE_RANGE_WRITE), so a later fsync finds less to do. 0, or -1 with errno.
int emupanel_start_writeback(int fd, off_t offset, off_t length);
