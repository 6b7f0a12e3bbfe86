//! Running `cargo test` and reading its per-test results.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Result, bail};

/// How a test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
    Ignored,
}

/// Test name (as libtest prints it) to outcome.
pub type Results = BTreeMap<String, Outcome>;

/// Longest a single `cargo test` run may take before it is killed: a lab
/// test that hangs must not hang the grader.
const RUN_LIMIT: Duration = Duration::from_secs(900);

/// Parses libtest's `test NAME ... ok|FAILED|ignored` lines.
pub fn parse_results(output: &str) -> Results {
    let mut results = Results::new();
    for line in output.lines() {
        let Some(rest) = line.strip_prefix("test ") else { continue };
        let Some((name, outcome)) = rest.rsplit_once(" ... ") else { continue };
        let outcome = match outcome.trim() {
            "ok" => Outcome::Passed,
            "FAILED" => Outcome::Failed,
            o if o.starts_with("ignored") => Outcome::Ignored,
            _ => continue,
        };
        results.insert(name.trim().to_string(), outcome);
    }
    results
}

/// Runs `cargo test` in `dir` with `args` and returns each test's outcome.
/// A build failure is an error; failing tests are not.
pub fn run_tests(dir: &Path, args: &[&str], extra_env: &[(&str, &str)]) -> Result<(Results, String)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(dir).arg("test").args(args);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let (status, stdout, stderr) = crate::process::run_bounded(cmd, RUN_LIMIT)?;
    let Some(status) = status else {
        bail!("`cargo test {}` took longer than {:?}: a test hangs", args.join(" "), RUN_LIMIT);
    };
    let results = parse_results(&stdout);
    if !status.success() && results.is_empty() {
        bail!("`cargo test {}` failed before running tests:\n{}", args.join(" "), tail(&stderr, 40));
    }
    Ok((results, stdout + &stderr))
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_libtest_lines() {
        let out = "running 3 tests\ntest lab_5_1_a ... ok\ntest lab_5_1_b ... FAILED\ntest x::y ... ignored, slow\ntest result: FAILED.";
        let r = parse_results(out);
        assert_eq!(r.len(), 3);
        assert_eq!(r["lab_5_1_a"], Outcome::Passed);
        assert_eq!(r["lab_5_1_b"], Outcome::Failed);
        assert_eq!(r["x::y"], Outcome::Ignored);
    }
}
