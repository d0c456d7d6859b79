//! What the handler answers with, and what it is told of the request body.

use crate::cluster::{self, PeerReport};
use crate::listing::{ListFormat, Listing};

/// A response body: small ones whole, the log streamed, or the cluster view, which the
/// entry point completes by asking the peers with its own outbound HTTP.
#[derive(Debug)]
pub enum Body {
    Full(Vec<u8>),
    Listing(Listing),
    Cluster(ClusterView),
}

impl Body {
    /// The whole body; for tests and small responses. A cluster view must be rendered with
    /// its peers' answers first.
    pub fn into_bytes(self) -> std::io::Result<Vec<u8>> {
        match self {
            Body::Full(bytes) => Ok(bytes),
            Body::Listing(listing) => listing.collect(),
            Body::Cluster(_) => Err(std::io::Error::other("the cluster view needs its peers")),
        }
    }
}

/// `/visits/all`, waiting for the peers' answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterView {
    pod: String,
    peers: Vec<String>,
    format: ListFormat,
}

impl ClusterView {
    pub(crate) fn new(pod: String, peers: Vec<String>, format: ListFormat) -> Self {
        Self { pod, peers, format }
    }

    /// The peers to ask for [`cluster::PEER_PATH`], as `host:port`.
    pub fn peers(&self) -> &[String] {
        &self.peers
    }

    /// The body, from one report per peer, in the order of [`ClusterView::peers`].
    pub fn render(&self, reports: &[PeerReport]) -> Vec<u8> {
        match self.format {
            ListFormat::Json => cluster::render_json(&self.pod, reports),
            ListFormat::Text => cluster::render_html(&self.pod, reports),
        }
        .into_bytes()
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
