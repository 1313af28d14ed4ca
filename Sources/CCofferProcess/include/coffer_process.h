#ifndef COFFER_PROCESS_H
#define COFFER_PROCESS_H

/// Makes the process undumpable (no core file, no ptrace by other users, /proc/<pid>/mem
/// and /proc/<pid>/environ root-only) and sets RLIMIT_CORE to 0. Returns 0 on success.
/// prctl is variadic, which Swift cannot call, hence this C file.
int coffer_disable_core_dumps(void);

/// Overwrites the value of environment variable `name` in place (the process's initial
/// environment block, which /proc/<pid>/environ shows) and removes the variable.
/// Returns 1 if it was set.
int coffer_wipe_environment_variable(const char *name);

#endif
