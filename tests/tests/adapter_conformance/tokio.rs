//! wsflow-tokio in the suite: `tokio::io::duplex` pipes, a current-thread runtime whose
//! clock is paused for [`Clock::Virtual`] (every connection timeout then takes no real
//! time: the connection's clock is `tokio::time::Instant`).

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};
use wsflow::{Config, Request, Response};
use wsflow_io::{Accepted, ClientBuilder, Decision, Error};

use super::{accept_all, serve, upgraded, Adapter, Clock, Counted, Joined, PairStream, Serve, Served, WriteCounter};
use crate::common::within;

/// What a pipe holds before a write must wait, as a socket's buffers would.
const PIPE_CAPACITY: usize = 64 << 10;

/// The bound on the runtime's clock. Paused, a deadlocked test (every task waiting) reaches
/// it at once, and so does one that waits for a default timeout (10 s) by mistake: the
/// scenarios' own timeouts are under a second.
const VIRTUAL_LIMIT: Duration = Duration::from_secs(5);

pub struct Tokio;

impl Adapter for Tokio {
    const NAME: &'static str = "tokio";
    type Runtime = wsflow_tokio::Tokio;
    type Stream = Counted<DuplexStream>;
    type Ws = wsflow_tokio::WebSocket<Counted<DuplexStream>>;
    type UrlWs = wsflow_tokio::WebSocket<wsflow_tokio::MaybeTlsStream>;

    fn pair() -> (Self::Stream, Self::Stream) {
        let (a, b) = tokio::io::duplex(PIPE_CAPACITY);
        (Counted::new(a), Counted::new(b))
    }

    fn run(clock: Clock, test: impl Future<Output = ()> + Send + 'static) {
        within(Self::NAME, move || {
            let mut runtime = tokio::runtime::Builder::new_current_thread();
            runtime.enable_all().start_paused(matches!(clock, Clock::Virtual));
            runtime.build().unwrap().block_on(async {
                tokio::time::timeout(VIRTUAL_LIMIT, test)
                    .await
                    .expect("tokio: the test took longer than its bound on the runtime's clock");
            });
        });
    }

    fn spawn<T: Send + 'static>(task: impl Future<Output = T> + Send + 'static) -> Joined<T> {
        let handle = tokio::spawn(task);
        Joined::new(async move {
            handle
                .await
                .unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()))
        })
    }

    fn now() -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn yield_now() -> impl Future<Output = ()> + Send {
        tokio::task::yield_now()
    }

    fn accept_with<F>(
        stream: Self::Stream,
        config: Arc<Config>,
        hook: F,
    ) -> impl Future<Output = Result<Accepted<Self::Ws>, Error>> + Send
    where
        F: FnOnce(&Request) -> Decision + Send + 'static,
    {
        wsflow_tokio::accept_with(stream, config, hook)
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
        matches!(websocket.get_ref(), wsflow_tokio::MaybeTlsStream::Rustls(_))
    }

    fn tcp_server(tls: Option<Arc<rustls::ServerConfig>>, config: Arc<Config>, how: Serve) -> (u16, Joined<Served>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let server = Self::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            match tls {
                Some(tls) => {
                    let tls = wsflow_tokio::tokio_rustls::TlsAcceptor::from(tls)
                        .accept(tcp)
                        .await
                        .unwrap();
                    serve::<Self, _>(upgraded(wsflow_tokio::accept_with(tls, config, accept_all).await), how).await
                }
                None => serve::<Self, _>(upgraded(wsflow_tokio::accept_with(tcp, config, accept_all).await), how).await,
            }
        });
        (port, server)
    }
}

impl PairStream for Counted<DuplexStream> {
    async fn write_all(&mut self, bytes: &[u8]) {
        AsyncWriteExt::write_all(&mut self.inner, bytes).await.unwrap()
    }

    async fn read(&mut self, buf: &mut [u8]) -> usize {
        AsyncReadExt::read(&mut self.inner, buf).await.unwrap()
    }

    async fn shutdown_write(&mut self) {
        AsyncWriteExt::shutdown(&mut self.inner).await.unwrap()
    }

    fn write_counter(&self) -> WriteCounter {
        self.counter()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.count_write();
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    /// One write of all the slices, as a socket's `writev` (a duplex pipe alone would
    /// write only the first slice per call).
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.count_write();
        if self.inner.is_write_vectored() {
            return Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        }
        // No more than the pipe can take: a big message is not copied at every write.
        let mut gathered = Vec::with_capacity(PIPE_CAPACITY);
        for buf in bufs {
            let room = PIPE_CAPACITY - gathered.len();
            gathered.extend_from_slice(&buf[..buf.len().min(room)]);
            if gathered.len() == PIPE_CAPACITY {
                break;
            }
        }
        Pin::new(&mut self.inner).poll_write(cx, &gathered)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
