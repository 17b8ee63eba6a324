//! QR pairing, pairing by phone-number code, and the ADV device identity checks.
