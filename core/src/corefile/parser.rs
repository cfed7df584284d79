//! Groups tokens into server blocks, directives and option blocks, expanding `import` (files,
//! globs, snippets) on the way, like coredns/caddy `parse.go`. Nothing here knows what a
//! directive means; `directives.rs` does.

use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;

pub(crate) use super::token::Token;
use super::token::{same_line, tokenize, Chain, Entry, Kind};
use crate::error::ConfigError;
use crate::loader::{clean_path, has_glob_meta, Loader};

/// CoreDNS's recursion guard: more imports than this is a loop or a mistake.
pub(crate) const MAX_IMPORTS: usize = 10_000;

/// Imports may multiply a small file (a snippet imported thousands of times); past this many
/// tokens the configuration is refused rather than growing without bound.
pub(crate) const MAX_TOKENS: usize = 1_000_000;

/// A server block before its keys and directives are interpreted.
#[derive(Debug)]
pub(crate) struct RawServerBlock {
    /// The keys (zones), trailing commas removed.
    pub(crate) keys: Vec<Token>,
    /// Directives in order.
    pub(crate) directives: Vec<RawDirective>,
}

/// `NAME ARGS… [{ lines }]`.
#[derive(Debug)]
pub(crate) struct RawDirective {
    /// The directive's name.
    pub(crate) name: Token,
    /// The arguments on its line.
    pub(crate) args: Vec<Token>,
    /// Its option block, if one opened on the same line.
    pub(crate) block: Option<RawBlock>,
}

/// The `{ … }` of a directive: one `OPTION ARGS…` per line.
#[derive(Debug)]
pub(crate) struct RawBlock {
    /// The `{`.
    pub(crate) open: Token,
    /// Non-empty lines.
    pub(crate) lines: Vec<Vec<Token>>,
}

/// Parses a Corefile into raw server blocks, plus warnings (e.g. a glob that matched nothing).
pub(crate) fn parse(
    path: &Path,
    text: &str,
    loader: &dyn Loader,
) -> Result<(Vec<RawServerBlock>, Vec<String>), ConfigError> {
    let mut parser = Parser {
        loader,
        streams: Vec::new(),
        last: None,
        snippets: BTreeMap::new(),
        imports: 0,
        tokens: 0,
        warnings: Vec::new(),
    };
    let chain = Chain::root(Entry::File(clean_path(path)));
    let tokens = tokenize(path, text, &chain, loader)?;
    parser.tokens = tokens.len();
    parser.streams.push((tokens.into(), 0));
    let blocks = parser.server_blocks()?;
    Ok((blocks, parser.warnings))
}

struct Parser<'a> {
    loader: &'a dyn Loader,
    /// Token streams; an import pushes one, and reading continues below when it runs out.
    streams: Vec<(Rc<[Token]>, usize)>,
    /// The token read last, for "same line" decisions.
    last: Option<Token>,
    snippets: BTreeMap<String, Vec<Token>>,
    imports: usize,
    /// Tokens read or queued so far, for [`MAX_TOKENS`].
    tokens: usize,
    warnings: Vec<String>,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.streams
            .iter()
            .rev()
            .find_map(|(tokens, at)| tokens.get(*at))
    }

    /// The next token as written (imports not expanded).
    fn next_raw(&mut self) -> Option<Token> {
        while let Some((tokens, at)) = self.streams.last_mut() {
            if let Some(token) = tokens.get(*at) {
                *at += 1;
                let token = token.clone();
                self.last = Some(token.clone());
                return Some(token);
            }
            self.streams.pop();
        }
        None
    }

    /// True if the next token continues the line of the last one.
    fn next_on_same_line(&self) -> bool {
        match (&self.last, self.peek()) {
            (Some(last), Some(next)) => same_line(last, next),
            _ => false,
        }
    }

    /// The next token with `import` lines expanded, and whether it starts a line.
    fn next(&mut self) -> Result<Option<(Token, bool)>, ConfigError> {
        loop {
            let starts_line = !self.next_on_same_line();
            let Some(token) = self.next_raw() else {
                return Ok(None);
            };
            if token.kind == Kind::Import && starts_line {
                self.import(&token)?;
                continue;
            }
            return Ok(Some((token, starts_line)));
        }
    }

    fn count_import(&mut self, at: &Token) -> Result<(), ConfigError> {
        self.imports += 1;
        if self.imports > MAX_IMPORTS {
            return Err(at.error(format!(
                "import: more than {MAX_IMPORTS} imports; is there an import loop?"
            )));
        }
        Ok(())
    }

    /// Queues imported tokens so that they are read next.
    fn push_stream(&mut self, at: &Token, tokens: Rc<[Token]>) -> Result<(), ConfigError> {
        self.tokens += tokens.len();
        if self.tokens > MAX_TOKENS {
            return Err(at.error(format!(
                "import: the configuration grows past {MAX_TOKENS} words; are snippets imported too often?"
            )));
        }
        self.streams.push((tokens, 0));
        Ok(())
    }

    /// Replaces `import PATTERN` by the snippet or files it names.
    fn import(&mut self, at: &Token) -> Result<(), ConfigError> {
        if !self.next_on_same_line() {
            return Err(at.error(
                "import: expected a file, a glob or a snippet name after it (e.g. \"import common.conf\")",
            ));
        }
        let Some(argument) = self.next_raw() else {
            return Err(at.error("import: expected a file, a glob or a snippet name after it"));
        };
        if self.next_on_same_line() {
            let extra = self.peek().map(|t| t.text.clone()).unwrap_or_default();
            return Err(at.error(format!(
                "import takes exactly one argument (a file, a glob or a snippet name), found {extra:?} after {:?}",
                argument.text
            )));
        }
        let pattern = argument.text;
        if pattern.is_empty() {
            return Err(at.error("import: the file name is empty (an unset environment variable?)"));
        }
        self.count_import(at)?;

        if let Some(body) = self.snippets.get(&pattern) {
            let entry = Entry::Snippet(pattern.clone());
            if at.chain().contains(&entry) {
                return Err(at.error(format!(
                    "import: snippet ({pattern}) imports itself ({})",
                    at.chain().describe(&entry)
                )));
            }
            let chain = Chain::child(entry, at.chain());
            let tokens: Rc<[Token]> = body.iter().map(|t| t.with_chain(&chain)).collect();
            return self.push_stream(at, tokens);
        }

        let full = at.base_dir().join(&pattern);
        let files = if has_glob_meta(&pattern) {
            let found = self
                .loader
                .glob(&full)
                .map_err(|e| at.error(format!("import: bad pattern {pattern:?}: {e}")))?;
            if found.is_empty() {
                self.warnings.push(format!(
                    "{}: import: no files match {pattern:?}",
                    at.location()
                ));
            }
            found
        } else {
            vec![full.clone()]
        };
        let mut expansions = Vec::with_capacity(files.len());
        for (i, file) in files.iter().enumerate() {
            if i > 0 {
                self.count_import(at)?;
            }
            let entry = Entry::File(clean_path(file));
            if at.chain().contains(&entry) {
                return Err(at.error(format!(
                    "import: {} imports itself ({})",
                    file.display(),
                    at.chain().describe(&entry)
                )));
            }
            let text = self.loader.read(file).map_err(|e| {
                // Name the file as the user wrote it when it is not a glob match.
                let what = if *file == full {
                    pattern.clone()
                } else {
                    file.display().to_string()
                };
                at.error(format!("import: cannot read {what:?}: {e}"))
            })?;
            let chain = Chain::child(entry, at.chain());
            expansions.push(tokenize(file, &text, &chain, self.loader)?);
        }
        // A stack: push the last file first so that the first is read first.
        for tokens in expansions.into_iter().rev() {
            self.push_stream(at, tokens.into())?;
        }
        Ok(())
    }

    fn server_blocks(&mut self) -> Result<Vec<RawServerBlock>, ConfigError> {
        let mut blocks = Vec::new();
        while let Some((first, _)) = self.next()? {
            match first.kind {
                Kind::Open => {
                    return Err(first.error(
                        "unexpected '{': a server block starts with its zone(s), e.g. \"example.org {\" or \".:53 {\"",
                    ))
                }
                Kind::Close => return Err(first.error("unexpected '}': no block is open")),
                Kind::Word | Kind::Import => {}
            }
            let keys = self.keys(first.clone())?;
            if let [only] = keys.as_slice() {
                if let Some(name) = only
                    .text
                    .strip_prefix('(')
                    .and_then(|n| n.strip_suffix(')'))
                {
                    let name = name.to_owned();
                    self.snippet(only, name)?;
                    continue;
                }
            }
            let directives = match self.peek().map(|t| t.kind) {
                None => Vec::new(),
                Some(Kind::Open) => {
                    let open = self.next_raw();
                    self.directives(open.as_ref())?
                }
                // Caddy reads a key line without '{' as the start of a block that runs to
                // the end of the file.
                Some(_) => self.directives(None)?,
            };
            if keys.is_empty() {
                return Err(first.error(
                    "this server block has no zone: its key is empty (an unset environment variable?)",
                ));
            }
            blocks.push(RawServerBlock { keys, directives });
        }
        Ok(blocks)
    }

    /// Keys up to `{` or the end of the line; a trailing comma continues onto the next line.
    fn keys(&mut self, first: Token) -> Result<Vec<Token>, ConfigError> {
        let mut keys = Vec::new();
        let mut expect_more = push_key(&mut keys, first);
        loop {
            match self.peek() {
                None if expect_more => {
                    let last = keys.last().or(self.last.as_ref());
                    let message =
                        "unexpected end of file: expected another server block key after ','";
                    return Err(match last {
                        Some(t) => t.error(message),
                        None => ConfigError::General(message.into()),
                    });
                }
                None => return Ok(keys),
                Some(next) if next.kind == Kind::Open => {
                    if expect_more {
                        return Err(next.error(
                            "expected another server block key after ',' but found '{' (remove the extra comma)",
                        ));
                    }
                    return Ok(keys);
                }
                Some(_) if !expect_more && !self.next_on_same_line() => return Ok(keys),
                Some(_) => {}
            }
            let Some(token) = self.next_raw() else {
                return Ok(keys);
            };
            if token.kind == Kind::Close {
                return Err(token.error("unexpected '}' among the server block keys"));
            }
            expect_more = push_key(&mut keys, token);
        }
    }

    /// `(name) { … }`: stores the tokens, unexpanded, for `import name`.
    fn snippet(&mut self, key: &Token, name: String) -> Result<(), ConfigError> {
        if self.snippets.contains_key(&name) {
            return Err(key.error(format!("snippet ({name}) is defined twice")));
        }
        if self.peek().map(|t| t.kind) != Some(Kind::Open) {
            return Err(key.error(format!("snippet ({name}) must be followed by a '{{' block")));
        }
        self.next_raw();
        let mut depth = 1usize;
        let mut body = Vec::new();
        loop {
            let token = match self.next_raw() {
                Some(t) if t.same_expansion(key) => t,
                _ => {
                    return Err(key.error(format!(
                        "snippet ({name}) is not closed: '}}' missing before the end of the file"
                    )))
                }
            };
            match token.kind {
                Kind::Open => depth += 1,
                Kind::Close => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                Kind::Word | Kind::Import => {}
            }
            body.push(token);
        }
        self.snippets.insert(name, body);
        Ok(())
    }

    /// Directive lines up to the `}` that matches `open` (or to the end of the file).
    fn directives(&mut self, open: Option<&Token>) -> Result<Vec<RawDirective>, ConfigError> {
        let mut directives = Vec::new();
        loop {
            let Some((name, _)) = self.next()? else {
                return match open {
                    Some(open) => Err(open.error(
                        "this server block is not closed: '}' missing before the end of the file",
                    )),
                    None => Ok(directives),
                };
            };
            match name.kind {
                Kind::Close if open.is_some() => return Ok(directives),
                Kind::Close => return Err(name.error("unexpected '}': no block is open")),
                Kind::Open => {
                    let hint = match directives.last() {
                        Some(RawDirective { name, .. }) => {
                            format!("put the '{{' at the end of the {:?} line above", name.text)
                        }
                        None => "put the '{' at the end of the directive's line".to_string(),
                    };
                    return Err(name.error(format!(
                        "unexpected '{{' at the start of a line: a directive's block must open on \
                         the directive's own line ({hint})"
                    )));
                }
                // `. { import x` : caddy expands an import right after the '{' too.
                Kind::Import => {
                    self.import(&name)?;
                    continue;
                }
                Kind::Word => {}
            }
            let mut directive = RawDirective {
                name,
                args: Vec::new(),
                block: None,
            };
            let mut block_closed = false;
            while self.next_on_same_line() {
                let Some(token) = self.next_raw() else { break };
                match token.kind {
                    // `log }` closes the server block; CoreDNS would reject it, but the
                    // intent is clear.
                    Kind::Close if open.is_some() => {
                        block_closed = true;
                        break;
                    }
                    Kind::Close => return Err(token.error("unexpected '}': no block is open")),
                    Kind::Open => {
                        directive.block = Some(self.option_block(token)?);
                        if self.next_on_same_line() {
                            match self.peek() {
                                Some(t) if t.kind == Kind::Close && open.is_some() => {
                                    self.next_raw();
                                    block_closed = true;
                                }
                                Some(t) => {
                                    return Err(t.error(format!(
                                        "unexpected {:?} after '}}': start the next directive on a new line",
                                        t.text
                                    )))
                                }
                                None => {}
                            }
                        }
                        break;
                    }
                    Kind::Word | Kind::Import => directive.args.push(token),
                }
            }
            directives.push(directive);
            if block_closed {
                return Ok(directives);
            }
        }
    }

    /// The lines of a directive's `{ … }`; one level only.
    fn option_block(&mut self, open: Token) -> Result<RawBlock, ConfigError> {
        let mut lines: Vec<Vec<Token>> = Vec::new();
        let mut line: Vec<Token> = Vec::new();
        loop {
            let Some((token, starts_line)) = self.next()? else {
                return Err(
                    open.error("this '{' is not closed: '}' missing before the end of the file")
                );
            };
            match token.kind {
                Kind::Close => break,
                Kind::Open => {
                    return Err(token.error(
                        "unexpected '{': blocks inside a directive's block are not supported",
                    ))
                }
                Kind::Word | Kind::Import => {}
            }
            if starts_line && !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            line.push(token);
        }
        if !line.is_empty() {
            lines.push(line);
        }
        Ok(RawBlock { open, lines })
    }
}

/// Adds a key token (splitting on commas, skipping empty text); true if it ended with a comma.
fn push_key(keys: &mut Vec<Token>, token: Token) -> bool {
    let continues = token.text.ends_with(',');
    for part in token.text.split(',').filter(|p| !p.is_empty()) {
        let mut key = token.clone();
        key.text = part.to_owned();
        keys.push(key);
    }
    continues
}

#[cfg(test)]
#[path = "parser_tests.rs"]
mod tests;
