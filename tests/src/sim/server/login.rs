//! Login: the ClientPayload after the handshake, a registration (an unpaired companion) or a
//! device's login, `<success>` or `<failure>`.

use super::*;

impl Server {
    pub(super) fn accept_payload(
        &mut self,
        now: Timestamp,
        conn: ConnId,
        client_static: [u8; 32],
        payload: &ClientPayload,
    ) {
        if let Some(data) = &payload.device_pairing_data {
            let parsed = Registration::from_pairing_data(client_static, data);
            let Some(registration) = parsed else {
                self.refuse_login(conn, 400);
                return;
            };
            if let Some(state) = self.conns.get_mut(&conn) {
                state.stage = Stage::Unpaired(Box::new(registration));
                state.deadline = None;
            }
            self.send_pair_device(now, conn);
            return;
        }

        let user = payload.username.map(|u| u.to_string()).unwrap_or_default();
        let device = payload
            .device
            .and_then(|d| u16::try_from(d).ok())
            .unwrap_or(0);
        if let Some(reason) = self.login_failure.take() {
            self.refuse_login(conn, reason);
            return;
        }
        let known = self
            .accounts
            .get(&user)
            .and_then(|account| account.devices.get(&device))
            .is_some_and(|d| device != 0 && d.noise_public == Some(client_static));
        if !known {
            self.refuse_login(conn, 401);
            return;
        }
        // A second connection of the same device replaces the first.
        if let Some(old) = self.device_conn(&user, device) {
            self.events.push_back(ServerEvent::Replaced {
                old,
                by: conn,
                user: user.clone(),
                device,
            });
            let _ = self.send_stream_error(old, StreamErrorKind::Replaced);
        }
        let Some(account) = self.accounts.get(&user) else {
            return;
        };
        let success = Node::new("success")
            .attr("t", seconds(now))
            .attr("props", "1")
            .attr("abprops", "1")
            .attr("location", "sim")
            .attr("lid", account.device_lid(device))
            .attr("display_name", account.push_name.clone())
            .attr("creation", seconds(now));
        if let Some(state) = self.conns.get_mut(&conn) {
            state.stage = Stage::Device(DeviceSession {
                user: user.clone(),
                device,
                active: false,
            });
            state.deadline = Some(now + IDLE_TIMEOUT_MS);
        }
        self.send(conn, &success);
        // Edge routing for the next connection (transport notes §1.3): the client should send
        // it back in its pre-intro.
        let routing = format!("sim-edge-{}", self.rng.below(1_000_000)).into_bytes();
        let edge = Node::new("ib").children_from([
            Node::new("edge_routing").children_from([bytes_node("routing_info", routing)])
        ]);
        self.send(conn, &edge);
        let routing_info = self
            .conns
            .get(&conn)
            .and_then(|c| c.decoder.routing_info())
            .map(<[u8]>::to_vec);
        self.events.push_back(ServerEvent::LoggedIn {
            conn,
            user,
            device,
            routing_info,
        });
    }

    fn refuse_login(&mut self, conn: ConnId, reason: u16) {
        self.send(
            conn,
            &Node::new("failure").attr("reason", reason.to_string()),
        );
        self.events
            .push_back(ServerEvent::LoginRefused { conn, reason });
        self.close(conn, CloseReason::Failure(reason));
    }
}

impl Registration {
    /// The registration in a ClientPayload's `device_pairing_data`: `None` unless every field
    /// is there and the signed prekey's signature verifies.
    fn from_pairing_data(
        client_static: [u8; 32],
        data: &walink_core::proto::wa::client_payload::DevicePairingRegistrationData,
    ) -> Option<Registration> {
        let registration_id = be_u32(data.e_regid.as_deref()?)?;
        if data.e_keytype.as_deref() != Some(&[5u8][..]) {
            return None;
        }
        let identity_public: [u8; 32] = data.e_ident.as_deref()?.try_into().ok()?;
        let skey_id = data.e_skey_id.as_deref()?;
        if skey_id.len() != 3 {
            return None;
        }
        let signed_prekey = SignedPreKey {
            id: be_u32(skey_id)?,
            public: data.e_skey_val.as_deref()?.try_into().ok()?,
            signature: data.e_skey_sig.as_deref()?.try_into().ok()?,
        };
        let mut message = [5u8; 33];
        message[1..].copy_from_slice(&signed_prekey.public);
        if !walink_core::signal::xeddsa::verify(
            &identity_public,
            &message,
            &signed_prekey.signature,
        ) {
            return None;
        }
        let props = DeviceProps::decode(data.device_props.as_deref()?).ok()?;
        Some(Registration {
            noise_public: client_static,
            identity_public,
            registration_id,
            signed_prekey,
            platform_type: props.platform_type.unwrap_or(0),
            history: HistoryAsk::from_props(&props),
            name: props.os.unwrap_or_default(),
            refs: Vec::new(),
            pair_device_id: String::new(),
            link: None,
            pairing: None,
        })
    }
}
