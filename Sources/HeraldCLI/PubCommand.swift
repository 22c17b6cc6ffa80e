import ArgumentParser
import Herald

#if canImport(Glibc)
import Glibc
#endif

/// `herald pub TOPIC [MESSAGE]`: publishes a message, or one per line of standard input.
struct PubCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pub",
        abstract: "Publish a message, or one message per line of standard input.",
        discussion: """
            Exits once the broker has routed every message (it flushes before exiting). Lines are \
            published as bytes, without their trailing newline; a last line without a newline is \
            published too. A broker that restarts meanwhile is reconnected to and the messages not yet \
            sent go to the next one; with --wait, a broker not yet listening is waited for. With \
            --retain the broker keeps the (last) message as the topic's current value, which every later \
            subscriber receives first; '--retain TOPIC ""' clears it. With --file the file's content is \
            published as one message in a sealed memfd: any size, mapped by the subscribers rather than \
            copied through the broker (subscribers that do not accept file descriptors receive it without \
            its payload, flagged).
            """)

    @OptionGroup var connection: ConnectionOptions

    @Argument(help: "The topic to publish on, e.g. power/battery (no '+', '#', empty levels, or leading '$').")
    var topic: String

    @Argument(help: "The message text. Without it, each line of standard input is published as one message.")
    var message: String?

    @Option(name: .customLong("repeat"), help: ArgumentHelp("Publish each message N times.", valueName: "N"))
    var repeatCount = 1

    @Flag(help: "Keep the message as the topic's retained message (its current value); an empty message clears it.")
    var retain = false

    @Option(
        help: ArgumentHelp(
            "Publish this file's content as one message, passed as a sealed memfd (any size; not with MESSAGE or --retain).",
            valueName: "path"))
    var file: String?

    @Option(
        name: .customLong("fd"),
        help: ArgumentHelp(
            "Pass this open file descriptor of the shell with each message (repeatable, at most 16), e.g. '--fd 3 3<file'.",
            valueName: "n"))
    var descriptors: [Int32] = []

    @Option(help: ArgumentHelp("Wait up to this many seconds for a broker that is not listening yet (starting or restarting).", valueName: "seconds"))
    var wait: Double = 0

    func validate() throws {
        guard repeatCount >= 1 else { throw ValidationError("--repeat must be at least 1") }
        guard wait >= 0 else { throw ValidationError("--wait must not be negative") }
        for descriptor in descriptors where fcntl(descriptor, F_GETFD) < 0 {
            throw ValidationError("--fd \(descriptor): not an open file descriptor")
        }
        if !descriptors.isEmpty && retain { throw ValidationError("--fd cannot be retained (the broker does not keep descriptors)") }
        if let file {
            guard access(file, R_OK) == 0 else { throw ValidationError("--file \(file): \(String(cString: strerror(errno)))") }
            guard message == nil else { throw ValidationError("give either MESSAGE or --file, not both") }
            guard !retain else { throw ValidationError("--file cannot be retained (the broker does not keep descriptors)") }
        }
    }

    func run() async throws {
        // Check the topic grammar before connecting (the broker's length limit is checked after).
        do {
            try Topic.validatePublishable(topic, maxLength: ProtocolLimits.maxTopicLengthCeiling)
        } catch {
            throw Failure.report(.invalidTopic(topic, reason: "it \(error)"))
        }
        let bus = try await connection.connect(wait: wait)
        do {
            let passed = descriptors.map(FileDescriptor.init(rawValue:))
            if let file {
                for _ in 0..<repeatCount { try await bus.publish(topic, try Self.sealedPayload(file), fileDescriptors: passed) }
            } else if let message {
                for _ in 0..<repeatCount { try await publish(Array(message.utf8), on: bus, passing: passed) }
            } else {
                var lines = LineReader(fd: 0)
                while let line = lines.next() {
                    for _ in 0..<repeatCount { try await publish(line, on: bus, passing: passed) }
                }
            }
            try await bus.flush()
        } catch {
            await bus.close()
            throw Failure.report(error)
        }
        await bus.close()
    }

    private func publish(_ payload: some Collection<UInt8>, on bus: Bus, passing descriptors: [FileDescriptor]) async throws(HeraldError) {
        if descriptors.isEmpty {
            try await bus.publish(topic, payload, retain: retain)
        } else {
            try await bus.publish(topic, payload, fileDescriptors: descriptors)
        }
    }

    /// The content of the file at `path` in a new memfd, read straight into its mapping.
    static func sealedPayload(_ path: String) throws(HeraldError) -> SealedPayload {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .descriptorsRefused("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
            throw .descriptorsRefused("\(path) is not a regular file")
        }
        var payload = try SealedPayload(count: Int(status.st_size))
        let problem = payload.withUnsafeMutableBytes { memory -> String? in
            var offset = 0
            while offset < memory.count {
                let n = read(fd, memory.baseAddress! + offset, memory.count - offset)
                if n < 0 && errno == EINTR { continue }
                if n < 0 { return String(cString: strerror(errno)) }
                if n == 0 { return "it shrank while being read" }
                offset += n
            }
            return nil
        }
        if let problem { throw .descriptorsRefused("cannot read \(path): \(problem)") }
        return payload
    }
}

/// Splits a file descriptor's bytes into lines (without the newline), reading in large chunks.
struct LineReader {
    let fd: Int32
    private var buffer: [UInt8] = []
    private var chunk = [UInt8](repeating: 0, count: 64 << 10)
    private var start = 0
    /// Bytes before this index (from `start`) hold no newline.
    private var scanned = 0
    private var atEnd = false

    init(fd: Int32) {
        self.fd = fd
    }

    /// The next line, or nil at end of input.
    mutating func next() -> ArraySlice<UInt8>? {
        while true {
            if let newline = buffer[max(start, scanned)...].firstIndex(of: UInt8(ascii: "\n")) {
                let line = buffer[start..<newline]
                start = newline + 1
                scanned = start
                return line
            }
            scanned = buffer.count
            if atEnd {
                guard start < buffer.count else { return nil }
                let line = buffer[start...]
                start = buffer.count
                return line
            }
            if start > 0 {
                buffer.removeSubrange(..<start)
                scanned -= start
                start = 0
            }
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n > 0 { buffer.append(contentsOf: chunk[..<n]) }
            if n <= 0 { atEnd = true }
        }
    }
}
