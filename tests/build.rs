//! Marks the end-to-end tests of an external program this machine lacks as ignored, so that
//! cargo's summary counts them as ignored rather than passed. For each tool of
//! `tools::GATED` it finds missing, it sets `cfg(no_<tool>)`, which the tests turn into
//! `#[ignore]`; where network namespaces cannot be created, `cfg(no_netns)`. Under CI nothing
//! is ignored: a missing tool fails its tests loudly.

// `pub`: its items are `pub` for the test library; in a private module they would be
// unreachable here.
#[path = "src/tools.rs"]
pub mod tools;

fn main() {
    for tool in tools::GATED {
        println!("cargo::rustc-check-cfg=cfg({})", tool.cfg());
    }
    println!("cargo::rustc-check-cfg=cfg({})", tools::NO_NETNS);
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=src/tools.rs");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-env-changed=CI");
    if tools::in_ci() {
        return;
    }
    if !tools::netns_allowed() {
        println!("cargo::rustc-cfg={}", tools::NO_NETNS);
    }
    for tool in tools::GATED {
        let usable = |path: &std::path::PathBuf| {
            tool.name != tools::PYTHON3.name || tools::python_has_venv(path)
        };
        match tool.find().filter(usable) {
            // Removing it makes its tests ignored again.
            Some(path) => println!("cargo::rerun-if-changed={}", path.display()),
            None => {
                println!("cargo::rustc-cfg={}", tool.cfg());
                // Installing it runs its tests on the next build. Only existing directories:
                // cargo would take a missing path as changed and rebuild every time.
                for dir in tool.install_dirs() {
                    println!("cargo::rerun-if-changed={}", dir.display());
                }
            }
        }
    }
}
