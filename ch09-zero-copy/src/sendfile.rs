//! A file's bytes to a socket.
//!
//! `sendfile(2)` takes them from the page cache straight to the socket:
//! no read into our memory, no write out of it, one system call instead
//! of two per chunk. Like `write`, it may send fewer bytes than asked (a
//! non-blocking socket whose buffer fills), so the caller keeps an offset
//! and calls again; and like any system call it can refuse: `EINVAL` or
//! `ENOSYS` when the source is not something it can map (a file on some
//! filesystems), `ESPIPE` when it has no offsets (a pipe). Then, and on systems without it, the same
//! contract is kept with `pread` and `write`. FreeBSD and macOS have a
//! `sendfile` of their own, with another signature; it is used there.

use std::fs::File;
use std::io::{self, Write};
use std::net::TcpStream;

/// How the last call moved its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// With `sendfile(2)`.
    SendFile,
    /// With `pread` and `write` (sendfile refused the file, or this
    /// system has none).
    Copy,
}

// ANCHOR: send_file
/// Sends up to `count` bytes of `file` from `*offset` to `to`, advances
/// `*offset` by what was sent, and returns that and how. `Ok((0, _))`
/// means the file ends at `*offset` (it may have been truncated while
/// being sent). A non-blocking socket with a full buffer gives
/// `WouldBlock`, with `*offset` unchanged.
pub fn send_file(to: &TcpStream, file: &File, offset: &mut u64, count: usize) -> io::Result<(usize, How)> {
    if count == 0 {
        return Ok((0, How::SendFile));
    }
    #[cfg(target_os = "linux")]
    {
        let mut off = i64::try_from(*offset).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        match nix::sys::sendfile::sendfile64(to, file, Some(&mut off), count) {
            Ok(n) => {
                *offset = u64::try_from(off).unwrap_or(*offset);
                return Ok((n, How::SendFile));
            }
            // Not a file sendfile can read from (EINVAL, ENOSYS), or one
            // without offsets (ESPIPE: a pipe): copy instead.
            Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOSYS | nix::errno::Errno::ESPIPE) => {}
            Err(e) => return Err(e.into()),
        }
    }
    #[cfg(any(target_os = "freebsd", target_os = "macos"))]
    {
        if let Some(sent) = bsd_sendfile(to, file, offset, count)? {
            return Ok((sent, How::SendFile));
        }
    }
    copy_range(to, file, offset, count).map(|n| (n, How::Copy))
}
// ANCHOR_END: send_file

/// FreeBSD's and macOS's `sendfile`: the same idea, another signature. It
/// reports how much it sent even when it fails (`EAGAIN` after a partial
/// send is progress, not an error). `Ok(None)`: it refused this file or
/// socket, so the caller copies.
#[cfg(any(target_os = "freebsd", target_os = "macos"))]
fn bsd_sendfile(to: &TcpStream, file: &File, offset: &mut u64, count: usize) -> io::Result<Option<usize>> {
    use nix::errno::Errno;
    let off = i64::try_from(*offset).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    #[cfg(target_os = "freebsd")]
    let (result, sent) =
        nix::sys::sendfile::sendfile(file, to, off, Some(count), None, None, nix::sys::sendfile::SfFlags::empty(), 0);
    #[cfg(target_os = "macos")]
    let (result, sent) =
        nix::sys::sendfile::sendfile(file, to, off, Some(i64::try_from(count).unwrap_or(i64::MAX)), None, None);
    let sent = u64::try_from(sent).unwrap_or(0);
    *offset += sent;
    let sent = usize::try_from(sent).unwrap_or(usize::MAX);
    match result {
        Ok(()) => Ok(Some(sent)),
        Err(Errno::EAGAIN | Errno::EINTR) if sent > 0 => Ok(Some(sent)),
        Err(Errno::EINVAL | Errno::ENOTSOCK | Errno::EOPNOTSUPP) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// [`send_file`] without `sendfile`: one `pread` of at most 64 KiB into a
/// buffer, one `write` of it. Bytes read but not written are read again
/// next time (the offset only counts what was written).
pub fn copy_range(to: &TcpStream, file: &File, offset: &mut u64, count: usize) -> io::Result<usize> {
    let mut buf = vec![0u8; count.min(64 * 1024)];
    let n = read_at(file, &mut buf, *offset)?;
    let Some(chunk) = buf.get(..n) else { return Ok(0) };
    if chunk.is_empty() {
        return Ok(0);
    }
    let written = (&*to).write(chunk)?;
    *offset += written as u64;
    Ok(written)
}

/// Reads at `offset`; from something that has no offsets (a pipe: `ESPIPE`),
/// reads what comes next instead.
#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::io::Read;
    use std::os::unix::fs::FileExt;
    loop {
        match file.read_at(buf, offset) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ESPIPE as i32) => return (&*file).read(buf),
            other => return other,
        }
    }
}

#[cfg(not(unix))]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = file;
    f.seek(SeekFrom::Start(offset))?;
    f.read(buf)
}
