//! `cargo xtask student-edition DIR`: the repository as students get it.
//!
//! Everything tracked by git is copied except the `solutions/` folders,
//! and each chapter's `default = ["reference"]` becomes `default = []`.
//! In the copy, `cargo test -p chNN-...` builds the stubs, so the only
//! tests that fail are the lab tests the student has not yet made pass.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::cargo::{Outcome, run_tests};
use crate::labs::{chapters, labs_of};

const REFERENCE_DEFAULT: &str = "default = [\"reference\"]";
const STUDENT_DEFAULT: &str = "default = []";

const NOTICE: &str = "> **Student edition.** The reference solutions are not in this copy. \
Each chapter's labs are in `chNN-*/src/labs/`; `cargo test -p ch01-fundamentals` grades your work \
(only the lab tests you have not finished fail), and `cargo xtask grade` prints a score table.\n\n";

/// The files to copy: git's list of tracked and untracked-but-not-ignored
/// files, relative to `root`.
fn project_files(root: &Path) -> Result<Vec<PathBuf>> {
    let output = Command::new("git")
        .current_dir(root)
        .args(["ls-files", "--cached", "--others", "--exclude-standard", "-z"])
        .output()
        .context("running git ls-files (the student edition is made from a git checkout)")?;
    if !output.status.success() {
        bail!("git ls-files failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(output
        .stdout
        .split(|&b| b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| PathBuf::from(String::from_utf8_lossy(p).into_owned()))
        .filter(|p| root.join(p).is_file()) // deleted but still in the index
        .collect())
}

/// Whether a relative path is part of a reference solution.
fn is_solution(path: &Path) -> bool {
    path.components().any(|c| c.as_os_str() == "solutions")
}

/// Writes the student edition of `root` into `dir`.
pub fn student_edition(root: &Path, dir: &Path, verify: bool) -> Result<()> {
    if dir.exists() && fs::read_dir(dir)?.next().is_some() {
        bail!("{} exists and is not empty; choose a new folder", dir.display());
    }
    let dir = if dir.is_absolute() { dir.to_path_buf() } else { std::env::current_dir()?.join(dir) };
    let mut copied = 0;
    let mut removed = 0;
    for rel in project_files(root)? {
        if is_solution(&rel) {
            removed += 1;
            continue;
        }
        let to = dir.join(&rel);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::copy(root.join(&rel), &to).with_context(|| format!("copying {}", rel.display()))?;
        copied += 1;
    }
    for package in chapters(root)? {
        let manifest = dir.join(&package).join("Cargo.toml");
        let text = fs::read_to_string(&manifest)?;
        if !text.contains(REFERENCE_DEFAULT) {
            bail!("{} has no line `{REFERENCE_DEFAULT}` to switch off", manifest.display());
        }
        fs::write(&manifest, text.replace(REFERENCE_DEFAULT, STUDENT_DEFAULT))?;
    }
    let readme = dir.join("README.md");
    if let Ok(text) = fs::read_to_string(&readme) {
        fs::write(&readme, format!("{NOTICE}{text}"))?;
    }
    println!("wrote {} files to {} ({removed} solution files left out)", copied, dir.display());
    if verify {
        verify_edition(root, &dir)?;
    }
    Ok(())
}

/// Runs each chapter's tests in the edition and checks that the failures
/// are exactly the lab tests.
fn verify_edition(root: &Path, dir: &Path) -> Result<()> {
    // Reuse this checkout's target folder: the registry crates are already
    // built there, only the workspace's own crates build again.
    let target = root.join("target");
    let target = target.to_string_lossy();
    let mut problems = Vec::new();
    for package in chapters(dir)? {
        eprintln!("verifying the student edition: cargo test -p {package}");
        let (results, output) =
            run_tests(dir, &["-p", &package, "--no-fail-fast"], &[("CARGO_TARGET_DIR", target.as_ref())])?;
        let labs = labs_of(dir, &package)?;
        let is_lab = |name: &str| labs.iter().any(|l| name.starts_with(&l.prefix));
        let (mut lab_failed, mut lab_total, mut other_passed) = (0, 0, 0);
        for (name, outcome) in &results {
            match (is_lab(name), outcome) {
                (true, Outcome::Failed) => {
                    lab_failed += 1;
                    lab_total += 1;
                }
                (true, _) => {
                    lab_total += 1;
                    problems.push(format!("{package}: lab test {name} passes against the stub"));
                }
                (false, Outcome::Failed) => problems.push(format!("{package}: non-lab test {name} fails")),
                (false, _) => other_passed += 1,
            }
        }
        if lab_total == 0 {
            problems.push(format!("{package}: no lab tests ran\n{}", crate::cargo::tail(&output, 20)));
        }
        println!(
            "{package}: {lab_failed}/{lab_total} lab tests fail (as they should), {other_passed} other tests pass"
        );
    }
    if problems.is_empty() {
        println!("student edition verified: only lab tests fail");
        Ok(())
    } else {
        for p in &problems {
            eprintln!("problem: {p}");
        }
        bail!("the student edition is not right: {} problem(s)", problems.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solutions_are_recognised_by_folder() {
        assert!(is_solution(Path::new("ch01-fundamentals/solutions/lab_2_calculator.rs")));
        assert!(!is_solution(Path::new("ch01-fundamentals/src/labs/lab_2_calculator.rs")));
    }

    #[test]
    fn every_chapter_manifest_has_the_switchable_default() {
        let root = crate::root();
        for package in chapters(&root).unwrap() {
            let text = fs::read_to_string(root.join(&package).join("Cargo.toml")).unwrap();
            assert!(text.contains(REFERENCE_DEFAULT), "{package}");
        }
    }
}
