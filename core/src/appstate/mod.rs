//! App-state sync: LTHash, mutation keys, patch and snapshot codec, sync actions.
