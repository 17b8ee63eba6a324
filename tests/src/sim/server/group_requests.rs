//! Join requests, who may add members, V4 invites and group pictures on the server side
//! (features.md §5.3-§5.5; Baileys `groups.ts` and `chats.ts`, whatsmeow `group.go`):
//!
//! - **Join requests.** A join by link to a group that needs approval files a request
//!   (`<membership_approval_request jid/>` answered). Admins list them (`get`
//!   `<membership_approval_requests/>` → one `<membership_approval_request jid request_time/>`
//!   each) and approve or reject them (`<membership_requests_action><approve|reject>
//!   <participant jid/>`): per requester `error="404"` when it asked nothing; an approved one
//!   becomes a member (announced like any add). Non-admins get 401.
//! - **Who may add.** `<member_add_mode>all_member_add|admin_add</member_add_mode>` (admins
//!   only, announced); with `all_member_add` every member may add, not remove or promote.
//! - **V4 invites.** An add refused by the user's privacy answers 403 with an
//!   `<add_request code expiration/>`; the server keeps that invite for the user, who joins
//!   with `<accept code expiration admin/>` to the group: 404 for a code it does not hold,
//!   410 once expired, 419 when the group is full; accepted, the user is added.
//! - **Pictures.** `w:profile:picture` `set` with `target=<group>` (none: our own picture) and
//!   `<picture type="image">JPEG</picture>` answers `<picture id/>`; without a child it
//!   removes the picture. Only members change a group's picture, only admins when the group is
//!   locked (401); bytes that are not a JPEG answer 406.

use std::collections::{BTreeMap, BTreeSet};

use super::*;

/// What the server keeps for join requests, add modes and V4 invites.
#[derive(Debug, Default)]
pub(super) struct GroupExtras {
    /// Group -> `(user, request time in Unix seconds)` waiting for an admin.
    pending: BTreeMap<String, Vec<(String, u64)>>,
    /// Groups where every member may add.
    all_member_add: BTreeSet<String>,
    /// `(group, user)` -> `(code, expiration)` of the V4 invites issued.
    invites: BTreeMap<(String, String), (String, u64)>,
    /// Pictures set by companions: next picture id.
    next_picture: u64,
}

/// Join requests one group keeps (oldest dropped).
const MAX_JOIN_REQUESTS: usize = 1024;

impl Server {
    /// The accounts waiting for an admin of `group` to approve them, oldest first.
    pub fn group_join_requests(&self, group: &str) -> Vec<String> {
        self.group_extras
            .pending
            .get(group)
            .map(|p| p.iter().map(|(u, _)| u.clone()).collect())
            .unwrap_or_default()
    }

    /// Whether every member of `group` may add members.
    pub fn group_members_can_add(&self, group: &str) -> bool {
        self.group_extras.all_member_add.contains(group)
    }

    /// The V4 invite issued to `user` for `group`, as `(code, expiration)`.
    pub fn group_invite_for(&self, group: &str, user: &str) -> Option<(String, u64)> {
        self.group_extras
            .invites
            .get(&(group.to_owned(), user.to_owned()))
            .cloned()
    }

    /// Files `user`'s request to join `group` (a join by link to a group needing approval).
    pub(super) fn file_join_request(&mut self, now: Timestamp, group: &str, user: &str) {
        let pending = self
            .group_extras
            .pending
            .entry(group.to_owned())
            .or_default();
        if pending.iter().any(|(u, _)| u == user) {
            return;
        }
        if pending.len() >= MAX_JOIN_REQUESTS {
            pending.remove(0);
        }
        pending.push((user.to_owned(), now / 1000));
    }

    /// Keeps the V4 invite an add refused by privacy answered.
    pub(super) fn keep_invite(&mut self, group: &str, user: &str, code: &str, expiration: u64) {
        self.group_extras.invites.insert(
            (group.to_owned(), user.to_owned()),
            (code.to_owned(), expiration),
        );
    }

    /// Whether `actor` may add members to `group`: an admin, or any member under
    /// `all_member_add`.
    pub(super) fn may_add(&self, group: &str, actor: &str) -> bool {
        self.is_group_admin(group, actor)
            || (self.group_extras.all_member_add.contains(group)
                && self
                    .groups
                    .get(group)
                    .is_some_and(|g| g.members.iter().any(|m| m == actor)))
    }

    /// The `<member_add_mode>` child of a group's metadata.
    pub(super) fn member_add_mode_node(&self, group: &str) -> Node {
        Node::new("member_add_mode").bytes(if self.group_members_can_add(group) {
            b"all_member_add".to_vec()
        } else {
            b"admin_add".to_vec()
        })
    }

    /// `set` `<member_add_mode>` by an admin: the note to announce.
    pub(super) fn set_member_add_mode(
        &mut self,
        group: &str,
        child: &Node,
    ) -> Result<Node, (u16, &'static str)> {
        match child.content_bytes() {
            Some(b"all_member_add") => {
                self.group_extras.all_member_add.insert(group.to_owned());
            }
            Some(b"admin_add") => {
                self.group_extras.all_member_add.remove(group);
            }
            _ => return Err((400, "bad-request")),
        }
        Ok(child.clone())
    }

    /// The admin-only join-request IQs; `None` when `child` is none of them.
    pub(super) fn join_request_iq(
        &mut self,
        now: Timestamp,
        group: &str,
        actor: &str,
        kind: &str,
        child: &Node,
    ) -> Option<Result<Vec<Node>, (u16, &'static str)>> {
        let tag = child.tag.as_ref();
        if !matches!(
            (kind, tag),
            ("get", "membership_approval_requests") | ("set", "membership_requests_action")
        ) {
            return None;
        }
        if !self.is_group_admin(group, actor) {
            return Some(Err((401, "not-authorized")));
        }
        if kind == "get" {
            let requests = self
                .group_extras
                .pending
                .get(group)
                .into_iter()
                .flatten()
                .map(|(user, t)| {
                    Node::new("membership_approval_request")
                        .attr("jid", Jid::new(user.clone(), DEFAULT_USER_SERVER))
                        .attr("request_time", t.to_string())
                });
            return Some(Ok(vec![
                Node::new("membership_approval_requests").children_from(requests),
            ]));
        }
        let Some(action) = child
            .children()
            .first()
            .filter(|a| matches!(a.tag.as_ref(), "approve" | "reject"))
        else {
            return Some(Err((400, "bad-request")));
        };
        let approve = action.tag.as_ref() == "approve";
        let mut results = Vec::new();
        for jid in action
            .children_by_tag("participant")
            .filter_map(|p| p.attr_jid("jid"))
        {
            let user = self.resolve_user(&jid.to_non_device());
            let pending = self
                .group_extras
                .pending
                .entry(group.to_owned())
                .or_default();
            let at = user
                .as_ref()
                .and_then(|u| pending.iter().position(|(p, _)| p == u));
            let mut node = Node::new("participant").attr("jid", jid.to_non_device());
            match (at, user) {
                (Some(at), Some(user)) => {
                    pending.remove(at);
                    let full = self
                        .groups
                        .get(group)
                        .is_some_and(|g| g.members.len() >= self.group_rules.max_size);
                    if approve && full {
                        node = node.attr("error", "419");
                    } else if approve {
                        let _ = self.add_group_member(now, group, actor, &user);
                    }
                }
                _ => node = node.attr("error", "404"),
            }
            results.push(node);
        }
        Some(Ok(vec![
            Node::new("membership_requests_action")
                .children_from([Node::new(action.tag.to_string()).children_from(results)]),
        ]))
    }

    /// `<accept code expiration admin/>` from a non-member holding a V4 invite.
    pub(super) fn accept_v4_invite(
        &mut self,
        now: Timestamp,
        group: &str,
        actor: &str,
        accept: &Node,
    ) -> Result<Vec<Node>, (u16, &'static str)> {
        let code = accept.attr_str("code").ok_or((400, "bad-request"))?;
        let g = self.groups.get(group).ok_or((404, "item-not-found"))?;
        if g.members.iter().any(|m| m == actor) {
            return Err((409, "conflict"));
        }
        let key = (group.to_owned(), actor.to_owned());
        let (held, expiration) = self
            .group_extras
            .invites
            .get(&key)
            .cloned()
            .ok_or((404, "item-not-found"))?;
        if held != code {
            return Err((404, "item-not-found"));
        }
        if expiration <= now / 1000 {
            return Err((410, "gone"));
        }
        if g.members.len() >= self.group_rules.max_size {
            return Err((419, "resource-limit"));
        }
        self.group_extras.invites.remove(&key);
        let _ = self.add_group_member(now, group, actor, actor);
        Ok(Vec::new())
    }

    /// `w:profile:picture` `set`: a group's picture (members; admins when locked) or the
    /// account's own.
    pub(super) fn set_picture_iq(
        &mut self,
        id: &str,
        session: &(String, u16),
        node: &Node,
    ) -> Node {
        let owner = match node.attr_jid("target") {
            None => session.0.clone(),
            Some(target) if target.server == GROUP_SERVER => {
                let Some(g) = self.groups.get(&target.user) else {
                    return iq_error(id, 404, "item-not-found");
                };
                if !g.members.contains(&session.0) {
                    return iq_error(id, 403, "forbidden");
                }
                if g.locked && !self.is_group_admin(&target.user, &session.0) {
                    return iq_error(id, 401, "not-authorized");
                }
                target.user
            }
            Some(_) => return iq_error(id, 401, "not-authorized"),
        };
        let Some(picture) = node.child("picture") else {
            self.set_profile_picture(&owner, None);
            return iq_result(id, Vec::new());
        };
        let jpeg = picture.content_bytes().unwrap_or_default();
        if picture.attr_str("type") != Some("image") || !jpeg.starts_with(&[0xFF, 0xD8, 0xFF]) {
            return iq_error(id, 406, "not-acceptable");
        }
        self.group_extras.next_picture += 1;
        let picture_id = (1_700_000_000 + self.group_extras.next_picture).to_string();
        self.set_profile_picture(&owner, Some(&picture_id));
        iq_result(id, vec![Node::new("picture").attr("id", picture_id)])
    }
}
