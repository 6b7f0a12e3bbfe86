//! `cargo xtask transcripts [NAME...]`: the book's recorded pages, recorded
//! again from the real binaries.
//!
//! A page whose transcripts are recorded by a script has a folder
//! `book/transcripts/NAME/` with `record.sh` (runs the programs, saves
//! each command's output to `OUT_DIR/SNIPPET.txt` and logs beside them),
//! `page.md.tmpl` (the page's text, with markers where the recorded output
//! goes) and `page` (the page's path). This builds the debug binaries,
//! runs each script into a fresh folder, then `assemble.py` writes the
//! page from its template. Nobody edits those pages by hand: a change of
//! wording goes in the template, a change of what is run in the script.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// One recorded page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    /// Its folder's name.
    pub name: String,
    /// Its folder.
    pub dir: PathBuf,
    /// The page it writes, relative to the workspace root.
    pub page: PathBuf,
}

/// Every recorded page under `book/transcripts`, by name.
pub fn recordings(root: &Path) -> Result<Vec<Recording>> {
    let base = root.join("book/transcripts");
    let mut found = Vec::new();
    for entry in fs::read_dir(&base).with_context(|| format!("cannot read {}", base.display()))? {
        let dir = entry?.path();
        if !dir.join("record.sh").is_file() {
            continue;
        }
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let page = fs::read_to_string(dir.join("page")).with_context(|| format!("{name}: no `page` file"))?;
        found.push(Recording { name, dir, page: PathBuf::from(page.trim()) });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// Records `only` (every recording when empty) again.
pub fn transcripts(root: &Path, only: &[String]) -> Result<()> {
    let all = recordings(root)?;
    let chosen: Vec<&Recording> = if only.is_empty() {
        all.iter().collect()
    } else {
        let mut chosen = Vec::new();
        for name in only {
            match all.iter().find(|r| &r.name == name) {
                Some(r) => chosen.push(r),
                None => {
                    let names: Vec<&str> = all.iter().map(|r| r.name.as_str()).collect();
                    bail!("no recording {name:?}; there are: {}", names.join(", "));
                }
            }
        }
        chosen
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    eprintln!("==> cargo build --workspace --bins");
    let status = Command::new(&cargo)
        .current_dir(root)
        .args(["build", "--workspace", "--bins"])
        .stdin(Stdio::null())
        .status()
        .context("cannot run cargo build")?;
    if !status.success() {
        bail!("cargo build failed ({status})");
    }
    let scratch = std::env::temp_dir().join(format!("lbs-transcripts-{}", std::process::id()));
    for r in chosen {
        let out = scratch.join(&r.name);
        fs::create_dir_all(&out)?;
        eprintln!("==> recording {} into {}", r.name, out.display());
        let status = Command::new("bash")
            .current_dir(root)
            .arg(r.dir.join("record.sh"))
            .arg(&out)
            .stdin(Stdio::null())
            .status()
            .with_context(|| format!("cannot run {}/record.sh", r.dir.display()))?;
        if !status.success() {
            bail!("{}: record.sh failed ({status}); its output is in {}", r.name, out.display());
        }
        let status = Command::new("python3")
            .current_dir(root)
            .arg(root.join("book/transcripts/assemble.py"))
            .arg(r.dir.join("page.md.tmpl"))
            .arg(&out)
            .arg(root.join(&r.page))
            .status()
            .context("cannot run python3 (assemble.py)")?;
        if !status.success() {
            bail!("{}: assemble.py failed ({status})", r.name);
        }
        eprintln!("    wrote {}", r.page.display());
    }
    eprintln!("==> done; `git diff book/src` shows what changed, `cargo xtask book-check` checks it");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_recording_has_a_template_and_a_page_that_exists() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let all = recordings(root).unwrap();
        assert!(all.iter().any(|r| r.name == "ch10-run"), "{all:?}");
        for r in &all {
            assert!(r.dir.join("page.md.tmpl").is_file(), "{}", r.name);
            assert!(root.join(&r.page).is_file(), "{}: {}", r.name, r.page.display());
        }
    }
}
