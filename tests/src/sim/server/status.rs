//! Status posts (`status@broadcast`, features.md §8), as the server and a phone handle them:
//!
//! - a post a device sends is a sender-key message to `status@broadcast` whose
//!   `<participants><to jid=device><enc/></to>…` names its audience (each device gets the
//!   sender key with every post, as Baileys and WhatsApp Web send them); the server delivers
//!   `<message from="status@broadcast" participant=<poster> participant_lid=…>` with that
//!   device's `enc` and the shared `skmsg` to every listed device, and to nobody else;
//! - a phone posts to a list of recipients ([`Server::phone_post_status`]): the same stanza to
//!   each recipient device and to its own companions;
//! - receipts for a post (`<receipt to="status@broadcast" participant=<poster>>`) reach the
//!   poster's devices as `<receipt from="status@broadcast" participant=<viewer device>>`, and
//!   the server keeps what the poster's phone got ([`Server::status_receipts`]).

use super::*;

/// Status receipts the server keeps for the tests (the oldest are dropped beyond).
pub const MAX_STATUS_RECEIPTS: usize = 1_024;

/// The chat of status posts.
pub const STATUS_BROADCAST: &str = "status@broadcast";

/// A receipt for a status post, as its poster's phone got it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusReceipt {
    /// The poster's account (its phone number).
    pub poster: String,
    /// The first message id the receipt names.
    pub id: String,
    /// The viewing device.
    pub viewer: Jid,
    /// The receipt's `type` (`read`, ...), `delivery` when it has none.
    pub kind: String,
    /// Its `participant`, as the viewer wrote it.
    pub participant: Option<Jid>,
}

/// What the server keeps of status traffic.
#[derive(Debug, Default)]
pub(super) struct StatusLog {
    receipts: VecDeque<StatusReceipt>,
}

/// Whether `jid` is `status@broadcast`.
pub(super) fn is_status(jid: &Jid) -> bool {
    jid.user == "status" && jid.server == "broadcast"
}

impl Server {
    /// The phone of `user` posts `plain` as a status seen by `recipients` (digits or JIDs):
    /// its sender key in a `pkmsg`/`msg` to each recipient device (and own companion) that
    /// does not hold it yet, the post once as `skmsg`. Returns the message id.
    pub fn phone_post_status(
        &mut self,
        now: Timestamp,
        user: &str,
        recipients: &[&str],
        plain: walink_core::proto::wa::Message,
    ) -> Result<String, SimError> {
        let status: Jid = STATUS_BROADCAST.parse().unwrap_or_default();
        let sender = self
            .accounts
            .get(user)
            .ok_or_else(|| SimError::UnknownAccount(user.to_owned()))?;
        let participant = sender.jid();
        let participant_lid = sender.lid_jid();
        let push_name = sender.push_name.clone();
        let own_companions: Vec<u16> = sender.devices.keys().copied().filter(|&d| d != 0).collect();
        let mut targets: Vec<(String, u16)> = own_companions
            .into_iter()
            .map(|d| (user.to_owned(), d))
            .collect();
        for recipient in recipients {
            let jid: Jid = if recipient.contains('@') {
                recipient
                    .parse()
                    .map_err(|_| SimError::UnknownAccount((*recipient).to_owned()))?
            } else {
                Jid::new(*recipient, DEFAULT_USER_SERVER)
            };
            let account = self
                .resolve_user(&jid.to_non_device())
                .ok_or_else(|| SimError::UnknownAccount(jid.to_string()))?;
            let devices: Vec<u16> = self
                .accounts
                .get(&account)
                .map(|a| a.devices.keys().copied().collect())
                .unwrap_or_default();
            for device in devices {
                if account != user && !targets.contains(&(account.clone(), device)) {
                    targets.push((account.clone(), device));
                }
            }
        }
        let id = self.phone_message_id();
        let kind = if plain.image_message.is_some() || plain.video_message.is_some() {
            "media"
        } else {
            "text"
        };
        let phone = &mut self
            .accounts
            .get_mut(user)
            .ok_or_else(|| SimError::UnknownAccount(user.to_owned()))?
            .phone;
        let distribution = phone.sender_key_distribution(STATUS_BROADCAST);
        let skmsg = phone.group_encrypt(STATUS_BROADCAST, &plain)?;
        for (account, device) in targets {
            let Some(address) = self.phone_session_with(now, user, &account, device)? else {
                continue;
            };
            let Some(phone) = self.accounts.get_mut(user).map(|a| &mut a.phone) else {
                continue;
            };
            let children = phone_ops::sender_key_encs(
                phone,
                STATUS_BROADCAST,
                &address,
                &distribution,
                &skmsg,
            )?;
            let stanza = status_stanza(&status, (&participant, &participant_lid), &id, kind, now)
                .attr("notify", push_name.clone())
                .children_from(children);
            self.deliver(&account, device, stanza);
        }
        let text = plain
            .extended_text_message
            .as_ref()
            .and_then(|m| m.text.clone())
            .or(plain.conversation.clone())
            .unwrap_or_default();
        self.record_phone_sent(
            user,
            &participant.to_string(),
            STATUS_BROADCAST,
            &id,
            &text,
            now,
        );
        Ok(id)
    }

    /// A status post from a device: delivered to exactly the devices its `<participants>`
    /// names, each with its own `enc` and the shared ones, then acknowledged.
    pub(super) fn route_status_message(
        &mut self,
        now: Timestamp,
        conn: ConnId,
        session: &(String, u16),
        node: &Node,
    ) {
        let id = node.attr_str("id").unwrap_or_default().to_owned();
        let status: Jid = STATUS_BROADCAST.parse().unwrap_or_default();
        let ack = Node::new("ack")
            .attr("class", "message")
            .attr("id", id.clone())
            .attr("from", status.clone())
            .attr("t", seconds(now));
        let Some(sender) = self.accounts.get(&session.0) else {
            return self.send(conn, &ack);
        };
        let participant = sender.device_jid(session.1);
        let participant_lid = sender.lid_jid();
        let push_name = sender.push_name.clone();
        let kind = node.attr_str("type").unwrap_or("text").to_owned();
        let shared: Vec<Node> = node
            .children()
            .iter()
            .filter(|child| child.tag != "participants")
            .cloned()
            .collect();
        let mut targets: Vec<((String, u16), Vec<Node>)> = Vec::new();
        for to in node
            .child("participants")
            .map(|p| p.children_by_tag("to").collect::<Vec<_>>())
            .unwrap_or_default()
        {
            let Some(jid) = to.attr_jid("jid") else {
                continue;
            };
            let Some(user) = self.resolve_user(&jid.to_non_device()) else {
                continue;
            };
            let device = (user, jid.device);
            if device == *session
                || !self
                    .accounts
                    .get(&device.0)
                    .is_some_and(|a| a.devices.contains_key(&device.1))
            {
                continue;
            }
            match targets.iter_mut().find(|(d, _)| *d == device) {
                Some((_, children)) => children.extend(to.children().iter().cloned()),
                None => targets.push((device, to.children().to_vec())),
            }
        }
        for ((user, device), mut children) in targets {
            children.extend(shared.iter().cloned());
            let stanza = status_stanza(&status, (&participant, &participant_lid), &id, &kind, now)
                .attr("notify", push_name.clone())
                .children_from(children);
            self.deliver(&user, device, stanza);
        }
        self.send(conn, &ack);
    }

    /// A receipt for a status post (`to="status@broadcast" participant=<poster>`): delivered
    /// to the poster's other devices, kept when the poster's phone gets it, acknowledged.
    pub(super) fn route_status_receipt(
        &mut self,
        now: Timestamp,
        conn: ConnId,
        session: &(String, u16),
        node: &Node,
    ) {
        let id = node.attr_str("id").unwrap_or_default().to_owned();
        let kind = node.attr_str("type").map(str::to_owned);
        let status: Jid = STATUS_BROADCAST.parse().unwrap_or_default();
        let viewer = self
            .accounts
            .get(&session.0)
            .map(|a| a.device_jid(session.1));
        let participant = node.attr_jid("participant");
        let poster = participant
            .as_ref()
            .and_then(|p| self.resolve_user(&p.to_non_device()));
        if let (Some(viewer), Some(poster)) = (viewer, poster) {
            let devices: Vec<u16> = self
                .accounts
                .get(&poster)
                .map(|a| a.devices.keys().copied().collect())
                .unwrap_or_default();
            for device in devices {
                if (poster.as_str(), device) == (session.0.as_str(), session.1) {
                    continue;
                }
                if device == 0 {
                    let log = &mut self.status.receipts;
                    if log.len() >= MAX_STATUS_RECEIPTS {
                        log.pop_front();
                    }
                    log.push_back(StatusReceipt {
                        poster: poster.clone(),
                        id: id.clone(),
                        viewer: viewer.clone(),
                        kind: kind.clone().unwrap_or_else(|| "delivery".to_owned()),
                        participant: participant.clone(),
                    });
                    continue;
                }
                let mut receipt = Node::new("receipt")
                    .attr("from", status.clone())
                    .attr("participant", viewer.clone())
                    .attr("id", id.clone())
                    .attr(
                        "t",
                        node.attr_str("t")
                            .map_or_else(|| seconds(now), str::to_owned),
                    );
                if let Some(kind) = &kind {
                    receipt = receipt.attr("type", kind.clone());
                }
                if let Content::Nodes(children) = &node.content {
                    receipt = receipt.children_from(children.clone());
                }
                self.deliver(&poster, device, receipt);
            }
        }
        self.ack_receipt(conn, id, status, kind);
    }

    /// The receipts the phone of `poster` got for its status posts, oldest first.
    pub fn status_receipts(&self, poster: &str) -> Vec<StatusReceipt> {
        self.status
            .receipts
            .iter()
            .filter(|r| r.poster == poster)
            .cloned()
            .collect()
    }
}

/// A status post as delivered to one device, before its children: `from` `status@broadcast`,
/// `participant` the poster's device (phone-number form) and `participant_lid` beside it
/// (whatsmeow `parseMessageSource`).
fn status_stanza(
    status: &Jid,
    (participant, participant_lid): (&Jid, &Jid),
    id: &str,
    kind: &str,
    now: Timestamp,
) -> Node {
    Node::new("message")
        .attr("from", status.clone())
        .attr("participant", participant.clone())
        .attr("participant_lid", participant_lid.clone())
        .attr("id", id.to_owned())
        .attr("type", kind.to_owned())
        .attr("t", seconds(now))
}
