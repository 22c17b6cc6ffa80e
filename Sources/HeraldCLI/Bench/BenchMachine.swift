#if canImport(Glibc)
import Glibc
#endif

/// Facts about this machine, recorded with every report so numbers from different machines
/// are not compared by mistake.
struct MachineFacts: Codable, Sendable {
    var date: String
    var nproc: Int
    var cpuModel: String
    var kernel: String
    var memoryMebibytes: Int

    static func current() -> MachineFacts {
        MachineFacts(
            date: utcTimestamp(), nproc: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))), cpuModel: cpuModel(),
            kernel: kernelRelease(), memoryMebibytes: memoryMebibytes())
    }

    private static func utcTimestamp() -> String {
        var now = time(nil)
        var parts = tm()
        gmtime_r(&now, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let n = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%SZ", &parts)
        return String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func cpuModel() -> String {
        guard let text = readSmallTextFile("/proc/cpuinfo") else { return "unknown" }
        for line in text.split(separator: "\n") where line.hasPrefix("model name") {
            if let colon = line.firstIndex(of: ":") {
                return line[line.index(after: colon)...].trimmingPrefix(" ").description
            }
        }
        return "unknown"
    }

    private static func kernelRelease() -> String {
        var names = utsname()
        uname(&names)
        return withUnsafeBytes(of: &names.release) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }

    private static func memoryMebibytes() -> Int {
        guard let text = readSmallTextFile("/proc/meminfo"),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("MemTotal:") })
        else { return 0 }
        let kib = Int(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first ?? "") ?? 0
        return kib / 1024
    }
}
