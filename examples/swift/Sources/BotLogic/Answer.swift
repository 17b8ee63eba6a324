import Foundation

/// What the bot answers to `text`, if anything: `/ping` gets `pong`, `/echo <text>` the text,
/// `/upper <text>` the text in capitals; everything else gets nothing.
public func answer(_ text: String) -> String? {
    let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
    let parts = trimmed.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
    guard let command = parts.first else { return nil }
    let rest = parts.count > 1 ? parts[1].trimmingCharacters(in: .whitespaces) : ""
    switch (command, rest.isEmpty) {
    case ("/ping", true): return "pong"
    case ("/echo", false): return rest
    case ("/upper", false): return rest.uppercased()
    default: return nil
    }
}
