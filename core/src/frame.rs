//! The connection header and the 3-byte big-endian length framing.
