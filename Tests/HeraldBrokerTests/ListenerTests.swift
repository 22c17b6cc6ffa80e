import Foundation
import HeraldProtocol
import HeraldServer
import Testing

/// Listening addresses: abstract names, filesystem paths, and what may and may not be replaced.
@Suite("Listener")
struct ListenerTests {
    static func uniqueName(_ purpose: String) -> String { "herald-listener-test/\(getpid())/\(UUID().uuidString.prefix(8))/\(purpose)" }

    @Test func anInvalidAddressIsRefused() {
        #expect(throws: ListenerError.self) { try Listener(address: BusAddress("@")) }
        #expect(throws: ListenerError.self) { try Listener(address: BusAddress("@" + String(repeating: "x", count: 200))) }
    }

    @Test func anAbstractNameInUseIsRefused() throws {
        let address = BusAddress("@" + Self.uniqueName("abstract"))
        let first = try Listener(address: address)
        defer { first.close() }
        do {
            _ = try Listener(address: address)
            Issue.record("a second listener on \(address) was allowed")
        } catch .addressInUse {
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func aStaleSocketFileIsReplacedAndRemovedAtClose() throws {
        let path = NSTemporaryDirectory() + "herald-\(getpid())-\(UUID().uuidString.prefix(8)).sock"
        // A socket file nobody listens on: what a crashed broker leaves behind.
        let stale = try Listener(address: BusAddress(path))
        Glibc.close(stale.fd)
        #expect(FileManager.default.fileExists(atPath: path))
        let listener = try Listener(address: BusAddress(path))
        listener.close()
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func aLiveSocketOrAPlainFileIsNotReplaced() throws {
        let path = NSTemporaryDirectory() + "herald-\(getpid())-\(UUID().uuidString.prefix(8)).sock"
        let live = try Listener(address: BusAddress(path))
        defer { live.close() }
        #expect(throws: ListenerError.self) { try Listener(address: BusAddress(path)) }
        let file = NSTemporaryDirectory() + "herald-\(getpid())-\(UUID().uuidString.prefix(8)).txt"
        #expect(FileManager.default.createFile(atPath: file, contents: Data("keep".utf8)))
        defer { try? FileManager.default.removeItem(atPath: file) }
        do {
            _ = try Listener(address: BusAddress(file))
            Issue.record("a plain file was replaced")
        } catch .pathOccupied {
        } catch {
            Issue.record("unexpected \(error)")
        }
        #expect((try? String(contentsOfFile: file, encoding: .utf8)) == "keep")
    }
}
