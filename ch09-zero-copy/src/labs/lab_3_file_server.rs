//! # Lab 3 — a file server: the right file, the right bytes, sent by the kernel
//!
//! A file server's whole danger is in one step: turning the request target
//! into a path. Get it wrong and `GET /../../etc/passwd` reads the
//! machine's files. Chapter 9's [`files`](crate::files) does it one way;
//! here you do it your own way, and the tests hold you to the same
//! answers. Then you serve a connection with it.
//!
//! Nothing here may panic, whatever the bytes: no `s[a..b]` on a string
//! (it panics inside a multi-byte character), no `unwrap`, no indexing.
//!
//! ## 1. [`map_target`]: which file
//!
//! `map_target(root, target)` returns the file's path with every symlink
//! resolved (what `Path::canonicalize` gives), or a [`Refusal`]:
//!
//! 1. The target is a path starting with `/`, or an absolute URL
//!    `http://host/path` or `https://host/path` (scheme in any case),
//!    whose path is used (`/` when it has none). Anything else: 400.
//! 2. A query (`?...`) or fragment (`#...`) is cut off first.
//! 3. The path is split at `/`; each segment is percent-decoded (`%` and
//!    two hex digits, either case, is one byte; a `%` without two hex
//!    digits after it is 400). A decoded segment that holds `/`, `\` or
//!    NUL (`%2f`, `%5c`, `%00`, or a raw `\`) is 403; one that is `..`
//!    (also `%2e%2e`, `.%2E`) is 403; one that is not UTF-8 is 400. Empty
//!    segments and `.` are dropped. Check every segment in order and
//!    answer the first problem you meet.
//! 4. The segments are joined under the root, and the result resolved
//!    (`canonicalize`): it must still be under the root (canonicalize the
//!    root too), or it is 403 — a symlink inside the root that points out
//!    of it. A path that does not exist is 404; one that cannot be read
//!    (permission denied while resolving) is 403.
//! 5. A directory means its `index.html`, resolved and checked the same
//!    way. Anything that is then not a regular file is 404.
//!
//! ## 2. [`byte_range`]: which bytes
//!
//! `byte_range(header, len)` reads a `Range` header value (RFC 9110
//! section 14) for a file of `len` bytes. Surrounding spaces are ignored,
//! and spaces around the numbers too.
//!
//! - No header, another unit than `bytes=`, several ranges (a `,`), no
//!   `-`, or numbers that are not plain ASCII digits fitting in a `u64`:
//!   [`Range::Whole`] (a server may ignore a `Range` it does not take).
//! - `bytes=A-B` with `B >= A`: `A..=min(B, len - 1)`; with `B < A`: Whole.
//! - `bytes=A-`: `A..=len - 1`.
//! - `bytes=-N`: the last N bytes (all of them if N > len).
//! - Unsatisfiable: `A >= len` (so any range of an empty file), or `-0`,
//!   or `-N` of an empty file.
//!
//! ## 3. [`serve`]: one connection
//!
//! `serve(stream, root)` answers requests on a blocking connection until
//! the client closes it or a request says `Connection: close` (or is
//! HTTP/1.0, or carries a body). Read heads with chapter 2's
//! [`Buffered::read_request_head`](ch02_proxy::http::Buffered) and
//! default [`Limits`](ch02_proxy::http::Limits); a head that breaks the
//! rules gets its [`HeadError::status`](ch02_proxy::http::HeadError)
//! (400 when it has none) and the connection ends; a closed or silent
//! client just ends it.
//!
//! Every answer is `HTTP/1.1`, with `Content-Length` and `Connection:
//! keep-alive` or `Connection: close`:
//!
//! - not `GET` or `HEAD`: 405 with `Allow: GET, HEAD`;
//! - a refused target: its status, with a short text body;
//! - a file: `Content-Type` from [`content_type`](crate::files::content_type),
//!   `Accept-Ranges: bytes`, and by [`byte_range`]: 200 with the file,
//!   206 with `Content-Range: bytes START-END/LEN` and those bytes, or 416
//!   with `Content-Range: bytes */LEN` and a short text body;
//! - `HEAD`: the same head, no body (`Content-Length` still says how long
//!   the body would be).
//!
//! Send a file's bytes with [`send_file`](crate::sendfile::send_file)
//! (with a `None` offset it would move the file's position; you keep your
//! own offset) in a loop: it may send less than asked. Nothing else in
//! `static_server` is asked of you: no ETag, no 304, no event loop.
//!
//! ## Check it by hand
//!
//! The tests run your server behind chapter 1's thread-per-connection
//! loop; `curl -v localhost:PORT/file -r 0-9` against it shows the 206.

use std::io;
use std::net::TcpStream;
use std::path::{Path, PathBuf};

use super::{Range, Refusal};

/// The file `target` names under `root` (canonical), or why none is served.
pub fn map_target(root: &Path, target: &str) -> Result<PathBuf, Refusal> {
    // TODO: cut the query, decode and check each segment, resolve under the root.
    let _ = (root, target);
    todo!("Lab 3, part 1: the path, decoded, checked, resolved under the root")
}

/// The bytes of a `len`-byte file the `Range` value `header` asks for.
pub fn byte_range(header: Option<&str>, len: u64) -> Range {
    // TODO: bytes=A-B, A-, -N; Whole for what you cannot read.
    let _ = (header, len);
    todo!("Lab 3, part 2: bytes=A-B, A-, -N")
}

/// Answers the requests of one connection from the files under `root`.
pub fn serve(stream: TcpStream, root: &Path) -> io::Result<()> {
    // TODO: a loop of heads, an answer each, file bodies by send_file.
    let _ = (stream, root);
    todo!("Lab 3, part 3: read heads, answer each, sendfile the bodies")
}
