//! Whom a client trusts: the system's CAs plus those of the registry's certs.d directory, and
//! the client certificate it shows (containers-certs.d(5): `*.crt` CAs, `*.cert` + `*.key`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ureq::tls::{Certificate, ClientCert, PemItem, RootCerts, TlsConfig};

use crate::error::{Error, Result};

/// Where Debian, Fedora, SUSE and Alpine keep the system's CA bundle; `SSL_CERT_FILE` first.
const BUNDLES: [&str; 4] = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/ca-bundle.pem", "/etc/ssl/cert.pem"];

pub fn config(ca_files: &[PathBuf], client_cert: Option<(&Path, &Path)>, verify: bool) -> Result<TlsConfig> {
    let mut roots: Vec<Certificate<'static>> = Vec::new();
    let system = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from).into_iter().chain(BUNDLES.iter().map(PathBuf::from));
    if let Some(bundle) = system.into_iter().find(|p| p.is_file()) {
        roots.extend(certificates(&bundle)?);
    }
    for f in ca_files {
        let certs = certificates(f)?;
        if certs.is_empty() {
            return Err(Error::Config(format!("{}: no certificate in it", f.display())));
        }
        roots.extend(certs);
    }
    let mut b = TlsConfig::builder().root_certs(RootCerts::Specific(Arc::new(roots))).disable_verification(!verify);
    if let Some((cert, key)) = client_cert {
        let chain = certificates(cert)?;
        let pem = read(key)?;
        let key = ureq::tls::parse_pem(&pem)
            .filter_map(|i| match i {
                Ok(PemItem::PrivateKey(k)) => Some(k),
                _ => None,
            })
            .next()
            .ok_or_else(|| Error::Config(format!("{}: no private key in it", key.display())))?;
        if chain.is_empty() {
            return Err(Error::Config(format!("{}: no certificate in it", cert.display())));
        }
        b = b.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
    }
    Ok(b.build())
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io("read", path, e))
}

fn certificates(path: &Path) -> Result<Vec<Certificate<'static>>> {
    let pem = read(path)?;
    let mut out = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(c)) => out.push(c),
            Ok(_) => {}
            Err(e) => return Err(Error::Config(format!("{}: {e}", path.display()))),
        }
    }
    Ok(out)
}
