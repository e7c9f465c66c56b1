//! Container output in the CRI log format: `<RFC 3339 nano UTC> <stdout|stderr> <F|P> <text>`,
//! one record per line; a line longer than [`MAX_PARTIAL`] is cut into `P` records ended by an
//! `F` one.

use chrono::{SecondsFormat, Utc};

/// The longest record; a longer line is cut into partial (`P`) records of this size.
pub(crate) const MAX_PARTIAL: usize = 16 * 1024;

/// Which of a container's streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Cuts one stream's bytes into records.
#[derive(Debug)]
pub(crate) struct LineSplitter {
    stream: Stream,
    pending: Vec<u8>,
}

/// The current time as CRI logs write it.
pub(crate) fn timestamp() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true)
}

impl LineSplitter {
    pub(crate) fn new(stream: Stream) -> Self {
        Self {
            stream,
            pending: Vec::new(),
        }
    }

    fn record(&self, out: &mut Vec<u8>, ts: &str, full: bool, text: &[u8]) {
        out.extend_from_slice(ts.as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.stream.as_str().as_bytes());
        out.extend_from_slice(if full { b" F " } else { b" P " });
        out.extend_from_slice(text);
        out.push(b'\n');
    }

    /// Appends to `out` the records `data` completes, stamped `ts`.
    pub(crate) fn feed(&mut self, data: &[u8], ts: &str, out: &mut Vec<u8>) {
        self.pending.extend_from_slice(data);
        let mut start = 0;
        while let Some(nl) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let line = &self.pending[start..start + nl];
            self.record(out, ts, true, line);
            start += nl + 1;
        }
        self.pending.drain(..start);
        while self.pending.len() >= MAX_PARTIAL {
            let chunk: Vec<u8> = self.pending.drain(..MAX_PARTIAL).collect();
            self.record(out, ts, false, &chunk);
        }
    }

    /// At the end of the stream: the last, unterminated line as a full record.
    pub(crate) fn finish(&mut self, ts: &str, out: &mut Vec<u8>) {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.record(out, ts, true, &rest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: &str = "2024-05-01T10:00:00.000000001Z";

    fn lines(out: &[u8]) -> Vec<String> {
        String::from_utf8(out.to_vec())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn full_lines_across_reads() {
        let mut s = LineSplitter::new(Stream::Stdout);
        let mut out = Vec::new();
        s.feed(b"hel", TS, &mut out);
        assert!(out.is_empty());
        s.feed(b"lo\nwor", TS, &mut out);
        s.feed(b"ld\n\n", TS, &mut out);
        assert_eq!(
            lines(&out),
            vec![
                format!("{TS} stdout F hello"),
                format!("{TS} stdout F world"),
                format!("{TS} stdout F "),
            ]
        );
    }

    #[test]
    fn long_lines_are_cut_into_partials() {
        let mut s = LineSplitter::new(Stream::Stderr);
        let mut out = Vec::new();
        let long = vec![b'x'; MAX_PARTIAL * 2 + 10];
        s.feed(&long, TS, &mut out);
        s.feed(b"\n", TS, &mut out);
        let l = lines(&out);
        assert_eq!(l.len(), 3);
        assert!(l[0].starts_with(&format!("{TS} stderr P xxx")));
        assert_eq!(l[0].len(), TS.len() + " stderr P ".len() + MAX_PARTIAL);
        assert!(l[1].starts_with(&format!("{TS} stderr P ")));
        assert_eq!(l[2], format!("{TS} stderr F {}", "x".repeat(10)));
    }

    #[test]
    fn the_last_unterminated_line_is_flushed_at_the_end() {
        let mut s = LineSplitter::new(Stream::Stdout);
        let mut out = Vec::new();
        s.feed(b"no newline", TS, &mut out);
        assert!(out.is_empty());
        s.finish(TS, &mut out);
        s.finish(TS, &mut out);
        assert_eq!(lines(&out), vec![format!("{TS} stdout F no newline")]);
    }

    #[test]
    fn timestamps_are_rfc3339_nano_utc() {
        let t = timestamp();
        assert!(t.ends_with('Z'), "{t}");
        let frac = t.split('.').nth(1).unwrap();
        assert_eq!(frac.len(), 10, "{t}");
        chrono::DateTime::parse_from_rfc3339(&t).unwrap();
    }
}
