//! [`HarvestSink`]: where a source's entries go (the index, in `mss ldap-sync` and `mss fhir-sync`).

use crate::model::{Entry, MailAddress};

/// Where harvested or synchronised entries go.
pub trait HarvestSink {
    /// The sink's error; source errors convert into it.
    type Error: From<crate::Error>;
    /// Adds or replaces an entry.
    fn upsert(&mut self, entry: &Entry) -> Result<(), Self::Error>;
    /// Removes an entry (red-listed, deactivated or gone from the source).
    fn remove(&mut self, address: &MailAddress) -> Result<(), Self::Error>;
    /// Makes every change so far durable: called before a progress file records them as done.
    fn commit(&mut self) -> Result<(), Self::Error>;
    /// The entry the sink holds for `address`, changes not yet committed included. Sources that send a
    /// mailbox in parts (FHIR: a Practitioner without its structure) complete it from this.
    fn current(&self, address: &MailAddress) -> Result<Option<Entry>, Self::Error> {
        let _ = address;
        Ok(None)
    }
}
