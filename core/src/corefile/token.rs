//! Tokens as the parser sees them: text after `{$ENV}` substitution, its structural meaning,
//! and where it came from (file, line, and the chain of imports that brought it here).

use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::lexer::{lex, RawToken};
use crate::config::Location;
use crate::error::ConfigError;
use crate::loader::Loader;

/// What a token means to the block structure. Decided on the text as written, so a quoted
/// `"{"` or an environment variable that expands to `{` stays an ordinary word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Word,
    Open,
    Close,
    Import,
}

/// The file a token comes from.
#[derive(Debug)]
pub(crate) struct Source {
    /// Path used to read it; relative paths inside it are resolved against its directory.
    pub(crate) path: PathBuf,
    /// The path as shown in messages.
    pub(crate) name: String,
}

/// How a token got here: the file or snippet it was expanded from, and what imported that.
/// Every expansion gets its own chain, so tokens of two expansions are never "on one line".
#[derive(Debug)]
pub(crate) struct Chain {
    entry: Entry,
    parent: Option<Rc<Chain>>,
}

/// One step of an import chain.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    /// A file, its path cleaned lexically so two spellings compare equal.
    File(PathBuf),
    /// A snippet, by name.
    Snippet(String),
}

impl Chain {
    fn links(&self) -> impl Iterator<Item = &Chain> {
        std::iter::successors(Some(self), |c| c.parent.as_deref())
    }

    /// True if `entry` is this link or one of its importers.
    pub(crate) fn contains(&self, entry: &Entry) -> bool {
        self.links().any(|c| c.entry == *entry)
    }

    /// `Corefile → a.conf → (snip)`, outermost first.
    pub(crate) fn describe(&self, then: &Entry) -> String {
        let mut names: Vec<String> = self.links().map(|c| c.entry.to_string()).collect();
        names.reverse();
        names.push(then.to_string());
        names.join(" → ")
    }
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Entry::File(path) => write!(f, "{}", path.display()),
            Entry::Snippet(name) => write!(f, "({name})"),
        }
    }
}

/// One word of the Corefile after environment substitution, with where it came from.
#[derive(Clone, Debug)]
pub(crate) struct Token {
    /// The text with `{$ENV}` replaced.
    pub(crate) text: String,
    /// Its structural meaning.
    pub(crate) kind: Kind,
    /// 1-based line.
    pub(crate) line: usize,
    end_line: usize,
    /// The file it is in.
    pub(crate) source: Rc<Source>,
    chain: Rc<Chain>,
}

impl Token {
    /// File and line, for messages.
    pub(crate) fn location(&self) -> Location {
        Location {
            file: self.source.name.clone(),
            line: self.line,
        }
    }

    /// The directory that relative paths in this token's file are resolved against.
    pub(crate) fn base_dir(&self) -> &Path {
        self.source.path.parent().unwrap_or(Path::new(""))
    }

    /// An error at this token.
    pub(crate) fn error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::at(&self.location(), message)
    }
}

/// True if `b` starts on the line where `a` ends, in the same expansion.
pub(crate) fn same_line(a: &Token, b: &Token) -> bool {
    Rc::ptr_eq(&a.chain, &b.chain) && a.end_line == b.line
}

impl Chain {
    /// The chain of the Corefile itself.
    pub(crate) fn root(entry: Entry) -> Rc<Chain> {
        Rc::new(Chain {
            entry,
            parent: None,
        })
    }

    /// A new expansion of `entry`, imported from `parent`.
    pub(crate) fn child(entry: Entry, parent: &Rc<Chain>) -> Rc<Chain> {
        Rc::new(Chain {
            entry,
            parent: Some(parent.clone()),
        })
    }
}

impl Token {
    /// The chain that brought this token here.
    pub(crate) fn chain(&self) -> &Rc<Chain> {
        &self.chain
    }

    /// True if both tokens come from the same expansion of the same file or snippet.
    pub(crate) fn same_expansion(&self, other: &Token) -> bool {
        Rc::ptr_eq(&self.chain, &other.chain)
    }

    /// This token as part of another expansion (a snippet imported once more).
    pub(crate) fn with_chain(&self, chain: &Rc<Chain>) -> Token {
        Token {
            chain: chain.clone(),
            ..self.clone()
        }
    }
}

/// Lexes one file into tokens that belong to `chain`, substituting the environment.
pub(crate) fn tokenize(
    path: &Path,
    text: &str,
    chain: &Rc<Chain>,
    loader: &dyn Loader,
) -> Result<Vec<Token>, ConfigError> {
    let source = Rc::new(Source {
        path: path.to_path_buf(),
        name: path.display().to_string(),
    });
    let raw = lex(text).map_err(|e| {
        ConfigError::at(
            &Location {
                file: source.name.clone(),
                line: e.line,
            },
            e.message,
        )
    })?;
    Ok(raw
        .into_iter()
        .map(
            |RawToken {
                 text,
                 line,
                 end_line,
                 quoted,
             }| Token {
                kind: match text.as_str() {
                    _ if quoted => Kind::Word,
                    "{" => Kind::Open,
                    "}" => Kind::Close,
                    "import" => Kind::Import,
                    _ => Kind::Word,
                },
                text: substitute_env(&text, loader),
                line,
                end_line,
                source: source.clone(),
                chain: chain.clone(),
            },
        )
        .collect())
}

/// Replaces `{$NAME}` and `{%NAME%}` with the variable's value (empty if unset), left to
/// right in one pass: unlike caddy, a value is not scanned again, so `A={$A}` cannot loop.
pub(crate) fn substitute_env(text: &str, loader: &dyn Loader) -> String {
    if !text.contains("{$") && !text.contains("{%") {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let found = [("{$", "}"), ("{%", "%}")]
            .into_iter()
            .filter_map(|(open, close)| rest.find(open).map(|at| (at, open, close)))
            .min_by_key(|(at, _, _)| *at);
        let Some((at, open, close)) = found else {
            out.push_str(rest);
            return out;
        };
        let after = &rest[at + open.len()..];
        match after.find(close) {
            Some(end) if end > 0 => {
                out.push_str(&rest[..at]);
                out.push_str(&loader.env(&after[..end]).unwrap_or_default());
                rest = &after[end + close.len()..];
            }
            _ => {
                out.push_str(&rest[..at + open.len()]);
                rest = after;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::MemLoader;

    #[test]
    fn environment_substitution() {
        let env = MemLoader::new().env("A", "{$A}").env("B", "b");
        // A value is not scanned again, so a self-reference cannot loop.
        assert_eq!(substitute_env("{$A}", &env), "{$A}");
        assert_eq!(substitute_env("x{$B}y{%B%}z", &env), "xbybz");
        assert_eq!(substitute_env("{$UNSET}", &env), "");
        assert_eq!(substitute_env("{$}{$B", &env), "{$}{$B");
        assert_eq!(substitute_env("{%%}", &env), "{%%}");
        // As in caddy, the name runs to the first closing mark.
        assert_eq!(substitute_env("{%}%}", &env), "");
    }

    #[test]
    fn kinds_are_decided_on_the_written_text() {
        let env = MemLoader::new().env("OPEN", "{");
        let chain = Chain::root(Entry::File(PathBuf::from("Corefile")));
        let tokens = tokenize(
            Path::new("Corefile"),
            "{ } import \"{\" {$OPEN} imports",
            &chain,
            &env,
        )
        .expect("lexes");
        let kinds: Vec<Kind> = tokens.iter().map(|t| t.kind).collect();
        assert_eq!(
            kinds,
            [
                Kind::Open,
                Kind::Close,
                Kind::Import,
                Kind::Word,
                Kind::Word,
                Kind::Word
            ]
        );
        assert_eq!(tokens[4].text, "{");
    }

    #[test]
    fn chains_describe_the_import_path() {
        let root = Chain::root(Entry::File(PathBuf::from("Corefile")));
        let child = Chain::child(Entry::Snippet("s".into()), &root);
        let file = Entry::File(PathBuf::from("a.conf"));
        assert!(child.contains(&Entry::File(PathBuf::from("Corefile"))));
        assert!(!child.contains(&file));
        assert_eq!(child.describe(&file), "Corefile → (s) → a.conf");
    }
}
