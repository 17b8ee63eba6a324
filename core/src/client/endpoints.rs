//! WhatsApp's endpoints and the version walink announces, stated once for every host.

use crate::noise::payload::WebVersion;

/// WhatsApp Web's chat socket: what a host opens on `Output::Connect`.
pub const CHAT_URL: &str = "wss://web.whatsapp.com/ws/chat";

/// The `Origin` header the chat socket expects (WhatsApp refuses a socket without it).
pub const ORIGIN: &str = "https://web.whatsapp.com";

/// WhatsApp's media host, which serves files (app-state blobs, media) by direct path. The
/// client joins it with a direct path into the URL of an `Output::Fetch`; `Config::media_origin`
/// replaces it (a test server).
pub const MEDIA_ORIGIN: &str = "https://mmg.whatsapp.net";

/// The WhatsApp Web version announced unless the host chooses one (`Config::profile`).
pub const WEB_VERSION: WebVersion = WebVersion::new(2, 3000, 1_045_649_367);

/// The URL of `direct_path` on the media host `origin` (`scheme://host[:port]`, with or without
/// a trailing slash; a path without its leading slash gets one).
pub fn media_url(origin: &str, direct_path: &str) -> String {
    let origin = origin.trim_end_matches('/');
    if direct_path.starts_with('/') {
        format!("{origin}{direct_path}")
    } else {
        format!("{origin}/{direct_path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_urls_join_origin_and_direct_path() {
        assert_eq!(
            media_url(MEDIA_ORIGIN, "/v/t62/x.enc?ccb=1"),
            "https://mmg.whatsapp.net/v/t62/x.enc?ccb=1"
        );
        assert_eq!(
            media_url("http://127.0.0.1:9/", "/v/a"),
            "http://127.0.0.1:9/v/a"
        );
        assert_eq!(media_url("http://h", "v/a"), "http://h/v/a");
        assert_eq!(WEB_VERSION.to_string(), "2.3000.1045649367");
    }
}
