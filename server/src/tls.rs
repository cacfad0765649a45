//! TLS for `runnel server`: a certificate and key from PEM files, or one
//! made for localhost on first start and kept in the data dir; the rustls
//! configuration the accept loop (`listener.rs`) hands connections to.
//!
//! ALPN offers `h2` before `http/1.1`, so HTTP/2 clients (SubscribeToShard,
//! the SDKs' HTTP/2 clients) get HTTP/2 over TLS.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;

/// The names a self-signed certificate is made for.
pub const SELF_SIGNED_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// `--tls MODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TlsMode {
    /// A certificate for localhost, 127.0.0.1 and ::1, made on first start
    /// and kept in <data dir>/tls; clients trust <data dir>/tls/cert.pem
    SelfSigned,
    /// Plain HTTP, whatever the config file says
    Off,
}

/// The `[tls]` table of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    self_signed: Option<bool>,
    allow_plain: Option<bool>,
}

/// The TLS flags of `runnel server` (or their `RUNNEL_TLS*` variables).
#[derive(Debug, Default)]
pub struct TlsFlags {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub mode: Option<TlsMode>,
    pub allow_plain: bool,
}

/// TLS settings, resolved: the server speaks TLS with this identity.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsSettings {
    pub identity: Identity,
    /// Serve plain HTTP as well on the same port (a connection whose first
    /// byte is not a TLS handshake's).
    pub allow_plain: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Identity {
    /// PEM files: the certificate chain, leaf first, and its private key
    /// (PKCS#8, PKCS#1 RSA or SEC1 EC).
    Files { cert: PathBuf, key: PathBuf },
    /// `<data dir>/tls/cert.pem` and `key.pem`, generated when missing.
    SelfSigned,
}

impl TlsSettings {
    /// Flags (with their environment variables) over the file: when the
    /// flags name a certificate or a mode, the file's identity is not
    /// looked at. None: no TLS.
    pub fn resolve(flags: TlsFlags, file: TlsFile) -> Result<Option<Self>, String> {
        let allow_plain = flags.allow_plain || file.allow_plain.unwrap_or(false);
        let identity = if flags.cert.is_some() || flags.key.is_some() || flags.mode.is_some() {
            match (flags.mode, flags.cert, flags.key) {
                (Some(TlsMode::Off), None, None) => None,
                (Some(TlsMode::SelfSigned), None, None) => Some(Identity::SelfSigned),
                (None, Some(cert), Some(key)) => Some(Identity::Files { cert, key }),
                (Some(_), _, _) => {
                    return Err("--tls cannot be given with --tls-cert or --tls-key".into());
                }
                (None, _, _) => {
                    return Err("--tls-cert and --tls-key must be given together".into());
                }
            }
        } else {
            match (file.self_signed.unwrap_or(false), file.cert, file.key) {
                (false, None, None) => None,
                (true, None, None) => Some(Identity::SelfSigned),
                (false, Some(cert), Some(key)) => Some(Identity::Files { cert, key }),
                (true, _, _) => {
                    return Err("tls.self_signed cannot be set with tls.cert or tls.key".into());
                }
                (false, _, _) => return Err("tls.cert and tls.key must be set together".into()),
            }
        };
        Ok(identity.map(|identity| TlsSettings {
            identity,
            allow_plain,
        }))
    }
}

/// What the accept loop needs to serve TLS.
pub struct Tls {
    pub acceptor: tokio_rustls::TlsAcceptor,
    pub allow_plain: bool,
}

/// Loads (or, self-signed, makes) the certificate and key. Errors name
/// the file at fault.
pub fn load(settings: &TlsSettings, data_dir: &Path) -> anyhow::Result<Tls> {
    let (cert, key) = match &settings.identity {
        Identity::Files { cert, key } => (cert.clone(), key.clone()),
        Identity::SelfSigned => self_signed(data_dir)?,
    };
    let config = server_config(&cert, &key)?;
    tracing::info!(
        cert = %cert.display(),
        plain_http = settings.allow_plain,
        "TLS on; clients that do not trust the certificate's issuer take this file as their CA bundle"
    );
    Ok(Tls {
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        allow_plain: settings.allow_plain,
    })
}

/// rustls on ring, TLS 1.2 and 1.3, ALPN `h2` then `http/1.1`.
fn server_config(cert_path: &Path, key_path: &Path) -> anyhow::Result<rustls::ServerConfig> {
    let cert_pem = std::fs::read(cert_path)
        .with_context(|| format!("cannot read the TLS certificate {}", cert_path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("invalid PEM in the TLS certificate {}", cert_path.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "no certificate (a PEM `BEGIN CERTIFICATE` block) in {}",
        cert_path.display()
    );
    let key_pem = std::fs::read(key_path)
        .with_context(|| format!("cannot read the TLS key {}", key_path.display()))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|error| match error {
        rustls::pki_types::pem::Error::NoItemsFound => anyhow::anyhow!(
            "no private key (a PEM PKCS#8, RSA or EC `PRIVATE KEY` block) in {}",
            key_path.display()
        ),
        error => anyhow::anyhow!("invalid PEM in the TLS key {}: {error}", key_path.display()),
    })?;
    // ring rather than aws-lc-rs, which would compile C: rustls 0.23.48
    // deprecates ring's provider for having no post-quantum key exchange.
    #[allow(deprecated, reason = "ring is the provider this build has")]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|error| {
            anyhow::anyhow!(
                "the TLS key {} does not go with the certificate {}: {error}",
                key_path.display(),
                cert_path.display()
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// `<data dir>/tls/cert.pem` and `key.pem`: reused when both are there,
/// made for [`SELF_SIGNED_NAMES`] otherwise.
fn self_signed(data_dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let dir = data_dir.join("tls");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    if cert.is_file() && key.is_file() {
        return Ok((cert, key));
    }
    if cert.exists() || key.exists() {
        tracing::warn!(dir = %dir.display(), "half of the self-signed certificate and key is missing; making a new pair");
    }
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut params = rcgen::CertificateParams::new(
        SELF_SIGNED_NAMES
            .iter()
            .map(|name| name.to_string())
            .collect::<Vec<_>>(),
    )
    .context("self-signed certificate names")?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Runnel self-signed (localhost)");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let signing_key = rcgen::KeyPair::generate().context("generating a TLS key")?;
    let certificate = params
        .self_signed(&signing_key)
        .context("signing the self-signed certificate")?;
    // The key first: a certificate on disk means its key is there too.
    write_new(&key, signing_key.serialize_pem().as_bytes(), 0o600)?;
    write_new(&cert, certificate.pem().as_bytes(), 0o644)?;
    tracing::info!(cert = %cert.display(), names = ?SELF_SIGNED_NAMES, "made a self-signed TLS certificate");
    Ok((cert, key))
}

/// Writes `path` whole or not at all (a temporary file renamed over it),
/// with this mode from the start.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let temp = path.with_extension("pem.tmp");
    let _ = std::fs::remove_file(&temp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temp)
        .with_context(|| format!("cannot create {}", temp.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", temp.display()))?;
    std::fs::rename(&temp, path)
        .with_context(|| format!("cannot rename {} to {}", temp.display(), path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(cert: Option<&str>, key: Option<&str>, mode: Option<TlsMode>) -> TlsFlags {
        TlsFlags {
            cert: cert.map(PathBuf::from),
            key: key.map(PathBuf::from),
            mode,
            allow_plain: false,
        }
    }

    fn file(text: &str) -> TlsFile {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn flags_override_the_file_and_conflicts_are_errors() {
        let self_signed = file("self_signed = true\nallow_plain = true\n");
        let settings = TlsSettings::resolve(flags(Some("c.pem"), Some("k.pem"), None), self_signed)
            .unwrap()
            .unwrap();
        assert_eq!(
            settings.identity,
            Identity::Files {
                cert: "c.pem".into(),
                key: "k.pem".into()
            }
        );
        assert!(settings.allow_plain, "allow_plain comes from the file");
        let off = TlsSettings::resolve(
            flags(None, None, Some(TlsMode::Off)),
            file("self_signed = true\n"),
        );
        assert_eq!(off, Ok(None));
        assert!(
            TlsSettings::resolve(flags(Some("c.pem"), None, None), TlsFile::default()).is_err()
        );
        assert!(
            TlsSettings::resolve(
                flags(Some("c"), Some("k"), Some(TlsMode::SelfSigned)),
                TlsFile::default()
            )
            .is_err()
        );
        assert_eq!(
            TlsSettings::resolve(TlsFlags::default(), TlsFile::default()),
            Ok(None)
        );
    }

    #[test]
    fn the_file_names_an_identity() {
        let settings = TlsSettings::resolve(TlsFlags::default(), file("self_signed = true\n"))
            .unwrap()
            .unwrap();
        assert_eq!(settings.identity, Identity::SelfSigned);
        assert!(!settings.allow_plain);
        let err = TlsSettings::resolve(
            TlsFlags::default(),
            file("self_signed = true\ncert = \"c.pem\"\n"),
        )
        .unwrap_err();
        assert!(err.contains("tls.self_signed"), "{err}");
        let err = TlsSettings::resolve(TlsFlags::default(), file("key = \"k.pem\"\n")).unwrap_err();
        assert!(err.contains("tls.cert"), "{err}");
        assert!(toml::from_str::<TlsFile>("certificate = \"c.pem\"\n").is_err());
    }

    #[test]
    fn a_self_signed_certificate_is_made_once_and_loads() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let first = std::fs::read(&cert).unwrap();
        let config = server_config(&cert, &key).unwrap();
        assert_eq!(config.alpn_protocols[0], b"h2");
        self_signed(dir.path()).unwrap();
        assert_eq!(std::fs::read(&cert).unwrap(), first, "reused, not remade");
    }

    #[test]
    fn a_key_of_another_certificate_is_refused_by_name() {
        let one = tempfile::tempdir().unwrap();
        let two = tempfile::tempdir().unwrap();
        let (cert, _) = self_signed(one.path()).unwrap();
        let (_, other_key) = self_signed(two.path()).unwrap();
        let err = format!("{:#}", server_config(&cert, &other_key).unwrap_err());
        assert!(err.contains(&other_key.display().to_string()), "{err}");
        let missing = one.path().join("missing.pem");
        let err = format!("{:#}", server_config(&missing, &other_key).unwrap_err());
        assert!(err.contains("missing.pem"), "{err}");
        let err = format!("{:#}", server_config(&cert, &cert).unwrap_err());
        assert!(err.contains("no private key"), "{err}");
    }
}
