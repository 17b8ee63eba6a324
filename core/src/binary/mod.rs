//! The WABinary node codec: tokens, nodes, attributes and JIDs.
