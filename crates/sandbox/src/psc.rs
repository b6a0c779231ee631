//! The Pro Santé Connect stand-in (docs/mssante.md K2): RS256 access tokens shaped like those of PSC's
//! sandbox realm, the JWKS the operator trusts, the failing kinds the agency's tools test, and the
//! validation the fronts run, which says in plain words why a token is refused.
//!
//! The signing key is made once per sandbox directory (`psc/signing.pk8`, 0600); `psc/jwks.json` publishes
//! its public half. A second key, `psc/other-idp.pk8`, signs the "not a PSC token" kind: a token of another
//! identity provider, which no PSC key verifies.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    KeyPair, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair, RsaPublicKeyComponents,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::{Error, Result};

/// The issuer of Pro Santé Connect's sandbox realm ("bac à sable"), the one the stand-in signs as.
pub const PSC_SANDBOX_ISSUER: &str = mss_lps::PSC_ISSUER_SANDBOX;
/// The authentication context of a CPS card or e-CPS login (eIDAS substantial).
pub const PSC_ACR: &str = "eidas1";
/// Key id of the stand-in's signing key in its JWKS.
pub const PSC_KID: &str = "mss-sandbox-psc";
/// The issuer of the "not a PSC token" kind: another organisation's identity provider.
pub const OTHER_IDP_ISSUER: &str = "https://idp.hopital-exemple.fr/realms/personnel";
const OTHER_KID: &str = "hopital-exemple-idp";
/// Default lifetime of a token: PSC's access tokens are short-lived.
pub const DEFAULT_LIFETIME_SECS: u64 = 300;

/// Which token the stand-in issues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKind {
    /// A valid token for the mailbox, living `lifetime` seconds.
    Valid {
        /// Seconds from now to `exp`.
        lifetime: u64,
    },
    /// Signed by the PSC key, but expired five minutes ago.
    Expired,
    /// Signed by the PSC key with another issuer.
    Issuer(String),
    /// A token of another identity provider: another key, another issuer, no PSC claims.
    NotPsc,
}

/// The stand-in: its keys, in `DIR/psc`.
pub struct Psc {
    signing: RsaKeyPair,
    other: RsaKeyPair,
}

impl std::fmt::Debug for Psc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Psc { keys: <redacted> }")
    }
}

impl Psc {
    /// The stand-in of the sandbox directory `dir`: its keys read from `dir/psc`, made there on first use
    /// (with the JWKS beside them).
    pub fn open_or_create(dir: &Path) -> Result<Psc> {
        let psc = dir.join("psc");
        std::fs::create_dir_all(&psc).map_err(Error::io(format!("creating {}", psc.display())))?;
        let signing = key(&psc.join("signing.pk8"))?;
        let other = key(&psc.join("other-idp.pk8"))?;
        let me = Psc { signing, other };
        let jwks = psc.join("jwks.json");
        if !jwks.exists() {
            let text = serde_json::to_string_pretty(&me.jwks()).unwrap_or_default();
            std::fs::write(&jwks, text)
                .map_err(Error::io(format!("writing {}", jwks.display())))?;
        }
        Ok(me)
    }

    /// The JWKS of the stand-in: what the operator trusts (PSC publishes its keys the same way).
    pub fn jwks(&self) -> Value {
        json!({ "keys": [jwk(&self.signing, PSC_KID)] })
    }

    /// A token for the mailbox `user`, of the given kind.
    pub fn token(&self, user: &str, kind: &TokenKind) -> Result<String> {
        let now = unix_now();
        let national_id = national_id(user);
        let mut claims = json!({
            "iss": PSC_SANDBOX_ISSUER,
            "sub": subject(&national_id),
            "typ": "Bearer",
            "azp": "mss-sandbox",
            "acr": PSC_ACR,
            "scope": "openid scope_all",
            "preferred_username": national_id,
            "SubjectNameID": national_id,
            // the mailbox the token was issued for: the stand-in's convention, for operators that validate
            // tokens locally and compare the SASL user with a claim (Dovecot's oauth2 `username_attribute`)
            "email": user,
            "iat": now,
            "auth_time": now,
            "exp": now + DEFAULT_LIFETIME_SECS as i64,
            "jti": jti()?,
        });
        let (key, kid) = match kind {
            TokenKind::Valid { lifetime } => {
                claims["exp"] = json!(now.saturating_add(*lifetime as i64));
                (&self.signing, PSC_KID)
            }
            TokenKind::Expired => {
                claims["iat"] = json!(now - 600);
                claims["auth_time"] = json!(now - 600);
                claims["exp"] = json!(now - 300);
                (&self.signing, PSC_KID)
            }
            TokenKind::Issuer(iss) => {
                claims["iss"] = json!(iss);
                (&self.signing, PSC_KID)
            }
            TokenKind::NotPsc => {
                claims = json!({
                    "iss": OTHER_IDP_ISSUER,
                    "sub": subject(user),
                    "typ": "Bearer",
                    "azp": "intranet",
                    "email": user,
                    "iat": now,
                    "exp": now + DEFAULT_LIFETIME_SECS as i64,
                    "jti": jti()?,
                });
                (&self.other, OTHER_KID)
            }
        };
        let header = json!({ "alg": "RS256", "typ": "JWT", "kid": kid });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0u8; key.public_modulus_len()];
        key.sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            signing_input.as_bytes(),
            &mut sig,
        )
        .map_err(|_| Error::Crypto("signing the token failed".into()))?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

/// The national identifier (IDNPS, `8` + an RPPS-like number) the stand-in gives the holder of `user`: stable
/// for one address, so that the operator can tell which mailbox a token was issued for.
pub fn national_id(user: &str) -> String {
    // FNV-1a over the lowercased address: stable across runs and machines
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in user.to_ascii_lowercase().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("8{:011}", h % 100_000_000_000)
}

fn subject(seed: &str) -> String {
    let mut h: u64 = 0x8422_2325_cbf2_9ce4;
    for b in seed.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("f:550e8400-e29b-41d4-a716:{h:016x}")
}

fn jti() -> Result<String> {
    let mut b = [0u8; 16];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| Error::Crypto("no randomness for the token id".into()))?;
    Ok(mss_types::hex(&b))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn key(path: &PathBuf) -> Result<RsaKeyPair> {
    if let Ok(der) = std::fs::read(path) {
        return RsaKeyPair::from_pkcs8(&der)
            .map_err(|e| Error::Crypto(format!("{}: not an RSA PKCS#8 key: {e}", path.display())));
    }
    let pair = RsaKeyPair::generate(KeySize::Rsa2048)
        .map_err(|_| Error::Crypto("generating an RSA key failed".into()))?;
    let der = pair
        .as_der()
        .map_err(|_| Error::Crypto("encoding an RSA key failed".into()))?;
    write_private(path, der.as_ref())?;
    Ok(pair)
}

/// Writes a private file (0600 from its creation).
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(Error::io(format!("writing {}", path.display())))?;
    f.write_all(bytes)
        .map_err(Error::io(format!("writing {}", path.display())))
}

fn jwk(key: &RsaKeyPair, kid: &str) -> Value {
    let public = key.public_key();
    json!({
        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
        "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
        "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
    })
}

/// What the operator knows to validate tokens: the JWKS it trusts, read from `DIR/psc/jwks.json`.
#[derive(Debug, Clone)]
pub struct TokenValidator {
    keys: Vec<(String, Vec<u8>, Vec<u8>)>,
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidToken {
    /// The holder's national identifier (`preferred_username`).
    pub national_id: String,
    /// Seconds left before `exp`.
    pub expires_in: i64,
}

impl TokenValidator {
    /// The validator trusting the JWKS file `path`.
    pub fn from_jwks_file(path: &Path) -> Result<TokenValidator> {
        let text = std::fs::read_to_string(path)
            .map_err(Error::io(format!("reading {}", path.display())))?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| Error::Invalid(format!("{}: not a JWKS: {e}", path.display())))?;
        TokenValidator::from_jwks(&v, &path.display().to_string())
    }

    /// The validator trusting the JWKS `v` (`origin` names it in errors).
    pub fn from_jwks(v: &Value, origin: &str) -> Result<TokenValidator> {
        let mut keys = Vec::new();
        for k in v["keys"].as_array().into_iter().flatten() {
            let part = |name: &str| {
                k[name]
                    .as_str()
                    .and_then(|s| URL_SAFE_NO_PAD.decode(s).ok())
            };
            if let (Some(kid), Some(n), Some(e)) = (k["kid"].as_str(), part("n"), part("e")) {
                keys.push((kid.to_owned(), n, e));
            }
        }
        if keys.is_empty() {
            return Err(Error::Invalid(format!("{origin}: the JWKS has no RSA key")));
        }
        Ok(TokenValidator { keys })
    }

    /// Checks `token` for the mailbox `user` as the operator does; the error is the reason in plain words
    /// (never quoting the token).
    pub fn validate(&self, token: &str, user: &str) -> Result<ValidToken, String> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not a JWT (three base64url parts separated by dots expected)".into());
        };
        let decode = |part: &str, what: &str| -> Result<Value, String> {
            let bytes = URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| format!("not a JWT ({what} is not base64url)"))?;
            serde_json::from_slice(&bytes).map_err(|_| format!("not a JWT ({what} is not JSON)"))
        };
        let header = decode(h, "header")?;
        let claims = decode(p, "payload")?;
        let alg = header["alg"].as_str().unwrap_or("none");
        if alg != "RS256" {
            return Err(format!(
                "not a Pro Santé Connect token (signed {alg}, PSC signs RS256)"
            ));
        }
        let kid = header["kid"].as_str().unwrap_or("");
        let Some((_, n, e)) = self.keys.iter().find(|(k, _, _)| k == kid) else {
            let iss = claims["iss"].as_str().unwrap_or("no issuer");
            return Err(format!(
                "not a Pro Santé Connect token (issued by {iss}, signed with a key PSC does not publish)"
            ));
        };
        let sig = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| "not a JWT (signature is not base64url)".to_owned())?;
        RsaPublicKeyComponents { n, e }
            .verify(
                &RSA_PKCS1_2048_8192_SHA256,
                format!("{h}.{p}").as_bytes(),
                &sig,
            )
            .map_err(|_| {
                "signature does not verify with the PSC key (token altered or forged)".to_owned()
            })?;
        let iss = claims["iss"].as_str().unwrap_or("");
        if iss != PSC_SANDBOX_ISSUER {
            return Err(format!(
                "issuer {iss:?} is not Pro Santé Connect ({PSC_SANDBOX_ISSUER} expected)"
            ));
        }
        let now = unix_now();
        let Some(exp) = claims["exp"].as_i64() else {
            return Err("token has no expiry (exp)".into());
        };
        if exp <= now {
            return Err("token expired".into());
        }
        let acr = claims["acr"].as_str().unwrap_or("none");
        if acr != PSC_ACR {
            return Err(format!(
                "authentication level acr={acr:?}, Pro Santé Connect requires {PSC_ACR:?}"
            ));
        }
        let holder = claims["preferred_username"].as_str().unwrap_or("");
        if holder != national_id(user) {
            return Err(format!(
                "token issued to professional {holder}, who does not hold the mailbox {user}"
            ));
        }
        Ok(ValidToken {
            national_id: holder.to_owned(),
            expires_in: exp - now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_is_refused_for_its_reason_and_the_valid_one_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let psc = Psc::open_or_create(dir.path()).unwrap();
        let v = TokenValidator::from_jwks_file(&dir.path().join("psc/jwks.json")).unwrap();
        let user = "marie.martin@sandbox.mssante.fr";
        let ok = psc.token(user, &TokenKind::Valid { lifetime: 60 }).unwrap();
        let valid = v.validate(&ok, user).unwrap();
        assert_eq!(valid.national_id, national_id(user));
        assert!(valid.expires_in <= 60 && valid.expires_in > 0);
        let reason = |kind: TokenKind| {
            v.validate(&psc.token(user, &kind).unwrap(), user)
                .unwrap_err()
        };
        assert!(reason(TokenKind::Expired).starts_with("token expired"));
        assert!(reason(TokenKind::NotPsc).starts_with("not a Pro Santé Connect token"));
        assert!(reason(TokenKind::Issuer("https://x.test".into())).starts_with("issuer"));
        assert!(
            v.validate(&ok, "other@sandbox.mssante.fr")
                .unwrap_err()
                .contains("does not hold")
        );
        // a flipped payload byte breaks the signature
        let mut parts: Vec<String> = ok.split('.').map(str::to_owned).collect();
        let mut claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
        claims["exp"] = json!(unix_now() + 9999);
        parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
        assert!(
            v.validate(&parts.join("."), user)
                .unwrap_err()
                .starts_with("signature")
        );
        assert!(
            v.validate("abc", user)
                .unwrap_err()
                .starts_with("not a JWT")
        );
        // the same keys when opened again
        let again = Psc::open_or_create(dir.path()).unwrap();
        assert_eq!(again.jwks(), psc.jwks());
    }
}
