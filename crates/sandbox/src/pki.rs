//! The sandbox's test PKI, made with the `openssl` command (as IGC Santé's: RSA 2048): a CA, the fronts'
//! server certificate, and an APP client certificate shaped like an IGC Santé ORG AUTH_CLI one
//! (docs/mssante.md L3), as PEM and as a PKCS#12 file without password.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{DOMAIN, Error, Result};

/// The files of the PKI.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The CA certificate (the trust root clients are given).
    pub ca: PathBuf,
    /// The fronts' certificate and key.
    pub server_cert: PathBuf,
    /// The fronts' private key.
    pub server_key: PathBuf,
    /// The APP client certificate (PEM).
    pub client_cert: PathBuf,
    /// Its private key (PEM).
    pub client_key: PathBuf,
}

/// Makes the PKI in `dir` unless it is there.
pub fn ensure(dir: &Path) -> Result<Pki> {
    let pki = Pki {
        ca: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
        client_cert: dir.join("client.pem"),
        client_key: dir.join("client.key"),
    };
    if dir.join("done").exists() {
        return Ok(pki);
    }
    std::fs::create_dir_all(dir).map_err(Error::io(format!("creating {}", dir.display())))?;
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "3650",
            "-subj",
            "/C=FR/O=mss sandbox/CN=MSS SANDBOX TEST IGC-SANTE ROOT",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    )?;
    leaf(
        dir,
        "server",
        "/C=FR/O=mss sandbox/CN=localhost",
        &format!(
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,DNS:mail.{DOMAIN},IP:127.0.0.1\n"
        ),
    )?;
    leaf(
        dir,
        "client",
        &format!("/C=FR/ST=Paris (75)/O=LABORATOIRE SANDBOX/OU=499700000000001/CN=labo.{DOMAIN}"),
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
    )?;
    openssl(
        dir,
        &[
            "pkcs12",
            "-export",
            "-inkey",
            "client.key",
            "-in",
            "client.pem",
            "-certfile",
            "ca.pem",
            "-name",
            "client",
            "-out",
            "client.p12",
            "-passout",
            "pass:",
        ],
    )?;
    std::fs::write(dir.join("done"), b"").map_err(Error::io("writing the PKI mark"))?;
    Ok(pki)
}

fn leaf(dir: &Path, name: &str, subject: &str, extensions: &str) -> Result<()> {
    let ext = dir.join(format!("{name}.ext"));
    std::fs::write(&ext, extensions).map_err(Error::io(format!("writing {}", ext.display())))?;
    let (key, csr, pem) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
    );
    openssl(
        dir,
        &[
            "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj",
            subject,
        ],
    )?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "825",
            "-out",
            &pem,
            "-extfile",
            &format!("{name}.ext"),
        ],
    )?;
    let _ = std::fs::remove_file(dir.join(&csr));
    let _ = std::fs::remove_file(&ext);
    Ok(())
}

fn openssl(dir: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::Missing {
                program: "openssl",
                install: "apt-get install openssl (or scripts/install-deps.sh)",
            },
            _ => Error::Io {
                what: "running openssl".into(),
                source: e,
            },
        })?;
    if !out.status.success() {
        return Err(Error::Crypto(format!(
            "openssl {} failed: {}",
            args.first().copied().unwrap_or(""),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}
