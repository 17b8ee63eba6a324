//! HTTPS requests the client asks its host to carry out: [`Output::Fetch`] out, answered by
//! [`Client::handle_fetched`] with a [`FetchResult`] (the `outgoing_requests` /
//! `mark_request_as_sent` shape of matrix-sdk-crypto).
//!
//! The request is complete: method, URL, headers, body, the largest response body the host
//! may hand back and how long it may take. URLs, hosts, caps and retries are the core's policy;
//! a driver performs one HTTP call per request and reports what happened, without judging the
//! status. The core decides what a 404 or a short body means.
//!
//! [`Output::Fetch`]: super::Output::Fetch
//! [`Client::handle_fetched`]: super::Client::handle_fetched

use core::fmt;

use zeroize::Zeroizing;

use super::owner::{AnyTag, Owner, Tag};
use crate::media::{MediaError, MediaHashes, MediaType};

/// Names one `Output::Fetch` and its answer. Opaque: a host hands back the id it was given
/// ([`FetchId::as_u64`], [`FetchId::from_u64`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FetchId(pub(crate) u64);

impl FetchId {
    /// The id as a number, for a host that hands it across a language boundary.
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// The id a host was given as a number (by [`Self::as_u64`]).
    pub fn from_u64(id: u64) -> Self {
        Self(id)
    }
}

/// The HTTP method of a request.
#[cfg_attr(not(feature = "exhaustive"), non_exhaustive)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`: the body is [`Body::Empty`].
    Get,
    /// `POST`.
    Post,
}

impl Method {
    /// The method as it appears on the wire (`"GET"`, `"POST"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// What a request sends.
#[cfg_attr(not(feature = "exhaustive"), non_exhaustive)]
#[derive(Clone, PartialEq, Eq)]
pub enum Body {
    /// Nothing.
    Empty,
    /// These bytes, whole.
    Bytes(Vec<u8>),
    /// A body the host holds (the encrypted file of an upload), named by the id the host gave
    /// in its command; the host streams it as it is, `length` bytes, and never hands it to the
    /// core.
    Host {
        /// The host's name for the body.
        id: u64,
        /// Its length in bytes (`Content-Length`).
        length: u64,
    },
}

impl Body {
    /// The bytes to send (none for `Empty`, and none here for a body the host holds).
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Body::Empty | Body::Host { .. } => &[],
            Body::Bytes(bytes) => bytes,
        }
    }
}

/// Where a response body goes.
#[cfg_attr(not(feature = "exhaustive"), non_exhaustive)]
#[derive(Clone, PartialEq, Eq)]
pub enum ResponseTarget {
    /// Into memory: handed back whole in [`FetchResponse::body`].
    Memory,
    /// A 2xx body is decrypted by the host as it arrives, with `crate::media`'s streaming
    /// decryptor (or the same scheme in the host's native AES), into the sink the host named,
    /// and never handed back: the host answers [`FetchResponse::streamed`] with the hashes and
    /// length, or why the body was refused (the MAC is checked in constant time at its end). The
    /// sink holds unverified plaintext: the host releases it only when the command ends in
    /// success, and discards it otherwise. A non-2xx body is not read.
    Decrypt(DecryptInto),
}

/// What a host needs to decrypt a media body into its sink.
#[derive(Clone, PartialEq, Eq)]
pub struct DecryptInto {
    /// The host's name for the sink (from its `DownloadMedia` command).
    pub sink: u64,
    /// The message's media key.
    pub media_key: Zeroizing<Vec<u8>>,
    /// The key family.
    pub media_type: MediaType,
}

impl fmt::Debug for ResponseTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseTarget::Memory => f.write_str("Memory"),
            ResponseTarget::Decrypt(into) => f
                .debug_struct("Decrypt")
                .field("sink", &into.sink)
                .field("media_type", &into.media_type)
                .finish_non_exhaustive(),
        }
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Empty => f.write_str("Empty"),
            Body::Bytes(bytes) => write!(f, "Bytes({} bytes)", bytes.len()),
            Body::Host { id, length } => write!(f, "Host({id}, {length} bytes)"),
        }
    }
}

/// One HTTPS request for the host to carry out.
#[derive(Clone, PartialEq, Eq)]
pub struct FetchRequest {
    /// The method.
    pub method: Method,
    /// The whole URL (`https://mmg.whatsapp.net/v/t62.7118-24/...`).
    pub url: String,
    /// Headers to send, in order, beside what the host's HTTP client adds itself (`Host`,
    /// `Content-Length`).
    pub headers: Vec<(String, String)>,
    /// What to send.
    pub body: Body,
    /// Where the response body goes.
    pub response: ResponseTarget,
    /// The largest response body the host may read (into memory, or through the decryptor):
    /// it stops reading beyond this and answers [`FetchError::TooLarge`], so no response costs
    /// more memory than this.
    pub max_response_bytes: u64,
    /// How long the host may take for the whole exchange before it answers
    /// [`FetchError::TimedOut`].
    pub timeout_ms: u64,
}

impl fmt::Debug for FetchRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A query may carry an authentication token: only the path is shown, and header names.
        let path = self.url.split('?').next().unwrap_or_default();
        let headers: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("FetchRequest")
            .field("method", &self.method)
            .field("url", &path)
            .field("headers", &headers)
            .field("body", &self.body)
            .field("response", &self.response)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

/// What the server answered: any status, 2xx or not.
#[derive(Clone, PartialEq, Eq)]
pub struct FetchResponse {
    /// The HTTP status code.
    pub status: u16,
    /// The response body, at most the request's `max_response_bytes` (empty for a body
    /// decrypted into a host sink).
    pub body: Vec<u8>,
    /// For a [`ResponseTarget::Decrypt`] request answered 2xx: what the host's decryptor made
    /// of the body (the hashes and length after a matching MAC, or why it refused it); `None`
    /// otherwise.
    pub streamed: Option<Result<MediaHashes, MediaError>>,
}

impl FetchResponse {
    /// A response with its body in memory.
    pub fn new(status: u16, body: Vec<u8>) -> FetchResponse {
        FetchResponse {
            status,
            body,
            streamed: None,
        }
    }
}

impl fmt::Debug for FetchResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FetchResponse")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .field("streamed", &self.streamed)
            .finish()
    }
}

/// Why no response came: the transport's failures, by what the host saw.
#[cfg_attr(not(feature = "exhaustive"), non_exhaustive)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The connection could not be made or broke (DNS, TLS, reset, a refused URL).
    #[error("network failure")]
    Network,
    /// The exchange took longer than the request's `timeout_ms`.
    #[error("timed out")]
    TimedOut,
    /// The response body is longer than the request's `max_response_bytes`.
    #[error("response too large")]
    TooLarge,
    /// The host could not read the request body it holds, or write a response body into its
    /// sink (a file error, a stream that failed).
    #[error("host body failed")]
    HostBody,
}

impl FetchError {
    /// Every failure.
    pub const ALL: [FetchError; 4] = [
        FetchError::Network,
        FetchError::TimedOut,
        FetchError::TooLarge,
        FetchError::HostBody,
    ];

    /// A stable machine-readable code (`network`, `timed_out`, `too_large`, `host_body`), the
    /// same in every binding.
    pub fn code(self) -> &'static str {
        match self {
            FetchError::Network => "network",
            FetchError::TimedOut => "timed_out",
            FetchError::TooLarge => "too_large",
            FetchError::HostBody => "host_body",
        }
    }
}

/// The answer to one `Output::Fetch`.
pub type FetchResult = Result<FetchResponse, FetchError>;

/// Fetches awaiting their answer.
#[derive(Debug, Default)]
pub(crate) struct Fetches {
    next: u64,
    pending: Vec<(FetchId, AnyTag)>,
}

impl Fetches {
    /// Registers a new request with `tag` and returns its id.
    pub(crate) fn register<T: Tag>(&mut self, tag: T) -> FetchId {
        self.next += 1;
        let id = FetchId(self.next);
        self.pending.push((id, AnyTag::new(tag)));
        id
    }

    /// Forgets every fetch of `owner` (it dropped what waited for them): a late answer is then
    /// an unknown id.
    pub(crate) fn forget(&mut self, owner: Owner) {
        self.pending.retain(|(_, pending)| pending.owner() != owner);
    }

    /// The tag of an answered fetch (`None` for an unknown or repeated id).
    pub(crate) fn take(&mut self, id: FetchId) -> Option<AnyTag> {
        let index = self
            .pending
            .iter()
            .position(|(pending, _)| *pending == id)?;
        let (_, tag) = self.pending.swap_remove(index);
        if self.pending.is_empty() {
            self.pending = Vec::new();
        }
        Some(tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tag of these tests (the app state's own lives with it).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct AppStateBlob;

    impl Tag for AppStateBlob {
        const OWNER: Owner = Owner::AppState;
    }

    #[test]
    fn ids_are_answered_once() {
        let mut fetches = Fetches::default();
        let a = fetches.register(AppStateBlob);
        let b = fetches.register(AppStateBlob);
        assert_ne!(a, b);
        assert_eq!(fetches.take(b).and_then(AnyTag::take), Some(AppStateBlob));
        assert!(fetches.take(b).is_none());
        assert!(fetches.take(FetchId(99)).is_none());
        assert_eq!(fetches.take(a).and_then(AnyTag::take), Some(AppStateBlob));
        let c = fetches.register(AppStateBlob);
        fetches.forget(Owner::Media);
        fetches.forget(Owner::AppState);
        assert!(fetches.take(c).is_none());
    }

    #[test]
    fn debug_hides_queries_header_values_and_bodies() {
        let request = FetchRequest {
            method: Method::Post,
            url: "https://mmg.whatsapp.net/v/t62/x.enc?auth=secret-token".into(),
            headers: vec![("Authorization".into(), "Bearer secret-header".into())],
            body: Body::Bytes(b"secret body".to_vec()),
            response: ResponseTarget::Decrypt(DecryptInto {
                sink: 3,
                media_key: Zeroizing::new(b"secret key".to_vec()),
                media_type: MediaType::Image,
            }),
            max_response_bytes: 10,
            timeout_ms: 1,
        };
        let text = format!("{request:?}");
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("/v/t62/x.enc") && text.contains("Authorization"));
        let response = FetchResponse::new(200, b"secret".to_vec());
        assert!(!format!("{response:?}").contains("secret"));
        assert_eq!(Method::Get.as_str(), "GET");
        assert_eq!(FetchError::TooLarge.code(), "too_large");
    }
}
