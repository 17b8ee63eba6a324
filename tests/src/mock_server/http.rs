//! A minimal HTTP/1.1 server and client side for the control endpoint: one request per
//! connection, `Content-Length` bodies only, JSON answers (raw bytes for media blobs),
//! `Connection: close`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The longest request line or header line accepted.
const MAX_LINE: usize = 8 * 1024;
/// The most header lines accepted.
const MAX_HEADERS: usize = 64;
/// The largest request or response body accepted.
const MAX_BODY: usize = 1024 * 1024;
/// The largest media upload accepted (`POST /mms/…`): the blob store's own bound.
const MAX_MEDIA_BODY: usize = crate::sim::server::MAX_BLOB_BYTES;

/// Why a request (or a response, on the client side) could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The peer sent something that is not HTTP/1.x as this module accepts it.
    #[error("malformed HTTP message: {0}")]
    Malformed(&'static str),
    /// A line, the headers or the body exceed this module's bounds.
    #[error("HTTP message too large: {0}")]
    TooLarge(&'static str),
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    /// The body is not the JSON expected.
    #[error("body is not JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// One parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path without the query string.
    pub path: String,
    /// The query string's `key=value` pairs, percent-decoded.
    pub query: Vec<(String, String)>,
    /// The body (empty when there is none).
    pub body: Vec<u8>,
}

/// Reads one request from `stream`.
pub fn read_request(stream: &mut TcpStream) -> Result<Request, HttpError> {
    let mut reader = BufReader::new(stream);
    let line = read_line(&mut reader)?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::Malformed("request line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(HttpError::Malformed("HTTP version"));
    }
    let max = if target.starts_with("/mms/") {
        MAX_MEDIA_BODY
    } else {
        MAX_BODY
    };
    let length = read_headers(&mut reader, max)?;
    let body = read_body(&mut reader, length)?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Ok(Request {
        method: method.to_owned(),
        path: percent_decode(path),
        query: query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                (percent_decode(key), percent_decode(value))
            })
            .collect(),
        body,
    })
}

/// A response ready to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body: JSON, or raw bytes when `content_type` says so.
    pub body: Vec<u8>,
    /// The `Content-Type` header.
    pub content_type: &'static str,
}

impl Response {
    /// A JSON response.
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Response {
            status,
            body: value.to_string().into_bytes(),
            content_type: "application/json",
        }
    }

    /// A binary response (a media blob).
    pub fn bytes(status: u16, body: Vec<u8>) -> Self {
        Response {
            status,
            body,
            content_type: "application/octet-stream",
        }
    }

    /// An error response: `{"error": message}`.
    pub fn error(status: u16, message: &str) -> Self {
        Self::json(status, &serde_json::json!({ "error": message }))
    }

    /// Writes the response and flushes.
    pub fn write_to(&self, stream: &mut impl Write) -> io::Result<()> {
        let reason = match self.status {
            200 => "OK",
            400 => "Bad Request",
            401 => "Unauthorized",
            404 => "Not Found",
            405 => "Method Not Allowed",
            409 => "Conflict",
            503 => "Service Unavailable",
            _ => "Error",
        };
        write!(
            stream,
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.status,
            reason,
            self.content_type,
            self.body.len()
        )?;
        stream.write_all(&self.body)?;
        stream.flush()
    }
}

/// Sends one request to a control endpoint and returns the status and the JSON answer.
/// `body` is sent as JSON when given (a POST), otherwise the request is a GET.
pub fn call(
    addr: SocketAddr,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Result<(u16, serde_json::Value), HttpError> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let (method, body) = match body {
        Some(value) => ("POST", value.to_string()),
        None => ("GET", String::new()),
    };
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()?;
    let mut reader = BufReader::new(&mut stream);
    let line = read_line(&mut reader)?;
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or(HttpError::Malformed("status line"))?;
    let length = read_headers(&mut reader, MAX_BODY)?;
    let body = read_body(&mut reader, length)?;
    let value = if body.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&body)?
    };
    Ok((status, value))
}

fn read_line(reader: &mut impl BufRead) -> Result<String, HttpError> {
    let mut line = Vec::new();
    let read = reader
        .by_ref()
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', &mut line)?;
    if read > MAX_LINE {
        return Err(HttpError::TooLarge("line"));
    }
    if line.last() != Some(&b'\n') {
        return Err(HttpError::Malformed("line not terminated"));
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| HttpError::Malformed("line is not UTF-8"))
}

/// Reads the header lines and returns the body length.
fn read_headers(reader: &mut impl BufRead, max: usize) -> Result<usize, HttpError> {
    let mut length = 0usize;
    for _ in 0..=MAX_HEADERS {
        let line = read_line(reader)?;
        if line.is_empty() {
            return Ok(length);
        }
        let (name, value) = line
            .split_once(':')
            .ok_or(HttpError::Malformed("header line"))?;
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value
                .trim()
                .parse()
                .map_err(|_| HttpError::Malformed("content-length"))?;
            if length > max {
                return Err(HttpError::TooLarge("body"));
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(HttpError::Malformed("chunked bodies are not supported"));
        }
    }
    Err(HttpError::TooLarge("headers"))
}

fn read_body(reader: &mut impl Read, length: usize) -> Result<Vec<u8>, HttpError> {
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    Ok(body)
}

/// Decodes `%XX` escapes and `+` (as a space); a bad escape is kept as it is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(byte) => {
                        out.push(byte);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%40b+c"), "a@b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%zz1"), "%zz1");
        assert_eq!(percent_decode("%41"), "A");
    }
}
