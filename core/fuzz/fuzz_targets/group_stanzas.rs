//! Group answers and notifications on arbitrary bytes: the bytes are decoded as a stanza (as
//! off the Noise layer) and read by every group parser (metadata, the groups list, create,
//! participant results, invite and join answers, `w:gp2` notifications); each change a
//! notification yields is applied to a known group. Asserted besides no panic: what is kept
//! stays within the `limits::GROUP_*` bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use walink_core::binary::decode;
use walink_core::client::groups::wire;
use walink_core::client::groups::{GroupInfo, ParticipantAction};
use walink_core::limits::{
    GROUP_MAX_CHANGES_PER_NOTIFICATION, GROUP_MAX_DESCRIPTION_BYTES, GROUP_MAX_PARTICIPANTS,
    GROUP_MAX_SUBJECT_BYTES, GROUPS_MAX_LISTED,
};

fn check(info: &GroupInfo) {
    assert!(info.participants.len() <= GROUP_MAX_PARTICIPANTS);
    assert!(info.subject.len() <= GROUP_MAX_SUBJECT_BYTES);
    assert!(info.description.as_ref().is_none_or(|d| d.len() <= GROUP_MAX_DESCRIPTION_BYTES));
}

fuzz_target!(|data: &[u8]| {
    let Ok(node) = decode(data) else {
        return;
    };
    let mut known = GroupInfo::default();
    if let Ok(info) = wire::parse_group_answer(&node) {
        check(&info);
        known = info;
    }
    if let Ok(list) = wire::parse_group_list(&node) {
        assert!(list.len() <= GROUPS_MAX_LISTED);
        list.iter().for_each(check);
    }
    if let Ok((info, results)) = wire::parse_create_answer(&node) {
        check(&info);
        assert!(results.len() <= GROUP_MAX_PARTICIPANTS);
    }
    for action in [ParticipantAction::Add, ParticipantAction::Remove] {
        if let Ok(results) = wire::parse_participants_answer(&node, action) {
            assert!(results.len() <= GROUP_MAX_PARTICIPANTS);
        }
    }
    let _ = wire::parse_invite_answer(&node);
    let _ = wire::parse_join_answer(&node);
    if let Ok(notification) = wire::parse_notification(&node) {
        assert!(notification.changes.len() <= GROUP_MAX_CHANGES_PER_NOTIFICATION);
        for change in &notification.changes {
            wire::apply(&mut known, change, &["1@s.whatsapp.net".to_owned()]);
            check(&known);
        }
    }
});
