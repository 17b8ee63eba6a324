//! What a panic leaves behind in wasm: a poisoned client with a clear error, not a dead module.
//!
//! The module is built with `panic = "abort"` (unwinding is not available on
//! wasm32-unknown-unknown), so a panic runs the hook installed here and then traps: the call
//! that panicked throws a `WebAssembly.RuntimeError` in JavaScript and never returns. What it
//! was doing is left half done, so the client it ran on must not be used again; the rest of the
//! module (other clients, the codec) is untouched and keeps working. [`Poisonable`] marks a
//! value busy for the length of each call without a drop guard, so a call that never returned
//! leaves the mark, and every later call on that value fails with [`Poisoned`], which carries
//! the panic's message recorded by the hook.

use std::cell::{Cell, RefCell};
use std::sync::Once;

thread_local! {
    /// The message of the last panic, as the hook recorded it.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// Installs the panic hook that records each panic's message (once per module).
pub(crate) fn install_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = info.to_string();
            LAST_PANIC.with(|last| {
                if let Ok(mut last) = last.try_borrow_mut() {
                    *last = Some(message);
                }
            });
            previous(info);
        }));
    });
}

/// The message of the last panic in this module, if any.
pub(crate) fn last_panic() -> Option<String> {
    LAST_PANIC.with(|last| last.try_borrow().ok().and_then(|last| last.clone()))
}

/// A call found its value poisoned by an earlier call that panicked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Poisoned {
    /// The panic's message, when the hook recorded one.
    pub(crate) panic: Option<String>,
}

impl Poisoned {
    /// The stable error code.
    pub(crate) const CODE: &'static str = "client_panicked";

    /// What the host is told.
    pub(crate) fn message(&self) -> String {
        format!(
            "walink panicked in an earlier call on this client, which can no longer be used \
             (rebuild it from its store, and please report the bug): {}",
            self.panic.as_deref().unwrap_or("no message")
        )
    }
}

/// A value whose calls each run to completion, or poison it for good.
#[derive(Debug)]
pub(crate) struct Poisonable<T> {
    value: RefCell<T>,
    busy: Cell<bool>,
}

impl<T> Poisonable<T> {
    /// Wraps `value`.
    pub(crate) fn new(value: T) -> Self {
        Poisonable {
            value: RefCell::new(value),
            busy: Cell::new(false),
        }
    }

    /// Runs `f` on the value, unless an earlier call never returned.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Result<R, Poisoned> {
        let poisoned = || Poisoned {
            panic: last_panic(),
        };
        if self.busy.get() {
            return Err(poisoned());
        }
        let mut value = self.value.try_borrow_mut().map_err(|_| poisoned())?;
        // No drop guard on purpose: a call that panics leaves the mark set.
        self.busy.set(true);
        let result = f(&mut value);
        self.busy.set(false);
        Ok(result)
    }
}

#[cfg(test)]
#[allow(clippy::panic, clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_call_that_panicked_poisons_the_value_with_its_message() {
        install_hook();
        let counter = Poisonable::new(0u32);
        assert_eq!(
            counter.with(|c| {
                *c += 1;
                *c
            }),
            Ok(1)
        );
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = counter.with(|_| panic!("a bug in the core"));
        }));
        assert!(panicked.is_err());
        let error = counter.with(|c| *c).unwrap_err();
        assert!(
            error
                .panic
                .as_deref()
                .is_some_and(|m| m.contains("a bug in the core")),
            "{error:?}"
        );
        assert!(error.message().contains("rebuild it from its store"));
        // Every later call fails the same way; another value is untouched.
        assert!(counter.with(|c| *c).is_err());
        assert_eq!(Poisonable::new(5).with(|c| *c), Ok(5));
    }
}
