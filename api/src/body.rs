//! Request bodies, read whole under a limit. A larger body is 413 problem+json that names the limit, and the
//! answer says `Connection: close`: the rest of the body is never read, so the connection cannot carry another
//! request, and a client that reused it would see its next request fail for no reason of its own.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};

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
