//! The external programs some end-to-end tests run, and where to look for them. Shared with
//! `build.rs` (through `#[path]`), which marks the tests of a program this machine lacks as
//! ignored, so both agree on what "installed" means. Only `std` here.

use std::path::{Path, PathBuf};

/// A program a test cannot run without.
#[derive(Clone, Copy, Debug)]
pub struct Tool {
    /// Its file name, looked up on `PATH`.
    pub name: &'static str,
    /// Where its package installs it, tried before `PATH` (cargo may run with a `PATH`
    /// that lacks the sbin directories).
    pub candidates: &'static [&'static str],
}

/// Knot DNS, the clusters' DNS of the Knot tests (`apt-get install knot`).
pub const KNOTD: Tool = Tool {
    name: "knotd",
    candidates: &["/usr/sbin/knotd"],
};

/// The client of the `dig` test (`apt-get install bind9-dnsutils`).
pub const DIG: Tool = Tool {
    name: "dig",
    candidates: &["/usr/bin/dig"],
};

/// Sets the locked-memory limit for the test of gatherdns-glommio without io_uring
/// (`apt-get install util-linux`).
pub const PRLIMIT: Tool = Tool {
    name: "prlimit",
    candidates: &["/usr/bin/prlimit"],
};

/// The tools whose tests `build.rs` can mark as ignored: each such test carries
/// `#[cfg_attr(no_<name>, ignore = "…")]`.
pub const GATED: [Tool; 3] = [KNOTD, DIG, PRLIMIT];

impl Tool {
    /// The first candidate that is a file, else the first `name` on `PATH`.
    pub fn find(&self) -> Option<PathBuf> {
        let on_path = || {
            let path = std::env::var_os("PATH")?;
            std::env::split_paths(&path)
                .map(|dir| dir.join(self.name))
                .find(|p| p.is_file())
        };
        self.candidates
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .or_else(on_path)
    }

    /// The directories the program would appear in when installed: its candidates' and
    /// those on `PATH`, absolute and existing ones only.
    pub fn install_dirs(&self) -> Vec<PathBuf> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs: Vec<PathBuf> = Vec::new();
        let candidates = self.candidates.iter().filter_map(|c| Path::new(c).parent());
        for dir in candidates
            .map(Path::to_path_buf)
            .chain(std::env::split_paths(&path))
        {
            if dir.is_absolute() && dir.is_dir() && !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        dirs
    }
}

/// True if the environment says this is CI, where a missing tool is a failure, not a skip.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "0" && v != "false")
}
