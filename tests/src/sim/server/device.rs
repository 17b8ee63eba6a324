//! A logged-in device: IQs, prekeys, device lists and groups.

use super::*;

impl Server {
    // ----- a logged-in device ----------------------------------------------------------------

    pub(super) fn handle_node(&mut self, now: Timestamp, conn: ConnId, node: Node) {
        let session = match self.conns.get(&conn).map(|c| &c.stage) {
            Some(Stage::Unpaired(_)) => {
                self.handle_unpaired(now, conn, node);
                return;
            }
            Some(Stage::Device(session)) => (session.user.clone(), session.device),
            _ => return,
        };
        self.record_social_stanza(&session, &node);
        match node.tag.as_ref() {
            "iq" => self.handle_iq(now, conn, &session, &node),
            "ack" => {
                if let Some(id) = node.attr_str("id") {
                    self.acknowledged(&session, id);
                }
            }
            "receipt" => self.route_receipt(now, conn, &session, &node),
            "message" => self.route_message(now, conn, &session, &node),
            "call" => self.companion_call(now, conn, &session, &node),
            "presence" => self.companion_presence(now, conn, &session, &node),
            "chatstate" => self.companion_chat_state(&session, &node),
            _ => {}
        }
    }

    pub(super) fn handle_iq(
        &mut self,
        now: Timestamp,
        conn: ConnId,
        session: &(String, u16),
        node: &Node,
    ) {
        let id = node.attr_str("id").unwrap_or_default().to_owned();
        let kind = node.attr_str("type").unwrap_or_default();
        let xmlns = node.attr_str("xmlns").unwrap_or_default();
        let ping = matches!(xmlns, "w:p" | "urn:xmpp:ping");
        if matches!(kind, "get" | "set") {
            self.count_request(node);
        }
        if matches!(kind, "get" | "set")
            && !ping
            && let Some(code) = self.take_iq_failure()
        {
            let text = if code == 503 {
                "service-unavailable"
            } else {
                "internal-server-error"
            };
            self.send(conn, &iq_error(&id, code, text));
            return;
        }
        match (kind, xmlns) {
            ("result" | "error", _) => {}
            ("set", "w:m") if node.child("media_conn").is_some() => {
                self.media_conn(now, conn, &id);
            }
            ("get", "w:p") | ("get", "urn:xmpp:ping") => {
                let pong = iq_result(&id, Vec::new()).attr("t", seconds(now));
                self.send(conn, &pong);
            }
            ("set", "passive") => {
                let active = node.child("active").is_some();
                if let Some(Stage::Device(state)) = self.conns.get_mut(&conn).map(|c| &mut c.stage)
                {
                    state.active = active;
                }
                self.send(conn, &iq_result(&id, Vec::new()));
                if active {
                    self.flush_offline(conn, session);
                    self.app_state_companion_active(now, session);
                }
            }
            ("set", "encrypt") if node.child("rotate").is_some() => {
                let skey = node.child("rotate").and_then(|r| r.child("skey"));
                match skey.and_then(parse_signed_prekey) {
                    Some(skey) => {
                        if let Some(device) = self.device_mut(session) {
                            device.signed_prekey = skey;
                        }
                        self.send(conn, &iq_result(&id, Vec::new()));
                    }
                    None => self.send(conn, &iq_error(&id, 400, "bad-request")),
                }
            }
            ("set", "encrypt") => self.upload_prekeys(conn, session, &id, node),
            ("get", "encrypt") if node.child("count").is_some() => {
                let count = self.device_mut(session).map_or(0, |d| d.prekeys.len());
                let reply = iq_result(
                    &id,
                    vec![Node::new("count").attr("value", count.to_string())],
                );
                self.send(conn, &reply);
            }
            ("get", "encrypt") if node.child("key").is_some() => {
                self.fetch_bundles(now, conn, &id, node);
            }
            _ if self.contact_query(conn, session, &id, node) => {}
            ("get", "usync") => {
                self.wire.usync_answered += 1;
                self.usync(conn, &id, node);
            }
            ("get" | "set", "w:g2") => self.group_iq(now, conn, session, &id, node),
            ("set", "md") if node.child("remove-companion-device").is_some() => {
                self.send(conn, &iq_result(&id, Vec::new()));
                let target = node
                    .child("remove-companion-device")
                    .and_then(|r| r.attr_jid("jid"))
                    .map_or(session.1, |jid| jid.device);
                let _ = self.remove_device(&session.0, target);
            }
            ("set", "w:sync:app:state") => self.app_state_iq(now, conn, session, &id, node),
            ("set", "urn:xmpp:whatsapp:dirty") => self.send(conn, &iq_result(&id, Vec::new())),
            _ => {
                if !self.account_iq(conn, session, &id, node) {
                    self.not_implemented(conn, &id, node);
                }
            }
        }
    }

    pub(super) fn device_mut(&mut self, session: &(String, u16)) -> Option<&mut Device> {
        self.accounts
            .get_mut(&session.0)?
            .devices
            .get_mut(&session.1)
    }

    pub(super) fn upload_prekeys(
        &mut self,
        conn: ConnId,
        session: &(String, u16),
        id: &str,
        node: &Node,
    ) {
        let parsed = (|| {
            let registration_id = be_u32(child_bytes(node, "registration")?)?;
            if child_bytes(node, "type")? != [5] {
                return None;
            }
            let identity: [u8; 32] = child_array(node, "identity")?;
            let skey = parse_signed_prekey(node.child("skey")?)?;
            let mut keys = Vec::new();
            for key in node.child("list")?.children_by_tag("key") {
                let key_id = be_u32(child_bytes(key, "id")?)?;
                let value: [u8; 32] = child_array(key, "value")?;
                keys.push((key_id, value));
            }
            Some((registration_id, identity, skey, keys))
        })();
        let Some((registration_id, identity, skey, keys)) = parsed else {
            self.send(conn, &iq_error(id, 400, "bad-request"));
            return;
        };
        let Some(device) = self.device_mut(session) else {
            return;
        };
        if identity != device.identity_public {
            self.send(conn, &iq_error(id, 409, "conflict"));
            return;
        }
        device.registration_id = registration_id;
        device.signed_prekey = skey;
        device.prekeys.extend(keys);
        device.prekeys_low_notified = false;
        self.send(conn, &iq_result(id, Vec::new()));
    }

    /// Resolves a user JID (phone number or LID) to the account's phone number.
    pub(super) fn resolve_user(&self, jid: &Jid) -> Option<String> {
        match jid.server.as_ref() {
            DEFAULT_USER_SERVER => self
                .accounts
                .contains_key(&jid.user)
                .then(|| jid.user.clone()),
            HIDDEN_USER_SERVER => self.lids.get(&jid.user).cloned(),
            _ => None,
        }
    }

    pub(super) fn fetch_bundles(&mut self, now: Timestamp, conn: ConnId, id: &str, node: &Node) {
        let mut users = Vec::new();
        let mut touched = Vec::new();
        for user in node.child("key").map(Node::children).unwrap_or_default() {
            let Some(jid) = user.attr_jid("jid") else {
                continue;
            };
            let found = self.resolve_user(&jid).and_then(|account| {
                let device = self
                    .accounts
                    .get_mut(&account)?
                    .devices
                    .get_mut(&jid.device)?;
                let prekey = device.take_prekey();
                touched.push((account.clone(), jid.device));
                let mut children = published_keys(device).to_vec();
                if let Some(prekey) = prekey {
                    children.push(Node::new("key").children_from([
                        bytes_node("id", id3(prekey.id)),
                        bytes_node("value", prekey.public.to_vec()),
                    ]));
                }
                Some(children)
            });
            let entry = Node::new("user").attr("jid", jid.clone());
            users.push(match found {
                Some(children) => entry.children_from(children),
                None => entry.children_from([Node::new("error")
                    .attr("code", "404")
                    .attr("text", "item-not-found")]),
            });
        }
        self.send(
            conn,
            &iq_result(id, vec![Node::new("list").children_from(users)]),
        );
        for (user, device) in touched {
            self.check_prekeys_low(now, &user, device);
        }
    }

    /// Tells a logged-in companion whose one-time prekeys ran low to upload more, once per
    /// upload.
    pub(super) fn check_prekeys_low(&mut self, now: Timestamp, user: &str, device: u16) {
        let conn = self.device_conn(user, device);
        let Some(target) = self
            .accounts
            .get_mut(user)
            .and_then(|a| a.devices.get_mut(&device))
        else {
            return;
        };
        let (Some(conn), false) = (conn, target.prekeys_low_notified) else {
            return;
        };
        if device == 0 || target.prekeys.len() >= PREKEYS_LOW {
            return;
        }
        target.prekeys_low_notified = true;
        let count = target.prekeys.len();
        let id = self.new_id();
        let notification = Node::new("notification")
            .attr("from", Jid::server_jid())
            .attr("id", id)
            .attr("type", "encrypt")
            .attr("t", seconds(now))
            .children_from([Node::new("count").attr("value", count.to_string())]);
        self.send(conn, &notification);
    }

    pub(super) fn usync(&mut self, conn: ConnId, id: &str, node: &Node) {
        let Some(usync) = node.child("usync") else {
            self.send(conn, &iq_error(id, 400, "bad-request"));
            return;
        };
        let wants_devices = usync
            .child("query")
            .is_some_and(|q| q.child("devices").is_some());
        let wants_lid = usync
            .child("query")
            .is_some_and(|q| q.child("lid").is_some());
        let mut users = Vec::new();
        for user in usync.child("list").map(Node::children).unwrap_or_default() {
            let Some(jid) = user.attr_jid("jid") else {
                continue;
            };
            let Some(account) = self.resolve_user(&jid).and_then(|u| self.accounts.get(&u)) else {
                users.push(
                    Node::new("user")
                        .attr("jid", jid)
                        .children_from([Node::new("devices").children_from([Node::new("error")
                            .attr("code", "404")
                            .attr("text", "item-not-found")])]),
                );
                continue;
            };
            let mut children = Vec::new();
            if wants_devices {
                let list = account.devices.values().map(|device| {
                    let entry = Node::new("device").attr("id", device.id.to_string());
                    if device.id == 0 {
                        entry
                    } else {
                        entry.attr("key-index", device.key_index.to_string())
                    }
                });
                let mut devices = vec![Node::new("device-list").children_from(list)];
                devices.extend(Self::served_key_index_list(account));
                children.push(Node::new("devices").children_from(devices));
            }
            // The LID of a user asked for by number; a user asked for by LID has no other LID
            // to tell (Baileys would store the LID as its own number).
            if wants_lid && jid.server != HIDDEN_USER_SERVER {
                children.push(Node::new("lid").attr("val", account.lid_jid()));
            }
            users.push(Node::new("user").attr("jid", jid).children_from(children));
        }
        let mut reply_usync = Node::new("usync");
        for key in ["sid", "mode", "context", "last", "index"] {
            if let Some(value) = usync.attr_str(key) {
                reply_usync = reply_usync.attr(key, value.to_owned());
            }
        }
        let reply_usync = reply_usync.children_from([
            Node::new("result").children_from([Node::new("devices")]),
            Node::new("list").children_from(users),
        ]);
        self.send(conn, &iq_result(id, vec![reply_usync]));
    }
}
