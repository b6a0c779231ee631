//! The bench messages: the vendor example request carrying a CDA R2 document of a chosen size, of
//! varied French clinical prose so that it compresses like a real one.
#![allow(dead_code)]

use mss_message::{ComposeRequest, Content};

/// Varied French clinical prose, so that the document compresses like a real one (not a repeat).
pub const WORDS: &[&str] = &[
    "patient",
    "patiente",
    "examen",
    "clinique",
    "normal",
    "tension",
    "artérielle",
    "fréquence",
    "cardiaque",
    "auscultation",
    "souffle",
    "systolique",
    "échographie",
    "ventricule",
    "gauche",
    "fraction",
    "d'éjection",
    "conservée",
    "traitement",
    "bêtabloquant",
    "posologie",
    "matin",
    "soir",
    "contrôle",
    "biologique",
    "créatinine",
    "kaliémie",
    "hémoglobine",
    "glyquée",
    "sous",
    "surveillance",
    "douleur",
    "thoracique",
    "effort",
    "dyspnée",
    "stade",
    "NYHA",
    "antécédents",
    "familiaux",
    "tabagisme",
    "sevré",
    "depuis",
    "ans",
    "hypertension",
    "diabète",
    "type",
    "2",
    "régime",
    "activité",
    "physique",
    "reprise",
    "progressive",
    "holter",
    "ECG",
    "rythme",
    "sinusal",
    "extrasystoles",
    "ventriculaires",
    "isolées",
    "monomorphes",
    "asymptomatiques",
    "consultation",
    "suivi",
    "dans",
    "trois",
    "mois",
    "avec",
    "bilan",
    "lipidique",
    "LDL",
    "objectif",
    "inférieur",
    "à",
    "0,70",
    "g/L",
    "statine",
    "bien",
    "tolérée",
    "myalgies",
];

pub fn cda_of_size(target: usize) -> String {
    let base = include_str!("../../../../examples/compose/cda-to-professional.xml");
    let anchor = "    </structuredBody>";
    let (head, tail) = base.split_at(base.find(anchor).unwrap_or(base.len()));
    let mut doc = String::with_capacity(target + 4096);
    doc.push_str(head);
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut section = 0;
    while doc.len() + tail.len() < target {
        section += 1;
        doc.push_str(&format!(
            "      <component>\n        <section>\n          <title>Observation {section}</title>\n          <text>\n"
        ));
        for _ in 0..6 {
            doc.push_str("            <paragraph>");
            for w in 0..24 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                if w > 0 {
                    doc.push(' ');
                }
                doc.push_str(WORDS[(seed % WORDS.len() as u64) as usize]);
            }
            doc.push_str(".</paragraph>\n");
        }
        doc.push_str("          </text>\n        </section>\n      </component>\n");
    }
    doc.push_str(tail);
    doc
}

pub fn request(cda: &str) -> ComposeRequest {
    let text = include_str!("../../../../examples/compose/cda-to-professional.json");
    let mut req: ComposeRequest = serde_json::from_str(text).expect("example request");
    req.documents[0].cda = Content::Text(cda.to_string());
    req
}
