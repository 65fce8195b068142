// libFuzzer's driver, reachable from Swift only when the binary is linked with
// -sanitize=fuzzer. LLVMFuzzerRunDriver is declared weak so that the same
// executable also links (and runs inputs by hand) in an ordinary `swift build`.
#ifndef CFUZZDRIVER_H
#define CFUZZDRIVER_H

#include <stddef.h>
#include <stdint.h>

typedef int (*emupanel_fuzz_callback)(const uint8_t *data, size_t size);

/// Non-zero when libFuzzer is linked in.
int emupanel_fuzzer_linked(void);

/// Runs libFuzzer with the process's arguments; only call when emupanel_fuzzer_linked().
int emupanel_fuzzer_run(int argc, char **argv, emupanel_fuzz_callback callback);

#endif
