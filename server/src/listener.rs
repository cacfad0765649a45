//! The accept loop of `runnel server`: plain HTTP/1.1 and HTTP/2 (prior
//! knowledge, h2c), or TLS with HTTP/2 by ALPN, on one port.
//!
//! With TLS a connection's first byte tells a TLS handshake (0x16, a
//! handshake record) from plain HTTP, which is served only when allowed and
//! closed otherwise. Every request carries the peer's address as axum's
//! `ConnectInfo<SocketAddr>`, and [`OverTls`] when it came over TLS.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

use crate::tls::Tls;

/// A TLS record's content type for a handshake: the first byte a TLS
/// client sends.
const TLS_HANDSHAKE: u8 = 0x16;

/// How long a connection may take to send its first byte and finish the
/// TLS handshake before it is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// In a request's extensions when it came over TLS.
#[derive(Debug, Clone, Copy)]
pub struct OverTls;

/// Serves `app` on `listener` until `stop` resolves, then stops accepting
/// and returns once every connection has closed (each is asked to finish
/// its requests and close; the caller bounds the wait).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Tls>,
    stop: impl Future<Output = ()>,
) {
    let tls = tls.map(Arc::new);
    let mut builder = Builder::new(TokioExecutor::new());
    // As axum::serve: the CONNECT protocol, for HTTP/2 upgrades.
    builder.http2().enable_connect_protocol();
    // Connections watch `stopping`; `open` counts them: each holds a
    // receiver, and `closed()` resolves when the last is dropped.
    let (stopping_tx, stopping) = watch::channel(false);
    let (open_tx, open) = watch::channel(());
    let mut stop = pin!(stop);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_error(error).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        // Without TCP_NODELAY a small write (a SubscribeToShard event, a
        // PutRecord answer) can wait for the peer's delayed ACK: 40 ms here.
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "TCP_NODELAY not set");
        }
        let connection = Connection {
            peer,
            app: app.clone(),
            builder: builder.clone(),
            stopping: stopping.clone(),
            _open: open.clone(),
        };
        tokio::spawn(connection.run(tcp, tls.clone()));
    }
    drop(listener);
    drop(open);
    let _ = stopping_tx.send(true);
    open_tx.closed().await;
}

/// As axum::serve: a peer that gave up before its connection was accepted
/// is no news; anything else (out of file descriptors) is, and accepting
/// again at once would only spin.
async fn accept_error(error: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "accepting a connection failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

struct Connection {
    peer: SocketAddr,
    app: Router,
    builder: Builder<TokioExecutor>,
    stopping: watch::Receiver<bool>,
    /// Dropped when the connection ends: see `serve`.
    _open: watch::Receiver<()>,
}

impl Connection {
    async fn run(mut self, tcp: TcpStream, tls: Option<Arc<Tls>>) {
        let Some(tls) = tls else {
            return self.serve(tcp, false).await;
        };
        let mut stopping = self.stopping.clone();
        let acceptor = tls.acceptor.clone();
        let handshake = async move {
            let mut first = [0u8; 1];
            let n = tcp.peek(&mut first).await?;
            if n == 0 {
                return Ok(None);
            }
            if first[0] != TLS_HANDSHAKE {
                return Ok(Some(Err(tcp)));
            }
            acceptor.accept(tcp).await.map(|tls| Some(Ok(tls)))
        };
        let accepted = tokio::select! {
            accepted = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake) => accepted,
            _ = stopping.wait_for(|stop| *stop) => return,
        };
        let peer = self.peer;
        match accepted {
            Ok(Ok(Some(Ok(tls_stream)))) => self.serve(tls_stream, true).await,
            Ok(Ok(Some(Err(tcp)))) if tls.allow_plain => self.serve(tcp, false).await,
            Ok(Ok(Some(Err(_)))) => {
                tracing::debug!(%peer, "not a TLS handshake on a TLS port; closing (--tls-allow-plain serves plain HTTP too)");
            }
            Ok(Ok(None)) => tracing::debug!(%peer, "closed before sending anything"),
            Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "no TLS handshake within {HANDSHAKE_TIMEOUT:?}"),
        }
    }

    /// HTTP/1.1 or HTTP/2 (by its preface) on `io` until the peer closes,
    /// or, once the server is stopping, until its requests are done.
    async fn serve<I>(&mut self, io: I, over_tls: bool)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let peer = self.peer;
        let app = self.app.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            if over_tls {
                request.extensions_mut().insert(OverTls);
            }
            app.clone().oneshot(request)
        });
        let mut connection = pin!(
            self.builder
                .serve_connection_with_upgrades(TokioIo::new(io), service)
        );
        let mut draining = false;
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%peer, %error, "connection ended with an error");
                    }
                    return;
                }
                _ = self.stopping.wait_for(|stop| *stop), if !draining => {
                    draining = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::tls::{Identity, TlsSettings};

    /// The peer address and whether the request came over TLS, as the
    /// handlers see them.
    async fn whoami(request: axum::extract::Request) -> String {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| peer.to_string());
        let tls = request.extensions().get::<OverTls>().is_some();
        format!("{peer:?} tls={tls}")
    }

    /// A server on a free port; the sender stops it, the handle ends
    /// when it has.
    async fn start(
        tls: Option<Tls>,
    ) -> (
        SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route("/", axum::routing::get(whoami));
        let (stop_tx, stop) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, app, tls, async move {
            let _ = stop.await;
        }));
        (addr, stop_tx, server)
    }

    async fn get<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) -> String {
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer).into_owned()
    }

    fn self_signed(dir: &std::path::Path, allow_plain: bool) -> Tls {
        let settings = TlsSettings {
            identity: Identity::SelfSigned,
            allow_plain,
        };
        crate::tls::load(&settings, dir).unwrap()
    }

    fn connector(dir: &std::path::Path) -> tokio_rustls::TlsConnector {
        let pem = std::fs::read(dir.join("tls/cert.pem")).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls::pki_types::CertificateDer::from_pem_slice(&pem).unwrap())
            .unwrap();
        #[allow(deprecated, reason = "ring is the provider this build has")]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }

    use rustls::pki_types::pem::PemObject;

    #[tokio::test]
    async fn requests_carry_the_peer_address_over_plain_http_and_tls() {
        let dir = tempfile::tempdir().unwrap();
        let (addr, stop, server) = start(Some(self_signed(dir.path(), true))).await;
        let tcp = TcpStream::connect(addr).await.unwrap();
        let local = tcp.local_addr().unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = connector(dir.path()).connect(name, tcp).await.unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), None, "no ALPN asked");
        let answer = get(tls).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(
            answer.ends_with(&format!("Some(\"{local}\") tls=true")),
            "{answer}"
        );

        let tcp = TcpStream::connect(addr).await.unwrap();
        let local = tcp.local_addr().unwrap();
        let answer = get(tcp).await;
        assert!(
            answer.ends_with(&format!("Some(\"{local}\") tls=false")),
            "{answer}"
        );

        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn plain_http_on_a_tls_only_port_is_closed_and_bad_handshakes_hurt_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (addr, stop, server) = start(Some(self_signed(dir.path(), false))).await;
        let answer = get(TcpStream::connect(addr).await.unwrap()).await;
        assert_eq!(answer, "", "closed without an answer");
        let mut bad = TcpStream::connect(addr).await.unwrap();
        bad.write_all(b"\x16\x03\x01\x00\x02hi").await.unwrap();
        bad.shutdown().await.unwrap();
        let mut rest = Vec::new();
        let _ = bad.read_to_end(&mut rest).await;
        // An idle connection, open when the server stops, does not hold it.
        let idle = TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = connector(dir.path()).connect(name, idle).await.unwrap();
        let answer = get(tls).await;
        assert!(answer.ends_with("tls=true"), "{answer}");
        let _idle = TcpStream::connect(addr).await.unwrap();
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn without_tls_http2_prior_knowledge_is_served() {
        let (addr, stop, server) = start(None).await;
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        // The HTTP/2 preface and an empty SETTINGS frame: the server answers
        // with its own SETTINGS frame (type 4).
        tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
            .await
            .unwrap();
        let mut header = [0u8; 9];
        tcp.read_exact(&mut header).await.unwrap();
        assert_eq!(header[3], 4, "a SETTINGS frame");
        drop(tcp);
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .unwrap()
            .unwrap();
    }
}
