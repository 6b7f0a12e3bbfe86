//! `cargo xtask book-check`: the book's listings are the real code.
//!
//! mdBook only *warns* when an `{{#include file:anchor}}` names a missing
//! file or anchor and renders an empty listing. Here that is an error, and
//! so is any ERROR line from `mdbook build`. What the transcripts quote
//! (flags, log lines) is checked against the programs too (`quotes.rs`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// One `{{#include ...}}` found in a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Include {
    /// The page it is in.
    pub page: PathBuf,
    /// Line number in the page (1-based).
    pub line: usize,
    /// The file it names, resolved against the page's folder.
    pub file: PathBuf,
    /// What follows the path: an anchor name, a line range, or nothing.
    pub selector: Option<String>,
}

/// Finds the includes of one page's text.
pub fn find_includes(page: &Path, text: &str) -> Vec<Include> {
    let base = page.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some((_, after)) = rest.split_once("{{#") {
            let Some((directive, next)) = after.split_once("}}") else { break };
            let directive = directive.trim();
            rest = next;
            let Some(arg) = directive
                .strip_prefix("include ")
                .or_else(|| directive.strip_prefix("rustdoc_include "))
                .map(str::trim)
            else {
                continue;
            };
            let (path, selector) = match arg.split_once(':') {
                Some((p, s)) => (p, Some(s.to_string())),
                None => (arg, None),
            };
            out.push(Include { page: page.to_path_buf(), line: i + 1, file: base.join(path), selector });
        }
    }
    out
}

/// Checks one include; `Err` says what is wrong.
pub fn check_include(inc: &Include) -> Result<(), String> {
    let text = fs::read_to_string(&inc.file).map_err(|e| format!("cannot read {}: {e}", inc.file.display()))?;
    let Some(selector) = &inc.selector else { return Ok(()) };
    let first = selector.split(':').next().unwrap_or("");
    if first.is_empty() || first.bytes().all(|b| b.is_ascii_digit()) {
        // A line range like 3:10 or 5: or :20.
        let lines = text.lines().count();
        for n in selector.split(':').filter(|s| !s.is_empty()) {
            let n: usize = n.parse().map_err(|_| format!("bad line range {selector:?}"))?;
            if n == 0 || n > lines {
                return Err(format!("line {n} is outside {} ({lines} lines)", inc.file.display()));
            }
        }
        return Ok(());
    }
    let anchor = first;
    let has = |marker: &str| {
        text.lines()
            .any(|l| l.split_once(marker).is_some_and(|(_, name)| name.split_whitespace().next() == Some(anchor)))
    };
    match (has("ANCHOR:"), has("ANCHOR_END:")) {
        (true, true) => Ok(()),
        (false, _) => Err(format!("{} has no `ANCHOR: {anchor}`", inc.file.display())),
        (true, false) => Err(format!("{} has no `ANCHOR_END: {anchor}`", inc.file.display())),
    }
}

fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            markdown_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
    Ok(())
}

/// Checks every include of every page under `book/src`.
pub fn check_all_includes(book: &Path) -> Result<usize> {
    let mut pages = Vec::new();
    markdown_files(&book.join("src"), &mut pages)?;
    pages.sort();
    let (mut count, mut errors) = (0, Vec::new());
    for page in &pages {
        let text = fs::read_to_string(page)?;
        for inc in find_includes(page, &text) {
            count += 1;
            if let Err(e) = check_include(&inc) {
                errors.push(format!("{}:{}: {e}", inc.page.display(), inc.line));
            }
        }
    }
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("error: {e}");
        }
        bail!("{} broken include(s) in the book", errors.len());
    }
    Ok(count)
}

/// Runs `mdbook build` and fails on a failed build or any ERROR line.
fn mdbook_build(book: &Path) -> Result<()> {
    let output = Command::new("mdbook")
        .arg("build")
        .arg(book)
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run mdbook ({e}); install it with `cargo install mdbook --locked`"))?;
    let log = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    if !output.status.success() || !errors.is_empty() {
        eprintln!("{log}");
        bail!("mdbook build failed ({} ERROR line(s))", errors.len());
    }
    Ok(())
}

/// `cargo xtask book-check`.
pub fn book_check(book: &Path) -> Result<()> {
    let count = check_all_includes(book)?;
    println!("book-check: {count} includes resolve to existing files and anchors");
    let mut pages = Vec::new();
    markdown_files(&book.join("src"), &mut pages)?;
    pages.sort();
    let root = book.parent().unwrap_or(Path::new("."));
    let (flags, logs) = crate::quotes::check(root, &pages)?;
    println!(
        "book-check: {flags} quoted flags are in their binaries' --help; {logs} quoted log lines match the source"
    );
    mdbook_build(book)?;
    println!("book-check: mdbook build finished without errors ({})", book.join("build").display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throwaway book: one source file with an anchor, one page.
    fn book_with_page(name: &str, page: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lbs-book-check-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("src")).unwrap();
        fs::write(dir.join("code.rs"), "// ANCHOR: present\nfn f() {}\n// ANCHOR_END: present\n").unwrap();
        fs::write(dir.join("src/page.md"), page).unwrap();
        dir
    }

    #[test]
    fn an_include_of_a_present_anchor_passes() {
        let book = book_with_page("ok", "```rust\n{{#include ../code.rs:present}}\n```\n{{#include ../code.rs:1:2}}\n");
        assert_eq!(check_all_includes(&book).unwrap(), 2);
    }

    #[test]
    fn an_include_of_a_missing_anchor_fails() {
        let book = book_with_page("anchor", "```rust\n{{#include ../code.rs:missing}}\n```\n");
        let err = check_all_includes(&book).unwrap_err();
        assert!(err.to_string().contains("1 broken include"), "{err}");
        let inc = &find_includes(&book.join("src/page.md"), "{{#include ../code.rs:missing}}")[0];
        assert!(check_include(inc).unwrap_err().contains("no `ANCHOR: missing`"));
    }

    #[test]
    fn an_include_of_a_missing_file_fails() {
        let book = book_with_page("file", "{{#include ../nope.rs}}\n");
        assert!(check_all_includes(&book).is_err());
    }

    #[test]
    fn a_line_range_past_the_end_fails() {
        let book = book_with_page("range", "{{#include ../code.rs:2:99}}\n");
        assert!(check_all_includes(&book).is_err());
    }

    #[test]
    fn anchor_names_must_match_whole() {
        let book = book_with_page("prefix", "{{#include ../code.rs:pres}}\n");
        assert!(check_all_includes(&book).is_err());
    }

    #[test]
    fn the_real_book_has_no_broken_include() {
        let book = crate::root().join("book");
        check_all_includes(&book).unwrap();
    }
}
