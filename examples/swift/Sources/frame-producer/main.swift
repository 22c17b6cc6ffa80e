// A producer of large buffers: renders video-sized frames straight into shared memory and
// publishes each as a sealed memfd. The broker moves a few dozen bytes per frame whatever
// its size; every viewer maps the same pages read-only. No copy through any socket.
//
//   swift run frame-producer [--frames N] [--width W --height H]
import Herald

let arguments = CommandLine.arguments
func option(_ name: String, _ fallback: Int) -> Int {
    arguments.firstIndex(of: name).flatMap { Int(arguments[$0 + 1]) } ?? fallback
}
let frames = option("--frames", 5)
let width = option("--width", 1920)
let height = option("--height", 1080)

let bus = try await Bus.connect(options: BusOptions(clientName: "frame-producer"))
for number in 0..<frames {
    // RGBA, 4 bytes a pixel: 8 MiB for 1080p, well over the broker's 1 MiB frame limit.
    var frame = try SealedPayload(count: 16 + width * height * 4)
    frame.withUnsafeMutableBytes { memory in
        // A small header (frame number, width, height), then a gradient that moves with the frame.
        memory.storeBytes(of: UInt64(number).littleEndian, toByteOffset: 0, as: UInt64.self)
        memory.storeBytes(of: UInt32(width).littleEndian, toByteOffset: 8, as: UInt32.self)
        memory.storeBytes(of: UInt32(height).littleEndian, toByteOffset: 12, as: UInt32.self)
        let pixels = memory.baseAddress! + 16
        for y in 0..<height {
            for x in 0..<width {
                let pixel = pixels + (y * width + x) * 4
                pixel.storeBytes(of: UInt8(truncatingIfNeeded: x + number), as: UInt8.self)
                pixel.storeBytes(of: UInt8(truncatingIfNeeded: y), toByteOffset: 1, as: UInt8.self)
                pixel.storeBytes(of: UInt8(truncatingIfNeeded: number * 40), toByteOffset: 2, as: UInt8.self)
                pixel.storeBytes(of: 255, toByteOffset: 3, as: UInt8.self)
            }
        }
    }
    // Sealed (no one can change it any more) and passed; the memory here is released.
    try await bus.publish("display/frame", frame)
}
try await bus.flush()
print("frame-producer: published \(frames) frames of \(width)x\(height)")
await bus.close()
