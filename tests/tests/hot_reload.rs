//! `hot_reload_lb` (chapter 10) as an operator runs it: `--check` on the
//! shipped configurations and on a broken one (exit status, and every
//! problem placed by line and column), and the balancer started from a
//! YAML file and from a JSON file given alone, in front of real backends,
//! with a command-line flag overriding the file; SIGHUP re-reading it
//! (a broken file changes nothing, new weights apply at once), and `-w`
//! applying a file changed by a symlink swap or a rename-on-save.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a failed unwrap is the test failing")]

use std::path::{Path, PathBuf};

use backends::client::get;
use backends::{BackendConfig, spawn};
use tests::{binary, run, start};

const LISTENING: &str = "hot reload load balancer listening";
const WAIT: std::time::Duration = std::time::Duration::from_secs(10);

fn configs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../ch10-hot-reload/configs")
}

/// A file in a fresh temporary directory.
fn temp_file(name: &str, text: &str) -> PathBuf {
    use std::hash::{BuildHasher, RandomState};
    let dir = std::env::temp_dir().join(format!(
        "lbs-hot-reload-{}-{:x}",
        std::process::id(),
        RandomState::new().hash_one(name)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn check_accepts_the_shipped_configurations_and_places_every_mistake() {
    let bin = binary("ch10-hot-reload", "hot_reload_lb");
    for file in ["lb.json", "lb.yaml", "routes.yaml"] {
        let path = configs().join(file);
        let out = run(&bin, &["--check", "-c", path.to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{file}: {stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains(": ok ("), "{stdout}");
    }
    // As the C curriculum runs it: the file alone, first.
    let json = configs().join("lb.json");
    assert!(run(&bin, &[json.to_str().unwrap(), "--check"]).status.success());

    let bad =
        temp_file("bad.yaml", "listen:\n  port: 8080\nbackends:\n  - host: a\n    port: 0\nhelth_check:\n  path: /\n");
    let out = run(&bin, &["--check", "-c", bad.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let shown = bad.display().to_string();
    assert!(stderr.contains(&format!("{shown}:5:11: backends[0].port must be from 1 to 65535, not 0")), "{stderr}");
    assert!(stderr.contains(&format!("{shown}:6:1: unknown field `helth_check`")), "{stderr}");
    assert!(stderr.contains("not valid (2 problem(s))"), "{stderr}");
    let missing = run(&bin, &["--check", "-c", "/nonexistent/lb.yaml"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/lb.yaml:1:1: cannot be read"));
}

#[test]
fn a_configuration_file_starts_the_balancer_and_flags_override_it() {
    let bin = binary("ch10-hot-reload", "hot_reload_lb");
    let (a, b, c) = (
        spawn(BackendConfig::named("alpha")).unwrap(),
        spawn(BackendConfig::named("beta")).unwrap(),
        spawn(BackendConfig::named("gamma")).unwrap(),
    );
    let yaml = format!(
        "listen:\n  port: 0\nalgorithm: round-robin\nbackends:\n  - host: 127.0.0.1\n    port: {}\n  - \"{}\"\nhealth_check:\n  type: tcp\n  interval: 1s\n  timeout: 500ms\nmetrics:\n  enabled: false\n",
        a.addr().port(),
        b.addr()
    );
    let path = temp_file("lb.yaml", &yaml);
    let lb = start(&bin, &["-c", path.to_str().unwrap(), "--log-format", "json"], LISTENING);
    let mut names: Vec<String> =
        (0..4).map(|_| String::from_utf8_lossy(&get(lb.addr, "/").unwrap().body).into_owned()).collect();
    names.sort();
    assert!(names[0].contains("alpha") && names[1].contains("alpha"), "{names:?}");
    assert!(names[2].contains("beta") && names[3].contains("beta"), "{names:?}");
    drop(lb);

    // The JSON form, given alone; --backend on the command line replaces the file's.
    let json = format!(
        "{{\"listen_port\": 0, \"backends\": [{{\"host\": \"127.0.0.1\", \"port\": {}}}], \"metrics\": {{\"enabled\": false}}}}",
        a.addr().port()
    );
    let path = temp_file("lb.json", &json);
    let gamma = c.addr().to_string();
    let lb = start(
        &bin,
        &[path.to_str().unwrap(), "--log-format", "json", "-b", &gamma, "--health-check", "off"],
        LISTENING,
    );
    for _ in 0..3 {
        let body = String::from_utf8_lossy(&get(lb.addr, "/").unwrap().body).into_owned();
        assert!(body.contains("gamma"), "only the command line's backend serves: {body}");
    }
}

#[test]
fn settings_it_cannot_apply_yet_stop_it_with_the_reason() {
    let bin = binary("ch10-hot-reload", "hot_reload_lb");
    let path = configs().join("routes.yaml");
    let out = run(&bin, &["-c", path.to_str().unwrap(), "-p", "0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "checks `routes` and a backend's `max_connections` and `timeouts.write` but does not apply them yet"
        ),
        "{stderr}"
    );
}

/// A configuration of two weighted backends, round robin by weight, no
/// probes and no admin listener.
fn two_backends(a: std::net::SocketAddr, wa: u32, b: std::net::SocketAddr, wb: u32) -> String {
    format!(
        "listen: {{port: 0}}\nalgorithm: wrr\nbackends:\n  - \"{a}:{wa}\"\n  - \"{b}:{wb}\"\nhealth_check: {{enabled: false}}\nmetrics: {{enabled: false}}\n"
    )
}

/// How `n` requests through `lb` split between the backends named alpha and beta.
fn alpha_and_beta(lb: std::net::SocketAddr, n: usize) -> (usize, usize) {
    let alpha = (0..n).filter(|_| String::from_utf8_lossy(&get(lb, "/").unwrap().body).contains("alpha")).count();
    (alpha, n - alpha)
}

/// Sends SIGHUP to the balancer.
#[cfg(unix)]
fn hup(lb: &tests::Server) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    kill(Pid::from_raw(i32::try_from(lb.pid()).unwrap()), Signal::SIGHUP).unwrap();
}

#[cfg(unix)]
#[test]
fn sighup_rereads_the_file_applies_weights_and_never_a_bad_file() {
    let bin = binary("ch10-hot-reload", "hot_reload_lb");
    let (a, b) = (spawn(BackendConfig::named("alpha")).unwrap(), spawn(BackendConfig::named("beta")).unwrap());
    let file = |wa: u32, wb: u32| two_backends(a.addr(), wa, b.addr(), wb);
    let path = temp_file("reload.yaml", &file(1, 1));
    let lb = start(&bin, &["-c", path.to_str().unwrap(), "--log-format", "json"], LISTENING);
    let shares = |n: usize| alpha_and_beta(lb.addr, n);
    assert_eq!(shares(10), (5, 5));

    // A broken file: refused, logged with its position, nothing changes.
    std::fs::write(&path, "backends:\n  - host: a\n    port: 0\n").unwrap();
    hup(&lb);
    let problem = lb.wait_for_line(WAIT, |l| l.contains("configuration problem")).expect("the problem is logged");
    assert!(problem.contains("reload.yaml:3:11: backends[0].port must be from 1 to 65535, not 0"), "{problem}");
    assert!(lb.wait_for_line(WAIT, |l| l.contains("configuration refused; the running one stays")).is_some());
    assert_eq!(shares(10), (5, 5), "still the old configuration");

    // New weights: applied at once (smooth weighted round robin: 1 in 5).
    std::fs::write(&path, file(1, 4)).unwrap();
    hup(&lb);
    assert!(lb.wait_for_line(WAIT, |l| l.contains("configuration reloaded: weights applied")).is_some());
    assert_eq!(shares(10), (2, 8));

    // Another backend set: valid, but named and not applied by this version.
    std::fs::write(&path, file(1, 4).replace(&b.addr().to_string(), "127.0.0.1:1")).unwrap();
    hup(&lb);
    let line = lb.wait_for_line(WAIT, |l| l.contains("restart to apply it")).expect("the change is reported");
    assert!(line.contains("backends"), "{line}");
    assert_eq!(shares(10), (2, 8));
}

#[cfg(unix)]
#[test]
fn watch_applies_a_saved_file_through_a_symlink_swap_and_a_rename() {
    let bin = binary("ch10-hot-reload", "hot_reload_lb");
    let (a, b) = (spawn(BackendConfig::named("alpha")).unwrap(), spawn(BackendConfig::named("beta")).unwrap());
    let file = |wa: u32, wb: u32| two_backends(a.addr(), wa, b.addr(), wb);
    // As Kubernetes mounts a ConfigMap: the name is a symlink to the real file.
    let first = temp_file("v1.yaml", &file(1, 1));
    let dir = first.parent().unwrap().to_path_buf();
    let link = dir.join("lb.yaml");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&first, &link).unwrap();
    let lb = start(&bin, &["-c", link.to_str().unwrap(), "-w", "-i", "50", "--log-format", "json"], LISTENING);
    assert!(lb.wait_for_line(WAIT, |l| l.contains("watching the configuration file")).is_some());
    let shares = |n: usize| alpha_and_beta(lb.addr, n);
    assert_eq!(shares(10), (5, 5));

    // The symlink swapped to a new file, atomically.
    let second = dir.join("v2.yaml");
    std::fs::write(&second, file(1, 4)).unwrap();
    let swap = dir.join("lb.yaml.new");
    let _ = std::fs::remove_file(&swap);
    std::os::unix::fs::symlink(&second, &swap).unwrap();
    std::fs::rename(&swap, &link).unwrap();
    assert!(lb.wait_for_line(WAIT, |l| l.contains("configuration reloaded: weights applied")).is_some());
    assert_eq!(shares(10), (2, 8));

    // An editor that saves by writing a new file and renaming it over the old.
    let saved = dir.join(".lb.yaml.swp");
    std::fs::write(&saved, file(4, 1)).unwrap();
    std::fs::rename(&saved, &link).unwrap();
    assert!(lb.wait_for_line(WAIT, |l| l.contains("configuration reloaded: weights applied")).is_some());
    assert_eq!(shares(10), (8, 2));
}
