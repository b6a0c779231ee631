//! The tantivy schema: which fields exist, how each is analysed, and how an [`Entry`] becomes a document.

use std::sync::OnceLock;

use mss_annuaire::{BalType, Department, Entry};
use tantivy::schema::document::{ReferenceValue, ReferenceValueLeaf};
use tantivy::schema::{
    BytesOptions, Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions,
    Value,
};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Document, Index, TantivyDocument};

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
}

/// Field names of the fast fields read by the collector.
pub(crate) const NAME_KEY: &str = "name_key";
pub(crate) const ADDR_HASH: &str = "addr_hash";

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

/// An entry as a tantivy document.
///
/// Values borrow from the entry; what has to be computed (the stored record, the sort keys, glued names)
/// is computed on first use, which happens on the indexing threads rather than the caller's.
pub(crate) struct EntryDoc {
    fields: Fields,
    /// Boxed: documents travel through tantivy's channel in batches, moved by value.
    entry: Box<Entry>,
    derived: OnceLock<Derived>,
}

struct Derived {
    record: Vec<u8>,
    name_key: u64,
    addr_hash: u64,
    /// Last and first name with spaces glued, when they have spaces.
    glued: [Option<String>; 2],
    /// Departments of the other structures.
    departments: Vec<Department>,
}

impl EntryDoc {
    pub(crate) fn new(fields: Fields, entry: Box<Entry>) -> Self {
        EntryDoc {
            fields,
            entry,
            derived: OnceLock::new(),
        }
    }

    fn derived(&self) -> &Derived {
        self.derived.get_or_init(|| {
            let e = &self.entry;
            let mut record = Vec::with_capacity(320);
            codec::encode(e, &mut record);
            Derived {
                record,
                name_key: analysis::name_key(&e.display_name()),
                addr_hash: analysis::addr_hash(e.address.as_str()),
                glued: [
                    e.last_name.as_deref().and_then(glue_spaces),
                    e.first_name.as_deref().and_then(glue_spaces),
                ],
                departments: e
                    .other_structures
                    .iter()
                    .filter_map(|s| s.postal_code.as_deref())
                    .filter_map(Department::from_postal_code)
                    .collect(),
            }
        })
    }

    /// Every (field, value) of the document.
    fn values(&self) -> Vec<(Field, Val<'_>)> {
        let f = &self.fields;
        let e = &self.entry;
        let d = self.derived();
        let mut v: Vec<(Field, Val<'_>)> = Vec::with_capacity(32);
        fn name<'a>(v: &mut Vec<(Field, Val<'a>)>, f: &Fields, s: &'a str) {
            v.push((f.name, Val::Str(s)));
            v.push((f.name_pfx, Val::Str(s)));
        }
        let persons = [&e.last_name, &e.first_name];
        for (n, glued) in persons.iter().zip(&d.glued) {
            if let Some(n) = glued.as_deref().or(n.as_deref()) {
                name(&mut v, f, n);
            }
        }
        let org_names = [&e.organisation_name, &e.organisation_trade_name, &e.service];
        let has_person_name = persons.iter().any(|n| n.is_some());
        if e.bal_type != BalType::Per || !has_person_name {
            // organisational boxes are known by their structure and service
            for o in org_names.iter().filter_map(|o| o.as_deref()) {
                name(&mut v, f, o);
            }
        }
        for o in org_names.iter().filter_map(|o| o.as_deref()) {
            v.push((f.org, Val::Str(o)));
        }
        if let Some(city) = e.city() {
            v.push((f.place, Val::Str(city)));
        }
        if let Some(pc) = e.postal_code.as_deref().map(str::trim) {
            v.push((f.place, Val::Str(pc)));
        }
        if let Some(dep) = &e.department {
            v.push((f.place, Val::Str(dep.as_str())));
        }
        for s in &e.other_structures {
            for o in [&s.organisation_name, &s.service].into_iter().flatten() {
                v.push((f.org, Val::Str(o)));
            }
            if let Some(city) = &s.city {
                v.push((f.place, Val::Str(city)));
            }
            if let Some(pc) = s.postal_code.as_deref().map(str::trim) {
                v.push((f.place, Val::Str(pc)));
            }
        }
        for dep in &d.departments {
            v.push((f.place, Val::Str(dep.as_str())));
        }
        for c in [&e.profession, &e.speciality].into_iter().flatten() {
            v.push((f.job, Val::Str(&c.label)));
        }
        if let Some(p) = &e.profession {
            v.push((f.profession, Val::Str(p.code.trim())));
        }
        if let Some(s) = &e.speciality {
            v.push((f.speciality, Val::Str(s.code.trim())));
        }
        v.push((f.bal_type, Val::Str(e.bal_type.code())));
        v.push((f.name_key, Val::U64(d.name_key)));
        v.push((f.addr_hash, Val::U64(d.addr_hash)));
        v.push((f.entry, Val::Bytes(&d.record)));
        v
    }
}

/// A value of an [`EntryDoc`]: text, number or bytes, borrowed.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Val<'a> {
    Str(&'a str),
    U64(u64),
    Bytes(&'a [u8]),
}

impl<'a> Value<'a> for Val<'a> {
    type ArrayIter = std::iter::Empty<Self>;
    type ObjectIter = std::iter::Empty<(&'a str, Self)>;

    fn as_value(&self) -> ReferenceValue<'a, Self> {
        ReferenceValue::Leaf(match *self {
            Val::Str(s) => ReferenceValueLeaf::Str(s),
            Val::U64(n) => ReferenceValueLeaf::U64(n),
            Val::Bytes(b) => ReferenceValueLeaf::Bytes(b),
        })
    }
}

impl Document for EntryDoc {
    type Value<'a> = Val<'a>;
    type FieldsValuesIter<'a> = std::vec::IntoIter<(Field, Val<'a>)>;

    fn iter_fields_and_values(&self) -> Self::FieldsValuesIter<'_> {
        self.values().into_iter()
    }
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
