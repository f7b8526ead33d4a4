//! TLS for the listener: loading the certificate, key and optional client CA into a
//! rustls `ServerConfig`, and writing through a TLS connection without SIGPIPE.
//!
//! The settings follow Prometheus' exporter-toolkit `tls_server_config` (`cert_file`,
//! `key_file`, `client_ca_file`, `min_version`); with a client CA, client certificates
//! are required and verified (its `RequireAndVerifyClientCert`). Like exporter-toolkit,
//! which rereads its files for every connection, the files are watched: a change is
//! picked up by the next connection (see [`Reloading`]), so certificates rotate without
//! a restart.

use super::StartError;
use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};
use std::io::{self, Write};
use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Oldest protocol version accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsMinVersion {
    #[default]
    Tls12,
    Tls13,
}

/// Where the listener's TLS material lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM: the server certificate, then any intermediates.
    pub cert_file: PathBuf,
    /// PEM: the private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM: CAs whose client certificates are accepted; set = client certificates required.
    pub client_ca_file: Option<PathBuf>,
    pub min_version: TlsMinVersion,
}

pub(super) fn server_config(f: &TlsFiles) -> Result<Arc<ServerConfig>, StartError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&f.cert_file)
        .map_err(|_| StartError::TlsCert)?
        .collect::<Result<_, _>>()
        .map_err(|_| StartError::TlsCert)?;
    if certs.is_empty() {
        return Err(StartError::TlsCert);
    }
    let key = PrivateKeyDer::from_pem_file(&f.key_file).map_err(|_| StartError::TlsKey)?;
    let provider = Arc::new(ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match f.min_version {
        TlsMinVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsMinVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|_| StartError::TlsKey)?;
    let builder = match &f.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            let cas = CertificateDer::pem_file_iter(ca).map_err(|_| StartError::TlsClientCa)?;
            for c in cas {
                roots.add(c.map_err(|_| StartError::TlsClientCa)?).map_err(|_| StartError::TlsClientCa)?;
            }
            if roots.is_empty() {
                return Err(StartError::TlsClientCa);
            }
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|_| StartError::TlsClientCa)?;
            builder.with_client_cert_verifier(v)
        }
    };
    // with_single_cert also checks that the key belongs to the certificate.
    let mut cfg = builder.with_single_cert(certs, key).map_err(|_| StartError::TlsKey)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// What identifies a file's content cheaply: modification time, size, inode (a symlink
/// swapped to a new file, as Kubernetes updates secrets, changes the inode).
type Stamp = Option<(SystemTime, u64, u64)>;

fn stamp(p: &Path) -> Stamp {
    let m = std::fs::metadata(p).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino()))
}

/// The server config, rebuilt when one of its files changes. Checked at most once per
/// [`RELOAD_CHECK`], when a connection arrives. A rebuild that fails (a certificate
/// written before its key, a file half copied) keeps the old config and is retried at
/// the next check, so a rotation completes once the files agree again.
pub(super) struct Reloading {
    files: TlsFiles,
    cfg: Arc<ServerConfig>,
    stamps: [Stamp; 3],
    next_check: Instant,
}

pub(super) const RELOAD_CHECK: Duration = Duration::from_secs(1);

/// What [`Reloading::current`] did about the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reload {
    Unchanged,
    Reloaded,
    Failed,
}

impl Reloading {
    pub(super) fn new(files: &TlsFiles) -> Result<Reloading, StartError> {
        let stamps = Self::stamps(files);
        let cfg = server_config(files)?;
        Ok(Reloading { files: files.clone(), cfg, stamps, next_check: Instant::now() + RELOAD_CHECK })
    }

    fn stamps(f: &TlsFiles) -> [Stamp; 3] {
        [stamp(&f.cert_file), stamp(&f.key_file), f.client_ca_file.as_deref().and_then(stamp)]
    }

    /// The config for a new connection.
    pub(super) fn current(&mut self) -> (Arc<ServerConfig>, Reload) {
        let now = Instant::now();
        let mut what = Reload::Unchanged;
        if now >= self.next_check {
            self.next_check = now + RELOAD_CHECK;
            let stamps = Self::stamps(&self.files);
            if stamps != self.stamps {
                match server_config(&self.files) {
                    Ok(c) => {
                        self.cfg = c;
                        self.stamps = stamps;
                        what = Reload::Reloaded;
                    }
                    Err(_) => what = Reload::Failed,
                }
            }
        }
        (self.cfg.clone(), what)
    }
}

/// `&TcpStream` with `write_vectored` left at `Write`'s default (one `write` of the first
/// buffer). rustls flushes records with `write_vectored`, which std implements as
/// `writev`: that raises SIGPIPE on a closed peer, where `write` (`send` with
/// MSG_NOSIGNAL) does not. Every TLS write goes through this.
pub(super) struct NoSigpipe<'a>(pub(super) &'a TcpStream);

impl Write for NoSigpipe<'_> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        (&*self.0).write(b)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes all of `b` as TLS records to the blocking socket `s` by `deadline`.
pub(super) fn send(conn: &mut ServerConnection, s: &TcpStream, mut b: &[u8], deadline: Instant) -> io::Result<()> {
    while !b.is_empty() {
        let n = conn.writer().write(b)?;
        b = &b[n..];
        flush(conn, s, deadline)?;
    }
    Ok(())
}

/// Sends the records rustls has queued.
pub(super) fn flush(conn: &mut ServerConnection, s: &TcpStream, deadline: Instant) -> io::Result<()> {
    while conn.wants_write() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        s.set_write_timeout(Some(left))?;
        match conn.write_tls(&mut NoSigpipe(s)) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Whether the first bytes on a TLS port look like a plain HTTP request line, so that it
/// gets a readable 400 (as Go's net/http gives) rather than a bare close.
pub(super) fn looks_like_http(first: &[u8]) -> bool {
    let word = first.iter().take_while(|c| c.is_ascii_uppercase()).count();
    word >= 3 && first.get(word) == Some(&b' ')
}

pub(super) const PLAIN_ON_TLS: &[u8] = b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
Connection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_detection() {
        assert!(looks_like_http(b"GET /metrics HTTP/1.1\r\n"));
        assert!(looks_like_http(b"HEAD / HTTP/1.0"));
        assert!(!looks_like_http(&[0x16, 0x03, 0x01, 0x02, 0x00]));
        assert!(!looks_like_http(b"GE"));
        assert!(!looks_like_http(b"get / HTTP/1.1"));
    }

    #[test]
    fn missing_files_are_start_errors() {
        let f = TlsFiles {
            cert_file: "/nonexistent/cert.pem".into(),
            key_file: "/nonexistent/key.pem".into(),
            client_ca_file: None,
            min_version: TlsMinVersion::Tls12,
        };
        assert_eq!(server_config(&f).unwrap_err(), StartError::TlsCert);
    }
}
