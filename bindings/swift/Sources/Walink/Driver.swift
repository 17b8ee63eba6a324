// The Swift concurrency driver: runs one walink Client (the uniffi-generated `Client`) against a
// transport, a store and one timer, following the core's contract (core/src/lib.rs):
// - every input (socket open, bytes, close, timer, command) is fed to the client one at a time
//   by the driver actor, and after each one the outputs are drained in order;
// - a Persist batch is awaited before any later output, and a Load is answered (store.load, then
//   handleLoaded) before the next output; if the store throws, the client is dropped, the
//   transport closed, and a new client built from store.loadAll(): the same path as a crash;
// - after each drain, pollTimeout() re-arms the single timer;
// - a fetch output (an HTTPS request the core asks for: app-state blobs, media later) is carried
//   out in a detached task with one HTTP call (URLSession, or the host's fetcher), and its result
//   (a response of any status, or the transport's failure) is handed to handleFetched of the
//   client that asked;
// - no state ends the loop: the client rests in loggedOut, replaced or clientOutdated until a
//   command (connect) or close(), as the core decides.
// The core never calls back into Swift: every await is the driver's.
//
// This file is not compiled on the Linux build machines (no Swift toolchain); see README.md.
import Foundation

/// One change of a batch, as the host's store applies it.
public enum Change: Sendable {
    case put(space: String, key: String, value: Data)
    case delete(space: String, key: String)
    case deleteAll
}

/// One stored record.
public struct Record: Sendable, Equatable {
    public let space: String
    public let key: String
    public let value: Data

    public init(space: String, key: String, value: Data) {
        self.space = space
        self.key = key
        self.value = value
    }
}

/// The address of a record.
public struct RecordKey: Sendable, Hashable {
    public let space: String
    public let key: String
}

/// What the driver needs of a store: `applyBatch` is atomic (and durable, for a durable store).
public protocol Store: Sendable {
    func applyBatch(_ changes: [Change]) async throws
    func loadAll() async throws -> [Record]
    func load(_ keys: [RecordKey]) async throws -> [Record]
}

/// walink's Rust file store (through walink-ffi's `NativeFileStore`): a directory holding a
/// snapshot and a write-ahead log of checksummed batches, synced before `applyBatch` returns; a
/// torn last write is cut off on open. The npm store's format, shared with the Kotlin and Python
/// packages. The directory is created 0700 and its files 0600 (they hold private keys). Calls
/// block on the disk, one at a time (the actor serializes them).
public actor FileStore: Store {
    private let store: NativeFileStore

    /// Opens (creating it if needed) the store in `directory`; `sync: false` skips the fsyncs.
    public init(directory: URL, sync: Bool = true, compactBytes: UInt64 = 1 << 20) throws {
        store = try NativeFileStore.open(directory: directory.path, sync: sync, compactBytes: compactBytes)
    }

    public func applyBatch(_ changes: [Change]) async throws {
        try store.applyBatch(changes: changes.map { change -> StoreChange in
            switch change {
            case let .put(space, key, value): return .put(space: space, key: key, value: value)
            case let .delete(space, key): return .delete(space: space, key: key)
            case .deleteAll: return .deleteAll
            }
        })
    }

    public func loadAll() async throws -> [Record] {
        try store.loadAll().map { Record(space: $0.space, key: $0.key, value: $0.value) }
    }

    public func load(_ keys: [RecordKey]) async throws -> [Record] {
        try store.load(keys: keys.map { StoreKey(space: $0.space, key: $0.key) })
            .map { Record(space: $0.space, key: $0.key, value: $0.value) }
    }

    /// Closes the store's files; later calls throw.
    public func close() throws {
        try store.closeStore()
    }
}

/// Records in a dictionary: tests and short-lived clients. Not durable.
public actor MemoryStore: Store {
    private var records: [RecordKey: Data] = [:]

    public init() {}

    public func applyBatch(_ changes: [Change]) async throws {
        var next = records
        for change in changes {
            switch change {
            case let .put(space, key, value): next[RecordKey(space: space, key: key)] = value
            case let .delete(space, key): next[RecordKey(space: space, key: key)] = nil
            case .deleteAll: next.removeAll()
            }
        }
        records = next
    }

    public func loadAll() async throws -> [Record] {
        records.map { Record(space: $0.key.space, key: $0.key.key, value: $0.value) }
    }

    public func load(_ keys: [RecordKey]) async throws -> [Record] {
        keys.compactMap { k in records[k].map { Record(space: k.space, key: k.key, value: $0) } }
    }
}

/// A connected, message-oriented socket.
public protocol Transport: Sendable {
    func send(_ bytes: Data) async throws
    /// The next binary message, or nil once the socket closed.
    func receive() async throws -> Data?
    func close() async
}

/// The default transport: URLSessionWebSocketTask with WhatsApp Web's Origin header.
public final class URLSessionTransport: Transport, @unchecked Sendable {
    private let task: URLSessionWebSocketTask

    public static func open(_ url: URL) async throws -> Transport {
        var request = URLRequest(url: url)
        request.setValue(endpoints().origin, forHTTPHeaderField: "Origin")
        let task = URLSession.shared.webSocketTask(with: request)
        task.resume()
        return URLSessionTransport(task: task)
    }

    private init(task: URLSessionWebSocketTask) {
        self.task = task
    }

    public func send(_ bytes: Data) async throws {
        try await task.send(.data(bytes))
    }

    public func receive() async throws -> Data? {
        do {
            switch try await task.receive() {
            case let .data(data): return data
            case let .string(text): return Data(text.utf8)
            @unknown default: return nil
            }
        } catch {
            return nil
        }
    }

    public func close() async {
        task.cancel(with: .normalClosure, reason: nil)
    }
}

/// A failure of the driver or of a command; `code` is stable.
public struct DriverError: Error, Sendable {
    public let code: String
    public let message: String
}

/// Carries out one HTTPS request the core asked for (a `fetch` output): the driver's one HTTP
/// call. Returns the response, whatever its status, or the transport's failure, reading at most
/// the request's `maxResponseBytes` of body.
public typealias Fetcher = @Sendable (FetchRequest) async -> FetchResult

/// The default fetcher: URLSession, reading the body no further than the request allows.
public let urlSessionFetcher: Fetcher = { request in
    guard let url = URL(string: request.url) else { return .failed(error: .network) }
    var call = URLRequest(url: url, timeoutInterval: Double(request.timeoutMs) / 1000)
    call.httpMethod = request.method
    for header in request.headers { call.addValue(header.value, forHTTPHeaderField: header.name) }
    call.httpBody = request.body
    do {
        let (bytes, response) = try await URLSession.shared.bytes(for: call)
        guard let http = response as? HTTPURLResponse else { return .failed(error: .network) }
        var body = Data()
        for try await byte in bytes {
            body.append(byte)
            if UInt64(body.count) > request.maxResponseBytes { return .failed(error: .tooLarge) }
        }
        return .response(status: UInt16(clamping: http.statusCode), body: body)
    } catch let error as URLError where error.code == .timedOut {
        return .failed(error: .timedOut)
    } catch {
        return .failed(error: .network)
    }
}

/// Wall-clock Unix milliseconds.
public func nowMs() -> UInt64 {
    UInt64(Date().timeIntervalSince1970 * 1000)
}

/// One running client: `try await Driver.start(store:config:...)`.
///
/// Actors are reentrant, so the driver never feeds the client from an actor method directly:
/// every input goes through one AsyncStream consumed by a single loop task, which makes a store
/// await block the next input as the contract requires.
public actor Driver {
    private typealias Input = @Sendable (Client) throws -> Void
    private let inputs: AsyncStream<Input>
    private let enqueue: AsyncStream<Input>.Continuation
    private var loop: Task<Void, Never>?
    /// WhatsApp Web's chat socket, as the core states it.
    public static let defaultURL = URL(string: endpoints().chatUrl)!

    private let store: Store
    private let config: ClientConfig
    private let url: URL
    private let openTransport: @Sendable (URL) async throws -> Transport
    private let onEvent: @Sendable (ClientEvent) -> Void
    private let onError: @Sendable (Error) -> Void
    private let fetch: Fetcher
    private let media: FileMediaHost
    private var client: Client?
    private var socket: Transport?
    private var socketGeneration = 0
    private var reader: Task<Void, Never>?
    private var timer: Task<Void, Never>?
    private var pending: [UInt64: CheckedContinuation<CommandOutput, Error>] = [:]
    private(set) public var ended = false
    private(set) public var state: ClientState?

    private init(store: Store, config: ClientConfig, url: URL,
                 openTransport: @escaping @Sendable (URL) async throws -> Transport,
                 onEvent: @escaping @Sendable (ClientEvent) -> Void,
                 onError: @escaping @Sendable (Error) -> Void,
                 fetch: @escaping Fetcher, media: FileMediaHost) {
        self.media = media
        self.store = store
        self.config = config
        self.url = url
        self.openTransport = openTransport
        self.onEvent = onEvent
        self.onError = onError
        self.fetch = fetch
        (inputs, enqueue) = AsyncStream<Input>.makeStream()
    }

    /// Builds the client from the store and carries out its first outputs.
    ///
    /// HTTPS requests the core asks for (`fetch` outputs: app-state blobs, media later) are
    /// carried out by `fetch` (URLSession by default) in a detached task; a failed one is
    /// reported to `onError` as a `DriverError` with code `fetch_failed`. No state ends the
    /// driver: it stops on `close()` or a fatal error.
    public static func start(store: Store, config: ClientConfig, url: URL = defaultURL,
                             openTransport: @escaping @Sendable (URL) async throws -> Transport = URLSessionTransport.open,
                             onEvent: @escaping @Sendable (ClientEvent) -> Void = { _ in },
                             onError: @escaping @Sendable (Error) -> Void = { _ in },
                             fetch: @escaping Fetcher = urlSessionFetcher,
                             media: FileMediaHost = FileMediaHost()) async throws -> Driver {
        let driver = Driver(store: store, config: config, url: url, openTransport: openTransport, onEvent: onEvent,
                            onError: onError, fetch: fetch, media: media)
        try await driver.build()
        await driver.startLoop()
        return driver
    }

    private func startLoop() {
        loop = Task { [weak self] in
            guard let stream = await self?.inputs else { return }
            for await input in stream {
                guard let self else { return }
                await self.run(input)
                if await self.ended { return }
            }
        }
    }

    private func run(_ input: Input) async {
        guard let client, !ended else { return }
        do {
            try input(client)
        } catch is EndSignal {
            end()
            return
        } catch {
            // The client failed (walink panicked: a bug); it cannot be used again.
            onError(error)
            end()
            return
        }
        await drainReportingFailure()
    }

    /// Sends a command; returns its output or throws a DriverError named after the error.
    public func command(_ command: Command) async throws -> CommandOutput {
        guard !ended else { throw DriverError(code: "ended", message: "the driver has ended") }
        return try await withCheckedThrowingContinuation { continuation in
            enqueue.yield { [weak self] client in
                do {
                    let id = try client.command(now: nowMs(), command: command)
                    Task { await self?.register(id, continuation) }
                } catch {
                    continuation.resume(throwing: error)
                    throw error
                }
            }
        }
    }

    private func register(_ id: UInt64, _ continuation: CheckedContinuation<CommandOutput, Error>) {
        pending[id] = continuation
    }

    public func pairWithCode(_ phone: String) async throws -> String {
        guard case let .pairingCode(code) = try await command(.pairWithCode(phone: phone)) else {
            throw DriverError(code: "unexpected_output", message: "pairWithCode did not return a code")
        }
        return code
    }

    public func sendText(to: String, text: String) async throws -> String {
        guard case let .messageSent(id) = try await command(.sendText(to: to, text: text)) else {
            throw DriverError(code: "unexpected_output", message: "sendText did not return an id")
        }
        return id
    }

    /// Sends any content (a reply, reaction, edit, revoke, poll, media, location, ...); returns
    /// the message id once the server acknowledged it.
    public func sendMessage(to: String, message: WaMessage) async throws -> String {
        guard case let .messageSent(id) = try await command(.sendContent(to: to, message: message)) else {
            throw DriverError(code: "unexpected_output", message: "sendMessage did not return an id")
        }
        return id
    }

    /// Votes in a poll this device sent or received (options by name; none withdraws the vote).
    public func sendPollVote(chat: String, pollId: String, options: [String]) async throws -> String {
        guard case let .messageSent(id) = try await command(.sendPollVote(chat: chat, pollId: pollId, options: options)) else {
            throw DriverError(code: "unexpected_output", message: "sendPollVote did not return an id")
        }
        return id
    }

    /// The identity keys kept for a device: the one trusted, and a new one waiting for approval.
    public func getIdentity(address: String) async throws -> (identity: Data?, pending: Data?) {
        guard case let .identity(_, identity, pending) = try await command(.getIdentity(address: address)) else {
            throw DriverError(code: "unexpected_output", message: "getIdentity did not return identity keys")
        }
        return (identity, pending)
    }

    /// Trusts a device's new identity key (strict policy); refused messages are asked for again.
    public func approveIdentity(address: String, identity: Data) async throws {
        _ = try await command(.approveIdentity(address: address, identity: identity))
    }

    /// Uploads `data` and sends it to `to` (a user or group) as a message of `kind`; returns the
    /// message id once the server acknowledged it.
    public func sendMedia(
        to: String, kind: MediaKind, data: Data, mimetype: String, caption: String? = nil,
        fileName: String? = nil, width: UInt32? = nil, height: UInt32? = nil,
        seconds: UInt32? = nil, thumbnail: Data? = nil
    ) async throws -> String {
        let media = Command.sendMedia(
            to: to, kind: kind, data: data, mimetype: mimetype, caption: caption,
            fileName: fileName, width: width, height: height, seconds: seconds,
            thumbnail: thumbnail, hostBody: nil)
        guard case let .messageSent(id) = try await command(media) else {
            throw DriverError(code: "unexpected_output", message: "sendMedia did not return an id")
        }
        return id
    }

    /// Downloads and decrypts the media of a received message (its event's `id`, `chat`,
    /// `sender` and `message`), its hashes and MAC checked.
    public func downloadMedia(id: String, chat: String, sender: String, message: Data) async throws -> Data {
        let download = Command.downloadMedia(id: id, chat: chat, sender: sender, message: message, sink: nil)
        guard case let .mediaDownloaded(data) = try await command(download) else {
            throw DriverError(code: "unexpected_output", message: "downloadMedia did not return data")
        }
        return data
    }

    /// Sends the file at `path` without holding it: it is encrypted a piece at a time into a
    /// temporary file (0600) that the upload streams, deleted when the command ended.
    public func sendMedia(
        to: String, kind: MediaKind, path: URL, mimetype: String, caption: String? = nil,
        fileName: String? = nil, width: UInt32? = nil, height: UInt32? = nil,
        seconds: UInt32? = nil, thumbnail: Data? = nil
    ) async throws -> String {
        let media = self.media
        let upload = try await Task.detached { try media.prepareUpload(source: path, mediaType: mediaTypeOf(kind: kind)) }.value
        defer { media.releaseBody(upload.body) }
        let send = Command.sendMedia(
            to: to, kind: kind, data: Data(), mimetype: mimetype, caption: caption,
            fileName: fileName, width: width, height: height, seconds: seconds,
            thumbnail: thumbnail, hostBody: upload)
        guard case let .messageSent(id) = try await command(send) else {
            throw DriverError(code: "unexpected_output", message: "sendMedia did not return an id")
        }
        return id
    }

    /// Downloads the media of a received message into the file `to` without holding it: the body
    /// is decrypted as it arrives into a temporary file (0600) that becomes `to` only after the
    /// MAC and both hashes were checked (`mediaSaved`), and is deleted otherwise. Returns the length.
    public func downloadMedia(id: String, chat: String, sender: String, message: Data, to: URL) async throws -> UInt64 {
        let sink = try media.newSink()
        defer { media.discardSink(sink) }
        let download = Command.downloadMedia(id: id, chat: chat, sender: sender, message: message, sink: sink)
        guard case let .mediaSaved(_, length) = try await command(download) else {
            throw DriverError(code: "unexpected_output", message: "downloadMedia did not save the media")
        }
        try media.commitSink(sink, to: to)
        return length
    }

    /// Disconnects and stops; the device stays paired.
    public func close() async {
        guard !ended else { return }
        enqueue.yield { _ = try $0.command(now: nowMs(), command: .disconnect) }
        enqueue.yield { _ in throw EndSignal() }
        await loop?.value
    }

    /// Thrown by the input `close()` queues last: the loop ends once the disconnect is carried out.
    private struct EndSignal: Error {}

    // --- the loop ---

    private func feed(_ input: @escaping Input) {
        if !ended { enqueue.yield(input) }
    }

    private func drainReportingFailure() async {
        do {
            try await drain()
        } catch let error as DriverError where error.code == "store_failed" {
            await rebuild()
        } catch {
            end()
        }
    }

    private func build() async throws {
        let spaces = Set(startSpaces())
        let records = try await store.loadAll().filter { spaces.contains($0.space) }
        client = try Client(config: config, records: records.map {
            StoreRecord(space: $0.space, key: $0.key, value: $0.value)
        })
        do {
            try await drain()
        } catch let error as DriverError where error.code == "store_failed" {
            await rebuild()
        }
    }

    private func rebuild() async {
        dropSocket()
        timer?.cancel()
        client = nil
        for (_, continuation) in pending {
            continuation.resume(throwing: DriverError(code: "client_rebuilt", message: "the client was rebuilt from its store"))
        }
        pending.removeAll()
        do {
            try await build()
        } catch {
            end()
        }
    }

    private func drain() async throws {
        guard let current = client else { return }
        while client === current, !ended, let output = try current.pollOutput() {
            switch output {
            case .connect:
                openSocket()
            case let .persist(changes):
                do {
                    try await store.applyBatch(changes.map(Self.change))
                } catch {
                    throw DriverError(code: "store_failed", message: "the store failed to apply a batch: \(error)")
                }
            case let .load(id, keys):
                let records: [Record]
                do {
                    records = try await store.load(keys.map { RecordKey(space: $0.space, key: $0.key) })
                } catch {
                    throw DriverError(code: "store_failed", message: "the store failed to load records: \(error)")
                }
                try current.handleLoaded(now: nowMs(), id: id, records: records.map {
                    StoreRecord(space: $0.space, key: $0.key, value: $0.value)
                })
            case let .fetch(id, request):
                let asked = current
                Task { [weak self] in await self?.carryOut(asked, id, request) }
            case let .transmit(bytes):
                if let socket {
                    // Sends run in order: each waits for the previous one inside the actor.
                    try? await socket.send(bytes)
                }
            case let .event(event):
                handle(event)
            case .close:
                dropSocket()
            }
        }
        armTimer()
    }

    private static func change(_ change: StoreChange) -> Change {
        switch change {
        case let .put(space, key, value): return .put(space: space, key: key, value: value)
        case let .delete(space, key): return .delete(space: space, key: key)
        case .deleteAll: return .deleteAll
        }
    }

    private func handle(_ event: ClientEvent) {
        if case let .commandDone(id, result) = event, let continuation = pending.removeValue(forKey: id) {
            switch result {
            case let .ok(output): continuation.resume(returning: output)
            case let .err(error, code): continuation.resume(throwing: DriverError(code: code, message: "command failed: \(error)"))
            }
        }
        if case let .state(state, _) = event { self.state = state }
        onEvent(event)
    }

    /// Carries out one fetch in a detached task (the actor is free meanwhile), then hands the
    /// result to `asked` if it is still the current client; a failure is reported to `onError`.
    private func carryOut(_ asked: Client, _ id: UInt64, _ request: FetchRequest) async {
        let fetch = self.fetch
        let media = self.media
        let result = await Task.detached {
            media.streams(request) ? await media.perform(request) : await fetch(request)
        }.value
        if case let .failed(error) = result {
            let path = request.url.split(separator: "?").first.map(String.init) ?? request.url
            onError(DriverError(code: "fetch_failed", message: "\(request.method) \(path) failed: \(error)"))
        }
        feed { current in
            if current === asked { try current.handleFetched(now: nowMs(), id: id, result: result) }
        }
    }

    private func armTimer() {
        timer?.cancel()
        guard let client, let at = client.pollTimeout() else { return }
        let now = nowMs()
        let wait = at > now ? at - now : 0
        timer = Task { [weak self] in
            try? await Task.sleep(nanoseconds: wait * 1_000_000)
            guard !Task.isCancelled else { return }
            await self?.feed { try $0.handleTimeout(now: nowMs()) }
        }
    }

    private func openSocket() {
        dropSocket()
        socketGeneration += 1
        let generation = socketGeneration
        reader = Task { [weak self] in
            guard let self else { return }
            await self.read(generation)
        }
    }

    private func read(_ generation: Int) async {
        let transport: Transport
        do {
            transport = try await openTransport(url)
        } catch {
            if generation == socketGeneration { feed { try $0.handleClosed(now: nowMs(), reason: .network) } }
            return
        }
        guard generation == socketGeneration else {
            await transport.close()
            return
        }
        socket = transport
        feed { try $0.handleConnected(now: nowMs()) }
        while generation == socketGeneration, let bytes = try? await transport.receive() {
            guard generation == socketGeneration else { break }
            feed { try $0.handleBytes(now: nowMs(), bytes: bytes) }
        }
        if generation == socketGeneration {
            socket = nil
            feed { try $0.handleClosed(now: nowMs(), reason: .network) }
        }
    }

    private func dropSocket() {
        socketGeneration += 1
        reader?.cancel()
        reader = nil
        if let socket {
            Task { await socket.close() }
        }
        socket = nil
    }

    private func end() {
        media.dispose()
        guard !ended else { return }
        ended = true
        timer?.cancel()
        dropSocket()
        for (_, continuation) in pending {
            continuation.resume(throwing: DriverError(code: "ended", message: "the driver has ended"))
        }
        pending.removeAll()
        client = nil
        enqueue.finish()
    }
}
