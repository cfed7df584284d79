//! The Corefile parser's window on the real world: files, directory listings for `import`
//! globs, and the process environment. The parser itself (in the core) only sees the
//! `Loader` trait.

use std::path::{Path, PathBuf};

use gatherdns_core::loader::{GlobPattern, Loader};

/// The real filesystem and process environment.
#[derive(Clone, Copy, Debug, Default)]
pub struct FsLoader;

impl Loader for FsLoader {
    fn read(&self, path: &Path) -> Result<String, String> {
        std::fs::read_to_string(path).map_err(|e| e.to_string())
    }

    fn glob(&self, pattern: &Path) -> Result<Vec<PathBuf>, String> {
        let pattern = GlobPattern::parse(pattern)?;
        let dir = pattern.dir();
        let listing = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        // Like Go's filepath.Glob, an unreadable directory simply matches nothing.
        let Ok(entries) = std::fs::read_dir(listing) else {
            return Ok(Vec::new());
        };
        let mut found: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| pattern.matches(name))
            .map(|name| dir.join(name))
            .collect();
        found.sort();
        Ok(found)
    }

    fn env(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fs_loader_globs_a_real_directory_sorted() {
        let dir = std::env::temp_dir().join(format!("gatherdns-loader-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        for name in ["z.conf", "a.conf", "m.txt"] {
            std::fs::write(dir.join(name), name).expect("write");
        }
        let found = FsLoader.glob(&dir.join("*.conf"));
        let missing = FsLoader.glob(&dir.join("nope").join("*.conf"));
        let read = FsLoader.read(&dir.join("a.conf"));
        let unreadable = FsLoader.read(&dir.join("absent.conf"));
        std::fs::remove_dir_all(&dir).expect("cleanup");
        assert_eq!(found, Ok(vec![dir.join("a.conf"), dir.join("z.conf")]));
        assert_eq!(missing, Ok(vec![]));
        assert_eq!(read, Ok("a.conf".to_string()));
        assert!(unreadable.is_err_and(|e| e.contains("os error 2")));
    }
}
