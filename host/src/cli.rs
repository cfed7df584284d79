//! The command line both runtime binaries share, parsed with Go `flag` rules as CoreDNS does
//! (`-flag`, `--flag`, `-flag=value`, `-flag value`), so CoreDNS command lines, unit files and
//! container args work unchanged.

use std::path::PathBuf;

/// Parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cli {
    /// `-conf FILE`: the Corefile (default `Corefile`).
    pub conf: PathBuf,
    /// `-dns.port PORT` / `-p PORT`: port for server blocks whose key has none.
    pub dns_port: Option<u16>,
    /// `-pidfile FILE`: write the process id here.
    pub pidfile: Option<PathBuf>,
    /// `-plugins`: list the supported directives and exit.
    pub plugins: bool,
    /// `-quiet`: no startup banner.
    pub quiet: bool,
    /// `-version`: print the version and exit.
    pub version: bool,
    /// `-validate`: check the Corefile and exit (ours).
    pub validate: bool,
    /// `-threads N`: worker threads for the thread-per-core runtime (ours).
    pub threads: Option<usize>,
    /// `-cpus LIST`: one worker pinned to each listed CPU (ours; thread-per-core runtime).
    pub cpus: Option<Vec<usize>>,
    /// `-max-inflight N`: client queries one gateway holds at most (ours).
    pub max_inflight: Option<usize>,
}

impl Default for Cli {
    fn default() -> Self {
        Self {
            conf: PathBuf::from("Corefile"),
            dns_port: None,
            pidfile: None,
            plugins: false,
            quiet: false,
            version: false,
            validate: false,
            threads: None,
            cpus: None,
            max_inflight: None,
        }
    }
}

/// Flags and their help, in the order `usage` lists them; `None` marks a boolean flag.
const FLAGS: &[(&str, Option<&str>, &str)] = &[
    (
        "conf",
        Some("FILE"),
        "Corefile to load (default \"Corefile\")",
    ),
    (
        "dns.port",
        Some("PORT"),
        "default port for server blocks without one (default 53)",
    ),
    ("p", Some("PORT"), "same as -dns.port"),
    ("pidfile", Some("FILE"), "write the process id to FILE"),
    ("plugins", None, "list the supported directives and exit"),
    ("quiet", None, "do not print the startup banner"),
    ("version", None, "print the version and exit"),
    (
        "validate",
        None,
        "check the Corefile, print any warnings, and exit",
    ),
    (
        "threads",
        Some("N"),
        "worker threads (gatherdns-glommio; default: one per CPU)",
    ),
    (
        "cpus",
        Some("LIST"),
        "pin one worker to each listed CPU, as 0-3,8 (gatherdns-glommio; default: every CPU allowed)",
    ),
    (
        "max-inflight",
        Some("N"),
        "client queries held at once per executor; beyond it, REFUSED (default 10000)",
    ),
];

/// The help text, starting with `Usage of BINARY:`.
pub fn usage(binary: &str) -> String {
    let mut text = format!("Usage of {binary}:\n");
    for (name, value, help) in FLAGS {
        match value {
            Some(value) => text.push_str(&format!("  -{name} {value}\n    \t{help}\n")),
            None => text.push_str(&format!("  -{name}\n    \t{help}\n")),
        }
    }
    text
}

/// Parses the arguments after the program name. `-h`/`-help` give `Err(usage)`; an unknown
/// flag, a missing or bad value, or a positional argument gives an error naming it.
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Cli, String> {
    let mut cli = Cli::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // Go's flag package stops at "--" and at the first non-flag; CoreDNS then rejects
        // anything left over.
        if arg == "--" {
            if let Some(extra) = args.next() {
                return Err(format!(
                    "unexpected argument {extra:?} (gatherdns takes only flags)"
                ));
            }
            break;
        }
        let flag = if arg == "-" {
            None
        } else {
            arg.strip_prefix("--").or_else(|| arg.strip_prefix('-'))
        };
        let Some(flag) = flag else {
            return Err(format!(
                "unexpected argument {arg:?} (gatherdns takes only flags)"
            ));
        };
        if flag.is_empty() || flag.starts_with('-') || flag.starts_with('=') {
            return Err(format!("bad flag syntax: {arg}"));
        }
        let (name, inline) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value.to_owned())),
            None => (flag, None),
        };
        if name == "h" || name == "help" {
            return Err(usage("gatherdns"));
        }
        let Some((_, takes_value, _)) = FLAGS.iter().find(|(n, _, _)| *n == name) else {
            return Err(format!(
                "flag provided but not defined: -{name} (see -help)"
            ));
        };
        if takes_value.is_none() {
            let on = match inline.as_deref() {
                None => true,
                Some(v) => parse_bool(v)
                    .ok_or_else(|| format!("invalid boolean value {v:?} for flag -{name}"))?,
            };
            match name {
                "plugins" => cli.plugins = on,
                "quiet" => cli.quiet = on,
                "version" => cli.version = on,
                _ => cli.validate = on,
            }
            continue;
        }
        let value = match inline {
            Some(v) => v,
            None => args
                .next()
                .ok_or_else(|| format!("flag needs an argument: -{name}"))?,
        };
        match name {
            "conf" => cli.conf = PathBuf::from(value),
            "dns.port" | "p" => {
                cli.dns_port = Some(value.parse::<u16>().map_err(|_| {
                    format!("invalid value {value:?} for flag -{name}: a port is a number from 0 to 65535")
                })?);
            }
            "pidfile" => cli.pidfile = Some(PathBuf::from(value)),
            "cpus" => {
                cli.cpus = Some(parse_cpu_list(&value).filter(|c| !c.is_empty()).ok_or_else(|| {
                    format!("invalid value {value:?} for flag -{name}: expected CPU numbers and ranges, as 0-3,8")
                })?);
            }
            "max-inflight" => {
                cli.max_inflight = Some(value.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    format!("invalid value {value:?} for flag -{name}: expected a number of queries, at least 1")
                })?);
            }
            _ => {
                cli.threads = Some(value.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
                    format!("invalid value {value:?} for flag -{name}: expected a number of threads, at least 1")
                })?);
            }
        }
    }
    Ok(cli)
}

/// A CPU list as the kernel prints one (`0-3,8,10-11`), in order and without repeats.
pub fn parse_cpu_list(list: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for range in list.trim().split(',').filter(|r| !r.is_empty()) {
        let (first, last): (usize, usize) = match range.split_once('-') {
            Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
            None => {
                let cpu = range.trim().parse().ok()?;
                (cpu, cpu)
            }
        };
        if first > last || last >= 4096 {
            return None;
        }
        cpus.extend(first..=last);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Some(cpus)
}

/// Go's `strconv.ParseBool`.
fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, String> {
        parse_args(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn defaults() {
        assert_eq!(parse(&[]), Ok(Cli::default()));
        assert_eq!(Cli::default().conf, PathBuf::from("Corefile"));
    }

    #[test]
    fn value_flags_in_every_spelling() {
        let expected = Cli {
            conf: PathBuf::from("/etc/coredns/Corefile"),
            dns_port: Some(1053),
            pidfile: Some(PathBuf::from("/run/gatherdns.pid")),
            threads: Some(4),
            ..Cli::default()
        };
        assert_eq!(
            parse(&[
                "-conf",
                "/etc/coredns/Corefile",
                "-dns.port",
                "1053",
                "-pidfile",
                "/run/gatherdns.pid",
                "-threads",
                "4"
            ]),
            Ok(expected.clone())
        );
        assert_eq!(
            parse(&[
                "--conf=/etc/coredns/Corefile",
                "--p=1053",
                "-pidfile=/run/gatherdns.pid",
                "--threads",
                "4"
            ]),
            Ok(expected)
        );
        assert_eq!(
            parse(&["-p", "53", "-dns.port", "5300"]).map(|c| c.dns_port),
            Ok(Some(5300))
        );
        assert_eq!(parse(&["-conf="]).map(|c| c.conf), Ok(PathBuf::from("")));
        assert_eq!(
            parse(&["-max-inflight", "500"]).map(|c| c.max_inflight),
            Ok(Some(500))
        );
        assert!(parse(&["-max-inflight=0"]).is_err_and(|e| e.contains("at least 1")));
    }

    #[test]
    fn boolean_flags() {
        let cli = parse(&["-plugins", "--quiet", "-version", "-validate"]).expect("valid");
        assert!(cli.plugins && cli.quiet && cli.version && cli.validate);
        let cli =
            parse(&["-quiet=false", "-validate=true", "-plugins=1", "-version=F"]).expect("valid");
        assert_eq!(
            (cli.plugins, cli.quiet, cli.version, cli.validate),
            (true, false, false, true)
        );
        assert_eq!(
            parse(&["-quiet=yes"]),
            Err("invalid boolean value \"yes\" for flag -quiet".into())
        );
    }

    #[test]
    fn errors_name_the_argument() {
        assert_eq!(
            parse(&["-cahce"]),
            Err("flag provided but not defined: -cahce (see -help)".into())
        );
        assert_eq!(
            parse(&["Corefile"]),
            Err("unexpected argument \"Corefile\" (gatherdns takes only flags)".into())
        );
        assert_eq!(
            parse(&["-quiet", "extra"]),
            Err("unexpected argument \"extra\" (gatherdns takes only flags)".into())
        );
        assert_eq!(
            parse(&["--", "x"]),
            Err("unexpected argument \"x\" (gatherdns takes only flags)".into())
        );
        assert_eq!(parse(&["--"]), Ok(Cli::default()));
        assert_eq!(
            parse(&["-conf"]),
            Err("flag needs an argument: -conf".into())
        );
        assert_eq!(
            parse(&["-dns.port", "http"]),
            Err(
                "invalid value \"http\" for flag -dns.port: a port is a number from 0 to 65535"
                    .into()
            )
        );
        assert!(parse(&["-p", "70000"])
            .is_err_and(|e| e.starts_with("invalid value \"70000\" for flag -p")));
        assert_eq!(
            parse(&["-cpus", "0-2,8"]).map(|c| c.cpus),
            Ok(Some(vec![0, 1, 2, 8]))
        );
        assert!(parse(&["-cpus", "3-1"]).is_err_and(|e| e.contains("as 0-3,8")));
        assert!(parse(&["-cpus", ""]).is_err());
        assert!(parse(&["-threads", "0"])
            .is_err_and(|e| e.starts_with("invalid value \"0\" for flag -threads")));
        assert_eq!(parse(&["---conf"]), Err("bad flag syntax: ---conf".into()));
        assert_eq!(
            parse(&["-"]),
            Err("unexpected argument \"-\" (gatherdns takes only flags)".into())
        );
        assert_eq!(parse(&["-=x"]), Err("bad flag syntax: -=x".into()));
    }

    #[test]
    fn help_returns_the_usage() {
        for flag in ["-h", "-help", "--help", "--h"] {
            assert_eq!(parse(&[flag]), Err(usage("gatherdns")), "{flag}");
        }
        let text = usage("gatherdns-smol");
        assert!(text.starts_with("Usage of gatherdns-smol:\n  -conf FILE\n"));
        for (name, _, _) in FLAGS {
            assert!(text.contains(&format!("  -{name}")), "{name}");
        }
    }
}
