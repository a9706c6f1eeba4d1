//! wsflow-smol in the suite: Unix socket pairs (`smol::Async<UnixStream>`), tasks on smol's
//! executor, the system clock with short real timeouts.

use std::future::Future;
use std::io::{self, IoSlice};
use std::net::Shutdown;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use smol::Async;
use wsflow::{Config, Request, Response};
use wsflow_io::{Accepted, ClientBuilder, Decision, Error};

use super::{accept_all, serve, upgraded, Adapter, Clock, Counted, Joined, PairStream, Serve, Served, WriteCounter};
use crate::common::within;

pub struct Smol;

/// A Unix socket, with the vectored writes of `Async` and a shutdown on `poll_close`.
type UnixStream = Async<StdUnixStream>;

impl Adapter for Smol {
    const NAME: &'static str = "smol";
    type Runtime = wsflow_smol::Smol;
    type Stream = Counted<UnixStream>;
    type Ws = wsflow_smol::WebSocket<Counted<UnixStream>>;
    type UrlWs = wsflow_smol::WebSocket<wsflow_smol::MaybeTlsStream>;

    fn pair() -> (Self::Stream, Self::Stream) {
        let (a, b) = StdUnixStream::pair().unwrap();
        (
            Counted::new(Async::new(a).unwrap()),
            Counted::new(Async::new(b).unwrap()),
        )
    }

    fn run(_: Clock, test: impl Future<Output = ()> + Send + 'static) {
        within(Self::NAME, move || smol::block_on(test));
    }

    fn spawn<T: Send + 'static>(task: impl Future<Output = T> + Send + 'static) -> Joined<T> {
        Joined::new(smol::spawn(task))
    }

    fn now() -> Instant {
        Instant::now()
    }

    fn yield_now() -> impl Future<Output = ()> + Send {
        smol::future::yield_now()
    }

    fn accept_with<F>(
        stream: Self::Stream,
        config: Arc<Config>,
        hook: F,
    ) -> impl Future<Output = Result<Accepted<Self::Ws>, Error>> + Send
    where
        F: FnOnce(&Request) -> Decision + Send + 'static,
    {
        wsflow_smol::accept_with(stream, config, hook)
    }

    fn connect_on(
        builder: ClientBuilder<Self::Runtime>,
        stream: Self::Stream,
    ) -> impl Future<Output = Result<(Self::Ws, Response), Error>> + Send {
        builder.connect_on(stream)
    }

    fn connect(
        builder: ClientBuilder<Self::Runtime>,
    ) -> impl Future<Output = Result<(Self::UrlWs, Response), Error>> + Send {
        builder.connect()
    }

    fn is_tls(websocket: &Self::UrlWs) -> bool {
        matches!(websocket.get_ref(), wsflow_smol::MaybeTlsStream::Rustls(_))
    }

    fn tcp_server(tls: Option<Arc<rustls::ServerConfig>>, config: Arc<Config>, how: Serve) -> (u16, Joined<Served>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let listener = smol::net::TcpListener::try_from(listener).unwrap();
        let server = Self::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            match tls {
                Some(tls) => {
                    let tls = wsflow_smol::futures_rustls::TlsAcceptor::from(tls)
                        .accept(tcp)
                        .await
                        .unwrap();
                    serve::<Self, _>(upgraded(wsflow_smol::accept_with(tls, config, accept_all).await), how).await
                }
                None => serve::<Self, _>(upgraded(wsflow_smol::accept_with(tcp, config, accept_all).await), how).await,
            }
        });
        (port, server)
    }
}

impl PairStream for Counted<UnixStream> {
    async fn write_all(&mut self, bytes: &[u8]) {
        AsyncWriteExt::write_all(&mut self.inner, bytes).await.unwrap()
    }

    async fn read(&mut self, buf: &mut [u8]) -> usize {
        AsyncReadExt::read(&mut self.inner, buf).await.unwrap()
    }

    async fn shutdown_write(&mut self) {
        AsyncWriteExt::close(self).await.unwrap()
    }

    fn write_counter(&self) -> WriteCounter {
        self.counter()
    }
}

impl AsyncRead for Counted<UnixStream> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted<UnixStream> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.count_write();
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.count_write();
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    /// Shuts the write side down, as a TCP stream's `poll_close` does (`Async`'s only
    /// flushes).
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.inner.get_ref().shutdown(Shutdown::Write) {
            Err(error) if error.kind() == io::ErrorKind::NotConnected => Poll::Ready(Ok(())),
            other => Poll::Ready(other),
        }
    }
}
