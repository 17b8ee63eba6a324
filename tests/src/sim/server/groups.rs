//! Group membership changes: a participant added or removed (or leaving), announced to the
//! devices of the members with `<notification type="w:gp2">` (features.md §5.6; whatsmeow
//! `notification.go`, Baileys `groups.ts`), and a fault that keeps delivering group messages to
//! the devices of members who are gone.

use super::*;

impl Server {
    /// `actor` (a member, or the participant itself when it leaves) removes `user` from the
    /// group `group` (its id, the user part of the JID): the server stops routing the group's
    /// messages to it and tells every device of the remaining members and of `user`.
    pub fn remove_group_member(
        &mut self,
        now: Timestamp,
        group: &str,
        actor: &str,
        user: &str,
    ) -> Result<(), SimError> {
        let entry = self
            .groups
            .get_mut(group)
            .ok_or_else(|| SimError::UnknownGroup(group.to_owned()))?;
        let Some(at) = entry.members.iter().position(|m| m == user) else {
            return Err(SimError::UnknownAccount(user.to_owned()));
        };
        entry.members.remove(at);
        entry.admins.retain(|a| a != user);
        entry.past_members.retain(|m| m != user);
        entry.past_members.push(user.to_owned());
        self.announce_participants(now, group, actor, "remove", user, &[user.to_owned()]);
        Ok(())
    }

    /// `actor` adds `user` (an existing account) to the group `group`: the server routes the
    /// group's messages to it from now on and tells every device of the members.
    pub fn add_group_member(
        &mut self,
        now: Timestamp,
        group: &str,
        actor: &str,
        user: &str,
    ) -> Result<(), SimError> {
        if !self.accounts.contains_key(user) {
            return Err(SimError::UnknownAccount(user.to_owned()));
        }
        let entry = self
            .groups
            .get_mut(group)
            .ok_or_else(|| SimError::UnknownGroup(group.to_owned()))?;
        if !entry.members.iter().any(|m| m == user) {
            entry.members.push(user.to_owned());
        }
        entry.past_members.retain(|m| m != user);
        self.announce_participants(now, group, actor, "add", user, &[]);
        Ok(())
    }

    /// A fault: group messages also reach every device of the group's past members and every
    /// unlinked companion the simulation plays of its members (as if the server, or someone
    /// reading its traffic, kept handing them out).
    pub fn leak_group_messages_to_past_members(&mut self, on: bool) {
        self.leak_to_past_members = on;
    }

    /// The devices a group message reaches beyond the members' devices while the leak fault is
    /// on, as `(user, device)`.
    pub(super) fn leaked_devices(&self, group: &str) -> Vec<(String, u16)> {
        let Some(entry) = self.groups.get(group).filter(|_| self.leak_to_past_members) else {
            return Vec::new();
        };
        let mut devices: Vec<(String, u16)> = entry
            .past_members
            .iter()
            .filter_map(|user| Some((user, self.accounts.get(user)?)))
            .flat_map(|(user, account)| account.devices.keys().map(move |&d| (user.clone(), d)))
            .collect();
        let everyone: Vec<String> = entry
            .members
            .iter()
            .chain(&entry.past_members)
            .cloned()
            .collect();
        devices.extend(self.unlinked_sim_companions(&everyone));
        devices
    }

    /// `<notification type="w:gp2" from=group participant=actor><add|remove><participant
    /// jid=user/></…></notification>` to every companion of the members and of `also`.
    fn announce_participants(
        &mut self,
        now: Timestamp,
        group: &str,
        actor: &str,
        action: &str,
        user: &str,
        also: &[String],
    ) {
        let child = Node::new(action.to_owned())
            .children_from([Node::new("participant")
                .attr("jid", Jid::new(user.to_owned(), DEFAULT_USER_SERVER))]);
        self.announce_group(now, group, actor, vec![child], also);
    }
}
