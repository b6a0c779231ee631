//! Files the ANS publishes over HTTPS, fetched whole: the national whitelist of the espace de confiance and
//! its `checksum` (docs/mssante.md M8). What a file means is its reader's business (`mss_message::trust`
//! verifies and installs the whitelist); this module only brings the bytes, within a size limit.
//!
//! It lives here because this crate already holds the workspace's HTTP client (reqwest over rustls, for the
//! FHIR API) and the other readers of national publications; `mss-message` and `mss-lps` stay free of HTTP.

use std::time::Duration;

use reqwest::Url;

use crate::{Error, Result};

/// How a file is fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchConfig {
    /// Bodies longer than this are refused.
    pub max_bytes: u64,
    /// For the whole request, body included.
    pub timeout: Duration,
}

impl FetchConfig {
    /// At most `max_bytes`, within a minute.
    pub fn new(max_bytes: u64) -> Self {
        FetchConfig {
            max_bytes,
            timeout: Duration::from_secs(60),
        }
    }
}

/// Checks that `url` may be fetched: HTTPS, or plain HTTP to a loopback address (a local mirror, the tests).
/// A list and its checksum fetched together over plain HTTP could both be swapped on the way.
pub fn checked_url(url: &str) -> Result<Url> {
    let parsed =
        Url::parse(url).map_err(|e| download_error(url, format!("not a URL: {e}"), false))?;
    if allowed(&parsed) {
        Ok(parsed)
    } else {
        Err(download_error(
            url,
            "only https:// is accepted (http:// only to a loopback address)".into(),
            false,
        ))
    }
}

fn allowed(url: &Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => url.host_str().is_some_and(|host| {
            host.eq_ignore_ascii_case("localhost")
                || host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }),
        _ => false,
    }
}

/// The file named `name` in the same directory as `url` (the `checksum` beside `listeblanchemssante.xml`).
pub fn sibling(url: &str, name: &str) -> Result<String> {
    let parsed = checked_url(url)?;
    let mut sibling = parsed
        .join(name)
        .map_err(|e| download_error(url, format!("no file `{name}` beside it: {e}"), false))?;
    sibling.set_query(None);
    sibling.set_fragment(None);
    Ok(sibling.to_string())
}

/// Downloads `url` whole (redirects followed, but never to plain HTTP elsewhere than loopback). A status
/// other than 2xx, a body over `config.max_bytes` or a network failure is an [`Error::Download`]; the
/// network, a timeout, 429 and 5xx are transient.
pub async fn fetch(url: &str, config: &FetchConfig) -> Result<Vec<u8>> {
    let parsed = checked_url(url)?;
    let redirects = reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() >= 10 {
            attempt.error("more than 10 redirections")
        } else if allowed(attempt.url()) {
            attempt.follow()
        } else {
            attempt.error("redirected to plain HTTP")
        }
    });
    let http = reqwest::Client::builder()
        .timeout(config.timeout)
        .connect_timeout(config.timeout.min(Duration::from_secs(10)))
        .redirect(redirects)
        .user_agent(concat!("mss/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| download_error(url, format!("HTTP client: {e}"), false))?;
    let network = |e: reqwest::Error| {
        let transient = e.is_timeout() || e.is_connect() || e.is_request() || e.is_body();
        download_error(url, chain(&e.without_url()), transient)
    };
    let mut response = http.get(parsed).send().await.map_err(network)?;
    let status = response.status();
    if !status.is_success() {
        let transient = status.as_u16() == 429 || status.is_server_error();
        return Err(download_error(url, format!("HTTP {status}"), transient));
    }
    let too_big = || {
        download_error(
            url,
            format!("larger than {} bytes", config.max_bytes),
            false,
        )
    };
    if response
        .content_length()
        .is_some_and(|n| n > config.max_bytes)
    {
        return Err(too_big());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(network)? {
        if (body.len() + chunk.len()) as u64 > config.max_bytes {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    tracing::debug!(url, bytes = body.len(), "downloaded");
    Ok(body)
}

fn download_error(url: &str, reason: String, transient: bool) -> Error {
    Error::Download {
        url: url.to_string(),
        reason,
        transient,
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http_is_fetched() {
        for ok in [
            "https://raw.githubusercontent.com/ansforge/MSS-liste-blanche/main/listeblanchemssante.xml",
            "http://127.0.0.1:8080/lb.xml",
            "http://[::1]/lb.xml",
            "http://localhost/lb.xml",
        ] {
            assert!(checked_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://example.com/lb.xml",
            "http://10.0.0.1/lb.xml",
            "ftp://example.com/lb.xml",
            "file:///etc/passwd",
            "lb.xml",
        ] {
            let e = checked_url(bad).unwrap_err();
            assert!(e.to_string().starts_with(bad), "{e}");
            assert!(!e.is_transient());
        }
    }

    #[test]
    fn the_checksum_is_beside_the_list() {
        assert_eq!(
            sibling(
                "https://raw.githubusercontent.com/ansforge/MSS-liste-blanche/main/listeblanchemssante.xml?x=1",
                "checksum"
            )
            .unwrap(),
            "https://raw.githubusercontent.com/ansforge/MSS-liste-blanche/main/checksum"
        );
    }
}
