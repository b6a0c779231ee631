//! `[hl7]` of the service's configuration.

use crate::{Error, Result};

/// `[hl7]`: the PFI role of the service.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hl7Config {
    /// Where the DPI's MLLP connections are accepted, e.g. `127.0.0.1:2575`; none: no listener.
    pub listen: Option<String>,
    /// The `[[senders]]` entry (its name) whose mailbox sends on the DPI's behalf.
    pub sender: Option<String>,
    /// The DPI's MLLP listener (`HOST:PORT`) the PFI's own messages go to (business acks, received
    /// documents).
    pub dpi: Option<String>,
    /// MSH-3 of the messages the PFI writes (default `MSS`).
    pub application: Option<String>,
    /// MSH-4 of the messages the PFI writes (default: the facility of the message answered, else
    /// `MSS`).
    pub facility: Option<String>,
    /// MSH-5 of the messages sent to the DPI: its application (default `DPI`).
    pub dpi_application: Option<String>,
    /// MSH-6 of the messages sent to the DPI: its facility (default the PFI's `facility`).
    pub dpi_facility: Option<String>,
    /// The `From:` label of the mailbox (an APP mailbox: its functional entity); default the
    /// organisation of the sender's PRT (PRT-8), else MSH-4 of the DPI's message.
    pub entity: Option<String>,
    /// The REST client (`mss client`) that may follow these messages with `GET /v1/messages/{id}` and
    /// `GET /v1/batches/{id}`; none: the command line only.
    pub client: Option<String>,
    /// XDS classCode of the documents, `code^display` (JDV_J06, scheme 1.2.250.1.213.1.1.4.1); the
    /// guides carry none, the national table derives it from the type: default `10^Compte rendu`.
    pub class_code: Option<String>,
    /// Seconds a silent DPI connection stays open (default 300).
    pub idle_timeout_secs: Option<u64>,
}

impl Hl7Config {
    /// Checks what can be checked without the rest of the configuration.
    pub fn check(&self) -> Result<()> {
        for (key, v) in [("listen", &self.listen), ("dpi", &self.dpi)] {
            if let Some(v) = v
                && (v.is_empty() || !v.contains(':'))
            {
                return Err(Error::Config(format!("{key} = {v:?}: HOST:PORT")));
            }
        }
        if self.listen.is_some() && self.sender.is_none() {
            return Err(Error::Config(
                "listen needs sender: the [[senders]] name whose mailbox sends for the DPI".into(),
            ));
        }
        if let Some(c) = &self.class_code
            && c.split('^').next().is_none_or(str::is_empty)
        {
            return Err(Error::Config(format!("class_code = {c:?}: code^display")));
        }
        Ok(())
    }

    /// MSH-3 of the messages the PFI writes.
    pub fn application(&self) -> String {
        self.application.clone().unwrap_or_else(|| "MSS".into())
    }

    /// MSH-3/4 and MSH-5/6 of the messages the PFI sends the DPI on its own (received documents).
    pub fn sending(&self) -> super::receiving::Sending {
        let facility = self.facility.clone().unwrap_or_else(|| "MSS".into());
        super::receiving::Sending {
            application: self.application(),
            receiving_application: self.dpi_application.clone().unwrap_or_else(|| "DPI".into()),
            receiving_facility: self
                .dpi_facility
                .clone()
                .unwrap_or_else(|| facility.clone()),
            facility,
        }
    }

    /// The classCode given to every document.
    pub fn class_code(&self) -> mss_message::ClassifiedCode {
        let given = self.class_code.as_deref().unwrap_or("10^Compte rendu");
        let mut parts = given.splitn(2, '^');
        mss_message::ClassifiedCode {
            code: parts.next().unwrap_or("10").to_owned(),
            coding_scheme: "1.2.250.1.213.1.1.4.1".into(),
            display_name: parts.next().unwrap_or("").to_owned(),
        }
    }
}
