import Herald

/// Formats messages as human-readable or JSON lines on standard output, one write per line.
struct MessagePrinter {
    let json: Bool
    let showSender: Bool
    private let output = Output(fd: 1)

    init(json: Bool, showSender: Bool) {
        self.json = json
        self.showSender = showSender
    }

    /// Prints `message`; `saved` are the files `--save-dir` wrote for it.
    func print(_ message: Message, saved: [String] = []) {
        output.write(json ? jsonLine(message, saved: saved) : humanLine(message, saved: saved))
    }

    private func humanLine(_ message: Message, saved: [String]) -> String {
        var line = message.topic
        line += " "
        if message.isMappedPayload {
            // Possibly megabytes: described, not printed (--save-dir writes it out).
            line += "<\(message.payloadCount) bytes in a sealed memfd>"
        } else {
            line += message.string ?? "0x" + hex(message.payload)
        }
        // The topic's current value, published before this subscription began.
        if message.isRetained { line += "  (retained)" }
        let descriptors = message.fileDescriptors.map { DescriptorDescription($0).text }
        if !descriptors.isEmpty { line += "  [fds: " + descriptors.joined(separator: ", ") + "]" }
        if message.withheldFileDescriptors > 0 { line += "  [\(message.withheldFileDescriptors) fds withheld]" }
        if let rejection = message.payloadRejection { line += "  [payload missing: \(rejection)]" }
        if !saved.isEmpty { line += "  [saved: " + saved.joined(separator: ", ") + "]" }
        if showSender {
            let sender = message.sender
            let pid = sender.processExited ? "0 (exited)" : "\(sender.pid)"
            line += "  [peer \(sender.peerID) pid \(pid) uid \(sender.uid)]"
        }
        if message.droppedBefore > 0 && showSender {
            line += " (after \(message.droppedBefore) dropped)"
        }
        line += "\n"
        return line
    }

    private func jsonLine(_ message: Message, saved: [String]) -> String {
        var line = "{\"topic\":"
        appendJSONString(message.topic, to: &line)
        line += ",\"payload\":"
        if !message.isMappedPayload, let text = message.string {
            appendJSONString(text, to: &line)
        } else {
            line += "null"
        }
        if message.isMappedPayload {
            line += ",\"payload_size\":\(message.payloadCount),\"sealed_payload\":true"
        } else {
            line += ",\"payload_base64\":\""
            line += base64(message.payload)
            line += "\""
        }
        let descriptors = message.fileDescriptors
        if !descriptors.isEmpty {
            line += ",\"fds\":[" + descriptors.map { DescriptorDescription($0).json }.joined(separator: ",") + "]"
        }
        if message.withheldFileDescriptors > 0 { line += ",\"fds_withheld\":\(message.withheldFileDescriptors)" }
        if let rejection = message.payloadRejection {
            line += ",\"payload_rejected\":"
            appendJSONString(rejection, to: &line)
        }
        if !saved.isEmpty {
            line += ",\"saved\":["
            for (index, path) in saved.enumerated() {
                if index > 0 { line += "," }
                appendJSONString(path, to: &line)
            }
            line += "]"
        }
        let sender = message.sender
        line += ",\"sender\":{\"peer\":\(sender.peerID),\"pid\":\(sender.pid),\"uid\":\(sender.uid),\"gid\":\(sender.gid)}"
        if message.droppedBefore > 0 { line += ",\"dropped_before\":\(message.droppedBefore)" }
        if let retainedAt = message.retainedAt {
            // Seconds since the Unix epoch, when the broker stored it.
            line += ",\"retained\":true,\"retained_at\":\(retainedAt.timeIntervalSince1970)"
        }
        line += "}\n"
        return line
    }
}
