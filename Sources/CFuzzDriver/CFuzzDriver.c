// See include/CFuzzDriver.h. A weak undefined symbol resolves to NULL when
// libFuzzer is absent, which Swift cannot test for; C can.
#include "CFuzzDriver.h"

extern int LLVMFuzzerRunDriver(int *argc, char ***argv,
                               int (*callback)(const uint8_t *data, size_t size)) __attribute__((weak));

int emupanel_fuzzer_linked(void) { return LLVMFuzzerRunDriver != NULL; }

int emupanel_fuzzer_run(int argc, char **argv, emupanel_fuzz_callback callback) {
    return LLVMFuzzerRunDriver(&argc, &argv, callback);
}
