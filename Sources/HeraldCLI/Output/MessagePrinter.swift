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

    func print(_ message: Message) {
        output.write(json ? jsonLine(message) : humanLine(message))
    }

    private func humanLine(_ message: Message) -> String {
        var line = message.topic
        line += " "
        line += message.string ?? "0x" + hex(message.payload)
        // The topic's current value, published before this subscription began.
        if message.isRetained { line += "  (retained)" }
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

    private func jsonLine(_ message: Message) -> String {
        var line = "{\"topic\":"
        appendJSONString(message.topic, to: &line)
        line += ",\"payload\":"
        if let text = message.string {
            appendJSONString(text, to: &line)
        } else {
            line += "null"
        }
        line += ",\"payload_base64\":\""
        line += base64(message.payload)
        let sender = message.sender
        line += "\",\"sender\":{\"peer\":\(sender.peerID),\"pid\":\(sender.pid),\"uid\":\(sender.uid),\"gid\":\(sender.gid)}"
        if message.droppedBefore > 0 { line += ",\"dropped_before\":\(message.droppedBefore)" }
        if let retainedAt = message.retainedAt {
            // Seconds since the Unix epoch, when the broker stored it.
            line += ",\"retained\":true,\"retained_at\":\(retainedAt.timeIntervalSince1970)"
        }
        line += "}\n"
        return line
    }
}
