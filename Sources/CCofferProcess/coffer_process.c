#include "coffer_process.h"

#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

int coffer_disable_core_dumps(void) {
    struct rlimit none = {0, 0};
    int failed = 0;
    if (setrlimit(RLIMIT_CORE, &none) != 0) failed = 1;
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) failed = 1;
    return failed ? -1 : 0;
}

int coffer_wipe_environment_variable(const char *name) {
    char *value = getenv(name);
    if (value == NULL) return 0;
    // volatile: the store must happen although nothing reads the bytes afterwards.
    volatile char *bytes = value;
    size_t length = strlen(value);
    for (size_t i = 0; i < length; i++) bytes[i] = 'x';
    unsetenv(name);
    return 1;
}
