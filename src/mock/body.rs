//! The one response body type of the mock: pre-rendered chunks, with an optional pause (stall)
//! and an optional abort (a cut connection).

use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

use super::State;

/// After a stream's last chunk before a cut, how long to pause so the connection flushes what
/// was already sent (hyper flushes when the body is pending).
const FLUSH_BEFORE_CUT: Duration = Duration::from_millis(20);

pub(crate) struct MockBody {
    chunks: Vec<Bytes>,
    next: usize,
    /// Pause before yielding chunk `index`.
    pause: Option<Pause>,
    /// Fail (cutting the connection) instead of yielding chunk `cut_at`.
    cut_at: Option<usize>,
    /// Set for streams: counts the stream as completed when its last chunk is yielded.
    on_complete: Option<Arc<State>>,
    exact_len: Option<u64>,
    /// Pause this long before every chunk after the first (a slow, steady stream).
    drip: Option<(Duration, Option<Pin<Box<Sleep>>>)>,
}

struct Pause {
    index: usize,
    duration: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl MockBody {
    /// A complete body with a Content-Length.
    pub(crate) fn full(bytes: Bytes) -> MockBody {
        let len = bytes.len() as u64;
        MockBody {
            chunks: vec![bytes],
            next: 0,
            pause: None,
            cut_at: None,
            on_complete: None,
            exact_len: Some(len),
            drip: None,
        }
    }

    /// A chunked stream, one frame per chunk, counted in `completed_streams` when it ends.
    pub(crate) fn stream(chunks: Vec<Bytes>, state: Arc<State>) -> MockBody {
        MockBody {
            chunks,
            next: 0,
            pause: None,
            cut_at: None,
            on_complete: Some(state),
            exact_len: None,
            drip: None,
        }
    }

    /// Pause for `every` before each chunk after the first.
    pub(crate) fn drip(mut self, every: Duration) -> MockBody {
        self.drip = Some((every, None));
        self
    }

    /// Pause for `duration` before the chunk at `index`.
    pub(crate) fn stall_before(mut self, index: usize, duration: Duration) -> MockBody {
        self.pause = Some(Pause {
            index,
            duration,
            sleep: None,
        });
        self
    }

    /// Send the chunks before `index`, then cut the connection.
    pub(crate) fn cut_before(mut self, index: usize) -> MockBody {
        self.cut_at = Some(index);
        self.pause = Some(Pause {
            index,
            duration: FLUSH_BEFORE_CUT,
            sleep: None,
        });
        self
    }

    fn done(&self) -> bool {
        self.next >= self.chunks.len() && self.cut_at.is_none()
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = &mut *self;
        if let Some(pause) = this.pause.as_mut().filter(|p| p.index == this.next) {
            let duration = pause.duration;
            let sleep = pause
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(duration)));
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.pause = None;
        }
        if let Some((every, sleep)) = this.drip.as_mut()
            && this.next > 0
            && this.next < this.chunks.len()
        {
            let every = *every;
            let s = sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep(every)));
            if s.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            *sleep = None;
        }
        if this.cut_at == Some(this.next) {
            this.cut_at = None;
            this.next = this.chunks.len();
            return Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "mock-close: connection cut on purpose",
            ))));
        }
        let Some(chunk) = this.chunks.get(this.next) else {
            return Poll::Ready(None);
        };
        let chunk = chunk.clone();
        this.next += 1;
        if this.next == this.chunks.len()
            && let Some(state) = this.on_complete.take()
        {
            state.stream_completed();
        }
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.done()
    }

    fn size_hint(&self) -> SizeHint {
        match self.exact_len {
            Some(len) => SizeHint::with_exact(len),
            None => SizeHint::default(),
        }
    }
}
