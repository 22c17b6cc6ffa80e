import CHeraldSys
import HeraldCore
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Keeps the retained messages across broker restarts (PROTOCOL.md §4.10), in up to two
/// places written with the same snapshot (``RetainedSnapshot``):
///
/// - under systemd, a **sealed memfd in the service manager's file-descriptor store**
///   (`FDSTORE=1`, name `herald-retained`), which comes back in `LISTEN_FDS` when the service
///   starts again: nothing touches the disk, and an `--exit-when-idle` broker (with
///   `FileDescriptorStorePreserve=yes`, systemd 254+) or one restarted after a crash loses
///   nothing;
/// - with `--state-file PATH`, a file replaced atomically (written beside it, fsynced,
///   renamed, directory fsynced).
///
/// Saving happens when the retained messages changed, at most once per event-loop tick
/// (one second) and once more when the broker stops, so a clean stop or restart keeps every
/// retained message the broker had received, and a crash loses at most the last second.
/// At start the descriptor store wins over the file (both are written together; the store
/// is never older). A snapshot that cannot be read is logged as an error and, for the file,
/// moved aside to `PATH.corrupt`: never silently dropped, never half-used.
final class RetainedPersistence {
    /// The name of the descriptor in the service manager's store.
    static let descriptorName = "herald-retained"

    private let stateFile: String?
    private let descriptorStore: Bool
    private let notifier: ServiceNotifier
    private let logger: Logger
    /// The change count of the snapshot last saved.
    private var savedChanges: UInt64 = 0
    /// A save failed and was logged; the next failure is not logged again until one succeeds.
    private var failing = false

    /// Whether anything is kept at all.
    var isEnabled: Bool { stateFile != nil || descriptorStore }

    init(stateFile: String?, descriptorStore: Bool, notifier: ServiceNotifier, logger: Logger) {
        self.stateFile = stateFile
        self.descriptorStore = descriptorStore
        self.notifier = notifier
        self.logger = logger
    }

    /// Puts back the retained messages of the previous broker: from the stored descriptor if
    /// the service manager passed one (it is closed here), else from the state file.
    func restore(into core: BrokerCore, storedDescriptor: Int32?) {
        let maxTopicLength = 65_535
        if let storedDescriptor {
            defer { close(storedDescriptor) }
            do {
                let messages = try RetainedSnapshot.decode(try Self.readSealed(storedDescriptor), maxTopicLength: maxTopicLength)
                log(restored: core.restoreRetained(messages), from: "the service manager's descriptor store")
                return
            } catch {
                logger.error("the retained state in the service manager's descriptor store cannot be read; trying the state file",
                    metadata: ["error": "\(error)"])
            }
        }
        guard let stateFile else { return }
        let bytes: [UInt8]
        do {
            guard let read = try Self.readFile(stateFile) else {
                logger.info("no retained state file yet; starting empty", metadata: ["path": "\(stateFile)"])
                return
            }
            bytes = read
        } catch {
            logger.error("cannot read the retained state file; starting without it", metadata: ["path": "\(stateFile)", "error": "\(error)"])
            return
        }
        do {
            log(restored: core.restoreRetained(try RetainedSnapshot.decode(bytes, maxTopicLength: maxTopicLength)), from: stateFile)
        } catch {
            let aside = stateFile + ".corrupt"
            let moved = rename(stateFile, aside) == 0
            logger.error(
                "the retained state file cannot be read; starting without it",
                metadata: ["path": "\(stateFile)", "error": "\(error)", "kept_as": "\(moved ? aside : "(could not be moved)")"])
        }
    }

    /// Saves a snapshot if the retained messages changed since the last one.
    func saveIfChanged(_ core: BrokerCore) {
        guard isEnabled, core.retainedChanges != savedChanges else { return }
        let changes = core.retainedChanges
        let snapshot = core.retainedSnapshot()
        var problems: [String] = []
        if descriptorStore {
            let fd = snapshot.withUnsafeBytes { herald_sealed_memfd(Self.descriptorName, $0.baseAddress, $0.count) }
            if fd < 0 {
                problems.append("memfd: \(String(cString: strerror(herald_errno())))")
            } else {
                if !notifier.store(fd, name: Self.descriptorName) { problems.append("the service manager did not take the descriptor") }
                close(fd)
            }
        }
        if let stateFile, let problem = Self.writeAtomically(snapshot, to: stateFile) { problems.append(problem) }
        if problems.isEmpty {
            savedChanges = changes
            if failing { logger.notice("retained state saved again", metadata: ["messages": "\(core.retained.count)"]) }
            failing = false
        } else if !failing {
            // Retried at the next tick (the change count still differs); logged once per episode.
            failing = true
            logger.error("cannot save the retained state; retrying every second",
                metadata: ["problems": "\(problems.joined(separator: "; "))", "messages": "\(core.retained.count)"])
        }
    }

    private func log(restored count: Int, from source: String) {
        logger.notice("retained messages restored", metadata: ["messages": "\(count)", "from": "\(source)"])
    }

    // MARK: - I/O

    /// The content of a sealed memfd; refuses a descriptor that is not one.
    static func readSealed(_ fd: Int32) throws -> [UInt8] {
        guard herald_memfd_is_sealed(fd) == 1 else { throw PersistenceError("the stored descriptor is not a sealed memfd") }
        return try readAll(fd)
    }

    /// The whole file at `path`, or nil if it does not exist.
    static func readFile(_ path: String) throws -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw PersistenceError(String(cString: strerror(errno)))
        }
        defer { close(fd) }
        return try readAll(fd)
    }

    private static func readAll(_ fd: Int32) throws -> [UInt8] {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw PersistenceError(String(cString: strerror(errno))) }
        let size = Int(info.st_size)
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, size - done, off_t(done)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw PersistenceError(n == 0 ? "shorter than its size" : String(cString: strerror(errno))) }
            done += n
        }
        return bytes
    }

    /// Replaces `path` with `bytes` so that a reader sees the old file or the new one, never
    /// a mix: write a temporary file beside it, fsync, rename over, fsync the directory.
    /// Returns what went wrong, or nil.
    static func writeAtomically(_ bytes: [UInt8], to path: String) -> String? {
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return "\(temporary): \(String(cString: strerror(errno)))" }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, bytes.count - written) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let problem = "\(temporary): \(String(cString: strerror(errno)))"
                close(fd)
                unlink(temporary)
                return problem
            }
            written += n
        }
        guard fsync(fd) == 0, close(fd) == 0 else {
            let problem = "\(temporary): \(String(cString: strerror(errno)))"
            unlink(temporary)
            return problem
        }
        guard rename(temporary, path) == 0 else {
            let problem = "\(path): \(String(cString: strerror(errno)))"
            unlink(temporary)
            return problem
        }
        // The rename itself is durable once the directory is.
        let directory = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        let directoryFD = open(directory.isEmpty ? "/" : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            _ = fsync(directoryFD)
            close(directoryFD)
        }
        return nil
    }
}

/// What went wrong reading or writing retained state.
struct PersistenceError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
