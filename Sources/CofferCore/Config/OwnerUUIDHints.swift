import CofferStore
import Foundation
import Synchronization

/// The internal UUIDs of stacks and contexts this replica has written to, by kind and id.
/// A write seals its value for the owner's UUID before its one statement runs, so it needs
/// the UUID first; a hint saves the look-up. It is never trusted: the statement compares
/// it with the owner it finds and answers `owner_changed` (the owner was deleted and made
/// anew under the same id) so the write is sealed again. No data is served from it.
final class OwnerUUIDHints: Sendable {
    private static let limit = 10_000
    private let hints = Mutex<[String: UUID]>([:])

    func uuid(of kind: OwnerKind, _ id: String) -> UUID? {
        hints.withLock { $0[Self.key(kind, id)] }
    }

    func remember(_ uuid: UUID, for kind: OwnerKind, _ id: String) {
        hints.withLock { hints in
            if hints.count >= Self.limit { hints.removeAll(keepingCapacity: true) }
            hints[Self.key(kind, id)] = uuid
        }
    }

    func forget(_ kind: OwnerKind, _ id: String) {
        _ = hints.withLock { $0.removeValue(forKey: Self.key(kind, id)) }
    }

    private static func key(_ kind: OwnerKind, _ id: String) -> String {
        "\(kind.rawValue):\(id)"
    }
}
