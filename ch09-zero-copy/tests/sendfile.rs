//! `send_file` on real files and sockets: exact bytes from any offset, a
//! file that shrinks while it is sent, and a source sendfile refuses (a
//! pipe), which is copied instead.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, reason = "test code")]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

use ch09_zero_copy::sendfile::{How, send_file};

fn connected() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (b, _) = l.accept().unwrap();
    (a, b)
}

fn temp_file(name: &str, bytes: &[u8]) -> (std::path::PathBuf, File) {
    let path = std::env::temp_dir().join(format!("lbs-ch09-{}-{name}", std::process::id()));
    File::create(&path).unwrap().write_all(bytes).unwrap();
    let file = File::open(&path).unwrap();
    (path, file)
}

fn bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

#[test]
fn a_file_is_sent_exactly_from_any_offset() {
    let data = bytes(3 << 20);
    let (path, file) = temp_file("exact", &data);
    let (out, mut inn) = connected();
    let reader = thread::spawn(move || {
        let mut got = Vec::new();
        inn.read_to_end(&mut got).unwrap();
        got
    });
    let mut offset = 1000u64;
    let mut how = None;
    while offset < data.len() as u64 {
        let (n, h) = send_file(&out, &file, &mut offset, 1 << 20).unwrap();
        assert!(n > 0);
        how = Some(h);
    }
    assert_eq!(send_file(&out, &file, &mut offset, 1 << 20).unwrap().0, 0, "past the end: 0");
    assert_eq!(send_file(&out, &file, &mut offset, 0).unwrap().0, 0);
    drop(out);
    assert!(reader.join().unwrap() == data[1000..]);
    assert_eq!(how, Some(How::SendFile), "a regular file goes by sendfile");
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_file_truncated_while_it_is_sent_ends_early_without_hanging() {
    let data = bytes(1 << 20);
    let (path, file) = temp_file("truncated", &data);
    let (out, mut inn) = connected();
    let reader = thread::spawn(move || {
        let mut got = Vec::new();
        inn.read_to_end(&mut got).unwrap();
        got
    });
    let mut offset = 0u64;
    send_file(&out, &file, &mut offset, 100 * 1024).unwrap();
    // Someone else shortens the file.
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(200 * 1024).unwrap();
    loop {
        let (n, _) = send_file(&out, &file, &mut offset, 1 << 20).unwrap();
        if n == 0 {
            break;
        }
    }
    assert_eq!(offset, 200 * 1024, "what the file holds now, and not a byte more");
    drop(out);
    assert!(reader.join().unwrap() == data[..200 * 1024]);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_source_sendfile_refuses_is_copied_instead() {
    // A pipe is not a file sendfile can read: EINVAL, then pread/read.
    let (r, w) = nix::unistd::pipe().unwrap();
    let mut w = File::from(w);
    w.write_all(b"through a pipe").unwrap();
    drop(w);
    let source = File::from(r);
    let (out, mut inn) = connected();
    let mut offset = 0u64;
    let (n, how) = send_file(&out, &source, &mut offset, 1024).unwrap();
    assert_eq!((n, how), (14, How::Copy));
    drop(out);
    let mut got = String::new();
    inn.read_to_string(&mut got).unwrap();
    assert_eq!(got, "through a pipe");
}
