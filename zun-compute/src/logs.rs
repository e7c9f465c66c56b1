//! Reading container logs: the shim writes each container's output as CRI-format lines
//! (`<RFC 3339 time> <stdout|stderr> <F|P> <text>`, `P` for a partial line continued by the next
//! entry) and rotates the file (`<name>.log` -> `<name>.log.1` -> ...); this module reads the
//! rotated files and the current one, oldest first, as one log, and filters it the way Zun's
//! logs API asks (streams, `since`, `tail`, timestamps).
//!
//! A rotation may happen while the files are opened one by one; a set of open files whose
//! names no longer lead to them is opened again, so a reader never gets a gap or a repeat
//! in the middle (and a follower polling with `since` misses no line and sees none twice).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

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

/// How many times the files are opened again when a rotation moved them meanwhile.
const OPEN_TRIES: usize = 20;

/// The log at `path` and its rotated files (`<path>.<n>`), oldest first.
fn paths(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(vec![path.to_owned()]);
    };
    let prefix = format!("{}.", name.to_string_lossy());
    let mut rotated: Vec<u32> = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    for e in entries.flatten() {
        let n = e.file_name();
        if let Some(k) = n.to_str().and_then(|n| n.strip_prefix(&prefix)) {
            if let Ok(k) = k.parse::<u32>() {
                rotated.push(k);
            }
        }
    }
    rotated.sort_unstable_by(|a, b| b.cmp(a));
    let mut out: Vec<PathBuf> = rotated
        .into_iter()
        .map(|k| crate::shim::rotated_path(path, k))
        .collect();
    out.push(path.to_owned());
    Ok(out)
}

/// The device and inode `path` names now, if it exists.
fn identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The log's files, open, oldest first: a set that was, at one moment, the whole log.
fn open_all(path: &Path) -> std::io::Result<Vec<File>> {
    let mut files = Vec::new();
    for _ in 0..OPEN_TRIES {
        let names = paths(path)?;
        files.clear();
        let mut ids = Vec::new();
        for p in &names {
            match File::open(p) {
                Ok(f) => {
                    let m = f.metadata()?;
                    ids.push(Some((m.dev(), m.ino())));
                    files.push(f);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => ids.push(None),
                Err(e) => return Err(e),
            }
        }
        // Unchanged since they were opened, and no newer file appeared: consistent.
        let now: Vec<_> = names.iter().map(|p| identity(p)).collect();
        if now == ids && paths(path)?.len() == names.len() {
            return Ok(files);
        }
    }
    Ok(files)
}

/// Reads the log at `path` and its rotated files (their last [`MAX_READ_BYTES`] together)
/// through [`filter`]. A log that does not exist yet is empty.
pub fn read(path: &Path, query: &LogQuery) -> std::io::Result<String> {
    let files = open_all(path)?;
    // From the newest back, as much as the budget allows.
    let mut budget = MAX_READ_BYTES;
    let mut parts: Vec<Vec<u8>> = Vec::new();
    for mut file in files.into_iter().rev() {
        if budget == 0 {
            break;
        }
        let len = file.metadata()?.len();
        let mut bytes = Vec::new();
        if len > budget {
            file.seek(SeekFrom::Start(len - budget))?;
            let mut r = BufReader::new(file);
            // Drop the line the cut fell into.
            let mut skipped = Vec::new();
            r.read_until(b'\n', &mut skipped)?;
            r.read_to_end(&mut bytes)?;
            budget = 0;
        } else {
            file.read_to_end(&mut bytes)?;
            budget -= len.min(budget);
        }
        parts.push(bytes);
    }
    let bytes: Vec<u8> = parts.into_iter().rev().flatten().collect();
    // Invalid UTF-8 from a container must not make its whole log unreadable.
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

    /// A follower as `capsule logs --follow` (`capsule_types::log_cursor`): what it printed.
    #[derive(Default)]
    struct Follower {
        cursor: capsule_types::log_cursor::LogCursor,
        printed: Vec<String>,
    }

    impl Follower {
        fn take(&mut self, text: &str) {
            let new = self.cursor.new_lines(text);
            self.printed
                .extend(new.into_iter().map(|(_, rest)| rest.to_owned()));
        }

        fn query(&self) -> LogQuery {
            LogQuery {
                timestamps: true,
                since: self.cursor.since().map(|t| t.parse().unwrap()),
                ..LogQuery::default()
            }
        }
    }

    #[test]
    fn a_follower_across_rotations_misses_no_line_and_sees_none_twice() {
        use crate::shim::logfile::LogFile;
        use crate::shim::LogRotation;
        let dir = std::env::temp_dir().join(format!("logs-rot-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.log");
        let rotation = LogRotation {
            max_bytes: 1024,
            max_files: 3,
        };
        let mut log = LogFile::open(&path, Some(rotation)).unwrap();
        const BATCHES: usize = 2000;
        // The follower must keep up for the test to mean anything: the files hold about 18
        // batches, and the writer never gets more than 8 ahead of what was printed.
        let printed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let behind = printed.clone();
        let writer = std::thread::spawn(move || {
            let base: DateTime<Utc> = "2026-11-24T10:00:00Z".parse().unwrap();
            let mut n = 0;
            for b in 0..BATCHES {
                while b > behind.load(std::sync::atomic::Ordering::SeqCst) / 3 + 8 {
                    std::thread::sleep(std::time::Duration::from_micros(50));
                }
                // As the shim does: what one read brought shares one time.
                let ts = (base + chrono::Duration::microseconds(b as i64))
                    .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
                let mut records = String::new();
                for _ in 0..3 {
                    records.push_str(&format!("{ts} stdout F line-{n}\n"));
                    n += 1;
                }
                log.write_records(records.as_bytes()).unwrap();
                std::thread::sleep(std::time::Duration::from_micros(300));
            }
        });
        let mut f = Follower::default();
        let mut reads = 0;
        while !writer.is_finished() {
            f.take(&read(&path, &f.query()).unwrap());
            printed.store(f.printed.len(), std::sync::atomic::Ordering::SeqCst);
            reads += 1;
        }
        writer.join().unwrap();
        f.take(&read(&path, &f.query()).unwrap());
        let rotated = (1..3).filter(|k| crate::shim::rotated_path(&path, *k).exists());
        assert_eq!(rotated.count(), 2, "the log rotated");
        let want: Vec<String> = (0..BATCHES * 3).map(|n| format!("line-{n}")).collect();
        let missing = want.iter().filter(|l| !f.printed.contains(l)).count();
        assert_eq!(missing, 0, "{missing} lines missed over {reads} reads");
        assert_eq!(f.printed, want, "in order, each once ({reads} reads)");
        // The whole log is what the files hold: the newest lines, across the files.
        let all = read(&path, &q()).unwrap();
        assert!(all.ends_with(&format!("line-{}\n", BATCHES * 3 - 1)));
        let on_disk: u64 = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(on_disk <= 3 * 1024, "{on_disk} bytes on disk");
        std::fs::remove_dir_all(&dir).unwrap();
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
