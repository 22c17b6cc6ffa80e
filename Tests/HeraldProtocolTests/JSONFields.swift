/// Reads the fields of one JSON object, refusing missing, mistyped and (via ``finish()``)
/// unread keys, so a typo in a vector file fails the test instead of being skipped.
struct JSONFields {
    private let fields: [String: JSONValue]
    private let context: String
    private var read: Set<String> = []

    init(_ value: JSONValue, context: String) throws(FixtureError) {
        guard case .object(let fields) = value else { throw FixtureError("\(context): expected an object") }
        self.fields = fields
        self.context = context
    }

    func has(_ key: String) -> Bool { fields[key] != nil }

    mutating func value(_ key: String) throws(FixtureError) -> JSONValue {
        guard let value = fields[key] else { throw FixtureError("\(context): missing \"\(key)\"") }
        read.insert(key)
        return value
    }

    mutating func optionalValue(_ key: String) -> JSONValue? {
        guard let value = fields[key] else { return nil }
        read.insert(key)
        return value
    }

    mutating func string(_ key: String) throws(FixtureError) -> String {
        guard case .string(let text) = try value(key) else {
            throw FixtureError("\(context): \"\(key)\" must be a string")
        }
        return text
    }

    mutating func optionalString(_ key: String) throws(FixtureError) -> String? {
        has(key) ? try string(key) : nil
    }

    mutating func bool(_ key: String) throws(FixtureError) -> Bool {
        guard case .bool(let flag) = try value(key) else {
            throw FixtureError("\(context): \"\(key)\" must be true or false")
        }
        return flag
    }

    /// A JSON number that must fit `T` exactly.
    mutating func integer<T: FixedWidthInteger>(_ key: String, as _: T.Type = T.self) throws(FixtureError) -> T {
        guard case .integer(let number) = try value(key), let exact = T(exactly: number) else {
            throw FixtureError("\(context): \"\(key)\" must be an integer that fits \(T.self)")
        }
        return exact
    }

    /// A 64-bit field, written as a decimal string so double-based JSON parsers keep it exact.
    mutating func u64(_ key: String) throws(FixtureError) -> UInt64 {
        guard case .string(let text) = try value(key), let number = UInt64(text) else {
            throw FixtureError("\(context): \"\(key)\" must be a decimal string (64-bit field)")
        }
        return number
    }

    mutating func hexBytes(_ key: String) throws(FixtureError) -> [UInt8] {
        guard let bytes = Hex.bytes(try string(key)) else {
            throw FixtureError("\(context): \"\(key)\" is not hex")
        }
        return bytes
    }

    /// Fails if the object has keys nobody asked for.
    func finish() throws(FixtureError) {
        let unread = Set(fields.keys).subtracting(read)
        guard unread.isEmpty else { throw FixtureError("\(context): unexpected keys \(unread.sorted())") }
    }
}
