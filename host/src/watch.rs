//! Re-reading the files the gateway answers from (a `hosts` file) when they change: one task
//! per file checks its modification time and size every interval, as CoreDNS's hosts plugin
//! does, and hands a changed file's text to the gateway, which swaps its table in one call.

use std::path::Path;
use std::rc::Rc;
use std::time::{Instant, SystemTime};

use gatherdns_core::WatchedFile;

use crate::driver::Driver;
use crate::log;
use crate::runtime::Runtime;

/// Starts a watcher for each file of the configuration in force, replacing the driver's
/// previous watchers (a reload brings a new list). Only the `reporting` executor logs a bad
/// file: every executor reads the same text and keeps its previous table alike.
pub(crate) fn start<R: Runtime>(driver: &Rc<Driver<R>>, reporting: bool) {
    let tasks = driver
        .watched_files()
        .into_iter()
        .map(|file| R::spawn(watch(driver.clone(), file, reporting)))
        .collect();
    driver.set_watchers(tasks);
}

/// What tells a changed file from an unchanged one without reading it.
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

async fn watch<R: Runtime>(driver: Rc<Driver<R>>, file: WatchedFile, reporting: bool) {
    // Unknown at first: the file may have changed since the Corefile was read, so the first
    // look always reads it (the same text again is harmless).
    let mut seen = None;
    loop {
        R::sleep_until(Instant::now() + file.interval).await;
        let stamped = stamp(&file.path);
        // Unchanged, or gone (being replaced): keep serving the last table, as CoreDNS does.
        if stamped == seen || stamped.is_none() {
            seen = stamped;
            continue;
        }
        seen = stamped;
        // Hosts files are small: a blocking read costs less than a trip to another thread.
        let result = std::fs::read_to_string(&file.path)
            .map_err(|e| format!("cannot read {}: {e}", file.path.display()))
            .and_then(|text| {
                let mut result = Ok(());
                driver.handle(|gateway, _| result = gateway.update_file(&file.path, &text));
                result.map_err(|e| e.to_string())
            });
        if let (Err(e), true) = (result, reporting) {
            log::error(format_args!(
                "plugin/hosts: {e}; keeping the previous table"
            ));
        }
    }
}
