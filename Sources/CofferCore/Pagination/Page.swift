import CofferCrypto

/// One page of a list, and the keyset pagination every list route uses: a cursor wraps
/// the sort key of the last item of a page (opaque to clients), and a page is read with
/// one row more than it shows, so whether another page follows is known without counting.
public struct Page<Item: Sendable>: Sendable {
    public var items: [Item]
    /// Opaque; pass as `cursor` for the next page. Nil on the last page.
    public var nextCursor: String?

    public init(items: [Item], nextCursor: String?) {
        self.items = items
        self.nextCursor = nextCursor
    }

    /// The page of `rows`, read with ``Pagination/rowsToRead(for:)`` rows: the first
    /// `limit`, and a cursor to the key of the last of them if more were read.
    init(rows: [Item], limit: Int, key: (Item) -> String) {
        let items = Array(rows.prefix(limit))
        self.init(items: items, nextCursor: rows.count > limit ? items.last.map { Pagination.cursor(key($0)) } : nil)
    }

    /// A page of `items` read by a bounded statement that said whether `more` follow: a
    /// cursor to the key of the last item if so.
    init(items: [Item], more: Bool, key: (Item) -> String) {
        self.init(items: items, nextCursor: more ? items.last.map { Pagination.cursor(key($0)) } : nil)
    }

    /// The same page with each item transformed (the cursor stays).
    func map<Other>(_ transform: (Item) throws -> Other) rethrows -> Page<Other> {
        Page<Other>(items: try items.map(transform), nextCursor: nextCursor)
    }
}

/// Cursors: what they carry and how many rows a page reads.
enum Pagination {
    /// Rows to read for a page of `limit`: one more, to know whether another page follows.
    static func rowsToRead(for limit: Int) -> Int { limit + 1 }

    /// The cursor of a page that ends at `key`.
    static func cursor(_ key: String) -> String { Base64URL.encode(Array(key.utf8)) }

    /// The key `cursor` carries; nil without a cursor. A cursor this server could not have
    /// issued is `invalid_cursor`.
    static func key(of cursor: String?) throws -> String? {
        try key(of: cursor) { $0 }
    }

    /// The key `cursor` carries, read by `parse`; nil without a cursor, `invalid_cursor`
    /// when it is not one this server issued or `parse` refuses it.
    static func key<Key>(of cursor: String?, _ parse: (String) -> Key?) throws -> Key? {
        guard let cursor, !cursor.isEmpty else { return nil }
        // Every key a cursor can carry is 1 to 1024 bytes without control characters.
        guard cursor.utf8.count <= 1400, let bytes = Base64URL.decode(cursor), let text = String(validating: bytes, as: UTF8.self),
              !text.isEmpty, !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }),
              let key = parse(text)
        else {
            throw CofferError.invalidCursor("the cursor is not one this server issued")
        }
        return key
    }
}
