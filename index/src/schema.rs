//! The tantivy schema: which fields exist, how each is analysed, and how an [`Entry`] becomes a document.

use std::sync::Arc;

use mss_annuaire::{BalType, Department, Entry};
use tantivy::schema::document::{ReferenceValue, ReferenceValueLeaf};
use tantivy::schema::{
    BytesOptions, Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions,
    Value,
};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{DocAddress, Document, Index, Searcher, TantivyDocument};

use crate::analysis::{self, FoldTokenizer, Mode};
use crate::codec;

const WORD: &str = "mss_word";
const PREFIX: &str = "mss_prefix";
const RAW: &str = "raw";

/// The fields, resolved once per index.
///
/// Words of names, organisations, places and professions are indexed whole. Names also get their
/// prefixes of up to [`analysis::MAX_PREFIX_CHARS`] characters (`name_pfx`): a short prefix of a name is
/// one term to look up instead of an expansion over thousands of names. Other prefixes are expanded at
/// query time over the few words that share them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fields {
    pub name: Field,
    pub name_pfx: Field,
    pub org: Field,
    pub place: Field,
    pub job: Field,
    pub bal_type: Field,
    pub profession: Field,
    pub speciality: Field,
    pub name_key: Field,
    pub addr_hash: Field,
    pub entry: Field,
    /// Where the entry is, as whole terms (city glued, postal code, department): the location bonus.
    /// `None` in an index built before it existed (no bonus until the next rebuild).
    pub located: Option<Field>,
    /// Hash of the address's local part (a fast column): addresses typed by their beginning.
    /// `None` in an index built before it existed.
    pub local_hash: Option<Field>,
}

/// Field names of the fast fields read by the collector.
pub(crate) const NAME_KEY: &str = "name_key";
pub(crate) const ADDR_HASH: &str = "addr_hash";
pub(crate) const LOCAL_HASH: &str = "local_hash";

pub(crate) fn schema() -> Schema {
    let mut b = Schema::builder();
    // Documents only (no frequencies, positions nor norms): every match scores a constant.
    let text = |tokenizer: &str| {
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(tokenizer)
                .set_index_option(IndexRecordOption::Basic)
                .set_fieldnorms(false),
        )
    };
    b.add_text_field("name", text(WORD));
    b.add_text_field("name_pfx", text(PREFIX));
    b.add_text_field("org", text(WORD));
    b.add_text_field("place", text(WORD));
    b.add_text_field("job", text(WORD));
    for raw in ["bal_type", "profession", "speciality"] {
        b.add_text_field(raw, text(RAW));
    }
    b.add_u64_field(NAME_KEY, NumericOptions::default().set_fast());
    // The address is found through the hash column, not a term: a term per document (unique, so one
    // posting list and dictionary entry each) cost a fifth of the whole import. See `search::AddressIndex`.
    b.add_u64_field(ADDR_HASH, NumericOptions::default().set_fast());
    b.add_u64_field(LOCAL_HASH, NumericOptions::default().set_fast());
    b.add_text_field("located", text(RAW));
    b.add_bytes_field("entry", BytesOptions::default().set_stored());
    b.build()
}

impl Fields {
    pub(crate) fn resolve(schema: &Schema) -> tantivy::Result<Fields> {
        let f = |name: &str| schema.get_field(name);
        Ok(Fields {
            name: f("name")?,
            name_pfx: f("name_pfx")?,
            org: f("org")?,
            place: f("place")?,
            job: f("job")?,
            bal_type: f("bal_type")?,
            profession: f("profession")?,
            speciality: f("speciality")?,
            name_key: f(NAME_KEY)?,
            addr_hash: f(ADDR_HASH)?,
            entry: f("entry")?,
            located: f("located").ok(),
            local_hash: f(LOCAL_HASH).ok(),
        })
    }
}

/// Registers our analyzers on an index (needed by every writer; tokenizers are not persisted).
pub(crate) fn register_tokenizers(index: &Index) {
    let m = index.tokenizers();
    m.register(WORD, TextAnalyzer::from(FoldTokenizer::new(Mode::Word)));
    m.register(PREFIX, TextAnalyzer::from(FoldTokenizer::new(Mode::Prefix)));
}

/// A person name with its spaces turned into hyphens, so that `Le Gall` is also indexed as `legall` and
/// `de La Tour` as `latour`, `delatour`.
fn glue_spaces(name: &str) -> Option<String> {
    name.contains(char::is_whitespace)
        .then(|| name.split_whitespace().collect::<Vec<_>>().join("-"))
}

/// An entry as a tantivy document: its (field, value) pairs written once into a flat buffer by
/// [`prepare`], and read back, borrowed, each time tantivy walks the document.
///
/// A rebuild prepares documents while parsing, spools and sorts them by name (see `build`), and hands
/// tantivy slices of the sorted buffer: nothing is allocated per document on the indexing threads.
pub(crate) struct EntryDoc {
    buf: Arc<Vec<u8>>,
    start: usize,
    end: usize,
}

impl EntryDoc {
    /// The document of one entry (incremental updates).
    pub(crate) fn new(fields: Fields, entry: &Entry) -> Self {
        let mut buf = Vec::with_capacity(640);
        prepare(fields, entry, &mut buf);
        let end = buf.len();
        EntryDoc {
            buf: Arc::new(buf),
            start: 0,
            end,
        }
    }

    /// The document prepared at `range` of a shared buffer.
    pub(crate) fn spooled(buf: Arc<Vec<u8>>, range: std::ops::Range<usize>) -> Self {
        EntryDoc {
            buf,
            start: range.start,
            end: range.end,
        }
    }
}

/// Sort keys of a prepared document: name key, then address hash (the order of a rebuilt index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct SortKey {
    pub name: u64,
    pub address: u64,
}

const KIND_STR: u8 = 0;
const KIND_U64: u8 = 1;
const KIND_BYTES: u8 = 2;

/// Appends to `out` the (field, value) pairs of `e` as a tantivy document and returns its sort keys.
///
/// Layout, per value: field id (one byte: the schema has fewer than 256 fields), kind, then for text a
/// varint length and the UTF-8, for a number 8 bytes little-endian, and for the stored record (always
/// last) a 4-byte length and the bytes.
pub(crate) fn prepare(f: Fields, e: &Entry, out: &mut Vec<u8>) -> SortKey {
    let str = |out: &mut Vec<u8>, field: Field, s: &str| {
        out.push(field.field_id() as u8);
        out.push(KIND_STR);
        codec::varint(out, s.len());
        out.extend_from_slice(s.as_bytes());
    };
    let name = |out: &mut Vec<u8>, s: &str| {
        str(out, f.name, s);
        str(out, f.name_pfx, s);
    };
    let persons = [&e.last_name, &e.first_name];
    for n in persons.iter().filter_map(|n| n.as_deref()) {
        match glue_spaces(n) {
            Some(glued) => name(out, &glued),
            None => name(out, n),
        }
    }
    let org_names = [&e.organisation_name, &e.organisation_trade_name, &e.service];
    let has_person_name = persons.iter().any(|n| n.is_some());
    if e.bal_type != BalType::Per || !has_person_name {
        // organisational boxes are known by their structure and service
        for o in org_names.iter().filter_map(|o| o.as_deref()) {
            name(out, o);
        }
    }
    for o in org_names.iter().filter_map(|o| o.as_deref()) {
        str(out, f.org, o);
    }
    // `CH`, `CHU`, `AP-HP`... and their long forms: words of the organisation only, so that a name being
    // typed (`ch` of `Charles`) still ranks names first
    let other_names = [&e.organisation_name, &e.organisation_trade_name]
        .into_iter()
        .flatten()
        .filter_map(|o| analysis::structure_names(o));
    let is_structure_box = e.bal_type != BalType::Per || !has_person_name;
    for o in other_names {
        str(out, f.org, o);
        // an organisational box is also known by its acronyms (`aphp`, `chu`), but not by `ch`: the
        // first letters of many names
        let acronyms: Vec<&str> = o
            .split(' ')
            .filter(|w| w.len() <= 4 && *w != "ch")
            .collect();
        if is_structure_box && !acronyms.is_empty() {
            name(out, &acronyms.join(" "));
        }
    }
    if let Some(located) = f.located {
        let cities =
            std::iter::once(e.city()).chain(e.other_structures.iter().map(|s| s.city.as_deref()));
        for city in cities.flatten() {
            str(out, located, &analysis::glued(city));
        }
        let codes = std::iter::once(e.postal_code.as_deref())
            .chain(e.other_structures.iter().map(|s| s.postal_code.as_deref()))
            .flatten()
            .map(str::trim);
        for pc in codes {
            str(out, located, pc);
            if let Some(dep) = Department::from_postal_code(pc) {
                str(out, located, &analysis::glued(dep.as_str()));
            }
        }
        if let Some(dep) = &e.department {
            str(out, located, &analysis::glued(dep.as_str()));
        }
    }
    if let Some(city) = e.city() {
        str(out, f.place, city);
    }
    if let Some(pc) = e.postal_code.as_deref().map(str::trim) {
        str(out, f.place, pc);
    }
    if let Some(dep) = &e.department {
        str(out, f.place, dep.as_str());
        // typed by name too (`cardio gironde`)
        if let Some(name) = dep.name() {
            str(out, f.place, name);
        }
    }
    for s in &e.other_structures {
        for o in [&s.organisation_name, &s.service].into_iter().flatten() {
            str(out, f.org, o);
        }
        if let Some(city) = &s.city {
            str(out, f.place, city);
        }
        if let Some(pc) = s.postal_code.as_deref().map(str::trim) {
            str(out, f.place, pc);
        }
    }
    let departments = e
        .other_structures
        .iter()
        .filter_map(|s| s.postal_code.as_deref())
        .filter_map(Department::from_postal_code);
    for dep in departments {
        str(out, f.place, dep.as_str());
        if let Some(name) = dep.name() {
            str(out, f.place, name);
        }
    }
    for c in [&e.profession, &e.speciality].into_iter().flatten() {
        str(out, f.job, &c.label);
    }
    if let Some(p) = &e.profession {
        str(out, f.profession, p.code.trim());
    }
    if let Some(s) = &e.speciality {
        str(out, f.speciality, s.code.trim());
    }
    str(out, f.bal_type, e.bal_type.code());
    let key = SortKey {
        name: analysis::name_key(&e.display_name()),
        address: analysis::addr_hash(e.address.as_str()),
    };
    let local = f.local_hash.map(|field| {
        (
            field,
            analysis::addr_hash(&e.address.local_part().to_ascii_lowercase()),
        )
    });
    let numbers = [(f.name_key, key.name), (f.addr_hash, key.address)];
    for (field, n) in numbers.into_iter().chain(local) {
        out.push(field.field_id() as u8);
        out.push(KIND_U64);
        out.extend_from_slice(&n.to_le_bytes());
    }
    // the stored record goes last: `stored_record` finds it without walking the values
    let record_start = out.len();
    out.extend_from_slice(&[0; RECORD_HEADER]);
    codec::encode(e, out);
    let record_len = (out.len() - record_start - RECORD_HEADER) as u32;
    out[record_start] = f.entry.field_id() as u8;
    out[record_start + 1] = KIND_BYTES;
    out[record_start + 2..record_start + RECORD_HEADER].copy_from_slice(&record_len.to_le_bytes());
    key
}

/// The record's value header: field id, kind, and a fixed 4-byte length (it is written after the record).
const RECORD_HEADER: usize = 6;

/// The stored record of a prepared document (the last value, see [`prepare`]).
pub(crate) fn stored_record(doc: &[u8]) -> Option<&[u8]> {
    let mut pos = 0;
    while pos < doc.len() {
        let (_, kind, value, next) = value_at(doc, pos)?;
        if kind == KIND_BYTES {
            return Some(value);
        }
        pos = next;
    }
    None
}

/// The value at `pos` of a prepared document: (field, kind, bytes, position of the next value).
fn value_at(doc: &[u8], pos: usize) -> Option<(u8, u8, &[u8], usize)> {
    let field = *doc.get(pos)?;
    let kind = *doc.get(pos + 1)?;
    let (len, start) = match kind {
        KIND_U64 => (8, pos + 2),
        KIND_BYTES => {
            let len = u32::from_le_bytes(doc.get(pos + 2..pos + RECORD_HEADER)?.try_into().ok()?);
            (len as usize, pos + RECORD_HEADER)
        }
        _ => {
            let (len, used) = codec::read_varint(doc.get(pos + 2..)?)?;
            (len, pos + 2 + used)
        }
    };
    let value = doc.get(start..start.checked_add(len)?)?;
    Some((field, kind, value, start + len))
}

/// A value of an [`EntryDoc`]: text, number or bytes, borrowed.
///
/// Text is checked as UTF-8 only when tantivy looks at it: it walks a document three times (terms,
/// fast fields, store) and looks at each text once.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Val<'a> {
    Str(&'a [u8]),
    U64(u64),
    Bytes(&'a [u8]),
}

impl<'a> Value<'a> for Val<'a> {
    type ArrayIter = std::iter::Empty<Self>;
    type ObjectIter = std::iter::Empty<(&'a str, Self)>;

    fn as_value(&self) -> ReferenceValue<'a, Self> {
        ReferenceValue::Leaf(match *self {
            // always valid: `prepare` wrote it from a `&str`
            Val::Str(s) => ReferenceValueLeaf::Str(std::str::from_utf8(s).unwrap_or_default()),
            Val::U64(n) => ReferenceValueLeaf::U64(n),
            Val::Bytes(b) => ReferenceValueLeaf::Bytes(b),
        })
    }
}

/// The values of a prepared document, in the order [`prepare`] wrote them.
pub(crate) struct Values<'a> {
    doc: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Values<'a> {
    type Item = (Field, Val<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        // A document is only ever read from the buffer `prepare` wrote in this process: a value that
        // does not read back ends the document rather than panicking.
        let (field, kind, bytes, next) = value_at(self.doc, self.pos)?;
        self.pos = next;
        let value = match kind {
            KIND_U64 => Val::U64(u64::from_le_bytes(bytes.try_into().ok()?)),
            KIND_BYTES => Val::Bytes(bytes),
            _ => Val::Str(bytes),
        };
        Some((Field::from_field_id(u32::from(field)), value))
    }
}

impl Document for EntryDoc {
    type Value<'a> = Val<'a>;
    type FieldsValuesIter<'a> = Values<'a>;

    fn iter_fields_and_values(&self) -> Self::FieldsValuesIter<'_> {
        Values {
            doc: &self.buf[self.start..self.end],
            pos: 0,
        }
    }
}

/// Reads the entry stored in the document at `addr`.
pub(crate) fn load(searcher: &Searcher, f: &Fields, addr: DocAddress) -> crate::Result<Entry> {
    let doc: TantivyDocument = searcher.doc(addr)?;
    stored_entry(f, &doc).map_err(|reason| crate::Error::Corrupt { reason })
}

/// Reads the entry stored in a document.
pub(crate) fn stored_entry(
    f: &Fields,
    doc: &TantivyDocument,
) -> Result<mss_annuaire::Entry, String> {
    let bytes = doc
        .get_first(f.entry)
        .and_then(|v| v.as_bytes())
        .ok_or("a document has no stored entry")?;
    codec::decode(bytes).map_err(|e| format!("a stored entry does not read back: {e}"))
}
