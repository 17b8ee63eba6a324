//! Fault controls: refused link codes and logins, stream errors, abrupt closes, raw frame
//! bodies and server restarts.

use super::*;

impl Server {
    /// The next `companion_hello` is refused with this error code (400, 403, 429, 452, 500).
    pub fn fail_next_link_code(&mut self, code: u16) {
        self.link_code_error = Some(code);
    }

    /// The next login is refused with `<failure reason>` (e.g. 405 outdated, 403 locked, 503).
    pub fn fail_next_login(&mut self, reason: u16) {
        self.login_failure = Some(reason);
    }

    /// Sends a stream error on `conn` and closes it.
    pub fn send_stream_error(
        &mut self,
        conn: ConnId,
        kind: StreamErrorKind,
    ) -> Result<(), SimError> {
        if self.conns.get(&conn).is_none_or(|c| c.transport.is_none()) {
            return Err(SimError::UnknownConnection(conn));
        }
        self.send(conn, &kind.node());
        self.close(conn, CloseReason::StreamError(kind));
        Ok(())
    }

    /// Closes the socket in the same instant as the `515` that ends a pairing stream (a fault;
    /// see [`ServerConfig::abrupt_restart`]).
    pub fn set_abrupt_restart(&mut self, on: bool) {
        self.abrupt_restart = on;
    }

    /// Whether the `515` after pairing comes with an abrupt close (a fault).
    pub fn abrupt_restart(&self) -> bool {
        self.abrupt_restart
    }

    /// Plays a hostile (or broken) server: sends `body`, any bytes as a frame body (a flags
    /// byte, then a node, compressed or not, or garbage), on `conn`, encrypted with the
    /// connection's transport keys so that the client decrypts it and hands it to its decoder.
    pub fn send_raw_body(&mut self, conn: ConnId, body: &[u8]) -> Result<(), SimError> {
        let Some(transport) = self.conns.get_mut(&conn).and_then(|c| c.transport.as_mut()) else {
            return Err(SimError::UnknownConnection(conn));
        };
        let frame = transport
            .encrypt(body)
            .ok()
            .and_then(|ciphertext| walink_core::frame::encode_frame(&ciphertext).ok());
        match frame {
            Some(frame) => {
                self.transmit(conn, frame);
                Ok(())
            }
            None => Err(SimError::FrameTooLarge(body.len())),
        }
    }

    /// The server restarts: every connection drops without a word. Accounts, devices, prekeys
    /// and offline queues survive (they are the server's database); unacknowledged deliveries
    /// are queued again.
    pub fn restart(&mut self) {
        let conns: Vec<ConnId> = self.conns.iter().map(|(&id, _)| id).collect();
        for conn in conns {
            self.close(conn, CloseReason::Restart);
        }
    }
}
