//! The persistent state model: records, changes and restore.
