//! Who an IQ, a load or a fetch belongs to, without naming any sub-machine's types.
//!
//! A sub-machine defines its own tag types (`MessagingIq`, `AppStateLoad`, ...) and gives each
//! its owner with [`Tag`]. The IQ, load and fetch tables keep a tag as an [`AnyTag`]: a plain
//! [`Owner`] to route the answer by, and the tag itself, which only its owner reads back
//! ([`AnyTag::take`]). So `iq.rs`, `fetch.rs` and `context.rs` import no sub-machine, and a new
//! sub-machine costs one `Owner` variant and one arm in each router of `client/mod.rs`.

use core::any::Any;
use core::fmt;

/// The part of the client that sent a request, and so gets its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// `client/mod.rs` itself (logout).
    Client,
    /// Keepalive pings.
    Keepalive,
    /// The post-login round trip and prekeys.
    Login,
    /// QR and code pairing.
    Pairing,
    /// Messages, receipts, retries.
    Messaging,
    /// App-state sync.
    AppState,
    /// Media uploads and downloads.
    Media,
    /// History sync.
    History,
    /// Group administration.
    Groups,
    /// Calls, presence and contact queries.
    Social,
}

/// A sub-machine's own tag type for its requests.
pub(crate) trait Tag: Any + Send + fmt::Debug {
    /// Who gets the answers of requests with this tag.
    const OWNER: Owner;
}

/// The object-safe half of [`Tag`]: what the tables need of a tag they cannot name.
trait Erased: Any + Send + fmt::Debug {
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
    fn as_any(&self) -> &dyn Any;
}

impl<T: Tag> Erased for T {
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A tag of any owner, as the IQ, load and fetch tables keep it.
pub(crate) struct AnyTag {
    owner: Owner,
    tag: Box<dyn Erased>,
}

impl AnyTag {
    /// Wraps `tag`; its owner comes from its type.
    pub(crate) fn new<T: Tag>(tag: T) -> AnyTag {
        AnyTag {
            owner: T::OWNER,
            tag: Box::new(tag),
        }
    }

    /// Who gets the answer.
    pub(crate) fn owner(&self) -> Owner {
        self.owner
    }

    /// The tag, when it is a `T` (`None` would mean a router gave it to the wrong owner).
    pub(crate) fn take<T: Tag>(self) -> Option<T> {
        self.tag.into_any().downcast::<T>().ok().map(|tag| *tag)
    }

    /// The tag, borrowed, when it is a `T`.
    pub(crate) fn get<T: Tag>(&self) -> Option<&T> {
        self.tag.as_any().downcast_ref::<T>()
    }
}

impl fmt::Debug for AnyTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.tag, f)
    }
}

/// The files of the request plumbing import no sub-machine: each module a `super::` path of
/// theirs names is a plumbing module (a new sub-machine must not make them grow). Items of
/// `client/mod.rs` itself (`super::Timestamp`, `super::Output`) are not modules.
#[cfg(test)]
mod tests {
    use super::*;

    const PLUMBING: &[&str] = &[
        "command",
        "config",
        "connection",
        "context",
        "device",
        "event",
        "fetch",
        "iq",
        "output",
        "owner",
        "rng",
        "stanza",
    ];

    /// The first name of each path after `super::` or `crate::client::`, through one level
    /// of braces.
    fn foreign_imports(source: &str) -> Vec<String> {
        let ident = |text: &str| -> String {
            text.trim_start()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        };
        let mut names = Vec::new();
        for prefix in ["super::", "crate::client::"] {
            for (index, _) in source.match_indices(prefix) {
                let rest = source.get(index + prefix.len()..).unwrap_or_default();
                match rest.strip_prefix('{') {
                    Some(group) => {
                        let group = group.split('}').next().unwrap_or_default();
                        names.extend(group.split(',').map(ident));
                    }
                    None => names.push(ident(rest)),
                }
            }
        }
        // A module's name is lower-case; `super::Timestamp` is an item of `client/mod.rs`, and
        // `super::*` in tests imports the test module's parent.
        names.retain(|name| {
            name.starts_with(|c: char| c.is_ascii_lowercase()) && !PLUMBING.contains(&name.as_str())
        });
        names
    }

    #[test]
    fn plumbing_imports_no_sub_machine() {
        for (file, source) in [
            ("context.rs", include_str!("context.rs")),
            ("iq.rs", include_str!("iq.rs")),
            ("fetch.rs", include_str!("fetch.rs")),
        ] {
            assert_eq!(foreign_imports(source), Vec::<String>::new(), "{file}");
        }
        // The check itself sees an import of a sub-machine.
        assert_eq!(
            foreign_imports(
                "use super::messaging::MessagingIq;\nuse super::{iq::Iqs, app_state};\n\
                 use crate::client::media::Media;\nuse super::Timestamp;"
            ),
            vec!["messaging", "app_state", "media"]
        );
    }

    #[derive(Debug, PartialEq)]
    struct Mine(u8);
    impl Tag for Mine {
        const OWNER: Owner = Owner::History;
    }

    #[derive(Debug)]
    struct Other;
    impl Tag for Other {
        const OWNER: Owner = Owner::Media;
    }

    #[test]
    fn a_tag_comes_back_to_its_owner_only() {
        let tag = AnyTag::new(Mine(7));
        assert_eq!(tag.owner(), Owner::History);
        assert_eq!(tag.get::<Mine>(), Some(&Mine(7)));
        assert!(tag.get::<Other>().is_none());
        assert_eq!(format!("{tag:?}"), "Mine(7)");
        assert_eq!(tag.take::<Mine>(), Some(Mine(7)));
        assert!(AnyTag::new(Other).take::<Mine>().is_none());
    }
}
