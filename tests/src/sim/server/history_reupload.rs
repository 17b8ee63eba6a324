//! An expired history blob asked for again (features.md §2.4): the companion answers a
//! download that failed with 404/410 by `<receipt id=<notification id> type="server-error"
//! category="peer" to=<own user>><encrypt><enc_p/><enc_iv/></encrypt></receipt>` (no `<rmr>`),
//! the payload a `ServerErrorReceipt { stanzaID }` sealed with AES-256-GCM under the media-retry
//! key of the blob's media key, AAD the message id. The phone checks it, uploads the blob again
//! and announces it in a new notification (a new message id, the new direct path).
//!
//! [`Server::expire_next_history_blobs`] makes the next history blobs expire as soon as they
//! are announced, so that a companion meets the 404.

use prost::Message as _;
use walink_core::proto::wa::ServerErrorReceipt;

use super::*;

/// What the server tracks of history re-uploads.
#[derive(Debug, Default)]
pub(super) struct HistoryReuploads {
    /// History blobs still to expire as soon as they are announced.
    expire_next: u32,
    /// Blobs the phone uploaded again on request.
    reuploaded: u64,
    /// Requests that did not open or named an unknown notification.
    refused: u64,
}

impl Server {
    /// The next `count` history blobs a phone announces expire at once (their first download
    /// answers 404); a blob uploaded again on request does not.
    pub fn expire_next_history_blobs(&mut self, count: u32) {
        self.history_reuploads.expire_next = count;
    }

    /// History blobs the phones uploaded again on request, and requests refused (a seal that
    /// did not open with the blob's key, or an unknown notification).
    pub fn history_reuploads(&self) -> (u64, u64) {
        (
            self.history_reuploads.reuploaded,
            self.history_reuploads.refused,
        )
    }

    /// Whether the blob just announced expires now (one of [`Server::expire_next_history_blobs`]).
    pub(super) fn take_history_expiry(&mut self) -> bool {
        let left = &mut self.history_reuploads.expire_next;
        if *left == 0 {
            return false;
        }
        *left -= 1;
        true
    }

    /// The phone of `user` answers a companion's history re-upload request: the request must
    /// open with the notification's media key and name its id; the blob is uploaded again and
    /// announced anew to the asking companion.
    pub(super) fn phone_history_reupload(&mut self, user: &str, receipt: &Node) {
        let reuploaded = (|| {
            let id = receipt.attr_str("id")?;
            let from = receipt.attr_jid("from")?;
            if from.device == 0 {
                return None;
            }
            let blob = self
                .history
                .get(user)?
                .iter()
                .find(|blob| blob.message_id == id)?
                .clone();
            let address =
                Jid::device(user.to_owned(), from.device, DEFAULT_USER_SERVER).to_string();
            let mut message = self.accounts.get(user)?.phone.sent(id, &address)?.clone();
            let note = message
                .protocol_message
                .as_mut()?
                .history_sync_notification
                .as_mut()?;
            let media_key: [u8; 32] = note.media_key.as_deref()?.try_into().ok()?;
            let encrypt = receipt.child("encrypt")?;
            let sealed = encrypt.child("enc_p")?.content_bytes()?;
            let iv = encrypt.child("enc_iv")?.content_bytes()?;
            let opened = media::seal_or_open(
                &media::retry_key(&media_key),
                iv,
                id.as_bytes(),
                sealed,
                false,
            )?;
            let request = ServerErrorReceipt::decode(opened.as_slice()).ok()?;
            if request.stanza_id.as_deref() != Some(id) {
                return None;
            }
            let new_path = self.upload_again(&blob.direct_path, "md-msg-hist")?;
            note.direct_path = Some(new_path.clone());
            let now = receipt
                .attr_str("t")
                .and_then(|t| t.parse::<u64>().ok())
                .unwrap_or(0)
                .saturating_mul(1000);
            let message_id = self
                .phone_send_peer(now, user, from.device, &message)
                .ok()?;
            self.history
                .entry(user.to_owned())
                .or_default()
                .push(HistoryBlob {
                    message_id,
                    sync_type: blob.sync_type,
                    direct_path: new_path,
                    acknowledged: false,
                });
            Some(())
        })();
        match reuploaded {
            Some(()) => self.history_reuploads.reuploaded += 1,
            None => self.history_reuploads.refused += 1,
        }
    }
}
