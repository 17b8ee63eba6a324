// Streamed media: a host that keeps media bodies in temporary files, so a file of any size never
// sits whole in memory (the Swift side of docs/decisions.md, "Streamed media bodies"; the same
// design as the Kotlin and Python FileMediaHost). Not compiled on the Linux build machine: see
// bindings/swift/README.md.
import Foundation

/// Keeps streamed media bodies in temporary files (0600, in one private directory, 0700, under
/// `root`) and carries out the fetches that stream them with URLSession.
public final class FileMediaHost: @unchecked Sendable {
    /// The piece read, encrypted or decrypted and written at a time (the core's MEDIA_STREAM_CHUNK_BYTES).
    public static let chunkBytes = 64 * 1024

    private let root: URL
    private let lock = NSLock()
    private var directory: URL?
    private var next: UInt64 = 0
    private var bodies: [UInt64: URL] = [:]
    private var sinks: [UInt64: URL] = [:]

    public init(root: URL = FileManager.default.temporaryDirectory) {
        self.root = root
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    private func newId() -> UInt64 {
        locked {
            next += 1
            return next
        }
    }

    private func path(_ name: String) throws -> URL {
        try locked {
            if let directory { return directory.appendingPathComponent(name) }
            let made = root.appendingPathComponent("walink-media-\(UUID().uuidString)")
            try FileManager.default.createDirectory(
                at: made, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
            directory = made
            return made.appendingPathComponent(name)
        }
    }

    private func createPrivate(_ url: URL) throws -> FileHandle {
        try? FileManager.default.removeItem(at: url)
        guard FileManager.default.createFile(atPath: url.path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
            throw DriverError(code: "host_body", message: "cannot create \(url.lastPathComponent)")
        }
        return try FileHandle(forWritingTo: url)
    }

    /// Encrypts the file `source` under a fresh media key into a temporary file; returns the
    /// `hostBody` of a `sendMedia` command. Release it with `releaseBody` when the command ended.
    public func prepareUpload(source: URL, mediaType: String) throws -> HostUpload {
        let id = newId()
        let target = try path("\(id).enc")
        locked { bodies[id] = target }
        do {
            let mediaKey = try newMediaKey()
            let encryptor = try MediaEncryptor(mediaKey: mediaKey, mediaType: mediaType)
            let out = try createPrivate(target)
            defer { try? out.close() }
            let input = try FileHandle(forReadingFrom: source)
            defer { try? input.close() }
            while let piece = try input.read(upToCount: Self.chunkBytes), !piece.isEmpty {
                try out.write(contentsOf: try encryptor.update(plaintext: piece))
            }
            let end = try encryptor.finish()
            try out.write(contentsOf: end.tail)
            return HostUpload(body: id, mediaKey: mediaKey, hashes: end.hashes)
        } catch {
            releaseBody(id)
            throw error
        }
    }

    /// Deletes the encrypted file `id`.
    public func releaseBody(_ id: UInt64) {
        if let url = locked({ bodies.removeValue(forKey: id) }) { try? FileManager.default.removeItem(at: url) }
    }

    /// A new sink for a download: a temporary file that is not the caller's until `commitSink`.
    public func newSink() throws -> UInt64 {
        let id = newId()
        let url = try path("\(id).part")
        locked { sinks[id] = url }
        return id
    }

    /// Moves the verified plaintext of sink `id` to `to` (replacing a file there).
    public func commitSink(_ id: UInt64, to: URL) throws {
        guard let from = locked({ sinks.removeValue(forKey: id) }) else {
            throw DriverError(code: "host_body", message: "no media sink \(id)")
        }
        try? FileManager.default.removeItem(at: to)
        try FileManager.default.moveItem(at: from, to: to)
    }

    /// Deletes sink `id` and what it holds.
    public func discardSink(_ id: UInt64) {
        if let url = locked({ sinks.removeValue(forKey: id) }) { try? FileManager.default.removeItem(at: url) }
    }

    /// Deletes every file left (the driver ended).
    public func dispose() {
        let left: URL? = locked {
            bodies.removeAll()
            sinks.removeAll()
            defer { directory = nil }
            return directory
        }
        if let left { try? FileManager.default.removeItem(at: left) }
    }

    /// Whether `request` streams (a body the host holds, or a response to decrypt).
    public func streams(_ request: FetchRequest) -> Bool {
        request.hostBody != nil || request.decrypt != nil
    }

    /// Carries out a streaming fetch: sends the held body from its file, and decrypts a 2xx
    /// answer to a `decrypt` request into its sink (`.streamed`); a non-2xx answer to one is not read.
    public func perform(_ request: FetchRequest) async -> FetchResult {
        guard let url = URL(string: request.url) else { return .failed(error: .network) }
        var call = URLRequest(url: url, timeoutInterval: Double(request.timeoutMs) / 1000)
        call.httpMethod = request.method
        for header in request.headers { call.addValue(header.value, forHTTPHeaderField: header.name) }
        do {
            if let held = request.hostBody {
                guard let file = locked({ bodies[held.id] }) else { return .failed(error: .hostBody) }
                let (body, response) = try await URLSession.shared.upload(for: call, fromFile: file)
                guard let http = response as? HTTPURLResponse else { return .failed(error: .network) }
                if UInt64(body.count) > request.maxResponseBytes { return .failed(error: .tooLarge) }
                return .response(status: UInt16(clamping: http.statusCode), body: body)
            }
            guard let decrypt = request.decrypt else { return await urlSessionFetcher(request) }
            let (bytes, response) = try await URLSession.shared.bytes(for: call)
            guard let http = response as? HTTPURLResponse else { return .failed(error: .network) }
            let status = UInt16(clamping: http.statusCode)
            guard (200...299).contains(http.statusCode) else { return .response(status: status, body: Data()) }
            guard let body = try await decryptInto(decrypt, bytes, maxBytes: request.maxResponseBytes) else {
                return .failed(error: .tooLarge)
            }
            return .streamed(status: status, body: body)
        } catch is HostBodyFailure {
            return .failed(error: .hostBody)
        } catch let error as URLError where error.code == .timedOut {
            return .failed(error: .timedOut)
        } catch {
            return .failed(error: .network)
        }
    }

    private struct HostBodyFailure: Error {}

    /// Decrypts `bytes` into sink `decrypt.sink`: the decryptor's verdict, or nil for a body
    /// over `maxBytes`. The sink's plaintext is unverified until the core's `mediaSaved`.
    private func decryptInto(_ decrypt: DecryptInto, _ bytes: URLSession.AsyncBytes, maxBytes: UInt64) async throws -> StreamedBody? {
        guard let sink = locked({ sinks[decrypt.sink] }) else { throw HostBodyFailure() }
        let out: FileHandle
        do { out = try createPrivate(sink) } catch { throw HostBodyFailure() }
        defer { try? out.close() }
        let decryptor = try MediaDecryptor(mediaKey: decrypt.mediaKey, mediaType: decrypt.mediaType, maxBytes: maxBytes)
        func write(_ data: Data) throws {
            do { try out.write(contentsOf: data) } catch { throw HostBodyFailure() }
        }
        do {
            var piece = Data()
            piece.reserveCapacity(Self.chunkBytes)
            for try await byte in bytes {
                piece.append(byte)
                if piece.count == Self.chunkBytes {
                    try write(try decryptor.update(data: piece))
                    piece.removeAll(keepingCapacity: true)
                }
            }
            if !piece.isEmpty { try write(try decryptor.update(data: piece)) }
            let end = try decryptor.finish()
            try write(end.tail)
            return .decrypted(hashes: end.hashes)
        } catch let MediaCryptoError.Refused(failure) {
            return failure == .tooLarge ? nil : .refused(failure: failure)
        }
    }
}
