//! A container's log file, rotated as docker's json-file driver (`max-size`, `max-file`) and
//! the kubelet (`containerLogMaxSize`, `containerLogMaxFiles`) rotate theirs: before a write
//! would take `<name>.log` past `max_bytes`, `<name>.log.{N-1}` goes, each `<name>.log.{i}`
//! becomes `.{i+1}`, `<name>.log` becomes `.log.1`, and a new `<name>.log` is started; at most
//! `max_files` files are kept, the one being written included. Records (lines) are never cut
//! across two files, so each file reads on its own ([`crate::logs`] reads them in order).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::plan::LogRotation;

/// The path of rotated file `n` (1 the newest) of the log at `path`: `<path>.<n>`.
pub fn rotated_path(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// One container's log, open for appending.
#[derive(Debug)]
pub(crate) struct LogFile {
    path: PathBuf,
    file: File,
    /// Bytes in the file being written.
    size: u64,
    rotation: Option<LogRotation>,
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
}

impl LogFile {
    /// Opens (or creates) the log at `path`, rotated as `rotation` says (`None`: never).
    pub(crate) fn open(path: &Path, rotation: Option<LogRotation>) -> io::Result<Self> {
        let file = open(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_owned(),
            file,
            size,
            rotation,
        })
    }

    /// Appends `records` (whole lines, each ending in `\n`), rotating between two records
    /// whenever the next would take the file past its size. A record longer than the size
    /// alone goes whole into a file of its own.
    pub(crate) fn write_records(&mut self, records: &[u8]) -> io::Result<()> {
        let Some(rotation) = self.rotation else {
            self.file.write_all(records)?;
            self.size += records.len() as u64;
            return Ok(());
        };
        let mut rest = records;
        while !rest.is_empty() {
            let room = rotation.max_bytes.saturating_sub(self.size);
            let fit = fitting(rest, room);
            let take = if fit > 0 {
                fit
            } else if self.size == 0 {
                // One record larger than a whole file: alone in it.
                rest.iter()
                    .position(|&b| b == b'\n')
                    .map_or(rest.len(), |i| i + 1)
            } else {
                self.rotate(rotation.max_files)?;
                continue;
            };
            self.file.write_all(&rest[..take])?;
            self.size += take as u64;
            rest = &rest[take..];
        }
        Ok(())
    }

    /// Shifts the rotated files by one (dropping the oldest), makes the current file the
    /// newest of them and starts an empty one.
    fn rotate(&mut self, max_files: u32) -> io::Result<()> {
        let kept = max_files.max(2) - 1;
        match std::fs::remove_file(rotated_path(&self.path, kept)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        for n in (1..kept).rev() {
            match std::fs::rename(rotated_path(&self.path, n), rotated_path(&self.path, n + 1)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        std::fs::rename(&self.path, rotated_path(&self.path, 1))?;
        self.file = open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

/// How many bytes of `records` make whole lines that fit in `room`.
fn fitting(records: &[u8], room: u64) -> usize {
    let room = usize::try_from(room).unwrap_or(usize::MAX);
    if records.len() <= room {
        return records.len();
    }
    records[..room]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("logfile-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn read(p: &Path) -> String {
        std::fs::read_to_string(p).unwrap_or_default()
    }

    #[test]
    fn rotates_between_records_and_keeps_at_most_max_files() {
        let d = dir();
        let path = d.join("c.log");
        let rotation = LogRotation {
            max_bytes: 10,
            max_files: 3,
        };
        let mut log = LogFile::open(&path, Some(rotation)).unwrap();
        // 4-byte records: two fit in 10 bytes, the third starts a new file.
        for i in 0..9 {
            log.write_records(format!("r{i}a\n").as_bytes()).unwrap();
        }
        assert_eq!(read(&path), "r8a\n");
        assert_eq!(read(&rotated_path(&path, 1)), "r6a\nr7a\n");
        assert_eq!(read(&rotated_path(&path, 2)), "r4a\nr5a\n");
        assert!(!rotated_path(&path, 3).exists(), "at most 3 files");
        // Several records in one write are split between files at a record boundary.
        log.write_records(b"x1x\nx2x\nx3x\n").unwrap();
        assert_eq!(read(&path), "x2x\nx3x\n");
        assert_eq!(read(&rotated_path(&path, 1)), "r8a\nx1x\n");
        for f in [path.clone(), rotated_path(&path, 1), rotated_path(&path, 2)] {
            assert!(
                std::fs::metadata(&f).unwrap().len() <= 10,
                "{}",
                f.display()
            );
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn an_oversized_record_gets_a_file_of_its_own_and_no_rotation_means_one_file() {
        let d = dir();
        let path = d.join("c.log");
        let rotation = LogRotation {
            max_bytes: 8,
            max_files: 2,
        };
        let mut log = LogFile::open(&path, Some(rotation)).unwrap();
        log.write_records(b"ab\n0123456789\ncd\n").unwrap();
        assert_eq!(read(&path), "cd\n");
        assert_eq!(read(&rotated_path(&path, 1)), "0123456789\n");
        std::fs::remove_dir_all(&d).unwrap();

        let d = dir();
        let path = d.join("c.log");
        let mut log = LogFile::open(&path, None).unwrap();
        for _ in 0..100 {
            log.write_records(b"0123456789\n").unwrap();
        }
        assert_eq!(read(&path).len(), 1100);
        assert!(!rotated_path(&path, 1).exists());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_reopened_log_counts_what_it_holds() {
        let d = dir();
        let path = d.join("c.log");
        std::fs::write(&path, b"12345678\n").unwrap();
        let rotation = LogRotation {
            max_bytes: 10,
            max_files: 2,
        };
        let mut log = LogFile::open(&path, Some(rotation)).unwrap();
        log.write_records(b"ab\n").unwrap();
        assert_eq!(read(&path), "ab\n");
        assert_eq!(read(&rotated_path(&path, 1)), "12345678\n");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
