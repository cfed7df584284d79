//! Tests of the block structure: keys, directives, option blocks, snippets and imports.

use super::*;
use crate::loader::MemLoader;

/// A compact picture of the parse: `key key { name args [opt args | opt] }` per block.
fn shape(path: &str, loader: &MemLoader) -> Result<Vec<String>, String> {
    let text = loader.read(Path::new(path)).expect("corefile present");
    let (blocks, _) = parse(Path::new(path), &text, loader).map_err(|e| e.to_string())?;
    Ok(blocks.iter().map(describe).collect())
}

fn describe(block: &RawServerBlock) -> String {
    let keys: Vec<&str> = block.keys.iter().map(|k| k.text.as_str()).collect();
    let dirs: Vec<String> = block
        .directives
        .iter()
        .map(|d| {
            let mut s = d.name.text.clone();
            for a in &d.args {
                s.push(' ');
                s.push_str(&a.text);
            }
            if let Some(b) = &d.block {
                let lines: Vec<String> = b
                    .lines
                    .iter()
                    .map(|l| {
                        l.iter()
                            .map(|t| t.text.as_str())
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .collect();
                s.push_str(&format!(" [{}]", lines.join(" | ")));
            }
            s
        })
        .collect();
    format!("{} {{ {} }}", keys.join(" "), dirs.join("; "))
}

fn one(text: &str) -> Result<Vec<String>, String> {
    shape("Corefile", &MemLoader::new().file("Corefile", text))
}

#[test]
fn blocks_directives_and_option_blocks() {
    let text = "a.org b.org:1053 {\n  log\n  forward . 1.1.1.1 {\n    force_tcp\n    \
                max_fails 3\n  }\n  errors\n}\n\n.:53 {\n}\n";
    assert_eq!(
        one(text),
        Ok(vec![
            "a.org b.org:1053 { log; forward . 1.1.1.1 [force_tcp | max_fails 3]; errors }".into(),
            ".:53 {  }".into()
        ])
    );
}

#[test]
fn one_line_forms_and_brace_on_next_line_for_keys() {
    assert_eq!(one(". { log }"), Ok(vec![". { log }".into()]));
    assert_eq!(
        one(". {\n forward . 1.1.1.1 { force_tcp } }"),
        Ok(vec![". { forward . 1.1.1.1 [force_tcp] }".into()])
    );
    assert_eq!(one("a.org\n{\n log\n}"), Ok(vec!["a.org { log }".into()]));
    assert_eq!(one("a.org"), Ok(vec!["a.org {  }".into()]));
    // Without braces, the rest of the file is the block (caddy).
    assert_eq!(
        one("a.org\nlog\nerrors"),
        Ok(vec!["a.org { log; errors }".into()])
    );
}

#[test]
fn trailing_commas_continue_the_key_list() {
    assert_eq!(
        one("a.org,\nb.org, c.org {\n}"),
        Ok(vec!["a.org b.org c.org {  }".into()])
    );
    assert_eq!(one("a.org,b.org {\n}"), Ok(vec!["a.org b.org {  }".into()]));
    assert_eq!(
        one("a.org, {\n}"),
        Err("Corefile:1: expected another server block key after ',' but found '{' (remove the extra comma)".into())
    );
}

#[test]
fn option_block_text_on_the_brace_lines() {
    assert_eq!(
        one(". {\n  gathersrv d. { a. a-\n    b. b- }\n}"),
        Ok(vec![". { gathersrv d. [a. a- | b. b-] }".into()])
    );
}

#[test]
fn structural_errors_name_the_line() {
    assert_eq!(
        one(". {\n  gathersrv d.\n  {\n    a. a-\n  }\n}"),
        Err(
            "Corefile:3: unexpected '{' at the start of a line: a directive's block must \
             open on the directive's own line (put the '{' at the end of the \"gathersrv\" line above)"
                .into()
        )
    );
    assert_eq!(
        one(". {\n  log\n"),
        Err(
            "Corefile:1: this server block is not closed: '}' missing before the end of the file"
                .into()
        )
    );
    assert_eq!(
        one(". {\n  forward . 1.1.1.1 {\n force_tcp\n}"),
        Err(
            "Corefile:1: this server block is not closed: '}' missing before the end of the file"
                .into()
        )
    );
    assert_eq!(
        one(". {\n  forward . 1.1.1.1 {\n    policy { x }\n  }\n}"),
        Err(
            "Corefile:3: unexpected '{': blocks inside a directive's block are not supported"
                .into()
        )
    );
    assert_eq!(
        one(". {\n  forward . 1.1.1.1 {\n  } log\n}"),
        Err(
            "Corefile:3: unexpected \"log\" after '}': start the next directive on a new line"
                .into()
        )
    );
    assert_eq!(
        one("}"),
        Err("Corefile:1: unexpected '}': no block is open".into())
    );
    assert!(one("{\n}").is_err_and(|e| e.starts_with("Corefile:1: unexpected '{'")));
    assert_eq!(
        one("a.org\nlog\n}"),
        Err("Corefile:3: unexpected '}': no block is open".into())
    );
    assert_eq!(
        one(". {\n log \"x\n}"),
        Err("Corefile:2: this quoted token has no closing '\"'".into())
    );
}

#[test]
fn quoted_braces_are_words() {
    assert_eq!(
        one(". {\n  log \"{\" \"}\"\n}"),
        Ok(vec![". { log { } }".into()])
    );
}

#[test]
fn environment_is_substituted_per_token() {
    let loader = MemLoader::new()
        .file(
            "Corefile",
            "{$ZONE}:{$PORT} {\n  forward . {%UP%}:53 {$UNSET}x\n}",
        )
        .env("ZONE", "example.org")
        .env("PORT", "1053")
        .env("UP", "10.0.0.1");
    assert_eq!(
        shape("Corefile", &loader),
        Ok(vec!["example.org:1053 { forward . 10.0.0.1:53 x }".into()])
    );
}

#[test]
fn snippets_are_imported_where_named() {
    let text = "(common) {\n  log\n  errors\n}\n. {\n  import common\n  forward . 1.1.1.1\n}\n";
    assert_eq!(
        one(text),
        Ok(vec![". { log; errors; forward . 1.1.1.1 }".into()])
    );
    assert_eq!(
        one("(a) {\n log\n}\n(a) {\n}\n"),
        Err("Corefile:4: snippet (a) is defined twice".into())
    );
    assert_eq!(
        one("(a) {\n import a\n}\n. {\n import a\n}"),
        Err("Corefile:2: import: snippet (a) imports itself (Corefile → (a) → (a))".into())
    );
    assert_eq!(
        one("(a)\n"),
        Err("Corefile:1: snippet (a) must be followed by a '{' block".into())
    );
    assert_eq!(
        one("(a) {\n log\n"),
        Err("Corefile:1: snippet (a) is not closed: '}' missing before the end of the file".into())
    );
}

#[test]
fn snippets_may_hold_option_blocks_and_nest_imports() {
    let text =
        "(fw) {\n  forward . 1.1.1.1 {\n    force_tcp\n  }\n}\n(all) {\n  import fw\n  log\n}\n\
                . {\n  import all\n}\n";
    assert_eq!(
        one(text),
        Ok(vec![". { forward . 1.1.1.1 [force_tcp]; log }".into()])
    );
}

#[test]
fn imports_of_files_and_globs_are_relative_to_the_importing_file() {
    let loader = MemLoader::new()
        .file(
            "/etc/coredns/Corefile",
            "import conf.d/*.conf\n. {\n  import parts/common\n}\n",
        )
        .file("/etc/coredns/conf.d/b.conf", "b.org {\n}\n")
        .file(
            "/etc/coredns/conf.d/a.conf",
            "a.org {\n  import ../parts/common\n}\n",
        )
        .file("/etc/coredns/parts/common", "log\nimport more\n")
        .file("/etc/coredns/parts/more", "errors\n");
    assert_eq!(
        shape("/etc/coredns/Corefile", &loader),
        Ok(vec![
            "a.org { log; errors }".into(),
            "b.org {  }".into(),
            ". { log; errors }".into(),
        ])
    );
}

#[test]
fn import_in_an_option_block() {
    let loader = MemLoader::new()
        .file(
            "Corefile",
            ". {\n  forward . 1.1.1.1 {\n    import opts\n  }\n}\n",
        )
        .file("opts", "force_tcp\nprefer_udp\n");
    assert_eq!(
        shape("Corefile", &loader),
        Ok(vec![
            ". { forward . 1.1.1.1 [force_tcp | prefer_udp] }".into()
        ])
    );
}

#[test]
fn import_errors() {
    let loader = |text: &str| {
        MemLoader::new()
            .file("Corefile", text)
            .file("self", "import self\n")
    };
    assert_eq!(
        shape("Corefile", &loader(". {\n  import missing.conf\n}")),
        Err("Corefile:2: import: cannot read \"missing.conf\": No such file or directory (os error 2)".into())
    );
    assert_eq!(
        shape("Corefile", &loader("import\n")),
        Err("Corefile:1: import: expected a file, a glob or a snippet name after it (e.g. \"import common.conf\")".into())
    );
    assert_eq!(
        shape("Corefile", &loader("import a b\n")),
        Err("Corefile:1: import takes exactly one argument (a file, a glob or a snippet name), found \"b\" after \"a\"".into())
    );
    assert_eq!(
        shape("Corefile", &loader("import self\n")),
        Err("self:1: import: self imports itself (Corefile → self → self)".into())
    );
    assert_eq!(
        shape("Corefile", &loader("import Corefile\n")),
        Err("Corefile:1: import: Corefile imports itself (Corefile → Corefile)".into())
    );
    assert_eq!(
        shape("Corefile", &loader("import \"\"\n")),
        Err("Corefile:1: import: the file name is empty (an unset environment variable?)".into())
    );
    assert!(shape("Corefile", &loader("import [\n"))
        .is_err_and(|e| e.starts_with("Corefile:1: import: bad pattern \"[\"")));
}

#[test]
fn an_empty_glob_is_a_warning() {
    let loader = MemLoader::new().file("Corefile", "import none/*.conf\n. {\n}\n");
    let text = loader.read(Path::new("Corefile")).expect("present");
    let (blocks, warnings) = parse(Path::new("Corefile"), &text, &loader).expect("parses");
    assert_eq!(blocks.len(), 1);
    assert_eq!(
        warnings,
        vec!["Corefile:1: import: no files match \"none/*.conf\"".to_string()]
    );
}

#[test]
fn tokens_in_imported_files_carry_their_own_location() {
    let loader = MemLoader::new()
        .file("dir/Corefile", "\n. {\n  import sub/x.conf\n}\n")
        .file("dir/sub/x.conf", "\n\nlog\n");
    let text = loader.read(Path::new("dir/Corefile")).expect("present");
    let (blocks, _) = parse(Path::new("dir/Corefile"), &text, &loader).expect("parses");
    assert_eq!(blocks[0].keys[0].location().to_string(), "dir/Corefile:2");
    assert_eq!(
        blocks[0].directives[0].name.location().to_string(),
        "dir/sub/x.conf:3"
    );
    let lexing = MemLoader::new()
        .file("Corefile", "import x\n")
        .file("x", "\n\"open\n");
    assert_eq!(
        shape("Corefile", &lexing),
        Err("x:2: this quoted token has no closing '\"'".into())
    );
}

#[test]
fn the_import_cap_stops_runaway_expansion() {
    // Each level imports the previous one ten times: 10^5 expansions without a cycle.
    let mut text = String::from("(s0) {\n log\n}\n");
    for level in 1..=5 {
        text.push_str(&format!("(s{level}) {{\n"));
        for _ in 0..10 {
            text.push_str(&format!(" import s{}\n", level - 1));
        }
        text.push_str("}\n");
    }
    text.push_str(". {\n import s5\n}\n");
    assert!(one(&text).is_err_and(|e| e.contains("more than 10000 imports")));
}

#[test]
fn multi_line_quoted_tokens_keep_the_line_structure() {
    // The token after a two-line quoted argument is on the quote's last line.
    assert_eq!(
        one(". {\n log \"a\nb\" c\n errors\n}"),
        Ok(vec![". { log a\nb c; errors }".into()])
    );
}

#[test]
fn a_token_bomb_is_refused() {
    // 1000 words imported 1001 times stays under the import cap but not the token cap.
    let mut text = String::from("(big) {\n");
    for _ in 0..1000 {
        text.push_str(" log\n");
    }
    text.push_str("}\n. {\n");
    for _ in 0..1001 {
        text.push_str(" import big\n");
    }
    text.push_str("}\n");
    assert!(one(&text).is_err_and(|e| e.contains("grows past 1000000 words")));
}
