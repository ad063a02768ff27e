//! TLS for HTTPS and RTMPS (rustls): a certificate chain and key from PEM files, or a
//! development certificate made at start.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Where the certificate comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// PEM files: the chain (leaf first) and its private key.
    Files {
        cert: std::path::PathBuf,
        key: std::path::PathBuf,
    },
    /// A self-signed certificate for these names, made at start (browsers and players
    /// warn about it or must be told to accept it: for development only).
    SelfSigned { names: Vec<String> },
}

/// The two TLS configurations a server needs: HTTPS offers HTTP/2 and HTTP/1.1 by ALPN,
/// RTMPS none.
#[derive(Clone)]
pub struct Tls {
    pub https: Arc<ServerConfig>,
    pub rtmps: Arc<ServerConfig>,
}

impl Tls {
    pub fn load(source: &Source) -> anyhow::Result<Tls> {
        let (chain, key) = match source {
            Source::Files { cert, key } => (read_chain(cert)?, read_key(key)?),
            Source::SelfSigned { names } => self_signed(names)?,
        };
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let base = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .context("the TLS key does not match the certificate")?;
        let mut https = base.clone();
        https.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Tls {
            https: Arc::new(https),
            rtmps: Arc::new(base),
        })
    }
}

fn read_chain(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading certificates from {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing certificates in {}", path.display()))?;
    if chain.is_empty() {
        bail!("no certificate in {}", path.display());
    }
    Ok(chain)
}

fn read_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path).with_context(|| format!("reading a private key from {}", path.display()))
}

fn self_signed(names: &[String]) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let made = rcgen::generate_simple_self_signed(names.to_vec()).context("making a self-signed certificate")?;
    let key = PrivateKeyDer::try_from(made.signing_key.serialize_der())
        .map_err(|e| anyhow::anyhow!("self-signed key: {e}"))?;
    Ok((vec![made.cert.der().clone()], key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_self_signed_certificates_load_and_a_wrong_file_is_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("livescope-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        std::fs::write(dir.join("cert.pem"), made.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), made.signing_key.serialize_pem()).unwrap();
        let files = Source::Files {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        let tls = Tls::load(&files).unwrap();
        assert_eq!(tls.https.alpn_protocols[0], b"h2");
        assert!(
            Tls::load(&Source::SelfSigned {
                names: vec!["localhost".into()]
            })
            .is_ok()
        );
        let swapped = Source::Files {
            cert: dir.join("key.pem"),
            key: dir.join("cert.pem"),
        };
        let err = Tls::load(&swapped).err().unwrap();
        assert!(format!("{err:#}").contains("certificate"), "{err:#}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
