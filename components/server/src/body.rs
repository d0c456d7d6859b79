//! The shared handler's body as a hyper body: whole bodies get a Content-Length, the log
//! listing goes out chunked as it is read. Dropping it tells the connection its answer is
//! done, so the idle deadline starts only then, and gives back the slot of a connection
//! whose answer said `Connection: close`.

use crate::connection::Tracker;
use crate::in_flight::InFlight;
use crate::registry::Registration;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use spin_visits::Body;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

pub struct HyperBody {
    body: Option<Body>,
    tracker: Rc<Tracker>,
    _in_flight: InFlight,
    /// The slot to give back once this last answer is done.
    last: Option<Rc<Registration>>,
}

impl HyperBody {
    pub fn new(
        body: Body,
        tracker: Rc<Tracker>,
        in_flight: InFlight,
        last: Option<Rc<Registration>>,
    ) -> Self {
        Self {
            body: Some(body),
            tracker,
            _in_flight: in_flight,
            last,
        }
    }
}

impl Drop for HyperBody {
    fn drop(&mut self) {
        self.tracker.answered();
        if let Some(registration) = &self.last {
            registration.release();
        }
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
        let frame = match self.body.take() {
            None => None,
            Some(Body::Full(bytes)) => Some(Ok(Frame::data(Bytes::from(bytes)))),
            Some(Body::Listing(mut listing)) => match listing.next_chunk() {
                Ok(Some(chunk)) => {
                    self.body = Some(Body::Listing(listing));
                    Some(Ok(Frame::data(Bytes::from(chunk))))
                }
                Ok(None) => None,
                Err(err) => Some(Err(err)),
            },
        };
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match &self.body {
            None => SizeHint::with_exact(0),
            Some(Body::Full(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            Some(Body::Listing(_)) => SizeHint::default(),
        }
    }
}
