@testable import CofferCore
import Testing

/// The exposition text swift-prometheus renders for Coffer's metric families.
@Suite struct MetricsTests {
    @Test func countersHistogramsAndGaugesRenderWithTheirHelpAndLabels() {
        let metrics = Metrics()
        metrics.increment(.httpRequests, ["/api/v1/stacks", "GET", "200"], by: 2)
        metrics.increment(.tokensRejected, ["invalid_token"])
        metrics.observe(.httpRequestDuration, ["/api/v1/stacks", "GET"], seconds: 0.003)
        metrics.set(.databaseConnectionsInUse, to: 3)
        let text = metrics.render()
        #expect(text.contains("# HELP coffer_http_requests_total HTTP requests by route template, method and status."))
        #expect(text.contains("# TYPE coffer_http_requests_total counter"))
        #expect(text.contains(#"coffer_http_requests_total{route="/api/v1/stacks",method="GET",status="200"} 2"#))
        #expect(text.contains(#"coffer_tokens_rejected_total{reason="invalid_token"} 1"#))
        #expect(text.contains("# TYPE coffer_http_request_duration_seconds histogram"))
        #expect(text.contains(#"coffer_http_request_duration_seconds_bucket{route="/api/v1/stacks",method="GET",le="0.0025"} 0"#))
        #expect(text.contains(#"coffer_http_request_duration_seconds_bucket{route="/api/v1/stacks",method="GET",le="0.005"} 1"#))
        #expect(text.contains(#"coffer_http_request_duration_seconds_count{route="/api/v1/stacks",method="GET"} 1"#))
        #expect(text.contains("coffer_db_connections_in_use 3"))
    }

    @Test func sampledTotalsOnlyGrowAndReplacedGaugesDropWhatIsGone() {
        let metrics = Metrics()
        metrics.sample(.valuesSealed, count: 5)
        metrics.sample(.valuesSealed, count: 7)
        metrics.sample(.valuesSealed, count: 7)
        #expect(metrics.render().contains("coffer_values_sealed_total 7\n"))
        #expect(metrics.render().contains("coffer_tokens_issued_total 0\n"))

        metrics.replaceGauges(.destructionJobValues, [(["database-v1", "done"], 3), (["database-v1", "total"], 9)])
        #expect(metrics.render().contains(#"coffer_destruction_job_values{key="database-v1",kind="done"} 3"#))
        metrics.replaceGauges(.destructionJobValues, [])
        #expect(!metrics.render().contains(#"key="database-v1""#))
    }
}
