/// Number formatting for the bench report (no Foundation formatters, so every number is
/// printed the same way whatever the locale).
enum BenchFormat {
    /// `value` with `digits` decimals, e.g. fixed(3.14159, 2) = "3.14".
    static func fixed(_ value: Double, _ digits: Int) -> String {
        guard value.isFinite else { return "-" }
        var scale: Double = 1
        for _ in 0..<digits { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        guard scaled < 9.2e18 else { return value < 0 ? "-huge" : "huge" }
        let units = UInt64(scaled)
        let whole = units / UInt64(scale)
        let sign = value < 0 && units != 0 ? "-" : ""
        guard digits > 0 else { return sign + String(whole) }
        let fraction = String(units % UInt64(scale))
        return sign + String(whole) + "." + String(repeating: "0", count: digits - fraction.count) + fraction
    }

    /// A whole number with thousands separators, e.g. 12,345,678.
    static func grouped(_ value: Double) -> String {
        guard value.isFinite else { return "-" }
        let digits = String(UInt64(abs(value).rounded()))
        var out = ""
        for (offset, character) in digits.enumerated() {
            if offset > 0 && (digits.count - offset) % 3 == 0 { out += "," }
            out.append(character)
        }
        return (value < 0 ? "-" : "") + out
    }

    /// A rate with a unit prefix, e.g. "12.35 M".
    static func short(_ value: Double) -> String {
        guard value.isFinite else { return "-" }
        if value >= 1e9 { return fixed(value / 1e9, 2) + " G" }
        if value >= 1e6 { return fixed(value / 1e6, 2) + " M" }
        if value >= 1e3 { return fixed(value / 1e3, 1) + " k" }
        return fixed(value, 0)
    }

    /// A payload size: "64 B", "4 KiB".
    static func bytes(_ count: Int) -> String {
        if count >= 1 << 20 && count % (1 << 20) == 0 { return "\(count >> 20) MiB" }
        return count >= 1024 && count % 1024 == 0 ? "\(count / 1024) KiB" : "\(count) B"
    }

    /// KiB as MiB with one decimal, or "-".
    static func mebibytes(_ kib: Int?) -> String {
        guard let kib else { return "-" }
        return fixed(Double(kib) / 1024, 1)
    }

    /// A percentage without decimals, or "-".
    static func percent(_ value: Double?) -> String {
        guard let value, value.isFinite else { return "-" }
        return fixed(value, 0) + " %"
    }

    /// `text` padded with spaces to `width` (on the left if `right`).
    static func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - text.count))
        return right ? fill + text : text + fill
    }
}
