// A settings service answering requests: `settings/get` with a key returns its value, or
// fails the request (the client sees the code and message) for a key it does not know.
//
//   swift run settings-service [--count N]
import Herald

let arguments = CommandLine.arguments
let count = arguments.firstIndex(of: "--count").flatMap { Int(arguments[$0 + 1]) } ?? Int.max
let settings = ["theme": "dark", "font-size": "11", "language": "en"]

let bus = try await Bus.connect(options: BusOptions(clientName: "settings-service"))
let requests = try await bus.requests(on: "settings/get")
print("settings-service: ready")
var answered = 0
for try await request in requests {
    let key = request.string ?? ""
    if let value = settings[key] {
        try await request.respond(value)
    } else {
        try await request.fail(code: 404, "no setting named '\(key)'")
    }
    answered += 1
    if answered >= count { break }
}
try await bus.flush()
await bus.close()
