//! Verification of the server's Noise certificate chain (root -> intermediate -> leaf) against a
//! pinned root key (transport.md §2.6).
//!
//! The checks are whatsmeow's full list (tulir/whatsmeow:handshake.go `verifyServerCert`), in
//! its order: both certificates present with 64-byte signatures; the intermediate signed by the
//! root; the intermediate's issuer serial equal to the root's serial; a 32-byte intermediate key;
//! the leaf signed by the intermediate; the intermediate's validity window; the leaf's issuer
//! serial equal to the intermediate's serial; the leaf key equal to the server static key
//! (constant time); the leaf's validity window. Signatures cover the `details` bytes exactly as
//! received. There is no way to skip any check: a test root is configured as a [`TrustRoot`]
//! and takes the same path as WhatsApp's.

use prost::Message;
use subtle::ConstantTimeEq;

use crate::proto::wa::CertChain;
use crate::proto::wa::cert_chain::NoiseCertificate;
use crate::proto::wa::cert_chain::noise_certificate::Details;
use crate::signal::xeddsa;

use super::keys::PublicKeyBytes;

/// The key that signs the intermediate certificates, and the serial it carries. Its `Debug`
/// shows the key's first bytes in hex, as `signal::PublicKey` does, not a byte array.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TrustRoot {
    /// The root's Curve25519 public key (raw 32 bytes, XEdDSA).
    pub public_key: PublicKeyBytes,
    /// The serial the intermediate must name as its issuer.
    pub serial: u32,
}

impl TrustRoot {
    /// WhatsApp's root ("WhatsAppLongTerm1"), serial 0. Sources: tulir/whatsmeow:handshake.go
    /// (`WACertPubKey`, `WACertIssuerSerial`), WhiskeySockets/Baileys:src/Defaults/index.ts
    /// (`WA_CERT_DETAILS`), oxidezap/whatsapp-rust:wacore/noise/src/handshake.rs (`WA_CERT_PUB_KEY`).
    pub const WHATSAPP: TrustRoot = TrustRoot {
        public_key: [
            0x14, 0x23, 0x75, 0x57, 0x4d, 0x0a, 0x58, 0x71, 0x66, 0xaa, 0xe7, 0x1e, 0xbe, 0x51,
            0x64, 0x37, 0xc4, 0xa2, 0x8b, 0x73, 0xe3, 0x69, 0x5c, 0x6c, 0xe1, 0xf7, 0xf9, 0x54,
            0x5d, 0xa8, 0xee, 0x6b,
        ],
        serial: 0,
    };
}

impl core::fmt::Debug for TrustRoot {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "TrustRoot {{ public_key: ")?;
        for byte in &self.public_key[..4] {
            write!(f, "{byte:02x}")?;
        }
        write!(f, "…, serial: {} }}", self.serial)
    }
}

impl Default for TrustRoot {
    fn default() -> Self {
        TrustRoot::WHATSAPP
    }
}

/// Which certificate of the chain a check failed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertRole {
    /// The certificate signed by the root.
    Intermediate,
    /// The server's own certificate, signed by the intermediate.
    Leaf,
}

/// Why the server's certificate chain was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// The chain or a certificate's details are not a valid protobuf.
    #[error("certificate chain is not a valid protobuf")]
    Malformed,
    /// A certificate, its details or its signature is absent.
    #[error("{0:?} certificate is missing a part")]
    Missing(CertRole),
    /// A signature is not 64 bytes, or a key is not 32 bytes.
    #[error("{0:?} certificate has a field of the wrong length")]
    BadLength(CertRole),
    /// The signature does not verify under the issuer's key.
    #[error("{0:?} certificate signature does not verify")]
    BadSignature(CertRole),
    /// The certificate names another issuer serial than its issuer's.
    #[error("{role:?} certificate issuer serial {found} is not {expected}")]
    WrongIssuer {
        /// The certificate concerned.
        role: CertRole,
        /// The issuer serial it names.
        found: u32,
        /// The issuer's serial.
        expected: u32,
    },
    /// `now` is before the certificate's `notBefore`.
    #[error("{0:?} certificate is not valid yet")]
    NotYetValid(CertRole),
    /// `now` is after the certificate's `notAfter`.
    #[error("{0:?} certificate has expired")]
    Expired(CertRole),
    /// The leaf certifies another key than the server's Noise static key.
    #[error("leaf certificate key does not match the server static key")]
    LeafKeyMismatch,
}

/// The verified chain's facts a client may keep (for example to decide on a resumed handshake).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedChain {
    /// The leaf's serial.
    pub leaf_serial: u32,
    /// The intermediate's serial.
    pub intermediate_serial: u32,
    /// Latest `notBefore` of the two certificates, unix seconds.
    pub not_before: u64,
    /// Earliest `notAfter` of the two certificates, unix seconds.
    pub not_after: u64,
}

fn parts(cert: Option<&NoiseCertificate>, role: CertRole) -> Result<(&[u8], [u8; 64]), CertError> {
    let cert = cert.ok_or(CertError::Missing(role))?;
    let details = cert.details.as_deref().ok_or(CertError::Missing(role))?;
    let signature = cert.signature.as_deref().ok_or(CertError::Missing(role))?;
    let signature = <[u8; 64]>::try_from(signature).map_err(|_| CertError::BadLength(role))?;
    Ok((details, signature))
}

/// Checks `notBefore <= now <= notAfter` with `now` in unix milliseconds and the bounds in unix
/// seconds, exactly as whatsmeow compares `time.Now()` with `time.Unix(notAfter, 0)`.
fn check_validity(details: &Details, now_ms: u64, role: CertRole) -> Result<(), CertError> {
    let not_before_ms = details.not_before.unwrap_or(0).saturating_mul(1000);
    let not_after_ms = details.not_after.unwrap_or(0).saturating_mul(1000);
    if now_ms < not_before_ms {
        Err(CertError::NotYetValid(role))
    } else if now_ms > not_after_ms {
        Err(CertError::Expired(role))
    } else {
        Ok(())
    }
}

/// Verifies the serialized `CertChain` `chain` against `root`, for a server whose decrypted
/// static key is `server_static`, at `now_ms` (unix milliseconds).
pub fn verify_chain(
    chain: &[u8],
    root: &TrustRoot,
    server_static: &PublicKeyBytes,
    now_ms: u64,
) -> Result<VerifiedChain, CertError> {
    use CertRole::{Intermediate, Leaf};
    let chain = CertChain::decode(chain).map_err(|_| CertError::Malformed)?;
    let (inter_raw, inter_sig) = parts(chain.intermediate.as_ref(), Intermediate)?;
    let (leaf_raw, leaf_sig) = parts(chain.leaf.as_ref(), Leaf)?;

    if !xeddsa::verify(&root.public_key, inter_raw, &inter_sig) {
        return Err(CertError::BadSignature(Intermediate));
    }
    let inter = Details::decode(inter_raw).map_err(|_| CertError::Malformed)?;
    let inter_issuer = inter.issuer_serial.unwrap_or(0);
    if inter_issuer != root.serial {
        return Err(CertError::WrongIssuer {
            role: Intermediate,
            found: inter_issuer,
            expected: root.serial,
        });
    }
    let inter_key = inter
        .key
        .as_deref()
        .and_then(|key| <[u8; 32]>::try_from(key).ok())
        .ok_or(CertError::BadLength(Intermediate))?;
    if !xeddsa::verify(&inter_key, leaf_raw, &leaf_sig) {
        return Err(CertError::BadSignature(Leaf));
    }
    check_validity(&inter, now_ms, Intermediate)?;

    let leaf = Details::decode(leaf_raw).map_err(|_| CertError::Malformed)?;
    let inter_serial = inter.serial.unwrap_or(0);
    let leaf_issuer = leaf.issuer_serial.unwrap_or(0);
    if leaf_issuer != inter_serial {
        return Err(CertError::WrongIssuer {
            role: Leaf,
            found: leaf_issuer,
            expected: inter_serial,
        });
    }
    let leaf_key = leaf.key.as_deref().unwrap_or_default();
    if !bool::from(leaf_key.ct_eq(server_static.as_slice())) {
        return Err(CertError::LeafKeyMismatch);
    }
    check_validity(&leaf, now_ms, Leaf)?;

    Ok(VerifiedChain {
        leaf_serial: leaf.serial.unwrap_or(0),
        intermediate_serial: inter_serial,
        not_before: inter
            .not_before
            .unwrap_or(0)
            .max(leaf.not_before.unwrap_or(0)),
        not_after: inter
            .not_after
            .unwrap_or(0)
            .min(leaf.not_after.unwrap_or(0)),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::noise::NoiseKeyPair;

    const NOW_MS: u64 = 1_800_000_000_000;

    struct Chain {
        root: NoiseKeyPair,
        intermediate: NoiseKeyPair,
        leaf_key: PublicKeyBytes,
        inter_details: Details,
        leaf_details: Details,
    }

    impl Chain {
        fn new() -> Self {
            let leaf_key = NoiseKeyPair::from_private([9; 32]).public_key();
            let intermediate = NoiseKeyPair::from_private([8; 32]);
            Chain {
                root: NoiseKeyPair::from_private([7; 32]),
                inter_details: Details {
                    serial: Some(5),
                    issuer_serial: Some(0),
                    key: Some(intermediate.public_key().to_vec()),
                    not_before: Some(1_700_000_000),
                    not_after: Some(1_900_000_000),
                },
                intermediate,
                leaf_details: Details {
                    serial: Some(77),
                    issuer_serial: Some(5),
                    key: Some(leaf_key.to_vec()),
                    not_before: Some(1_750_000_000),
                    not_after: Some(1_850_000_000),
                },
                leaf_key,
            }
        }

        fn root(&self) -> TrustRoot {
            TrustRoot {
                public_key: self.root.public_key(),
                serial: 0,
            }
        }

        fn encode(&self) -> Vec<u8> {
            let sign = |key: &NoiseKeyPair, details: &Details| {
                let details = details.encode_to_vec();
                let signature = xeddsa::sign(&key.private_key(), &details, &[3; 64]);
                NoiseCertificate {
                    details: Some(details),
                    signature: Some(signature.to_vec()),
                }
            };
            CertChain {
                intermediate: Some(sign(&self.root, &self.inter_details)),
                leaf: Some(sign(&self.intermediate, &self.leaf_details)),
            }
            .encode_to_vec()
        }

        fn verify(&self) -> Result<VerifiedChain, CertError> {
            verify_chain(&self.encode(), &self.root(), &self.leaf_key, NOW_MS)
        }
    }

    #[test]
    fn accepts_a_good_chain() {
        let chain = Chain::new();
        assert_eq!(
            chain.verify().unwrap(),
            VerifiedChain {
                leaf_serial: 77,
                intermediate_serial: 5,
                not_before: 1_750_000_000,
                not_after: 1_850_000_000,
            }
        );
        // The same chain is refused under WhatsApp's real root.
        assert_eq!(
            verify_chain(
                &chain.encode(),
                &TrustRoot::WHATSAPP,
                &chain.leaf_key,
                NOW_MS
            ),
            Err(CertError::BadSignature(CertRole::Intermediate))
        );
    }

    #[test]
    fn refuses_each_broken_rule() {
        use CertRole::{Intermediate, Leaf};
        let mut chain = Chain::new();
        chain.root = NoiseKeyPair::from_private([6; 32]);
        let foreign = chain.encode();
        assert_eq!(
            verify_chain(&foreign, &Chain::new().root(), &chain.leaf_key, NOW_MS),
            Err(CertError::BadSignature(Intermediate))
        );

        let mut chain = Chain::new();
        chain.intermediate = NoiseKeyPair::from_private([5; 32]);
        assert_eq!(chain.verify(), Err(CertError::BadSignature(Leaf)));

        let mut chain = Chain::new();
        chain.inter_details.issuer_serial = Some(1);
        assert_eq!(
            chain.verify(),
            Err(CertError::WrongIssuer {
                role: Intermediate,
                found: 1,
                expected: 0
            })
        );

        let mut chain = Chain::new();
        chain.leaf_details.issuer_serial = Some(6);
        assert_eq!(
            chain.verify(),
            Err(CertError::WrongIssuer {
                role: Leaf,
                found: 6,
                expected: 5
            })
        );

        let mut chain = Chain::new();
        chain.inter_details.not_after = Some(NOW_MS / 1000 - 1);
        assert_eq!(chain.verify(), Err(CertError::Expired(Intermediate)));

        let mut chain = Chain::new();
        chain.leaf_details.not_before = Some(NOW_MS / 1000 + 1);
        assert_eq!(chain.verify(), Err(CertError::NotYetValid(Leaf)));

        let mut chain = Chain::new();
        chain.leaf_details.not_after = None;
        assert_eq!(chain.verify(), Err(CertError::Expired(Leaf)));

        let chain = Chain::new();
        let other = NoiseKeyPair::from_private([1; 32]).public_key();
        assert_eq!(
            verify_chain(&chain.encode(), &chain.root(), &other, NOW_MS),
            Err(CertError::LeafKeyMismatch)
        );

        let mut chain = Chain::new();
        chain.inter_details.key = Some(vec![1; 31]);
        assert_eq!(chain.verify(), Err(CertError::BadLength(Intermediate)));
    }

    #[test]
    fn validity_bounds_are_inclusive_in_milliseconds() {
        let chain = Chain::new();
        let encoded = chain.encode();
        let check = |now| verify_chain(&encoded, &chain.root(), &chain.leaf_key, now);
        assert!(check(1_750_000_000_000).is_ok());
        assert!(check(1_850_000_000_000).is_ok());
        assert_eq!(
            check(1_749_999_999_999),
            Err(CertError::NotYetValid(CertRole::Leaf))
        );
        assert_eq!(
            check(1_850_000_000_001),
            Err(CertError::Expired(CertRole::Leaf))
        );
    }

    #[test]
    fn refuses_missing_parts_and_garbage() {
        let chain = Chain::new();
        let root = chain.root();
        assert_eq!(
            verify_chain(&[0xff, 0xff], &root, &chain.leaf_key, NOW_MS),
            Err(CertError::Malformed)
        );
        assert_eq!(
            verify_chain(&[], &root, &chain.leaf_key, NOW_MS),
            Err(CertError::Missing(CertRole::Intermediate))
        );
        let mut decoded = CertChain::decode(chain.encode().as_slice()).unwrap();
        if let Some(leaf) = decoded.leaf.as_mut() {
            leaf.signature = Some(vec![0; 63]);
        }
        assert_eq!(
            verify_chain(&decoded.encode_to_vec(), &root, &chain.leaf_key, NOW_MS),
            Err(CertError::BadLength(CertRole::Leaf))
        );
    }
}
