/// The state of a key version (`key_encryption_keys.state`, `data_encryption_keys.state`).
public enum KeyState: String, Sendable, Equatable {
    /// Seals new values; one version per purpose.
    case active
    /// Still opens what it sealed; seals nothing new.
    case retired
    /// Material erased; opens nothing.
    case destroyed
}

/// The state of a destruction job (`key_destruction_jobs.state`).
public enum JobState: String, Sendable, Equatable {
    case running
    case completed
    case failed
}

extension RawRepresentable where RawValue == String {
    /// The value stored as `text` in `row`; a text this build does not know is an error
    /// that names the row, never a default.
    public static func stored(_ text: String, in row: @autoclosure () -> String) throws -> Self {
        guard let value = Self(rawValue: text) else { throw StoreError.unknownValue(text, in: row()) }
        return value
    }
}

extension StoreError {
    /// A row holds a value outside what this build knows (a newer build wrote it, or the
    /// row was edited by hand).
    public static func unknownValue(_ text: String, in row: String) -> StoreError {
        StoreError(.unknownValue, "\(row) holds `\(text.prefix(40))`, which this build does not know")
    }
}
