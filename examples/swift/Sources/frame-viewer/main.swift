// A viewer of large buffers: receives frames published as sealed memfds and reads them in
// place from a read-only mapping (the library checked the seals first, so the pixels cannot
// change while they are read).
//
//   swift run frame-viewer [--count N]
import Herald

let arguments = CommandLine.arguments
let count = arguments.firstIndex(of: "--count").flatMap { Int(arguments[$0 + 1]) } ?? Int.max

let bus = try await Bus.connect(options: BusOptions(clientName: "frame-viewer"))
let frames = try await bus.subscribe("display/frame")
print("frame-viewer: ready")
var shown = 0
for try await message in frames {
    guard message.isMappedPayload else {
        print("frame-viewer: a frame without its pixels: \(message.payloadRejection ?? "sent inline")")
        continue
    }
    // Read in place: no copy of the megabytes (message.payload would make one).
    let line = message.withPayloadBytes { memory -> String in
        let number = UInt64(littleEndian: memory.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        let width = Int(UInt32(littleEndian: memory.loadUnaligned(fromByteOffset: 8, as: UInt32.self)))
        let height = Int(UInt32(littleEndian: memory.loadUnaligned(fromByteOffset: 12, as: UInt32.self)))
        let centre = 16 + ((height / 2) * width + width / 2) * 4
        let rgb = (memory[centre], memory[centre + 1], memory[centre + 2])
        // The producer's gradient, checked at the centre.
        let expected = (UInt8(truncatingIfNeeded: width / 2 + Int(number)), UInt8(truncatingIfNeeded: height / 2))
        let intact = rgb.0 == expected.0 && rgb.1 == expected.1
        return "frame \(number): \(width)x\(height), \(memory.count) bytes mapped, centre pixel \(rgb)" + (intact ? " ok" : " CORRUPT")
    }
    print("frame-viewer: \(line) from pid \(message.sender.pid)")
    shown += 1
    if shown >= count { break }
}
await bus.close()
