import Foundation

/// Which endpoints Coffer talks to without TLS: only ones that cannot leave the host or the
/// task (the AWS SDKs' rules for container credentials).
enum Transport {
    /// `localhost`, 127.0.0.0/8 or ::1.
    static func isLoopback(_ host: String) -> Bool {
        let host = host.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        if host == "localhost" || host == "::1" { return true }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }

    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI`: https anywhere, http only on loopback or the
    /// ECS and EKS Pod Identity agent addresses.
    static func isAllowedContainerCredentialsURI(_ uri: String) -> Bool {
        guard let url = URL(string: uri), let scheme = url.scheme?.lowercased(), let rawHost = url.host else { return false }
        if scheme == "https" { return true }
        guard scheme == "http" else { return false }
        let host = rawHost.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        return isLoopback(host) || ["169.254.170.2", "169.254.170.23", "fd00:ec2::23"].contains(host)
    }
}
