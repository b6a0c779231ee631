//! A received message's files written out for the consumer (`mss inbox export`): its attachments and the
//! documents of its IHE_XDM archives, under names made safe, 0600 files in a 0700 directory. Health data
//! goes straight to the directory asked for, never through a temporary one; on failure what was written is
//! removed.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use mss_message::ReceivedMessage;
use mss_types::text::safe_file_name;

use crate::error::{Error, Result};

/// One file written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Exported {
    /// `attachment` or `document` (a document of an IHE_XDM archive, under `documents/`).
    pub kind: &'static str,
    /// The name it had (attachment file name, or the document's `URI` in METADATA.XML).
    pub name: String,
    /// Where it was written.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
}

/// Writes `message`'s attachments into `dir` and its XDM documents into `dir/documents/`; two files of the
/// same safe name get `-2`, `-3`… before the extension. Refuses to overwrite: every file is created new.
pub fn export(message: &ReceivedMessage, dir: &Path) -> Result<Vec<Exported>> {
    let mut planned: Vec<(&'static str, String, PathBuf, &[u8])> = Vec::new();
    let docs = dir.join("documents");
    let mut taken = std::collections::HashSet::new();
    for (i, a) in message.attachments.iter().enumerate() {
        let name = safe_file_name(&a.filename, &format!("attachment-{}", i + 1));
        let path = unique(dir, &name, &mut taken);
        planned.push(("attachment", a.filename.clone(), path, &a.content));
    }
    for (i, d) in message.documents().enumerate() {
        let name = safe_file_name(d.name(), &format!("document-{}", i + 1));
        let path = unique(&docs, &name, &mut taken);
        planned.push(("document", d.name().to_owned(), path, &d.content));
    }
    make_dir(dir)?;
    if planned.iter().any(|p| p.0 == "document") {
        make_dir(&docs)?;
    }
    let mut out = Vec::with_capacity(planned.len());
    for (kind, name, path, bytes) in planned {
        if let Err(e) = write_new(&path, bytes) {
            for done in &out {
                let done: &Exported = done;
                let _ = std::fs::remove_file(&done.path);
            }
            return Err(e);
        }
        out.push(Exported {
            kind,
            name,
            size: bytes.len() as u64,
            path,
        });
    }
    Ok(out)
}

fn unique(dir: &Path, name: &str, taken: &mut std::collections::HashSet<PathBuf>) -> PathBuf {
    let (stem, ext) = match name.rsplit_once('.') {
        Some((s, e)) if !s.is_empty() => (s, format!(".{e}")),
        _ => (name, String::new()),
    };
    let mut path = dir.join(name);
    let mut n = 2;
    while !taken.insert(path.clone()) {
        path = dir.join(format!("{stem}-{n}{ext}"));
        n += 1;
    }
    path
}

fn failed(path: &Path, e: std::io::Error) -> Error {
    Error::Export {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

fn make_dir(dir: &Path) -> Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir).map_err(|e| failed(dir, e))
}

fn write_new(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let write = || -> std::io::Result<()> {
        let mut f = o.open(path)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(path);
        failed(path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachments_are_written_under_safe_unique_names_0600() {
        let raw = b"From: a@x.fr\r\nMessage-ID: <e@x>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nhi\r\n\
--B\r\nContent-Type: application/pdf; name=\"../../cr.pdf\"\r\n\
Content-Disposition: attachment; filename=\"../../cr.pdf\"\r\n\r\n%PDF-1\r\n\
--B\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"cr.pdf\"\r\n\r\n%PDF-2\r\n\
--B--\r\n";
        let m = mss_message::read_message(raw).expect("read");
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out");
        let got = export(&m, &out).expect("export");
        let names: Vec<_> = got
            .iter()
            .map(|e| {
                (
                    e.kind,
                    e.name.as_str(),
                    e.path.strip_prefix(&out).expect("inside"),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("attachment", "../../cr.pdf", Path::new("cr.pdf")),
                ("attachment", "cr.pdf", Path::new("cr-2.pdf")),
            ]
        );
        assert_eq!(std::fs::read(out.join("cr.pdf")).expect("read"), b"%PDF-1");
        assert_eq!(
            std::fs::read(out.join("cr-2.pdf")).expect("read"),
            b"%PDF-2"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode(&out.join("cr.pdf")), 0o600);
            assert_eq!(mode(&out), 0o700);
        }
        // never overwrites: a second export fails and leaves the first files as they were
        assert!(matches!(export(&m, &out), Err(Error::Export { .. })));
        assert_eq!(
            std::fs::read(out.join("cr-2.pdf")).expect("read"),
            b"%PDF-2"
        );
    }
}
