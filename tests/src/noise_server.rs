//! The server (responder) side of WhatsApp's Noise XX handshake, for the simulator and for
//! walink's interop tests: a test certificate chain (root -> intermediate -> leaf, XEdDSA), the
//! ServerHello, the ClientFinish with the decrypted ClientPayload, and the transport ciphers.
//!
//! The symmetric state is written here again, independently of `walink_core::noise`, so that a
//! handshake between walink's client and this responder checks two implementations against
//! each other (Baileys' client is tested against this responder too). It follows transport.md
//! §2.2-2.3 from the responder's side, including WhatsApp's deviation: the empty payload of
//! message 1 is not mixed into the hash.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use hkdf::Hkdf;
use prost::Message;
use sha2::{Digest, Sha256};
use walink_core::noise::{NoiseKeyPair, PROLOGUE, PROTOCOL_NAME, TransportCipher, TrustRoot};
use walink_core::proto::wa::cert_chain::NoiseCertificate;
use walink_core::proto::wa::cert_chain::noise_certificate::Details;
use walink_core::proto::wa::handshake_message::ServerHello;
use walink_core::proto::wa::{CertChain, ClientPayload, HandshakeMessage};
use walink_core::signal::xeddsa;
use x25519_dalek::{PublicKey, StaticSecret};

/// Why the responder refused a client message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponderError {
    /// Not a valid `HandshakeMessage` (or `ClientPayload`) protobuf.
    #[error("malformed handshake message")]
    Malformed,
    /// The ClientHello or ClientFinish lacks a field.
    #[error("handshake message is missing a part")]
    MissingPart,
    /// A key is not 32 bytes.
    #[error("key has the wrong length")]
    BadKeyLength,
    /// A ciphertext did not authenticate.
    #[error("handshake ciphertext failed to decrypt")]
    Decrypt,
}

/// How to build the test certificate chain. [`ChainSpec::default`] gives a valid chain from
/// 2020 to 2096 under the test root; tests change one field to break one rule.
#[derive(Debug, Clone)]
pub struct ChainSpec {
    /// The private key of the root that clients trust.
    pub root_private: [u8; 32],
    /// The key that actually signs the intermediate (the root's, unless a test forges it).
    pub intermediate_signer_private: [u8; 32],
    /// The intermediate's private key (it signs the leaf).
    pub intermediate_private: [u8; 32],
    /// Serial of the intermediate.
    pub intermediate_serial: u32,
    /// Issuer serial named by the intermediate (the root's serial, 0, when valid).
    pub intermediate_issuer_serial: u32,
    /// Validity of the intermediate, unix seconds.
    pub intermediate_validity: (u64, u64),
    /// Serial of the leaf.
    pub leaf_serial: u32,
    /// Issuer serial named by the leaf (the intermediate's serial when valid).
    pub leaf_issuer_serial: u32,
    /// Validity of the leaf, unix seconds.
    pub leaf_validity: (u64, u64),
    /// The key the leaf certifies; `None` means the server's static key (valid).
    pub leaf_key: Option<[u8; 32]>,
}

impl Default for ChainSpec {
    fn default() -> Self {
        ChainSpec {
            root_private: [0x71; 32],
            intermediate_signer_private: [0x71; 32],
            intermediate_private: [0x72; 32],
            intermediate_serial: 0x2a,
            intermediate_issuer_serial: 0,
            intermediate_validity: (1_600_000_000, 4_000_000_000),
            leaf_serial: 0x1234,
            leaf_issuer_serial: 0x2a,
            leaf_validity: (1_600_000_000, 4_000_000_000),
            leaf_key: None,
        }
    }
}

impl ChainSpec {
    /// The root clients must trust for this chain (serial 0).
    pub fn trust_root(&self) -> TrustRoot {
        TrustRoot {
            public_key: NoiseKeyPair::from_private(self.root_private).public_key(),
            serial: 0,
        }
    }

    /// The serialized `CertChain` for a server whose static public key is `server_static`.
    pub fn encode(&self, server_static: &[u8; 32]) -> Vec<u8> {
        let certificate = |signer: &[u8; 32], details: Details| {
            let details = details.encode_to_vec();
            let signature = xeddsa::sign(signer, &details, &[0x5a; 64]);
            NoiseCertificate {
                details: Some(details),
                signature: Some(signature.to_vec()),
            }
        };
        let intermediate_public =
            NoiseKeyPair::from_private(self.intermediate_private).public_key();
        CertChain {
            intermediate: Some(certificate(
                &self.intermediate_signer_private,
                Details {
                    serial: Some(self.intermediate_serial),
                    issuer_serial: Some(self.intermediate_issuer_serial),
                    key: Some(intermediate_public.to_vec()),
                    not_before: Some(self.intermediate_validity.0),
                    not_after: Some(self.intermediate_validity.1),
                },
            )),
            leaf: Some(certificate(
                &self.intermediate_private,
                Details {
                    serial: Some(self.leaf_serial),
                    issuer_serial: Some(self.leaf_issuer_serial),
                    key: Some(self.leaf_key.unwrap_or(*server_static).to_vec()),
                    not_before: Some(self.leaf_validity.0),
                    not_after: Some(self.leaf_validity.1),
                },
            )),
        }
        .encode_to_vec()
    }
}

/// The server's long-term identity: its Noise static key and its certificate chain.
#[derive(Debug, Clone)]
pub struct ServerIdentity {
    static_key: NoiseKeyPair,
    chain: Vec<u8>,
}

impl ServerIdentity {
    /// A server with static private key `static_private` and the chain described by `spec`.
    pub fn new(static_private: [u8; 32], spec: &ChainSpec) -> Self {
        let static_key = NoiseKeyPair::from_private(static_private);
        let chain = spec.encode(&static_key.public_key());
        ServerIdentity { static_key, chain }
    }

    /// A server with a fixed static key and a valid chain under `ChainSpec::default()`'s root.
    pub fn test() -> Self {
        ServerIdentity::new([0x73; 32], &ChainSpec::default())
    }

    /// The server's static public key.
    pub fn static_public(&self) -> [u8; 32] {
        self.static_key.public_key()
    }
}

/// The responder's handshake state: `h`, `ck` and the current key with its counter.
struct Symmetric {
    hash: [u8; 32],
    chaining_key: [u8; 32],
    key: [u8; 32],
    counter: u32,
}

impl Symmetric {
    fn new() -> Self {
        Symmetric {
            hash: *PROTOCOL_NAME,
            chaining_key: *PROTOCOL_NAME,
            key: [0; 32],
            counter: 0,
        }
    }

    fn mix_hash(&mut self, data: &[u8]) {
        self.hash = Sha256::new()
            .chain_update(self.hash)
            .chain_update(data)
            .finalize()
            .into();
    }

    fn mix_key(&mut self, ikm: &[u8]) {
        let (chaining_key, key) = hkdf64(&self.chaining_key, ikm);
        self.chaining_key = chaining_key;
        self.key = key;
        self.counter = 0;
    }

    fn iv(&mut self) -> [u8; 12] {
        let mut iv = [0; 12];
        iv[8..].copy_from_slice(&self.counter.to_be_bytes());
        self.counter += 1;
        iv
    }

    fn encrypt(&mut self, plaintext: &[u8]) -> Vec<u8> {
        let iv = self.iv();
        let aad = self.hash;
        let ciphertext = Aes256Gcm::new(&self.key.into())
            .encrypt(
                &iv.into(),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .unwrap_or_default();
        self.mix_hash(&ciphertext);
        ciphertext
    }

    fn decrypt(&mut self, ciphertext: &[u8]) -> Result<Vec<u8>, ResponderError> {
        let iv = self.iv();
        let aad = self.hash;
        let plaintext = Aes256Gcm::new(&self.key.into())
            .decrypt(
                &iv.into(),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| ResponderError::Decrypt)?;
        self.mix_hash(ciphertext);
        Ok(plaintext)
    }
}

fn hkdf64(salt: &[u8; 32], ikm: &[u8]) -> ([u8; 32], [u8; 32]) {
    let mut okm = [0u8; 64];
    let _ = Hkdf::<Sha256>::new(Some(salt), ikm).expand(&[], &mut okm);
    let mut first = [0; 32];
    let mut second = [0; 32];
    first.copy_from_slice(&okm[..32]);
    second.copy_from_slice(&okm[32..]);
    (first, second)
}

fn dh(private: &StaticSecret, public: &[u8; 32]) -> [u8; 32] {
    private.diffie_hellman(&PublicKey::from(*public)).to_bytes()
}

/// The responder after sending ServerHello, waiting for the ClientFinish.
pub struct Responder {
    state: Symmetric,
    ephemeral: StaticSecret,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder").finish_non_exhaustive()
    }
}

/// A completed handshake as the server sees it.
#[derive(Debug)]
pub struct Accepted {
    /// The client's Noise static (long-term) public key.
    pub client_static: [u8; 32],
    /// The ClientPayload bytes exactly as the client sent them.
    pub payload_bytes: Vec<u8>,
    /// The decoded ClientPayload.
    pub payload: ClientPayload,
    /// The server's transport ciphers (writes with the client's read key and vice versa).
    pub transport: TransportCipher,
}

impl Responder {
    /// Answers the ClientHello frame payload `client_hello` with the server ephemeral key
    /// `ephemeral_private`. Returns the state and the ServerHello frame payload.
    pub fn respond(
        identity: &ServerIdentity,
        ephemeral_private: [u8; 32],
        client_hello: &[u8],
    ) -> Result<(Responder, Vec<u8>), ResponderError> {
        let message =
            HandshakeMessage::decode(client_hello).map_err(|_| ResponderError::Malformed)?;
        let client_ephemeral: [u8; 32] = message
            .client_hello
            .and_then(|hello| hello.ephemeral)
            .ok_or(ResponderError::MissingPart)?
            .try_into()
            .map_err(|_| ResponderError::BadKeyLength)?;
        let ephemeral = StaticSecret::from(ephemeral_private);
        let ephemeral_public = PublicKey::from(&ephemeral).to_bytes();

        let mut state = Symmetric::new();
        state.mix_hash(&PROLOGUE);
        state.mix_hash(&client_ephemeral);
        state.mix_hash(&ephemeral_public);
        state.mix_key(&dh(&ephemeral, &client_ephemeral));
        let static_ct = state.encrypt(&identity.static_public());
        let static_secret = StaticSecret::from(identity.static_key.private_key());
        state.mix_key(&dh(&static_secret, &client_ephemeral));
        let chain_ct = state.encrypt(&identity.chain);

        let hello = HandshakeMessage {
            server_hello: Some(ServerHello {
                ephemeral: Some(ephemeral_public.to_vec()),
                r#static: Some(static_ct),
                payload: Some(chain_ct),
            }),
            ..HandshakeMessage::default()
        }
        .encode_to_vec();
        Ok((Responder { state, ephemeral }, hello))
    }

    /// Processes the ClientFinish frame payload: decrypts the client's static key and its
    /// ClientPayload, and splits into the transport ciphers.
    pub fn finish(mut self, client_finish: &[u8]) -> Result<Accepted, ResponderError> {
        let message =
            HandshakeMessage::decode(client_finish).map_err(|_| ResponderError::Malformed)?;
        let finish = message.client_finish.ok_or(ResponderError::MissingPart)?;
        let (Some(static_ct), Some(payload_ct)) = (finish.r#static, finish.payload) else {
            return Err(ResponderError::MissingPart);
        };
        let client_static: [u8; 32] = self
            .state
            .decrypt(&static_ct)?
            .try_into()
            .map_err(|_| ResponderError::BadKeyLength)?;
        self.state.mix_key(&dh(&self.ephemeral, &client_static));
        let payload_bytes = self.state.decrypt(&payload_ct)?;
        let payload = ClientPayload::decode(payload_bytes.as_slice())
            .map_err(|_| ResponderError::Malformed)?;
        let (client_to_server, server_to_client) = hkdf64(&self.state.chaining_key, &[]);
        Ok(Accepted {
            client_static,
            payload_bytes,
            payload,
            transport: TransportCipher::new(&server_to_client, &client_to_server),
        })
    }
}
