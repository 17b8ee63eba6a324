//! Registration, QR and link-code pairing, pair-success and pair-device-sign.

use super::*;

impl Server {
    // ----- pairing -------------------------------------------------------------------------

    pub(super) fn send_pair_device(&mut self, now: Timestamp, conn: ConnId) {
        let mut refs = Vec::with_capacity(PAIR_REFS);
        let mut expires = now;
        for index in 0..PAIR_REFS {
            expires += if index == 0 {
                FIRST_REF_MS
            } else {
                NEXT_REF_MS
            };
            let random = self.rng.bytes::<18>();
            let text: String = random
                .iter()
                .map(|b| {
                    char::from(
                        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
                            [usize::from(b & 63)],
                    )
                })
                .collect();
            refs.push((format!("2@{text}"), expires));
        }
        let id = self.new_id();
        let node = Node::new("iq")
            .attr("from", Jid::server_jid())
            .attr("type", "set")
            .attr("id", id.clone())
            .attr("xmlns", "md")
            .children_from([Node::new("pair-device").children_from(
                refs.iter()
                    .map(|(r, _)| Node::new("ref").bytes(r.as_bytes().to_vec())),
            )]);
        if let Some(Stage::Unpaired(reg)) = self.conns.get_mut(&conn).map(|c| &mut c.stage) {
            reg.refs = refs.clone();
            reg.pair_device_id = id;
        }
        self.send(conn, &node);
        self.events.push_back(ServerEvent::PairDeviceSent {
            conn,
            refs: refs.into_iter().map(|(r, _)| r).collect(),
        });
    }

    /// The phone signs a device identity for the companion on `conn` and the server sends
    /// pair-success.
    pub(super) fn start_pairing(
        &mut self,
        now: Timestamp,
        conn: ConnId,
        user: &str,
        adv_secret: &[u8; 32],
    ) {
        let Some(Stage::Unpaired(reg)) = self.conns.get(&conn).map(|c| &c.stage) else {
            return;
        };
        let companion_identity = reg.identity_public;
        let Some(account) = self.accounts.get_mut(user) else {
            return;
        };
        let device = account.next_device_id;
        account.next_device_id = account.next_device_id.wrapping_add(1).max(1);
        let key_index = account.next_key_index;
        account.next_key_index += 1;
        let raw_id = account.raw_id;
        let issued = account.phone.issue_identity(
            &companion_identity,
            adv_secret,
            raw_id,
            key_index,
            now / 1000,
        );
        let device_jid = account.device_jid(device);
        let device_lid = account.device_lid(device);
        let id = self.new_id();
        let node = Node::new("iq")
            .attr("from", Jid::server_jid())
            .attr("type", "set")
            .attr("id", id.clone())
            .attr("xmlns", "md")
            .attr("t", seconds(now))
            .children_from([Node::new("pair-success").children_from([
                bytes_node("device-identity", issued.container.clone()),
                Node::new("device")
                    .attr("jid", device_jid)
                    .attr("lid", device_lid),
                Node::new("platform").attr("name", "android"),
            ])]);
        if let Some(Stage::Unpaired(reg)) = self.conns.get_mut(&conn).map(|c| &mut c.stage) {
            reg.pairing = Some(PendingPair {
                iq_id: id,
                user: user.to_owned(),
                device,
                issued,
            });
        }
        self.send(conn, &node);
    }

    pub(super) fn handle_unpaired(&mut self, now: Timestamp, conn: ConnId, node: Node) {
        if node.tag != "iq" {
            return;
        }
        let id = node.attr_str("id").unwrap_or_default().to_owned();
        let kind = node.attr_str("type").unwrap_or_default().to_owned();
        let Some(Stage::Unpaired(reg)) = self.conns.get_mut(&conn).map(|c| &mut c.stage) else {
            return;
        };
        let pairing_reply = reg.pairing.as_ref().is_some_and(|p| p.iq_id == id);
        match kind.as_str() {
            "result" if pairing_reply => self.finish_pairing(now, conn, &node),
            "error" if pairing_reply => {
                reg.pairing = None;
                let error = node.child("error");
                let code = error
                    .and_then(|e| e.attr_str("code"))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
                let text = error
                    .and_then(|e| e.attr_str("text"))
                    .unwrap_or_default()
                    .to_owned();
                self.events
                    .push_back(ServerEvent::PairRejectedByCompanion { conn, code, text });
            }
            "result" | "error" => {}
            "set" if node.attr_str("xmlns") == Some("md") => {
                match node
                    .child("link_code_companion_reg")
                    .and_then(|c| c.attr_str("stage"))
                {
                    Some("companion_hello") => self.companion_hello(conn, &id, &node),
                    Some("companion_finish") => self.companion_finish(now, conn, &id, &node),
                    _ => self.send(conn, &iq_error(&id, 400, "bad-request")),
                }
            }
            "get" if node.attr_str("xmlns") == Some("w:p") => {
                self.send(conn, &iq_result(&id, Vec::new()));
            }
            _ => self.not_implemented(conn, &id, &node),
        }
    }

    pub(super) fn finish_pairing(&mut self, now: Timestamp, conn: ConnId, node: &Node) {
        let Some(Stage::Unpaired(reg)) = self.conns.get_mut(&conn).map(|c| &mut c.stage) else {
            return;
        };
        let Some(pending) = reg.pairing.take() else {
            return;
        };
        let identity = node
            .child("pair-device-sign")
            .and_then(|sign| sign.child("device-identity"));
        let key_index = identity
            .and_then(|i| i.attr_str("key-index"))
            .and_then(|k| k.parse::<u32>().ok());
        let reply = identity.and_then(Node::content_bytes).unwrap_or_default();
        let companion_identity = reg.identity_public;
        let new_device = Device {
            id: pending.device,
            noise_public: Some(reg.noise_public),
            identity_public: reg.identity_public,
            registration_id: reg.registration_id,
            signed_prekey: reg.signed_prekey.clone(),
            prekeys: BTreeMap::new(),
            key_index: pending.issued.key_index,
            name: reg.name.clone(),
            platform_type: reg.platform_type,
            prekeys_low_notified: false,
            offline: VecDeque::new(),
            unacked: Vec::new(),
        };
        let Some(account) = self.accounts.get_mut(&pending.user) else {
            return;
        };
        let valid = key_index == Some(pending.issued.key_index)
            && account.phone.check_device_signature(
                reply,
                &pending.issued.details,
                &companion_identity,
            );
        if !valid {
            self.events
                .push_back(ServerEvent::BadDeviceSignature { conn });
            self.close(
                conn,
                CloseReason::Protocol("bad pair-device-sign".to_owned()),
            );
            return;
        }
        account.devices.insert(pending.device, new_device);
        Self::sign_device_list(account, Some(now));
        if self.history_sync {
            // The history waits in the new device's offline queue until it logs in. A failure
            // here is the simulation's own (an oversized store), never the companion's.
            let ask = reg.history;
            let _ = self.phone_history_sync(now, &pending.user, pending.device, ask);
        }
        self.events.push_back(ServerEvent::Paired {
            conn,
            user: pending.user,
            device: pending.device,
        });
        self.end_stream(now, conn, StreamErrorKind::RestartRequired);
    }

    pub(super) fn companion_hello(&mut self, conn: ConnId, id: &str, node: &Node) {
        let Some(reg_node) = node.child("link_code_companion_reg") else {
            return;
        };
        if let Some(code) = self.link_code_error.take() {
            self.send(conn, &iq_error(id, code, error_text(code)));
            return;
        }
        let user = reg_node
            .attr_jid("jid")
            .filter(|jid| jid.server == DEFAULT_USER_SERVER)
            .map(|jid| jid.user)
            .unwrap_or_default();
        let digits_ok = (7..=15).contains(&user.len())
            && user.bytes().all(|b| b.is_ascii_digit())
            && !user.starts_with('0');
        let wrapped = child_bytes(
            reg_node,
            "link_code_pairing_wrapped_companion_ephemeral_pub",
        );
        let noise: Option<[u8; 32]> = child_array(reg_node, "companion_server_auth_key_pub");
        let platform_id = child_bytes(reg_node, "companion_platform_id");
        let display = child_bytes(reg_node, "companion_platform_display")
            .and_then(|d| std::str::from_utf8(d).ok())
            .unwrap_or_default();
        let Some(Stage::Unpaired(reg)) = self.conns.get(&conn).map(|c| &c.stage) else {
            return;
        };
        let platform_ok = platform_id.is_some_and(|p| matches!(p, [b'1'..=b'9'] | [b'a'..=b'f']));
        let valid = digits_ok
            && wrapped.is_some_and(|w| w.len() == 80)
            && noise == Some(reg.noise_public)
            && platform_ok
            && valid_display(display)
            && self.accounts.contains_key(&user);
        if !valid {
            self.send(conn, &iq_error(id, 400, "bad-request"));
            return;
        }
        let reference = self
            .rng
            .bytes::<16>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        let link = LinkCode {
            user,
            wrapped_companion_ephemeral: wrapped.unwrap_or_default().to_vec(),
            reference: reference.clone().into_bytes(),
            hello_sent: false,
        };
        if let Some(Stage::Unpaired(reg)) = self.conns.get_mut(&conn).map(|c| &mut c.stage) {
            reg.link = Some(link);
        }
        self.send(
            conn,
            &iq_result(
                id,
                vec![
                    Node::new("link_code_companion_reg").children_from([bytes_node(
                        "link_code_pairing_ref",
                        reference.into_bytes(),
                    )]),
                ],
            ),
        );
    }

    pub(super) fn companion_finish(&mut self, now: Timestamp, conn: ConnId, id: &str, node: &Node) {
        let Some(reg_node) = node.child("link_code_companion_reg") else {
            return;
        };
        let Some(Stage::Unpaired(reg)) = self.conns.get(&conn).map(|c| &c.stage) else {
            return;
        };
        let Some(link) = reg.link.as_ref().filter(|link| link.hello_sent) else {
            self.send(conn, &iq_error(id, 400, "bad-request"));
            return;
        };
        let bundle = child_bytes(reg_node, "link_code_pairing_wrapped_key_bundle")
            .unwrap_or_default()
            .to_vec();
        let identity: Option<[u8; 32]> = child_array(reg_node, "companion_identity_public");
        let same_ref = child_bytes(reg_node, "link_code_pairing_ref") == Some(&link.reference[..]);
        if identity != Some(reg.identity_public) || !same_ref {
            self.send(conn, &iq_error(id, 400, "bad-request"));
            return;
        }
        let user = link.user.clone();
        let companion_identity = reg.identity_public;
        self.send(conn, &iq_result(id, Vec::new()));
        let Some(account) = self.accounts.get_mut(&user) else {
            return;
        };
        match account.phone.open_key_bundle(&bundle, &companion_identity) {
            Ok(adv_secret) => self.start_pairing(now, conn, &user, &adv_secret),
            Err(error) => self
                .events
                .push_back(ServerEvent::LinkCodeBundleRejected { conn, error }),
        }
    }
}
