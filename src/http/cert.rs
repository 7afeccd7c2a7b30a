//! The HTTPS certificate: a PEM pair named in the config (certbot, a local
//! CA), or a self-signed pair generated once into the state directory and
//! reused, so a browser's exception for it survives restarts.

use std::fs::{DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::ParsedCertificate;
use rustls::ServerConfig;

/// Why there is no certificate to serve HTTPS with; each names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// No state directory to keep a self-signed pair in.
    #[error("{0}")]
    NoStateDir(String),
    #[error("reading {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("{}: not a PEM certificate: {source}", path.display())]
    NotPem { path: PathBuf, source: pem::Error },
    #[error("{}: no PEM certificate in it", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{}: no usable PEM private key: {source}", path.display())]
    NoKey { path: PathBuf, source: pem::Error },
    #[error("the private key in {} does not belong to the certificate in {}", key.display(), cert.display())]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("{} with {}: {source}", cert.display(), key.display())]
    Pair {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
    #[error("TLS setup: {0}")]
    Tls(rustls::Error),
    /// Creating, securing or writing the self-signed pair's files (`doing`
    /// is `creating`, `chmod` or `writing`).
    #[error("{doing} {}: {source}", path.display())]
    Store {
        doing: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("self-signed certificate: {step}: {source}")]
    Generate {
        step: &'static str,
        source: rcgen::Error,
    },
}

/// A loaded certificate and key, ready for the TLS listener.
pub struct Identity {
    pub config: Arc<ServerConfig>,
    /// SHA-256 of the (leaf) certificate, as `AA:BB:...`: what a browser shows.
    pub fingerprint: String,
    pub self_signed: bool,
    pub cert_path: PathBuf,
}

impl Identity {
    /// The configured pair, else the self-signed one under `state_dir`
    /// (generated on first use). Errors name the file at fault.
    pub fn load(
        cert: Option<&Path>,
        key: Option<&Path>,
        state_dir: impl FnOnce() -> Result<PathBuf, String>,
    ) -> Result<Identity, CertError> {
        match (cert, key) {
            (Some(cert), Some(key)) => load_pair(cert, key, false),
            _ => {
                let dir = state_dir().map_err(CertError::NoStateDir)?;
                self_signed(&dir.join("tls"), &local_names())
            }
        }
    }
}

/// Reads a PEM certificate chain and its private key, and checks they belong together.
pub fn load_pair(
    cert_path: &Path,
    key_path: &Path,
    self_signed: bool,
) -> Result<Identity, CertError> {
    let (cert_pem, key_pem) = (read(cert_path)?, read(key_path)?);
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| not_pem(cert_path, source))?;
    let leaf = chain.first().ok_or_else(|| CertError::NoCertificate {
        path: cert_path.into(),
    })?;
    let fingerprint = fingerprint(leaf);
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|source| CertError::NoKey {
        path: key_path.into(),
        source,
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(CertError::Tls)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| pair_error(cert_path, key_path, e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Identity {
        config: Arc::new(config),
        fingerprint,
        self_signed,
        cert_path: cert_path.to_path_buf(),
    })
}

fn pair_error(cert: &Path, key: &Path, e: rustls::Error) -> CertError {
    let (cert, key) = (cert.into(), key.into());
    match e {
        rustls::Error::InconsistentKeys(_) => CertError::KeyMismatch { cert, key },
        source => CertError::Pair { cert, key, source },
    }
}

fn read(path: &Path) -> Result<Vec<u8>, CertError> {
    std::fs::read(path).map_err(|source| CertError::Read {
        path: path.into(),
        source,
    })
}

fn not_pem(path: &Path, source: pem::Error) -> CertError {
    CertError::NotPem {
        path: path.into(),
        source,
    }
}

/// SHA-256 of a DER certificate as colon-separated upper-case hex.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    let hex: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}

/// Loads `dir/cert.pem` and `dir/key.pem`, generating them first if there is
/// no certificate yet. An existing one is kept even if it no longer names
/// every address in `names` (a new one would need a new browser exception).
fn self_signed(dir: &Path, names: &[String]) -> Result<Identity, CertError> {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    if !cert.exists() {
        generate(dir, &cert, &key, names)?;
        tracing::info!(
            "generated a self-signed certificate for {}",
            names.join(", ")
        );
    }
    let identity = load_pair(&cert, &key, true)?;
    let der = CertificateDer::from_pem_slice(&read(&cert)?).map_err(|e| not_pem(&cert, e))?;
    for name in uncovered(&der, names) {
        tracing::warn!(
            "{} does not cover {name} (kept so browser exceptions stay valid; delete it to make a new one)",
            cert.display()
        );
    }
    Ok(identity)
}

fn generate(dir: &Path, cert: &Path, key: &Path, names: &[String]) -> Result<(), CertError> {
    let failed = |step| move |source| CertError::Generate { step, source };
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(store_error("creating", dir))?;
    // `recursive` leaves an existing directory's mode alone.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(store_error("chmod", dir))?;
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(failed("names"))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "telepi");
    let pair = rcgen::KeyPair::generate().map_err(failed("key"))?;
    let certificate = params.self_signed(&pair).map_err(failed("signing"))?;
    // The key first: a certificate on disk means the pair is complete.
    write_file(key, &pair.serialize_pem(), 0o600)?;
    write_file(cert, &certificate.pem(), 0o644)
}

fn write_file(path: &Path, text: &str, mode: u32) -> Result<(), CertError> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(store_error("writing", path))
}

fn store_error(doing: &'static str, path: &Path) -> impl FnOnce(io::Error) -> CertError {
    let path = path.to_path_buf();
    move |source| CertError::Store {
        doing,
        path,
        source,
    }
}

/// The names a browser on the LAN may use for the robot: `localhost`, the
/// hostname, its mDNS `.local` name, loopback and every IPv4 address that is up.
fn local_names() -> Vec<String> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let mut names = vec!["localhost".to_string()];
    if !host.is_empty() && host != "localhost" {
        names.extend([host.clone(), format!("{host}.local")]);
    }
    names.push("127.0.0.1".into());
    let any: SocketAddr = "0.0.0.0:0".parse().expect("literal address");
    for addr in crate::rtc::net::candidate_addrs(any) {
        let ip = addr.ip().to_string();
        if !names.contains(&ip) {
            names.push(ip);
        }
    }
    names
}

/// The entries of `names` the certificate is not valid for.
fn uncovered<'a>(der: &CertificateDer<'_>, names: &'a [String]) -> Vec<&'a str> {
    let Ok(parsed) = ParsedCertificate::try_from(der) else {
        return names.iter().map(String::as_str).collect();
    };
    let covered = |name: &str| {
        let server_name = match name.parse::<IpAddr>() {
            Ok(ip) => ServerName::IpAddress(ip.into()),
            Err(_) => match ServerName::try_from(name) {
                Ok(n) => n,
                Err(_) => return false,
            },
        };
        rustls::client::verify_server_name(&parsed, &server_name).is_ok()
    };
    names
        .iter()
        .map(String::as_str)
        .filter(|n| !covered(n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("telepi-cert-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names(extra: &str) -> Vec<String> {
        ["localhost", "robot", "robot.local", "127.0.0.1", extra]
            .map(String::from)
            .to_vec()
    }

    #[test]
    fn self_signed_is_generated_once_then_reused() {
        let dir = temp_dir("reuse").join("tls");
        let first = self_signed(&dir, &names("10.0.0.7")).unwrap();
        assert!(first.self_signed);
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1, "{}", first.fingerprint);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join("key.pem")), 0o600);
        assert_eq!(mode(&dir), 0o700);
        let pem = std::fs::read(dir.join("cert.pem")).unwrap();
        let der = CertificateDer::from_pem_slice(&pem).unwrap();
        assert_eq!(fingerprint(&der), first.fingerprint);

        // The address changed: the certificate is kept and the gap is reported.
        let again = self_signed(&dir, &names("10.0.0.8")).unwrap();
        assert_eq!(again.fingerprint, first.fingerprint);
        assert_eq!(uncovered(&der, &names("10.0.0.8")), ["10.0.0.8"]);
        assert!(uncovered(&der, &names("10.0.0.7")).is_empty());
    }

    #[test]
    fn bad_pairs_are_explained_by_file_name() {
        let dir = temp_dir("bad");
        let (a, b) = (dir.join("a"), dir.join("b"));
        self_signed(&a, &names("10.0.0.1")).unwrap();
        self_signed(&b, &names("10.0.0.1")).unwrap();
        let (cert, key) = (a.join("cert.pem"), a.join("key.pem"));
        let err = |c: &Path, k: &Path| load_pair(c, k, false).err().expect("refused").to_string();
        assert!(load_pair(&cert, &key, false).is_ok());

        let mismatch = err(&cert, &b.join("key.pem"));
        assert!(
            mismatch.contains("does not belong") && mismatch.contains("b/key.pem"),
            "{mismatch}"
        );

        let missing = dir.join("nope.pem");
        let e = err(&missing, &key);
        assert!(
            e.starts_with(&format!("reading {}", missing.display())),
            "{e}"
        );

        let garbage = dir.join("garbage.pem");
        std::fs::write(&garbage, "hello\n").unwrap();
        let e = err(&garbage, &key);
        assert!(e.contains("garbage.pem: no PEM certificate"), "{e}");
        let e = err(&cert, &garbage);
        assert!(e.contains("garbage.pem: no usable PEM private key"), "{e}");

        // PEM armour around something that is not a certificate.
        let fake = dir.join("fake.pem");
        std::fs::write(
            &fake,
            "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = err(&fake, &key);
        assert!(e.contains("fake.pem"), "{e}");

        // The key given as the certificate and vice versa.
        let e = err(&key, &cert);
        assert!(e.contains("key.pem: no PEM certificate"), "{e}");
    }
}
