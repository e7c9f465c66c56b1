//! Following a container's log by asking again and again for the lines `since` the newest time
//! seen (Zun's logs query, with timestamps): `since` is inclusive, so each answer repeats the
//! lines at that time, which the cursor skips by count. `capsule logs --follow` reads with it,
//! and so do the tests that prove a follower misses nothing across a log rotation.

/// Where a follower is in a timestamped log.
#[derive(Clone, Debug, Default)]
pub struct LogCursor {
    /// The newest time seen.
    last: Option<String>,
    /// How many lines at `last` were seen.
    at_last: usize,
}

impl LogCursor {
    /// The lines of `text` (an answer with timestamps, `<time> <text>` per line) not seen
    /// before, in order, each whole and as the text after its time.
    pub fn new_lines<'a>(&mut self, text: &'a str) -> Vec<(&'a str, &'a str)> {
        let mut out = Vec::new();
        let mut skip = self.at_last;
        for line in text.lines() {
            let (time, rest) = line.split_once(' ').unwrap_or((line, ""));
            if self.last.as_deref() == Some(time) {
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                self.at_last += 1;
            } else {
                skip = 0;
                self.last = Some(time.to_owned());
                self.at_last = 1;
            }
            out.push((line, rest));
        }
        out
    }

    /// The time to ask `since` for next; `None` before any line was seen.
    pub fn since(&self) -> Option<&str> {
        self.last.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_lines_at_the_newest_time_are_skipped_by_count() {
        let mut c = LogCursor::default();
        let first = c.new_lines("t1 a\nt2 b\nt2 c\n");
        assert_eq!(first, vec![("t1 a", "a"), ("t2 b", "b"), ("t2 c", "c")]);
        assert_eq!(c.since(), Some("t2"));
        // The next answer starts at t2 again: its two lines are skipped, a third is new.
        let next = c.new_lines("t2 b\nt2 c\nt2 d\nt3 e\n");
        assert_eq!(next, vec![("t2 d", "d"), ("t3 e", "e")]);
        assert!(c.new_lines("t3 e\n").is_empty());
        assert_eq!(c.since(), Some("t3"));
    }
}
