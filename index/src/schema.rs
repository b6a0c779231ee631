//! The tantivy schema: which fields exist, how each is analysed, and how an [`Entry`] becomes a document.

use mss_annuaire::{BalType, Entry};
use tantivy::schema::{
    BytesOptions, Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Index, TantivyDocument};

use crate::analysis::{self, FoldTokenizer, Mode};

const WORD: &str = "mss_word";
const PREFIX_ALL: &str = "mss_prefix1";
const PREFIX_LONG: &str = "mss_prefix3";
const RAW: &str = "raw";

/// Shortest prefix looked up outside the name fields: 1–2 letter prefixes of organisations, places and
/// professions would match most of the directory and say little.
pub(crate) const MIN_OTHER_PREFIX: usize = 3;

/// The fields, resolved once per index.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fields {
    pub name: Field,
    pub name_pfx: Field,
    pub org: Field,
    pub org_pfx: Field,
    pub place: Field,
    pub place_pfx: Field,
    pub job: Field,
    pub job_pfx: Field,
    pub address: Field,
    pub bal_type: Field,
    pub profession: Field,
    pub speciality: Field,
    pub department: Field,
    pub postal_code: Field,
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
    b.add_text_field("name_pfx", text(PREFIX_ALL));
    b.add_text_field("org", text(WORD));
    b.add_text_field("org_pfx", text(PREFIX_LONG));
    b.add_text_field("place", text(WORD));
    b.add_text_field("place_pfx", text(PREFIX_LONG));
    b.add_text_field("job", text(WORD));
    b.add_text_field("job_pfx", text(PREFIX_LONG));
    for raw in [
        "address",
        "bal_type",
        "profession",
        "speciality",
        "department",
        "postal_code",
    ] {
        b.add_text_field(raw, text(RAW));
    }
    b.add_u64_field(NAME_KEY, NumericOptions::default().set_fast());
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
            org_pfx: f("org_pfx")?,
            place: f("place")?,
            place_pfx: f("place_pfx")?,
            job: f("job")?,
            job_pfx: f("job_pfx")?,
            address: f("address")?,
            bal_type: f("bal_type")?,
            profession: f("profession")?,
            speciality: f("speciality")?,
            department: f("department")?,
            postal_code: f("postal_code")?,
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
    m.register(
        PREFIX_ALL,
        TextAnalyzer::from(FoldTokenizer::new(Mode::Prefix { min: 1 })),
    );
    m.register(
        PREFIX_LONG,
        TextAnalyzer::from(FoldTokenizer::new(Mode::Prefix {
            min: MIN_OTHER_PREFIX,
        })),
    );
}

/// A person name with its spaces turned into hyphens, so that `Le Gall` is also indexed as `legall` and
/// `de La Tour` as `latour`, `delatour`.
fn glue_spaces(name: &str) -> std::borrow::Cow<'_, str> {
    if name.contains(char::is_whitespace) {
        name.split_whitespace().collect::<Vec<_>>().join("-").into()
    } else {
        name.into()
    }
}

/// Builds the document of an entry (the caller has already skipped red-listed entries).
pub(crate) fn document(f: &Fields, e: &Entry) -> serde_json::Result<TantivyDocument> {
    let mut doc = TantivyDocument::new();
    fn both(doc: &mut TantivyDocument, word: Field, pfx: Field, text: &str) {
        doc.add_text(word, text);
        doc.add_text(pfx, text);
    }
    let has_person_name = e.last_name.is_some() || e.first_name.is_some();
    for n in [&e.last_name, &e.first_name].into_iter().flatten() {
        both(&mut doc, f.name, f.name_pfx, &glue_spaces(n));
    }
    let org_names = [&e.organisation_name, &e.organisation_trade_name, &e.service];
    if e.bal_type != BalType::Per || !has_person_name {
        // organisational boxes are known by their structure and service
        for o in org_names.into_iter().flatten() {
            both(&mut doc, f.name, f.name_pfx, o);
        }
    }
    for o in org_names.into_iter().flatten() {
        both(&mut doc, f.org, f.org_pfx, o);
    }
    if let Some(city) = e.city() {
        both(&mut doc, f.place, f.place_pfx, city);
    }
    if let Some(pc) = &e.postal_code {
        both(&mut doc, f.place, f.place_pfx, pc);
        doc.add_text(f.postal_code, pc.trim());
    }
    if let Some(d) = &e.department {
        doc.add_text(f.place, d.as_str());
        doc.add_text(f.department, d.as_str());
    }
    for s in &e.other_structures {
        for o in [&s.organisation_name, &s.service].into_iter().flatten() {
            both(&mut doc, f.org, f.org_pfx, o);
        }
        if let Some(city) = &s.city {
            both(&mut doc, f.place, f.place_pfx, city);
        }
        if let Some(pc) = &s.postal_code {
            both(&mut doc, f.place, f.place_pfx, pc);
            doc.add_text(f.postal_code, pc.trim());
            if let Some(d) = mss_annuaire::Department::from_postal_code(pc) {
                doc.add_text(f.department, d.as_str());
            }
        }
    }
    for c in [&e.profession, &e.speciality].into_iter().flatten() {
        if !c.label.is_empty() {
            both(&mut doc, f.job, f.job_pfx, &c.label);
        }
    }
    if let Some(p) = &e.profession {
        doc.add_text(f.profession, p.code.trim());
    }
    if let Some(s) = &e.speciality {
        doc.add_text(f.speciality, s.code.trim());
    }
    doc.add_text(f.address, e.address.as_str());
    doc.add_text(f.bal_type, e.bal_type.code());
    doc.add_u64(f.name_key, analysis::name_key(&e.display_name()));
    doc.add_u64(f.addr_hash, analysis::addr_hash(e.address.as_str()));
    doc.add_bytes(f.entry, &serde_json::to_vec(e)?);
    Ok(doc)
}

/// Reads the entry stored in a document.
pub(crate) fn stored_entry(f: &Fields, doc: &TantivyDocument) -> Result<Entry, String> {
    use tantivy::schema::Value;
    let bytes = doc
        .get_first(f.entry)
        .and_then(|v| v.as_bytes())
        .ok_or("a document has no stored entry")?;
    serde_json::from_slice(bytes).map_err(|e| format!("a stored entry does not read back: {e}"))
}
