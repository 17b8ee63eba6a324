//! Group administration on the server side (features.md §5; whatsmeow `group.go`, Baileys
//! `groups.ts`, whatsapp-web.js error codes): create with per-participant errors, metadata,
//! the groups an account is in, add / remove / promote / demote with admin rules and a
//! result per participant, subject, description, settings, invite codes, join by code,
//! leave. Every change is announced to the members' devices with a `w:gp2` notification.
//!
//! Rules the simulation enforces: only members read a group (403), only admins change
//! members, settings and invite codes (401), a locked group's subject and description are
//! admins' too; the super-admin (the creator) cannot be removed or demoted by others. Users
//! whose privacy lets only contacts add them answer 403 with an `<add_request>` invite; a
//! group holds at most [`GroupRules::max_size`] members (419).

use std::collections::BTreeSet;

use super::*;

/// The server's group rules and faults (mock-server `POST /group-options`).
#[derive(Debug, Clone)]
pub struct GroupRules {
    /// Accounts whose privacy lets only contacts add them to groups.
    pub add_restricted: BTreeSet<String>,
    /// Most members a group may have.
    pub max_size: usize,
    /// The next this-many group IQs are answered 429 (rate limited).
    pub rate_limit_next: u32,
}

impl Default for GroupRules {
    fn default() -> GroupRules {
        GroupRules {
            add_restricted: BTreeSet::new(),
            max_size: 1024,
            rate_limit_next: 0,
        }
    }
}

/// What became of one participant of a change, as the server answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimParticipantResult {
    /// The account (phone number) or, for an unknown user, the JID asked for.
    pub user: String,
    /// The error code, `None` for success.
    pub error: Option<u16>,
}

impl Server {
    /// The group rules and faults, to change.
    pub fn group_rules_mut(&mut self) -> &mut GroupRules {
        &mut self.group_rules
    }

    /// `actor` (a member account) adds, removes, promotes or demotes `users` (accounts or
    /// unknown numbers) in `group`, as its own phone would: the admin rules apply, members
    /// are told, and each participant gets its result (its code, `None` for success).
    pub fn group_change_participants(
        &mut self,
        now: Timestamp,
        group: &str,
        actor: &str,
        action: &str,
        users: &[&str],
    ) -> Result<Vec<SimParticipantResult>, SimError> {
        if !self.groups.contains_key(group) {
            return Err(SimError::UnknownGroup(group.to_owned()));
        }
        if !self.is_group_admin(group, actor)
            || !matches!(action, "add" | "remove" | "promote" | "demote")
        {
            return Err(SimError::UnknownAccount(actor.to_owned()));
        }
        let jids: Vec<Jid> = users
            .iter()
            .map(|u| Jid::new((*u).to_owned(), DEFAULT_USER_SERVER))
            .collect();
        Ok(self
            .change_participants(now, group, actor, action, &jids)
            .into_iter()
            .map(|(jid, error, _)| SimParticipantResult {
                user: jid.user,
                error,
            })
            .collect())
    }

    /// A `w:g2` IQ of a logged-in device.
    pub(super) fn group_iq(
        &mut self,
        now: Timestamp,
        conn: ConnId,
        session: &(String, u16),
        id: &str,
        node: &Node,
    ) {
        if self.group_rules.rate_limit_next > 0 {
            self.group_rules.rate_limit_next -= 1;
            let reply = iq_error(id, 429, "rate-overlimit");
            return self.send(conn, &reply);
        }
        let reply = match self.group_answer(now, session, node) {
            Ok(children) => iq_result(id, children),
            Err((code, text)) => iq_error(id, code, text),
        };
        self.send(conn, &reply);
    }

    fn group_answer(
        &mut self,
        now: Timestamp,
        session: &(String, u16),
        node: &Node,
    ) -> Result<Vec<Node>, (u16, &'static str)> {
        let actor = session.0.clone();
        let kind = node.attr_str("type").unwrap_or_default();
        let child = node.children().first().ok_or((400, "bad-request"))?;
        let to = node.attr_jid("to").ok_or((400, "bad-request"))?;
        if to.server != GROUP_SERVER {
            return Err((400, "bad-request"));
        }
        if to.user.is_empty() {
            return match (kind, child.tag.as_ref()) {
                ("set", "create") => self.group_create_iq(now, &actor, child),
                ("get", "participating") => Ok(vec![self.groups_of(&actor)]),
                ("set", "invite") => self.group_join(now, &actor, child),
                ("set", "leave") => {
                    let group = child
                        .child("group")
                        .and_then(|g| g.attr_jid("id"))
                        .ok_or((400, "bad-request"))?;
                    self.member_check(&group.user, &actor)?;
                    let _ = self.remove_group_member(now, &group.user, &actor, &actor);
                    Ok(Vec::new())
                }
                _ => Err((400, "bad-request")),
            };
        }
        let group = to.user;
        if (kind, child.tag.as_ref()) == ("set", "accept") {
            return self.accept_v4_invite(now, &group, &actor, child);
        }
        self.member_check(&group, &actor)?;
        if let Some(answer) = self.join_request_iq(now, &group, &actor, kind, child) {
            return answer;
        }
        let admin = self.is_group_admin(&group, &actor);
        match (kind, child.tag.as_ref()) {
            ("get", "query") => Ok(self
                .groups
                .get(&group)
                .map(|g| self.group_node(g))
                .into_iter()
                .collect()),
            ("get", "invite") | ("set", "invite") if !admin => Err((401, "not-authorized")),
            ("get", "invite") => Ok(vec![self.invite_node(&group)]),
            ("set", "invite") => {
                let code = self.new_invite_code();
                if let Some(g) = self.groups.get_mut(&group) {
                    g.invite_code = code;
                }
                Ok(vec![self.invite_node(&group)])
            }
            ("set", "add" | "remove" | "promote" | "demote") => {
                let member_adds = child.tag.as_ref() == "add" && self.may_add(&group, &actor);
                if !(admin || member_adds) {
                    return Err((401, "not-authorized"));
                }
                let users: Vec<Jid> = child
                    .children_by_tag("participant")
                    .filter_map(|p| p.attr_jid("jid"))
                    .collect();
                let action = child.tag.to_string();
                let results = self.change_participants(now, &group, &actor, &action, &users);
                let nodes = results.into_iter().map(|r| {
                    let mut p = Node::new("participant").attr("jid", r.0);
                    if let Some(code) = r.1 {
                        p = p.attr("error", code.to_string());
                    }
                    if let Some((code, expiration)) = r.2 {
                        p = p.children_from([Node::new("add_request")
                            .attr("code", code)
                            .attr("expiration", expiration.to_string())]);
                    }
                    p
                });
                Ok(vec![Node::new(action).children_from(nodes)])
            }
            ("set", "subject" | "description")
                if !admin && self.groups.get(&group).is_some_and(|g| g.locked) =>
            {
                Err((401, "not-authorized"))
            }
            ("set", "subject") => {
                let subject = child
                    .content_bytes()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .filter(|s| !s.is_empty() && s.len() <= 100)
                    .ok_or((406, "not-acceptable"))?;
                if let Some(g) = self.groups.get_mut(&group) {
                    g.subject = subject.clone();
                }
                let note = Node::new("subject")
                    .attr("subject", subject)
                    .attr("s_t", seconds(now))
                    .attr("s_o", Jid::new(actor.clone(), DEFAULT_USER_SERVER));
                self.announce_group(now, &group, &actor, vec![note], &[]);
                Ok(Vec::new())
            }
            ("set", "description") => {
                let current = self.groups.get(&group).and_then(|g| g.description.clone());
                if child.attr_str("prev") != current.as_ref().map(|(id, _)| id.as_str()) {
                    return Err((409, "conflict"));
                }
                let deleted = child.attr_str("delete") == Some("true");
                let new = if deleted {
                    None
                } else {
                    let id = child.attr_str("id").ok_or((400, "bad-request"))?.to_owned();
                    let text = child
                        .child("body")
                        .and_then(Node::content_bytes)
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .ok_or((400, "bad-request"))?;
                    Some((id, text))
                };
                if let Some(g) = self.groups.get_mut(&group) {
                    g.description = new.clone();
                }
                let note = match new {
                    Some((id, text)) => Node::new("description")
                        .attr("id", id)
                        .children_from([Node::new("body").bytes(text.into_bytes())]),
                    None => Node::new("description").children_from([Node::new("delete")]),
                };
                self.announce_group(now, &group, &actor, vec![note], &[]);
                Ok(Vec::new())
            }
            ("set", tag) if !admin && is_setting(tag) => Err((401, "not-authorized")),
            ("set", tag) if is_setting(tag) => {
                let note = self.apply_setting(&group, child)?;
                self.announce_group(now, &group, &actor, vec![note], &[]);
                Ok(Vec::new())
            }
            _ => Err((400, "bad-request")),
        }
    }

    fn member_check(&self, group: &str, user: &str) -> Result<(), (u16, &'static str)> {
        match self.groups.get(group) {
            None => Err((404, "item-not-found")),
            Some(g) if !g.members.iter().any(|m| m == user) => Err((403, "forbidden")),
            Some(_) => Ok(()),
        }
    }

    /// Whether `user` is an admin (or the super-admin) of `group`.
    pub fn is_group_admin(&self, group: &str, user: &str) -> bool {
        self.groups
            .get(group)
            .is_some_and(|g| g.creator == user || g.admins.iter().any(|a| a == user))
    }

    fn invite_node(&self, group: &str) -> Node {
        let code = self
            .groups
            .get(group)
            .map(|g| g.invite_code.clone())
            .unwrap_or_default();
        Node::new("invite").attr("code", code)
    }

    pub(super) fn new_invite_code(&mut self) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..22)
            .map(|_| {
                let at = self.rng.below(ALPHABET.len() as u64) as usize;
                char::from(ALPHABET.get(at).copied().unwrap_or(b'A'))
            })
            .collect()
    }

    fn apply_setting(&mut self, group: &str, child: &Node) -> Result<Node, (u16, &'static str)> {
        let g = self.groups.get_mut(group).ok_or((404, "item-not-found"))?;
        match child.tag.as_ref() {
            "announcement" => g.announce = true,
            "not_announcement" => g.announce = false,
            "locked" => g.locked = true,
            "unlocked" => g.locked = false,
            "ephemeral" => {
                let seconds: u32 = child
                    .attr_str("expiration")
                    .and_then(|e| e.parse().ok())
                    .filter(|s| [86_400, 604_800, 7_776_000].contains(s))
                    .ok_or((400, "bad-request"))?;
                g.ephemeral = seconds;
            }
            "not_ephemeral" => g.ephemeral = 0,
            "member_add_mode" => return self.set_member_add_mode(group, child),
            "membership_approval_mode" => {
                let state = child.child("group_join").and_then(|j| j.attr_str("state"));
                g.approval = match state {
                    Some("on") => true,
                    Some("off") => false,
                    _ => return Err((400, "bad-request")),
                };
            }
            _ => return Err((400, "bad-request")),
        }
        Ok(child.clone())
    }

    /// Applies an add / remove / promote / demote of `users` by `actor` (an admin) and
    /// announces each success; returns per participant its JID, error code and invite.
    #[allow(clippy::type_complexity)]
    fn change_participants(
        &mut self,
        now: Timestamp,
        group: &str,
        actor: &str,
        action: &str,
        users: &[Jid],
    ) -> Vec<(Jid, Option<u16>, Option<(String, u64)>)> {
        let mut results = Vec::new();
        for jid in users {
            let account = self.resolve_user(&jid.to_non_device());
            let (error, invite) = match account {
                None => (Some(404), None),
                Some(user) => self.change_one(now, group, actor, action, &user),
            };
            results.push((jid.to_non_device(), error, invite));
        }
        results
    }

    fn change_one(
        &mut self,
        now: Timestamp,
        group: &str,
        actor: &str,
        action: &str,
        user: &str,
    ) -> (Option<u16>, Option<(String, u64)>) {
        let Some(g) = self.groups.get(group) else {
            return (Some(404), None);
        };
        let member = g.members.iter().any(|m| m == user);
        let superadmin = g.creator == user;
        match action {
            "add" if member => (Some(409), None),
            "add" if g.members.len() >= self.group_rules.max_size => (Some(419), None),
            "add" if self.group_rules.add_restricted.contains(user) => {
                let code = self.new_invite_code();
                let expiration = now / 1000 + 3 * 24 * 3600;
                self.keep_invite(group, user, &code, expiration);
                (Some(403), Some((code, expiration)))
            }
            "add" => {
                let _ = self.add_group_member(now, group, actor, user);
                (None, None)
            }
            _ if !member => (Some(404), None),
            "remove" | "demote" if superadmin && actor != user => (Some(401), None),
            "remove" => {
                let _ = self.remove_group_member(now, group, actor, user);
                (None, None)
            }
            "promote" | "demote" => {
                if let Some(g) = self.groups.get_mut(group) {
                    g.admins.retain(|a| a != user);
                    if action == "promote" {
                        g.admins.push(user.to_owned());
                    }
                }
                let note = Node::new(action.to_owned()).children_from([Node::new("participant")
                    .attr("jid", Jid::new(user.to_owned(), DEFAULT_USER_SERVER))]);
                self.announce_group(now, group, actor, vec![note], &[]);
                (None, None)
            }
            _ => (Some(400), None),
        }
    }

    fn group_create_iq(
        &mut self,
        now: Timestamp,
        actor: &str,
        create: &Node,
    ) -> Result<Vec<Node>, (u16, &'static str)> {
        let subject = create.attr_str("subject").unwrap_or_default().to_owned();
        if subject.is_empty() || subject.len() > 100 {
            return Err((406, "not-acceptable"));
        }
        let asked: Vec<Jid> = create
            .children_by_tag("participant")
            .filter_map(|p| p.attr_jid("jid"))
            .collect();
        let jid = self
            .create_group(now, actor, &subject, &[])
            .map_err(|_| (400, "bad-request"))?;
        let results = self.change_participants(now, &jid.user, actor, "add", &asked);
        let mut group = self
            .groups
            .get(&jid.user)
            .map(|g| self.group_node(g))
            .ok_or((500, "internal-server-error"))?;
        let failed = results.into_iter().filter_map(|(jid, error, invite)| {
            let mut p = Node::new("participant")
                .attr("jid", jid)
                .attr("error", error?.to_string());
            if let Some((code, expiration)) = invite {
                p = p.children_from([Node::new("add_request")
                    .attr("code", code)
                    .attr("expiration", expiration.to_string())]);
            }
            Some(p)
        });
        let mut children = group.children().to_vec();
        children.extend(failed);
        group = group.children_from(children);
        Ok(vec![group])
    }

    fn groups_of(&self, user: &str) -> Node {
        Node::new("groups").children_from(
            self.groups
                .values()
                .filter(|g| g.members.iter().any(|m| m == user))
                .map(|g| self.group_node(g)),
        )
    }

    fn group_join(
        &mut self,
        now: Timestamp,
        actor: &str,
        invite: &Node,
    ) -> Result<Vec<Node>, (u16, &'static str)> {
        let code = invite.attr_str("code").ok_or((400, "bad-request"))?;
        let group = self
            .groups
            .values()
            .find(|g| g.invite_code == code)
            .map(|g| {
                (
                    g.id.clone(),
                    g.approval,
                    g.members.iter().any(|m| m == actor),
                )
            })
            .ok_or((410, "gone"))?;
        let (id, approval, member) = group;
        let jid = Jid::new(id.clone(), GROUP_SERVER);
        if member {
            return Err((304, "already-member"));
        }
        if approval {
            self.file_join_request(now, &id, actor);
            return Ok(vec![
                Node::new("membership_approval_request").attr("jid", jid),
            ]);
        }
        if self
            .groups
            .get(&id)
            .is_some_and(|g| g.members.len() >= self.group_rules.max_size)
        {
            return Err((419, "resource-limit"));
        }
        let _ = self.add_group_member(now, &id, actor, actor);
        Ok(vec![Node::new("group").attr("jid", jid)])
    }

    /// `<notification type="w:gp2" from=group participant=actor>children</notification>` to every
    /// companion of the members and of `also`.
    pub(super) fn announce_group(
        &mut self,
        now: Timestamp,
        group: &str,
        actor: &str,
        children: Vec<Node>,
        also: &[String],
    ) {
        let id = self.new_id();
        let notification = Node::new("notification")
            .attr("from", Jid::new(group.to_owned(), GROUP_SERVER))
            .attr("id", id)
            .attr("type", "w:gp2")
            .attr("t", seconds(now))
            .attr(
                "participant",
                Jid::new(actor.to_owned(), DEFAULT_USER_SERVER),
            )
            .children_from(children);
        let mut told: Vec<String> = self
            .groups
            .get(group)
            .map(|g| g.members.clone())
            .unwrap_or_default();
        told.extend(also.iter().cloned());
        for member in told {
            let devices: Vec<u16> = self
                .accounts
                .get(&member)
                .map(|a| a.devices.keys().copied().filter(|&d| d != 0).collect())
                .unwrap_or_default();
            for device in devices {
                self.deliver(&member, device, notification.clone());
            }
        }
    }
}

fn is_setting(tag: &str) -> bool {
    matches!(
        tag,
        "announcement"
            | "not_announcement"
            | "locked"
            | "unlocked"
            | "ephemeral"
            | "not_ephemeral"
            | "membership_approval_mode"
            | "member_add_mode"
    )
}
