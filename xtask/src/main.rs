//! `cargo xtask`: the project's automation, written in Rust so it runs
//! wherever cargo does.
//!
//! | command | what it does | file |
//! |---|---|---|
//! | `check-labs [CHAPTER]` | every lab: reference passes, stub fails, stub has a TODO; no core module names `labs::` | `labs.rs` |
//! | `grade [CHAPTER] [--stubs]` | runs the lab tests and prints a score table | `labs.rs` |
//! | `student-edition DIR [--verify]` | copies the repo without solutions | `edition.rs` |
//! | `book-check` | every `{{#include}}` resolves, `mdbook build` has no ERROR | `book.rs` |
//! | `bench [--quick] [--only ...]` | the performance ladder beside nginx and HAProxy: table, CSV, SVG | `bench.rs` |
//! | `fuzz [--secs N] [TARGET...]` | the cargo-fuzz targets in `fuzz/`, N seconds each; fails on a crash | `fuzz.rs` |
//! | `transcripts [NAME...]` | records the book's recorded pages again from the real binaries (`book/transcripts/`) | `transcripts.rs` |

mod bench;
mod book;
mod cargo;
mod edition;
mod fuzz;
mod labs;
mod process;
mod quotes;
mod transcripts;

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Project automation for lbs (Load Balancers from Scratch).
#[derive(Debug, Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Prove every lab both ways: the reference solution passes all of its
    /// tests, the stub fails every one, and the stub says TODO. Also fails
    /// when a chapter's core (src/ outside labs/ and bin/) names `labs::`.
    CheckLabs {
        /// Only this chapter: its package (ch01-fundamentals), short name (ch01) or number (1).
        chapter: Option<String>,
    },
    /// Run the graded lab tests and print a score table.
    ///
    /// In this repository the reference solutions are on by default, so
    /// pass --stubs to grade the code in src/labs/. In a student edition
    /// the student's code is graded as it is.
    Grade {
        /// Only this chapter: its package (ch01-fundamentals), short name (ch01) or number (1).
        chapter: Option<String>,
        /// Grade src/labs/ (build with --no-default-features).
        #[arg(long)]
        stubs: bool,
    },
    /// Write a copy of the repository for students: solutions removed,
    /// the `reference` feature off, so `cargo test -p CHAPTER` grades the
    /// student's own lab code.
    StudentEdition {
        /// Where to write it (must not exist, or be empty).
        dir: PathBuf,
        /// Then run each chapter's tests there and check that exactly the
        /// lab tests fail.
        #[arg(long)]
        verify: bool,
    },
    /// Check the book: every {{#include}} names a file and anchor that
    /// exist, and `mdbook build` reports no ERROR.
    BookCheck {
        /// The book's folder.
        #[arg(long, default_value = "book")]
        book: PathBuf,
    },
    /// Measure the book's load balancers beside nginx and HAProxy: req/s,
    /// p50/p99 latency and errors side by side, 10,000 connections held at
    /// once, memory per idle connection; prints a table and writes a CSV
    /// and SVG charts.
    Bench(bench::BenchArgs),
    /// Run the coverage-guided fuzz targets (cargo-fuzz, libFuzzer) for N
    /// seconds each, from their seeds and the corpus of earlier runs;
    /// prints executions per target and fails on any crash, naming the
    /// crashing input. Needs `cargo install cargo-fuzz --locked`.
    Fuzz(fuzz::FuzzArgs),
    /// Record the book's recorded pages again from the real binaries: runs
    /// book/transcripts/NAME/record.sh for each (or the NAMEs given) and
    /// writes its page from page.md.tmpl. Needs the ports the scripts use
    /// (8080, 8081, 9001-9003) free.
    Transcripts {
        /// Only these recordings (folder names under book/transcripts).
        names: Vec<String>,
    },
}

/// The workspace root: xtask lives one level below it.
fn root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let root = root();
    match cli.command {
        Command::CheckLabs { chapter } => labs::check_labs(&root, chapter.as_deref()),
        Command::Grade { chapter, stubs } => labs::grade(&root, chapter.as_deref(), stubs),
        Command::StudentEdition { dir, verify } => edition::student_edition(&root, &dir, verify),
        Command::BookCheck { book } => {
            let book = if book.is_absolute() { book } else { root.join(book) };
            book::book_check(&book)
        }
        Command::Bench(args) => bench::bench(&root, args),
        Command::Fuzz(args) => fuzz::fuzz(&root, args),
        Command::Transcripts { names } => transcripts::transcripts(&root, &names),
    }
}
