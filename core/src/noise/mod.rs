//! The Noise_XX_25519_AESGCM_SHA256 handshake, the server certificate chain and the transport cipher.
