import Prometheus
import Synchronization

/// Coffer's Prometheus metrics, kept by swift-prometheus's collector registry and rendered
/// by it in the text exposition format. Every series belongs to a ``MetricFamily`` of the
/// catalogue below (name, help, labels: defined once). Labels carry route templates,
/// statuses, actions, error codes and key version names only: never a secret, a token or
/// a caller-supplied id.
public final class Metrics: Sendable {
    /// Latency buckets, seconds.
    public static let latencyBuckets: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    private let registry = PrometheusCollectorRegistry()
    /// Totals last copied into counters that are sampled at scrape time.
    private let sampledTotals = Mutex<[String: Double]>([:])
    /// The gauges last set per family by ``replaceGauges(_:_:)``.
    private let replacedGauges = Mutex<[String: [[String]: Gauge]]>([:])
    /// The per-request series, looked up once: the registry's own lookup (label pairs, a
    /// lock, validation) cost four times the hand-built counters it replaced.
    private let counters = Mutex<[SeriesKey: Counter]>([:])
    private let histograms = Mutex<[SeriesKey: ValueHistogram]>([:])

    private struct SeriesKey: Hashable {
        let name: String
        let labels: [String]
    }

    public init() {
        // Shown from the start at 0, so the first token issued counts in `increase()`.
        _ = counter(.tokensIssued, [])
        _ = counter(.integrityFailures, ["api_keys"])
        _ = counter(.integrityFailures, ["kms_keys"])
        _ = counter(.integrityFailures, ["config_elements"])
        _ = counter(.integrityFailures, ["audit_events"])
    }

    /// Counts an event of `family` with `labels` (values in the family's label order).
    public func increment(_ family: MetricFamily, _ labels: [String] = [], by amount: Int = 1) {
        counter(family, labels).increment(by: Int64(amount))
    }

    /// Records a duration in a histogram family.
    public func observe(_ family: MetricFamily, _ labels: [String], seconds: Double) {
        Self.series(family, labels, in: histograms) {
            registry.makeValueHistogram(descriptor: family.descriptor, labels: pairs(family, labels), buckets: Self.latencyBuckets)
        }.record(seconds)
    }

    /// Brings a counter up to `total`, a running count kept elsewhere (read at scrape time).
    public func sample(_ family: MetricFamily, _ labels: [String] = [], count total: Int) {
        let delta = advance(family, labels, to: Double(total))
        if delta > 0 { counter(family, labels).increment(by: Int64(delta)) } else { _ = counter(family, labels) }
    }

    /// Brings a counter up to `total`, a running sum kept elsewhere (seconds).
    public func sample(_ family: MetricFamily, _ labels: [String] = [], sum total: Double) {
        let delta = advance(family, labels, to: total)
        if delta > 0 { counter(family, labels).increment(by: delta) } else { _ = counter(family, labels) }
    }

    /// How much `total` grew since the last sample of this series (0 if it did not).
    private func advance(_ family: MetricFamily, _ labels: [String], to total: Double) -> Double {
        let key = family.name + "\u{0}" + labels.joined(separator: "\u{0}")
        return sampledTotals.withLock { last in
            let delta = total - (last[key] ?? 0)
            if delta > 0 { last[key] = total }
            return max(delta, 0)
        }
    }

    /// Sets a gauge.
    public func set(_ family: MetricFamily, _ labels: [String] = [], to value: Double) {
        registry.makeGauge(descriptor: family.descriptor, labels: pairs(family, labels)).set(value)
    }

    /// Sets the gauges of `family` to exactly `series`: gauges set last time and absent now
    /// (a destruction job that finished) are removed.
    public func replaceGauges(_ family: MetricFamily, _ series: [(labels: [String], value: Double)]) {
        // All under one lock: of two scrapes at once, the later replacement wins whole.
        replacedGauges.withLock { gauges in
            var fresh: [[String]: Gauge] = [:]
            for (labels, value) in series {
                let gauge = registry.makeGauge(descriptor: family.descriptor, labels: pairs(family, labels))
                gauge.set(value)
                fresh[labels] = gauge
            }
            for (labels, gauge) in gauges[family.name] ?? [:] where fresh[labels] == nil {
                registry.unregisterGauge(gauge)
            }
            gauges[family.name] = fresh
        }
    }

    /// Every series in Prometheus text format.
    public func render() -> String {
        registry.emitToString()
    }

    private func counter(_ family: MetricFamily, _ labels: [String]) -> Counter {
        Self.series(family, labels, in: counters) { registry.makeCounter(descriptor: family.descriptor, labels: pairs(family, labels)) }
    }

    /// The series of `family` with `labels` from `table`, made (and registered) the first time.
    private static func series<Series>(
        _ family: MetricFamily, _ labels: [String], in table: borrowing Mutex<[SeriesKey: Series]>, make: () -> Series
    ) -> Series {
        let key = SeriesKey(name: family.name, labels: labels)
        return table.withLock { table in
            if let found = table[key] { return found }
            let made = make()
            table[key] = made
            return made
        }
    }

    private func pairs(_ family: MetricFamily, _ values: [String]) -> [(String, String)] {
        precondition(values.count == family.labels.count, "\(family.name) takes labels \(family.labels)")
        return Array(zip(family.labels, values))
    }
}

/// A metric of Coffer: its name, its help text and the names of its labels.
public struct MetricFamily: Sendable {
    public let name: String
    public let help: String
    public let labels: [String]

    init(_ name: String, _ help: String, labels: [String] = []) {
        self.name = name
        self.help = help
        self.labels = labels
    }

    /// The registry's name and help of this family (the full name, no unit suffix added).
    var descriptor: MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }
}

/// Every metric Coffer exposes.
extension MetricFamily {
    public static let httpRequests = Self("coffer_http_requests_total", "HTTP requests by route template, method and status.", labels: ["route", "method", "status"])
    public static let httpRequestDuration = Self("coffer_http_request_duration_seconds", "HTTP request latency by route template and method.", labels: ["route", "method"])
    public static let tokensIssued = Self("coffer_tokens_issued_total", "Tokens issued.")
    public static let tokensRejected = Self("coffer_tokens_rejected_total", "Bearer tokens and token requests refused, by reason.", labels: ["reason"])
    public static let kmsItems = Self("coffer_kms_items_total", "KMS API items (a batch counts each), by operation and outcome (ok or the error code).", labels: ["operation", "outcome"])
    public static let kmsRequests = Self("coffer_kms_requests_total", "KMS HTTP requests by action and outcome (each retry counts).", labels: ["action", "outcome"])
    public static let valuesSealed = Self("coffer_values_sealed_total", "Values sealed with a data key since start.")
    public static let valuesOpened = Self("coffer_values_opened_total", "Values opened with a data key since start.")
    public static let dataKeyVersionsLoaded = Self("coffer_data_key_versions_loaded", "Data key versions held in memory, by purpose.", labels: ["purpose"])
    public static let dataKeyActiveVersion = Self("coffer_data_key_active_version", "The active data key version, by purpose.", labels: ["purpose"])
    public static let tokenVerifications = Self("coffer_token_verifications_total", "Bearer tokens verified (from the cache or by signature).")
    public static let tokenVerificationSeconds = Self("coffer_token_verification_seconds_total", "Time spent verifying bearer tokens.")
    public static let databaseConnectionsInUse = Self("coffer_db_connections_in_use", "Database connections leased now.")
    public static let databaseOperations = Self("coffer_db_operations_total", "Database operations (connection leases) and their failures.", labels: ["outcome"])
    public static let integrityFailures = Self("coffer_integrity_failures_total", "Rows refused because their authentication code did not verify (inserted or edited outside Coffer), by table.", labels: ["table"])
    public static let auditTrailIntact = Self("coffer_audit_trail_intact", "1 when this replica's last check of the whole audit trail found it intact, 0 when it found an event edited, inserted or deleted (absent before the first check).")
    public static let destructionJobValues = Self("coffer_destruction_job_values", "Values re-encrypted and to re-encrypt by running destruction jobs.", labels: ["key", "kind"])
}
