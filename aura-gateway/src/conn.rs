//! One served connection, and the watchdog that closes it when it stalls.
//!
//! Two deadlines, kept apart:
//! - **headers**: a request's headers must be complete within the header timeout of its
//!   first byte. A new connection counts from the moment it was accepted, so one that
//!   sends nothing, or half a request, is closed within the header timeout;
//! - **idle**: a keep-alive connection that has been answered may wait the idle timeout
//!   for its next request's first byte.
//!
//! A connection answering a request is never closed by either, however long the answer
//! takes: an event stream stays open as long as its client reads it.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::Router;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tower::ServiceExt as _;

/// `request_started` when no request has begun since the last answer.
const NOT_STARTED: u64 = u64::MAX;

/// What a connection's watchdog reads; times are milliseconds since it was accepted.
struct Activity {
    opened: Instant,
    /// Requests whose answer (the whole response body) is not finished yet.
    answering: AtomicUsize,
    /// When the last answer finished; 0 before the first.
    answered_at: AtomicU64,
    /// When the next request's first byte arrived, or [`NOT_STARTED`].
    request_started: AtomicU64,
    /// Whether the connection has sent a request yet.
    requests: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            answering: AtomicUsize::new(0),
            answered_at: AtomicU64::new(0),
            request_started: AtomicU64::new(NOT_STARTED),
            requests: AtomicUsize::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    /// Bytes arrived: between answers, they start a request.
    fn read(&self) {
        if self.answering.load(Ordering::Acquire) == 0 {
            let now = self.now();
            let _ = self.request_started.compare_exchange(
                NOT_STARTED,
                now,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
    }

    /// The request's headers are in and it is being answered.
    fn begin(&self) {
        self.answering.fetch_add(1, Ordering::AcqRel);
        self.requests.fetch_add(1, Ordering::AcqRel);
        self.request_started.store(NOT_STARTED, Ordering::Release);
    }

    fn finish(&self) {
        self.answered_at.store(self.now(), Ordering::Release);
        self.answering.fetch_sub(1, Ordering::AcqRel);
    }

    /// Why the connection should be closed now, if it should.
    fn stalled(&self, idle: Duration, header: Duration) -> Option<&'static str> {
        if self.answering.load(Ordering::Acquire) > 0 {
            return None;
        }
        let now = self.now();
        let header = u64::try_from(header.as_millis()).unwrap_or(u64::MAX);
        let started = self.request_started.load(Ordering::Acquire);
        if self.requests.load(Ordering::Acquire) == 0 {
            // A fresh connection owes its first request's headers from the moment it
            // was accepted, whether or not it has sent a byte.
            return (now >= header).then_some("no request within the header timeout");
        }
        if started != NOT_STARTED {
            return (now.saturating_sub(started) >= header)
                .then_some("the request's headers took longer than the header timeout");
        }
        let idle = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        let since = self.answered_at.load(Ordering::Acquire);
        (now.saturating_sub(since) >= idle).then_some("idle longer than the idle timeout")
    }
}

/// Ends the connection's answer when the response body is dropped: hyper drops it once
/// the last byte is written, or when the client goes away.
struct Answering(Arc<Activity>);

impl Drop for Answering {
    fn drop(&mut self) {
        self.0.finish();
    }
}

/// The socket, telling the watchdog when bytes arrive.
struct Watched {
    stream: tokio::net::TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// The two deadlines of a connection.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadlines {
    pub(crate) header: Duration,
    pub(crate) idle: Duration,
}

/// Serves one connection until it closes, stalls past a deadline, or the gateway stops
/// and its current request is answered.
pub(crate) async fn serve_connection(
    stream: tokio::net::TcpStream,
    router: Router,
    http: hyper::server::conn::http1::Builder,
    deadlines: Deadlines,
    mut stopping: tokio::sync::watch::Receiver<bool>,
    _place: tokio::sync::OwnedSemaphorePermit,
) {
    // Small JSON answers go out at once rather than waiting to fill a segment.
    let _ = stream.set_nodelay(true);
    // The client's address, as axum's own serve would give it: the failed-authentication
    // limit is kept per address.
    let peer = stream.peer_addr().ok();
    let activity = Arc::new(Activity::new());
    let io = Watched {
        stream,
        activity: activity.clone(),
    };
    let answering = activity.clone();
    let service =
        hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            answering.begin();
            let guard = Answering(answering.clone());
            let router = router.clone();
            let mut request = request.map(Body::new);
            if let Some(peer) = peer {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
            }
            async move {
                let response = router.oneshot(request).await;
                Ok::<_, std::convert::Infallible>(match response {
                    Ok(response) => response.map(|body| {
                        Body::new(Guarded {
                            body,
                            _guard: guard,
                        })
                    }),
                    Err(never) => match never {},
                })
            }
        });
    let connection = http.serve_connection(hyper_util::rt::TokioIo::new(io), service);
    let mut connection = std::pin::pin!(connection);
    let tick = (deadlines.header.min(deadlines.idle) / 4)
        .clamp(Duration::from_millis(20), Duration::from_secs(1));
    let watchdog = async {
        loop {
            tokio::time::sleep(tick).await;
            if let Some(why) = activity.stalled(deadlines.idle, deadlines.header) {
                return why;
            }
        }
    };
    let result = tokio::select! {
        result = connection.as_mut() => result,
        // The guard `wait_for` returns is not `Send`: keep it inside the block.
        () = async { let _ = stopping.wait_for(|stop| *stop).await; } => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
        why = watchdog => {
            // Nothing is being answered: dropping the connection closes the socket.
            tracing::debug!(target: "Gateway", "connection closed: {why}");
            return;
        }
    };
    if let Err(e) = result {
        // Resets and malformed requests are the client's business: a debug line, no more.
        tracing::debug!(target: "Gateway", "connection closed: {e}");
    }
}

/// A response body that holds its connection's [`Answering`] until it is dropped.
struct Guarded {
    body: Body,
    _guard: Answering,
}

impl http_body::Body for Guarded {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
