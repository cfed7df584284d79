//! Panics: one inside the gateway while it handles an input is caught, counted
//! (`coredns_panics_total`) and logged, and the server keeps serving, as CoreDNS recovers a
//! panicking request; anywhere else the standard report is printed and the process stops
//! (exit code 101), because an executor whose tasks died would leave its share of the
//! clients unanswered.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};

thread_local! {
    /// Set around a call whose panic is caught and survived.
    static RECOVERABLE: Cell<bool> = const { Cell::new(false) };
    /// Set while a runtime builds an executor: its panics there are a startup failure that
    /// the runtime reports itself (glommio asserts instead of returning an error).
    static EXPECTED: Cell<bool> = const { Cell::new(false) };
}

/// Installs the process's panic hook (see the module documentation).
pub fn install_hook() {
    let standard = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if EXPECTED.with(Cell::get) {
            return;
        }
        standard(info);
        if !RECOVERABLE.with(Cell::get) {
            std::process::exit(101);
        }
    }));
}

/// Runs `f`; a panic inside it is caught and its message returned.
pub(crate) fn recover<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let outer = RECOVERABLE.with(|r| r.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    RECOVERABLE.with(|r| r.set(outer));
    result.map_err(|payload| message(payload.as_ref()))
}

/// Debug builds only, for the end-to-end tests: a client message that contains the bytes of
/// `GATHERDNS_TEST_PANIC` (one label of the query name will do) panics inside the recovered
/// section, so that recovery is checked over real sockets. Release builds have no such path.
#[cfg(debug_assertions)]
pub(crate) fn injected(msg: &[u8]) {
    static TRIGGER: std::sync::OnceLock<Option<Vec<u8>>> = std::sync::OnceLock::new();
    let trigger = TRIGGER.get_or_init(|| {
        std::env::var("GATHERDNS_TEST_PANIC")
            .ok()
            .filter(|t| !t.is_empty())
            .map(String::into_bytes)
    });
    if let Some(trigger) = trigger {
        if msg.windows(trigger.len()).any(|w| w == trigger.as_slice()) {
            panic!("injected by GATHERDNS_TEST_PANIC");
        }
    }
}

/// Runs `f` (a runtime building its executor) with its panics silent, and returns the
/// panic's message as the error.
pub fn expected<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    EXPECTED.with(|e| e.set(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    EXPECTED.with(|e| e.set(false));
    result.map_err(|payload| message(payload.as_ref()))
}

/// The message of a panic, whatever its payload.
pub fn message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recovered_panic_gives_its_message() {
        let caught = recover(|| -> u8 { panic!("boom {}", 7) });
        assert_eq!(caught, Err("boom 7".to_string()));
        assert_eq!(recover(|| 3), Ok(3));
        assert!(!RECOVERABLE.with(Cell::get));
    }
}
