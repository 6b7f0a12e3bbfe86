//! What the book quotes from the programs, checked against the programs:
//! part of `cargo xtask book-check`.
//!
//! - A `--flag` on a command line in a `console` block, given to one of the
//!   workspace's binaries, must appear in that binary's `--help`.
//! - A log line in a `console` block (tracing's text format: a timestamp,
//!   a level, `target: message fields`) must name a target that is a
//!   module of the workspace, and its message must match a string literal
//!   of that module's source (`{...}` placeholders match anything).
//!
//! So a renamed flag or a reworded log line fails the check until the
//! transcript that quotes it is recorded again.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// A command or log line quoted in a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// The page and line (1-based).
    pub page: PathBuf,
    /// Line number.
    pub line: usize,
    /// The text.
    pub text: String,
}

/// Which kind of fenced block a line is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fence {
    /// ```` ```console ````: `$ ` commands and their output.
    Console,
    /// ```` ```text ````: output only.
    Text,
    /// Code and anything else: not checked.
    Other,
}

/// The lines of every `console` and `text` block of a page: commands (`$ ...`,
/// continuation lines joined) and output lines.
pub fn console_lines(page: &Path, text: &str) -> (Vec<Quote>, Vec<Quote>) {
    let (mut commands, mut output) = (Vec::new(), Vec::new());
    let mut fence: Option<Fence> = None;
    let mut pending: Option<Quote> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            fence = match fence {
                Some(_) => None,
                None => Some(match info.trim() {
                    "console" => Fence::Console,
                    "text" => Fence::Text,
                    _ => Fence::Other,
                }),
            };
            continue;
        }
        match fence {
            None | Some(Fence::Other) => continue,
            Some(Fence::Text) => {
                // Output only: logs are often shown apart from the commands.
                output.push(Quote { page: page.to_path_buf(), line: i + 1, text: line.to_string() });
                continue;
            }
            Some(Fence::Console) => {}
        }
        if let Some(mut cmd) = pending.take() {
            cmd.text.push(' ');
            cmd.text.push_str(line.trim().trim_end_matches('\\'));
            if line.trim_end().ends_with('\\') {
                pending = Some(cmd);
            } else {
                commands.push(cmd);
            }
            continue;
        }
        let quote = |text: &str| Quote { page: page.to_path_buf(), line: i + 1, text: text.to_string() };
        match trimmed.strip_prefix("$ ") {
            Some(cmd) if cmd.trim_end().ends_with('\\') => pending = Some(quote(cmd.trim_end().trim_end_matches('\\'))),
            Some(cmd) => commands.push(quote(cmd)),
            None => output.push(quote(line)),
        }
    }
    (commands, output)
}

/// The workspace's binaries: name → (package folder, source file).
pub fn binaries(root: &Path) -> Result<BTreeMap<String, (PathBuf, PathBuf)>> {
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(root)? {
        let dir = entry?.path();
        let bins = dir.join("src/bin");
        if !dir.join("Cargo.toml").is_file() || !bins.is_dir() {
            continue;
        }
        for file in fs::read_dir(&bins)? {
            let file = file?.path();
            if file.extension().is_some_and(|e| e == "rs")
                && let Some(stem) = file.file_stem().and_then(|s| s.to_str())
            {
                out.insert(stem.to_string(), (dir.clone(), file.clone()));
            }
        }
    }
    Ok(out)
}

/// The package a `cargo run -p PKG` runs by default: its `default-run`.
fn default_run(package_dir: &Path) -> Option<String> {
    let manifest = fs::read_to_string(package_dir.join("Cargo.toml")).ok()?;
    let line = manifest.lines().find(|l| l.trim_start().starts_with("default-run"))?;
    Some(line.split('"').nth(1)?.to_string())
}

/// The binary a command runs and the flags it passes, for every
/// workspace binary in a shell line (`a | b && c` are three commands).
pub fn invocations(
    command: &str,
    bins: &BTreeMap<String, (PathBuf, PathBuf)>,
    root: &Path,
) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let separated = command.replace("&&", ";").replace("||", ";").replace(['|', '&'], ";");
    for part in separated.split(';') {
        let words: Vec<&str> = part.split_whitespace().collect();
        // Skip `VAR=value` assignments and wrappers that run what follows.
        let mut i = 0;
        while let Some(w) = words.get(i) {
            if w.contains('=') && !w.starts_with('-') {
                i += 1;
            } else if matches!(*w, "sudo" | "env" | "exec" | "nohup" | "strace" | "time") {
                i += 1;
                // strace's own options come before the program.
                while words.get(i).is_some_and(|w| w.starts_with('-')) {
                    i += 1;
                    if words.get(i - 1).is_some_and(|f| matches!(*f, "-e" | "-o" | "-p" | "-s")) {
                        i += 1;
                    }
                }
            } else if *w == "timeout" {
                i += 2;
            } else {
                break;
            }
        }
        let Some(program) = words.get(i) else { continue };
        let name = program.rsplit('/').next().unwrap_or(program);
        let (bin, args) = if name == "cargo" && words.get(i + 1) == Some(&"run") {
            let rest = words.get(i + 2..).unwrap_or(&[]);
            let package = rest.windows(2).find(|w| w.first() == Some(&"-p")).and_then(|w| w.get(1)).copied();
            let explicit = rest.windows(2).find(|w| w.first() == Some(&"--bin")).and_then(|w| w.get(1)).copied();
            let bin = explicit.map(str::to_string).or_else(|| package.and_then(|p| default_run(&root.join(p))));
            let args: Vec<&str> = rest.iter().skip_while(|w| **w != "--").skip(1).copied().collect();
            match bin {
                Some(b) => (b, args),
                None => continue,
            }
        } else {
            (name.to_string(), words.get(i + 1..).unwrap_or(&[]).to_vec())
        };
        if !bins.contains_key(&bin) {
            continue;
        }
        let flags = args
            .iter()
            .take_while(|w| !w.starts_with('>') && !w.starts_with('<') && !w.starts_with("2>"))
            .filter(|w| w.starts_with("--") && w.len() > 2)
            .map(|w| w.split('=').next().unwrap_or(w).trim_matches(|c| c == '\'' || c == '"').to_string())
            .collect();
        out.push((bin, flags));
    }
    out
}

/// One log line in tracing's text format: `(target, message and fields)`.
pub fn log_line(line: &str) -> Option<(&str, &str)> {
    const LEVELS: [&str; 5] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"];
    // A shell may have echoed Ctrl-C (`^C`) just before the line.
    let mut rest = line.trim_start().trim_start_matches("^C");
    // A timestamp (2026-12-03T13:49:45.145324Z, or a shortened one) may
    // come first.
    let (first, after_first) = rest.split_once(' ')?;
    if !LEVELS.contains(&first) && first.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
        rest = after_first.trim_start();
    }
    let (level, after) = rest.split_once(' ')?;
    if !LEVELS.contains(&level) {
        return None;
    }
    let (target, message) = after.trim_start().split_once(": ")?;
    let valid = !target.is_empty() && target.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':');
    valid.then_some((target, message))
}

/// The source file of a log target: `crate::a::b` → `crate-dir/src/a/b.rs`
/// (or `.../b/mod.rs`); a binary's target is its file in `src/bin`.
pub fn target_file(target: &str, root: &Path, bins: &BTreeMap<String, (PathBuf, PathBuf)>) -> Option<PathBuf> {
    let mut parts = target.split("::");
    let first = parts.next()?;
    let rest: Vec<&str> = parts.collect();
    if rest.is_empty()
        && let Some((_, file)) = bins.get(first)
    {
        return Some(file.clone());
    }
    let dir = root.join(first.replace('_', "-"));
    let src = dir.join("src");
    if rest.is_empty() {
        return Some(src.join("lib.rs")).filter(|p| p.is_file());
    }
    let base = rest.iter().fold(src, |p, m| p.join(m));
    [base.with_extension("rs"), base.join("mod.rs")].into_iter().find(|p| p.is_file())
}

/// Every string literal of a Rust source, unescaped enough to compare
/// (`\"` → `"`, `\\` → `\`, `{{` → `{`).
fn string_literals(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '"' {
            continue;
        }
        let mut s = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => s.push('\n'),
                    Some('\n') => {
                        // A continued line: leading spaces of the next are skipped.
                        while chars.peek().is_some_and(|c| c.is_whitespace()) {
                            chars.next();
                        }
                    }
                    Some(other) => s.push(other),
                    None => break,
                },
                '"' => break,
                other => s.push(other),
            }
        }
        out.push(s);
    }
    out
}

/// Whether `message` could have been written by format string `fmt`: its
/// literal pieces appear in order, the first at the start (unless the
/// format starts with a placeholder).
pub fn matches_format(fmt: &str, message: &str) -> bool {
    let pieces = literal_pieces(fmt);
    if pieces.iter().all(|p| p.trim().is_empty()) {
        return false;
    }
    let starts_with_placeholder = fmt.starts_with('{') && !fmt.starts_with("{{");
    let mut at = 0;
    for (i, piece) in pieces.iter().enumerate() {
        if piece.is_empty() {
            continue;
        }
        let Some(found) = message.get(at..).and_then(|m| m.find(piece.as_str())) else { return false };
        if i == 0 && !starts_with_placeholder && found != 0 {
            return false;
        }
        at += found + piece.len();
    }
    true
}

/// The text between `{...}` placeholders (`{{` and `}}` are literal braces).
fn literal_pieces(fmt: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' | '}' if chars.peek() == Some(&c) => {
                chars.next();
                current.push(c);
            }
            '{' => {
                for c in chars.by_ref() {
                    if c == '}' {
                        break;
                    }
                }
                pieces.push(std::mem::take(&mut current));
            }
            other => current.push(other),
        }
    }
    pieces.push(current);
    pieces
}

/// Checks every quoted command and log line of every page; returns how
/// many were checked.
pub fn check(root: &Path, pages: &[PathBuf]) -> Result<(usize, usize)> {
    let bins = binaries(root)?;
    let mut help: BTreeMap<String, String> = BTreeMap::new();
    let mut sources: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
    let (mut flags_checked, mut logs_checked, mut errors) = (0, 0, Vec::new());
    let built = build_binaries(root)?;
    for page in pages {
        let text = fs::read_to_string(page)?;
        let (commands, output) = console_lines(page, &text);
        for cmd in &commands {
            for (bin, flags) in invocations(&cmd.text, &bins, root) {
                let known = match help.get(&bin) {
                    Some(h) => h.clone(),
                    None => {
                        let h = help_text(&built.join(&bin))?;
                        help.insert(bin.clone(), h.clone());
                        h
                    }
                };
                for flag in flags {
                    flags_checked += 1;
                    if !has_flag(&known, &flag) {
                        errors.push(format!(
                            "{}:{}: `{bin} {flag}`: {bin} --help has no {flag}",
                            page.display(),
                            cmd.line
                        ));
                    }
                }
            }
        }
        for out in &output {
            let Some((target, rest)) = log_line(&out.text) else { continue };
            logs_checked += 1;
            let Some(file) = target_file(target, root, &bins) else {
                errors.push(format!(
                    "{}:{}: log target `{target}` is no module of the workspace",
                    page.display(),
                    out.line
                ));
                continue;
            };
            let literals = match sources.get(&file) {
                Some(l) => l,
                None => {
                    let src = fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
                    sources.entry(file.clone()).or_insert_with(|| string_literals(&src))
                }
            };
            // The message is what comes before the fields (` key=value`);
            // trying every prefix at a space keeps messages with `=` in them.
            if !literals.iter().any(|l| matches_format(l, rest) || matches_format(l, message_of(rest))) {
                errors.push(format!(
                    "{}:{}: log line `{target}: {}` matches no string in {}",
                    page.display(),
                    out.line,
                    message_of(rest),
                    file.strip_prefix(root).unwrap_or(&file).display()
                ));
            }
        }
    }
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("error: {e}");
        }
        bail!(
            "{} quoted flag(s) or log line(s) the programs no longer have: record those transcripts again",
            errors.len()
        );
    }
    Ok((flags_checked, logs_checked))
}

/// The message part of `message key=value key=value`.
pub fn message_of(rest: &str) -> &str {
    let mut end = rest.len();
    for (i, _) in rest.match_indices(' ') {
        let next = rest.get(i + 1..).unwrap_or("");
        let word = next.split(' ').next().unwrap_or("");
        if let Some((key, _)) = word.split_once('=')
            && !key.is_empty()
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        {
            end = i;
            break;
        }
    }
    rest.get(..end).unwrap_or(rest)
}

fn has_flag(help: &str, flag: &str) -> bool {
    help.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']' || c == '=' || c == '<')
        .any(|w| w == flag)
}

/// Builds every binary (debug) and returns where they are.
fn build_binaries(root: &Path) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status = Command::new(cargo)
        .current_dir(root)
        .args(["build", "--quiet", "--workspace", "--bins"])
        .status()
        .context("could not run cargo build")?;
    if !status.success() {
        bail!("cargo build --workspace --bins failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), |d| root.join(d));
    Ok(target.join("debug"))
}

fn help_text(bin: &Path) -> Result<String> {
    let out = Command::new(bin).arg("--help").output().with_context(|| format!("running {} --help", bin.display()))?;
    Ok(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bins() -> BTreeMap<String, (PathBuf, PathBuf)> {
        let mut b = BTreeMap::new();
        b.insert("rate_limited_lb".to_string(), (PathBuf::from("ch07-rate-limit"), PathBuf::from("x.rs")));
        b
    }

    #[test]
    fn commands_name_their_binary_and_flags() {
        let root = crate::root();
        let got = invocations(
            "RUST_LOG=debug target/debug/rate_limited_lb -p 18080 --rate 1 --burst=5 2>&1 | tee log & curl --interface x",
            &bins(),
            &root,
        );
        assert_eq!(got, [("rate_limited_lb".to_string(), vec!["--rate".to_string(), "--burst".to_string()])]);
        let got = invocations("cargo run -p ch07-rate-limit -- --dry-run", &bins(), &root);
        assert_eq!(got, [("rate_limited_lb".to_string(), vec!["--dry-run".to_string()])]);
        assert!(invocations("kill -USR1 $(pgrep -x rate_limited_lb)", &bins(), &root).is_empty());
    }

    #[test]
    fn log_lines_split_into_target_and_message() {
        let line =
            "2026-12-03T13:49:45.145324Z  WARN ch07_rate_limit::limiter: rate limited 127.0.0.1 by the client limit";
        assert_eq!(log_line(line), Some(("ch07_rate_limit::limiter", "rate limited 127.0.0.1 by the client limit")));
        assert_eq!(log_line("  INFO load_balancer: stopping"), Some(("load_balancer", "stopping")));
        assert_eq!(
            log_line("^C2026-11-23T08:02:39.352266Z  INFO load_balancer: stopping"),
            Some(("load_balancer", "stopping"))
        );
        assert_eq!(log_line("HTTP/1.1 200 OK"), None);
        assert_eq!(message_of("request method=GET status=200"), "request");
        assert_eq!(
            message_of("rate limited 1.2.3.4: 3 more refused since"),
            "rate limited 1.2.3.4: 3 more refused since"
        );
    }

    #[test]
    fn formats_match_what_they_print() {
        assert!(matches_format(
            "{limited} {label}: {count} more {refused} since",
            "rate limited a: 3 more refused since"
        ));
        assert!(matches_format("{name} listening", "pooled load balancer listening"));
        assert!(!matches_format("{name} listening", "pooled load balancer stopped"));
        assert!(!matches_format("stopping", "stopped"));
        assert!(!matches_format("{x}", "anything"), "a format of placeholders only proves nothing");
        assert!(matches_format("a {{b}} {c}", "a {b} d"));
    }

    #[test]
    fn literals_are_read_from_source() {
        let src = r#"tracing::warn!("a \"quoted\" {x}", x = 1); let s = "two\
                     lines";"#;
        assert_eq!(string_literals(src), ["a \"quoted\" {x}", "twolines"]);
    }
}
