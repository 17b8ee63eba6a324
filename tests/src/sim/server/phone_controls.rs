//! Phone controls: the tests' hands on the world. Accounts with their primary phones, groups,
//! and what a phone does to a companion (scan its QR, type its code, refresh its registration,
//! unlink it).

use super::*;

impl Server {
    /// Creates an account for phone number `user` (digits) with its primary phone, whose keys
    /// come from the server's seed. Returns the account's LID user.
    pub fn create_account(&mut self, user: &str, push_name: &str) -> Result<String, SimError> {
        if self.accounts.contains_key(user) {
            return Err(SimError::AccountExists(user.to_owned()));
        }
        let lid = format!(
            "{}",
            100_000_000_000_000 + self.rng.below(900_000_000_000_000)
        );
        let phone = Phone::new(self.rng.fork_seed());
        let mut devices = BTreeMap::new();
        devices.insert(
            0,
            Device {
                id: 0,
                noise_public: None,
                identity_public: phone.identity_public(),
                registration_id: phone.registration_id(),
                signed_prekey: phone.signed_prekey().clone(),
                prekeys: phone
                    .prekeys()
                    .into_iter()
                    .map(|key| (key.id, key.public))
                    .collect(),
                key_index: 0,
                name: "phone".to_owned(),
                platform_type: 0,
                prekeys_low_notified: false,
                offline: VecDeque::new(),
                unacked: Vec::new(),
            },
        );
        let account = Account {
            user: user.to_owned(),
            lid: lid.clone(),
            push_name: push_name.to_owned(),
            raw_id: self.rng.next_u32(),
            phone,
            devices,
            next_device_id: 1,
            next_key_index: 1,
            key_index_lists: Vec::new(),
            key_index_list_fault: KeyIndexListFault::Honest,
            sim_companions: BTreeMap::new(),
        };
        self.lids.insert(lid.clone(), user.to_owned());
        self.accounts.insert(user.to_owned(), account);
        Ok(lid)
    }

    /// The account with phone number `user`.
    pub fn account(&self, user: &str) -> Option<&Account> {
        self.accounts.get(user)
    }

    /// Every account, by phone number.
    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.accounts.values()
    }

    /// Creates a phone-number-addressed group of `creator` with `members` (phone numbers; the
    /// creator is added) and returns its JID.
    pub fn create_group(
        &mut self,
        now: Timestamp,
        creator: &str,
        subject: &str,
        members: &[&str],
    ) -> Result<Jid, SimError> {
        self.create_group_addressed(now, creator, subject, members, false)
    }

    /// Creates a group as [`Server::create_group`], addressed by LID when `lid` is set (as
    /// WhatsApp makes new groups now).
    pub fn create_group_addressed(
        &mut self,
        now: Timestamp,
        creator: &str,
        subject: &str,
        members: &[&str],
        lid: bool,
    ) -> Result<Jid, SimError> {
        let mut list = vec![creator.to_owned()];
        for member in members {
            if !self.accounts.contains_key(*member) {
                return Err(SimError::UnknownAccount((*member).to_owned()));
            }
            if !list.iter().any(|m| m == member) {
                list.push((*member).to_owned());
            }
        }
        if !self.accounts.contains_key(creator) {
            return Err(SimError::UnknownAccount(creator.to_owned()));
        }
        let id = format!("120363{:012}", self.rng.below(1_000_000_000_000));
        let invite_code = self.new_invite_code();
        self.groups.insert(
            id.clone(),
            Group {
                id: id.clone(),
                subject: subject.to_owned(),
                creator: creator.to_owned(),
                creation: now / 1000,
                members: list,
                past_members: Vec::new(),
                lid_addressed: lid,
                admins: Vec::new(),
                description: None,
                announce: false,
                locked: false,
                approval: false,
                ephemeral: 0,
                invite_code,
            },
        );
        Ok(Jid::new(id, GROUP_SERVER))
    }

    /// The group with this id (the user part of its JID).
    pub fn group(&self, id: &str) -> Option<&Group> {
        self.groups.get(id)
    }

    /// The account with phone number `user`, mutably (for the phone's own messaging).
    pub fn account_mut(&mut self, user: &str) -> Option<&mut Account> {
        self.accounts.get_mut(user)
    }

    /// The phone of `user` scans the QR text a companion shows: it checks the fields against
    /// the unpaired connection that holds the ref (live ref, same Noise and identity keys, the
    /// client type of its platform when the QR has the fifth field), signs a device identity with the account key
    /// and the QR's adv secret, and the server sends pair-success.
    pub fn phone_scan_qr(
        &mut self,
        now: Timestamp,
        user: &str,
        qr: &str,
    ) -> Result<ConnId, SimError> {
        if !self.accounts.contains_key(user) {
            return Err(SimError::UnknownAccount(user.to_owned()));
        }
        let scan = QrScan::parse(qr)?;
        let conn = self
            .conns
            .iter()
            .find_map(|(&id, conn)| match &conn.stage {
                Stage::Unpaired(reg) if reg.refs.iter().any(|(r, _)| *r == scan.reference) => {
                    Some(id)
                }
                _ => None,
            })
            .ok_or_else(|| SimError::UnknownRef(scan.reference.clone()))?;
        let Some(Stage::Unpaired(reg)) = self.conns.get(&conn).map(|c| &c.stage) else {
            return Err(SimError::UnknownConnection(conn));
        };
        let live = reg
            .refs
            .iter()
            .any(|(r, expires)| *r == scan.reference && now < *expires);
        if !live {
            return Err(SimError::RefExpired);
        }
        if scan.noise_public != reg.noise_public || scan.identity_public != reg.identity_public {
            return Err(SimError::KeyMismatch);
        }
        // The four-field QR of older companions names no client type: nothing to compare.
        let expected = client_type_of_platform(reg.platform_type);
        if let Some(found) = scan.client_type
            && found != expected
        {
            return Err(SimError::ClientTypeMismatch { expected, found });
        }
        self.start_pairing(now, conn, user, &scan.adv_secret);
        Ok(conn)
    }

    /// The user types `code` on the phone of `user`: the phone answers the latest
    /// `companion_hello` for this number with `primary_hello`. A wrong code is not detected
    /// here (as on a real phone); the key bundle then fails to open.
    pub fn phone_enter_code(
        &mut self,
        now: Timestamp,
        user: &str,
        code: &str,
    ) -> Result<ConnId, SimError> {
        if !self.accounts.contains_key(user) {
            return Err(SimError::UnknownAccount(user.to_owned()));
        }
        let (conn, wrapped, reference) = self
            .conns
            .iter()
            .rev()
            .find_map(|(&id, conn)| match &conn.stage {
                Stage::Unpaired(reg) => reg.link.as_ref().and_then(|link| {
                    (link.user == user).then(|| {
                        (
                            id,
                            link.wrapped_companion_ephemeral.clone(),
                            link.reference.clone(),
                        )
                    })
                }),
                _ => None,
            })
            .ok_or_else(|| SimError::NoCodeRequested(user.to_owned()))?;
        let account = self
            .accounts
            .get_mut(user)
            .ok_or_else(|| SimError::UnknownAccount(user.to_owned()))?;
        let hello = account.phone.primary_hello(code, &wrapped)?;
        if let Some(Stage::Unpaired(reg)) = self.conns.get_mut(&conn).map(|c| &mut c.stage)
            && let Some(link) = reg.link.as_mut()
        {
            link.hello_sent = true;
        }
        let id = self.new_id();
        let node = Node::new("notification")
            .attr("from", Jid::server_jid())
            .attr("id", id)
            .attr("type", "link_code_companion_reg")
            .attr("t", seconds(now))
            .children_from([Node::new("link_code_companion_reg")
                .attr("stage", "primary_hello")
                .children_from([
                    bytes_node("link_code_pairing_ref", reference),
                    bytes_node(
                        "link_code_pairing_wrapped_primary_ephemeral_pub",
                        hello.wrapped_primary_ephemeral.to_vec(),
                    ),
                    bytes_node("primary_identity_pub", hello.primary_identity.to_vec()),
                ])]);
        self.send(conn, &node);
        Ok(conn)
    }

    /// Sends `<notification type="companion_reg_refresh">` to an unpaired connection
    /// (transport notes §4.5): the companion must make a new adv secret and re-show its QR.
    pub fn send_companion_reg_refresh(
        &mut self,
        now: Timestamp,
        conn: ConnId,
    ) -> Result<(), SimError> {
        if !matches!(
            self.conns.get(&conn).map(|c| &c.stage),
            Some(Stage::Unpaired(_))
        ) {
            return Err(SimError::UnknownConnection(conn));
        }
        let id = self.new_id();
        let node = Node::new("notification")
            .attr("from", Jid::server_jid())
            .attr("id", id)
            .attr("type", "companion_reg_refresh")
            .attr("t", seconds(now))
            .children_from([Node::new("companion_reg_refresh")]);
        self.send(conn, &node);
        Ok(())
    }

    /// The phone unlinks a companion: the device is deleted, the phone signs the new
    /// key-index list, and the device's open connection gets `401 device_removed`.
    pub fn remove_device(&mut self, user: &str, device: u16) -> Result<(), SimError> {
        let account = self
            .accounts
            .get_mut(user)
            .ok_or_else(|| SimError::UnknownAccount(user.to_owned()))?;
        if device == 0 || account.devices.remove(&device).is_none() {
            return Err(SimError::UnknownDevice(user.to_owned(), device));
        }
        if let Some(companion) = account.sim_companions.get_mut(&device) {
            companion.linked = false;
        }
        Self::sign_device_list(account, None);
        if let Some(conn) = self.device_conn(user, device) {
            let _ = self.send_stream_error(conn, StreamErrorKind::DeviceRemoved);
        }
        Ok(())
    }
}
