//! Files the gateway answers from after startup (a `hosts` file): which to watch and how
//! often, and taking in a changed one. The core reads no files; the runtime watches them and
//! hands over the new text, which replaces the old table at once or not at all.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Gateway;
use crate::config::Location;
use crate::error::ConfigError;

/// A file the runtime should re-read when it changes, and how often to look.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchedFile {
    /// The path, as the configuration resolved it.
    pub path: PathBuf,
    /// How often to check its modification time and size.
    pub interval: Duration,
}

impl Gateway {
    /// The files to watch: every `hosts` file whose `reload` is not 0, once each, with the
    /// shortest interval any directive asks for.
    pub fn watched_files(&self) -> Vec<WatchedFile> {
        let mut files: Vec<WatchedFile> = Vec::new();
        for hosts in self
            .blocks
            .current()
            .iter()
            .filter_map(|b| b.hosts.as_ref())
        {
            if hosts.reload.is_zero() {
                continue;
            }
            match files.iter_mut().find(|f| f.path == hosts.path) {
                Some(file) => file.interval = file.interval.min(hosts.reload),
                None => files.push(WatchedFile {
                    path: hosts.path.clone(),
                    interval: hosts.reload,
                }),
            }
        }
        files
    }

    /// The new text of a watched file. Every table of the configuration in force read from
    /// `path` is rebuilt from it; if a line is malformed, none is and the error
    /// (`path:line: …`) says which line.
    pub fn update_file(&mut self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let mut tables = Vec::new();
        for (index, block) in self.blocks.current().iter().enumerate() {
            let Some(hosts) = block.hosts.as_ref().filter(|h| h.path == path) else {
                continue;
            };
            // Every user's table is built before any is installed, so a bad line changes
            // nothing anywhere.
            let table = hosts.table_for(text).map_err(|e| {
                let location = Location {
                    file: path.display().to_string(),
                    line: e.line,
                };
                ConfigError::at(&location, format!("hosts: {}", e.message))
            })?;
            tables.push((index, table));
        }
        if tables.is_empty() {
            return Err(ConfigError::General(format!(
                "no hosts directive reads {}",
                path.display()
            )));
        }
        for (index, table) in tables {
            if let Some(hosts) = self.blocks.current_mut()[index].hosts.as_mut() {
                hosts.install(table);
            }
        }
        Ok(())
    }
}
