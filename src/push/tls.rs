//! TLS for `https://` push URLs: rustls with Mozilla's roots built in
//! (webpki-roots, what ureq uses by default), plus the CA certificates of
//! `--push-ca-file` for a server whose certificate a private CA issued.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use super::PushError;
use crate::symbolize::{open_regular, Links};

/// The most of a CA file read: a system bundle is about 200 KiB.
const MAX_CA_FILE: u64 = 16 << 20;

/// A client config trusting Mozilla's roots and every certificate in
/// `ca_file` (PEM). A file with no usable certificate is an error, so a
/// wrong path or format shows at start, not as failed pushes later.
pub(crate) fn client_config(ca_file: &Path) -> Result<Arc<rustls::ClientConfig>, PushError> {
    let bad = |why: String| PushError::Tls(format!("--push-ca-file {}: {why}", ca_file.display()));
    let pem = read_small_file(ca_file).map_err(|e| bad(e.to_string()))?;
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| bad(format!("not PEM certificates: {e}")))?;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let (added, unusable) = roots.add_parsable_certificates(certificates);
    if added == 0 {
        return Err(bad(format!(
            "no usable CA certificate ({unusable} unusable): give the CA's certificate \
             as PEM (-----BEGIN CERTIFICATE-----)"
        )));
    }
    // The provider is named, not taken from the process default, which
    // would depend on which rustls features the build happened to enable.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PushError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A regular file's bytes (never a FIFO's), refused past [`MAX_CA_FILE`].
fn read_small_file(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let (file, _) = open_regular(path, Links::Follow)?;
    let mut bytes = Vec::new();
    file.take(MAX_CA_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_CA_FILE {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB: not a CA file",
            MAX_CA_FILE >> 20
        )));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_without_certificates_is_refused_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        let error = client_config(&empty).unwrap_err().to_string();
        assert!(error.contains("no usable CA certificate"), "{error}");
        let missing = dir.path().join("missing.pem");
        let error = client_config(&missing).unwrap_err().to_string();
        assert!(error.contains("missing.pem"), "{error}");
        let error = client_config(dir.path()).unwrap_err().to_string();
        assert!(error.contains("not a regular file"), "{error}");
    }
}
