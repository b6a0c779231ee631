//! Authentication: what the client sends (XOAUTH2 for PER/ORG, PLAIN after a client certificate for APP) and
//! how a refusal is explained.
//!
//! Servers say little: Dovecot and Postfix answer `535 5.7.8` / `NO [AUTHENTICATIONFAILED]` after a
//! `{"status":"401",...}` challenge whatever the reason. Explicit signals win (IMAP `[EXPIRED]`,
//! `[AUTHORIZATIONFAILED]`, `[UNAVAILABLE]`, SMTP 454/534/530/538); for a bare refusal the client reads the
//! claims of the token it sent (it holds it; no verification, only a diagnosis): past `exp` → expired,
//! issuer not among the PSC issuers → untrusted issuer, user claim naming another mailbox → wrong user.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use mss_types::MailAddress;

use crate::error::{AuthFailure, Error};
use crate::imap_response::{ImapStatus, ResponseCode};
use crate::secret::{self, AccessToken, Secret, now_unix};
use crate::smtp_reply::SmtpReply;

/// Pro Santé Connect issuer, production.
pub const PSC_ISSUER_PRODUCTION: &str = "https://auth.esw.esante.gouv.fr/auth/realms/esante-wallet";
/// Pro Santé Connect issuer, sandbox ("bac à sable").
pub const PSC_ISSUER_SANDBOX: &str =
    "https://auth.bas.psc.esante.gouv.fr/auth/realms/esante-wallet";

/// What the client knows about acceptable tokens, to explain refusals (never to accept or refuse a token:
/// that is the operator's job).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPolicy {
    /// Issuers counted as Pro Santé Connect. Empty: no issuer diagnosis.
    pub issuers: Vec<String>,
    /// Claim that names the mailbox the token was issued for, when the operator uses one (not public for
    /// PSC: none by default).
    pub user_claim: Option<String>,
}

impl Default for TokenPolicy {
    fn default() -> Self {
        TokenPolicy {
            issuers: vec![PSC_ISSUER_PRODUCTION.into(), PSC_ISSUER_SANDBOX.into()],
            user_claim: None,
        }
    }
}

/// The JSON of an XOAUTH2 error challenge, e.g. `{"status":"401","schemes":"bearer","scope":"mail"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct OAuthChallenge {
    /// HTTP-like status: 400 malformed, 401 invalid token, 403 insufficient scope or forbidden.
    #[serde(default, deserialize_with = "string_or_number")]
    pub status: Option<String>,
    /// Accepted schemes.
    #[serde(default)]
    pub schemes: Option<String>,
    /// Scope.
    #[serde(default)]
    pub scope: Option<String>,
}

fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v: Option<serde_json::Value> = Option::deserialize(d)?;
    Ok(match v {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

impl OAuthChallenge {
    /// Decodes the base64 JSON of a `334`/`+` challenge; `None` when it is not one.
    pub fn decode(text: &str) -> Option<Self> {
        let bytes = STANDARD.decode(text.trim()).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// How the client authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    XOAuth2,
    Certificate,
}

/// The server's refusal, in either protocol.
pub(crate) enum Refusal<'a> {
    Smtp(&'a SmtpReply),
    Imap(&'a ImapStatus),
}

pub(crate) fn classify(
    method: Method,
    refusal: Refusal<'_>,
    challenge: Option<&OAuthChallenge>,
    token: Option<&AccessToken>,
    user: &str,
    policy: &TokenPolicy,
) -> AuthFailure {
    // explicit signals first
    match refusal {
        Refusal::Smtp(r) => {
            let e = r.enhanced.map(|e| (e.class, e.subject, e.detail));
            if r.code == 454 || r.is_transient() || e.is_some_and(|(c, _, _)| c == 4) {
                return AuthFailure::ServerFault;
            }
            if matches!(r.code, 530 | 538) || matches!(e, Some((5, 7, 11))) {
                return AuthFailure::EncryptionRequired;
            }
            if r.code == 534 || matches!(e, Some((5, 7, 9))) {
                return AuthFailure::MechanismUnavailable;
            }
            if r.code == 504 {
                return AuthFailure::MechanismUnavailable;
            }
        }
        Refusal::Imap(s) => match &s.code {
            Some(ResponseCode::Expired) => return AuthFailure::TokenExpired,
            Some(ResponseCode::AuthorizationFailed) => {
                return if method == Method::Certificate {
                    AuthFailure::CertificateRejected
                } else {
                    AuthFailure::WrongUser
                };
            }
            Some(ResponseCode::Unavailable) => return AuthFailure::ServerFault,
            Some(ResponseCode::PrivacyRequired) => return AuthFailure::EncryptionRequired,
            _ => {}
        },
    }
    if method == Method::Certificate {
        return AuthFailure::CertificateRejected;
    }
    // a bare refusal of a token: read what the token says about itself
    let now = now_unix();
    if let Some(claims) = token.and_then(AccessToken::claims) {
        if claims.is_expired_at(now) {
            return AuthFailure::TokenExpired;
        }
        if !policy.issuers.is_empty()
            && !claims
                .iss
                .as_deref()
                .is_some_and(|iss| policy.issuers.iter().any(|p| p == iss))
        {
            return AuthFailure::UntrustedIssuer;
        }
        if let Some(claim) = &policy.user_claim
            && let Some(named) = claims.string(claim)
            && !named.eq_ignore_ascii_case(user)
        {
            return AuthFailure::WrongUser;
        }
    }
    if challenge.and_then(|c| c.status.as_deref()) == Some("403") {
        return AuthFailure::WrongUser;
    }
    AuthFailure::InvalidToken
}

/// How to authenticate.
#[derive(Debug, Clone, Copy)]
pub enum Login<'a> {
    /// PER/ORG mailbox: SASL XOAUTH2 with the PSC access token.
    XOAuth2 {
        /// The BAL.
        user: &'a MailAddress,
        /// The token.
        token: &'a AccessToken,
        /// To explain refusals.
        policy: &'a TokenPolicy,
    },
    /// APP mailbox: the TLS client certificate authenticates, SASL PLAIN names the BAL.
    Certificate {
        /// The BAL.
        user: &'a MailAddress,
        /// Password, when the operator wants one (usually none).
        password: Option<&'a Secret>,
    },
}

/// The SASL exchange a [`Login`] asks for: method, mechanism name, initial response, and for XOAUTH2 the
/// token and policy that explain a refusal. Shared by SMTP and IMAP.
pub(crate) type Sasl<'a> = (
    Method,
    &'static str,
    Secret,
    Option<&'a AccessToken>,
    Option<&'a TokenPolicy>,
);

impl<'a> Login<'a> {
    pub(crate) fn user(&self) -> &MailAddress {
        match self {
            Login::XOAuth2 { user, .. } | Login::Certificate { user, .. } => user,
        }
    }

    /// The SASL exchange; PLAIN for an APP mailbox needs the TLS client certificate.
    pub(crate) fn sasl(self, has_client_cert: bool) -> Result<Sasl<'a>, Error> {
        match self {
            Login::XOAuth2 {
                user,
                token,
                policy,
            } => Ok((
                Method::XOAuth2,
                "XOAUTH2",
                secret::xoauth2_initial_response(user.as_str(), token),
                Some(token),
                Some(policy),
            )),
            Login::Certificate { user, password } => {
                if !has_client_cert {
                    return Err(Error::Config {
                        reason: format!("the APP mailbox {user} needs a client certificate"),
                    });
                }
                Ok((
                    Method::Certificate,
                    "PLAIN",
                    secret::plain_initial_response(user.as_str(), password),
                    None,
                    None,
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::Status;
    use crate::smtp::EnhancedCode;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn token(claims: &str) -> AccessToken {
        AccessToken::new(format!(
            "{}.{}.x",
            URL_SAFE_NO_PAD.encode("{}"),
            URL_SAFE_NO_PAD.encode(claims)
        ))
    }

    fn r535() -> SmtpReply {
        SmtpReply {
            code: 535,
            enhanced: Some(EnhancedCode::new(5, 7, 8)),
            lines: vec!["Error: authentication failed".into()],
        }
    }

    fn policy() -> TokenPolicy {
        TokenPolicy {
            issuers: vec!["https://psc".into()],
            user_claim: Some("email".into()),
        }
    }

    #[test]
    fn challenge_json() {
        let c = OAuthChallenge::decode(
            "eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJtYWlsIn0=",
        )
        .expect("json");
        assert_eq!(c.status.as_deref(), Some("401"));
        assert_eq!(c.scope.as_deref(), Some("mail"));
        assert!(OAuthChallenge::decode("not base64!").is_none());
    }

    #[test]
    fn bare_refusals_are_explained_by_the_claims() {
        let far = now_unix() + 600;
        let cases = [
            (
                r#"{"iss":"https://psc","exp":1,"email":"a@b.fr"}"#.to_owned(),
                AuthFailure::TokenExpired,
            ),
            (
                format!(r#"{{"iss":"https://evil","exp":{far},"email":"a@b.fr"}}"#),
                AuthFailure::UntrustedIssuer,
            ),
            (
                format!(r#"{{"iss":"https://psc","exp":{far},"email":"x@b.fr"}}"#),
                AuthFailure::WrongUser,
            ),
            (
                format!(r#"{{"iss":"https://psc","exp":{far},"email":"A@b.fr"}}"#),
                AuthFailure::InvalidToken,
            ),
        ];
        for (claims, want) in cases {
            let t = token(&claims);
            let got = classify(
                Method::XOAuth2,
                Refusal::Smtp(&r535()),
                None,
                Some(&t),
                "a@b.fr",
                &policy(),
            );
            assert_eq!(got, want, "{claims}");
        }
    }

    #[test]
    fn explicit_signals_win() {
        let t = token(r#"{"iss":"https://psc","exp":1}"#);
        let s = |code| ImapStatus {
            status: Status::No,
            code: Some(code),
            text: "x".into(),
        };
        let imap = |code| {
            classify(
                Method::XOAuth2,
                Refusal::Imap(&s(code)),
                None,
                Some(&t),
                "a",
                &policy(),
            )
        };
        assert_eq!(
            imap(ResponseCode::AuthorizationFailed),
            AuthFailure::WrongUser
        );
        assert_eq!(imap(ResponseCode::Unavailable), AuthFailure::ServerFault);
        assert_eq!(imap(ResponseCode::Expired), AuthFailure::TokenExpired);
        let smtp = |code, e: Option<EnhancedCode>| {
            let r = SmtpReply {
                code,
                enhanced: e,
                lines: vec![],
            };
            classify(
                Method::XOAuth2,
                Refusal::Smtp(&r),
                None,
                Some(&t),
                "a",
                &policy(),
            )
        };
        assert_eq!(
            smtp(454, Some(EnhancedCode::new(4, 7, 0))),
            AuthFailure::ServerFault
        );
        assert_eq!(
            smtp(534, Some(EnhancedCode::new(5, 7, 9))),
            AuthFailure::MechanismUnavailable
        );
        assert_eq!(
            smtp(530, Some(EnhancedCode::new(5, 7, 0))),
            AuthFailure::EncryptionRequired
        );
        let cert = classify(
            Method::Certificate,
            Refusal::Smtp(&r535()),
            None,
            None,
            "a",
            &policy(),
        );
        assert_eq!(cert, AuthFailure::CertificateRejected);
    }
}
