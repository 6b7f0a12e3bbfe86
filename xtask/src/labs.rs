//! The lab system (ARCHITECTURE.md section 2): discovery, `check-labs` and `grade`.
//!
//! A lab is a file `chNN-*/src/labs/lab_<id>_<title>.rs` (the stub), a file
//! `chNN-*/solutions/` of the same name (the reference), and tests in
//! `chNN-*/tests/labs.rs` whose names start with `lab_<id>_`. Only the
//! binaries plug labs in: [`core_lines_naming_labs`] keeps the core clear.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::cargo::{Outcome, Results, run_tests};

/// One lab of one chapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lab {
    /// The package, e.g. `ch01-fundamentals`.
    pub package: String,
    /// The id as the book writes it, e.g. `5.1` (or `2` for "Lab 2").
    pub id: String,
    /// The test-name prefix, e.g. `lab_5_1_`.
    pub prefix: String,
    /// Words after the id, e.g. `uppercase echo`.
    pub title: String,
    /// The stub.
    pub stub: PathBuf,
    /// The reference solution (may be missing in a student edition).
    pub solution: PathBuf,
}

/// Splits a lab file stem into (id, prefix, title):
/// `lab_5_1_uppercase_echo` gives `5.1`, `lab_5_1_`, `uppercase echo`.
pub fn parse_lab_stem(stem: &str) -> Option<(String, String, String)> {
    let rest = stem.strip_prefix("lab_")?;
    let parts: Vec<&str> = rest.split('_').collect();
    let numeric = parts.iter().take_while(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())).count();
    if numeric == 0 {
        return None;
    }
    let id = parts[..numeric].join(".");
    let prefix = format!("lab_{}_", parts[..numeric].join("_"));
    let title = parts[numeric..].join(" ");
    Some((id, prefix, title))
}

/// Every chapter package with labs, in order.
pub fn chapters(root: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(root).with_context(|| format!("reading {}", root.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("ch") && entry.path().join("src/labs").is_dir() {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

/// The labs of one chapter, in id order.
pub fn labs_of(root: &Path, package: &str) -> Result<Vec<Lab>> {
    let dir = root.join(package).join("src/labs");
    let mut labs = Vec::new();
    for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else { continue };
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let Some((id, prefix, title)) = parse_lab_stem(stem) else { continue };
        let solution = root.join(package).join("solutions").join(format!("{stem}.rs"));
        labs.push(Lab { package: package.to_string(), id, prefix, title, stub: path, solution });
    }
    labs.sort_by_key(|l| l.id.split('.').map(|p| p.parse::<u32>().unwrap_or(0)).collect::<Vec<_>>());
    // Two labs whose prefixes overlap would share tests: refuse.
    for a in &labs {
        for b in &labs {
            if a.prefix != b.prefix && b.prefix.starts_with(&a.prefix) {
                bail!("labs {} and {} of {package} have overlapping test prefixes", a.id, b.id);
            }
        }
    }
    Ok(labs)
}

/// Where the core of a chapter calls into labs: every line of a Rust file
/// under `chNN-*/src/`, outside `src/labs/` and `src/bin/`, that mentions
/// `labs::`, as `path:line: text`. Empty when the rule holds.
///
/// The rule (issue 17): core modules never import lab modules; the
/// binaries compose the labs in, through traits and hooks the core
/// defines (a `ResponseCache`, a `Selector`, a `Reporter`, ...). So the
/// core reads without the exercises, and a build with the stubs
/// (`--no-default-features`, or a student edition) can reach an unfinished
/// stub only through a flag that asks for that lab, never from the core's own
/// paths. Another chapter's labs count too (`ch04_advanced::labs::` in
/// chapter 5's core is the same mistake).
///
/// A text scan on purpose: any `use` or path into a lab module names
/// `labs::`, the scan needs no parser, and a doc comment that names a lab
/// item can say "lab 6.2's `HttpCache`" instead.
pub fn core_lines_naming_labs(root: &Path) -> Result<Vec<String>> {
    fn walk(dir: &Path, skip: &[PathBuf], files: &mut Vec<PathBuf>) -> Result<()> {
        for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                if !skip.contains(&path) {
                    walk(&path, skip, files)?;
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
        Ok(())
    }
    let mut found = Vec::new();
    for entry in fs::read_dir(root).with_context(|| format!("reading {}", root.display()))? {
        let chapter = entry?.path();
        let src = chapter.join("src");
        let is_chapter = chapter.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("ch"));
        if !is_chapter || !src.is_dir() {
            continue;
        }
        let mut files = Vec::new();
        walk(&src, &[src.join("labs"), src.join("bin")], &mut files)?;
        for file in files {
            let text = fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            for (i, line) in text.lines().enumerate() {
                if line.contains("labs::") {
                    let rel = file.strip_prefix(root).unwrap_or(&file);
                    found.push(format!("{}:{}: {}", rel.display(), i + 1, line.trim()));
                }
            }
        }
    }
    found.sort();
    Ok(found)
}

fn selected(root: &Path, only: Option<&str>) -> Result<Vec<String>> {
    let all = chapters(root)?;
    let Some(c) = only else { return Ok(all) };
    match all.iter().find(|a| names_chapter(a, c)) {
        Some(package) => Ok(vec![package.clone()]),
        None => bail!("no chapter package {c:?} with labs; chapters with labs: {}", all.join(", ")),
    }
}

/// Whether `given` names chapter package `package`: its whole name
/// (`ch01-fundamentals`), its short one (`ch01`), or its number (`1`, `01`).
fn names_chapter(package: &str, given: &str) -> bool {
    let short = package.split('-').next().unwrap_or(package);
    let number = short.trim_start_matches("ch");
    package == given
        || short == given
        || (given.bytes().all(|b| b.is_ascii_digit())
            && !given.is_empty()
            && number.trim_start_matches('0') == given.trim_start_matches('0'))
}

fn lab_results<'a>(results: &'a Results, lab: &Lab) -> Vec<(&'a String, Outcome)> {
    results.iter().filter(|(name, _)| name.starts_with(&lab.prefix)).map(|(n, o)| (n, *o)).collect()
}

/// `cargo xtask check-labs`.
pub fn check_labs(root: &Path, only: Option<&str>) -> Result<()> {
    let mut problems = Vec::new();
    for line in core_lines_naming_labs(root)? {
        problems.push(format!("{line}: core code calls a lab; let the binary plug it in (see core_lines_naming_labs)"));
    }
    println!("{:<20} {:<5} {:<24} {:>5}  {:<16} {:<16}", "chapter", "lab", "title", "tests", "reference", "stub");
    for package in selected(root, only)? {
        let labs = labs_of(root, &package)?;
        eprintln!("running {package} lab tests with the reference solutions...");
        let (reference, _) = run_tests(root, &["-p", &package, "--test", "labs"], &[])?;
        eprintln!("running {package} lab tests against the stubs...");
        let (stubs, _) = run_tests(root, &["-p", &package, "--no-default-features", "--test", "labs"], &[])?;

        for name in reference.keys() {
            if !labs.iter().any(|l| name.starts_with(&l.prefix)) {
                problems.push(format!("{package}: test {name} belongs to no lab (names start with lab_<id>_)"));
            }
        }
        for lab in &labs {
            let stub_text = fs::read_to_string(&lab.stub)?;
            if !stub_text.contains("TODO") {
                problems.push(format!("{}: the stub has no TODO", lab.stub.display()));
            }
            if !lab.solution.is_file() {
                problems.push(format!("{}: missing reference solution (a student edition?)", lab.solution.display()));
            }
            let r = lab_results(&reference, lab);
            let s = lab_results(&stubs, lab);
            let ref_pass = r.iter().filter(|(_, o)| *o == Outcome::Passed).count();
            let stub_fail = s.iter().filter(|(_, o)| *o == Outcome::Failed).count();
            if r.is_empty() {
                problems.push(format!("{package} lab {}: no tests named {}*", lab.id, lab.prefix));
            }
            for (name, o) in &r {
                if *o != Outcome::Passed {
                    problems.push(format!("{package} lab {}: {name} does not pass with the reference", lab.id));
                }
            }
            for (name, o) in &s {
                if *o != Outcome::Failed {
                    problems.push(format!("{package} lab {}: {name} does not fail against the stub", lab.id));
                }
            }
            if s.len() != r.len() {
                problems.push(format!(
                    "{package} lab {}: the stub run saw {} tests, the reference {}",
                    lab.id,
                    s.len(),
                    r.len()
                ));
            }
            let ok = !r.is_empty() && ref_pass == r.len() && stub_fail == r.len() && s.len() == r.len();
            println!(
                "{:<20} {:<5} {:<24} {:>5}  {:<16} {:<16} {}",
                package,
                lab.id,
                lab.title,
                r.len(),
                format!("{ref_pass}/{} pass", r.len()),
                format!("{stub_fail}/{} fail", s.len()),
                if ok { "ok" } else { "PROBLEM" }
            );
        }
    }
    if problems.is_empty() {
        println!("check-labs: every lab's reference passes and every lab test fails against its stub");
        Ok(())
    } else {
        for p in &problems {
            eprintln!("problem: {p}");
        }
        bail!("check-labs found {} problem(s)", problems.len())
    }
}

/// `cargo xtask grade`.
pub fn grade(root: &Path, only: Option<&str>, stubs: bool) -> Result<()> {
    let (mut passed_all, mut total_all) = (0usize, 0usize);
    let graded_what = if stubs {
        "the code in src/labs/ (--no-default-features)"
    } else if chapters(root)?.iter().any(|c| root.join(c).join("solutions").is_dir()) {
        "the reference solutions (this repository enables them by default; --stubs grades src/labs/)"
    } else {
        "the code in src/labs/"
    };
    println!("grading {graded_what}\n");
    println!("{:<20} {:<5} {:<24} {:>7} {:>7}", "chapter", "lab", "title", "passed", "score");
    for package in selected(root, only)? {
        let labs = labs_of(root, &package)?;
        let mut args = vec!["-p", package.as_str(), "--test", "labs", "--no-fail-fast"];
        if stubs {
            args.push("--no-default-features");
        }
        eprintln!("running {package} lab tests...");
        let (results, _) = run_tests(root, &args, &[])?;
        for lab in &labs {
            let r = lab_results(&results, lab);
            let passed = r.iter().filter(|(_, o)| *o == Outcome::Passed).count();
            let score = if r.is_empty() { 0.0 } else { 100.0 * passed as f64 / r.len() as f64 };
            println!(
                "{:<20} {:<5} {:<24} {:>7} {:>6.0}%",
                package,
                lab.id,
                lab.title,
                format!("{passed}/{}", r.len()),
                score
            );
            passed_all += passed;
            total_all += r.len();
        }
    }
    let score = if total_all == 0 { 0.0 } else { 100.0 * passed_all as f64 / total_all as f64 };
    println!("{:<20} {:<5} {:<24} {:>7} {:>6.0}%", "total", "", "", format!("{passed_all}/{total_all}"), score);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chapter_is_named_in_full_short_or_by_number() {
        for given in ["ch01-fundamentals", "ch01", "1", "01"] {
            assert!(names_chapter("ch01-fundamentals", given), "{given}");
        }
        for given in ["ch1", "ch10", "10", "fundamentals", ""] {
            assert!(!names_chapter("ch01-fundamentals", given), "{given}");
        }
        assert!(names_chapter("ch10-hot-reload", "10") && names_chapter("ch10-hot-reload", "ch10"));
    }

    #[test]
    fn lab_stems_give_ids_prefixes_and_titles() {
        assert_eq!(
            parse_lab_stem("lab_5_1_uppercase_echo"),
            Some(("5.1".into(), "lab_5_1_".into(), "uppercase echo".into()))
        );
        assert_eq!(parse_lab_stem("lab_2_calculator"), Some(("2".into(), "lab_2_".into(), "calculator".into())));
        assert_eq!(parse_lab_stem("mod"), None);
        assert_eq!(parse_lab_stem("lab_chat"), None);
    }

    #[test]
    fn no_core_module_calls_a_lab() {
        let found = core_lines_naming_labs(&crate::root()).unwrap();
        assert!(
            found.is_empty(),
            "core modules name lab modules; define a trait or hook in the core and let the binary plug the lab in:\n{}",
            found.join("\n")
        );
    }

    #[test]
    fn the_lab_scan_skips_labs_and_bin_but_not_the_rest() {
        let root = std::env::temp_dir().join(format!("xtask-lab-scan-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let write = |rel: &str, text: &str| {
            let path = root.join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        };
        write("ch09-x/src/labs/mod.rs", "use crate::labs::lab_1_a::A;\n");
        write("ch09-x/src/bin/main.rs", "use ch09_x::labs::lab_1_a::A;\n");
        write("ch09-x/src/core.rs", "//! Fine.\nuse crate::labs::lab_1_a::A;\n");
        write("ch09-x/src/deep/inner.rs", "fn f() { ch04_advanced::labs::fastest; }\n");
        write("ch09-x/tests/labs.rs", "use ch09_x::labs::lab_1_a::A;\n");
        write("backends/src/lib.rs", "use crate::labs::x;\n");
        let found = core_lines_naming_labs(&root).unwrap();
        fs::remove_dir_all(&root).unwrap();
        let expected = [
            "ch09-x/src/core.rs:2: use crate::labs::lab_1_a::A;",
            "ch09-x/src/deep/inner.rs:1: fn f() { ch04_advanced::labs::fastest; }",
        ];
        assert_eq!(found, expected);
    }

    #[test]
    fn the_real_chapter_one_labs_are_found() {
        let root = crate::root();
        let labs = labs_of(&root, "ch01-fundamentals").unwrap();
        let ids: Vec<&str> = labs.iter().map(|l| l.id.as_str()).collect();
        assert_eq!(ids, ["1", "2", "5.1", "5.2", "5.3", "5.4"]);
    }
}
