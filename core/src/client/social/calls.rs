//! Calls: the `<call>` stanzas a linked device receives, parsed into [`CallEvent`]s, and the
//! reject it sends (docs/client.md "Calls"; protocol notes features.md §3).
//!
//! ```text
//! <call from="<caller device>" id t [offline] [notify]>
//!   <offer|offer_notice|preaccept|accept|reject|terminate [reason] call-id call-creator
//!          [caller_pn] [group-jid] [type="group"]> [<video/>] … </…>
//! </call>
//! ```
//!
//! A video call has a `<video>` child in its offer, a group call a `group-jid` or
//! `type="group"` (WhiskeySockets/Baileys `handleCall`, tulir/whatsmeow `call.go`). Later events
//! of the same call carry neither, so the offers are remembered ([`Offers`], at most
//! `CALLS_MAX_TRACKED_OFFERS`) to report them on every event of the call, as Baileys does.
//!
//! Reject (Baileys `rejectCall`, the form WhatsApp Web sends; whatsmeow sends the same child
//! without `from`):
//!
//! ```text
//! <call id from="<own device JID>" to="<caller>">
//!   <reject call-id call-creator="<caller>" count="0"/>
//! </call>
//! ```

use crate::binary::{GROUP_SERVER, Jid, Node};
use crate::limits::CALLS_MAX_TRACKED_OFFERS;

/// What happened to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallAction {
    /// The call rings on this device (`offer`, or `offer_notice` for large group calls).
    Offer,
    /// A device of the callee pre-accepted it: the caller sees it ringing (`preaccept`).
    Ringing,
    /// Accepted, on this account's other device or by the callee (`accept`).
    Accepted,
    /// Rejected by a device (`reject`).
    Rejected,
    /// Ended (`terminate`): hung up, accepted or rejected elsewhere.
    Ended,
    /// Nobody answered in time (`terminate reason="timeout"`): a missed call.
    TimedOut,
}

/// One call event (`Event::Call`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallEvent {
    /// The call id (`call-id`).
    pub call_id: String,
    /// What happened.
    pub action: CallAction,
    /// Who placed the call (`call-creator`, a phone-number or LID user JID); pass it to
    /// `Command::RejectCall`.
    pub caller: Jid,
    /// The caller's phone-number JID when `caller` is a LID and the stanza says (`caller_pn`).
    pub caller_pn: Option<Jid>,
    /// The device the stanza came from (the outer `from`, with its device part).
    pub device: Jid,
    /// The server's time of the stanza, Unix seconds (`t`, 0 when absent).
    pub timestamp: u64,
    /// Whether it was queued while this device was offline (`offline` attribute).
    pub offline: bool,
    /// A video call (known from the offer).
    pub video: bool,
    /// The group of a group call (known from the offer), or `None` for a 1:1 call.
    pub group: Option<Jid>,
    /// Whether it is a group call (`type="group"` or a `group-jid`).
    pub is_group: bool,
    /// The `reason` attribute of `terminate` / `reject`, when given.
    pub reason: Option<String>,
}

/// Parses a `<call>` stanza. `None` for media negotiation (`transport`, `relaylatency`, ...)
/// and anything without an action child, a `call-id` or a caller: those are only acknowledged.
pub fn parse_call(node: &Node) -> Option<CallEvent> {
    if node.tag != "call" {
        return None;
    }
    let child = node.children().first()?;
    let action = match child.tag.as_ref() {
        "offer" | "offer_notice" => CallAction::Offer,
        "preaccept" => CallAction::Ringing,
        "accept" => CallAction::Accepted,
        "reject" => CallAction::Rejected,
        "terminate" if child.attr_str("reason") == Some("timeout") => CallAction::TimedOut,
        "terminate" => CallAction::Ended,
        _ => return None,
    };
    let call_id = child.attr_str("call-id").filter(|id| !id.is_empty())?;
    let device = node.attr_jid("from")?;
    let caller = child
        .attr_jid("call-creator")
        .or_else(|| child.attr_jid("from"))
        .unwrap_or_else(|| device.to_non_device());
    let group = child
        .attr_jid("group-jid")
        .filter(|jid| jid.server == GROUP_SERVER);
    let is_group = group.is_some() || child.attr_str("type") == Some("group");
    Some(CallEvent {
        call_id: call_id.to_owned(),
        action,
        caller,
        caller_pn: child.attr_jid("caller_pn"),
        device,
        timestamp: node.attr_str("t").and_then(|t| t.parse().ok()).unwrap_or(0),
        offline: node.get_attr("offline").is_some(),
        video: action == CallAction::Offer && child.child("video").is_some(),
        group,
        is_group,
        reason: child.attr_str("reason").map(str::to_owned),
    })
}

/// The `<call>` that rejects `call_id` from `caller`, sent from `own` (our device JID) with the
/// stanza id `id`.
pub fn build_reject(id: &str, own: &Jid, call_id: &str, caller: &Jid) -> Node {
    Node::new("call")
        .attr("id", id.to_owned())
        .attr("from", own.clone())
        .attr("to", caller.clone())
        .children_from([Node::new("reject")
            .attr("call-id", call_id.to_owned())
            .attr("call-creator", caller.clone())
            .attr("count", "0")])
}

/// The offers still ringing or in progress, oldest first, to fill in what later events of a
/// call do not repeat.
#[derive(Debug, Default)]
pub(crate) struct Offers {
    offers: Vec<CallEvent>,
}

impl Offers {
    /// Completes `event` from its call's offer (and remembers an offer); forgets the call once
    /// it ended.
    pub(crate) fn track(&mut self, event: &mut CallEvent) {
        let known = self.offers.iter().position(|o| o.call_id == event.call_id);
        match (event.action, known) {
            (CallAction::Offer, Some(index)) => {
                if let Some(slot) = self.offers.get_mut(index) {
                    *slot = event.clone();
                }
            }
            (CallAction::Offer, None) => {
                if self.offers.len() >= CALLS_MAX_TRACKED_OFFERS {
                    self.offers.remove(0);
                }
                self.offers.push(event.clone());
            }
            (_, Some(index)) => {
                if let Some(offer) = self.offers.get(index) {
                    event.video |= offer.video;
                    event.is_group |= offer.is_group;
                    if event.group.is_none() {
                        event.group = offer.group.clone();
                    }
                    if event.caller_pn.is_none() {
                        event.caller_pn = offer.caller_pn.clone();
                    }
                }
                if matches!(
                    event.action,
                    CallAction::Accepted
                        | CallAction::Rejected
                        | CallAction::Ended
                        | CallAction::TimedOut
                ) {
                    self.offers.remove(index);
                }
            }
            (_, None) => {}
        }
    }

    /// The offer of `call_id`, if it is still known.
    #[cfg(test)]
    pub(crate) fn get(&self, call_id: &str) -> Option<&CallEvent> {
        self.offers.iter().find(|o| o.call_id == call_id)
    }

    /// How many offers are remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.offers.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn call(action: Node) -> Node {
        Node::new("call")
            .attr("from", "15551234567:3@s.whatsapp.net")
            .attr("id", "STANZA1")
            .attr("t", "1700000000")
            .children_from([action])
    }

    fn offer(call_id: &str) -> Node {
        Node::new("offer")
            .attr("call-id", call_id.to_owned())
            .attr("call-creator", "15551234567@s.whatsapp.net")
    }

    #[test]
    fn a_voice_offer_names_the_call_the_caller_and_the_device() {
        let event = parse_call(&call(offer("C1"))).unwrap();
        assert_eq!(event.call_id, "C1");
        assert_eq!(event.action, CallAction::Offer);
        assert_eq!(event.caller.to_string(), "15551234567@s.whatsapp.net");
        assert_eq!(event.device.to_string(), "15551234567:3@s.whatsapp.net");
        assert_eq!(event.timestamp, 1_700_000_000);
        assert!(!event.video && !event.is_group && !event.offline);
    }

    #[test]
    fn video_group_and_offline_are_read_from_the_offer() {
        let node = call(
            offer("C2")
                .attr("group-jid", "120363000000000001@g.us")
                .children_from([Node::new("audio"), Node::new("video")]),
        )
        .attr("offline", "0");
        let event = parse_call(&node).unwrap();
        assert!(event.video && event.is_group && event.offline);
        assert_eq!(event.group.unwrap().to_string(), "120363000000000001@g.us");
        let typed = parse_call(&call(offer("C3").attr("type", "group"))).unwrap();
        assert!(typed.is_group && typed.group.is_none());
    }

    #[test]
    fn terminate_with_timeout_is_a_missed_call_and_media_negotiation_is_not_reported() {
        let timeout = Node::new("terminate")
            .attr("call-id", "C1")
            .attr("call-creator", "15551234567@s.whatsapp.net")
            .attr("reason", "timeout");
        assert_eq!(
            parse_call(&call(timeout)).unwrap().action,
            CallAction::TimedOut
        );
        let ended = Node::new("terminate").attr("call-id", "C1");
        let event = parse_call(&call(ended)).unwrap();
        assert_eq!(event.action, CallAction::Ended);
        // No call-creator: the caller is the sending device's user.
        assert_eq!(event.caller.to_string(), "15551234567@s.whatsapp.net");
        for tag in ["transport", "relaylatency", "unknown"] {
            assert!(parse_call(&call(Node::new(tag).attr("call-id", "C1"))).is_none());
        }
        assert!(parse_call(&call(Node::new("offer"))).is_none());
        assert!(parse_call(&Node::new("call")).is_none());
        assert!(parse_call(&Node::new("message").children_from([offer("C")])).is_none());
    }

    #[test]
    fn later_events_carry_what_the_offer_said_and_the_call_is_forgotten_when_it_ends() {
        let mut offers = Offers::default();
        let mut first = parse_call(&call(offer("C1").children_from([Node::new("video")]))).unwrap();
        offers.track(&mut first);
        let mut ringing = parse_call(&call(Node::new("preaccept").attr("call-id", "C1"))).unwrap();
        offers.track(&mut ringing);
        assert!(ringing.video);
        let mut accepted = parse_call(&call(Node::new("accept").attr("call-id", "C1"))).unwrap();
        offers.track(&mut accepted);
        assert!(accepted.video);
        assert_eq!(offers.len(), 0);
    }

    #[test]
    fn remembered_offers_are_bounded() {
        let mut offers = Offers::default();
        for i in 0..CALLS_MAX_TRACKED_OFFERS + 5 {
            let mut event = parse_call(&call(offer(&format!("C{i}")))).unwrap();
            offers.track(&mut event);
        }
        assert_eq!(offers.len(), CALLS_MAX_TRACKED_OFFERS);
        assert!(offers.get("C0").is_none());
        assert!(
            offers
                .get(&format!("C{}", CALLS_MAX_TRACKED_OFFERS + 4))
                .is_some()
        );
    }

    #[test]
    fn the_reject_names_the_call_and_its_creator() {
        let own: Jid = "15550000000:7@s.whatsapp.net".parse().unwrap();
        let caller: Jid = "15551234567@s.whatsapp.net".parse().unwrap();
        let node = build_reject("R1", &own, "C1", &caller);
        assert_eq!(node.tag, "call");
        assert_eq!(node.attr_str("id"), Some("R1"));
        assert_eq!(node.attr_jid("from"), Some(own));
        assert_eq!(node.attr_jid("to"), Some(caller.clone()));
        let reject = node.child("reject").unwrap();
        assert_eq!(reject.attr_str("call-id"), Some("C1"));
        assert_eq!(reject.attr_jid("call-creator"), Some(caller));
        assert_eq!(reject.attr_str("count"), Some("0"));
    }
}
