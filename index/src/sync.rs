//! The index as the destination of the directory syncs (`mss ldap-sync`, `mss fhir-sync`): [`Updater`]
//! is the [`HarvestSink`] they write to, and once a sync is complete it removes what the source no longer
//! publishes ([`Updater::remove_vanished`], [`Updater::remove_dropped`]).

use std::collections::HashSet;
use std::path::Path;

use mss_annuaire::fhir::{Carried, Reconciled, reconcile};
use mss_annuaire::{Entry, HarvestSink, MailAddress, Source};

use crate::{Builder, DirectoryIndex, Error, MAX_LIMIT, Result, SearchRequest, Updater, io};

impl HarvestSink for Updater {
    type Error = Error;

    fn upsert(&mut self, entry: &Entry) -> Result<()> {
        Updater::upsert(self, entry)
    }

    fn remove(&mut self, address: &MailAddress) -> Result<()> {
        self.delete(address)
    }

    fn commit(&mut self) -> Result<()> {
        Updater::commit(self)
    }

    fn current(&self, address: &MailAddress) -> Result<Option<Entry>> {
        Updater::current(self, address)
    }
}

impl DirectoryIndex {
    /// Opens the index of `data_dir`, creating the directory and an empty index when there is none: a
    /// sync may be the first thing to fill it.
    pub fn open_or_create(data_dir: &Path) -> Result<Self> {
        if !DirectoryIndex::exists(data_dir) {
            std::fs::create_dir_all(data_dir)
                .map_err(io(|| format!("creating {}", data_dir.display())))?;
            Builder::create(data_dir).and_then(Builder::commit)?;
        }
        DirectoryIndex::open(data_dir)
    }

    /// Calls `f` on every entry of the index, page by page.
    pub fn for_each_entry(&self, mut f: impl FnMut(&Entry)) -> Result<()> {
        let mut cursor = None;
        loop {
            let page = self.search(&SearchRequest {
                q: String::new(),
                limit: MAX_LIMIT,
                cursor,
                ..SearchRequest::default()
            })?;
            for hit in &page.hits {
                f(&hit.entry);
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(()),
            }
        }
    }
}

impl Updater {
    /// After a complete harvest or full sync of `source`: removes the entries of `source` in `index` that
    /// it did not see, and commits. Returns how many left the index.
    pub fn remove_vanished(
        &mut self,
        index: &DirectoryIndex,
        source: Source,
        seen: &HashSet<MailAddress>,
    ) -> Result<u64> {
        let mut gone = Vec::new();
        index.for_each_entry(|e| {
            if e.source == source && !seen.contains(&e.address) {
                gone.push(e.address.clone());
            }
        })?;
        for a in &gone {
            self.delete(a)?;
        }
        if !gone.is_empty() {
            self.commit()?;
        }
        Ok(gone.len() as u64)
    }

    /// After a complete FHIR delta: takes the resources it re-read off the entries they no longer
    /// publish, removes the entries no resource publishes any more ([`reconcile`]), and commits. Returns
    /// how many left the index.
    pub fn remove_dropped(&mut self, index: &DirectoryIndex, carried: &Carried) -> Result<u64> {
        if carried.is_empty() {
            return Ok(0);
        }
        let mut changes = Vec::new();
        index.for_each_entry(|e| match reconcile(e, carried) {
            Reconciled::Unchanged => {}
            other => changes.push((e.address.clone(), other)),
        })?;
        let mut removed = 0;
        for (address, change) in &changes {
            match change {
                Reconciled::Narrowed(e) => self.upsert(e)?,
                Reconciled::Removed => {
                    self.delete(address)?;
                    removed += 1;
                }
                Reconciled::Unchanged => {}
            }
        }
        if !changes.is_empty() {
            self.commit()?;
        }
        Ok(removed)
    }
}
