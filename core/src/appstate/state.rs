//! Collections, their state (version, LTHash, index MAC → value MAC), and the transactional
//! application of snapshots and patches.
//!
//! Applying never changes the state it starts from: [`CollectionState::apply_patch`] and
//! [`CollectionState::apply_snapshot`] return a new state and the decoded mutations, or an
//! error, never a half-advanced state. Every check (version, keys, patch MAC, LTHash through the
//! snapshot MAC, each value MAC and index MAC) runs before anything is returned.
//!
//! The LTHash update follows tulir/whatsmeow:appstate/decode.go `DecodePatches` and Baileys
//! `makeLtHashGenerator`: mutations are taken in order; a SET subtracts the value MAC the index
//! had (in the state, or set earlier in the same patch) and adds its own; a REMOVE subtracts
//! the value MAC the index had. A REMOVE of an index that has no value is skipped, as both do
//! (and WhatsApp Web, per Baileys' comment), and reported as an [`ApplyWarning`]; the snapshot
//! MAC then decides whether the result is right.

use std::collections::BTreeMap;

use prost::Message;
use subtle::ConstantTimeEq;

use crate::limits::{
    APPSTATE_MAX_EXTERNAL_BLOB, APPSTATE_MAX_PATCH_MUTATIONS, APPSTATE_MAX_SNAPSHOT_RECORDS,
    APPSTATE_MAX_VALUE_BLOB,
};
use crate::media::{self, MediaType};
use crate::proto::wa;
use crate::proto::wa::syncd_mutation::SyncdOperation;
use crate::proto_bounds::{self, BoundsError, Field};

use super::PatchError;
use super::crypto::{IV_LEN, MAC_LEN, MutationKeys};
use super::index;
use super::keys::{KeyId, KeyRing};
use super::lthash::LtHash;

/// A MAC carried in app-state data (32 bytes).
pub type Mac = [u8; MAC_LEN];

/// The five app-state collections (tulir/whatsmeow:appstate/keys.go `WAPatchName`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Collection {
    /// `regular`: labels, quick replies, some settings.
    Regular,
    /// `regular_low`: pin, archive, mark read.
    RegularLow,
    /// `regular_high`: mute, star, delete and clear chat.
    RegularHigh,
    /// `critical_block`: push name, locale.
    CriticalBlock,
    /// `critical_unblock_low`: contacts.
    CriticalUnblockLow,
}

impl Collection {
    /// Every collection, in the order WhatsApp Web syncs them.
    pub const ALL: [Collection; 5] = [
        Collection::CriticalBlock,
        Collection::CriticalUnblockLow,
        Collection::RegularHigh,
        Collection::Regular,
        Collection::RegularLow,
    ];

    /// The collection's name on the wire (and in the MACs).
    pub fn name(self) -> &'static str {
        match self {
            Collection::Regular => "regular",
            Collection::RegularLow => "regular_low",
            Collection::RegularHigh => "regular_high",
            Collection::CriticalBlock => "critical_block",
            Collection::CriticalUnblockLow => "critical_unblock_low",
        }
    }

    /// The collection of a wire name.
    pub fn from_name(name: &str) -> Result<Collection, PatchError> {
        Collection::ALL
            .into_iter()
            .find(|c| c.name() == name)
            .ok_or(PatchError::UnknownCollection)
    }
}

/// The operation of a mutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Sets the value of an index.
    Set,
    /// Removes the value of an index.
    Remove,
}

impl Operation {
    /// The byte that starts the value MAC input (1 for SET, 2 for REMOVE).
    pub fn mac_byte(self) -> u8 {
        match self {
            Operation::Set => 1,
            Operation::Remove => 2,
        }
    }

    fn from_wire(value: Option<i32>) -> Result<Operation, PatchError> {
        match value.map(SyncdOperation::try_from) {
            None | Some(Ok(SyncdOperation::Set)) => Ok(Operation::Set),
            Some(Ok(SyncdOperation::Remove)) => Ok(Operation::Remove),
            Some(Err(_)) => Err(PatchError::Malformed("mutation operation")),
        }
    }

    pub(crate) fn to_wire(self) -> i32 {
        match self {
            Operation::Set => SyncdOperation::Set as i32,
            Operation::Remove => SyncdOperation::Remove as i32,
        }
    }
}

/// What a device knows of one collection: its version, its LTHash, and the value MAC of every
/// index that has a value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CollectionState {
    version: u64,
    hash: LtHash,
    index_value_macs: BTreeMap<Mac, Mac>,
}

/// A mutation, decrypted and verified.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedMutation {
    /// SET or REMOVE.
    pub operation: Operation,
    /// The JSON index, parsed (`["mute", "123@s.whatsapp.net"]`).
    pub index: Vec<String>,
    /// The index MAC.
    pub index_mac: Mac,
    /// The value MAC.
    pub value_mac: Mac,
    /// The sync action (absent when the sender left it out).
    pub value: Option<wa::SyncActionValue>,
    /// The action's schema version (`SyncActionData.version`).
    pub action_version: Option<i32>,
    /// The key the mutation was sealed with.
    pub key_id: KeyId,
    /// The version of the patch (or snapshot) that carried it.
    pub patch_version: u64,
}

/// Something odd but tolerated while applying, as WhatsApp Web tolerates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyWarning {
    /// A REMOVE named an index that had no value; nothing was subtracted.
    RemovedUnknownIndex {
        /// The index MAC of the REMOVE.
        index_mac: Mac,
    },
}

/// The result of a successful application: the new state, the mutations in order, and warnings.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// The collection state after the snapshot or patch.
    pub state: CollectionState,
    /// The decoded mutations, in the order they were applied.
    pub mutations: Vec<DecodedMutation>,
    /// Tolerated oddities.
    pub warnings: Vec<ApplyWarning>,
}

/// A mutation checked for shape, with its MACs split out, before any cryptography.
struct Parsed<'a> {
    operation: Operation,
    index_mac: Mac,
    value: &'a [u8],
    value_mac: Mac,
    key_id: &'a [u8],
}

fn parse_record(operation: Operation, record: &wa::SyncdRecord) -> Result<Parsed<'_>, PatchError> {
    let index_mac: Mac = record
        .index
        .as_ref()
        .and_then(|i| i.blob.as_deref())
        .and_then(|b| b.try_into().ok())
        .ok_or(PatchError::Malformed("index mac"))?;
    let blob = record
        .value
        .as_ref()
        .and_then(|v| v.blob.as_deref())
        .ok_or(PatchError::Malformed("value"))?;
    if blob.len() > APPSTATE_MAX_VALUE_BLOB {
        return Err(PatchError::TooLarge("value blob"));
    }
    let body_len = blob
        .len()
        .checked_sub(MAC_LEN)
        .filter(|&n| n >= IV_LEN + 16 && (n - IV_LEN) % 16 == 0)
        .ok_or(PatchError::Malformed("value length"))?;
    let (value, value_mac) = blob.split_at(body_len);
    let value_mac: Mac = value_mac
        .try_into()
        .map_err(|_| PatchError::Malformed("value mac"))?;
    let key_id = record
        .key_id
        .as_ref()
        .and_then(|k| k.id.as_deref())
        .ok_or(PatchError::Malformed("mutation key id"))?;
    Ok(Parsed {
        operation,
        index_mac,
        value,
        value_mac,
        key_id,
    })
}

fn mac_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(a.ct_eq(b))
}

fn fixed_mac(bytes: Option<&[u8]>, what: &'static str) -> Result<Mac, PatchError> {
    bytes
        .and_then(|b| b.try_into().ok())
        .ok_or(PatchError::Malformed(what))
}

/// Every key id named (the container's and each record's) that the ring lacks, deduplicated.
fn missing_keys<'a>(
    ring: &KeyRing,
    ids: impl IntoIterator<Item = &'a [u8]>,
) -> Result<(), PatchError> {
    let mut missing = Vec::new();
    for id in ids {
        if !ring.contains(id) {
            missing.push(KeyId::new(id)?);
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        // In id order, each once (a sort, not a `BTreeSet`: docs/decisions.md, "wasm size").
        crate::sort::sort_unstable(&mut missing);
        missing.dedup();
        Err(PatchError::MissingKeys(missing))
    }
}

fn keys_for<'r>(ring: &'r KeyRing, id: &[u8]) -> Result<&'r MutationKeys, PatchError> {
    ring.get(id)
        .map(|k| k.mutation_keys())
        .ok_or_else(|| match KeyId::new(id) {
            Ok(id) => PatchError::MissingKeys(vec![id]),
            Err(e) => e,
        })
}

/// Verifies the value MAC, decrypts, and verifies the index MAC of one mutation.
fn decode_mutation(
    ring: &KeyRing,
    parsed: &Parsed<'_>,
    patch_version: u64,
) -> Result<DecodedMutation, PatchError> {
    let keys = keys_for(ring, parsed.key_id)?;
    let expected = keys.value_mac(parsed.operation, parsed.key_id, parsed.value);
    if !mac_eq(&expected, &parsed.value_mac) {
        return Err(PatchError::ValueMacMismatch);
    }
    let plaintext = keys.decrypt_value(parsed.value)?;
    let data =
        wa::SyncActionData::decode(plaintext.as_slice()).map_err(|_| PatchError::Protobuf)?;
    let index_json = data
        .index
        .as_deref()
        .ok_or(PatchError::Malformed("action index"))?;
    if !mac_eq(&keys.index_mac(index_json), &parsed.index_mac) {
        return Err(PatchError::IndexMacMismatch);
    }
    Ok(DecodedMutation {
        operation: parsed.operation,
        index: index::decode(index_json)?,
        index_mac: parsed.index_mac,
        value_mac: parsed.value_mac,
        value: data.value,
        action_version: data.version,
        key_id: KeyId::new(parsed.key_id)?,
        patch_version,
    })
}

impl CollectionState {
    /// The state of a collection never synced: version 0, the zero hash, no values.
    pub fn new() -> CollectionState {
        CollectionState::default()
    }

    /// Rebuilds a state from its parts (used by [`super::persist`]); the hash is checked
    /// against the value MACs.
    pub fn from_parts(
        version: u64,
        hash: LtHash,
        index_value_macs: BTreeMap<Mac, Mac>,
    ) -> Result<CollectionState, PatchError> {
        if index_value_macs.len() > APPSTATE_MAX_SNAPSHOT_RECORDS {
            return Err(PatchError::TooLarge("collection entries"));
        }
        let mut expected = LtHash::ZERO;
        expected.subtract_then_add(std::iter::empty::<&[u8]>(), index_value_macs.values());
        if expected != hash {
            return Err(PatchError::LtHashMismatch);
        }
        Ok(CollectionState {
            version,
            hash,
            index_value_macs,
        })
    }

    /// The version of the last patch (or snapshot) applied.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The LTHash of the values.
    pub fn hash(&self) -> &LtHash {
        &self.hash
    }

    /// The value MAC of every index that has a value, by index MAC.
    pub fn index_value_macs(&self) -> &BTreeMap<Mac, Mac> {
        &self.index_value_macs
    }

    /// The value MAC an index has, if any.
    pub fn value_mac(&self, index_mac: &Mac) -> Option<&Mac> {
        self.index_value_macs.get(index_mac)
    }

    /// Decodes and verifies a snapshot into a fresh state (whatever the current state was):
    /// every record is a SET; the snapshot MAC must verify the LTHash of all value MACs at the
    /// snapshot's version, and every record's value and index MAC must verify.
    pub fn apply_snapshot(
        collection: Collection,
        snapshot: &wa::SyncdSnapshot,
        ring: &KeyRing,
    ) -> Result<Applied, PatchError> {
        let version = snapshot
            .version
            .as_ref()
            .and_then(|v| v.version)
            .ok_or(PatchError::Malformed("snapshot version"))?;
        if snapshot.records.len() > APPSTATE_MAX_SNAPSHOT_RECORDS {
            return Err(PatchError::TooLarge("snapshot records"));
        }
        let key_id = snapshot
            .key_id
            .as_ref()
            .and_then(|k| k.id.as_deref())
            .ok_or(PatchError::Malformed("snapshot key id"))?;
        let mac = fixed_mac(snapshot.mac.as_deref(), "snapshot mac")?;
        let parsed = snapshot
            .records
            .iter()
            .map(|record| parse_record(Operation::Set, record))
            .collect::<Result<Vec<_>, _>>()?;
        missing_keys(
            ring,
            std::iter::once(key_id).chain(parsed.iter().map(|p| p.key_id)),
        )?;

        let mut index_value_macs = BTreeMap::new();
        let mut hash = LtHash::ZERO;
        for p in &parsed {
            if index_value_macs.insert(p.index_mac, p.value_mac).is_some() {
                return Err(PatchError::DuplicateMutation);
            }
            hash.add(&p.value_mac);
        }
        let keys = keys_for(ring, key_id)?;
        if !mac_eq(&keys.snapshot_mac(&hash, version, collection.name()), &mac) {
            return Err(PatchError::LtHashMismatch);
        }
        let mutations = parsed
            .iter()
            .map(|p| decode_mutation(ring, p, version))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Applied {
            state: CollectionState {
                version,
                hash,
                index_value_macs,
            },
            mutations,
            warnings: Vec::new(),
        })
    }

    /// Decodes, verifies and applies one patch on top of this state, which is left untouched.
    ///
    /// The patch's version must be exactly one above the state's. A patch that names external
    /// mutations needs them in `external` (downloaded by the host, opened with
    /// [`decrypt_external_blob`] and [`decode_external_mutations`]); they follow the inline
    /// mutations, as in Baileys.
    pub fn apply_patch(
        &self,
        collection: Collection,
        patch: &wa::SyncdPatch,
        external: Option<&wa::SyncdMutations>,
        ring: &KeyRing,
    ) -> Result<Applied, PatchError> {
        let version = patch
            .version
            .as_ref()
            .and_then(|v| v.version)
            .ok_or(PatchError::Malformed("patch version"))?;
        if version <= self.version {
            return Err(PatchError::StaleVersion {
                current: self.version,
                got: version,
            });
        }
        if version != self.version + 1 {
            return Err(PatchError::VersionGap {
                current: self.version,
                got: version,
            });
        }
        let external = match (&patch.external_mutations, external) {
            (Some(_), Some(list)) => list.mutations.as_slice(),
            (Some(_), None) => return Err(PatchError::MissingExternalMutations),
            (None, Some(_)) => return Err(PatchError::UnexpectedExternalMutations),
            (None, None) => &[],
        };
        if patch.mutations.len() + external.len() > APPSTATE_MAX_PATCH_MUTATIONS {
            return Err(PatchError::TooLarge("patch mutations"));
        }
        let key_id = patch
            .key_id
            .as_ref()
            .and_then(|k| k.id.as_deref())
            .ok_or(PatchError::Malformed("patch key id"))?;
        let snapshot_mac = fixed_mac(patch.snapshot_mac.as_deref(), "patch snapshot mac")?;
        let patch_mac = fixed_mac(patch.patch_mac.as_deref(), "patch mac")?;
        let parsed = patch
            .mutations
            .iter()
            .chain(external)
            .map(|m| {
                let record = m.record.as_ref().ok_or(PatchError::Malformed("record"))?;
                parse_record(Operation::from_wire(m.operation)?, record)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut seen: Vec<(u8, &Mac, &Mac)> = parsed
            .iter()
            .map(|p| (p.operation.mac_byte(), &p.index_mac, &p.value_mac))
            .collect();
        crate::sort::sort_unstable(&mut seen);
        if seen.windows(2).any(|pair| pair[0] == pair[1]) {
            return Err(PatchError::DuplicateMutation);
        }
        missing_keys(
            ring,
            std::iter::once(key_id).chain(parsed.iter().map(|p| p.key_id)),
        )?;
        let keys = keys_for(ring, key_id)?;

        // 1. The patch MAC authenticates the list of value MACs.
        let expected = keys.patch_mac(
            &snapshot_mac,
            parsed.iter().map(|p| p.value_mac.as_slice()),
            version,
            collection.name(),
        );
        if !mac_eq(&expected, &patch_mac) {
            return Err(PatchError::PatchMacMismatch);
        }

        // 2. The LTHash, on a copy of the state.
        let mut index_value_macs = self.index_value_macs.clone();
        let mut hash = self.hash.clone();
        let mut warnings = Vec::new();
        for p in &parsed {
            let previous = match p.operation {
                Operation::Set => index_value_macs.insert(p.index_mac, p.value_mac),
                Operation::Remove => index_value_macs.remove(&p.index_mac),
            };
            match (p.operation, previous) {
                (_, Some(old)) => hash.remove(&old),
                (Operation::Remove, None) => warnings.push(ApplyWarning::RemovedUnknownIndex {
                    index_mac: p.index_mac,
                }),
                (Operation::Set, None) => {}
            }
            if p.operation == Operation::Set {
                hash.add(&p.value_mac);
            }
        }
        if index_value_macs.len() > APPSTATE_MAX_SNAPSHOT_RECORDS {
            return Err(PatchError::TooLarge("collection entries"));
        }
        // 3. The snapshot MAC authenticates the LTHash reached at this version.
        if !mac_eq(
            &keys.snapshot_mac(&hash, version, collection.name()),
            &snapshot_mac,
        ) {
            return Err(PatchError::LtHashMismatch);
        }
        // 4. Each mutation: value MAC, decryption, index MAC.
        let mutations = parsed
            .iter()
            .map(|p| decode_mutation(ring, p, version))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Applied {
            state: CollectionState {
                version,
                hash,
                index_value_macs,
            },
            mutations,
            warnings,
        })
    }

    /// Applies a snapshot (if any) and then patches, in order, all or nothing: the result is
    /// the state after the last patch, with every decoded mutation and warning, or the first
    /// error and no new state.
    pub fn apply_all(
        &self,
        collection: Collection,
        snapshot: Option<&wa::SyncdSnapshot>,
        patches: &[(wa::SyncdPatch, Option<wa::SyncdMutations>)],
        ring: &KeyRing,
    ) -> Result<Applied, PatchError> {
        let mut applied = match snapshot {
            Some(snapshot) => CollectionState::apply_snapshot(collection, snapshot, ring)?,
            None => Applied {
                state: self.clone(),
                mutations: Vec::new(),
                warnings: Vec::new(),
            },
        };
        for (patch, external) in patches {
            let next = applied
                .state
                .apply_patch(collection, patch, external.as_ref(), ring)?;
            applied.state = next.state;
            applied.mutations.extend(next.mutations);
            applied.warnings.extend(next.warnings);
        }
        Ok(applied)
    }

    /// Builds the state a snapshot or patch sender computed (for [`super::actions`]).
    pub(crate) fn with_parts(
        version: u64,
        hash: LtHash,
        index_value_macs: BTreeMap<Mac, Mac>,
    ) -> CollectionState {
        CollectionState {
            version,
            hash,
            index_value_macs,
        }
    }
}

/// The mutations of a `SyncdPatch` or `SyncdMutations` (field `number`), counted before
/// decoding.
const fn mutation_list(number: u32) -> [Field; 1] {
    [Field {
        number,
        max: APPSTATE_MAX_PATCH_MUTATIONS,
        size: size_of::<wa::SyncdMutation>(),
        fields: &[],
    }]
}

static PATCH_FIELDS: [Field; 1] = mutation_list(2);
static EXTERNAL_MUTATIONS_FIELDS: [Field; 1] = mutation_list(1);
static SNAPSHOT_FIELDS: [Field; 1] = [Field {
    number: 2,
    max: APPSTATE_MAX_SNAPSHOT_RECORDS,
    size: size_of::<wa::SyncdRecord>(),
    fields: &[],
}];

/// Decodes app-state bytes once their size, element counts and decoded size passed their
/// bounds (`what` names them in the error).
fn decode_bounded<M: Message + Default>(
    bytes: &[u8],
    fields: &'static [Field],
    what: &'static str,
) -> Result<M, PatchError> {
    if bytes.len() > APPSTATE_MAX_EXTERNAL_BLOB {
        return Err(PatchError::TooLarge(what));
    }
    proto_bounds::check(bytes, fields).map_err(|error| match error {
        BoundsError::Malformed => PatchError::Protobuf,
        BoundsError::TooMany(_) | BoundsError::OverBudget => PatchError::TooLarge(what),
    })?;
    M::decode(bytes).map_err(|_| PatchError::Protobuf)
}

/// Decodes a `SyncdPatch` from its bytes (the content of a `<patch>` node).
pub fn decode_patch(bytes: &[u8]) -> Result<wa::SyncdPatch, PatchError> {
    decode_bounded(bytes, &PATCH_FIELDS, "patch")
}

/// Decodes a `SyncdSnapshot` from the decrypted external blob a `<snapshot>` node points to.
pub fn decode_snapshot(bytes: &[u8]) -> Result<wa::SyncdSnapshot, PatchError> {
    decode_bounded(bytes, &SNAPSHOT_FIELDS, "snapshot")
}

/// Decodes the `SyncdMutations` of a patch's decrypted external blob.
pub fn decode_external_mutations(bytes: &[u8]) -> Result<wa::SyncdMutations, PatchError> {
    decode_bounded(bytes, &EXTERNAL_MUTATIONS_FIELDS, "external mutations")
}

/// Opens an external blob the host downloaded: media decryption with the `md-app-state` keys,
/// checking the file hashes the reference carries.
pub fn decrypt_external_blob(
    reference: &wa::ExternalBlobReference,
    file: &[u8],
) -> Result<Vec<u8>, PatchError> {
    if file.len() > APPSTATE_MAX_EXTERNAL_BLOB {
        return Err(PatchError::TooLarge("external blob"));
    }
    let media_key = reference
        .media_key
        .as_deref()
        .ok_or(PatchError::Malformed("external blob media key"))?;
    media::decrypt(
        media_key,
        MediaType::AppState,
        file,
        media::Expected {
            file_enc_sha256: reference.file_enc_sha256.as_deref(),
            file_sha256: reference.file_sha256.as_deref(),
        },
    )
    .map_err(|e| match e {
        media::MediaError::MacMismatch => PatchError::ValueMacMismatch,
        media::MediaError::EmptyKey => PatchError::Malformed("external blob media key"),
        _ => PatchError::Malformed("external blob"),
    })
}
