import Foundation
import Synchronization

/// Coffer's Prometheus metrics: counters and histograms keyed by label values, rendered
/// in the text exposition format. Labels carry route templates, statuses, actions and
/// key version names only: never a secret, a token or a caller-supplied id.
public final class Metrics: Sendable {
    /// Latency buckets, seconds.
    public static let latencyBuckets: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    private struct Histogram {
        var buckets: [UInt64]
        var sum: Double = 0
        var count: UInt64 = 0
    }

    private struct State {
        var counters: [String: [[String]: UInt64]] = [:]
        var histograms: [String: [[String]: Histogram]] = [:]
    }

    private struct Family {
        let type: String
        let text: String
        let labels: [String]
    }

    private let state = Mutex(State())
    private let families: [String: Family] = [
        "coffer_http_requests_total": Family(type: "counter", text: "HTTP requests by route template, method and status.", labels: ["route", "method", "status"]),
        "coffer_http_request_duration_seconds": Family(type: "histogram", text: "HTTP request latency by route template and method.", labels: ["route", "method"]),
        "coffer_tokens_issued_total": Family(type: "counter", text: "Tokens issued.", labels: []),
        "coffer_tokens_rejected_total": Family(type: "counter", text: "Bearer tokens and token requests refused, by reason.", labels: ["reason"]),
        "coffer_seal_total": Family(type: "counter", text: "Values sealed, by data key purpose.", labels: ["purpose"]),
        "coffer_open_total": Family(type: "counter", text: "Values opened, by data key purpose.", labels: ["purpose"]),
        "coffer_kms_items_total": Family(type: "counter", text: "KMS API items (a batch counts each), by operation and outcome (ok or the error code).", labels: ["operation", "outcome"]),
    ]

    public init() {}

    public func increment(_ name: String, _ labels: [String] = [], by amount: UInt64 = 1) {
        state.withLock { $0.counters[name, default: [:]][labels, default: 0] += amount }
    }

    public func observe(_ name: String, _ labels: [String], seconds: Double) {
        state.withLock { state in
            var histogram = state.histograms[name, default: [:]][labels] ?? Histogram(buckets: Array(repeating: 0, count: Self.latencyBuckets.count))
            for (index, bound) in Self.latencyBuckets.enumerated() where seconds <= bound { histogram.buckets[index] += 1 }
            histogram.sum += seconds
            histogram.count += 1
            state.histograms[name, default: [:]][labels] = histogram
        }
    }

    /// The registered series in Prometheus text format, followed by `extra` lines
    /// (gauges sampled at scrape time, with their own HELP and TYPE).
    public func render(extra: [String] = []) -> String {
        let snapshot = state.withLock { $0 }
        var lines: [String] = []
        for name in families.keys.sorted() {
            guard let family = families[name] else { continue }
            lines.append("# HELP \(name) \(family.text)")
            lines.append("# TYPE \(name) \(family.type)")
            if family.type == "counter" {
                let series = snapshot.counters[name] ?? [:]
                if series.isEmpty && family.labels.isEmpty { lines.append("\(name) 0") }
                for (labels, value) in series.sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
                    lines.append("\(name)\(Self.format(family.labels, labels)) \(value)")
                }
            } else {
                for (labels, histogram) in (snapshot.histograms[name] ?? [:]).sorted(by: { $0.key.lexicographicallyPrecedes($1.key) }) {
                    for (index, bound) in Self.latencyBuckets.enumerated() {
                        lines.append("\(name)_bucket\(Self.format(family.labels + ["le"], labels + [String(bound)])) \(histogram.buckets[index])")
                    }
                    lines.append("\(name)_bucket\(Self.format(family.labels + ["le"], labels + ["+Inf"])) \(histogram.count)")
                    lines.append("\(name)_sum\(Self.format(family.labels, labels)) \(histogram.sum)")
                    lines.append("\(name)_count\(Self.format(family.labels, labels)) \(histogram.count)")
                }
            }
        }
        return (lines + extra).joined(separator: "\n") + "\n"
    }

    /// `{a="x",b="y"}` with label values escaped as the format requires.
    public static func format(_ names: [String], _ values: [String]) -> String {
        guard !names.isEmpty else { return "" }
        let pairs = zip(names, values).map { name, value in
            let escaped = value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
            return "\(name)=\"\(escaped)\""
        }
        return "{" + pairs.joined(separator: ",") + "}"
    }
}
