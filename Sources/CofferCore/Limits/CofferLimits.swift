/// The bounds Coffer puts on what one caller can make it do: how often a client address
/// and an API key id may ask for tokens, how many config elements one stack or context
/// holds, how many bytes of stored values one page of a list reads, and how long repeated
/// refusals are gathered into one audit event. Each has a documented default and an
/// environment variable (README, "Limits").
public struct CofferLimits: Sendable, Equatable {
    /// Token requests per client address (`COFFER_TOKEN_RATE_PER_ADDRESS`); nil is off.
    public var tokenRatePerAddress: Rate?
    /// Token requests per API key id (`COFFER_TOKEN_RATE_PER_KEY`); nil is off.
    public var tokenRatePerKey: Rate?
    /// Config elements one stack or context may hold (`COFFER_MAX_ELEMENTS_PER_OWNER`).
    public var maxElementsPerOwner: Int
    /// Bytes of stored values one page of an element list or history reads
    /// (`COFFER_MAX_PAGE_BYTES`); a page that would read more ends early, with a cursor.
    public var maxPageBytes: Int
    /// Seconds over which identical refusals become one audit event (`COFFER_AUDIT_REFUSAL_WINDOW`).
    public var refusalWindow: Int
    /// Seconds between rounds that chain new audit events (`COFFER_AUDIT_CHAIN_INTERVAL`):
    /// how long an event's space, detail and time can be edited unnoticed.
    public var auditChainInterval: Int
    /// Seconds between checks of the whole audit trail by each replica (`COFFER_AUDIT_VERIFY_INTERVAL`).
    public var auditVerifyInterval: Int

    /// A token bucket: `count` requests at once, refilled at `count` per `seconds`.
    public struct Rate: Sendable, Equatable, CustomStringConvertible {
        public var count: Int
        public var seconds: Int

        public init(count: Int, seconds: Int) {
            self.count = count
            self.seconds = seconds
        }

        /// Parses `N/s`, `N/m` or `N/h`; nil for anything else.
        public init?(text: String) {
            let parts = text.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2, let count = Int(parts[0]), count > 0, count <= 1_000_000 else { return nil }
            switch parts[1] {
            case "s": seconds = 1
            case "m": seconds = 60
            case "h": seconds = 3600
            default: return nil
            }
            self.count = count
        }

        public var description: String {
            "\(count)/\(seconds == 1 ? "s" : seconds == 60 ? "m" : "h")"
        }
    }

    public static let defaultTokenRatePerAddress = Rate(count: 300, seconds: 60)
    public static let defaultTokenRatePerKey = Rate(count: 60, seconds: 60)
    public static let defaultMaxElementsPerOwner = 1000
    public static let defaultMaxPageBytes = 8 * 1024 * 1024
    public static let defaultRefusalWindow = 60
    public static let defaultAuditChainInterval = 5
    public static let defaultAuditVerifyInterval = 3600

    public init(
        tokenRatePerAddress: Rate? = CofferLimits.defaultTokenRatePerAddress, tokenRatePerKey: Rate? = CofferLimits.defaultTokenRatePerKey,
        maxElementsPerOwner: Int = CofferLimits.defaultMaxElementsPerOwner, maxPageBytes: Int = CofferLimits.defaultMaxPageBytes,
        refusalWindow: Int = CofferLimits.defaultRefusalWindow, auditChainInterval: Int = CofferLimits.defaultAuditChainInterval,
        auditVerifyInterval: Int = CofferLimits.defaultAuditVerifyInterval
    ) {
        self.auditChainInterval = auditChainInterval
        self.auditVerifyInterval = auditVerifyInterval
        self.tokenRatePerAddress = tokenRatePerAddress
        self.tokenRatePerKey = tokenRatePerKey
        self.maxElementsPerOwner = maxElementsPerOwner
        self.maxPageBytes = maxPageBytes
        self.refusalWindow = refusalWindow
    }

    /// The limits the environment sets, defaults for the rest.
    /// - Throws: ``ConfigurationError`` naming the first variable that is wrong.
    public init(environment: [String: String]) throws {
        self.init()
        func value(_ name: String) -> String? {
            guard let raw = environment[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !raw.isEmpty else { return nil }
            return raw
        }
        func rate(_ name: String) throws -> Rate?? {
            guard let text = value(name) else { return .none }
            if text.lowercased() == "off" { return .some(nil) }
            guard let rate = Rate(text: text) else {
                throw ConfigurationError(name, "must be a rate such as 300/m (also /s or /h, at most 1000000), or `off`")
            }
            return .some(rate)
        }
        if let rate = try rate("COFFER_TOKEN_RATE_PER_ADDRESS") { tokenRatePerAddress = rate }
        if let rate = try rate("COFFER_TOKEN_RATE_PER_KEY") { tokenRatePerKey = rate }
        if let text = value("COFFER_MAX_ELEMENTS_PER_OWNER") {
            guard let count = Int(text), (1...100_000).contains(count) else {
                throw ConfigurationError("COFFER_MAX_ELEMENTS_PER_OWNER", "must be an integer from 1 to 100000")
            }
            maxElementsPerOwner = count
        }
        if let text = value("COFFER_MAX_PAGE_BYTES") {
            guard let bytes = Self.bytes(text), (64 * 1024...1024 * 1024 * 1024).contains(bytes) else {
                throw ConfigurationError("COFFER_MAX_PAGE_BYTES", "must be a size from 64KiB to 1GiB, such as 8MiB or 1048576")
            }
            maxPageBytes = bytes
        }
        if let text = value("COFFER_AUDIT_REFUSAL_WINDOW") {
            guard let seconds = DurationText.seconds(text), seconds <= 3600 else {
                throw ConfigurationError("COFFER_AUDIT_REFUSAL_WINDOW", "must be a duration from 1s to 1h, such as 60s")
            }
            refusalWindow = seconds
        }
        if let text = value("COFFER_AUDIT_CHAIN_INTERVAL") {
            guard let seconds = DurationText.seconds(text), seconds <= 3600 else {
                throw ConfigurationError("COFFER_AUDIT_CHAIN_INTERVAL", "must be a duration from 1s to 1h, such as 5s")
            }
            auditChainInterval = seconds
        }
        if let text = value("COFFER_AUDIT_VERIFY_INTERVAL") {
            guard let seconds = DurationText.seconds(text), seconds <= 7 * 86400 else {
                throw ConfigurationError("COFFER_AUDIT_VERIFY_INTERVAL", "must be a duration from 1s to 7d, such as 1h")
            }
            auditVerifyInterval = seconds
        }
    }

    /// `1048576`, `512KiB`, `8MiB` or `1GiB` in bytes.
    static func bytes(_ text: String) -> Int? {
        for (suffix, unit) in [("KiB", 1024), ("MiB", 1024 * 1024), ("GiB", 1024 * 1024 * 1024)] where text.hasSuffix(suffix) {
            guard let count = Int(text.dropLast(suffix.count)) else { return nil }
            let (bytes, overflow) = count.multipliedReportingOverflow(by: unit)
            return overflow ? nil : bytes
        }
        return Int(text)
    }

    /// One line each, for `config check`.
    public var summary: String {
        "token rate per address \(tokenRatePerAddress?.description ?? "off"), per key \(tokenRatePerKey?.description ?? "off"); "
            + "\(maxElementsPerOwner) elements per owner; \(maxPageBytes) bytes per page; refusals gathered over \(refusalWindow)s; "
            + "audit events chained every \(auditChainInterval)s, the trail checked every \(auditVerifyInterval)s"
    }
}
