// A WhatsApp bot on walink's Swift package: it links itself as a companion device (printing the
// QR payload to render, or a pairing code with --phone), answers /ping, /echo and /upper, and
// keeps its session in a directory (walink's file store), so a restart logs in without pairing.
//
//     swift run SwiftBot --store bot-session [--phone 15551234567]
import BotLogic
import Foundation
import Walink

var options: [String: String] = [:]
var arguments = CommandLine.arguments.dropFirst()
while let flag = arguments.popFirst() {
    guard flag.hasPrefix("--"), let value = arguments.popFirst() else {
        FileHandle.standardError.write("usage: SwiftBot [--store DIR] [--phone DIGITS]\n".data(using: .utf8)!)
        exit(2)
    }
    options[String(flag.dropFirst(2))] = value
}
let storeDirectory = URL(fileURLWithPath: options["store"] ?? "walink-bot-session")
let phone = options["phone"]

/// The driver, once started; replies are sent through it.
actor Bot {
    var driver: Driver?

    func attach(_ driver: Driver) { self.driver = driver }

    func reply(to chat: String, text: String) async {
        do {
            _ = try await driver?.sendText(to: chat, text: text)
        } catch {
            print("reply to \(chat) failed: \(error)")
        }
    }
}

let bot = Bot()
let driver = try await Driver.start(
    store: try FileStore(directory: storeDirectory),
    config: ClientConfig(deviceName: "walink bot"),
    onEvent: { event in
        switch event {
        case let .qr(payload, _) where phone == nil:
            print("qr: \(payload)")
            print("Render it as a QR code (for example `qrencode -t UTF8 '<payload>'`), then on the phone:")
            print("Linked devices > Link a device.")
        case let .paired(jid, _, _, _):
            print("linked as \(jid)")
        case .state(.connected, _):
            print("connected")
        case let .message(_, chat, _, _, fromMe, _, history, _, _, _, text, _):
            // Not our own messages (sent from the phone) nor old ones from a history sync.
            if !fromMe, !history, let text, let reply = answer(text) {
                Task { await bot.reply(to: chat, text: reply) }
            }
        default:
            break
        }
    },
    onError: { error in print("walink: \(error)") }
)
await bot.attach(driver)
if let phone {
    do {
        let code = try await driver.pairWithCode(phone)
        print("pairing code for \(phone): \(code.prefix(4))-\(code.dropFirst(4))")
        print("On the phone: Linked devices > Link a device > Link with phone number instead.")
    } catch let error as DriverError where error.code == "already_paired" {
        // The session in the directory is linked already.
    }
}
print("session in \(storeDirectory.path); Ctrl-C stops (the device stays linked)")
while true {
    try await Task.sleep(nanoseconds: 3_600_000_000_000)
}
