//! The account-level requests clients make at login, answered as WhatsApp answers them: A/B
//! props (`abt`), the key-bundle digest check (`encrypt` `<digest/>`), the block list
//! (`blocklist`), privacy settings and privacy tokens (`privacy`). Any other request of a
//! logged-in device that the server does not know is answered 501 and counted, so that a test
//! can demand none (`Server::unimplemented_requests`).
//!
//! Wire forms (oxidezap/whatsapp-rust `wacore/src/iq/props.rs`, `prekeys.rs` `DigestKeyBundle`,
//! `blocklist.rs`, `privacy.rs`, each noted there as read from WhatsApp Web; WhiskeySockets/
//! Baileys `src/Socket/chats.ts` `fetchProps`, `fetchBlocklist`, `fetchPrivacySettings`,
//! `src/Socket/socket.ts` `digestKeyBundle`, `src/Socket/messages-send.ts`
//! `issuePrivacyTokens`):
//!
//! ```text
//! abt get <props protocol="1" [hash]/>   -> <props protocol="1" ab_key hash refresh refresh_id>
//!                                              <prop config_code config_value/>…</props>
//! encrypt get <digest/>                  -> <digest><registration/><type/><identity/><skey>…</skey>
//!                                              <list><id/>…</list><hash>SHA-1</hash></digest>
//! blocklist get                          -> <list dhash><item jid t/>…</list>
//! privacy get <privacy/>                 -> <privacy><category name value/>…</privacy>
//! privacy set <privacy><category name value/></privacy>   -> result (stored)
//! privacy set <tokens><token jid t type/></tokens>        -> result, and to each companion of
//!     the named account <notification type="privacy_token" from=<issuer> sender_lid>
//!     <tokens><token jid t type="trusted_contact">token</token></tokens></notification>
//!     (whatsmeow `handlePrivacyTokenNotification`), which it attaches as `<tctoken>` to its
//!     1:1 messages to the issuer; the server takes that child off before delivery
//! ```

use sha1::Sha1;

use super::*;

/// Request kinds remembered by name, in each of the counts of requests received and requests
/// answered 501 (a bound for a misbehaving client).
pub const MAX_UNIMPLEMENTED_KINDS: usize = 256;

/// The A/B props the server hands out: `(config_code, config_value)`. 10518 (privacy tokens on
/// 1:1 messages), 9666 (privacy token in profile-photo IQs) and 14303 (issue tokens to LIDs)
/// are the ones Baileys reads.
const AB_PROPS: [(&str, &str); 3] = [("10518", "true"), ("9666", "true"), ("14303", "false")];

/// Bytes of a privacy token the server issues.
const PRIVACY_TOKEN_LEN: usize = 32;

/// How long a client may keep the props before asking again (seconds).
const AB_PROPS_REFRESH_S: u64 = 86_400;

/// Each privacy category and its value for a new account (WhatsApp's defaults).
const PRIVACY_DEFAULTS: [(&str, &str); 9] = [
    ("last", "all"),
    ("online", "all"),
    ("profile", "all"),
    ("status", "contacts"),
    ("groupadd", "all"),
    ("readreceipts", "all"),
    ("calladd", "all"),
    ("messages", "all"),
    ("defense", "off"),
];

/// The values a privacy category takes (whatsapp-rust `PrivacyValue`, from WhatsApp Web).
const PRIVACY_VALUES: [&str; 8] = [
    "all",
    "contacts",
    "contact_blacklist",
    "none",
    "match_last_seen",
    "known",
    "off",
    "on_standard",
];

/// Per-account settings the login-time requests read and write, and what was left unanswered.
#[derive(Debug, Default)]
pub(super) struct AccountIqs {
    /// Privacy settings changed from the defaults, by account.
    privacy: BTreeMap<String, BTreeMap<String, String>>,
    /// Privacy tokens issued, by issuing account.
    tokens_issued: BTreeMap<String, u64>,
    /// Requests answered 501, by `type xmlns child`.
    unimplemented: BTreeMap<String, u64>,
    /// Every request of a logged-in device, by `type xmlns child`.
    received: BTreeMap<String, u64>,
}

/// The kind of a request: `type xmlns first-child`.
fn request_kind(node: &Node) -> String {
    format!(
        "{} {} {}",
        node.attr_str("type").unwrap_or_default(),
        node.attr_str("xmlns").unwrap_or_default(),
        node.children()
            .first()
            .map_or("", |child| child.tag.as_ref()),
    )
}

/// Counts one more of `kind`, remembering at most [`MAX_UNIMPLEMENTED_KINDS`] kinds.
fn count(counts: &mut BTreeMap<String, u64>, kind: String) {
    if let Some(count) = counts.get_mut(&kind) {
        *count += 1;
    } else if counts.len() < MAX_UNIMPLEMENTED_KINDS {
        counts.insert(kind, 1);
    }
}

impl Server {
    /// Answers an account-level request of a logged-in device; returns false when the request
    /// is none of them.
    pub(super) fn account_iq(
        &mut self,
        conn: ConnId,
        session: &(String, u16),
        id: &str,
        node: &Node,
    ) -> bool {
        let kind = node.attr_str("type").unwrap_or_default();
        let xmlns = node.attr_str("xmlns").unwrap_or_default();
        let answer = match (kind, xmlns) {
            ("get", "abt") if node.child("props").is_some() => Some(ab_props(id)),
            ("get", "encrypt") if node.child("digest").is_some() => Some(
                self.device_mut(session)
                    .map_or_else(|| iq_error(id, 404, "item-not-found"), |d| digest(id, d)),
            ),
            ("get", "privacy") if node.child("privacy").is_some() => {
                Some(self.privacy_settings(id, &session.0))
            }
            ("set", "privacy") if node.child("privacy").is_some() => {
                Some(self.set_privacy(id, &session.0, node))
            }
            ("set", "privacy") if node.child("tokens").is_some() => {
                Some(self.issue_tokens(id, &session.0, node))
            }
            _ => None,
        };
        match answer {
            Some(answer) => {
                self.send(conn, &answer);
                true
            }
            None => false,
        }
    }

    /// Answers a request the server does not implement with 501 and counts it by kind.
    pub(super) fn not_implemented(&mut self, conn: ConnId, id: &str, node: &Node) {
        count(&mut self.account_iqs.unimplemented, request_kind(node));
        self.send(conn, &iq_error(id, 501, "feature-not-implemented"));
    }

    /// Counts a request of a logged-in device by kind (what a client made the server do).
    pub(super) fn count_request(&mut self, node: &Node) {
        count(&mut self.account_iqs.received, request_kind(node));
    }

    /// The requests answered 501 so far, by `type xmlns first-child` (a test of a complete
    /// client demands this empty).
    pub fn unimplemented_requests(&self) -> &BTreeMap<String, u64> {
        &self.account_iqs.unimplemented
    }

    /// Every request of a logged-in device so far (`get`/`set` IQs), by `type xmlns
    /// first-child`.
    pub fn requests_received(&self) -> &BTreeMap<String, u64> {
        &self.account_iqs.received
    }

    /// How many privacy tokens `user` issued (`privacy` `<tokens>`).
    pub fn privacy_tokens_issued(&self, user: &str) -> u64 {
        self.account_iqs
            .tokens_issued
            .get(user)
            .copied()
            .unwrap_or(0)
    }

    /// The privacy setting `category` of `user` (the default unless the user changed it).
    pub fn privacy_setting(&self, user: &str, category: &str) -> Option<&str> {
        self.account_iqs
            .privacy
            .get(user)
            .and_then(|changed| changed.get(category))
            .map(String::as_str)
            .or_else(|| {
                PRIVACY_DEFAULTS
                    .iter()
                    .find(|(name, _)| *name == category)
                    .map(|(_, value)| *value)
            })
    }

    /// Changes `user`'s privacy `category` to `value` (as the phone's settings do).
    pub fn set_privacy_setting(&mut self, user: &str, category: &str, value: &str) {
        self.account_iqs
            .privacy
            .entry(user.to_owned())
            .or_default()
            .insert(category.to_owned(), value.to_owned());
    }

    fn privacy_settings(&self, id: &str, user: &str) -> Node {
        let categories = PRIVACY_DEFAULTS.iter().map(|(name, _)| {
            Node::new("category").attr("name", *name).attr(
                "value",
                self.privacy_setting(user, name).unwrap_or("all").to_owned(),
            )
        });
        iq_result(id, vec![Node::new("privacy").children_from(categories)])
    }

    fn set_privacy(&mut self, id: &str, user: &str, node: &Node) -> Node {
        let mut changes = Vec::new();
        for category in node
            .child("privacy")
            .map(|p| p.children_by_tag("category").collect::<Vec<_>>())
            .unwrap_or_default()
        {
            let (Some(name), Some(value)) = (category.attr_str("name"), category.attr_str("value"))
            else {
                return iq_error(id, 400, "bad-request");
            };
            let known = PRIVACY_DEFAULTS.iter().any(|(n, _)| *n == name);
            if !known || !PRIVACY_VALUES.contains(&value) {
                return iq_error(id, 400, "bad-request");
            }
            changes.push((name.to_owned(), value.to_owned()));
        }
        if changes.is_empty() {
            return iq_error(id, 400, "bad-request");
        }
        self.account_iqs
            .privacy
            .entry(user.to_owned())
            .or_default()
            .extend(changes);
        iq_result(id, Vec::new())
    }

    pub(super) fn issue_tokens(&mut self, id: &str, user: &str, node: &Node) -> Node {
        let mut targets = Vec::new();
        for token in node
            .child("tokens")
            .map(|t| t.children_by_tag("token").collect::<Vec<_>>())
            .unwrap_or_default()
        {
            let target = token.attr_jid("jid").and_then(|jid| {
                let account = self.resolve_user(&jid.to_non_device())?;
                Some((account, jid.to_non_device()))
            });
            let t = token.attr_str("t").filter(|t| t.parse::<u64>().is_ok());
            match (target, t) {
                (Some((account, jid)), Some(t)) => targets.push((account, jid, t.to_owned())),
                _ => return iq_error(id, 400, "bad-request"),
            }
        }
        if targets.is_empty() {
            return iq_error(id, 400, "bad-request");
        }
        *self
            .account_iqs
            .tokens_issued
            .entry(user.to_owned())
            .or_default() += targets.len() as u64;
        let Some(issuer) = self.accounts.get(user).map(|a| (a.jid(), a.lid_jid())) else {
            return iq_result(id, Vec::new());
        };
        for (account, jid, t) in targets {
            let companions: Vec<u16> = self
                .accounts
                .get(&account)
                .map(|a| a.devices.keys().copied().filter(|&d| d != 0).collect())
                .unwrap_or_default();
            for device in companions {
                let token = self.rng.bytes::<PRIVACY_TOKEN_LEN>().to_vec();
                let notification = Node::new("notification")
                    .attr("from", issuer.0.clone())
                    .attr("sender_lid", issuer.1.clone())
                    .attr("id", self.new_id())
                    .attr("type", "privacy_token")
                    .attr("t", t.clone())
                    .children_from([Node::new("tokens").children_from([Node::new("token")
                        .attr("jid", jid.clone())
                        .attr("t", t.clone())
                        .attr("type", "trusted_contact")
                        .bytes(token.clone())])]);
                self.remember_token(user, &account, &token);
                self.deliver(&account, device, notification);
            }
        }
        iq_result(id, Vec::new())
    }
}

/// The A/B props answer; `hash` names this set of props, so a client can send it back.
fn ab_props(id: &str) -> Node {
    let mut hasher = Sha256::new();
    for (code, value) in AB_PROPS {
        hasher.update(code.as_bytes());
        hasher.update(b"=");
        hasher.update(value.as_bytes());
        hasher.update(b";");
    }
    let hash = hex::encode(&hasher.finalize()[..8]);
    let props = AB_PROPS.iter().map(|(code, value)| {
        Node::new("prop")
            .attr("config_code", *code)
            .attr("config_value", *value)
    });
    iq_result(
        id,
        vec![
            Node::new("props")
                .attr("protocol", "1")
                .attr("ab_key", "sim")
                .attr("hash", hash)
                .attr("refresh", AB_PROPS_REFRESH_S.to_string())
                .attr("refresh_id", "1")
                .children_from(props),
        ],
    )
}

/// The key-bundle digest of a device: what the server holds (registration id, identity,
/// signed prekey, the one-time prekey ids) and the SHA-1 over identity ‖ signed prekey ‖ its
/// signature ‖ every one-time prekey in the list's order (WhatsApp Web
/// `validateLocalKeyBundle`, as whatsapp-rust `compute_key_bundle_digest` restates it).
fn digest(id: &str, device: &Device) -> Node {
    use sha1::Digest as _;
    let mut hash = Sha1::new();
    hash.update(device.identity_public);
    hash.update(device.signed_prekey.public);
    hash.update(device.signed_prekey.signature);
    for public in device.prekeys.values() {
        hash.update(public);
    }
    let ids = device.prekeys.keys().map(|&key| bytes_node("id", id3(key)));
    iq_result(
        id,
        vec![
            Node::new("digest").children_from(published_keys(device).into_iter().chain([
                Node::new("list").children_from(ids),
                bytes_node("hash", hash.finalize().to_vec()),
            ])),
        ],
    )
}

/// The `dhash` of an empty block list.
pub(super) fn empty_list_hash() -> String {
    hex::encode(&Sha256::digest(b"")[..8])
}
