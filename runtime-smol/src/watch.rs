//! Re-reading the files the gateway answers from (a `hosts` file) when they change: one task
//! per file checks its modification time and size every interval, as CoreDNS's hosts plugin
//! does, and hands a changed file's text to the core, which swaps its table in one call.

use std::path::Path;
use std::rc::Rc;
use std::time::SystemTime;

use async_io::Timer;
use gatherdns_core::WatchedFile;

use crate::driver::Driver;
use crate::log;

/// Starts a watcher for each file, replacing the driver's previous watchers (a reload
/// brings a new list).
pub(crate) fn start(driver: &Rc<Driver>, files: Vec<WatchedFile>) {
    let tasks = files
        .into_iter()
        .map(|file| driver.spawn_task(watch(driver.clone(), file)))
        .collect();
    driver.set_watchers(tasks);
}

/// What tells a changed file from an unchanged one without reading it.
fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

async fn watch(driver: Rc<Driver>, file: WatchedFile) {
    // Unknown at first: the file may have changed since the Corefile was read, so the first
    // look always reads it (the same text again is harmless).
    let mut seen = None;
    loop {
        Timer::after(file.interval).await;
        let now = stamp(&file.path);
        if now == seen {
            continue;
        }
        seen = now;
        if now.is_none() {
            // Gone (or being replaced): keep serving the last table, as CoreDNS does.
            continue;
        }
        // Hosts files are small: a blocking read costs less than a thread hop would.
        let text = match std::fs::read_to_string(&file.path) {
            Ok(text) => text,
            Err(e) => {
                let path = file.path.display();
                log::error(format_args!(
                    "plugin/hosts: cannot read {path}: {e}; keeping the previous table"
                ));
                continue;
            }
        };
        let mut result = Ok(());
        driver.handle(|gateway, _| result = gateway.update_file(&file.path, &text));
        if let Err(e) = result {
            log::error(format_args!(
                "plugin/hosts: {e}; keeping the previous table"
            ));
        }
    }
}
