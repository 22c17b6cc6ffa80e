import HeraldProtocol

/// The frame decoder against arbitrary bytes: it must never crash, whatever it is given; every
/// frame it accepts must encode to bytes that decode to the same frame again.
func fuzzFrameDecoder(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size > 0 else { return 0 }
    var bytes = UnsafeRawBufferPointer(start: data, count: size)
    while true {
        let decoded: (frame: Frame, length: Int)?
        do {
            decoded = try FrameDecoder.decode(bytes, maxFrameSize: 1 << 16)
        } catch {
            return 0  // A decoding error is a fine answer to bad bytes.
        }
        guard let (frame, length) = decoded else { return 0 }
        let encoded = FrameEncoder.encode(frame)
        let again = try? FrameDecoder.decode(encoded, maxFrameSize: ProtocolLimits.maxFrameSizeCeiling)
        guard let again, again.frame == frame, again.length == encoded.count else {
            fatalError("\(frame) does not survive encoding and decoding again")
        }
        bytes = UnsafeRawBufferPointer(rebasing: bytes[length...])
    }
}
