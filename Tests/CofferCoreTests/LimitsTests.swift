import CofferStore
import Synchronization
import Testing

@testable import CofferCore

/// The logic behind the abuse bounds, on a clock the test moves: token buckets, gathered
/// refusals and the limits' configuration. The same bounds through the API are held by
/// `AbuseBoundsTests`.
@Suite struct LimitsTests {
    final class Clock: Sendable {
        private let seconds = Mutex<Double>(0)
        var now: Double { seconds.withLock { $0 } }
        func advance(_ by: Double) { seconds.withLock { $0 += by } }
    }

    @Test func aBucketSpendsItsBurstThenRefillsAtItsRate() {
        let clock = Clock()
        let limiter = RateLimiter(rate: .init(count: 3, seconds: 60), now: { clock.now })
        #expect(limiter.take("a") == nil)
        #expect(limiter.take("a") == nil)
        #expect(limiter.take("a") == nil)
        #expect(limiter.take("a") == 20)  // one request per 20 s
        #expect(limiter.take("b") == nil)
        clock.advance(10)
        #expect(limiter.take("a") == 10)
        clock.advance(10)
        #expect(limiter.take("a") == nil)
        #expect(limiter.take("a") == 20)
        clock.advance(3600)
        for _ in 0..<3 { #expect(limiter.take("a") == nil) }
    }

    @Test func aFullTableForgetsIdleKeysFirst() {
        let clock = Clock()
        let limiter = RateLimiter(rate: .init(count: 2, seconds: 60), capacity: 3, now: { clock.now })
        #expect(limiter.take("busy") == nil)
        #expect(limiter.take("busy") == nil)
        #expect(limiter.take("idle") == nil)
        clock.advance(30)  // idle is full again, busy has one request back
        #expect(limiter.take("x") == nil)
        #expect(limiter.take("y") == nil)  // the table is full: idle goes, as it would behave the same made anew
        #expect(limiter.count == 3)
        #expect(limiter.take("busy") == nil)
        #expect(limiter.take("busy") != nil, "the busy key's spent bucket was forgotten")
    }

    @Test func throttlingByAddressSpendsNothingOfTheKeys() {
        let clock = Clock()
        let throttle = TokenThrottle(
            perAddress: RateLimiter(rate: .init(count: 1, seconds: 60), now: { clock.now }),
            perKey: RateLimiter(rate: .init(count: 1, seconds: 60), now: { clock.now })
        )
        #expect(throttle.check(address: "10.0.0.1", keyID: "ak_1") == nil)
        #expect(throttle.check(address: "10.0.0.1", keyID: "ak_2")?.bound == "COFFER_TOKEN_RATE_PER_ADDRESS=1/m")
        #expect(throttle.check(address: "10.0.0.2", keyID: "ak_2") == nil)
        #expect(throttle.check(address: "10.0.0.3", keyID: "ak_2")?.bound == "COFFER_TOKEN_RATE_PER_KEY=1/m")
    }

    static func refusal(_ resource: String, request: String = "r") -> AuditRecord {
        AuditRecord(actor: "anonymous", actorSpace: "", action: "token.issue", resource: resource, space: nil, requestID: request, outcome: .denied)
    }

    @Test func repeatedRefusalsAreCountedAndSummarisedWhenTheirWindowEnds() {
        let clock = Clock()
        let aggregator = RefusalAggregator(window: 60, capacity: 100, now: { clock.now })
        #expect(aggregator.admit(Self.refusal("api_key:a")))
        for index in 0..<5 { #expect(!aggregator.admit(Self.refusal("api_key:a", request: "r\(index)"))) }
        #expect(aggregator.admit(Self.refusal("api_key:b")))
        #expect(aggregator.drain().isEmpty)
        clock.advance(60)
        let summaries = aggregator.drain()
        #expect(summaries.count == 1)
        #expect(summaries.first?.resource == "api_key:a")
        #expect(summaries.first?.detail == "repeats=5 over=60s")
        #expect(summaries.first?.requestID == "r4")
        #expect(aggregator.admit(Self.refusal("api_key:a")), "a new window writes its first refusal again")
    }

    @Test func pastItsCapacityRefusalsAreCountedUnderTheirActionAlone() {
        let clock = Clock()
        let aggregator = RefusalAggregator(window: 60, capacity: 2, now: { clock.now })
        #expect(aggregator.admit(Self.refusal("api_key:a")))
        #expect(aggregator.admit(Self.refusal("api_key:b")))
        #expect(!aggregator.admit(Self.refusal("api_key:c")))
        #expect(!aggregator.admit(Self.refusal("api_key:d")))
        let summaries = aggregator.drain(all: true)
        #expect(summaries.count == 1)
        #expect(summaries.first?.resource == "*")
        #expect(summaries.first?.detail.hasSuffix("repeats=2 over=60s") == true)
    }

    @Test func limitsAreReadFromTheEnvironment() throws {
        let defaults = try CofferLimits(environment: [:])
        #expect(defaults == CofferLimits())
        let set = try CofferLimits(environment: [
            "COFFER_TOKEN_RATE_PER_ADDRESS": "off", "COFFER_TOKEN_RATE_PER_KEY": "10/s", "COFFER_MAX_ELEMENTS_PER_OWNER": "50",
            "COFFER_MAX_PAGE_BYTES": "1MiB", "COFFER_AUDIT_REFUSAL_WINDOW": "5m",
        ])
        #expect(set.tokenRatePerAddress == nil)
        #expect(set.tokenRatePerKey == .init(count: 10, seconds: 1))
        #expect(set.maxElementsPerOwner == 50)
        #expect(set.maxPageBytes == 1024 * 1024)
        #expect(set.refusalWindow == 300)
        for (name, value) in [("COFFER_TOKEN_RATE_PER_KEY", "10"), ("COFFER_TOKEN_RATE_PER_ADDRESS", "0/m"), ("COFFER_MAX_ELEMENTS_PER_OWNER", "0"),
                              ("COFFER_MAX_PAGE_BYTES", "1KiB"), ("COFFER_AUDIT_REFUSAL_WINDOW", "2h")] {
            #expect(throws: ConfigurationError.self, "\(name)=\(value)") { try CofferLimits(environment: [name: value]) }
        }
    }
}

extension LimitsTests {
    /// A window that ended is replaced by the next refusal before a drain wrote it: its
    /// count still reaches the trail.
    @Test func aWindowReplacedBeforeItWasWrittenKeepsItsCount() {
        let clock = Clock()
        let aggregator = RefusalAggregator(window: 60, capacity: 100, now: { clock.now })
        #expect(aggregator.admit(Self.refusal("api_key:a")))
        for _ in 0..<3 { #expect(!aggregator.admit(Self.refusal("api_key:a"))) }
        clock.advance(61)
        #expect(aggregator.admit(Self.refusal("api_key:a")))
        let summaries = aggregator.drain()
        #expect(summaries.map(\.detail) == ["repeats=3 over=60s"])
    }
}
