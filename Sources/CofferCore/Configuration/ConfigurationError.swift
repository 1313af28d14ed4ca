/// An invalid environment: names the variable and the fix, never its value. Exit code 2.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    /// The variable at fault.
    public let variable: String
    /// What is wrong and how to fix it.
    public let reason: String

    public init(_ variable: String, _ reason: String) {
        self.variable = variable
        self.reason = reason
    }

    public var description: String { "\(variable): \(reason)" }
}
