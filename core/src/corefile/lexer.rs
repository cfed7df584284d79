//! Splits Corefile text into tokens with line numbers, following coredns/caddy `lexer.go`:
//! whitespace separates, `"…"` quotes (only `\"` escapes), `#` comments to end of line,
//! `\r` ignored, a leading BOM dropped.

/// One word of a Corefile, before environment substitution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RawToken {
    /// The text, quotes removed.
    pub(crate) text: String,
    /// 1-based line where the token starts.
    pub(crate) line: usize,
    /// Line where it ends (a quoted token may span lines).
    pub(crate) end_line: usize,
    /// It was written in quotes, so `{`, `}` and `import` are plain words.
    pub(crate) quoted: bool,
}

/// A quoted token that never ends, which caddy silently accepts and we report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LexError {
    /// Line where the quote opens.
    pub(crate) line: usize,
    /// What is wrong.
    pub(crate) message: String,
}

/// Lexes a whole file.
pub(crate) fn lex(input: &str) -> Result<Vec<RawToken>, LexError> {
    let input = input.strip_prefix('\u{feff}').unwrap_or(input);
    let mut tokens = Vec::new();
    let mut line = 1usize;
    let mut chars = input.chars().peekable();
    // The token being built: text and starting line.
    let mut word: Option<(String, usize)> = None;
    let mut in_comment = false;

    while let Some(c) = chars.next() {
        if c == '\r' {
            continue;
        }
        if c == '\n' {
            in_comment = false;
            if let Some((text, start)) = word.take() {
                tokens.push(RawToken {
                    text,
                    line: start,
                    end_line: start,
                    quoted: false,
                });
            }
            line += 1;
            continue;
        }
        if in_comment {
            continue;
        }
        if c.is_whitespace() {
            if let Some((text, start)) = word.take() {
                tokens.push(RawToken {
                    text,
                    line: start,
                    end_line: start,
                    quoted: false,
                });
            }
            continue;
        }
        if c == '#' {
            // Ends the current word too: `foo#bar` is `foo`.
            in_comment = true;
            continue;
        }
        if c == '"' && word.is_none() {
            let start = line;
            let mut text = String::new();
            loop {
                match chars.next() {
                    None => {
                        return Err(LexError {
                            line: start,
                            message: "this quoted token has no closing '\"'".into(),
                        })
                    }
                    Some('"') => break,
                    Some('\\') if chars.peek() == Some(&'"') => {
                        chars.next();
                        text.push('"');
                    }
                    Some('\r') => {}
                    Some(other) => {
                        if other == '\n' {
                            line += 1;
                        }
                        text.push(other);
                    }
                }
            }
            tokens.push(RawToken {
                text,
                line: start,
                end_line: line,
                quoted: true,
            });
            continue;
        }
        // A quote inside a word is an ordinary character, as in caddy.
        word.get_or_insert_with(|| (String::new(), line)).0.push(c);
    }
    if let Some((text, start)) = word {
        tokens.push(RawToken {
            text,
            line: start,
            end_line: start,
            quoted: false,
        });
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(input: &str) -> Vec<(String, usize)> {
        lex(input)
            .expect("lexes")
            .into_iter()
            .map(|t| (t.text, t.line))
            .collect()
    }

    fn t(text: &str, line: usize) -> (String, usize) {
        (text.to_string(), line)
    }

    #[test]
    fn whitespace_separates_and_lines_are_counted() {
        assert_eq!(
            texts("a b\tc\n\n  d {\n}\n"),
            vec![
                t("a", 1),
                t("b", 1),
                t("c", 1),
                t("d", 3),
                t("{", 3),
                t("}", 4)
            ]
        );
        // Unicode whitespace separates too (Go's unicode.IsSpace).
        assert_eq!(
            texts("a\u{a0}b\u{2003}c"),
            vec![t("a", 1), t("b", 1), t("c", 1)]
        );
    }

    #[test]
    fn comments_run_to_end_of_line_even_mid_token() {
        assert_eq!(
            texts("foo#bar baz\n# whole line\nqux # tail\n"),
            vec![t("foo", 1), t("qux", 3)]
        );
    }

    #[test]
    fn quotes_group_span_lines_and_escape_only_quotes() {
        let tokens = lex("a \"b c\" \"x\ny\" \"q\\\"\\n\"\nz").expect("lexes");
        assert_eq!(tokens[1].text, "b c");
        assert!(tokens[1].quoted);
        assert_eq!(tokens[2].text, "x\ny");
        assert_eq!((tokens[2].line, tokens[2].end_line), (1, 2));
        assert_eq!(tokens[3].text, "q\"\\n");
        assert_eq!((tokens[4].text.as_str(), tokens[4].line), ("z", 3));
        // `#` inside quotes is text; an empty quoted token is a token.
        assert_eq!(texts("\"a#b\" \"\""), vec![t("a#b", 1), t("", 1)]);
        // A quote in the middle of a word is just a character.
        assert_eq!(texts("ab\"c d\""), vec![t("ab\"c", 1), t("d\"", 1)]);
    }

    #[test]
    fn carriage_returns_and_bom_are_ignored() {
        assert_eq!(texts("\u{feff}a\r\nb\r\n"), vec![t("a", 1), t("b", 2)]);
        assert_eq!(texts("\"a\r\nb\""), vec![t("a\nb", 1)]);
    }

    #[test]
    fn an_unclosed_quote_is_an_error_at_its_line() {
        assert_eq!(
            lex("a\n\"b\nc"),
            Err(LexError {
                line: 2,
                message: "this quoted token has no closing '\"'".into()
            })
        );
    }

    #[test]
    fn empty_input_has_no_tokens() {
        assert_eq!(lex("").expect("lexes"), vec![]);
        assert_eq!(lex("  \n# only a comment\n").expect("lexes"), vec![]);
    }
}
