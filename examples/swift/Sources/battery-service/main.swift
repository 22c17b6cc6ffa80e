// A service that publishes state: a simulated battery. Each level is published *retained*,
// so a panel started at any time sees the current level at once; the last will marks the
// service offline if it dies without closing.
//
//   swift run battery-service [--steps N] [--interval-ms MS]
import Herald

let arguments = CommandLine.arguments
func option(_ name: String, _ fallback: Int) -> Int {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count, let value = Int(arguments[index + 1]) else {
        return fallback
    }
    return value
}
let steps = option("--steps", 10)
let interval = option("--interval-ms", 500)

let bus = try await Bus.connect(options: BusOptions(
    clientName: "battery-service",
    lastWill: LastWill(topic: "power/battery/state", "offline", retain: true)))
try await bus.publish("power/battery/state", "online", retain: true)
var level = 100
for _ in 0..<steps {
    try await bus.publish("power/battery/level", "\(level)", retain: true)
    print("battery-service: level \(level)")
    level = max(0, level - 3)
    try await Task.sleep(for: .milliseconds(interval))
}
try await bus.flush()
// Leaving cleanly: say so (the will is only for dying without a word).
try await bus.publish("power/battery/state", "stopped", retain: true)
try await bus.flush()
await bus.close()
