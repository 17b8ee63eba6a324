//! Calls, presence and contacts on the server side, written from the protocol notes
//! (features.md §3, §4, §6), not from walink's client:
//!
//! - **Calls.** A phone places a call (`phone_offer_call`): each companion of the callee gets
//!   `<call from="<caller>:0@s.whatsapp.net" id t notify><offer call-id call-creator
//!   [group-jid]><audio enc="opus" rate="16000"/>[<video/>]</offer></call>` (queued while it
//!   is offline, then delivered with `offline`); the callee's phone answering it
//!   (`phone_accept_call`) and the caller hanging up or giving up (`phone_end_call`) follow
//!   the same way. A companion's `<call><reject call-id call-creator/></call>` is acked
//!   (`<ack class="call">`; `fail_next_call_stanza(code)` acks the next with that `error` and
//!   drops it), recorded (`rejected_calls`) and ends the call for the callee's
//!   other companions with `<terminate reason="rejected_elsewhere">`.
//! - **Presence.** `<presence type="available|unavailable" name>` from a companion (a name is
//!   required: 400 otherwise is not a thing for presence, so the stanza is dropped and
//!   counted) or the phone (`phone_set_presence`) makes the account online or not, with its
//!   last-seen time. `<presence type="subscribe" to>` subscribes *that connection*: the
//!   server forgets it when the connection ends, so a client must renew after reconnecting;
//!   `<presence type="unsubscribe" to>` ends it.
//!   What a subscriber sees follows the target's `last` privacy setting: `all` shows online
//!   and last seen; `contacts` shows them only to a subscription carrying a `<tctoken>` the
//!   target issued to the subscriber's account; `none` (or no valid token) shows
//!   `type="unavailable" last="deny"`.
//! - **Chat state.** `<chatstate to>` from a companion reaches the connected companions of the
//!   chat's account (or every other member of a group, with `participant`), never queued,
//!   and the phone's log (`chat_states_seen`); `phone_chat_state` sends one from a phone.
//! - **Contacts.** usync `<contact/>` (with `<lid/>`): one `<user>` per number, `type="in"`
//!   with the LID for accounts, `type="out"` otherwise; at most `MAX_USYNC_CONTACTS` numbers
//!   (400 beyond). usync `<status/>`: the about text, or `code="401"` when the `status`
//!   privacy hides it. `w:profile:picture`: the picture URL, 404 without one, 401 when the
//!   `profile` privacy hides it (`contacts` needs the target's token in `<tctoken>`).
//!   `w:biz`: the business profile set by `set_business_profile`. `blocklist`: the account's
//!   block list, `<item action="block|unblock" jid [pn_jid]/>` changes it (404 for an unknown
//!   user). `fail_next_contact_query(code)` answers the next of these with an error (400
//!   bad-request, 401 not-authorized, 429 rate-overlimit with `backoff`).

use super::*;

/// Numbers one usync contact query may ask about.
pub const MAX_USYNC_CONTACTS: usize = 1000;
/// Presence subscriptions kept (oldest dropped).
pub const MAX_PRESENCE_SUBSCRIPTIONS: usize = 10_000;
/// Entries kept in each log (rejected calls, chat states seen by phones).
pub const MAX_SOCIAL_LOG: usize = 1000;
/// Users one account may block.
pub const MAX_BLOCKED: usize = 1000;

/// A call a companion rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedCall {
    /// The rejecting account.
    pub by: String,
    /// The rejecting device.
    pub device: u16,
    /// The `call-id`.
    pub call_id: String,
    /// The `call-creator`, as sent.
    pub creator: String,
    /// The `<call to>`, as sent.
    pub to: String,
}

/// A chat state a phone received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatStateSeen {
    /// The account whose phone saw it.
    pub account: String,
    /// The sender's account.
    pub from: String,
    /// The chat as the phone sees it (the sender's JID, or the group's).
    pub chat: String,
    /// `composing`, `recording` or `paused`.
    pub state: String,
}

/// What the server keeps for calls, presence and contacts.
#[derive(Debug, Default)]
pub(super) struct SocialState {
    /// `call-id -> (caller, callee)` of calls still ringing.
    calls: BTreeMap<String, (String, String)>,
    rejected: Vec<RejectedCall>,
    /// Account -> (online, last seen in Unix seconds).
    presence: BTreeMap<String, (bool, u64)>,
    /// `(connection, subscriber account, target account, token shown)`.
    subscriptions: Vec<(ConnId, String, String, bool)>,
    /// `(issuer, holder account) -> tokens issued`.
    tokens: BTreeMap<(String, String), Vec<Vec<u8>>>,
    chat_states: Vec<ChatStateSeen>,
    pictures: BTreeMap<String, String>,
    about: BTreeMap<String, (String, u64)>,
    business: BTreeMap<String, String>,
    blocked: BTreeMap<String, Vec<String>>,
    fail_next: Option<u16>,
    /// The next `<call>` of a companion is acked with this `error` and not taken.
    fail_next_call: Option<u16>,
    presence_without_name: u64,
    /// `(account, stanza)` of the call, presence, chat-state and contact stanzas companions
    /// sent, as received (for differential tests).
    received: Vec<(String, Node)>,
}

fn push_bounded<T>(list: &mut Vec<T>, item: T, bound: usize) {
    if list.len() >= bound {
        list.remove(0);
    }
    list.push(item);
}

fn error_text(code: u16) -> &'static str {
    match code {
        400 => "bad-request",
        401 => "not-authorized",
        403 => "forbidden",
        404 => "item-not-found",
        429 => "rate-overlimit",
        _ => "internal-server-error",
    }
}

impl Server {
    // ----- controls ---------------------------------------------------------------------------

    /// `caller`'s phone calls `callee`: every companion of `callee` gets the offer. Returns
    /// the call id.
    pub fn phone_offer_call(
        &mut self,
        now: Timestamp,
        caller: &str,
        callee: &str,
        video: bool,
        group: Option<&str>,
    ) -> Result<String, SimError> {
        let (caller_jid, name) = {
            let account = self.account_or_err(caller)?;
            (account.jid(), account.push_name.clone())
        };
        self.account_or_err(callee)?;
        let call_id = hex::encode_upper(self.rng.bytes::<16>());
        let mut offer = Node::new("offer")
            .attr("call-id", call_id.clone())
            .attr("call-creator", caller_jid);
        if let Some(group) = group {
            offer = offer
                .attr("group-jid", Jid::new(group.to_owned(), GROUP_SERVER))
                .attr("type", "group");
        }
        let mut media = vec![
            Node::new("audio").attr("enc", "opus").attr("rate", "16000"),
            Node::new("net").attr("medium", "3"),
        ];
        if video {
            media.push(Node::new("video").attr("enc", "vp8"));
        }
        offer = offer.children_from(media);
        self.social
            .calls
            .insert(call_id.clone(), (caller.to_owned(), callee.to_owned()));
        self.call_to_companions(now, caller, 0, callee, offer, Some(name), None);
        Ok(call_id)
    }

    /// `callee`'s phone accepts the call: its companions stop ringing (`accept`).
    pub fn phone_accept_call(&mut self, now: Timestamp, call_id: &str) -> Result<(), SimError> {
        let (caller, callee) = self.ringing(call_id)?;
        let child = Node::new("accept")
            .attr("call-id", call_id.to_owned())
            .attr("call-creator", Jid::new(caller, DEFAULT_USER_SERVER));
        self.call_to_companions(now, &callee, 0, &callee, child, None, None);
        self.social.calls.remove(call_id);
        Ok(())
    }

    /// The caller hangs up (`timeout`: nobody answered; the callee sees a missed call).
    pub fn phone_end_call(
        &mut self,
        now: Timestamp,
        call_id: &str,
        timeout: bool,
    ) -> Result<(), SimError> {
        let (caller, callee) = self.ringing(call_id)?;
        let mut child = Node::new("terminate")
            .attr("call-id", call_id.to_owned())
            .attr(
                "call-creator",
                Jid::new(caller.clone(), DEFAULT_USER_SERVER),
            );
        if timeout {
            child = child.attr("reason", "timeout");
        }
        self.call_to_companions(now, &caller, 0, &callee, child, None, None);
        self.social.calls.remove(call_id);
        Ok(())
    }

    /// The calls companions rejected, oldest first.
    pub fn rejected_calls(&self) -> &[RejectedCall] {
        &self.social.rejected
    }

    /// `user`'s phone goes online or offline; subscribers are told.
    pub fn phone_set_presence(&mut self, now: Timestamp, user: &str, available: bool) {
        self.set_presence(now, user, available);
    }

    /// Whether `user` is online (a phone or companion said available last).
    pub fn is_online(&self, user: &str) -> bool {
        self.social.presence.get(user).is_some_and(|p| p.0)
    }

    /// Presence stanzas dropped because they carried no push name.
    pub fn presence_without_name(&self) -> u64 {
        self.social.presence_without_name
    }

    /// Live presence subscriptions to `target` (connections still open).
    pub fn presence_subscribers(&self, target: &str) -> usize {
        self.social
            .subscriptions
            .iter()
            .filter(|(conn, _, t, _)| t == target && self.conns.contains_key(conn))
            .count()
    }

    /// `issuer`'s phone gives `holder` a trusted-contact privacy token (as after a chat): the
    /// holder's companions get it in `<notification type="privacy_token">`.
    pub fn phone_issue_privacy_token(
        &mut self,
        now: Timestamp,
        issuer: &str,
        holder: &str,
    ) -> Result<(), SimError> {
        self.account_or_err(issuer)?;
        let holder_jid = self.account_or_err(holder)?.jid();
        let node = Node::new("tokens").children_from([Node::new("token")
            .attr("jid", holder_jid)
            .attr("t", seconds(now))]);
        let request = Node::new("iq").children_from([node]);
        let id = self.new_id();
        let _ = self.issue_tokens(&id, issuer, &request);
        Ok(())
    }

    /// Records a token `issuer` gave `holder` (called where tokens are issued).
    pub(super) fn remember_token(&mut self, issuer: &str, holder: &str, token: &[u8]) {
        let tokens = self
            .social
            .tokens
            .entry((issuer.to_owned(), holder.to_owned()))
            .or_default();
        push_bounded(tokens, token.to_vec(), 8);
    }

    /// `from`'s phone types, records or pauses in `chat` (an account, or a group id).
    pub fn phone_chat_state(
        &mut self,
        from: &str,
        chat: &str,
        state: &str,
    ) -> Result<(), SimError> {
        let sender = self.account_or_err(from)?.jid();
        let child = chat_state_child(state);
        if let Some(group) = self.groups.get(chat).cloned() {
            let stanza = Node::new("chatstate")
                .attr("from", Jid::new(group.id.clone(), GROUP_SERVER))
                .attr("participant", sender)
                .children_from([child]);
            for member in group.members.iter().filter(|m| *m != from) {
                self.send_to_live_companions(member, None, &stanza);
            }
            return Ok(());
        }
        self.account_or_err(chat)?;
        let stanza = Node::new("chatstate")
            .attr("from", sender)
            .children_from([child]);
        self.send_to_live_companions(chat, None, &stanza);
        Ok(())
    }

    /// The chat states phones received, oldest first.
    pub fn chat_states_seen(&self) -> &[ChatStateSeen] {
        &self.social.chat_states
    }

    /// Sets (or removes) `user`'s profile picture id.
    pub fn set_profile_picture(&mut self, user: &str, id: Option<&str>) {
        match id {
            Some(id) => self.social.pictures.insert(user.to_owned(), id.to_owned()),
            None => self.social.pictures.remove(user),
        };
    }

    /// The picture id kept for `owner` (an account or a group id).
    pub fn profile_picture_id(&self, owner: &str) -> Option<String> {
        self.social.pictures.get(owner).cloned()
    }

    /// Sets `user`'s about text.
    pub fn set_about(&mut self, now: Timestamp, user: &str, text: &str) {
        self.social
            .about
            .insert(user.to_owned(), (text.to_owned(), now / 1000));
    }

    /// Makes `user` a business with this description.
    pub fn set_business_profile(&mut self, user: &str, description: &str) {
        self.social
            .business
            .insert(user.to_owned(), description.to_owned());
    }

    /// The users `user` blocked (phone numbers), in order.
    pub fn blocked_by(&self, user: &str) -> Vec<String> {
        self.social.blocked.get(user).cloned().unwrap_or_default()
    }

    /// Acks the next `<call>` stanza of a companion with this `error` code and drops it (a
    /// reject the server refuses).
    pub fn fail_next_call_stanza(&mut self, code: u16) {
        self.social.fail_next_call = Some(code);
    }

    /// Answers the next contact query (usync contact or status, profile picture, business
    /// profile, block list) with this error code.
    pub fn fail_next_contact_query(&mut self, code: u16) {
        self.social.fail_next = Some(code);
    }

    /// The call, presence, chat-state and contact-query stanzas `account`'s companions sent,
    /// oldest first (at most `MAX_SOCIAL_LOG` over all accounts).
    pub fn social_stanzas_from(&self, account: &str) -> Vec<&Node> {
        self.social
            .received
            .iter()
            .filter(|(a, _)| a == account)
            .map(|(_, node)| node)
            .collect()
    }

    // ----- stanzas from a companion -----------------------------------------------------------

    /// Keeps a copy of `node` when it is a call, presence, chat-state or contact stanza.
    pub(super) fn record_social_stanza(&mut self, session: &(String, u16), node: &Node) {
        let contact_iq = node.tag == "iq"
            && matches!(
                node.attr_str("xmlns"),
                Some("blocklist" | "w:profile:picture" | "w:biz")
            )
            || node
                .child("usync")
                .and_then(|u| u.child("query"))
                .is_some_and(|q| q.child("contact").is_some() || q.child("status").is_some());
        if matches!(node.tag.as_ref(), "call" | "presence" | "chatstate") || contact_iq {
            push_bounded(
                &mut self.social.received,
                (session.0.clone(), node.clone()),
                MAX_SOCIAL_LOG,
            );
        }
    }

    /// `<call>` from a companion: a reject is recorded, acked and ends the call elsewhere.
    pub(super) fn companion_call(
        &mut self,
        now: Timestamp,
        conn: ConnId,
        session: &(String, u16),
        node: &Node,
    ) {
        let mut ack = Node::new("ack").attr("class", "call");
        if let Some(id) = node.attr_str("id") {
            ack = ack.attr("id", id.to_owned());
        }
        if let Some(to) = node.get_attr("to") {
            ack = ack.attr("from", to.clone());
        }
        if let Some(code) = self.social.fail_next_call.take() {
            ack = ack.attr("error", code.to_string());
            return self.send(conn, &ack);
        }
        self.send(conn, &ack);
        let Some(reject) = node.child("reject") else {
            return;
        };
        let call_id = reject.attr_str("call-id").unwrap_or_default().to_owned();
        let creator = reject
            .get_attr("call-creator")
            .map(ToString::to_string)
            .unwrap_or_default();
        let to = node
            .get_attr("to")
            .map(ToString::to_string)
            .unwrap_or_default();
        push_bounded(
            &mut self.social.rejected,
            RejectedCall {
                by: session.0.clone(),
                device: session.1,
                call_id: call_id.clone(),
                creator,
                to,
            },
            MAX_SOCIAL_LOG,
        );
        if let Some((caller, callee)) = self.social.calls.remove(&call_id)
            && callee == session.0
        {
            let end = Node::new("terminate")
                .attr("call-id", call_id)
                .attr(
                    "call-creator",
                    Jid::new(caller.clone(), DEFAULT_USER_SERVER),
                )
                .attr("reason", "rejected_elsewhere");
            self.call_to_companions(now, &caller, 0, &callee, end, None, Some(session.1));
        }
    }

    /// `<presence>` from a companion: own availability, or a subscription.
    pub(super) fn companion_presence(
        &mut self,
        now: Timestamp,
        conn: ConnId,
        session: &(String, u16),
        node: &Node,
    ) {
        match node.attr_str("type") {
            Some(kind @ ("available" | "unavailable")) => {
                if node.attr_str("name").is_none_or(str::is_empty) {
                    self.social.presence_without_name += 1;
                    return;
                }
                self.set_presence(now, &session.0, kind == "available");
            }
            Some("subscribe") => {
                let Some(target) = node.attr_jid("to").and_then(|jid| self.resolve_user(&jid))
                else {
                    return;
                };
                let token = node.child("tctoken").and_then(|t| t.content_bytes());
                let valid = token.is_some_and(|token| {
                    self.social
                        .tokens
                        .get(&(target.clone(), session.0.clone()))
                        .is_some_and(|issued| issued.iter().any(|t| t == token))
                });
                let subscriptions = &mut self.social.subscriptions;
                subscriptions.retain(|(c, _, t, _)| !(*c == conn && *t == target));
                push_bounded(
                    subscriptions,
                    (conn, session.0.clone(), target.clone(), valid),
                    MAX_PRESENCE_SUBSCRIPTIONS,
                );
                let update = self.presence_for(&target, valid);
                self.send(conn, &update);
            }
            Some("unsubscribe") => {
                if let Some(target) = node.attr_jid("to").and_then(|jid| self.resolve_user(&jid)) {
                    self.social
                        .subscriptions
                        .retain(|(c, _, t, _)| !(*c == conn && *t == target));
                }
            }
            _ => {}
        }
    }

    /// `<chatstate to>` from a companion.
    pub(super) fn companion_chat_state(&mut self, session: &(String, u16), node: &Node) {
        let Some(to) = node.attr_jid("to") else {
            return;
        };
        let Some(child) = node.children().first() else {
            return;
        };
        let state = match (child.tag.as_ref(), child.attr_str("media")) {
            ("composing", Some("audio")) => "recording",
            ("composing", _) => "composing",
            ("paused", _) => "paused",
            _ => return,
        };
        let Some(sender) = self.accounts.get(&session.0).map(Account::jid) else {
            return;
        };
        if to.server == GROUP_SERVER {
            let Some(group) = self.groups.get(&to.user).cloned() else {
                return;
            };
            if !group.members.contains(&session.0) {
                return;
            }
            let stanza = Node::new("chatstate")
                .attr("from", to.to_non_device())
                .attr("participant", sender)
                .children_from([child.clone()]);
            for member in group.members.iter().filter(|m| **m != session.0) {
                self.log_chat_state(member, &session.0, &to.to_string(), state);
                self.send_to_live_companions(member, None, &stanza);
            }
            return;
        }
        let Some(target) = self.resolve_user(&to) else {
            return;
        };
        let stanza = Node::new("chatstate")
            .attr("from", sender.clone())
            .children_from([child.clone()]);
        self.log_chat_state(&target, &session.0, &sender.to_string(), state);
        self.send_to_live_companions(&target, None, &stanza);
    }

    /// A contact query of a companion; false when `node` is none.
    pub(super) fn contact_query(
        &mut self,
        conn: ConnId,
        session: &(String, u16),
        id: &str,
        node: &Node,
    ) -> bool {
        let kind = node.attr_str("type").unwrap_or_default();
        let xmlns = node.attr_str("xmlns").unwrap_or_default();
        let query = node.child("usync").and_then(|u| u.child("query"));
        let usync_contacts = xmlns == "usync"
            && query.is_some_and(|q| q.child("contact").is_some() || q.child("status").is_some());
        let ours = usync_contacts
            || matches!(
                (kind, xmlns),
                (_, "w:profile:picture") | ("get", "w:biz") | (_, "blocklist")
            );
        if !ours {
            return false;
        }
        if let Some(code) = self.social.fail_next.take() {
            let mut error = Node::new("error")
                .attr("code", code.to_string())
                .attr("text", error_text(code));
            if code == 429 {
                error = error.attr("backoff", "30");
            }
            let reply = Node::new("iq")
                .attr("from", Jid::server_jid())
                .attr("id", id.to_owned())
                .attr("type", "error")
                .children_from([error]);
            self.send(conn, &reply);
            return true;
        }
        let answer = match (kind, xmlns) {
            (_, "usync") => self.usync_contacts(id, session, node),
            ("set", "w:profile:picture") => self.set_picture_iq(id, session, node),
            (_, "w:profile:picture") => self.picture(id, session, node),
            (_, "w:biz") => self.business(id, node),
            ("get", "blocklist") => self.block_list(id, &session.0),
            (_, "blocklist") => self.change_block_list(id, &session.0, node),
            _ => iq_error(id, 400, "bad-request"),
        };
        self.send(conn, &answer);
        true
    }

    // ----- helpers ----------------------------------------------------------------------------

    fn account_or_err(&self, user: &str) -> Result<&Account, SimError> {
        self.accounts
            .get(user)
            .ok_or_else(|| SimError::UnknownAccount(user.to_owned()))
    }

    fn ringing(&self, call_id: &str) -> Result<(String, String), SimError> {
        self.social
            .calls
            .get(call_id)
            .cloned()
            .ok_or_else(|| SimError::UnknownCall(call_id.to_owned()))
    }

    /// A `<call>` from `from`'s device to every companion of `to` but `except`.
    #[allow(clippy::too_many_arguments)]
    fn call_to_companions(
        &mut self,
        now: Timestamp,
        from: &str,
        from_device: u16,
        to: &str,
        child: Node,
        notify: Option<String>,
        except: Option<u16>,
    ) {
        let companions: Vec<u16> = self
            .accounts
            .get(to)
            .map(|a| a.devices.keys().copied().filter(|&d| d != 0).collect())
            .unwrap_or_default();
        for device in companions.into_iter().filter(|d| Some(*d) != except) {
            let mut stanza = Node::new("call")
                .attr(
                    "from",
                    Jid::device(from.to_owned(), from_device, DEFAULT_USER_SERVER),
                )
                .attr("id", self.new_id())
                .attr("t", seconds(now));
            if let Some(name) = &notify {
                stanza = stanza.attr("notify", name.clone());
            }
            self.deliver(to, device, stanza.children_from([child.clone()]));
        }
    }

    /// Sends `stanza` to the companions of `user` that are connected now (presence and chat
    /// states are never queued).
    fn send_to_live_companions(&mut self, user: &str, except: Option<u16>, stanza: &Node) {
        let companions: Vec<u16> = self
            .accounts
            .get(user)
            .map(|a| a.devices.keys().copied().filter(|&d| d != 0).collect())
            .unwrap_or_default();
        for device in companions.into_iter().filter(|d| Some(*d) != except) {
            if let Some(conn) = self.device_conn(user, device) {
                self.send(conn, stanza);
            }
        }
    }

    fn log_chat_state(&mut self, account: &str, from: &str, chat: &str, state: &str) {
        push_bounded(
            &mut self.social.chat_states,
            ChatStateSeen {
                account: account.to_owned(),
                from: from.to_owned(),
                chat: chat.to_owned(),
                state: state.to_owned(),
            },
            MAX_SOCIAL_LOG,
        );
    }

    fn set_presence(&mut self, now: Timestamp, user: &str, available: bool) {
        self.social
            .presence
            .insert(user.to_owned(), (available, now / 1000));
        let live: Vec<(ConnId, bool)> = self
            .social
            .subscriptions
            .iter()
            .filter(|(conn, _, target, _)| target == user && self.conns.contains_key(conn))
            .map(|(conn, _, _, token)| (*conn, *token))
            .collect();
        self.social
            .subscriptions
            .retain(|(conn, ..)| self.conns.contains_key(conn));
        for (conn, token) in live {
            let update = self.presence_for(user, token);
            self.send(conn, &update);
        }
    }

    /// What a subscriber sees of `target` (`token`: its subscription showed a valid token).
    fn presence_for(&self, target: &str, token: bool) -> Node {
        let Some(account) = self.accounts.get(target) else {
            return Node::new("presence");
        };
        let visible = match self.privacy_setting(target, "last") {
            Some("all") => true,
            Some("contacts") => token,
            _ => false,
        };
        let node = Node::new("presence").attr("from", account.jid());
        let (online, last) = self
            .social
            .presence
            .get(target)
            .copied()
            .unwrap_or((false, 0));
        match (visible, online) {
            (false, _) => node.attr("type", "unavailable").attr("last", "deny"),
            (true, true) => node,
            (true, false) if last > 0 => node
                .attr("type", "unavailable")
                .attr("last", last.to_string()),
            (true, false) => node.attr("type", "unavailable"),
        }
    }

    fn usync_contacts(&self, id: &str, session: &(String, u16), node: &Node) -> Node {
        let Some(usync) = node.child("usync") else {
            return iq_error(id, 400, "bad-request");
        };
        let query = usync.child("query");
        let wants = |tag: &str| query.is_some_and(|q| q.child(tag).is_some());
        let users: Vec<&Node> = usync
            .child("list")
            .map(|l| l.children_by_tag("user").collect())
            .unwrap_or_default();
        if users.is_empty() || users.len() > MAX_USYNC_CONTACTS {
            return iq_error(id, 400, "bad-request");
        }
        let mut answers = Vec::new();
        for user in users {
            let asked_number = user
                .child("contact")
                .and_then(|c| c.content_bytes())
                .and_then(|b| std::str::from_utf8(b).ok())
                .map(str::to_owned);
            let account = match (&asked_number, user.attr_jid("jid")) {
                (Some(number), _) => {
                    let digits = number.trim_start_matches('+');
                    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                        return iq_error(id, 400, "bad-request");
                    }
                    Err(digits.to_owned())
                }
                (None, Some(jid)) => match self.resolve_user(&jid) {
                    Some(account) => Ok(account),
                    None => Err(jid.user.clone()),
                },
                (None, None) => return iq_error(id, 400, "bad-request"),
            };
            let account = match account {
                Err(digits) if self.accounts.contains_key(&digits) => Ok(digits),
                other => other,
            };
            let mut children = Vec::new();
            let jid = match &account {
                Ok(user) | Err(user) => Jid::new(user.clone(), DEFAULT_USER_SERVER),
            };
            if wants("contact") {
                let kind = if account.is_ok() { "in" } else { "out" };
                let mut contact = Node::new("contact").attr("type", kind);
                if let Some(number) = &asked_number {
                    contact = contact.bytes(number.clone().into_bytes());
                }
                children.push(contact);
            }
            if let Ok(user) = &account {
                let found = self.accounts.get(user);
                if wants("lid")
                    && let Some(found) = found
                {
                    children.push(Node::new("lid").attr("val", found.lid_jid()));
                }
                if wants("status") {
                    children.push(self.status_for(user, &session.0));
                }
            } else if wants("status") {
                children.push(Node::new("status").attr("code", "404"));
            }
            answers.push(Node::new("user").attr("jid", jid).children_from(children));
        }
        let reply = Node::new("usync")
            .attr("sid", usync.attr_str("sid").unwrap_or_default().to_owned())
            .children_from([Node::new("list").children_from(answers)]);
        iq_result(id, vec![reply])
    }

    /// Whether `target`'s `category` privacy lets `asker` see it (`contacts`: the target
    /// issued the asker a token, or a valid token was shown).
    fn allowed(&self, target: &str, asker: &str, category: &str, token: Option<&[u8]>) -> bool {
        if target == asker {
            return true;
        }
        let issued = self
            .social
            .tokens
            .get(&(target.to_owned(), asker.to_owned()));
        match self.privacy_setting(target, category) {
            Some("all") => true,
            Some("contacts") => match token {
                Some(token) => issued.is_some_and(|i| i.iter().any(|t| t == token)),
                None => issued.is_some(),
            },
            _ => false,
        }
    }

    fn status_for(&self, user: &str, asker: &str) -> Node {
        if !self.allowed(user, asker, "status", None) {
            return Node::new("status").attr("code", "401");
        }
        match self.social.about.get(user) {
            Some((text, t)) => Node::new("status")
                .attr("t", t.to_string())
                .bytes(text.clone().into_bytes()),
            None => Node::new("status"),
        }
    }

    fn picture(&self, id: &str, session: &(String, u16), node: &Node) -> Node {
        let Some(target) = node.attr_jid("target") else {
            return iq_error(id, 400, "bad-request");
        };
        let Some(picture) = node.child("picture") else {
            return iq_error(id, 400, "bad-request");
        };
        let kind = picture.attr_str("type").unwrap_or_default();
        if !matches!(kind, "preview" | "image") {
            return iq_error(id, 400, "bad-request");
        }
        let owner = if target.server == GROUP_SERVER {
            self.groups.get(&target.user).map(|g| g.id.clone())
        } else {
            self.resolve_user(&target)
        };
        let Some(owner) = owner else {
            return iq_error(id, 404, "item-not-found");
        };
        let token = picture.child("tctoken").and_then(|t| t.content_bytes());
        if target.server != GROUP_SERVER && !self.allowed(&owner, &session.0, "profile", token) {
            return iq_error(id, 401, "not-authorized");
        }
        let Some(picture_id) = self.social.pictures.get(&owner) else {
            return iq_error(id, 404, "item-not-found");
        };
        let path = format!("/v/t61/{owner}-{picture_id}-{kind}.jpg");
        iq_result(
            id,
            vec![
                Node::new("picture")
                    .attr("id", picture_id.clone())
                    .attr("type", kind.to_owned())
                    .attr("url", format!("https://127.0.0.1{path}"))
                    .attr("direct_path", path),
            ],
        )
    }

    fn business(&self, id: &str, node: &Node) -> Node {
        let jid = node
            .child("business_profile")
            .and_then(|b| b.child("profile"))
            .and_then(|p| p.attr_jid("jid"));
        let Some(jid) = jid else {
            return iq_error(id, 400, "bad-request");
        };
        let mut reply = Node::new("business_profile");
        if let Some(description) = self
            .resolve_user(&jid)
            .and_then(|user| self.social.business.get(&user))
        {
            reply = reply.children_from([Node::new("profile")
                .attr("jid", jid.to_non_device())
                .children_from([
                    Node::new("description").bytes(description.clone().into_bytes()),
                    Node::new("categories").children_from([Node::new("category")
                        .attr("id", "1")
                        .bytes(b"Shopping & retail".to_vec())]),
                ])]);
        }
        iq_result(id, vec![reply])
    }

    fn block_list(&self, id: &str, user: &str) -> Node {
        let items = self
            .blocked_by(user)
            .into_iter()
            .map(|blocked| Node::new("item").attr("jid", Jid::new(blocked, DEFAULT_USER_SERVER)));
        iq_result(
            id,
            vec![
                Node::new("list")
                    .attr("dhash", account_iq::empty_list_hash())
                    .children_from(items),
            ],
        )
    }

    fn change_block_list(&mut self, id: &str, user: &str, node: &Node) -> Node {
        let Some(item) = node.child("item") else {
            return iq_error(id, 400, "bad-request");
        };
        let target = item
            .attr_jid("pn_jid")
            .or_else(|| item.attr_jid("jid"))
            .and_then(|jid| self.resolve_user(&jid));
        let Some(target) = target else {
            return iq_error(id, 404, "item-not-found");
        };
        let list = self.social.blocked.entry(user.to_owned()).or_default();
        match item.attr_str("action") {
            Some("block") => {
                if !list.contains(&target) {
                    if list.len() >= MAX_BLOCKED {
                        return iq_error(id, 419, "resource-limit");
                    }
                    list.push(target);
                }
            }
            Some("unblock") => list.retain(|b| *b != target),
            _ => return iq_error(id, 400, "bad-request"),
        }
        iq_result(id, Vec::new())
    }
}

fn chat_state_child(state: &str) -> Node {
    match state {
        "recording" => Node::new("composing").attr("media", "audio"),
        "paused" => Node::new("paused"),
        _ => Node::new("composing"),
    }
}
