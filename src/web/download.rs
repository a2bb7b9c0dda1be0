//! File downloads streamed from an open file, a chunk at a time: a multi-gigabyte backup never
//! sits in memory, and when the client goes away hyper drops the body, which closes the file.

use super::{Body, Resp};
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

const CHUNK: usize = 64 * 1024;

/// The body of a download: `len` bytes read from `file`.
pub struct FileBody {
    file: tokio::fs::File,
    remaining: u64,
    buf: Box<[u8]>,
}

impl FileBody {
    pub fn new(file: tokio::fs::File, len: u64) -> Self {
        FileBody {
            file,
            remaining: len,
            buf: vec![0; CHUNK].into_boxed_slice(),
        }
    }
}

impl http_body::Body for FileBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let want = usize::try_from(this.remaining).map_or(CHUNK, |r| r.min(CHUNK));
        let mut rb = ReadBuf::new(&mut this.buf[..want]);
        match Pin::new(&mut this.file).poll_read(cx, &mut rb) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) if rb.filled().is_empty() => {
                // The file is shorter than announced. Ending here makes hyper close the
                // connection short of Content-Length, so the client sees a failed download.
                log::error!("download: the file ended {} bytes early", this.remaining);
                this.remaining = 0;
                Poll::Ready(None)
            }
            Poll::Ready(Ok(())) => {
                let data = Bytes::copy_from_slice(rb.filled());
                this.remaining -= data.len() as u64;
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Poll::Ready(Err(e)) => {
                log::error!("download: reading the file failed: {e}");
                this.remaining = 0;
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// A 200 attachment response streaming `len` bytes of `file` as `filename`.
/// `filename` must be a plain ASCII name (the callers pass names they made).
pub fn attachment(
    file: tokio::fs::File,
    len: u64,
    filename: &str,
    content_type: &'static str,
) -> Resp {
    let body: Body = FileBody::new(file, len).boxed();
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::OK;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}
