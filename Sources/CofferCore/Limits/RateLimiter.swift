import Synchronization

/// Token buckets by key (a client address, an API key id): each key may spend
/// `rate.count` requests at once and earns them back at `rate.count` per `rate.seconds`.
/// Bounded: past `capacity` keys it forgets the ones whose buckets are full again (they
/// would behave the same if made anew), then the least recently seen tenth.
final class RateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: Double
    }

    let rate: CofferLimits.Rate
    let capacity: Int
    private let buckets = Mutex<[String: Bucket]>([:])
    private let now: @Sendable () -> Double

    /// - Parameter now: seconds on a monotonic clock (a test moves its own).
    init(rate: CofferLimits.Rate, capacity: Int = 100_000, now: @escaping @Sendable () -> Double = RateLimiter.monotonicSeconds) {
        precondition(rate.count > 0 && rate.seconds > 0 && capacity > 0)
        self.rate = rate
        self.capacity = capacity
        self.now = now
    }

    /// Takes one request from `key`'s bucket: nil if allowed, else the whole seconds to
    /// wait until it would be (at least 1), for `Retry-After`.
    func take(_ key: String) -> Int? {
        let now = self.now()
        let perSecond = Double(rate.count) / Double(rate.seconds)
        let full = Double(rate.count)
        return buckets.withLock { buckets in
            var bucket = buckets[key] ?? Bucket(tokens: full, updated: now)
            bucket.tokens = min(full, bucket.tokens + max(0, now - bucket.updated) * perSecond)
            bucket.updated = now
            defer {
                if buckets[key] == nil, buckets.count >= capacity { Self.shrink(&buckets, full: full, perSecond: perSecond, now: now, keep: capacity) }
                buckets[key] = bucket
            }
            guard bucket.tokens >= 1 else {
                return max(1, Int(((1 - bucket.tokens) / perSecond).rounded(.up)))
            }
            bucket.tokens -= 1
            return nil
        }
    }

    var count: Int { buckets.withLock { $0.count } }

    private static func shrink(_ buckets: inout [String: Bucket], full: Double, perSecond: Double, now: Double, keep: Int) {
        buckets = buckets.filter { $0.value.tokens + (now - $0.value.updated) * perSecond < full }
        guard buckets.count >= keep else { return }
        let oldest = buckets.sorted { $0.value.updated < $1.value.updated }.prefix(max(1, keep / 10)).map(\.key)
        for key in oldest { buckets.removeValue(forKey: key) }
    }

    @Sendable static func monotonicSeconds() -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    private static let start = ContinuousClock.now
}

/// The throttle of `POST /api/v1/auth/token`: per client address and per API key id, both
/// checked before any database work, so guessing secrets costs the guesser, not Coffer.
public struct TokenThrottle: Sendable {
    let perAddress: RateLimiter?
    let perKey: RateLimiter?

    public init(limits: CofferLimits) {
        perAddress = limits.tokenRatePerAddress.map { RateLimiter(rate: $0) }
        perKey = limits.tokenRatePerKey.map { RateLimiter(rate: $0) }
    }

    init(perAddress: RateLimiter?, perKey: RateLimiter?) {
        self.perAddress = perAddress
        self.perKey = perKey
    }

    /// What a refusal names: which bound and how long to wait.
    public struct Refusal: Sendable, Equatable {
        public let bound: String
        public let retryAfter: Int
    }

    /// Nil if a token request from `address` for `keyID` may go on. A request refused by
    /// the address bound spends nothing of the key's, so a flood from one address cannot
    /// lock a key out for everybody else.
    func check(address: String, keyID: String) -> Refusal? {
        if let perAddress, let wait = perAddress.take(address) {
            return Refusal(bound: "COFFER_TOKEN_RATE_PER_ADDRESS=\(perAddress.rate)", retryAfter: wait)
        }
        if let perKey, let wait = perKey.take(keyID) {
            return Refusal(bound: "COFFER_TOKEN_RATE_PER_KEY=\(perKey.rate)", retryAfter: wait)
        }
        return nil
    }
}
