//! Delivery: the offline queue, acknowledgements, message and receipt routing.

use super::*;

impl Server {
    // ----- delivery ------------------------------------------------------------------------

    /// Hands `stanza` to a device: on its connection if it is logged in and active, else into
    /// its offline queue. The phone (device 0) keeps its inbox in the queue too.
    /// A message stanza to a companion may be sent twice (see
    /// [`Server::set_duplicate_messages`]), as a server that redelivers does.
    /// A hostile server may hold deliveries back instead ([`Server::hold_deliveries`]).
    pub fn deliver(&mut self, user: &str, device: u16, stanza: Node) {
        if self.hold(user, device, &stanza) {
            return;
        }
        if stanza.tag == "message" {
            self.wire.record((user, device), &stanza);
            if device != 0 {
                self.wire.log_delivery(user, device, &stanza);
                if self.wire.duplicate_per_mille > 0
                    && self
                        .rng
                        .chance(u64::from(self.wire.duplicate_per_mille), 1000)
                {
                    self.wire.duplicated += 1;
                    self.deliver_once(user, device, stanza.clone());
                }
            }
        }
        self.deliver_once(user, device, stanza);
    }

    pub(super) fn deliver_once(&mut self, user: &str, device: u16, stanza: Node) {
        if device != 0 && self.sim_companion_receive(user, device, &stanza) {
            return;
        }
        if device == 0 {
            // The phone is always online and handles its stanzas at once.
            if stanza.tag == "message" {
                self.phone_receive(user, &stanza);
            } else if stanza.tag == "receipt" && stanza.attr_str("type") == Some("retry") {
                self.phone_retry(user, &stanza);
            } else if stanza.tag == "receipt" && stanza.attr_str("type") == Some("server-error") {
                self.phone_media_retry(user, &stanza);
            }
            return;
        }
        let conn = self.device_conn(user, device).filter(|&conn| {
            matches!(self.conns.get(&conn).map(|c| &c.stage), Some(Stage::Device(s)) if s.active)
        });
        let Some(target) = self
            .accounts
            .get_mut(user)
            .and_then(|a| a.devices.get_mut(&device))
        else {
            return;
        };
        match conn {
            Some(conn) => {
                if target.unacked.len() >= MAX_OFFLINE_QUEUE {
                    target.unacked.remove(0);
                }
                target.unacked.push(stanza.clone());
                self.send(conn, &stanza);
            }
            None => {
                if target.offline.len() >= MAX_OFFLINE_QUEUE {
                    target.offline.pop_front();
                }
                target.offline.push_back(stanza);
            }
        }
    }

    pub(super) fn flush_offline(&mut self, conn: ConnId, session: &(String, u16)) {
        let Some(device) = self.device_mut(session) else {
            return;
        };
        let queued: Vec<Node> = device.offline.drain(..).collect();
        let count = queued.len();
        device.unacked.extend(queued.iter().cloned());
        for mut stanza in queued {
            stanza.set_attr("offline", "1");
            self.send(conn, &stanza);
        }
        let marker =
            Node::new("ib").children_from([Node::new("offline").attr("count", count.to_string())]);
        self.send(conn, &marker);
    }

    pub(super) fn acknowledged(&mut self, session: &(String, u16), id: &str) {
        if let Some(device) = self.device_mut(session) {
            device
                .unacked
                .retain(|stanza| stanza.attr_str("id") != Some(id));
        }
    }

    /// The `<group>` node of a group's metadata (whatsmeow `GetGroupInfo`,
    /// Baileys `extractGroupMetadata`): in a LID-addressed group the members, creator and
    /// subject owner are LIDs with their numbers beside them (`phone_number`, `creator_pn`,
    /// `s_o_pn`); in a phone-number-addressed group numbers with their `lid`.
    pub(super) fn group_node(&self, group: &Group) -> Node {
        let forms = |user: &str| -> (Jid, Jid) {
            let pn = Jid::new(user.to_owned(), DEFAULT_USER_SERVER);
            let lid = self
                .accounts
                .get(user)
                .map_or_else(|| pn.clone(), Account::lid_jid);
            if group.lid_addressed {
                (lid, pn)
            } else {
                (pn, lid)
            }
        };
        let alt_key = if group.lid_addressed {
            "phone_number"
        } else {
            "lid"
        };
        let participants = group.members.iter().map(|member| {
            let (jid, alt) = forms(member);
            let entry = Node::new("participant").attr("jid", jid).attr(alt_key, alt);
            if *member == group.creator {
                entry.attr("type", "superadmin")
            } else if group.admins.contains(member) {
                entry.attr("type", "admin")
            } else {
                entry
            }
        });
        let (creator, creator_alt) = forms(&group.creator);
        let mut node = Node::new("group")
            .attr("id", group.id.clone())
            .attr("subject", group.subject.clone())
            .attr("s_t", group.creation.to_string())
            .attr("s_o", creator.clone())
            .attr("creation", group.creation.to_string())
            .attr("creator", creator)
            .attr("size", group.members.len().to_string())
            .attr("addressing_mode", group.addressing_mode());
        if group.lid_addressed {
            node = node
                .attr("s_o_pn", creator_alt.clone())
                .attr("creator_pn", creator_alt);
        }
        let mut children: Vec<Node> = participants.collect();
        if let Some((id, text)) = &group.description {
            children.push(
                Node::new("description")
                    .attr("id", id.clone())
                    .children_from([Node::new("body").bytes(text.clone().into_bytes())]),
            );
        }
        if group.announce {
            children.push(Node::new("announcement"));
        }
        if group.locked {
            children.push(Node::new("locked"));
        }
        if group.approval {
            children.push(
                Node::new("membership_approval_mode")
                    .children_from([Node::new("group_join").attr("state", "on")]),
            );
        }
        if group.ephemeral > 0 {
            children.push(Node::new("ephemeral").attr("expiration", group.ephemeral.to_string()));
        }
        children.push(self.member_add_mode_node(&group.id));
        node.children_from(children)
    }

    /// The other address form of a user JID (a LID for a number, a number for a LID), without
    /// the device: what WhatsApp stamps beside a sender (`sender_lid`, `participant_pn`, ...).
    pub(super) fn alt_user(&self, jid: &Jid) -> Option<Jid> {
        let user = self.resolve_user(&jid.to_non_device())?;
        let account = self.accounts.get(&user)?;
        Some(if jid.server == HIDDEN_USER_SERVER {
            account.jid()
        } else {
            account.lid_jid()
        })
    }

    /// A group message: every member device except the sender gets
    /// `<message from=group participant=sender>` with the `enc`s addressed to it in
    /// `participants` (sender-key distribution) followed by the `skmsg` for everyone.
    /// Returns the server's participant hash when the stanza's `phash` differed from it.
    pub(super) fn route_group_message(
        &mut self,
        now: Timestamp,
        session: &(String, u16),
        group: &Jid,
        node: &Node,
    ) -> Option<String> {
        let members = self.groups.get(&group.user).map(|g| g.members.clone())?;
        if !members.contains(&session.0) {
            return None;
        }
        let lid_addressed = self.groups.get(&group.user)?.lid_addressed;
        let sender = self.accounts.get(&session.0)?;
        let (participant, participant_alt) = if lid_addressed {
            (sender.device_lid(session.1), sender.jid())
        } else {
            (sender.device_jid(session.1), sender.lid_jid())
        };
        let push_name = sender.push_name.clone();
        let id = node.attr_str("id").unwrap_or_default().to_owned();
        let kind = node.attr_str("type").unwrap_or("text").to_owned();
        if self.wire_duplicate(session, node) {
            return None;
        }
        // A first send carries the sender's participant hash; one that differs from the
        // server's view is still delivered, and the ack tells the sender the server's hash
        // (whatsmeow compares the ack's `phash` and refreshes its device lists).
        let mut answer = None;
        if node.attr_jid("participant").is_none()
            && let Some(sent) = node.attr_str("phash")
            && let Some(group_info) = self.groups.get(&group.user)
        {
            let own = self.group_phash(group_info, lid_addressed);
            if own != sent {
                self.wire.phash_mismatches += 1;
                answer = Some(own);
            }
        }
        let mut per_device: BTreeMap<(String, u16), Vec<Node>> = BTreeMap::new();
        if let Some(participants) = node.child("participants") {
            for to_node in participants.children_by_tag("to") {
                if let Some(jid) = to_node.attr_jid("jid")
                    && let Some(user) = self.resolve_user(&jid.to_non_device())
                {
                    per_device
                        .entry((user, jid.device))
                        .or_default()
                        .extend(to_node.children().iter().cloned());
                }
            }
        }
        let shared: Vec<Node> = node
            .children()
            .iter()
            .filter(|child| child.tag != "participants")
            .cloned()
            .collect();
        // A retry resend names one device with `participant`.
        let only = node
            .attr_jid("participant")
            .and_then(|jid| Some((self.resolve_user(&jid.to_non_device())?, jid.device)));
        let mut targets = Vec::new();
        for member in &members {
            if let Some(account) = self.accounts.get(member) {
                for &device in account.devices.keys() {
                    if (member.as_str(), device) == (session.0.as_str(), session.1) {
                        continue;
                    }
                    if only
                        .as_ref()
                        .is_some_and(|o| *o != (member.clone(), device))
                    {
                        continue;
                    }
                    targets.push((member.clone(), device));
                }
            }
        }
        // A hostile server hands a resend to the device it names, member or not.
        if self.attacker.hostility.deliver_resends_to_anyone
            && let Some(only) = &only
            && !targets.contains(only)
            && self
                .accounts
                .get(&only.0)
                .is_some_and(|a| a.devices.contains_key(&only.1))
        {
            targets.push(only.clone());
        }
        if only.is_none() {
            for leaked in self.leaked_devices(&group.user) {
                if !targets.contains(&leaked)
                    && (leaked.0.as_str(), leaked.1) != (&session.0, session.1)
                {
                    targets.push(leaked);
                }
            }
        }
        for (user, device) in targets {
            let mut children = per_device
                .remove(&(user.clone(), device))
                .unwrap_or_default();
            children.extend(shared.iter().cloned());
            let delivered = group_stanza(
                group,
                (&participant, &participant_alt),
                lid_addressed,
                &id,
                &kind,
                now,
            )
            .attr("notify", push_name.clone())
            .children_from(children);
            self.deliver(&user, device, delivered);
        }
        answer
    }

    /// Whether `node` repeats a first send (not a retry resend) this device already made: it
    /// is acknowledged again but not routed.
    fn wire_duplicate(&mut self, session: &(String, u16), node: &Node) -> bool {
        let resend = node.attr_str("device_fanout") == Some("false")
            || node.attr_jid("participant").is_some();
        let id = node.attr_str("id").unwrap_or_default();
        !resend && !id.is_empty() && self.wire.seen(session, id)
    }

    pub(super) fn route_message(
        &mut self,
        now: Timestamp,
        conn: ConnId,
        session: &(String, u16),
        node: &Node,
    ) {
        let id = node.attr_str("id").unwrap_or_default().to_owned();
        let Some(to) = node.attr_jid("to") else {
            return;
        };
        if status::is_status(&to) {
            return self.route_status_message(now, conn, session, node);
        }
        if to.server == GROUP_SERVER {
            let phash = self.route_group_message(now, session, &to, node);
            let mut ack = Node::new("ack")
                .attr("class", "message")
                .attr("id", id)
                .attr("from", to)
                .attr("t", seconds(now));
            if let Some(phash) = phash {
                ack = ack.attr("phash", phash);
            }
            self.send(conn, &ack);
            return;
        }
        if self.wire_duplicate(session, node) {
            let ack = Node::new("ack")
                .attr("class", "message")
                .attr("id", id)
                .attr("from", to)
                .attr("t", seconds(now));
            self.send(conn, &ack);
            return;
        }
        let Some(sender) = self.accounts.get(&session.0) else {
            return;
        };
        let via_lid = to.server == HIDDEN_USER_SERVER;
        // WhatsApp names the sender in the form the message was addressed in and stamps the
        // other form beside it (tulir/whatsmeow `parseMessageSource`: `sender_pn` for a LID
        // sender, `sender_lid` for a number).
        let (from, sender_alt) = if via_lid {
            (sender.device_lid(session.1), ("sender_pn", sender.jid()))
        } else {
            (
                sender.device_jid(session.1),
                ("sender_lid", sender.lid_jid()),
            )
        };
        let push_name = sender.push_name.clone();
        let kind = node.attr_str("type").unwrap_or("text").to_owned();
        // The privacy token (`tctoken`) is for the server, not the recipient.
        let extra: Vec<Node> = node
            .children()
            .iter()
            .filter(|child| !matches!(child.tag.as_ref(), "participants" | "enc" | "tctoken"))
            .cloned()
            .collect();
        // Targets: `participants/to[jid]` with their own `enc`, or the `enc` children for `to`.
        let mut targets: Vec<(Jid, Vec<Node>)> = Vec::new();
        if let Some(participants) = node.child("participants") {
            for to_node in participants.children_by_tag("to") {
                if let Some(jid) = to_node.attr_jid("jid") {
                    targets.push((jid, to_node.children().to_vec()));
                }
            }
        } else {
            let encs: Vec<Node> = node.children_by_tag("enc").cloned().collect();
            if !encs.is_empty() {
                targets.push((to.clone(), encs));
            }
        }
        for (jid, encs) in targets {
            let Some(user) = self.resolve_user(&jid) else {
                continue;
            };
            let mut delivered = Node::new("message")
                .attr("from", from.clone())
                .attr("id", id.clone())
                .attr("type", kind.clone())
                .attr("t", seconds(now))
                .attr("notify", push_name.clone());
            // A peer message (to the account's own devices) stays one.
            if let Some(category) = node.attr_str("category") {
                delivered = delivered.attr("category", category.to_owned());
            }
            if user == session.0 {
                // A copy for the sender's own other device: `recipient` names the chat
                // (Baileys `decodeMessageNode`: `from` is own, the chat is `recipient`), and
                // `peer_recipient_pn` / `peer_recipient_lid` its other form (whatsmeow
                // `RecipientAlt`).
                let chat = node
                    .attr_jid("recipient")
                    .unwrap_or_else(|| to.to_non_device());
                delivered = with_recipient(delivered, &chat, self.alt_user(&chat));
            } else {
                delivered = delivered.attr(sender_alt.0, sender_alt.1.clone());
            }
            let mut children = encs;
            children.extend(extra.iter().cloned());
            self.deliver(&user, jid.device, delivered.children_from(children));
        }
        let ack = Node::new("ack")
            .attr("class", "message")
            .attr("id", id)
            .attr("from", to)
            .attr("t", seconds(now));
        self.send(conn, &ack);
    }

    pub(super) fn route_receipt(
        &mut self,
        now: Timestamp,
        conn: ConnId,
        session: &(String, u16),
        node: &Node,
    ) {
        let Some(id) = node.attr_str("id").map(str::to_owned) else {
            return;
        };
        self.acknowledged(session, &id);
        let Some(to) = node.attr_jid("to") else {
            return;
        };
        if node.attr_str("type") == Some("hist_sync") && to.user == session.0 {
            self.history_acknowledged(&session.0.clone(), &id);
            return;
        }
        if status::is_status(&to) {
            return self.route_status_receipt(now, conn, session, node);
        }
        let Some(sender) = self.accounts.get(&session.0) else {
            return;
        };
        let lid_group =
            to.server == GROUP_SERVER && self.groups.get(&to.user).is_some_and(|g| g.lid_addressed);
        let from = if to.server == HIDDEN_USER_SERVER || lid_group {
            sender.device_lid(session.1)
        } else {
            sender.device_jid(session.1)
        };
        let kind = node.attr_str("type").map(str::to_owned);
        let target = node.attr_jid("participant").unwrap_or_else(|| to.clone());
        if let Some(user) = self.resolve_user(&target) {
            let devices: Vec<u16> = self
                .accounts
                .get(&user)
                .map(|a| a.devices.keys().copied().collect())
                .unwrap_or_default();
            for device in devices {
                if user == session.0 && device == session.1 {
                    continue;
                }
                if target.device != 0 && device != target.device {
                    continue;
                }
                // A media re-upload request is for the phone only.
                if kind.as_deref() == Some("server-error") && device != 0 {
                    continue;
                }
                let mut receipt = Node::new("receipt")
                    .attr("from", from.clone())
                    .attr("id", id.clone());
                if let Some(kind) = &kind {
                    receipt = receipt.attr("type", kind.clone());
                }
                // `participant` (groups) and `recipient` (own copies) travel with the receipt.
                for key in ["participant", "recipient"] {
                    if let Some(value) = node.get_attr(key) {
                        receipt = receipt.attr(key, value.clone());
                    }
                }
                if to.server == GROUP_SERVER {
                    receipt.set_attr("from", to.clone());
                    receipt.set_attr("participant", from.clone());
                }
                let t = node
                    .attr_str("t")
                    .map_or_else(|| seconds(now), str::to_owned);
                receipt = receipt.attr("t", t);
                if let Content::Nodes(children) = &node.content {
                    receipt = receipt.children_from(children.clone());
                }
                self.deliver(&user, device, receipt);
            }
        }
        self.ack_receipt(conn, id, to, kind);
    }

    /// Acknowledges a `<receipt>` from `conn` (its id, the chat it was for, its type if any).
    pub(super) fn ack_receipt(
        &mut self,
        conn: ConnId,
        id: String,
        from: Jid,
        kind: Option<String>,
    ) {
        let mut ack = Node::new("ack")
            .attr("class", "receipt")
            .attr("id", id)
            .attr("from", from);
        if let Some(kind) = kind {
            ack = ack.attr("type", kind);
        }
        self.send(conn, &ack);
    }
}

/// A group message as delivered to one member device, before its children: `from` the group,
/// `participant` the sending device in the group's addressing form, the other form beside it
/// (`participant_pn` in a LID-addressed group, `participant_lid` otherwise; whatsmeow
/// `parseMessageSource`) and the group's `addressing_mode`.
pub(super) fn group_stanza(
    group: &Jid,
    (participant, participant_alt): (&Jid, &Jid),
    lid_addressed: bool,
    id: &str,
    kind: &str,
    now: Timestamp,
) -> Node {
    let (alt_key, mode) = if lid_addressed {
        ("participant_pn", "lid")
    } else {
        ("participant_lid", "pn")
    };
    Node::new("message")
        .attr("from", group.clone())
        .attr("participant", participant.clone())
        .attr(alt_key, participant_alt.clone())
        .attr("addressing_mode", mode)
        .attr("id", id.to_owned())
        .attr("type", kind.to_owned())
        .attr("t", seconds(now))
}

/// Names the chat of a copy for the sender's own device: `recipient`, and its other form in
/// `peer_recipient_pn` (a LID chat) or `peer_recipient_lid` (a number).
pub(super) fn with_recipient(stanza: Node, chat: &Jid, alt: Option<Jid>) -> Node {
    let stanza = stanza.attr("recipient", chat.clone());
    match alt {
        Some(alt) if chat.server == HIDDEN_USER_SERVER => stanza.attr("peer_recipient_pn", alt),
        Some(alt) => stanza.attr("peer_recipient_lid", alt),
        None => stanza,
    }
}
