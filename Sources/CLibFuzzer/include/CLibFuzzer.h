#ifndef COFFER_CLIBFUZZER_H
#define COFFER_CLIBFUZZER_H

#include <stddef.h>
#include <stdint.h>

/// libFuzzer's driver (compiler-rt), linked in only by `-sanitize=fuzzer` builds
/// (scripts/fuzz). coffer-fuzz calls it from its own `main`, because SwiftPM renames an
/// executable's `main`, so libFuzzer's cannot be used.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
