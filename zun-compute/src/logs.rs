//! Reading container logs: the shim writes each container's output as CRI-format lines
//! (`<RFC 3339 time> <stdout|stderr> <F|P> <text>`, `P` for a partial line continued by the next
//! entry); this module filters them the way Zun's logs API asks (streams, `since`, `tail`,
//! timestamps).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use capsule_types::rpc::LogQuery;
use chrono::{DateTime, Utc};

/// At most this much of the end of a log file is read (a container that wrote more gets its
/// newest lines; the file itself is whole on the host).
pub const MAX_READ_BYTES: u64 = 16 * 1024 * 1024;

/// One logical line.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    time: DateTime<Utc>,
    /// The raw time text, printed as written when timestamps are asked for.
    time_text: String,
    stderr: bool,
    text: String,
}

/// Splits one CRI line. `None` for a line that is not in the format (skipped).
fn parse(line: &str) -> Option<(DateTime<Utc>, &str, bool, &str, bool)> {
    let mut parts = line.splitn(4, ' ');
    let time_text = parts.next()?;
    let stream = parts.next()?;
    let tag = parts.next()?;
    let text = parts.next().unwrap_or("");
    let time = DateTime::parse_from_rfc3339(time_text)
        .ok()?
        .with_timezone(&Utc);
    let stderr = match stream {
        "stdout" => false,
        "stderr" => true,
        _ => return None,
    };
    let full = match tag {
        "F" => true,
        "P" => false,
        _ => return None,
    };
    Some((time, time_text, stderr, text, full))
}

/// The lines of `reader` that `query` asks for, each ending in `\n`.
pub fn filter(reader: impl BufRead, query: &LogQuery) -> std::io::Result<String> {
    let keep_cap = query.tail.unwrap_or(usize::MAX);
    let mut kept: VecDeque<Entry> = VecDeque::new();
    // Partial lines per stream, waiting for their end.
    let mut pending: [Option<Entry>; 2] = [None, None];
    for line in reader.lines() {
        let line = line?;
        let Some((time, time_text, stderr, text, full)) = parse(&line) else {
            continue;
        };
        let slot = &mut pending[usize::from(stderr)];
        let entry = match slot.take() {
            Some(mut e) => {
                e.text.push_str(text);
                e
            }
            None => Entry {
                time,
                time_text: time_text.to_owned(),
                stderr,
                text: text.to_owned(),
            },
        };
        if !full {
            *slot = Some(entry);
            continue;
        }
        let wanted = if entry.stderr {
            query.stderr
        } else {
            query.stdout
        };
        if !wanted || query.since.is_some_and(|s| entry.time < s) || keep_cap == 0 {
            continue;
        }
        if kept.len() == keep_cap {
            kept.pop_front();
        }
        kept.push_back(entry);
    }
    let mut out = String::new();
    for e in kept {
        if query.timestamps {
            out.push_str(&e.time_text);
            out.push(' ');
        }
        out.push_str(&e.text);
        out.push('\n');
    }
    Ok(out)
}

/// Reads the log file at `path` (its last [`MAX_READ_BYTES`]) through [`filter`]. A file that
/// does not exist yet is an empty log.
pub fn read(path: &Path, query: &LogQuery) -> std::io::Result<String> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let mut reader: Box<dyn BufRead> = if len > MAX_READ_BYTES {
        file.seek(SeekFrom::Start(len - MAX_READ_BYTES))?;
        let mut r = BufReader::new(file);
        // Drop the line the cut fell into.
        let mut skipped = Vec::new();
        r.read_until(b'\n', &mut skipped)?;
        Box::new(r)
    } else {
        Box::new(BufReader::new(file))
    };
    // Invalid UTF-8 from a container must not make its whole log unreadable.
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    filter(text.as_bytes(), query)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
2026-11-24T10:00:00.000000001Z stdout F one
2026-11-24T10:00:01.000000000Z stderr F oops
2026-11-24T10:00:02.000000000Z stdout P tw
not a log line
2026-11-24T10:00:02.500000000Z stdout F o
2026-11-24T10:00:03.000000000Z stdout F three
";

    fn q() -> LogQuery {
        LogQuery::default()
    }

    #[test]
    fn joins_partials_and_keeps_both_streams_in_order() {
        assert_eq!(
            filter(LOG.as_bytes(), &q()).unwrap(),
            "one\noops\ntwo\nthree\n"
        );
    }

    #[test]
    fn streams_filter() {
        let out = LogQuery {
            stderr: false,
            ..q()
        };
        assert_eq!(filter(LOG.as_bytes(), &out).unwrap(), "one\ntwo\nthree\n");
        let err = LogQuery {
            stdout: false,
            ..q()
        };
        assert_eq!(filter(LOG.as_bytes(), &err).unwrap(), "oops\n");
    }

    #[test]
    fn tail_since_and_timestamps() {
        let tail = LogQuery {
            tail: Some(2),
            ..q()
        };
        assert_eq!(filter(LOG.as_bytes(), &tail).unwrap(), "two\nthree\n");
        let none = LogQuery {
            tail: Some(0),
            ..q()
        };
        assert_eq!(filter(LOG.as_bytes(), &none).unwrap(), "");
        let since = LogQuery {
            since: Some("2026-11-24T10:00:01Z".parse().unwrap()),
            ..q()
        };
        assert_eq!(
            filter(LOG.as_bytes(), &since).unwrap(),
            "oops\ntwo\nthree\n"
        );
        let ts = LogQuery {
            timestamps: true,
            tail: Some(1),
            ..q()
        };
        assert_eq!(
            filter(LOG.as_bytes(), &ts).unwrap(),
            "2026-11-24T10:00:03.000000000Z three\n"
        );
    }

    #[test]
    fn missing_file_is_empty_and_big_files_give_their_end() {
        let dir = std::env::temp_dir().join(format!("logs-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(read(&dir.join("none.log"), &q()).unwrap(), "");
        let path = dir.join("big.log");
        let line = format!("2026-11-24T10:00:00Z stdout F {}\n", "x".repeat(1000));
        let n = usize::try_from(MAX_READ_BYTES).unwrap() / line.len() + 10;
        let mut text = line.repeat(n);
        text.push_str("2026-11-24T10:00:09Z stdout F last\n");
        std::fs::write(&path, text).unwrap();
        let out = read(&path, &q()).unwrap();
        assert!(out.ends_with("last\n"));
        assert!(out.lines().all(|l| l == "last" || l.len() == 1000));
        assert!(out.len() as u64 <= MAX_READ_BYTES);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
