import CofferStore
import Foundation
import Synchronization

/// The internal UUIDs and spaces of stacks and contexts this replica has written to, by
/// kind and id. A write seals its value for the owner's UUID before its one statement
/// runs, so it needs the UUID first, and checks the owner's space against the
/// authenticated space tree; a hint saves the look-up. It is never trusted: the statement
/// compares the UUID with the owner it finds and answers `owner_changed` (the owner was
/// deleted and made anew under the same id) so the write looks the owner up and is sealed
/// again, and decides reach itself. No data is served from it.
final class OwnerUUIDHints: Sendable {
    private static let limit = 10_000
    private let hints = Mutex<[String: (uuid: UUID, space: String)]>([:])

    func owner(of kind: OwnerKind, _ id: String) -> (uuid: UUID, space: String)? {
        hints.withLock { $0[Self.key(kind, id)] }
    }

    func remember(_ uuid: UUID, space: String, for kind: OwnerKind, _ id: String) {
        hints.withLock { hints in
            if hints.count >= Self.limit { hints.removeAll(keepingCapacity: true) }
            hints[Self.key(kind, id)] = (uuid, space)
        }
    }

    func forget(_ kind: OwnerKind, _ id: String) {
        _ = hints.withLock { $0.removeValue(forKey: Self.key(kind, id)) }
    }

    private static func key(_ kind: OwnerKind, _ id: String) -> String {
        "\(kind.rawValue):\(id)"
    }
}

/// The latest version of each element this replica has written or read, by owner UUID and
/// config id. A value is sealed for the version it becomes (sealed format 2), so a write
/// needs the next version before its one statement runs; the hint saves a look-up. It is
/// never trusted: the statement answers `version_changed` with the latest version when
/// the hint is stale (another replica wrote meanwhile), and the value is sealed again.
final class ElementVersionHints: Sendable {
    private static let limit = 100_000
    private let hints = Mutex<[String: Int32]>([:])

    /// The latest version known, 0 when none (a new element is written as version 1).
    func latest(of owner: UUID, _ configID: String) -> Int32 {
        hints.withLock { $0[Self.key(owner, configID)] ?? 0 }
    }

    func remember(_ version: Int32, of owner: UUID, _ configID: String) {
        hints.withLock { hints in
            if hints.count >= Self.limit { hints.removeAll(keepingCapacity: true) }
            hints[Self.key(owner, configID)] = version
        }
    }

    private static func key(_ owner: UUID, _ configID: String) -> String {
        "\(owner.uuidString)/\(configID)"
    }
}
