//! Request bodies: read whole under a limit (a larger one is 413 problem+json naming the limit), and any
//! answer given before its request's body was read to the end says `Connection: close`.
//!
//! Why the close: hyper drops such a connection once the answer is written (the unread rest cannot be told
//! from the next request), but without the header a client's pool keeps it, and its next request fails with
//! an incomplete message for no fault of its own. That happens after a 413, and after any refusal given
//! before the handler reads (401, 403, 429 of the access guard) when the body is large.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, Version, header};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Body as _, Frame, SizeHint};

use crate::problem::Problem;

/// The largest message-sized body (`/v1/messages/send`, `/compose`, `/check`): twice the Mon espace santé
/// limit of 25 MB, so that a message over it is still read and refused by the rule that names it, and a
/// compose request carrying its documents in base64 fits.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// The largest body of the small requests (an ack, a retry): axum's own default.
pub const MAX_SMALL_BYTES: usize = 2 * 1024 * 1024;

/// The whole body of a request of at most `MAX` bytes.
pub struct Limited<const MAX: usize = MAX_SMALL_BYTES>(pub Bytes);

impl<S: Send + Sync, const MAX: usize> FromRequest<S> for Limited<MAX> {
    type Rejection = Problem;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Problem> {
        let (parts, body) = req.into_parts();
        read(&parts.headers, body, MAX, "").await.map(Limited)
    }
}

/// Reads `body` whole if it is at most `max` bytes; `advice` ends the 413's detail (what to do instead).
pub async fn read(
    headers: &HeaderMap,
    body: Body,
    max: usize,
    advice: &str,
) -> Result<Bytes, Problem> {
    let too_large = || {
        Problem::payload_too_large(format!(
            "the body is larger than this route's limit of {max} bytes{advice}"
        ))
    };
    // a declared length over the limit is refused before a byte is read
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, max).await.map_err(|e| {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(s) = source {
            if s.is::<http_body_util::LengthLimitError>() {
                return too_large();
            }
            source = s.source();
        }
        Problem::invalid_param("body", format!("could not be read: {e}"))
    })
}

/// Middleware: `Connection: close` on an HTTP/1 answer given before the request's body was read to its end.
pub async fn close_when_unread(req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    if body.is_end_stream() || parts.version >= Version::HTTP_2 {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let ended = Arc::new(AtomicBool::new(false));
    let body = Body::new(Watched {
        inner: body,
        ended: Arc::clone(&ended),
    });
    let mut response = next.run(Request::from_parts(parts, body)).await;
    if !ended.load(Ordering::Acquire) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// A body that records when it has been read to its end.
struct Watched {
    inner: Body,
    ended: Arc<AtomicBool>,
}

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.ended.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
