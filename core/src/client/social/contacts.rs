//! Contact queries: which phone numbers are on WhatsApp (usync, with their LIDs), profile
//! pictures, about texts, business profiles and the block list (protocol notes features.md §6).
//!
//! ```text
//! usync get <usync context="interactive" mode="query" sid last="true" index="0">
//!             <query><contact/><lid/></query>
//!             <list><user><contact>+15551234567</contact></user>…</list></usync>
//!   -> <usync><list><user jid="<PN JID>"><contact type="in|out">+1555…</contact>
//!                   [<lid val="<LID>"/>]</user>…</list></usync>
//! usync get … <query><status/></query><list><user jid/></list> -> <user jid><status t>text</status>
//! w:profile:picture get target=<jid> <picture type="preview|image" query="url">[<tctoken/>]</picture>
//!   -> <picture id url direct_path/>; 404 = no picture, 401 = hidden from us
//! w:biz get <business_profile v="244"><profile jid/></business_profile>
//!   -> <business_profile><profile jid><description/><address/><email/><website/>…
//!      <categories><category id>name</category></categories></profile></business_profile>
//! blocklist get -> <list><item jid/>…</list>
//! blocklist set <item action="block|unblock" jid [pn_jid]/>
//! ```
//!
//! Forms from WhiskeySockets/Baileys (`onWhatsApp`/`executeUSyncQuery`, `profilePictureUrl`,
//! `fetchStatus`, `getBusinessProfile`, `fetchBlocklist`, `updateBlockStatus`), checked
//! against tulir/whatsmeow `user.go`, which also asks for `<lid/>` with the contact protocol.

use crate::binary::{DEFAULT_USER_SERVER, HIDDEN_USER_SERVER, Jid, Node};
use crate::limits::{
    CONTACTS_MAX_BLOCK_LIST, CONTACTS_MAX_BUSINESS_ITEMS, CONTACTS_MAX_NUMBERS_PER_QUERY,
};

use super::super::command::CommandError;
use super::super::iq::IqError;

/// One phone number asked about in `Command::CheckNumbers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberInfo {
    /// The number as asked for, digits only (country code first).
    pub phone: String,
    /// Whether it has a WhatsApp account.
    pub on_whatsapp: bool,
    /// Its phone-number JID (also given when not on WhatsApp).
    pub jid: Jid,
    /// Its LID, when it is on WhatsApp and the server told.
    pub lid: Option<Jid>,
}

/// A profile picture, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfilePicture {
    /// The picture's URL (a plain JPEG the host fetches with GET).
    Url {
        /// The URL.
        url: String,
        /// The picture's id (changes with the picture).
        id: String,
        /// The direct path on the media hosts.
        direct_path: Option<String>,
    },
    /// The contact or group has no picture.
    None,
    /// Its privacy settings hide it from us.
    NotAllowed,
}

/// A contact's about text, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum About {
    /// The text and when it was set (Unix seconds, 0 when not said).
    Text {
        /// The about text.
        text: String,
        /// When it was set, Unix seconds.
        set_at: u64,
    },
    /// No about text (or no such account).
    None,
    /// Its privacy settings hide it from us.
    NotAllowed,
}

/// A business account's public profile.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BusinessProfile {
    /// The business.
    pub jid: Jid,
    /// Its description.
    pub description: Option<String>,
    /// Its address.
    pub address: Option<String>,
    /// Its e-mail address.
    pub email: Option<String>,
    /// Its websites.
    pub websites: Vec<String>,
    /// Its category names.
    pub categories: Vec<String>,
}

/// The digits of each phone number, or `InvalidPhoneNumber` for the first that is not an
/// international number of 7 to 15 digits; at most `CONTACTS_MAX_NUMBERS_PER_QUERY` numbers
/// (`InvalidMessage` beyond, or for none).
pub fn normalize_numbers(phones: &[String]) -> Result<Vec<String>, CommandError> {
    if phones.is_empty() || phones.len() > CONTACTS_MAX_NUMBERS_PER_QUERY {
        return Err(CommandError::InvalidMessage);
    }
    phones
        .iter()
        .map(|phone| {
            crate::pair::normalize_phone_number(phone).map_err(|_| CommandError::InvalidPhoneNumber)
        })
        .collect()
}

fn usync(sid: &str, context: &'static str, query: Vec<Node>, users: Vec<Node>) -> Node {
    super::super::iq::iq(
        "get",
        "usync",
        vec![
            Node::new("usync")
                .attr("context", context)
                .attr("mode", "query")
                .attr("sid", sid.to_owned())
                .attr("last", "true")
                .attr("index", "0")
                .children_from([
                    Node::new("query").children_from(query),
                    Node::new("list").children_from(users),
                ]),
        ],
    )
}

/// The usync query asking whether each of `digits` (normalized numbers) is on WhatsApp, and
/// for its LID.
pub fn build_number_query(sid: &str, digits: &[String]) -> Node {
    let users = digits
        .iter()
        .map(|d| Node::new("user").children_from([Node::new("contact").bytes(format!("+{d}"))]))
        .collect();
    usync(
        sid,
        "interactive",
        vec![Node::new("contact"), Node::new("lid")],
        users,
    )
}

/// The `<user>` nodes of a usync answer, or why the answer failed.
fn usync_users(answer: &Node) -> Result<Vec<&Node>, CommandError> {
    let list = answer
        .child("usync")
        .and_then(|u| u.child("list"))
        .ok_or(CommandError::BadAnswer)?;
    Ok(list.children_by_tag("user").collect())
}

/// A phone-number user and its LID user.
pub type LidPair = (String, String);

/// The answer to [`build_number_query`]: one [`NumberInfo`] per number asked, in the order
/// asked (a number the server left out is not on WhatsApp). The LIDs learned are also given
/// as `(phone user, LID user)` pairs to store.
pub fn parse_number_answer(
    answer: &Node,
    digits: &[String],
) -> Result<(Vec<NumberInfo>, Vec<LidPair>), CommandError> {
    let mut infos: Vec<NumberInfo> = digits
        .iter()
        .map(|d| NumberInfo {
            phone: d.clone(),
            on_whatsapp: false,
            jid: Jid::new(d.clone(), DEFAULT_USER_SERVER),
            lid: None,
        })
        .collect();
    // The numbers asked, sorted, with their place in the answer: one lookup per user.
    let mut index: Vec<(&str, usize)> = digits.iter().map(String::as_str).zip(0..).collect();
    index.sort_unstable();
    let mut pairs = Vec::new();
    for user in usync_users(answer)? {
        let Some(contact) = user.child("contact") else {
            continue;
        };
        if contact.child("error").is_some() {
            continue;
        }
        let jid = user
            .attr_jid("pn_jid")
            .or_else(|| user.attr_jid("jid"))
            .filter(|j| j.server == DEFAULT_USER_SERVER)
            .map(|j| j.to_non_device());
        // The echo of the number asked for names the entry; the JID when there is none.
        let echo = contact
            .content_bytes()
            .and_then(|b| core::str::from_utf8(b).ok())
            .map(|s| s.trim_start_matches('+').to_owned());
        let key = echo
            .filter(|e| !e.is_empty())
            .or_else(|| jid.as_ref().map(|j| j.user.clone()));
        let place = key.and_then(|k| {
            index
                .binary_search_by(|(d, _)| (*d).cmp(k.as_str()))
                .ok()
                .and_then(|at| index.get(at))
                .map(|(_, place)| *place)
        });
        let Some(info) = place.and_then(|place| infos.get_mut(place)) else {
            continue;
        };
        info.on_whatsapp = contact.attr_str("type") == Some("in");
        if let Some(jid) = jid {
            info.jid = jid;
        }
        let lid = user
            .child("lid")
            .and_then(|l| l.attr_jid("val"))
            .or_else(|| {
                user.attr_jid("jid")
                    .filter(|j| j.server == HIDDEN_USER_SERVER)
            })
            .filter(|l| l.server == HIDDEN_USER_SERVER && !l.user.is_empty())
            .map(|l| l.to_non_device());
        if info.on_whatsapp
            && let Some(lid) = lid
        {
            pairs.push((info.jid.user.clone(), lid.user.clone()));
            info.lid = Some(lid);
        }
    }
    Ok((infos, pairs))
}

/// The usync query for `jid`'s about text.
pub fn build_about_query(sid: &str, jid: &Jid) -> Node {
    usync(
        sid,
        "interactive",
        vec![Node::new("status")],
        vec![Node::new("user").attr("jid", jid.to_non_device())],
    )
}

/// The answer to [`build_about_query`].
pub fn parse_about_answer(answer: &Node) -> Result<About, CommandError> {
    let users = usync_users(answer)?;
    let Some(status) = users.first().and_then(|u| u.child("status")) else {
        return Ok(About::None);
    };
    let code = status
        .attr_str("code")
        .or_else(|| status.child("error").and_then(|e| e.attr_str("code")));
    match code {
        Some("401" | "403") => return Ok(About::NotAllowed),
        Some("404") => return Ok(About::None),
        Some(_) => return Err(CommandError::BadAnswer),
        None => {}
    }
    let text = status
        .content_bytes()
        .and_then(|b| core::str::from_utf8(b).ok())
        .unwrap_or_default();
    if text.is_empty() {
        return Ok(About::None);
    }
    Ok(About::Text {
        text: text.to_owned(),
        set_at: status
            .attr_str("t")
            .and_then(|t| t.parse().ok())
            .unwrap_or(0),
    })
}

/// The profile-picture query for `target`, with the privacy token when we hold one (never for
/// our own picture: the server does not answer then).
pub fn build_picture_query(target: &Jid, preview: bool, token: Option<(u64, &[u8])>) -> Node {
    let mut picture = Node::new("picture")
        .attr("type", if preview { "preview" } else { "image" })
        .attr("query", "url");
    if let Some((t, token)) = token {
        picture = picture.children_from([Node::new("tctoken")
            .attr("t", t.to_string())
            .bytes(token.to_vec())]);
    }
    let mut iq = super::super::iq::iq("get", "w:profile:picture", vec![picture]);
    iq.set_attr("target", target.to_non_device());
    iq
}

/// The answer to [`build_picture_query`] (`Err` of the IQ included: 404 and 401 are answers).
pub(crate) fn parse_picture_answer(
    answer: Result<&Node, &IqError>,
) -> Result<ProfilePicture, CommandError> {
    let node = match answer {
        Ok(node) => node,
        Err(IqError::Error { code: 404, .. }) => return Ok(ProfilePicture::None),
        Err(IqError::Error { code: 401, .. }) => return Ok(ProfilePicture::NotAllowed),
        Err(error) => return Err(error.command_error()),
    };
    let Some(picture) = node.child("picture") else {
        return Ok(ProfilePicture::None);
    };
    match picture.attr_str("status") {
        Some("204" | "404") => return Ok(ProfilePicture::None),
        Some("401" | "403") => return Ok(ProfilePicture::NotAllowed),
        _ => {}
    }
    match picture
        .attr_str("url")
        .filter(|u| u.starts_with("https://"))
    {
        Some(url) => Ok(ProfilePicture::Url {
            url: url.to_owned(),
            id: picture.attr_str("id").unwrap_or_default().to_owned(),
            direct_path: picture.attr_str("direct_path").map(str::to_owned),
        }),
        None => Ok(ProfilePicture::None),
    }
}

/// The business-profile query for `jid`.
pub fn build_business_query(jid: &Jid) -> Node {
    super::super::iq::iq(
        "get",
        "w:biz",
        vec![
            Node::new("business_profile")
                .attr("v", "244")
                .children_from([Node::new("profile").attr("jid", jid.to_non_device())]),
        ],
    )
}

fn text_of(node: &Node, tag: &str) -> Option<String> {
    node.child(tag)
        .and_then(|c| c.content_bytes())
        .and_then(|b| core::str::from_utf8(b).ok())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The answer to [`build_business_query`]: `None` when the account is no business.
pub fn parse_business_answer(answer: &Node) -> Result<Option<BusinessProfile>, CommandError> {
    let Some(profile) = answer
        .child("business_profile")
        .and_then(|b| b.child("profile"))
    else {
        return Ok(None);
    };
    let Some(jid) = profile.attr_jid("jid") else {
        return Ok(None);
    };
    let texts = |tag: &str| -> Vec<String> {
        profile
            .children_by_tag(tag)
            .filter_map(|c| c.content_bytes())
            .filter_map(|b| core::str::from_utf8(b).ok())
            .filter(|s| !s.is_empty())
            .take(CONTACTS_MAX_BUSINESS_ITEMS)
            .map(str::to_owned)
            .collect()
    };
    let categories = profile
        .child("categories")
        .map(|c| {
            c.children_by_tag("category")
                .filter_map(|c| c.content_bytes())
                .filter_map(|b| core::str::from_utf8(b).ok())
                .take(CONTACTS_MAX_BUSINESS_ITEMS)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(BusinessProfile {
        jid,
        description: text_of(profile, "description"),
        address: text_of(profile, "address"),
        email: text_of(profile, "email"),
        websites: texts("website"),
        categories,
    }))
}

/// `blocklist get`.
pub fn build_block_list_query() -> Node {
    super::super::iq::iq("get", "blocklist", vec![])
}

/// The answer to [`build_block_list_query`]: the blocked users (at most
/// `CONTACTS_MAX_BLOCK_LIST`).
pub fn parse_block_list(answer: &Node) -> Result<Vec<Jid>, CommandError> {
    let list = answer.child("list").ok_or(CommandError::BadAnswer)?;
    Ok(list
        .children_by_tag("item")
        .filter_map(|item| item.attr_jid("jid"))
        .take(CONTACTS_MAX_BLOCK_LIST)
        .collect())
}

/// `blocklist set <item action jid [pn_jid]/>`: blocking names the LID with the phone number
/// beside it (when `lid` is known); unblocking names one JID.
pub fn build_block(block: bool, jid: &Jid, lid: Option<&Jid>) -> Node {
    let mut item = Node::new("item").attr("action", if block { "block" } else { "unblock" });
    item = match lid {
        Some(lid) if jid.server == DEFAULT_USER_SERVER => {
            let item = item.attr("jid", lid.to_non_device());
            if block {
                item.attr("pn_jid", jid.to_non_device())
            } else {
                item
            }
        }
        _ => item.attr("jid", jid.to_non_device()),
    };
    super::super::iq::iq("set", "blocklist", vec![item])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn jid(text: &str) -> Jid {
        text.parse().unwrap()
    }

    fn user(jid: &str, kind: &'static str, echo: &str, lid: Option<&str>) -> Node {
        let mut children = vec![
            Node::new("contact")
                .attr("type", kind)
                .bytes(echo.to_owned()),
        ];
        if let Some(lid) = lid {
            children.push(Node::new("lid").attr("val", lid.to_owned()));
        }
        Node::new("user")
            .attr("jid", jid.to_owned())
            .children_from(children)
    }

    fn answer(users: Vec<Node>) -> Node {
        Node::new("iq").attr("type", "result").children_from([
            Node::new("usync").children_from([Node::new("list").children_from(users)])
        ])
    }

    #[test]
    fn numbers_are_normalized_and_bounded() {
        let digits = normalize_numbers(&["+1 (555) 123-4567".into()]).unwrap();
        assert_eq!(digits, vec!["15551234567"]);
        assert_eq!(
            normalize_numbers(&["12".into()]),
            Err(CommandError::InvalidPhoneNumber)
        );
        assert_eq!(normalize_numbers(&[]), Err(CommandError::InvalidMessage));
        let many = vec!["15551234567".to_owned(); CONTACTS_MAX_NUMBERS_PER_QUERY + 1];
        assert_eq!(normalize_numbers(&many), Err(CommandError::InvalidMessage));
    }

    #[test]
    fn the_number_query_asks_for_contact_and_lid_per_number() {
        let node = build_number_query("S1", &["15551234567".into(), "4915112345678".into()]);
        assert_eq!(node.attr_str("xmlns"), Some("usync"));
        let usync = node.child("usync").unwrap();
        assert_eq!(usync.attr_str("mode"), Some("query"));
        assert_eq!(usync.attr_str("context"), Some("interactive"));
        let query: Vec<&str> = usync
            .child("query")
            .unwrap()
            .children()
            .iter()
            .map(|c| c.tag.as_ref())
            .collect();
        assert_eq!(query, ["contact", "lid"]);
        let users: Vec<&Node> = usync
            .child("list")
            .unwrap()
            .children_by_tag("user")
            .collect();
        assert_eq!(users.len(), 2);
        assert_eq!(
            users[0].child("contact").unwrap().content_bytes(),
            Some(&b"+15551234567"[..])
        );
    }

    #[test]
    fn numbers_on_and_off_whatsapp_in_the_order_asked() {
        let digits = vec![
            "15551234567".to_owned(),
            "15559999999".to_owned(),
            "15558888888".to_owned(),
        ];
        let reply = answer(vec![
            user("15559999999@s.whatsapp.net", "out", "+15559999999", None),
            user(
                "15551234567@s.whatsapp.net",
                "in",
                "+15551234567",
                Some("88000000000002@lid"),
            ),
        ]);
        let (infos, pairs) = parse_number_answer(&reply, &digits).unwrap();
        assert!(infos[0].on_whatsapp);
        assert_eq!(infos[0].lid, Some(jid("88000000000002@lid")));
        assert!(!infos[1].on_whatsapp && infos[1].lid.is_none());
        assert!(!infos[2].on_whatsapp);
        assert_eq!(infos[2].jid.to_string(), "15558888888@s.whatsapp.net");
        assert_eq!(
            pairs,
            vec![("15551234567".to_owned(), "88000000000002".to_owned())]
        );
        assert_eq!(
            parse_number_answer(&Node::new("iq"), &digits),
            Err(CommandError::BadAnswer)
        );
    }

    #[test]
    fn lid_addressed_answers_name_the_number_in_pn_jid() {
        let digits = vec!["15551234567".to_owned()];
        let reply = answer(vec![
            Node::new("user")
                .attr("jid", "88000000000002@lid")
                .attr("pn_jid", "15551234567@s.whatsapp.net")
                .children_from([Node::new("contact").attr("type", "in")]),
        ]);
        let (infos, _) = parse_number_answer(&reply, &digits).unwrap();
        assert!(infos[0].on_whatsapp);
        assert_eq!(infos[0].lid, Some(jid("88000000000002@lid")));
    }

    #[test]
    fn pictures_none_and_not_allowed_are_answers() {
        let target = jid("15551234567@s.whatsapp.net");
        let query = build_picture_query(&target, true, Some((5, &[1, 2])));
        assert_eq!(query.attr_jid("target"), Some(target));
        let picture = query.child("picture").unwrap();
        assert_eq!(picture.attr_str("type"), Some("preview"));
        assert!(picture.child("tctoken").is_some());
        let ok = Node::new("iq").children_from([Node::new("picture")
            .attr("id", "123")
            .attr("url", "https://pps.whatsapp.net/v/x.jpg")
            .attr("direct_path", "/v/x.jpg")]);
        assert!(matches!(
            parse_picture_answer(Ok(&ok)),
            Ok(ProfilePicture::Url { id, .. }) if id == "123"
        ));
        let error = |code| IqError::Error {
            code,
            text: String::new(),
            backoff: None,
        };
        assert_eq!(
            parse_picture_answer(Err(&error(404))),
            Ok(ProfilePicture::None)
        );
        assert_eq!(
            parse_picture_answer(Err(&error(401))),
            Ok(ProfilePicture::NotAllowed)
        );
        assert_eq!(
            parse_picture_answer(Err(&error(400))),
            Err(CommandError::BadRequest)
        );
        assert!(matches!(
            parse_picture_answer(Err(&error(429))),
            Err(CommandError::RateLimited { .. })
        ));
        let http = Node::new("iq").children_from([Node::new("picture").attr("url", "http://x")]);
        assert_eq!(parse_picture_answer(Ok(&http)), Ok(ProfilePicture::None));
    }

    #[test]
    fn about_texts_and_hidden_ones() {
        let with = |status: Node| {
            answer(vec![
                Node::new("user")
                    .attr("jid", "15551234567@s.whatsapp.net")
                    .children_from([status]),
            ])
        };
        let text = with(
            Node::new("status")
                .attr("t", "1700")
                .bytes(b"Busy".to_vec()),
        );
        assert_eq!(
            parse_about_answer(&text),
            Ok(About::Text {
                text: "Busy".into(),
                set_at: 1700
            })
        );
        let hidden = with(Node::new("status").attr("code", "401"));
        assert_eq!(parse_about_answer(&hidden), Ok(About::NotAllowed));
        assert_eq!(parse_about_answer(&answer(vec![])), Ok(About::None));
    }

    #[test]
    fn business_profiles_and_block_lists() {
        let reply = Node::new("iq").children_from([Node::new("business_profile").children_from([
            Node::new("profile")
                .attr("jid", "15551234567@s.whatsapp.net")
                .children_from([
                    Node::new("description").bytes(b"Bakery".to_vec()),
                    Node::new("website").bytes(b"https://a.example".to_vec()),
                    Node::new("website").bytes(b"https://b.example".to_vec()),
                    Node::new("categories").children_from([Node::new("category")
                        .attr("id", "1")
                        .bytes(b"Food".to_vec())]),
                ]),
        ])]);
        let profile = parse_business_answer(&reply).unwrap().unwrap();
        assert_eq!(profile.description.as_deref(), Some("Bakery"));
        assert_eq!(profile.websites.len(), 2);
        assert_eq!(profile.categories, vec!["Food"]);
        assert_eq!(parse_business_answer(&Node::new("iq")), Ok(None));

        let list = Node::new("iq").children_from([Node::new("list").children_from([
            Node::new("item").attr("jid", "15551234567@s.whatsapp.net"),
            Node::new("item").attr("jid", "88000000000002@lid"),
        ])]);
        assert_eq!(parse_block_list(&list).unwrap().len(), 2);
        assert_eq!(
            parse_block_list(&Node::new("iq")),
            Err(CommandError::BadAnswer)
        );

        let pn = jid("15551234567@s.whatsapp.net");
        let lid = jid("88000000000002@lid");
        let block = build_block(true, &pn, Some(&lid));
        let item = block.child("item").unwrap();
        assert_eq!(item.attr_jid("jid"), Some(lid.clone()));
        assert_eq!(item.attr_jid("pn_jid"), Some(pn.clone()));
        let unblock = build_block(false, &pn, Some(&lid));
        assert!(unblock.child("item").unwrap().get_attr("pn_jid").is_none());
        let plain = build_block(true, &pn, None);
        assert_eq!(plain.child("item").unwrap().attr_jid("jid"), Some(pn));
    }
}
