//! The shared handler's body as a hyper body: whole bodies get a Content-Length, the log
//! listing goes out chunked as it is read.

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use spin_visits::Body;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

pub struct HyperBody(Option<Body>);

impl From<Body> for HyperBody {
    fn from(body: Body) -> Self {
        Self(Some(body))
    }
}

impl http_body::Body for HyperBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        // File reads in WASI 0.2 are blocking calls, so every poll is ready at once.
        let frame = match self.0.take() {
            None => None,
            Some(Body::Full(bytes)) => Some(Ok(Frame::data(Bytes::from(bytes)))),
            // main.rs renders the cluster view before the body is sent.
            Some(Body::Cluster(_)) => Some(Err(io::Error::other("cluster view not rendered"))),
            Some(Body::Listing(mut listing)) => match listing.next_chunk() {
                Ok(Some(chunk)) => {
                    self.0 = Some(Body::Listing(listing));
                    Some(Ok(Frame::data(Bytes::from(chunk))))
                }
                Ok(None) => None,
                Err(err) => Some(Err(err)),
            },
        };
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            None => SizeHint::with_exact(0),
            Some(Body::Full(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            Some(Body::Listing(_) | Body::Cluster(_)) => SizeHint::default(),
        }
    }
}
