//! The endpoints of the test backend.

use std::time::Duration;

use crate::State;
use crate::http::{Body, Request, Response};

/// Longest `/slow` delay, so a typo cannot park a connection for hours.
const MAX_SLOW_MS: u64 = 60_000;
/// Largest `/bytes/N`.
const MAX_BYTES: u64 = 1 << 30;

/// Answers one request.
/// The test backend's paths, as an HTTP handler.
pub(crate) struct Routes;

impl crate::http::Handler for Routes {
    async fn respond(&self, request: &Request, state: &State) -> Response {
        respond(request, state).await
    }
}

/// The response to `req`.
pub(crate) async fn respond(req: &Request, state: &State) -> Response {
    let name = &state.config.name;
    // Control endpoints answer at once, whatever delay or failure is set.
    match req.path.as_str() {
        "/stats" => {
            let json = serde_json::to_string(&state.snapshot()).unwrap_or_else(|_| "{}".to_string());
            return Response { content_type: "application/json", ..Response::text(200, json + "\n") };
        }
        "/admin/health/down" => {
            state.set_healthy(false);
            tracing::info!(backend = %name, "health switched to 503");
            return Response::text(200, format!("{name}: /health now answers 503\n"));
        }
        "/admin/health/up" => {
            state.set_healthy(true);
            tracing::info!(backend = %name, "health switched to 200");
            return Response::text(200, format!("{name}: /health now answers 200\n"));
        }
        _ => {}
    }

    // Simulated work: fixed latency plus random jitter.
    let config = &state.config;
    let delay = config.latency + config.jitter.mul_f64(state.random());
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    if req.path == "/health" {
        return if state.is_healthy() { Response::text(200, "ok\n") } else { Response::text(503, "unhealthy\n") };
    }

    if config.fail_rate > 0.0 && state.random() < config.fail_rate {
        return Response::text(500, format!("{name}: injected failure\n"));
    }

    if req.path == "/echo" {
        let mut body = req.raw_head.clone();
        body.extend_from_slice(&req.body);
        return Response { body: Body::Bytes(body), ..Response::text(200, "") };
    }
    if let Some(n) = req.path.strip_prefix("/bytes/") {
        return match n.parse::<u64>() {
            Ok(len) if len <= MAX_BYTES => Response {
                content_type: "application/octet-stream",
                body: Body::Generated { len, chunked: matches!(req.param("chunked"), Some("1" | "true")) },
                ..Response::text(200, "")
            },
            _ => Response::text(400, format!("/bytes/N wants a number of bytes up to {MAX_BYTES}\n")),
        };
    }
    if req.path == "/slow" {
        let ms = match req.param("ms").map(str::parse::<u64>) {
            None => 1000,
            Some(Ok(ms)) => ms.min(MAX_SLOW_MS),
            Some(Err(_)) => return Response::text(400, "/slow?ms=N wants a number of milliseconds\n"),
        };
        tokio::time::sleep(Duration::from_millis(ms)).await;
        return Response::text(200, format!("{name}: slept {ms} ms\n"));
    }
    if let Some(code) = req.path.strip_prefix("/status/") {
        return match code.parse::<u16>() {
            Ok(status @ 200..=599) => Response::text(status, format!("{name}: status {status}\n")),
            _ => Response::text(400, "/status/CODE wants a code from 200 to 599\n"),
        };
    }
    // Everything else: say who we are and what was asked.
    Response::text(200, format!("Hello from {name} ({} {})\n", req.method, req.path))
}
