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

/// Python 3 with its `venv` module, for the test that installs DNSViz into a virtual
/// environment of its own (`apt-get install python3-venv`).
pub const PYTHON3: Tool = Tool {
    name: "python3",
    candidates: &["/usr/bin/python3"],
};

/// musl's C compiler wrapper, for the test of a musl-linked stub resolver
/// (`apt-get install musl-tools`).
pub const MUSL_GCC: Tool = Tool {
    name: "musl-gcc",
    candidates: &["/usr/bin/musl-gcc"],
};

/// Brings up the loopback interface of a network namespace (`apt-get install iproute2`).
pub const IP: Tool = Tool {
    name: "ip",
    candidates: &["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"],
};

/// Runs a program in namespaces of its own: a mount namespace for the musl test's
/// resolv.conf (`apt-get install util-linux`).
pub const UNSHARE: Tool = Tool {
    name: "unshare",
    candidates: &["/usr/bin/unshare"],
};

/// The tools whose tests `build.rs` can mark as ignored: each such test carries
/// `#[cfg_attr(no_<name>, ignore = "…")]` (`-` in a name becomes `_`, see [`Tool::cfg`]).
pub const GATED: [Tool; 7] = [KNOTD, DIG, PRLIMIT, PYTHON3, MUSL_GCC, IP, UNSHARE];

/// The cfg `build.rs` sets when this machine does not let a test create network namespaces
/// (not root, or a container that forbids `unshare(CLONE_NEWNET)`).
pub const NO_NETNS: &str = "no_netns";

impl Tool {
    /// The cfg set when the tool is missing: `no_` and its name, `-` as `_`.
    pub fn cfg(&self) -> String {
        format!("no_{}", self.name.replace('-', "_"))
    }

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

/// True if the Python at `python` can make virtual environments (Debian splits `venv` and
/// `ensurepip` off into python3-venv).
pub fn python_has_venv(python: &Path) -> bool {
    std::process::Command::new(python)
        .args(["-c", "import venv, ensurepip"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// True if this process may create a network namespace and use it: what the tests that
/// run servers on port 53 do. Checked by running `unshare --net` with `ip` in it.
pub fn netns_allowed() -> bool {
    let (Some(unshare), Some(ip)) = (UNSHARE.find(), IP.find()) else {
        return false;
    };
    std::process::Command::new(unshare)
        .arg("--net")
        .arg(ip)
        .args(["link", "set", "lo", "up"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// True if the environment says this is CI, where a missing tool is a failure, not a skip.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "0" && v != "false")
}
