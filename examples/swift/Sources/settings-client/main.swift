// A client asking the settings service. Each answer comes from the one responder serving
// `settings/get`; an unknown key is a failed request, and with no service running the
// request fails at once ("no responders") instead of waiting for the timeout.
//
//   swift run settings-client KEY...
import Herald

#if canImport(Glibc)
import Glibc
#endif

let keys = CommandLine.arguments.dropFirst()
let bus = try await Bus.connect(options: BusOptions(clientName: "settings-client"))
var failures = 0
for key in keys.isEmpty ? ["theme"] : Array(keys) {
    do {
        let answer = try await bus.request("settings/get", key, timeout: .seconds(2))
        print("settings-client: \(key) = \(answer.string ?? "?") (answered by pid \(answer.sender.pid))")
    } catch {
        print("settings-client: \(key): \(error)")
        failures += 1
    }
}
await bus.close()
exit(failures == 0 ? 0 : 1)
