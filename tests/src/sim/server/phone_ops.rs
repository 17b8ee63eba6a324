//! The phone's own messages: sending, receiving and answering retry receipts.

use super::*;

impl Server {
    /// The phone of `user` sends a Signal-encrypted text to `to` (a JID, or digits for a
    /// phone number): to every device of the recipient account, and mirrored as a
    /// `DeviceSentMessage` to the account's own companions (a text to the own number reaches
    /// only the companions). Sessions are started from the prekey bundles the server holds,
    /// consuming one-time prekeys as a fetch would. Returns the message id.
    pub fn phone_send_text(
        &mut self,
        now: Timestamp,
        user: &str,
        to: &str,
        text: &str,
    ) -> Result<String, SimError> {
        let plain = walink_core::proto::wa::Message {
            conversation: Some(text.to_owned()),
            ..Default::default()
        };
        self.phone_send_message(now, user, to, plain)
    }

    /// The phone of `user` sends `plain` to `to` as [`Server::phone_send_text`] sends a text
    /// (the stanza's `type` is `media` for a media message). Returns the message id.
    pub fn phone_send_message(
        &mut self,
        now: Timestamp,
        user: &str,
        to: &str,
        plain: walink_core::proto::wa::Message,
    ) -> Result<String, SimError> {
        let to: Jid = if to.contains('@') {
            to.parse()
                .map_err(|_| SimError::UnknownAccount(to.to_owned()))?
        } else {
            Jid::new(to, DEFAULT_USER_SERVER)
        };
        let to = to.to_non_device();
        if to.server == GROUP_SERVER {
            return self.phone_send_group_message(now, user, &to, plain);
        }
        let target = self
            .resolve_user(&to)
            .ok_or_else(|| SimError::UnknownAccount(to.to_string()))?;
        let sender = self
            .accounts
            .get(user)
            .ok_or_else(|| SimError::UnknownAccount(user.to_owned()))?;
        let from = sender.jid();
        let sender_lid = sender.lid_jid();
        let push_name = sender.push_name.clone();
        let to_alt = self.alt_user(&to);
        let mut recipients: Vec<(String, u16, bool)> = Vec::new();
        if target != user {
            let devices = self
                .accounts
                .get(&target)
                .map(|a| a.devices.keys().copied().collect::<Vec<_>>());
            recipients.extend(
                devices
                    .unwrap_or_default()
                    .into_iter()
                    .map(|d| (target.clone(), d, false)),
            );
        }
        recipients.extend(
            sender
                .devices
                .keys()
                .filter(|&&d| d != 0)
                .map(|&d| (user.to_owned(), d, true)),
        );
        let id = self.phone_message_id();
        let kind = stanza_type(&plain);
        let text = summary(&plain);
        let mirrored = walink_core::proto::wa::Message {
            device_sent_message: Some(Box::new(
                walink_core::proto::wa::message::DeviceSentMessage {
                    destination_jid: Some(to.to_string()),
                    message: Some(Box::new(plain.clone())),
                    phash: None,
                },
            )),
            ..Default::default()
        };
        for (account, device, own) in recipients {
            let address = Jid::device(account.clone(), device, DEFAULT_USER_SERVER).to_string();
            let bundle = {
                let phone_has = self
                    .accounts
                    .get(user)
                    .is_some_and(|a| a.phone.has_session(&address));
                if phone_has {
                    None
                } else {
                    let Some(target_device) = self
                        .accounts
                        .get_mut(&account)
                        .and_then(|a| a.devices.get_mut(&device))
                    else {
                        continue;
                    };
                    let bundle = bundle_of(target_device);
                    self.check_prekeys_low(now, &account, device);
                    Some(bundle)
                }
            };
            let Some(phone) = self.accounts.get_mut(user).map(|a| &mut a.phone) else {
                continue;
            };
            if let Some(bundle) = bundle {
                phone.start_session(&address, &bundle)?;
            }
            let content = if own { &mirrored } else { &plain };
            phone.remember_sent(&id, &address, content);
            let (enc_type, ciphertext) = phone.encrypt(&address, content)?;
            let mut stanza = Node::new("message")
                .attr("from", from.clone())
                .attr("id", id.clone())
                .attr("type", kind)
                .attr("t", seconds(now))
                .attr("notify", push_name.clone());
            stanza = if own {
                delivery::with_recipient(stanza, &to, to_alt.clone())
            } else {
                stanza.attr("sender_lid", sender_lid.clone())
            };
            let stanza = stanza.children_from([Node::new("enc")
                .attr("v", "2")
                .attr("type", enc_type)
                .bytes(ciphertext)]);
            self.deliver(&account, device, stanza);
        }
        self.record_phone_sent(user, &from.to_string(), &to.to_string(), &id, &text, now);
        Ok(id)
    }

    /// A message id for the phone, in WhatsApp's `3EB0…` shape.
    pub(super) fn phone_message_id(&mut self) -> String {
        format!(
            "3EB0{}",
            self.rng
                .bytes::<8>()
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect::<String>()
        )
    }

    /// Makes sure the phone of `user` has a Signal session with device `device` of account
    /// `account` (its address in the phone-number form), starting one from the bundle the
    /// server holds (one one-time prekey consumed) if not.
    pub(super) fn phone_session_with(
        &mut self,
        now: Timestamp,
        user: &str,
        account: &str,
        device: u16,
    ) -> Result<Option<String>, SimError> {
        let address = Jid::device(account.to_owned(), device, DEFAULT_USER_SERVER).to_string();
        if self
            .accounts
            .get(user)
            .is_some_and(|a| a.phone.has_session(&address))
        {
            return Ok(Some(address));
        }
        let Some(target) = self
            .accounts
            .get_mut(account)
            .and_then(|a| a.devices.get_mut(&device))
        else {
            return Ok(None);
        };
        let bundle = bundle_of(target);
        self.check_prekeys_low(now, account, device);
        if let Some(phone) = self.accounts.get_mut(user).map(|a| &mut a.phone) {
            phone.start_session(&address, &bundle)?;
        }
        Ok(Some(address))
    }

    /// The phone of `user` sends a text to `group`: its sender key goes in a `pkmsg`/`msg` to
    /// each member device that does not hold it yet, and the text once as `skmsg`, delivered to
    /// every member device but itself (its own companions included) as WhatsApp delivers group
    /// messages: `from` the group, `participant` the phone in the group's addressing form.
    fn phone_send_group_message(
        &mut self,
        now: Timestamp,
        user: &str,
        group: &Jid,
        plain: walink_core::proto::wa::Message,
    ) -> Result<String, SimError> {
        let info = self
            .groups
            .get(&group.user)
            .filter(|g| g.members.iter().any(|m| m == user))
            .cloned()
            .ok_or_else(|| SimError::UnknownAccount(format!("{user} in {group}")))?;
        let sender = self
            .accounts
            .get(user)
            .ok_or_else(|| SimError::UnknownAccount(user.to_owned()))?;
        let (participant, participant_alt) = if info.lid_addressed {
            (sender.device_lid(0), sender.jid())
        } else {
            (sender.jid(), sender.lid_jid())
        };
        let push_name = sender.push_name.clone();
        let group_text = group.to_string();
        let id = self.phone_message_id();
        let kind = stanza_type(&plain);
        let text = summary(&plain);
        let mut targets = Vec::new();
        for member in &info.members {
            let devices: Vec<u16> = self
                .accounts
                .get(member)
                .map(|a| a.devices.keys().copied().collect())
                .unwrap_or_default();
            for device in devices {
                if (member.as_str(), device) != (user, 0) {
                    targets.push((member.clone(), device));
                }
            }
        }
        // The distribution names the chain's iteration before this message, as it must.
        let phone = &mut self
            .accounts
            .get_mut(user)
            .ok_or_else(|| SimError::UnknownAccount(user.to_owned()))?
            .phone;
        let distribution = phone.sender_key_distribution(&group_text);
        let skmsg = phone.group_encrypt(&group_text, &plain)?;
        for (member, device) in targets {
            let Some(address) = self.phone_session_with(now, user, &member, device)? else {
                continue;
            };
            let Some(phone) = self.accounts.get_mut(user).map(|a| &mut a.phone) else {
                continue;
            };
            let children = sender_key_encs(phone, &group_text, &address, &distribution, &skmsg)?;
            let stanza = delivery::group_stanza(
                group,
                (&participant, &participant_alt),
                info.lid_addressed,
                &id,
                kind,
                now,
            )
            .attr("notify", push_name.clone())
            .children_from(children);
            self.deliver(&member, device, stanza);
        }
        let from = self
            .accounts
            .get(user)
            .map(|a| a.jid().to_string())
            .unwrap_or_default();
        self.record_phone_sent(user, &from, &group_text, &id, &text, now);
        Ok(id)
    }

    /// What the phone of `user` received, in arrival order.
    pub fn phone_messages(&self, user: &str) -> Option<&[PhoneMessage]> {
        self.accounts.get(user).map(|a| a.phone.inbox())
    }

    /// The phone of `user` answers a retry receipt: it starts a fresh session from the keys the
    /// requesting device sent and sends the message again to that device only, with the
    /// retry `count` on its `enc`.
    pub(super) fn phone_retry(&mut self, user: &str, receipt: &Node) {
        let (Some(requester), Some(id)) = (receipt.attr_jid("from"), receipt.attr_str("id")) else {
            return;
        };
        let count = receipt
            .child("retry")
            .and_then(|r| r.attr_str("count"))
            .unwrap_or("1")
            .to_owned();
        let Some(requester_user) = self.resolve_user(&requester.to_non_device()) else {
            return;
        };
        let address = Jid::device(
            requester_user.clone(),
            requester.device,
            DEFAULT_USER_SERVER,
        )
        .to_string();
        let bundle = (|| {
            let registration = be_u32(child_bytes(receipt, "registration")?)?;
            bundle_from_node(receipt.child("keys")?, registration)
        })();
        let Some(account) = self.accounts.get_mut(user) else {
            return;
        };
        let Some(message) = account.phone.sent(id, &address).cloned() else {
            return;
        };
        if let Some(bundle) = bundle
            && account.phone.start_session(&address, &bundle).is_err()
        {
            return;
        }
        let Ok((enc_type, ciphertext)) = account.phone.encrypt(&address, &message) else {
            return;
        };
        let own = requester_user == user;
        let mut stanza = Node::new("message")
            .attr("from", account.jid())
            .attr("id", id.to_owned())
            .attr("type", "text")
            .attr("t", receipt.attr_str("t").unwrap_or("0").to_owned())
            .attr("notify", account.push_name.clone());
        let destination = message
            .device_sent_message
            .as_ref()
            .and_then(|sent| sent.destination_jid.as_deref())
            .and_then(|jid| jid.parse::<Jid>().ok());
        let sender_lid = account.lid_jid();
        match destination {
            Some(chat) if own => {
                let alt = self.alt_user(&chat);
                stanza = delivery::with_recipient(stanza, &chat, alt);
            }
            _ => stanza = stanza.attr("sender_lid", sender_lid),
        }
        let stanza = stanza.children_from([Node::new("enc")
            .attr("v", "2")
            .attr("type", enc_type)
            .attr("count", count)
            .bytes(ciphertext)]);
        self.deliver(&requester_user, requester.device, stanza);
    }

    /// The phone of `user` handles a message stanza: decrypts it and sends a delivery
    /// receipt to the sender.
    pub(super) fn phone_receive(&mut self, user: &str, stanza: &Node) {
        let Some(sender) = stanza
            .attr_jid("participant")
            .or_else(|| stanza.attr_jid("from"))
        else {
            return;
        };
        let id = stanza.attr_str("id").unwrap_or_default().to_owned();
        let timestamp = stanza
            .attr_str("t")
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        let encs: Vec<(String, Vec<u8>)> = stanza
            .children_by_tag("enc")
            .map(|enc| {
                (
                    enc.attr_str("type").unwrap_or_default().to_owned(),
                    enc.content_bytes().unwrap_or_default().to_vec(),
                )
            })
            .collect();
        let group = stanza
            .attr_jid("from")
            .filter(|from| from.server == GROUP_SERVER || status::is_status(from))
            .map(|from| from.to_string());
        // The phone keeps its sessions and sender keys by the sender's number, whichever form
        // the message was addressed in.
        let sender_user = self.resolve_user(&sender.to_non_device());
        let address = sender_user.as_ref().map_or_else(
            || sender.to_string(),
            |pn| Jid::device(pn.clone(), sender.device, DEFAULT_USER_SERVER).to_string(),
        );
        let Some(account) = self.accounts.get_mut(user) else {
            return;
        };
        let phone_jid = if sender.server == HIDDEN_USER_SERVER {
            account.lid_jid()
        } else {
            account.jid()
        };
        let received = account
            .phone
            .receive(&id, &address, group.as_deref(), &encs, timestamp);
        let key_request = received.app_state_key_request.is_some();
        let history_request = received.history_request.clone();
        // A companion of this account asks for app-state keys: the phone shares them.
        if key_request && sender.device != 0 && sender_user.as_deref() == Some(user) {
            self.phone_answer_app_state_key_request(
                timestamp.saturating_mul(1000),
                user,
                sender.device,
            );
        }
        // A companion of this account asks for older messages of a chat, in a peer message
        // (`category="peer"`, features.md §2.7): the phone answers with an ON_DEMAND chunk.
        if let Some(request) = history_request
            && sender.device != 0
            && sender_user.as_deref() == Some(user)
            && stanza.attr_str("category") == Some("peer")
        {
            let _ = self.phone_answer_history_request(
                timestamp.saturating_mul(1000),
                user,
                sender.device,
                &request,
            );
        }
        if let Some(sender_user) = sender_user
            && sender.device != 0
        {
            let receipt = match stanza
                .attr_jid("from")
                .filter(|f| f.server == GROUP_SERVER || status::is_status(f))
            {
                Some(group) => Node::new("receipt")
                    .attr("from", group)
                    .attr("participant", phone_jid),
                None => Node::new("receipt").attr("from", phone_jid),
            };
            let receipt = receipt.attr("id", id).attr("t", timestamp.to_string());
            self.deliver(&sender_user, sender.device, receipt);
        }
    }
}

/// The `enc`s of a sender-key message (a group message or a status post) for the device at
/// `address`: the phone's sender key for `group` in a `pkmsg`/`msg` first when the device does
/// not hold it yet, then the `skmsg`.
pub(super) fn sender_key_encs(
    phone: &mut Phone,
    group: &str,
    address: &str,
    distribution: &[u8],
    skmsg: &[u8],
) -> Result<Vec<Node>, SimError> {
    let mut children = Vec::new();
    if phone.first_sender_key_for(group, address) {
        let carrier = walink_core::proto::wa::Message {
            sender_key_distribution_message: Some(
                walink_core::proto::wa::message::SenderKeyDistributionMessage {
                    group_id: Some(group.to_owned()),
                    axolotl_sender_key_distribution_message: Some(distribution.to_vec()),
                },
            ),
            ..Default::default()
        };
        let (enc_type, ciphertext) = phone.encrypt(address, &carrier)?;
        children.push(
            Node::new("enc")
                .attr("v", "2")
                .attr("type", enc_type)
                .bytes(ciphertext),
        );
    }
    children.push(
        Node::new("enc")
            .attr("v", "2")
            .attr("type", "skmsg")
            .bytes(skmsg.to_vec()),
    );
    Ok(children)
}

/// The `type` of a message stanza carrying `message`: `media` for a media message.
fn stanza_type(message: &walink_core::proto::wa::Message) -> &'static str {
    if message.image_message.is_some()
        || message.video_message.is_some()
        || message.audio_message.is_some()
        || message.document_message.is_some()
        || message.sticker_message.is_some()
    {
        "media"
    } else {
        "text"
    }
}

/// What the phone's sent list records of a message: its text, or a media caption.
fn summary(message: &walink_core::proto::wa::Message) -> String {
    message
        .conversation
        .clone()
        .or_else(|| {
            message
                .image_message
                .as_ref()
                .and_then(|m| m.caption.clone())
        })
        .or_else(|| {
            message
                .video_message
                .as_ref()
                .and_then(|m| m.caption.clone())
        })
        .unwrap_or_default()
}
