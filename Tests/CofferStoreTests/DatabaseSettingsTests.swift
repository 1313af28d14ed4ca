import CofferStore
import Testing

@Suite struct DatabaseSettingsTests {
    @Test func parsesAFullURL() throws {
        let settings = try DatabaseSettings(url: "postgres://app%40corp:p%2Fss@db.internal:6432/coffer?sslmode=verify-full&sslrootcert=/etc/ca.pem")
        #expect(settings.host == "db.internal")
        #expect(settings.port == 6432)
        #expect(settings.username == "app@corp")
        #expect(settings.password == "p/ss")
        #expect(settings.database == "coffer")
        #expect(settings.sslMode == .verifyFull)
        #expect(settings.sslRootCertificateFile == "/etc/ca.pem")
        #expect(!settings.redactedDescription.contains("p/ss"))
    }

    @Test func defaultsPortAndSSLMode() throws {
        let settings = try DatabaseSettings(url: "postgresql://u:pw@localhost/db")
        #expect(settings.port == 5432)
        #expect(settings.sslMode == .prefer)
    }

    @Test(arguments: [
        "", "localhost:5432", "mysql://u:p@h/db", "postgres://u:p@/db", "postgres://h/db",
        "postgres://u:supersecret@h:5432/", "postgres://u:supersecret@h/db?sslmode=sometimes",
        "postgres://u:supersecret@h/db?foo=bar", "postgres://u:supersecret@h:99999999/db",
    ])
    func refusesMalformedURLsWithoutEchoingThem(url: String) {
        do {
            _ = try DatabaseSettings(url: url)
            Issue.record("accepted \(url)")
        } catch let error as DatabaseSettingsError {
            #expect(!error.description.contains("supersecret"))
        } catch {
            Issue.record("unexpected \(type(of: error))")
        }
    }
}
