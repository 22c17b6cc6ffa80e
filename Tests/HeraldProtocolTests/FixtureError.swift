/// A checked-in vector file or PROTOCOL.md that does not have the shape the tests expect
/// (schema in Protocol/vectors/README.md).
struct FixtureError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) { self.description = description }
}
