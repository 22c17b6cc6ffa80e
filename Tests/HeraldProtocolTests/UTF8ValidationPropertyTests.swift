import HeraldProtocol
import PropertyBased
import Testing

/// UTF8Validation must agree with the standard library on every input.
@Suite struct UTF8ValidationPropertyTests {
    /// Bytes at the edges of the UTF-8 tables, so random arrays often come close to valid.
    static let edgeBytes: [UInt8] = [
        0x00, 0x2F, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED,
        0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF,
    ]
    static let leadBytes: [UInt8] = [
        0x80, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF,
    ]
    static let followBytes: [UInt8] = [0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0]

    static let byte = Gen<UInt8>.frequency(
        (weight: 1, gen: Gen.uint8()), (weight: 3, gen: Gen<UInt8?>.element(of: edgeBytes).map { $0! }))

    /// A piece of input: the UTF-8 of one real scalar, or a lead byte with 0–3 bytes after it
    /// chosen at the boundaries of the validity ranges (overlongs, surrogates, > U+10FFFF, …).
    static let chunk = Gen<[UInt8]>.frequency(
        (weight: 3, gen: FrameGenerators.text(scalars: 1...1).map { Array($0.utf8) }),
        (
            weight: 1,
            gen: zip(
                Gen<UInt8?>.element(of: leadBytes).map { $0! },
                Gen<UInt8?>.element(of: followBytes).map { $0! }.array(of: 0...3)
            ).map { [$0.0] + $0.1 }
        )
    )

    private static func agrees(_ bytes: [UInt8]) -> Bool {
        let ours = bytes.withUnsafeBytes { UTF8Validation.isValid($0) }
        return ours == (String(validating: bytes, as: UTF8.self) != nil)
    }

    @Test func agreesWithTheStandardLibraryOnRandomBytes() async {
        await propertyCheck(count: 2000, input: Self.byte.array(of: 0...12)) { bytes in
            #expect(Self.agrees(bytes), "\(Hex.string(bytes))")
        }
    }

    @Test func agreesWithTheStandardLibraryOnNearlyValidBytes() async {
        await propertyCheck(count: 3000, input: Self.chunk.array(of: 1...4)) { chunks in
            let bytes = chunks.flatMap { $0 }
            #expect(Self.agrees(bytes), "\(Hex.string(bytes))")
        }
    }

    @Test func acceptsValidTextAndAgreesAfterOneByteChanges() async {
        await propertyCheck(
            count: 1000, input: FrameGenerators.text(scalars: 1...8), Gen.int(in: 0...31), Self.byte
        ) { text, position, replacement in
            var bytes = Array(text.utf8)
            #expect(bytes.withUnsafeBytes { UTF8Validation.isValid($0) }, "\(Hex.string(bytes))")
            bytes[position % bytes.count] = replacement
            #expect(Self.agrees(bytes), "\(Hex.string(bytes))")
        }
    }
}
