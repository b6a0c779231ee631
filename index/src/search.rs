//! Opening the current generation, searching it, and updating it in place.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use mss_annuaire::{Department, Entry, MailAddress};
use tantivy::{
    DocAddress, DocId, Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, index::SegmentId,
};

use crate::address::{AddressIndex, By, HashSetQuery};
use crate::analysis::{QueryToken, addr_hash, query_tokens};
use crate::collect::{SortKey, Top};
use crate::engine::{SegmentCache, clause_postings, search_segment};
use crate::generations::{Layout, dir_size};
use crate::highlight::highlights;
use crate::query::{Plan, TermFilters, is_stop_word};
use crate::schema::{self, EntryDoc, Fields, load};
use crate::{
    Error, Filters, Hit, MAX_LIMIT, Result, SearchRequest, SearchResults, Suggestion, Suggestions,
};

/// Memory of an incremental writer: small batches of upserts, one thread.
const UPDATER_MEMORY: usize = 32 << 20;

/// One opened generation.
pub(crate) struct Generation {
    pub name: String,
    pub dir: PathBuf,
    pub index: Index,
    pub reader: IndexReader,
    pub fields: Fields,
    pub addresses: AddressIndex,
    pub cache: SegmentCache,
    shown: ShownCache,
}

/// The suggestions of documents shown before, without their highlights (those depend on the query): the
/// first hits of a prefix come back keystroke after keystroke and from one query to the next, and reading
/// one from the doc store and decoding it is a fifth of a suggestion query. Direct-mapped: a document has
/// one slot, and a newcomer replaces what was there, so the cache stays bounded without ever freeing much
/// at once (clearing a full map stalled a query for 3 ms). Nor does a query ever wait for it: when another
/// thread holds it, the document is read from the store as if it were not kept (a thread preempted while
/// holding it would otherwise stall the others for a time slice). A segment's documents never change; a
/// slot holds its document's segment and number.
struct ShownCache {
    slots: Mutex<Slots>,
    len: usize,
}

/// A slot: a document (its segment and number) and its suggestion.
type Slots = Vec<Option<(SegmentId, DocId, Arc<Suggestion>)>>;

/// Slots (a suggestion is a few hundred bytes: 5 MB or so when all are filled).
const SHOWN_SLOTS: usize = 16_384;

impl Default for ShownCache {
    fn default() -> Self {
        ShownCache::with_slots(SHOWN_SLOTS)
    }
}

impl ShownCache {
    fn with_slots(len: usize) -> Self {
        let len = len.max(1);
        ShownCache {
            slots: Mutex::new(vec![None; len]),
            len,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The slots, unless another thread holds them.
    fn try_lock(&self) -> Option<std::sync::MutexGuard<'_, Slots>> {
        match self.slots.try_lock() {
            Ok(guard) => Some(guard),
            Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// The suggestion for `addr`, without highlights.
    fn get(&self, searcher: &Searcher, f: &Fields, addr: DocAddress) -> Result<Suggestion> {
        let segment = searcher.segment_reader(addr.segment_ord).segment_id();
        // documents of one segment are numbered from 0: consecutive ones take consecutive slots
        let slot = (addr.doc_id as usize ^ segment_salt(segment)) % self.len;
        let kept = self.try_lock().and_then(|slots| {
            slots[slot]
                .as_ref()
                .filter(|(s, d, _)| *s == segment && *d == addr.doc_id)
                .map(|(_, _, shown)| Arc::clone(shown))
        });
        if let Some(shown) = kept {
            return Ok(Suggestion::clone(&shown));
        }
        let fresh = shown(load(searcher, f, addr)?);
        let entry = Some((segment, addr.doc_id, Arc::new(fresh.clone())));
        let old = self
            .try_lock()
            .map(|mut slots| std::mem::replace(&mut slots[slot], entry));
        drop(old); // outside the lock
        Ok(fresh)
    }

    fn clear(&self) {
        let old: Vec<_> = std::mem::replace(&mut *self.lock(), vec![None; self.len]);
        drop(old);
    }
}

/// Spreads the segments of a generation over the slots.
fn segment_salt(segment: SegmentId) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    segment.hash(&mut h);
    h.finish() as usize
}

impl Generation {
    pub(crate) fn open(layout: &Layout, name: &str) -> Result<Generation> {
        let dir = layout.dir(name);
        let index = Index::open_in_dir(&dir)?;
        schema::register_tokenizers(&index);
        let fields = Fields::resolve(&index.schema())?;
        let reader = open_reader(&index)?;
        Ok(Generation {
            name: name.to_string(),
            dir,
            index,
            reader,
            fields,
            addresses: AddressIndex::default(),
            cache: SegmentCache::default(),
            shown: ShownCache::default(),
        })
    }

    /// Builds what the first search of each segment would (a segment's sort order takes tens of
    /// milliseconds for half a million entries), and forgets segments merged away.
    pub(crate) fn warm(&self) -> Result<()> {
        let searcher = self.reader.searcher();
        let live: Vec<_> = searcher
            .segment_readers()
            .iter()
            .map(|s| s.segment_id())
            .collect();
        self.cache.retain(&live);
        for segment in searcher.segment_readers() {
            self.cache.order(segment)?;
        }
        Ok(())
    }
}

/// Decompressed doc store blocks kept (4 KiB each, 16 MB in all): the hits of frequent queries are read
/// again and again, and decompressing their blocks was the largest cost of a suggestion (100 blocks,
/// tantivy's default: 0.127 ms per suggestion query; 1 000: 0.092; 4 000: 0.084; 8 000: 0.082).
const DOC_STORE_CACHE_BLOCKS: usize = 4000;

/// Readers are reloaded explicitly (after our own commits and on [`DirectoryIndex::reload`]): no watcher
/// thread, and the generation directory may be removed under us by a rebuild.
pub(crate) fn open_reader(index: &Index) -> Result<IndexReader> {
    Ok(index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .doc_store_cache_num_blocks(DOC_STORE_CACHE_BLOCKS)
        .try_into()?)
}

/// The searchable directory: the current generation of the index in a data directory.
///
/// `Send + Sync`; share it in an `Arc`. Searches run on a snapshot; [`DirectoryIndex::reload`] moves to
/// the latest commit or generation.
pub struct DirectoryIndex {
    layout: Layout,
    data_dir: PathBuf,
    current: RwLock<Arc<Generation>>,
}

impl std::fmt::Debug for DirectoryIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryIndex")
            .field("data_dir", &self.data_dir)
            .field("generation", &self.generation().name)
            .finish()
    }
}

impl DirectoryIndex {
    /// Opens the current generation; [`Error::NotFound`] when no index was built yet.
    pub fn open(data_dir: &Path) -> Result<Self> {
        let layout = Layout::new(data_dir);
        let name = layout.current()?.ok_or_else(|| Error::NotFound {
            data_dir: data_dir.to_path_buf(),
        })?;
        let generation = Generation::open(&layout, &name)?;
        generation.warm()?;
        Ok(DirectoryIndex {
            layout,
            data_dir: data_dir.to_path_buf(),
            current: RwLock::new(Arc::new(generation)),
        })
    }

    /// Whether an index was built in `data_dir`.
    pub fn exists(data_dir: &Path) -> bool {
        let layout = Layout::new(data_dir);
        matches!(layout.current(), Ok(Some(name)) if layout.dir(&name).join("meta.json").is_file())
    }

    fn generation(&self) -> Arc<Generation> {
        let guard = self.current.read().unwrap_or_else(|e| e.into_inner());
        Arc::clone(&guard)
    }

    /// Picks up a generation swapped in by a rebuild, or new commits to the current one.
    pub fn reload(&self) -> Result<()> {
        let name = self.layout.current()?.ok_or_else(|| Error::NotFound {
            data_dir: self.data_dir.clone(),
        })?;
        let current = self.generation();
        if current.name == name {
            current.reader.reload()?;
            return current.warm();
        }
        let fresh = Arc::new(Generation::open(&self.layout, &name)?);
        fresh.warm()?;
        let mut guard = self.current.write().unwrap_or_else(|e| e.into_inner());
        *guard = fresh;
        Ok(())
    }

    /// Forgets what earlier queries left in the caches (benchmarks start each run from the same state).
    #[doc(hidden)]
    pub fn clear_query_caches(&self) {
        let g = self.generation();
        g.cache.clear_queries();
        g.shown.clear();
    }

    /// Number of entries searchable.
    pub fn num_entries(&self) -> u64 {
        self.generation().reader.searcher().num_docs()
    }

    /// Bytes used on disk by the current generation.
    pub fn size_on_disk(&self) -> u64 {
        dir_size(&self.generation().dir)
    }

    /// The entry of `address` (normalised like [`MailAddress::parse`]), if indexed.
    pub fn get(&self, address: &str) -> Result<Option<Entry>> {
        let address = MailAddress::parse(address).map_err(|e| Error::InvalidParameter {
            param: "address",
            reason: e.to_string().trim_start_matches("address: ").to_string(),
        })?;
        let g = self.generation();
        let hash = addr_hash(address.as_str());
        let same = g.addresses.entries(&g.reader.searcher(), &g.fields, hash)?;
        Ok(same.into_iter().find(|e| e.address == address))
    }

    /// A page of entries matching `req`, best first.
    pub fn search(&self, req: &SearchRequest) -> Result<SearchResults> {
        check_limit(req.limit)?;
        let after = req
            .cursor
            .as_deref()
            .filter(|c| !c.trim().is_empty())
            .map(SortKey::from_cursor)
            .transpose()?;
        let g = self.generation();
        let searcher = g.reader.searcher();
        if let Some(found) = by_address(&g, &searcher, &req.q, &req.filters, req.limit)? {
            // the boxes of the address typed, alone and on one page
            let total = found.len() as u64;
            let hits = match after {
                Some(_) => Vec::new(),
                None => found
                    .into_iter()
                    .map(|entry| Hit {
                        entry,
                        score: ADDRESS_SCORE,
                    })
                    .collect(),
            };
            return Ok(SearchResults {
                total,
                hits,
                next_cursor: None,
                dropped: Vec::new(),
            });
        }
        let tokens = query_tokens(&req.q);
        let filters = term_filters(&g.fields, &req.filters)?;
        // one more hit tells whether there is a next page
        let keep = req.limit.saturating_add(1);
        let Answer { top, dropped } = answer(&g, &searcher, &tokens, &filters, keep, after, true)?;
        let next_cursor = (top.hits.len() > req.limit)
            .then(|| req.limit.checked_sub(1).map(|i| top.hits[i].0.to_cursor()))
            .flatten();
        let mut hits = Vec::with_capacity(req.limit.min(top.hits.len()));
        for (key, addr) in top.hits.iter().take(req.limit) {
            hits.push(Hit {
                entry: load(&searcher, &g.fields, *addr)?,
                score: key.score(),
            });
        }
        Ok(SearchResults {
            total: top.total,
            hits,
            next_cursor,
            dropped,
        })
    }

    /// Suggestions for what the user is typing, best first, with the matched parts of each label.
    /// An empty `q` without filters suggests nothing.
    pub fn autocomplete(
        &self,
        q: &str,
        filters: &Filters,
        limit: usize,
    ) -> Result<Vec<Suggestion>> {
        Ok(self.suggest(q, filters, limit)?.suggestions)
    }

    /// [`DirectoryIndex::autocomplete`], saying which words were left out to find anything.
    pub fn suggest(&self, q: &str, filters: &Filters, limit: usize) -> Result<Suggestions> {
        check_limit(limit)?;
        let tokens = query_tokens(q);
        let none = Suggestions::default();
        if tokens.is_empty() && filters.is_empty() {
            return Ok(none);
        }
        let g = self.generation();
        let searcher = g.reader.searcher();
        if let Some(found) = by_address(&g, &searcher, q, filters, limit)? {
            let suggestions = found
                .into_iter()
                .map(|e| {
                    let mut s = shown(e);
                    s.highlights = highlights(&s.label, &tokens);
                    s
                })
                .collect();
            return Ok(Suggestions {
                suggestions,
                dropped: Vec::new(),
            });
        }
        let filters = term_filters(&g.fields, filters)?;
        if Plan::new(&g.fields, &tokens, &filters).is_all() {
            return Ok(none);
        }
        let Answer { top, dropped } = answer(&g, &searcher, &tokens, &filters, limit, None, false)?;
        let suggestions = top
            .hits
            .iter()
            .take(limit)
            .map(|(_, addr)| {
                let mut s = g.shown.get(&searcher, &g.fields, *addr)?;
                s.highlights = highlights(&s.label, &tokens);
                Ok(s)
            })
            .collect::<Result<_>>()?;
        Ok(Suggestions {
            suggestions,
            dropped,
        })
    }

    /// An incremental writer on the current generation. One writer at a time per index, across
    /// processes ([`Error::Busy`] otherwise). Its commits go to the generation current when it was made:
    /// a rebuild swapped in meanwhile replaces them.
    pub fn writer(&self) -> Result<Updater> {
        let g = self.generation();
        let writer = g
            .index
            .writer_with_num_threads::<EntryDoc>(1, UPDATER_MEMORY)
            .map_err(|e| match e {
                tantivy::TantivyError::LockFailure(..) => Error::Busy {
                    data_dir: g.dir.clone(),
                },
                e => Error::Tantivy(e),
            })?;
        let sources = sources_of(&g.index)?;
        Ok(Updater {
            writer,
            generation: g,
            batch: HashMap::new(),
            sources,
        })
    }

    /// What a source recorded with the index ([`Updater::set_source_state`]), as of the last commit:
    /// e.g. `fhir` → the time of the last successful FHIR sync. A rebuild starts with none.
    pub fn source_state(&self, source: &str) -> Result<Option<serde_json::Value>> {
        Ok(sources_of(&self.generation().index)?.remove(source))
    }
}

/// The source states kept in the commit payload of tantivy's `meta.json` (a JSON object by source name),
/// so that they change atomically with the entries they describe.
fn sources_of(index: &Index) -> Result<serde_json::Map<String, serde_json::Value>> {
    let payload = index.load_metas()?.payload;
    match payload.as_deref().map(str::trim) {
        None | Some("") => Ok(serde_json::Map::new()),
        Some(text) => match serde_json::from_str(text) {
            Ok(serde_json::Value::Object(map)) => Ok(map),
            _ => Err(Error::Corrupt {
                reason: "the commit payload of meta.json is not a JSON object of source states"
                    .into(),
            }),
        },
    }
}

fn check_limit(limit: usize) -> Result<()> {
    if limit > MAX_LIMIT {
        return Err(Error::InvalidParameter {
            param: "limit",
            reason: format!("{limit} is more than {MAX_LIMIT}"),
        });
    }
    Ok(())
}

/// Searches every segment for `keep` hits, counting every match with `count`.
fn run(
    g: &Generation,
    searcher: &Searcher,
    plan: &Plan,
    keep: usize,
    after: Option<SortKey>,
    count: bool,
) -> Result<Top> {
    let mut tops = Vec::with_capacity(searcher.segment_readers().len());
    for (ord, segment) in searcher.segment_readers().iter().enumerate() {
        let ord = u32::try_from(ord).unwrap_or(u32::MAX);
        tops.push(search_segment(
            plan, segment, &g.cache, ord, keep, after, count,
        )?);
    }
    Ok(Top::merge(tops, keep))
}

/// Score reported for the boxes of an address typed whole or by its beginning: above any word match.
const ADDRESS_SCORE: f32 = 1000.0;

/// The hits of a query, and the words left out to find any.
struct Answer {
    top: Top,
    dropped: Vec<String>,
}

/// Runs the query with the last word a prefix (as typed), and so is every other word that is no whole
/// word of the index (`cardio limoges`) or a single letter (an initial); when that finds nothing, again
/// with every word a prefix, below whole words; and while that finds nothing, again without its least
/// selective word ([`least_selective`]). Whether something was found is read from the count of every
/// match (`count`) or the first page (search-as-you-type has no cursor), never from the cursor: every
/// page of a search reads the query the same way.
fn answer(
    g: &Generation,
    searcher: &Searcher,
    tokens: &[QueryToken],
    filters: &TermFilters,
    keep: usize,
    after: Option<SortKey>,
    count: bool,
) -> Result<Answer> {
    let found = |top: &Top| {
        if count {
            top.total > 0
        } else {
            !top.hits.is_empty()
        }
    };
    let mut words = tokens.to_vec();
    for w in words
        .iter_mut()
        .filter(|w| !w.prefix && !is_stop_word(&w.text))
    {
        w.prefix = w.text.chars().count() == 1 || !is_whole_word(g, searcher, &w.text)?;
    }
    let top = run(
        g,
        searcher,
        &Plan::new(&g.fields, &words, filters),
        keep,
        after,
        count,
    )?;
    if found(&top) || words.iter().all(|t| t.prefix) {
        return Ok(Answer {
            top,
            dropped: Vec::new(),
        });
    }
    for w in &mut words {
        w.prefix = true;
    }
    let mut dropped = Vec::new();
    loop {
        let plan = Plan::new(&g.fields, &words, filters);
        let top = run(g, searcher, &plan, keep, after, count)?;
        let Some(drop) = (!found(&top))
            .then(|| least_selective(g, searcher, &words))
            .transpose()?
            .flatten()
        else {
            return Ok(Answer { top, dropped });
        };
        dropped.push(words.remove(drop).text);
    }
}

/// Whether `word` (folded) is a whole word of a name, organisation, profession or place of the index.
fn is_whole_word(g: &Generation, searcher: &Searcher, word: &str) -> Result<bool> {
    let f = &g.fields;
    for segment in searcher.segment_readers() {
        for field in [f.name, f.org, f.job, f.place] {
            let term = tantivy::Term::from_field_text(field, word);
            let known = segment.inverted_index(field)?.get_term_info(&term);
            if known.map_err(tantivy::TantivyError::from)?.is_some() {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// The word to leave out of a query that matches nothing: one that matches nothing by itself first, else
/// the one matching most entries (it narrows least). Stop words are never required, so never dropped;
/// `None` when fewer than two words would remain to choose from.
fn least_selective(
    g: &Generation,
    searcher: &Searcher,
    words: &[QueryToken],
) -> Result<Option<usize>> {
    let candidates: Vec<usize> = (0..words.len())
        .filter(|&i| !is_stop_word(&words[i].text))
        .collect();
    if candidates.len() < 2 {
        return Ok(None);
    }
    let mut best: Option<(bool, u64, usize)> = None;
    for i in candidates {
        let alone = Plan::new(&g.fields, &words[i..=i], &TermFilters::default());
        let mut postings = 0;
        for segment in searcher.segment_readers() {
            for clause in alone.clauses.iter().filter(|c| c.required) {
                postings += clause_postings(clause, segment, &g.cache)?;
            }
        }
        // (matches nothing, postings): the greatest goes; the first word wins ties
        let key = (postings == 0, postings, i);
        let better = best.is_none_or(|(z, p, _)| (key.0, key.1) > (z, p));
        if better {
            best = Some(key);
        }
    }
    Ok(best.map(|(_, _, i)| i))
}

/// The boxes of an address typed whole or by its beginning (`vasseur.0@`, `jean.dupont@chu-`), exact
/// address first, then alphabetically, filters applied; `None` when `q` is not such a beginning or no
/// box has it.
fn by_address(
    g: &Generation,
    searcher: &Searcher,
    q: &str,
    filters: &Filters,
    limit: usize,
) -> Result<Option<Vec<Entry>>> {
    let typed = q.trim().to_lowercase();
    let Some((local, _)) = typed.split_once('@') else {
        return Ok(None);
    };
    if local.is_empty() || typed.contains(char::is_whitespace) {
        return Ok(None);
    }
    let same_local =
        g.addresses
            .entries_by(searcher, &g.fields, By::LocalPart, addr_hash(local))?;
    let mut found: Vec<Entry> = same_local
        .into_iter()
        .filter(|e| e.address.as_str().to_lowercase().starts_with(&typed))
        .filter(|e| passes(e, filters))
        .collect();
    if found.is_empty() {
        return Ok(None);
    }
    found.sort_by_cached_key(|e| {
        let a = e.address.as_str().to_lowercase();
        (a != typed, a)
    });
    found.truncate(limit);
    Ok(Some(found))
}

/// Whether `e` passes the filters (the address path checks them on the entries themselves).
fn passes(e: &Entry, f: &Filters) -> bool {
    let same = |want: &Option<String>, have: Option<&str>| {
        want.as_deref()
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .is_none_or(|w| have.is_some_and(|h| h.trim().eq_ignore_ascii_case(w)))
    };
    f.bal_type.is_none_or(|t| t == e.bal_type)
        && same(
            &f.profession,
            e.profession.as_ref().map(|c| c.code.as_str()),
        )
        && same(
            &f.speciality,
            e.speciality.as_ref().map(|c| c.code.as_str()),
        )
        && same(&f.postal_code, e.postal_code.as_deref())
        && f.department.as_deref().is_none_or(|d| {
            let wanted = Department::parse(d).ok();
            wanted.is_some() && wanted.as_ref() == e.department.as_ref()
        })
}

/// What a suggestion shows of `e`, highlights aside.
fn shown(e: Entry) -> Suggestion {
    let label = e.display_name();
    Suggestion {
        address: e.address.to_string(),
        profession: e
            .profession
            .as_ref()
            .map(|c| c.label.clone())
            .filter(|l| !l.is_empty()),
        speciality: e
            .speciality
            .as_ref()
            .map(|c| c.label.clone())
            .filter(|l| !l.is_empty()),
        organisation: e
            .organisation_trade_name
            .clone()
            .or_else(|| e.organisation_name.clone()),
        city: e.city().map(str::to_string),
        department: e.department.as_ref().map(|d| d.to_string()),
        bal_type: e.bal_type,
        highlights: Vec::new(),
        label,
    }
}

/// Filters as index terms; a department that is not one is refused, naming the parameter.
fn term_filters(f: &Fields, filters: &Filters) -> Result<TermFilters> {
    let mut terms = Vec::new();
    if let Some(t) = filters.bal_type {
        terms.push((f.bal_type, t.code().to_string()));
    }
    let text = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    if let Some(p) = text(&filters.profession) {
        terms.push((f.profession, p));
    }
    if let Some(s) = text(&filters.speciality) {
        terms.push((f.speciality, s));
    }
    if let Some(d) = text(&filters.department) {
        let d = Department::parse(&d).map_err(|_| Error::InvalidParameter {
            param: "department",
            reason: format!("`{d}` is not a French department code"),
        })?;
        // departments and postal codes are words of `place` (city names have no digits)
        terms.push((f.place, crate::analysis::fold(d.as_str())));
    }
    if let Some(pc) = text(&filters.postal_code) {
        terms.push((f.place, crate::analysis::fold(&pc)));
    }
    Ok(TermFilters(terms))
}

/// Incremental changes to the current generation: upsert or delete by address, then commit.
///
/// Changes are held until [`Updater::commit`] (commit every few thousand) and dropped with the updater
/// if it is not called.
pub struct Updater {
    writer: IndexWriter<EntryDoc>,
    generation: Arc<Generation>,
    /// Per address hash touched: every address with that hash and its entry as this batch leaves it
    /// (`None`: deleted). Documents are deleted by hash, so the others sharing it are written back.
    batch: HashMap<u64, HashMap<MailAddress, Option<Entry>>>,
    /// Source states, written with every commit (tantivy replaces the payload at each commit).
    sources: serde_json::Map<String, serde_json::Value>,
}

impl std::fmt::Debug for Updater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Updater")
            .field("generation", &self.generation.name)
            .field("pending", &self.batch.len())
            .finish()
    }
}

impl Updater {
    /// Replaces the entry of `entry.address` (or adds it). A red-listed entry is removed instead.
    pub fn upsert(&mut self, entry: &Entry) -> Result<()> {
        let with = (!entry.red_listed).then(|| entry.clone());
        self.replace(&entry.address, with)
    }

    /// Removes the entry of `address`, if any.
    pub fn delete(&mut self, address: &MailAddress) -> Result<()> {
        self.replace(address, None)
    }

    /// The entry of `address` as this updater leaves it: the pending change if any, else the committed one.
    pub fn current(&self, address: &MailAddress) -> Result<Option<Entry>> {
        let hash = addr_hash(address.as_str());
        if let Some(state) = self.batch.get(&hash) {
            return Ok(state.get(address).cloned().flatten());
        }
        let g = &self.generation;
        Ok(g.addresses
            .entries(&g.reader.searcher(), &g.fields, hash)?
            .into_iter()
            .find(|e| &e.address == address))
    }

    /// Records `state` for `source` (e.g. the time of its last complete sync), durable with the next
    /// [`Updater::commit`] and read back by [`DirectoryIndex::source_state`].
    pub fn set_source_state(&mut self, source: &str, state: serde_json::Value) {
        self.sources.insert(source.to_string(), state);
    }

    fn replace(&mut self, address: &MailAddress, with: Option<Entry>) -> Result<()> {
        let hash = addr_hash(address.as_str());
        let state = match self.batch.entry(hash) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let g = &self.generation;
                let committed = g.addresses.entries(&g.reader.searcher(), &g.fields, hash)?;
                v.insert(
                    committed
                        .into_iter()
                        .map(|e| (e.address.clone(), Some(e)))
                        .collect(),
                )
            }
        };
        state.insert(address.clone(), with);
        Ok(())
    }

    /// Makes the changes durable and visible to this process's [`DirectoryIndex`] (other processes see
    /// them after [`DirectoryIndex::reload`]).
    pub fn commit(&mut self) -> Result<()> {
        let f = self.generation.fields;
        if !self.batch.is_empty() {
            let hashes: HashSet<u64> = self.batch.keys().copied().collect();
            self.writer
                .delete_query(Box::new(HashSetQuery(Arc::new(hashes))))?;
            for (_, state) in self.batch.drain() {
                for entry in state.into_values().flatten() {
                    self.writer.add_document(EntryDoc::new(f, &entry))?;
                }
            }
        }
        let mut prepared = self.writer.prepare_commit()?;
        if !self.sources.is_empty() {
            prepared.set_payload(&serde_json::Value::Object(self.sources.clone()).to_string());
        }
        prepared.commit()?;
        self.generation.reader.reload()?;
        self.generation.warm()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mss_annuaire::{BalType, Source};

    #[test]
    fn a_shown_slot_answers_only_for_its_own_document() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut b = crate::Builder::create(dir.path()).expect("builder");
        for (first, last) in [("Anne", "Martin"), ("Paul", "Durand"), ("Zoe", "Petit")] {
            let address = format!(
                "{}.{}@medecin.mssante.fr",
                first.to_lowercase(),
                last.to_lowercase()
            );
            let mut e = Entry::new(
                MailAddress::parse(&address).expect("address"),
                BalType::Per,
                Source::Extraction,
            );
            e.first_name = Some(first.into());
            e.last_name = Some(last.into());
            b.add(e).expect("add");
        }
        b.commit().expect("commit");
        let index = DirectoryIndex::open(dir.path()).expect("open");
        let g = index.generation();
        let searcher = g.reader.searcher();
        // every document falls in the one slot: each must still come back as itself, kept or not
        let cache = ShownCache::with_slots(1);
        let want: Vec<Suggestion> = (0..3)
            .map(|doc| shown(load(&searcher, &g.fields, DocAddress::new(0, doc)).expect("load")))
            .collect();
        assert_eq!(
            want.iter()
                .map(|s| &s.address)
                .collect::<HashSet<_>>()
                .len(),
            3
        );
        for doc in [0, 0, 1, 1, 0, 2, 2, 1] {
            let got = cache
                .get(&searcher, &g.fields, DocAddress::new(0, doc))
                .expect("get");
            assert_eq!(got, want[doc as usize], "document {doc}");
        }
    }
}
