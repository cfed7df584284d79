//! Everything the Corefile parser needs from the outside world (files, globs, environment),
//! behind one trait, so the parser stays pure: the host crate's `FsLoader` for the real
//! filesystem, [`MemLoader`] for tests and fuzzing.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// The parser's window on the world. Errors are plain text because they are only ever shown.
pub trait Loader {
    /// The whole file as UTF-8 text; `Err` carries the OS error text.
    fn read(&self, path: &Path) -> Result<String, String>;
    /// The paths matching `pattern` (wildcards `*`, `?`, `[...]` in its last component only),
    /// sorted; an empty `Vec` when nothing matches. `Err` only for a malformed pattern.
    fn glob(&self, pattern: &Path) -> Result<Vec<PathBuf>, String>;
    /// An environment variable, `None` when unset.
    fn env(&self, name: &str) -> Option<String>;
}

/// A glob pattern split into its literal directory and a compiled last-component pattern:
/// the pure half of a [`Loader::glob`] over a real directory (the host lists the directory).
#[derive(Debug, Clone)]
pub struct GlobPattern {
    dir: PathBuf,
    matcher: Pattern,
}

impl GlobPattern {
    /// Parses `pattern`; wildcards are allowed in its last component only.
    pub fn parse(pattern: &Path) -> Result<GlobPattern, String> {
        let (dir, name_pattern) = split_pattern(pattern)?;
        Ok(GlobPattern {
            dir,
            matcher: Pattern::compile(&name_pattern)?,
        })
    }

    /// The directory to list (empty for the current one).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether a file name in that directory matches.
    pub fn matches(&self, name: &str) -> bool {
        self.matcher.matches(name)
    }
}

/// Files and environment held in memory: deterministic input for tests and fuzzing. Paths
/// are compared after lexical clean-up (`a/./b`, `a/x/../b` and `a/b` are the same file).
#[derive(Clone, Debug, Default)]
pub struct MemLoader {
    files: BTreeMap<PathBuf, String>,
    env: BTreeMap<String, String>,
}

impl MemLoader {
    /// An empty loader: no files, no environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a file.
    #[must_use]
    pub fn file(mut self, path: impl AsRef<Path>, text: impl Into<String>) -> Self {
        self.files.insert(clean_path(path.as_ref()), text.into());
        self
    }

    /// Sets an environment variable.
    #[must_use]
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }
}

impl Loader for MemLoader {
    fn read(&self, path: &Path) -> Result<String, String> {
        self.files
            .get(&clean_path(path))
            .cloned()
            .ok_or_else(|| "No such file or directory (os error 2)".to_string())
    }

    fn glob(&self, pattern: &Path) -> Result<Vec<PathBuf>, String> {
        let (dir, name_pattern) = split_pattern(pattern)?;
        let matcher = Pattern::compile(&name_pattern)?;
        let dir = clean_path(&dir);
        // BTreeMap order is path order, so the result comes out sorted.
        Ok(self
            .files
            .keys()
            .filter(|path| path.parent().map(clean_path).as_ref() == Some(&dir))
            .filter(|path| {
                path.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|name| matcher.matches(name))
            })
            .cloned()
            .collect())
    }

    fn env(&self, name: &str) -> Option<String> {
        self.env.get(name).cloned()
    }
}

/// True if `text` has a character that makes it a glob pattern rather than a file name.
pub(crate) fn has_glob_meta(text: &str) -> bool {
    text.contains(['*', '?', '['])
}

/// Removes `.` components and folds `x/..` pairs, without touching the filesystem.
pub(crate) fn clean_path(path: &Path) -> PathBuf {
    let mut out: Vec<Component<'_>> = Vec::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(component),
            },
            other => out.push(other),
        }
    }
    out.iter().collect()
}

/// Splits a pattern into its literal directory and its last-component pattern.
fn split_pattern(pattern: &Path) -> Result<(PathBuf, String), String> {
    let name = pattern
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("{} has no file name to match", pattern.display()))?;
    let dir = pattern.parent().map(Path::to_path_buf).unwrap_or_default();
    if has_glob_meta(&dir.to_string_lossy()) {
        return Err(format!(
            "wildcards are supported only in the last path component, not in {}",
            dir.display()
        ));
    }
    Ok((dir, name.to_owned()))
}

/// One element of a compiled file-name pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(char),
    AnyOne,
    AnyRun,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// A last-component pattern with Go `filepath.Match` syntax: `*`, `?`, `[a-z]`, `[^a-z]`,
/// and `\` to escape.
#[derive(Debug, Clone)]
pub(crate) struct Pattern(Vec<Piece>);

impl Pattern {
    /// Compiles `text`; a malformed class or a trailing `\` is an error, as in Go.
    pub(crate) fn compile(text: &str) -> Result<Self, String> {
        let bad = || format!("malformed pattern {text:?}");
        let mut pieces = Vec::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' => pieces.push(Piece::AnyRun),
                '?' => pieces.push(Piece::AnyOne),
                '\\' => pieces.push(Piece::Literal(chars.next().ok_or_else(bad)?)),
                '[' => {
                    let negated = chars.next_if_eq(&'^').is_some();
                    let mut ranges = Vec::new();
                    loop {
                        let lo = match chars.next() {
                            Some(']') if !ranges.is_empty() => break,
                            None | Some(']' | '-') => return Err(bad()),
                            Some('\\') => chars.next().ok_or_else(bad)?,
                            Some(other) => other,
                        };
                        let hi = if chars.next_if_eq(&'-').is_some() {
                            match chars.next() {
                                None | Some(']' | '-') => return Err(bad()),
                                Some('\\') => chars.next().ok_or_else(bad)?,
                                Some(other) => other,
                            }
                        } else {
                            lo
                        };
                        if hi < lo {
                            return Err(bad());
                        }
                        ranges.push((lo, hi));
                    }
                    pieces.push(Piece::Class { negated, ranges });
                }
                other => pieces.push(Piece::Literal(other)),
            }
        }
        Ok(Self(pieces))
    }

    /// Whether `name` (one path component) matches the whole pattern.
    pub(crate) fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = name.chars().collect();
        let pieces = &self.0;
        let (mut p, mut n) = (0usize, 0usize);
        // Where to resume after the last `*`: (piece after it, name position it now covers).
        let mut resume: Option<(usize, usize)> = None;
        while n < name.len() {
            let step = match pieces.get(p) {
                Some(Piece::AnyRun) => {
                    resume = Some((p + 1, n));
                    p += 1;
                    continue;
                }
                Some(piece) => piece.matches_one(name[n]),
                None => false,
            };
            if step {
                p += 1;
                n += 1;
            } else if let Some((after_star, covered)) = resume {
                // Let the last `*` swallow one more character and try again from there.
                p = after_star;
                n = covered + 1;
                resume = Some((after_star, covered + 1));
            } else {
                return false;
            }
        }
        pieces[p..].iter().all(|piece| *piece == Piece::AnyRun)
    }
}

impl Piece {
    fn matches_one(&self, c: char) -> bool {
        match self {
            Piece::Literal(l) => *l == c,
            Piece::AnyOne => c != '/',
            Piece::AnyRun => true,
            Piece::Class { negated, ranges } => {
                ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, name: &str) -> bool {
        Pattern::compile(pattern)
            .expect("valid pattern")
            .matches(name)
    }

    #[test]
    fn pattern_matching_follows_go_filepath_match() {
        assert!(matches("*.conf", "a.conf"));
        assert!(matches("*.conf", ".conf"));
        assert!(!matches("*.conf", "a.conf.bak"));
        assert!(matches("a*b*c", "aXbYbZc"));
        assert!(!matches("a*b*c", "aXbYbZ"));
        assert!(matches("?.conf", "1.conf"));
        assert!(!matches("?.conf", "12.conf"));
        assert!(matches("[ab].conf", "b.conf"));
        assert!(!matches("[ab].conf", "c.conf"));
        assert!(matches("[^ab].conf", "c.conf"));
        assert!(matches("[a-c]x", "bx"));
        assert!(!matches("[a-c]x", "dx"));
        assert!(matches("\\*x", "*x"));
        assert!(!matches("\\*x", "ax"));
        assert!(matches("*", ""));
        assert!(matches("**", "anything"));
        assert!(!matches("", "a"));
    }

    #[test]
    fn malformed_patterns_are_errors() {
        for bad in ["[", "[]", "[a", "a\\", "[z-a]", "[-a]", "[a-]"] {
            assert_eq!(
                Pattern::compile(bad).map(|_| ()),
                Err(format!("malformed pattern {bad:?}")),
                "{bad}"
            );
        }
    }

    #[test]
    fn mem_loader_reads_globs_and_env() {
        let loader = MemLoader::new()
            .file("conf/b.conf", "b")
            .file("conf/a.conf", "a")
            .file("conf/sub/c.conf", "c")
            .file("conf/a.txt", "t")
            .env("PORT", "1053");
        assert_eq!(
            loader.read(Path::new("conf/./x/../a.conf")),
            Ok("a".to_string())
        );
        assert_eq!(
            loader.read(Path::new("conf/missing")),
            Err("No such file or directory (os error 2)".to_string())
        );
        assert_eq!(
            loader.glob(Path::new("conf/*.conf")),
            Ok(vec![
                PathBuf::from("conf/a.conf"),
                PathBuf::from("conf/b.conf")
            ])
        );
        assert_eq!(loader.glob(Path::new("other/*.conf")), Ok(vec![]));
        assert!(loader.glob(Path::new("c*/a.conf")).is_err());
        assert_eq!(Loader::env(&loader, "PORT"), Some("1053".to_string()));
        assert_eq!(Loader::env(&loader, "NOPE"), None);
    }

    #[test]
    fn clean_path_is_lexical() {
        assert_eq!(clean_path(Path::new("a/./b/../c")), PathBuf::from("a/c"));
        assert_eq!(clean_path(Path::new("../x")), PathBuf::from("../x"));
        assert_eq!(clean_path(Path::new("/../x")), PathBuf::from("/x"));
        assert_eq!(
            clean_path(Path::new("./Corefile")),
            PathBuf::from("Corefile")
        );
    }
}
