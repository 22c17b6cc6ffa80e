// A panel that shows the battery: the current level arrives first (retained), then every
// change. It also watches the service come and go ($SYS/peers events).
//
//   swift run battery-panel [--count N]
import Herald

let arguments = CommandLine.arguments
let count = arguments.firstIndex(of: "--count").flatMap { Int(arguments[$0 + 1]) } ?? Int.max

let bus = try await Bus.connect(options: BusOptions(clientName: "battery-panel"))
let battery = try await bus.subscribe(["power/battery/#", "$SYS/peers/disconnected"])
var shown = 0
for try await message in battery {
    let text = message.string ?? "\(message.payload.count) bytes"
    let origin = message.isRetained ? " (current value)" : ""
    print("battery-panel: \(message.topic) = \(text)\(origin) from pid \(message.sender.pid)")
    shown += 1
    if shown >= count { break }
}
await bus.close()
