//! The Signal protocol as WhatsApp uses it: X3DH, double ratchet, sender keys, XEdDSA.

pub mod xeddsa;
