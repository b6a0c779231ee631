//! Delivery status notification requests (RFC 3461): what `MAIL FROM` and `RCPT TO` ask of the server.

use serde::{Deserialize, Serialize};

use crate::xtext;

/// `RET` of a DSN request (RFC 3461 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DsnReturn {
    /// The whole message.
    Full,
    /// Headers only (enough to correlate; health content does not travel back).
    Headers,
}

impl DsnReturn {
    /// The keyword on `MAIL FROM`: `FULL` or `HDRS`.
    pub fn keyword(self) -> &'static str {
        match self {
            DsnReturn::Full => "FULL",
            DsnReturn::Headers => "HDRS",
        }
    }
}

/// When to notify (RFC 3461 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DsnNotify {
    /// Never (alone).
    Never,
    /// On delivery.
    Success,
    /// On failure.
    Failure,
    /// On delay.
    Delay,
}

impl DsnNotify {
    /// The keyword of `NOTIFY=`.
    pub fn keyword(self) -> &'static str {
        match self {
            DsnNotify::Never => "NEVER",
            DsnNotify::Success => "SUCCESS",
            DsnNotify::Failure => "FAILURE",
            DsnNotify::Delay => "DELAY",
        }
    }
}

/// A delivery status notification request, kept with the message so that the DSN can be correlated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DsnRequest {
    /// `RET=`.
    pub ret: Option<DsnReturn>,
    /// `ENVID=` (sent as xtext), echoed as `Original-Envelope-Id` in the DSN.
    pub envid: Option<String>,
    /// `NOTIFY=` for every recipient; empty: the server's default.
    pub notify: Vec<DsnNotify>,
    /// Send `ORCPT=rfc822;<address>` for every recipient.
    pub orcpt: bool,
}

impl DsnRequest {
    /// Success, failure and delay notices with the headers only, the original recipients, and `envid`.
    pub fn all_notices(envid: impl Into<String>) -> Self {
        DsnRequest {
            ret: Some(DsnReturn::Headers),
            envid: Some(envid.into()),
            notify: vec![DsnNotify::Success, DsnNotify::Failure, DsnNotify::Delay],
            orcpt: true,
        }
    }

    /// The `MAIL FROM` parameters, e.g. `RET=HDRS ENVID=<xtext>`; empty when none is asked.
    pub fn mail_params(&self) -> String {
        let mut params = Vec::with_capacity(2);
        if let Some(ret) = self.ret {
            params.push(format!("RET={}", ret.keyword()));
        }
        if let Some(id) = &self.envid {
            params.push(format!("ENVID={}", xtext::encode(id)));
        }
        params.join(" ")
    }

    /// The `RCPT TO` parameters of `recipient`, e.g. `NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;<xtext>`;
    /// empty when none is asked. `NEVER` excludes the other notices.
    pub fn rcpt_params(&self, recipient: &str) -> String {
        let mut params = Vec::with_capacity(2);
        if !self.notify.is_empty() {
            let words: Vec<&str> = if self.notify.contains(&DsnNotify::Never) {
                vec![DsnNotify::Never.keyword()]
            } else {
                self.notify.iter().map(|n| n.keyword()).collect()
            };
            params.push(format!("NOTIFY={}", words.join(",")));
        }
        if self.orcpt {
            params.push(format!("ORCPT=rfc822;{}", xtext::encode(recipient)));
        }
        params.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsn_parameters_are_xtext() {
        let d = DsnRequest::all_notices("a+b=c d");
        assert_eq!(d.mail_params(), "RET=HDRS ENVID=a+2Bb+3Dc+20d");
        assert_eq!(
            d.rcpt_params("jean.dupont@chu-exemple.mssante.fr"),
            "NOTIFY=SUCCESS,FAILURE,DELAY ORCPT=rfc822;jean.dupont@chu-exemple.mssante.fr"
        );
    }

    #[test]
    fn never_stands_alone_and_nothing_asked_gives_nothing() {
        let d = DsnRequest {
            notify: vec![DsnNotify::Failure, DsnNotify::Never],
            ..DsnRequest::default()
        };
        assert_eq!(d.rcpt_params("a@b.fr"), "NOTIFY=NEVER");
        assert_eq!(d.mail_params(), "");
        assert_eq!(DsnRequest::default().rcpt_params("a@b.fr"), "");
    }
}
