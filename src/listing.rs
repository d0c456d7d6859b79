//! `/visits` as a stream of chunks: plain text (one timestamp a line, as stored) or JSON.

use crate::store::RecordSource;
use std::io;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat {
    Text,
    Json,
}

/// Yields the listing a chunk at a time, so memory stays bounded whatever the log's size.
#[derive(Debug)]
pub struct Listing {
    records: Box<dyn RecordSource>,
    format: ListFormat,
    /// JSON text still to send before the first record (`{"pod":…,"visits":[`).
    prefix: Option<String>,
    wrote_a_record: bool,
    finished: bool,
}

impl Listing {
    pub fn new(records: Box<dyn RecordSource>, format: ListFormat, pod: &str, count: u64) -> Self {
        // Pod names are sanitized to [A-Za-z0-9._-] and records are digits and punctuation,
        // so neither needs JSON escaping.
        let first = records.first_visit();
        let prefix = (format == ListFormat::Json)
            .then(|| format!(r#"{{"pod":"{pod}","count":{count},"first":{first},"visits":["#));
        Self {
            records,
            format,
            prefix,
            wrote_a_record: false,
            finished: false,
        }
    }

    /// The next piece of the body, or `None` at the end.
    pub fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        if self.finished {
            return Ok(None);
        }
        let mut out = self
            .prefix
            .take()
            .map(String::into_bytes)
            .unwrap_or_default();
        let format = self.format;
        let wrote_a_record = &mut self.wrote_a_record;
        let more = self.records.next_chunk(&mut |line| match format {
            ListFormat::Text => {
                out.extend_from_slice(line);
                out.push(b'\n');
            }
            ListFormat::Json => {
                if *wrote_a_record {
                    out.push(b',');
                }
                out.push(b'"');
                out.extend_from_slice(line);
                out.push(b'"');
                *wrote_a_record = true;
            }
        })?;
        if !more {
            self.finished = true;
            if format == ListFormat::Json {
                out.extend_from_slice(b"]}");
            }
        }
        Ok(Some(out))
    }

    /// The whole listing; for tests and small logs.
    pub fn collect(mut self) -> io::Result<Vec<u8>> {
        let mut all = Vec::new();
        while let Some(chunk) = self.next_chunk()? {
            all.extend(chunk);
        }
        Ok(all)
    }
}
