import CCofferProcess

/// What the process does before anything else: no core dumps (a core file of a vault holds
/// its keys), and the secret variables gone from its environment once read, so
/// `/proc/<pid>/environ` and child processes no longer show them.
enum ProcessHygiene {
    /// Variables that hold a key, a credential or a password.
    static let secretVariables = [
        "ENCRYPTION_RSA_PRIVATE_KEY", "PREVIOUS_ENCRYPTION_RSA_PRIVATE_KEY", "DATABASE_URL",
        "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN", "COFFER_TOKEN",
        "COFFER_API_KEY_SECRET",
    ]

    static func apply() {
        _ = coffer_disable_core_dumps()
        // Read the environment first: the commands take their configuration from this copy.
        _ = ProcessEnvironment.variables
        for name in secretVariables { _ = coffer_wipe_environment_variable(name) }
    }
}
