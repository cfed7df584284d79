//! Marks the end-to-end tests of an external program this machine lacks as ignored, so that
//! cargo's summary counts them as ignored rather than passed. For each tool of
//! `tools::GATED` it finds missing, it sets `cfg(no_<tool>)`, which the tests turn into
//! `#[ignore]`. Under CI nothing is ignored: a missing tool fails its tests loudly.

// `pub`: its items are `pub` for the test library; in a private module they would be
// unreachable here.
#[path = "src/tools.rs"]
pub mod tools;

fn main() {
    for tool in tools::GATED {
        println!("cargo::rustc-check-cfg=cfg(no_{})", tool.name);
    }
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=src/tools.rs");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-env-changed=CI");
    if tools::in_ci() {
        return;
    }
    for tool in tools::GATED {
        match tool.find() {
            // Removing it makes its tests ignored again.
            Some(path) => println!("cargo::rerun-if-changed={}", path.display()),
            None => {
                println!("cargo::rustc-cfg=no_{}", tool.name);
                // Installing it runs its tests on the next build. Only existing directories:
                // cargo would take a missing path as changed and rebuild every time.
                for dir in tool.install_dirs() {
                    println!("cargo::rerun-if-changed={}", dir.display());
                }
            }
        }
    }
}
