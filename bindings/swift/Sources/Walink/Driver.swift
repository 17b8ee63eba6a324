// The Swift concurrency driver: runs one walink Client (the uniffi-generated `Client`) against a
// transport, a store and one timer, following the core's contract (core/src/lib.rs):
// - every input (socket open, bytes, close, timer, command) is fed to the client one at a time
//   by the driver actor, and after each one the outputs are drained in order;
// - a Persist batch is awaited before any later output, and a Load is answered (store.load, then
//   handleLoaded) before the next output; if the store throws, the client is dropped, the
//   transport closed, and a new client built from store.loadAll(): the same path as a crash;
// - after each drain, pollTimeout() re-arms the single timer;
// - an appStateDownload event is answered by the driver (unless switched off): the blob is
//   downloaded in a detached task (URLSession, or the host's function), then its bytes (nil on
//   failure) are fed back as Command.appStateBlob to the client that asked.
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
        request.setValue("https://web.whatsapp.com", forHTTPHeaderField: "Origin")
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

/// Downloads one app-state blob: the URL (media host + direct path), the direct path and the
/// download id; returns the file's bytes as served (still encrypted; the core checks them).
public typealias AppStateBlobDownloader = @Sendable (_ url: URL, _ directPath: String, _ downloadId: UInt64) async throws -> Data

/// WhatsApp's media host, which serves app-state blobs by direct path.
public let defaultMediaHost = "https://mmg.whatsapp.net"

/// The largest app-state blob the default download accepts (the core's own bound).
public let maxBlobBytes = 64 * 1024 * 1024

/// The URL of a blob's direct path on a media host (an origin, with or without a trailing slash).
public func blobURL(mediaHost: String, directPath: String) -> URL? {
    var host = mediaHost
    while host.hasSuffix("/") { host.removeLast() }
    return URL(string: host + (directPath.hasPrefix("/") ? directPath : "/" + directPath))
}

/// The default download: a GET with URLSession; a non-2xx status or a body of more than
/// `maxBlobBytes` is an error.
public let urlSessionBlobDownloader: AppStateBlobDownloader = { url, _, _ in
    let (data, response) = try await URLSession.shared.data(from: url)
    guard let http = response as? HTTPURLResponse, (200..<300).contains(http.statusCode) else {
        throw DriverError(code: "app_state_download_failed", message: "GET \(url): status \((response as? HTTPURLResponse)?.statusCode ?? 0)")
    }
    guard data.count <= maxBlobBytes else {
        throw DriverError(code: "app_state_download_failed", message: "GET \(url): more than \(maxBlobBytes) bytes")
    }
    return data
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
    public static let defaultURL = URL(string: "wss://web.whatsapp.com/ws/chat")!

    private let store: Store
    private let config: ClientConfig
    private let url: URL
    private let openTransport: @Sendable (URL) async throws -> Transport
    private let onEvent: @Sendable (ClientEvent) -> Void
    private let onError: @Sendable (Error) -> Void
    private let appStateDownloads: Bool
    private let downloadAppStateBlob: AppStateBlobDownloader
    private let mediaHost: String
    private var client: Client?
    private var socket: Transport?
    private var socketGeneration = 0
    private var reader: Task<Void, Never>?
    private var timer: Task<Void, Never>?
    private var pending: [UInt64: CheckedContinuation<CommandOutput, Error>] = [:]
    private var terminal = false
    private(set) public var ended = false
    private(set) public var state: ClientState?

    private init(store: Store, config: ClientConfig, url: URL,
                 openTransport: @escaping @Sendable (URL) async throws -> Transport,
                 onEvent: @escaping @Sendable (ClientEvent) -> Void,
                 onError: @escaping @Sendable (Error) -> Void,
                 appStateDownloads: Bool,
                 downloadAppStateBlob: @escaping AppStateBlobDownloader,
                 mediaHost: String) {
        self.store = store
        self.config = config
        self.url = url
        self.openTransport = openTransport
        self.onEvent = onEvent
        self.onError = onError
        self.appStateDownloads = appStateDownloads
        self.downloadAppStateBlob = downloadAppStateBlob
        self.mediaHost = mediaHost
        (inputs, enqueue) = AsyncStream<Input>.makeStream()
    }

    /// Builds the client from the store and carries out its first outputs.
    ///
    /// App-state blobs: the driver answers each `appStateDownload` event itself, downloading
    /// `blobURL(mediaHost:directPath:)` with `downloadAppStateBlob` (URLSession by default) in a
    /// detached task; a failed download answers with no bytes and is reported to `onError` as a
    /// `DriverError` with code `app_state_download_failed`. With `appStateDownloads` false the
    /// host answers the events itself with `Command.appStateBlob`.
    public static func start(store: Store, config: ClientConfig, url: URL = defaultURL,
                             openTransport: @escaping @Sendable (URL) async throws -> Transport = URLSessionTransport.open,
                             onEvent: @escaping @Sendable (ClientEvent) -> Void = { _ in },
                             onError: @escaping @Sendable (Error) -> Void = { _ in },
                             mediaHost: String = defaultMediaHost,
                             downloadAppStateBlob: @escaping AppStateBlobDownloader = urlSessionBlobDownloader,
                             appStateDownloads: Bool = true) async throws -> Driver {
        let driver = Driver(store: store, config: config, url: url, openTransport: openTransport, onEvent: onEvent,
                            onError: onError, appStateDownloads: appStateDownloads,
                            downloadAppStateBlob: downloadAppStateBlob, mediaHost: mediaHost)
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
            return
        }
        await drainReportingFailure()
    }

    /// Sends a command; returns its output or throws a DriverError named after the error.
    public func command(_ command: Command) async throws -> CommandOutput {
        guard !ended else { throw DriverError(code: "ended", message: "the driver has ended") }
        return try await withCheckedThrowingContinuation { continuation in
            enqueue.yield { [weak self] client in
                let id = client.command(now: nowMs(), command: command)
                Task { await self?.register(id, continuation) }
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

    /// Disconnects and stops; the device stays paired.
    public func close() async {
        guard !ended else { return }
        enqueue.yield { _ = $0.command(now: nowMs(), command: .disconnect) }
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
        while client === current, !ended, let output = current.pollOutput() {
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
        if terminal { end() } else { armTimer() }
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
            case let .err(error): continuation.resume(throwing: DriverError(code: "\(error)", message: "command failed: \(error)"))
            }
        }
        if case let .state(state, _) = event {
            self.state = state
            switch state {
            case .loggedOut, .replaced, .clientOutdated: terminal = true
            default: break
            }
        }
        onEvent(event)
        if case let .appStateDownload(downloadId, directPath) = event, appStateDownloads, let asked = client {
            Task { [weak self] in await self?.download(asked, downloadId, directPath) }
        }
    }

    /// Downloads one app-state blob in a detached task (the actor is free meanwhile), then feeds
    /// the bytes (or nil on failure, so the core's recovery ladder goes on) to `asked` if it is
    /// still the current client.
    private func download(_ asked: Client, _ downloadId: UInt64, _ directPath: String) async {
        let downloader = downloadAppStateBlob
        let target = blobURL(mediaHost: mediaHost, directPath: directPath)
        let result: Result<Data, Error> = await Task.detached { () -> Result<Data, Error> in
            do {
                guard let target = target else {
                    throw DriverError(code: "app_state_download_failed", message: "no URL for \(directPath)")
                }
                return .success(try await downloader(target, directPath, downloadId))
            } catch {
                return .failure(error)
            }
        }.value
        var bytes: Data?
        switch result {
        case let .success(data):
            bytes = data
        case let .failure(error):
            onError(DriverError(code: "app_state_download_failed",
                                message: "downloading app-state blob \(downloadId) failed: \(error)"))
        }
        let answer = bytes
        feed { current in
            if current === asked {
                _ = current.command(now: nowMs(), command: .appStateBlob(downloadId: downloadId, bytes: answer))
            }
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
            await self?.feed { $0.handleTimeout(now: nowMs()) }
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
            if generation == socketGeneration { feed { $0.handleClosed(now: nowMs(), reason: .network) } }
            return
        }
        guard generation == socketGeneration else {
            await transport.close()
            return
        }
        socket = transport
        feed { $0.handleConnected(now: nowMs()) }
        while generation == socketGeneration, let bytes = try? await transport.receive() {
            guard generation == socketGeneration else { break }
            feed { $0.handleBytes(now: nowMs(), bytes: bytes) }
        }
        if generation == socketGeneration {
            socket = nil
            feed { $0.handleClosed(now: nowMs(), reason: .network) }
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
