//! `files::resolve` on a real directory tree: files, a directory's
//! `index.html`, and symlinks, which may point anywhere inside the root
//! and nowhere outside it.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::PathBuf;

use ch09_zero_copy::files::{Refused, resolve, segments};

/// A temporary tree: `root/` with files, a directory and links, and a
/// secret next to the root.
struct Tree(PathBuf);

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A tree of its own for each test (tests run in parallel).
fn tree(name: &str) -> Tree {
    let base = std::env::temp_dir().join(format!("lbs-ch09-files-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&base);
    let root = base.join("root");
    fs::create_dir_all(root.join("docs")).unwrap();
    fs::create_dir_all(root.join("empty")).unwrap();
    fs::write(root.join("a.txt"), "a").unwrap();
    fs::write(root.join("docs/index.html"), "<p>docs</p>").unwrap();
    fs::write(base.join("secret.txt"), "secret").unwrap();
    symlink(root.join("a.txt"), root.join("inside-link")).unwrap();
    symlink(base.join("secret.txt"), root.join("outside-link")).unwrap();
    symlink(&base, root.join("up")).unwrap();
    Tree(base)
}

fn get(t: &Tree, target: &str) -> Result<String, Refused> {
    let segs = segments(target)?;
    let found = resolve(&t.0.join("root"), &segs)?;
    Ok(fs::read_to_string(found.path).unwrap())
}

#[test]
fn files_and_directory_indexes_are_found() {
    let t = tree("found");
    assert_eq!(get(&t, "/a.txt").unwrap(), "a");
    assert_eq!(get(&t, "/docs").unwrap(), "<p>docs</p>");
    assert_eq!(get(&t, "/docs/").unwrap(), "<p>docs</p>");
    assert_eq!(get(&t, "/inside-link").unwrap(), "a", "a link inside the root is followed");
    assert_eq!(get(&t, "/missing"), Err(Refused::NotFound));
    assert_eq!(get(&t, "/empty/"), Err(Refused::NotFound), "a directory without index.html");
    assert_eq!(get(&t, "/"), Err(Refused::NotFound));
}

#[test]
fn nothing_outside_the_root_is_ever_served() {
    let t = tree("outside");
    assert!(matches!(get(&t, "/outside-link"), Err(Refused::Forbidden(_))));
    assert!(matches!(get(&t, "/up/secret.txt"), Err(Refused::Forbidden(_))));
    assert!(matches!(get(&t, "/../secret.txt"), Err(Refused::Forbidden(_))));
    assert!(matches!(get(&t, "/%2e%2e/secret.txt"), Err(Refused::Forbidden(_))));
    assert!(matches!(get(&t, "/docs/..%2f..%2fsecret.txt"), Err(Refused::Forbidden(_))));
    // An absolute path in a segment is only a name under the root.
    assert_eq!(get(&t, "//etc/passwd"), Err(Refused::NotFound));
}
