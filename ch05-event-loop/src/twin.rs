//! `tokio_lb`: the same load balancer on tokio, to read in one page.
//!
//! Compare it with [`crate::lb::conn`]: the state machine is gone. Each
//! connection is written as straight-line code again, as in chapter 3,
//! but every `.await` is a place where the function can stop and let the
//! thread serve others. The compiler turns the function into a state
//! machine much like ours (its states are the `.await` points); tokio's
//! reactor (mio: epoll, kqueue) parks it until its socket is ready and
//! its timers wake it. Same rules, same algorithms, same health
//! bookkeeping as `high_perf_lb`.
// This module reads network bytes: an index out of bounds here would be a
// panic a client can trigger, so every index is checked (`get`).
#![deny(clippy::indexing_slicing)]

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use ch02_proxy::http::{Framing, Limits, RequestHead, Version, parse_request, parse_response, remove_hop_by_hop};
use ch02_proxy::proxy::{ProxyError, Timeouts, error_response, prepare_upstream_request};
use ch04_advanced::algorithm::{Algorithm, Context, pick_untried};
use ch04_advanced::headers::{Cidr, client_ip, cookie};
use ch04_advanced::health::{HealthConfig, record_request};
use ch04_advanced::node::{Node, Pool};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::timeout;

use crate::framing::BodyTracker;

/// What the tokio twin needs: the pool, the algorithm and the settings.
#[derive(Debug)]
pub struct Twin {
    /// The backends (chapter 4's nodes, with health and counters).
    pub pool: Arc<Pool>,
    /// How a backend is chosen.
    pub algorithm: Box<dyn Algorithm>,
    /// Each backend's address, resolved once.
    pub addrs: Vec<SocketAddr>,
    /// Head limits and the header timeout.
    pub limits: Limits,
    /// Connect, response and idle timeouts.
    pub timeouts: Timeouts,
    /// Passive health checking.
    pub health: HealthConfig,
    /// How long requests in progress may take to finish after shutdown.
    pub drain_timeout: Duration,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<Cidr>,
}

// ANCHOR: twin
/// Accepts until `stop` completes, one task per connection; then lets the
/// requests in progress finish, for up to `drain_timeout`.
pub async fn run(listener: TcpListener, lb: Arc<Twin>, stop: impl Future<Output = ()>) -> io::Result<()> {
    tokio::pin!(stop);
    let (stopping, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    loop {
        let (client, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors, most likely: pause, as high_perf_lb does.
                    tracing::warn!(error = %e, "accept failed; pausing 100 ms");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        while tasks.try_join_next().is_some() {} // forget finished tasks
        let _ = client.set_nodelay(true);
        let (lb, mut stopped) = (Arc::clone(&lb), stopped.clone());
        tasks.spawn(async move {
            if let Err(e) = serve(client, peer, &lb, &mut stopped).await {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
        });
    }
    drop(listener);
    let _ = stopping.send(true);
    tracing::info!(open = tasks.len(), "draining");
    let _ = timeout(lb.drain_timeout, async { while tasks.join_next().await.is_some() {} }).await;
    Ok(())
}

/// Serves one client connection: requests, one after another (keep-alive).
async fn serve(
    mut client: TcpStream,
    peer: SocketAddr,
    lb: &Twin,
    stopped: &mut watch::Receiver<bool>,
) -> io::Result<()> {
    let mut buf = Vec::new(); // bytes from the client not used yet
    loop {
        // Between requests, shutdown ends the connection at once.
        let head = tokio::select! {
            head = timeout(lb.limits.header_timeout, read_head(&mut client, &mut buf, &lb.limits)) => head,
            _ = stopped.wait_for(|stop| *stop) => return Ok(()),
        };
        let mut head = match head {
            Ok(Ok(Some(head))) => head,
            Ok(Ok(None)) => return Ok(()), // closed between requests
            Ok(Err(e)) => return answer(&mut client, &e).await,
            Err(_) => return answer(&mut client, &ProxyError::new(408, "no complete head in time")).await,
        };
        let keep_alive = head.version == Version::Http11 && !head.headers.has_token("connection", "close");
        let client_addr = client_ip(peer.ip(), &head.headers, &lb.trusted_proxies);
        if let Err(e) = prepare_upstream_request(&mut head, peer.ip(), "http") {
            return answer(&mut client, &e).await;
        }
        // The sticky cookie, as high_perf_lb reads it.
        let sticky = lb.algorithm.cookie_name();
        let cookie_value = sticky.and_then(|name| cookie(&head.headers, name)).map(str::to_string);
        let mut tried = vec![false; lb.pool.nodes.len()];
        let mut last: Option<ProxyError> = None;
        let keep = loop {
            let started = Instant::now();
            let (node, n, mut upstream) = match connect(lb, client_addr, cookie_value.as_deref(), &mut tried).await {
                Ok(picked) => picked,
                // Nobody left to retry on: the client hears the real failure.
                Err(e) => return answer(&mut client, &last.unwrap_or(e)).await,
            };
            n.backend.requests.fetch_add(1, Relaxed);
            let set_cookie = match sticky {
                Some(name) if cookie_value.as_deref() != Some(n.id.as_str()) => {
                    Some(format!("{name}={}; Path=/; HttpOnly", n.id))
                }
                _ => None,
            };
            let mut moved = Moved::default();
            let result =
                exchange(&mut client, &mut upstream, &mut buf, head.clone(), keep_alive, set_cookie, lb, &mut moved)
                    .await;
            match result {
                Ok(keep) => {
                    n.backend.bytes_out.fetch_add(moved.up, Relaxed);
                    n.backend.bytes_in.fetch_add(moved.down, Relaxed);
                    // Complete: close with a reset, not a FIN, so this side keeps
                    // no TIME_WAIT (see high_perf_lb's `end_exchange`).
                    let _ = socket2::SockRef::from(&upstream).set_linger(Some(Duration::ZERO));
                    let latency = started.elapsed();
                    lb.algorithm.on_response(node, latency);
                    n.latency.record(latency);
                    record_request(n, true, &lb.health, Instant::now());
                    tracing::info!(%peer, backend = %n.addr(), ms = latency.as_millis() as u64, "request");
                    break keep;
                }
                // Chapter 2's one rule: the backend's fault charges it, and
                // the retry rule decides whether another backend may try.
                Err(e) if e.blames_backend() => {
                    n.backend.failures.fetch_add(1, Relaxed);
                    record_request(n, false, &lb.health, Instant::now());
                    if !e.may_retry(&head) {
                        return answer(&mut client, &e).await;
                    }
                    tracing::info!(%peer, backend = %n.addr(), error = %e.detail, "no response; retrying on another backend");
                    last = Some(e);
                }
                Err(e) => return answer(&mut client, &e).await,
            }
        };
        if !keep {
            return Ok(());
        }
    }
}

/// Sends the request and relays the response; `Ok(true)`: keep the
/// connection for the next request.
#[allow(clippy::too_many_arguments, reason = "one exchange's parts, as the event loop's `Request` holds them")]
async fn exchange(
    client: &mut TcpStream,
    upstream: &mut TcpStream,
    buf: &mut Vec<u8>,
    mut head: RequestHead,
    keep_alive: bool,
    set_cookie: Option<String>,
    lb: &Twin,
    moved: &mut Moved,
) -> Result<bool, ProxyError> {
    // We answer `Expect: 100-continue` ourselves, as chapter 2 does.
    if head.headers.has_token("expect", "100-continue") && head.framing != Framing::Empty {
        client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await.map_err(|e| ProxyError::client_gone(e.to_string()))?;
    }
    head.headers.remove("expect");
    let up_err = |e: io::Error| ProxyError::new(502, format!("backend: {e}"));
    let silent = |e: io::Error| ProxyError::backend_silent(502, format!("backend: {e}"));
    let head_bytes = head.to_bytes();
    upstream.write_all(&head_bytes).await.map_err(silent)?;
    moved.up += head_bytes.len() as u64;
    // The request body: exactly what its framing says, no more.
    let mut body = BodyTracker::new(head.framing);
    while !body.is_done() {
        if buf.is_empty() && client.read_buf(buf).await.map_err(|e| ProxyError::client_gone(e.to_string()))? == 0 {
            return Err(ProxyError::client_gone("closed in the middle of a body"));
        }
        let n = body.feed(buf).map_err(|why| ProxyError::new(400, why))?;
        let n = n.min(buf.len());
        upstream.write_all(buf.get(..n).unwrap_or_default()).await.map_err(up_err)?;
        moved.up += n as u64;
        buf.drain(..n);
    }
    // The response head, within the response timeout.
    // "Nothing received" means no byte of the final response: interim
    // (1xx) responses are dropped as they come, as chapter 2 does.
    let mut from_up = Vec::new();
    let head_read = timeout(lb.timeouts.response, async {
        loop {
            match parse_response(&from_up, &lb.limits, &head.method) {
                Ok(Some((r, len))) if (100..200).contains(&r.status) => drop(from_up.drain(..len)),
                Ok(Some(parsed)) => return Ok(parsed),
                Ok(None) => match upstream.read_buf(&mut from_up).await {
                    Ok(0) if from_up.is_empty() => {
                        return Err(ProxyError::backend_silent(502, "the backend closed without answering"));
                    }
                    Ok(0) => return Err(ProxyError::new(502, "the backend closed in the middle of a head")),
                    Ok(_) => {}
                    Err(e) if from_up.is_empty() => return Err(silent(e)),
                    Err(e) => return Err(up_err(e)),
                },
                Err(e) => return Err(ProxyError::new(502, format!("invalid response: {e}"))),
            }
        }
    })
    .await;
    let (mut response, len) = match head_read {
        Ok(parsed) => parsed?,
        Err(_) if from_up.is_empty() => {
            return Err(ProxyError::backend_silent(504, "the backend did not answer in time"));
        }
        Err(_) => return Err(ProxyError::new(504, "the backend's response head stalled")),
    };
    let keep_alive = keep_alive && response.framing != Framing::UntilClose;
    remove_hop_by_hop(&mut response.headers);
    response.headers.set("Connection", if keep_alive { "keep-alive" } else { "close" });
    if let Some(c) = set_cookie {
        response.headers.push("Set-Cookie", c);
    }
    let gone = |e: io::Error| ProxyError::client_gone(e.to_string());
    client.write_all(&response.to_bytes()).await.map_err(gone)?;
    // The response body, until its framing (or the backend) says it ends.
    let mut body = BodyTracker::new(response.framing);
    from_up.drain(..len);
    moved.down += len as u64;
    loop {
        // The head is out: a failure now cannot be answered, only charged.
        let n = body.feed(&from_up).map_err(|why| ProxyError::backend_cut(format!("malformed body: {why}")))?;
        client.write_all(from_up.get(..n).unwrap_or(&from_up)).await.map_err(gone)?;
        moved.down += n.min(from_up.len()) as u64;
        from_up.clear();
        if body.is_done() {
            return Ok(keep_alive);
        }
        let read = timeout(lb.timeouts.idle, upstream.read_buf(&mut from_up)).await;
        match read {
            Ok(Ok(0)) if body.until_close() => return Ok(false),
            Ok(Ok(0)) => return Err(ProxyError::backend_cut("the backend closed in the middle of a body")),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(ProxyError::backend_cut(format!("reading the body from the backend: {e}"))),
            Err(_) => return Err(ProxyError::backend_cut("the backend stalled in the middle of a body")),
        }
    }
}
// ANCHOR_END: twin

/// Bytes one exchange sent to the backend and received from it, as the
/// event loop counts them (heads included).
#[derive(Debug, Default)]
struct Moved {
    up: u64,
    down: u64,
}

/// Reads until `buf` holds a complete head and takes it out of `buf`;
/// `None` when the client closed before sending anything.
async fn read_head(
    client: &mut TcpStream,
    buf: &mut Vec<u8>,
    limits: &Limits,
) -> Result<Option<RequestHead>, ProxyError> {
    let mut scan = ch02_proxy::http::HeadScan::default();
    loop {
        if scan.worth_parsing(buf, limits) {
            match parse_request(buf, limits) {
                Ok(Some((head, len))) => {
                    buf.drain(..len);
                    return Ok(Some(head));
                }
                Ok(None) if buf.len() >= limits.max_head_bytes => return Err(ProxyError::new(431, "head too large")),
                Ok(None) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if client.read_buf(buf).await.map_err(|e| ProxyError::client_gone(e.to_string()))? == 0 {
            return if buf.is_empty() { Ok(None) } else { Err(ProxyError::new(400, "closed in the middle of a head")) };
        }
    }
}

/// Picks and connects, trying each backend at most once.
async fn connect<'a>(
    lb: &'a Twin,
    client: IpAddr,
    cookie: Option<&str>,
    tried: &mut [bool],
) -> Result<(usize, &'a Node, TcpStream), ProxyError> {
    let key = client.to_string();
    loop {
        let ctx = Context { client_ip: client, key: &key, cookie, now: Instant::now() };
        let Some(i) = pick_untried(lb.algorithm.as_ref(), &lb.pool, &ctx, tried) else {
            let what = if tried.contains(&true) { "no backend could be reached" } else { "no healthy backend" };
            return Err(ProxyError::unavailable(what));
        };
        let (Some(seen), Some(&addr), Some(node)) = (tried.get_mut(i), lb.addrs.get(i), lb.pool.nodes.get(i)) else {
            return Err(ProxyError::new(500, "the algorithm picked a backend that does not exist"));
        };
        *seen = true;
        match timeout(lb.timeouts.connect, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                return Ok((i, node, s));
            }
            Ok(Err(e)) if ch01_fundamentals::net::is_local_shortage(&e) => {
                return Err(ProxyError::new(503, format!("cannot open a connection to a backend: {e}")));
            }
            _ => {
                node.backend.failures.fetch_add(1, Relaxed);
                record_request(node, false, &lb.health, Instant::now());
            }
        }
    }
}

/// Sends an error response (if the client can still hear it) and ends.
async fn answer(client: &mut TcpStream, e: &ProxyError) -> io::Result<()> {
    if let Some(status) = e.status {
        tracing::warn!(status, error = %e.detail, "request failed");
        client.write_all(&error_response(status, &e.detail)).await?;
    } else if e.blames_backend() {
        tracing::warn!(error = %e.detail, "response cut short");
    }
    Ok(())
}
