import Foundation
import Herald
import Testing

/// `herald pub --file/--fd` and `herald sub`'s view of descriptors (and `--save-dir`), against a
/// real heraldd.
@Suite("herald pub and sub with file descriptors", .timeLimit(.minutes(1)))
struct DescriptorCLITests {
    @Test func aFileGoesAsASealedMemfdAndADescriptorIsShown() async throws {
        let broker = try await BrokerProcess(purpose: "fds-cli")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-save-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let source = directory.appendingPathComponent("source.bin")
        // Twice the broker's maximum frame size: only a memfd can carry it.
        let content = Data((0..<(2 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        try content.write(to: source)
        let saved = directory.appendingPathComponent("saved")
        try FileManager.default.createDirectory(at: saved, withIntermediateDirectories: true)

        let subscriber = try CLIProcess(["sub", "--address", broker.address, "--json", "--count", "2", "--save-dir", saved.path, "files/#"])
        let bus = try await Bus.connect(to: broker.address)
        let subscribed = try await bus.waitForPeer { $0.subscriptions.map(\.filter) == ["files/#"] }
        #expect(subscribed, "\(subscriber.standardError)")
        let (fileStatus, _, fileError) = try await CLIProcess.run(["pub", "--address", broker.address, "files/big", "--file", source.path])
        #expect(fileStatus == 0, "\(fileError)")
        // Standard input is a pipe here: passed along as descriptor 0.
        let (fdStatus, _, fdError) = try await CLIProcess.run(["pub", "--address", broker.address, "files/fd", "with a pipe", "--fd", "0"], input: "")
        #expect(fdStatus == 0, "\(fdError)")
        #expect(await subscriber.waitForExit() == 0, "\(subscriber.standardError)")

        let objects = subscriber.lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(objects.count == 2)
        let big = try #require(objects.first { $0["topic"] as? String == "files/big" })
        #expect((big["payload_size"] as? NSNumber)?.intValue == content.count && big["sealed_payload"] as? Bool == true)
        let path = try #require((big["saved"] as? [String])?.first)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == content, "--save-dir wrote the payload out as published")
        let piped = try #require(objects.first { $0["topic"] as? String == "files/fd" })
        #expect(piped["payload"] as? String == "with a pipe")
        #expect((piped["fds"] as? [[String: Any]])?.first?["type"] as? String == "pipe")

        // Misuse is refused before connecting.
        let (both, _, bothError) = try await CLIProcess.run(["pub", "--address", broker.address, "files/x", "text", "--file", source.path])
        #expect(both != 0 && bothError.contains("not both"))
        let (retained, _, retainedError) = try await CLIProcess.run(["pub", "--address", broker.address, "files/x", "--file", source.path, "--retain"])
        #expect(retained != 0 && retainedError.contains("cannot be retained"))
        await bus.close()
        _ = await broker.stop()
    }
}
