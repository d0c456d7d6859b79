//! What the handler answers with, and what it is told of the request body.

use crate::listing::Listing;

/// A response body: small ones whole, the log streamed from disk.
#[derive(Debug)]
pub enum Body {
    Full(Vec<u8>),
    Listing(Listing),
}

impl Body {
    /// The whole body; for tests and small responses.
    pub fn into_bytes(self) -> std::io::Result<Vec<u8>> {
        match self {
            Body::Full(bytes) => Ok(bytes),
            Body::Listing(listing) => listing.collect(),
        }
    }
}

/// Whether the request came with a body. No route takes one, and a body on `GET /` must
/// not slip through as a visit, so each entry point says what its host saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequestBody {
    #[default]
    Empty,
    Present,
}

impl RequestBody {
    /// From a host that knows when a request body has ended (hyper's `is_end_stream`).
    pub fn from_end_of_stream(ended: bool) -> Self {
        if ended {
            RequestBody::Empty
        } else {
            RequestBody::Present
        }
    }
}
