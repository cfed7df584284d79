//! Reloading the Corefile, the part both binaries share: reading it with a fingerprint of
//! every file read (Corefile, imports, zone and hosts files), deciding whether a check found a
//! change, how often the `reload` directive checks, and the log lines CoreDNS prints. The
//! binaries do the waiting (SIGUSR1, the timer), the listeners and [`gatherdns_core::Gateway::reconfigure`].
//!
//! A reload, as a binary runs it:
//!
//! 1. SIGUSR1, or the timer of [`check_interval`], fires; the binary prints
//!    [`Reloader::starting`] (only when it will act, see 3).
//! 2. [`load`] reads the Corefile again (off the serving thread if it can).
//! 3. [`Reloader::consider`] says whether to go on: a timer check of an unchanged Corefile does
//!    nothing and prints nothing; a signal always reloads, as CoreDNS's does.
//! 4. The binary binds the listeners the new configuration adds and reconfigures every
//!    gateway; then it reports [`Reloader::succeeded`] or [`Reloader::failed`] and prints the
//!    lines they return. After a failure the old configuration keeps serving.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest as _, Sha512};

use gatherdns_core::config::{defaults, Config, Fingerprint};
use gatherdns_core::corefile::{parse_corefile_text, ParseOptions};
use gatherdns_core::loader::Loader;

use crate::cli::Cli;
use crate::loader::FsLoader;

/// A Corefile read for serving or reloading: its fingerprint, which exists even when the
/// configuration does not parse, and the configuration or the one-line error.
#[derive(Debug)]
pub struct Loaded {
    /// Of every file read, also when parsing failed midway.
    pub fingerprint: Fingerprint,
    /// The configuration, with `fingerprint` set, or the error as the binary prints it.
    pub config: Result<Config, String>,
}

/// Reads the Corefile the command line names, with everything it imports and loads, and
/// applies the command line's settings (`-dns.port`, `-max-inflight`).
pub fn load(cli: &Cli) -> Loaded {
    let loader = Recording::new(FsLoader);
    let text = loader.read(&cli.conf);
    let corefile: [u8; 64] = Sha512::digest(text.as_deref().unwrap_or_default()).into();
    let config = match text {
        Err(_) if !cli.conf.exists() => Err(format!(
            "no Corefile at {} (give one with -conf FILE)",
            cli.conf.display()
        )),
        Err(e) => Err(format!(
            "cannot read Corefile {:?}: {e}",
            cli.conf.display().to_string()
        )),
        Ok(text) => {
            let options = ParseOptions {
                default_port: cli.dns_port.unwrap_or(defaults::PORT),
            };
            parse_corefile_text(&cli.conf, &text, &loader, &options).map_err(|e| e.to_string())
        }
    };
    let fingerprint = Fingerprint::new(corefile, loader.finish());
    let config = config.map(|mut config| {
        if let Some(max) = cli.max_inflight {
            config.max_inflight = max;
        }
        config.fingerprint = Some(fingerprint);
        config
    });
    Loaded {
        fingerprint,
        config,
    }
}

/// How often the `reload` directive checks the Corefile: the shortest interval of any block
/// that has one (CoreDNS's plugin is process-wide too), moved once by a random part of its
/// jitter: `random` picks where in `[interval - jitter/2, interval + jitter/2)`. `None` when
/// no block asks for checks.
pub fn check_interval(config: &Config, random: u64) -> Option<Duration> {
    let reload = config
        .servers
        .iter()
        .filter_map(|b| b.reload.as_ref())
        .min_by_key(|r| (r.interval, r.jitter))?;
    let jitter = u64::try_from(reload.jitter.as_millis()).unwrap_or(u64::MAX);
    let offset = Duration::from_millis(random.checked_rem(jitter).unwrap_or(0));
    Some(reload.interval - reload.jitter / 2 + offset)
}

/// The addresses `config` listens on, in the order (and with the ids, after a reconfigure)
/// [`gatherdns_core::Gateway::listeners`] gives them: what a binary binds before it reconfigures.
pub fn listeners(config: &Config) -> Vec<SocketAddr> {
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for addr in config.servers.iter().flat_map(|b| b.listen_addrs()) {
        if !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }
    addrs
}

/// What started a reload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// SIGUSR1: reload whatever the Corefile says.
    Signal,
    /// The `reload` directive's timer: reload only if something changed.
    Timer,
}

/// What [`Reloader::consider`] decided.
#[derive(Debug)]
pub enum Step {
    /// A timer check found nothing new: do nothing, print nothing.
    Unchanged,
    /// Install this configuration, then report with [`Reloader::succeeded`] or
    /// [`Reloader::failed`].
    Apply(Config),
    /// The new Corefile is broken; this line is already counted as a failure.
    Failed(String),
}

/// The reload state of a process: the configuration in force, the last one tried, and the
/// failures so far (CoreDNS's `coredns_reload_failed_total`).
#[derive(Debug)]
pub struct Reloader {
    running: Option<Fingerprint>,
    /// The last Corefile a timer check acted on: a broken one is reported once, not at
    /// every check until it is fixed (as CoreDNS does).
    seen: Option<Fingerprint>,
    failures: u64,
}

impl Reloader {
    /// For a process serving `config`.
    pub fn new(config: &Config) -> Reloader {
        Reloader {
            running: config.fingerprint,
            seen: config.fingerprint,
            failures: 0,
        }
    }

    /// The fingerprint of the configuration in force, if it was read from files.
    pub fn running(&self) -> Option<Fingerprint> {
        self.running
    }

    /// Reloads that failed since the process started.
    pub fn failures(&self) -> u64 {
        self.failures
    }

    /// The line that announces a reload.
    pub fn starting(trigger: Trigger) -> &'static str {
        match trigger {
            Trigger::Signal => "[INFO] SIGUSR1: Reloading",
            Trigger::Timer => "[INFO] Reloading",
        }
    }

    /// The line CoreDNS prints when it starts serving a configuration that uses `reload`.
    pub fn running_line(fingerprint: &Fingerprint) -> String {
        format!(
            "[INFO] plugin/reload: Running configuration SHA512 = {}",
            fingerprint.sha512()
        )
    }

    /// Whether a freshly loaded Corefile should be installed.
    pub fn consider(&mut self, trigger: Trigger, loaded: Loaded) -> Step {
        if trigger == Trigger::Timer && self.seen == Some(loaded.fingerprint) {
            return Step::Unchanged;
        }
        self.seen = Some(loaded.fingerprint);
        match loaded.config {
            Ok(config) => Step::Apply(config),
            Err(message) => Step::Failed(self.failed(trigger, &message)),
        }
    }

    /// The configuration of `fingerprint` is in force: the lines to print.
    pub fn succeeded(&mut self, fingerprint: Option<Fingerprint>) -> Vec<String> {
        self.running = fingerprint;
        self.seen = fingerprint;
        let mut lines = Vec::new();
        if let Some(fingerprint) = &fingerprint {
            lines.push(Reloader::running_line(fingerprint));
        }
        lines.push("[INFO] Reloading complete".to_string());
        lines
    }

    /// Installing failed (a listener could not be bound, the gateway refused the
    /// configuration): counts it and gives the line to print. The old configuration stays.
    pub fn failed(&mut self, trigger: Trigger, message: &str) -> String {
        self.failures += 1;
        match trigger {
            Trigger::Signal => format!("[ERROR] SIGUSR1: {message}"),
            Trigger::Timer => {
                format!("[ERROR] plugin/reload: Corefile changed but reload failed: {message}")
            }
        }
    }
}

/// A loader that hashes everything it hands out, so that a reload can tell whether any file
/// the configuration came from has changed.
struct Recording<L> {
    inner: L,
    hash: RefCell<Sha512>,
}

impl<L: Loader> Recording<L> {
    fn new(inner: L) -> Self {
        Recording {
            inner,
            hash: RefCell::new(Sha512::new()),
        }
    }

    fn record(&self, kind: u8, path: &Path, data: &[u8]) {
        let mut hash = self.hash.borrow_mut();
        let path = path.as_os_str().as_encoded_bytes();
        for part in [path, data] {
            hash.update([kind]);
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part);
        }
    }

    fn finish(self) -> [u8; 64] {
        self.hash.into_inner().finalize().into()
    }
}

impl<L: Loader> Loader for Recording<L> {
    fn read(&self, path: &Path) -> Result<String, String> {
        let result = self.inner.read(path);
        match &result {
            Ok(text) => self.record(b'r', path, text.as_bytes()),
            // A file that is missing now may appear later (a hosts file): that is a change.
            Err(e) => self.record(b'e', path, e.as_bytes()),
        }
        result
    }

    fn glob(&self, pattern: &Path) -> Result<Vec<PathBuf>, String> {
        let result = self.inner.glob(pattern);
        if let Ok(paths) = &result {
            let list: Vec<u8> = paths
                .iter()
                .flat_map(|p| p.as_os_str().as_encoded_bytes().iter().copied().chain([0]))
                .collect();
            self.record(b'g', pattern, &list);
        }
        result
    }

    fn env(&self, name: &str) -> Option<String> {
        self.inner.env(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("gatherdns-reload-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        dir
    }

    fn cli(conf: PathBuf) -> Cli {
        Cli {
            conf,
            ..Cli::default()
        }
    }

    #[test]
    fn fingerprint_follows_corefile_and_the_files_it_reads() {
        let dir = dir("fingerprint");
        let conf = dir.join("Corefile");
        std::fs::write(&conf, ".:1053 {\n  import extra.conf\n}\n").expect("write");
        std::fs::write(dir.join("extra.conf"), "log\n").expect("write");
        let first = load(&cli(conf.clone()));
        let config = first.config.expect("parses");
        assert_eq!(config.fingerprint, Some(first.fingerprint));
        // The logged SHA-512 is the Corefile's own, as sha512sum prints it.
        let sha = first.fingerprint.sha512();
        assert_eq!(sha.len(), 128);
        assert_eq!(load(&cli(conf.clone())).fingerprint, first.fingerprint);
        std::fs::write(dir.join("extra.conf"), "errors\n").expect("write");
        let second = load(&cli(conf.clone()));
        assert_ne!(second.fingerprint, first.fingerprint, "an import changed");
        assert_eq!(second.fingerprint.sha512(), sha, "the Corefile did not");
        std::fs::write(&conf, ".:1053 {\n  nonsense\n}\n").expect("write");
        let broken = load(&cli(conf.clone()));
        assert!(broken.config.is_err());
        assert_ne!(broken.fingerprint, second.fingerprint);
        std::fs::remove_dir_all(&dir).expect("cleanup");
        let missing = load(&cli(conf));
        assert!(missing
            .config
            .expect_err("gone")
            .starts_with("no Corefile at "));
    }

    #[test]
    fn sha512_is_the_standard_one() {
        let dir = dir("sha");
        let conf = dir.join("Corefile");
        std::fs::write(&conf, "abc").expect("write");
        let loaded = load(&cli(conf));
        std::fs::remove_dir_all(&dir).expect("cleanup");
        // FIPS 180-2 test vector for "abc".
        assert!(loaded.fingerprint.sha512().starts_with("ddaf35a193617aba"));
        assert!(loaded.fingerprint.sha512().ends_with("a54ca49f"));
    }

    fn loaded(text: &str, config: Result<Config, String>) -> Loaded {
        Loaded {
            fingerprint: Fingerprint::new(Sha512::digest(text).into(), Sha512::digest(text).into()),
            config,
        }
    }

    #[test]
    fn timer_checks_act_on_changes_once_signals_always() {
        let mut r = Reloader::new(&Config {
            fingerprint: Some(loaded("a", Ok(Config::default())).fingerprint),
            ..Config::default()
        });
        assert!(matches!(
            r.consider(Trigger::Timer, loaded("a", Ok(Config::default()))),
            Step::Unchanged
        ));
        assert!(matches!(
            r.consider(Trigger::Signal, loaded("a", Ok(Config::default()))),
            Step::Apply(_)
        ));
        let Step::Failed(line) = r.consider(Trigger::Timer, loaded("b", Err("x:1: bad".into())))
        else {
            panic!("a broken file fails");
        };
        assert_eq!(
            line,
            "[ERROR] plugin/reload: Corefile changed but reload failed: x:1: bad"
        );
        // The same broken file is not reported again at every check.
        assert!(matches!(
            r.consider(Trigger::Timer, loaded("b", Err("x:1: bad".into()))),
            Step::Unchanged
        ));
        let Step::Failed(line) = r.consider(Trigger::Signal, loaded("b", Err("x:1: bad".into())))
        else {
            panic!("a signal tries again");
        };
        assert_eq!(line, "[ERROR] SIGUSR1: x:1: bad");
        assert_eq!(r.failures(), 2);
        let fixed = loaded("c", Ok(Config::default()));
        let fingerprint = fixed.fingerprint;
        assert!(matches!(r.consider(Trigger::Timer, fixed), Step::Apply(_)));
        let lines = r.succeeded(Some(fingerprint));
        assert!(lines[0].starts_with("[INFO] plugin/reload: Running configuration SHA512 = "));
        assert_eq!(lines[1], "[INFO] Reloading complete");
    }

    #[test]
    fn interval_is_the_shortest_with_jitter_around_it() {
        let parse = |text: &str| {
            parse_corefile_text(
                Path::new("Corefile"),
                text,
                &gatherdns_core::loader::MemLoader::new(),
                &ParseOptions::default(),
            )
            .expect("valid")
        };
        assert_eq!(check_interval(&parse(". {\n log\n}\n"), 7), None);
        let config = parse(". {\n reload 30s\n}\nexample.:54 {\n reload 10s 4s\n}\n");
        assert_eq!(check_interval(&config, 0), Some(Duration::from_secs(8)));
        assert_eq!(
            check_interval(&config, 3999),
            Some(Duration::from_millis(11_999))
        );
        assert_eq!(check_interval(&config, 4000), Some(Duration::from_secs(8)));
    }
}
