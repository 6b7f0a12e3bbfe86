//! `cargo xtask bench --l4`, third part: chapter 9's `static_server`
//! against nginx serving the same files, in turns, in the same run.
//!
//! nginx as operators run it for files: one worker, `sendfile on`,
//! `tcp_nopush on` (its name for `TCP_CORK`), keep-alive, no access log
//! (ours writes none at `RUST_LOG=warn` either). Two files: 1 MiB, read by
//! wrk over 8 keep-alive connections (many requests: the per-request cost
//! shows), and 1 GiB over 2 (bulk: the send path shows). The figure is
//! wrk's `Transfer/sec`, which counts every byte read, finished responses
//! or not.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::servers::{self, Server, find_program, free_port};
use super::transfers::size_label;

const FILES: [(usize, usize); 2] = [(1 << 20, 8), (1 << 30, 2)];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Ours,
    Nginx,
}

impl Who {
    fn label(self) -> &'static str {
        match self {
            Who::Ours => "static_server",
            Who::Nginx => "nginx (1 worker, sendfile on)",
        }
    }
}

fn file_name(size: usize) -> String {
    format!("{}.bin", size_label(size).replace(' ', "").to_lowercase())
}

/// The files, written once and kept in `target/` for later runs.
fn prepare(www: &Path) -> Result<()> {
    std::fs::create_dir_all(www)?;
    let chunk: Vec<u8> = (0..1 << 20).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    for (size, _) in FILES {
        let path = www.join(file_name(size));
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == size as u64) {
            continue;
        }
        eprintln!("[bench] writing {} ({})", path.display(), size_label(size));
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
        let mut left = size;
        while left > 0 {
            let n = left.min(chunk.len());
            f.write_all(chunk.get(..n).unwrap_or_default())?;
            left -= n;
        }
        f.flush()?;
    }
    Ok(())
}

fn nginx_static_config(dir: &Path, www: &Path, port: u16) -> String {
    let (d, w) = (dir.display(), www.display());
    format!(
        "# Written by `cargo xtask bench --l4`: nginx serving files with one worker.\n\
         worker_processes 1;\n\
         daemon off;\n\
         pid \"{d}/nginx-static.pid\";\n\
         error_log \"{d}/nginx-static.log\" warn;\n\
         events {{\n\
         \x20   worker_connections 1024;\n\
         }}\n\
         http {{\n\
         \x20   access_log off;\n\
         \x20   sendfile on;\n\
         \x20   tcp_nopush on;\n\
         \x20   client_body_temp_path \"{d}/nginx-temp/client_body\";\n\
         \x20   proxy_temp_path \"{d}/nginx-temp/proxy\";\n\
         \x20   fastcgi_temp_path \"{d}/nginx-temp/fastcgi\";\n\
         \x20   uwsgi_temp_path \"{d}/nginx-temp/uwsgi\";\n\
         \x20   scgi_temp_path \"{d}/nginx-temp/scgi\";\n\
         \x20   default_type application/octet-stream;\n\
         \x20   server {{\n\
         \x20       listen 127.0.0.1:{port};\n\
         \x20       root \"{w}\";\n\
         \x20   }}\n\
         }}\n"
    )
}

/// `Transfer/sec:   1.23GB` from wrk's report, in bytes per second.
fn parse_transfer(report: &str) -> Option<f64> {
    let line = report.lines().find_map(|l| l.trim().strip_prefix("Transfer/sec:"))?.trim();
    let units = [("GB", 1u64 << 30), ("MB", 1 << 20), ("KB", 1 << 10), ("B", 1)];
    units.iter().find_map(|(unit, scale)| Some(line.strip_suffix(unit)?.trim().parse::<f64>().ok()? * *scale as f64))
}

fn wrk_transfer(wrk: &Path, url: &str, connections: usize, secs: u64) -> Result<f64> {
    let mut cmd = std::process::Command::new(wrk);
    cmd.args(["-t1", &format!("-c{connections}"), &format!("-d{secs}s"), "--timeout=60s", url]);
    let limit = Duration::from_secs(secs + 60);
    let (status, stdout, stderr) = crate::process::run_bounded(cmd, limit)?;
    let Some(status) = status else { bail!("wrk was still running after {limit:?}: killed") };
    if !status.success() {
        bail!("wrk failed ({status}):\n{stdout}{stderr}");
    }
    if stdout.contains("Non-2xx") || stdout.contains("Socket errors") {
        bail!("wrk saw errors fetching {url}:\n{stdout}");
    }
    parse_transfer(&stdout).with_context(|| format!("no Transfer/sec in wrk's report:\n{stdout}"))
}

/// Measures both servers on both files; prints and judges.
pub fn run(static_server: &Path, tmp: &Path, quick: bool) -> Result<bool> {
    let Some(wrk) = find_program("wrk") else {
        bail!("wrk is not installed (sudo apt-get install wrk): the static-file bench measures with it");
    };
    let nginx = find_program("nginx");
    let www: PathBuf = tmp.join("www");
    prepare(&www)?;
    let (secs, rounds) = if quick { (3, 1) } else { (8, 3) };
    let mut who = vec![Who::Ours];
    if nginx.is_some() {
        who.push(Who::Nginx);
    } else {
        eprintln!("[bench] nginx is not installed: its row is skipped");
    }
    // results[who][file] = bytes per second of each round.
    let mut results = vec![vec![Vec::new(); FILES.len()]; who.len()];
    for round in 0..rounds {
        for (w, &server) in who.iter().enumerate() {
            let port = free_port()?;
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let mut running = match server {
                Who::Ours => {
                    let args = vec!["-p".to_string(), port.to_string(), "--root".into(), www.display().to_string()];
                    Server::spawn(server.label(), static_server, &args, addr, tmp.join("static_server.log"))?
                }
                Who::Nginx => {
                    let program = nginx.as_deref().unwrap_or(Path::new("nginx"));
                    std::fs::create_dir_all(tmp.join("nginx-temp"))?;
                    let config = tmp.join("nginx-static.conf");
                    std::fs::write(&config, nginx_static_config(tmp, &www, port))?;
                    let log = tmp.join("nginx-static.log");
                    let mut args = vec!["-p".to_string(), tmp.display().to_string(), "-c".into()];
                    args.push(config.display().to_string());
                    if servers::nginx_takes_e(program) {
                        args.extend(["-e".to_string(), log.display().to_string()]);
                    }
                    Server::spawn(server.label(), program, &args, addr, log)?
                }
            };
            running.wait_ready()?;
            for (f, (size, connections)) in FILES.iter().enumerate() {
                let url = format!("http://{addr}/{}", file_name(*size));
                eprintln!(
                    "[bench] round {}: {} serving {}, {connections} connections, {secs} s",
                    round + 1,
                    server.label(),
                    size_label(*size)
                );
                let rate = wrk_transfer(&wrk, &url, *connections, secs)?;
                if let Some(cell) = results.get_mut(w).and_then(|r: &mut Vec<Vec<f64>>| r.get_mut(f)) {
                    cell.push(rate);
                }
            }
            running.stop()?;
        }
    }
    let median = |w: usize, f: usize| -> Option<f64> {
        let mut v = results.get(w)?.get(f)?.clone();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    println!();
    println!("static files, wrk Transfer/sec, {secs} s, median of {rounds} round(s)");
    println!("{:<32} {:>22} {:>22}", "server", "1 MiB file, 8 conns", "1 GiB file, 2 conns");
    for (w, server) in who.iter().enumerate() {
        let cell = |f| median(w, f).map_or("-".to_string(), |b| format!("{:.2} GB/s", b / f64::from(1u32 << 30)));
        println!("{:<32} {:>22} {:>22}", server.label(), cell(0), cell(1));
    }
    println!("Targets");
    let mut pass = true;
    for (f, (size, _)) in FILES.iter().enumerate() {
        match (median(0, f), median(1, f)) {
            (Some(ours), Some(theirs)) if theirs > 0.0 => {
                let ratio = ours / theirs;
                let ok = ratio >= 1.0;
                pass &= ok;
                println!(
                    "  static_server >= 1.0 x nginx, {} file: {} ({ratio:.2})",
                    size_label(*size),
                    if ok { "PASS" } else { "FAIL" }
                );
            }
            _ => println!("  static_server >= 1.0 x nginx, {} file: n/a", size_label(*size)),
        }
    }
    Ok(pass)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_transfer_lines_are_read_in_bytes() {
        assert_eq!(parse_transfer("Requests/sec: 10\nTransfer/sec:      1.50GB\n"), Some(1.5 * f64::from(1u32 << 30)));
        assert_eq!(parse_transfer("Transfer/sec: 512.00KB"), Some(512.0 * 1024.0));
        assert_eq!(parse_transfer("nothing"), None);
        assert_eq!(file_name(1 << 20), "1mib.bin");
        let config = nginx_static_config(Path::new("/tmp/b"), Path::new("/tmp/b/www"), 8123);
        assert!(config.contains("sendfile on;") && config.contains("worker_processes 1;"));
    }
}
