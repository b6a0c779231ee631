//! The SMTP envelope of one message.

use crate::{DsnRequest, MailAddress};

/// Sender and recipients of one SMTP transaction, with its DSN parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// `MAIL FROM`: the reverse path (the sender's BAL).
    pub from: MailAddress,
    /// `RCPT TO`: the forward paths, each once.
    pub recipients: Vec<MailAddress>,
    /// DSN parameters, when asked; kept with the message so that the DSN can be correlated.
    pub dsn: Option<DsnRequest>,
}
