//! Tables drawn as prettytable draws them for cliff (`openstack ... -f table`): `+---+` borders,
//! one space of padding, multi-line cells, and, when a width is known, the widest columns
//! shrunk (as cliff's `_assign_max_widths` does) and their long lines wrapped (as Python's
//! `textwrap` does: at spaces, after hyphens in words, long words broken).

/// A column's alignment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Align {
    /// Text at the left (strings, and everything in a Field/Value table).
    Left,
    /// Text at the right (numbers, as cliff aligns int and float columns).
    Right,
}

/// Draws a table of `headers` and `rows` (each as long as `headers`). With a `width`, columns
/// are shrunk to fit it, none below `min_width` (nor below its header); the table is wider
/// than `width` only when that floor asks for it. Ends with a newline.
pub(crate) fn render(
    headers: &[String],
    rows: &[Vec<String>],
    align: &[Align],
    width: Option<usize>,
    min_width: usize,
) -> String {
    let headers: Vec<String> = headers.iter().map(|h| sanitize(h)).collect();
    let mut rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| sanitize(c)).collect())
        .collect();
    let n = headers.len();
    let header_widths: Vec<usize> = headers.iter().map(|h| block_width(h)).collect();
    let mut cell_widths = vec![0; n];
    for row in &rows {
        for (w, cell) in cell_widths.iter_mut().zip(row) {
            *w = (*w).max(block_width(cell));
        }
    }
    let natural: Vec<usize> = header_widths
        .iter()
        .zip(&cell_widths)
        .map(|(h, c)| (*h).max(*c))
        .collect();
    let limits = width
        .and_then(|w| max_widths(&natural, w, min_width))
        .unwrap_or_else(|| vec![None; n]);
    let widths: Vec<usize> = (0..n)
        .map(|i| match limits[i] {
            Some(max) => header_widths[i].max(cell_widths[i].min(max)),
            None => natural[i],
        })
        .collect();
    for row in &mut rows {
        for (cell, &w) in row.iter_mut().zip(&widths) {
            if block_width(cell) > w {
                *cell = wrap_cell(cell, w);
            }
        }
    }

    let rule: String = std::iter::once("+".to_owned())
        .chain(widths.iter().map(|w| format!("{}+", "-".repeat(w + 2))))
        .collect();
    let mut out = String::new();
    out.push_str(&rule);
    out.push('\n');
    draw_row(&mut out, &headers, &widths, align);
    out.push_str(&rule);
    out.push('\n');
    for row in &rows {
        draw_row(&mut out, row, &widths, align);
    }
    out.push_str(&rule);
    out.push('\n');
    out
}

/// Appends one row (as many lines as its tallest cell) to `out`.
fn draw_row(out: &mut String, cells: &[String], widths: &[usize], align: &[Align]) {
    let lines: Vec<Vec<&str>> = cells.iter().map(|c| c.split('\n').collect()).collect();
    let height = lines.iter().map(Vec::len).max().unwrap_or(1);
    for y in 0..height {
        out.push('|');
        for (i, w) in widths.iter().enumerate() {
            let text = lines.get(i).and_then(|l| l.get(y)).copied().unwrap_or("");
            let pad = " ".repeat(w.saturating_sub(text.chars().count()));
            match align.get(i).copied().unwrap_or(Align::Left) {
                Align::Left => out.push_str(&format!(" {text}{pad} |")),
                Align::Right => out.push_str(&format!(" {pad}{text} |")),
            }
        }
        out.push('\n');
    }
}

/// Cell text safe for a table: `\r\n` as `\n`, tabs as spaces, other control characters
/// (but `\n`) as `?`.
pub(crate) fn sanitize(s: &str) -> String {
    s.replace("\r\n", "\n")
        .chars()
        .map(|c| match c {
            '\n' => '\n',
            '\t' => ' ',
            c if c.is_control() => '?',
            c => c,
        })
        .collect()
}

/// The width of a (multi-line) text: its longest line, in chars.
fn block_width(s: &str) -> usize {
    s.split('\n').map(|l| l.chars().count()).max().unwrap_or(0)
}

/// Per column, the width it may have (None: as wide as it is), when the table drawn with
/// `natural` widths is wider than `term`; None when it fits. As cliff's `_assign_max_widths`:
/// columns wider than an equal share are shrunk, sharing what the others leave, the last of
/// them taking the rest; none below `min_width`.
fn max_widths(natural: &[usize], term: usize, min_width: usize) -> Option<Vec<Option<usize>>> {
    let n = natural.len();
    // Each column has a border at its left and a space either side; one border at the end.
    let drawn: usize = natural.iter().map(|w| w + 3).sum::<usize>() + 1;
    if n == 0 || drawn <= term {
        return None;
    }
    let usable = term.saturating_sub(1 + 3 * n);
    let optimal = usable / n;
    let mut remaining = usable as i64;
    let mut shrink = Vec::new();
    for (i, &w) in natural.iter().enumerate() {
        if w <= optimal {
            remaining -= w as i64;
        } else {
            shrink.push(i);
        }
    }
    let (&last, others) = shrink.split_last()?;
    let share = remaining.div_euclid(shrink.len() as i64);
    let floor = min_width as i64;
    let mut limits = vec![None; n];
    for &i in others {
        limits[i] = Some(floor.max(share) as usize);
        remaining -= share;
    }
    limits[last] = Some(floor.max(remaining) as usize);
    Some(limits)
}

/// A cell with each line longer than `width` wrapped.
fn wrap_cell(cell: &str, width: usize) -> String {
    cell.split('\n')
        .map(|line| {
            if line.chars().count() > width {
                wrap(line, width).join("\n")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A letter as Python's regular expressions see one (`[^\d\W]`).
fn letter(c: Option<&char>) -> bool {
    c.is_some_and(|c| c.is_alphabetic() || *c == '_')
}

/// `line` cut into whitespace runs and words, words also after their inner hyphens (as
/// `textwrap`'s `wordsep_re`: `long-word` breaks after `long-`, `4561-bef8` does not).
fn chunks(line: &str) -> Vec<Vec<char>> {
    let cs: Vec<char> = line.chars().collect();
    let at = |i: usize| cs.get(i);
    let mut out = Vec::new();
    let mut start = 0;
    while start < cs.len() {
        let space = cs[start].is_whitespace();
        let mut end = start + 1;
        while end < cs.len() && cs[end].is_whitespace() == space {
            if !space && cs[end] == '-' {
                let j = end;
                let behind = (j >= 2 && letter(at(j - 1)) && letter(at(j - 2)))
                    || (j >= 3
                        && letter(at(j - 1))
                        && at(j - 2) == Some(&'-')
                        && letter(at(j - 3)));
                let ahead = letter(at(j + 1))
                    && (letter(at(j + 2)) || (at(j + 2) == Some(&'-') && letter(at(j + 3))));
                if behind && ahead {
                    end += 1;
                    break;
                }
            }
            end += 1;
        }
        out.push(cs[start..end].to_vec());
        start = end;
    }
    out
}

/// `line` wrapped to lines of at most `width` chars, as Python's `textwrap.wrap` does (spaces
/// at the ends of lines dropped, words longer than a line broken).
pub(crate) fn wrap(line: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let blank = |c: &Vec<char>| c.iter().all(|c| c.is_whitespace());
    let mut chunks = chunks(line);
    chunks.reverse();
    let mut lines: Vec<String> = Vec::new();
    while !chunks.is_empty() {
        if !lines.is_empty() && chunks.last().is_some_and(blank) {
            chunks.pop();
        }
        let mut cur: Vec<Vec<char>> = Vec::new();
        let mut len = 0;
        while let Some(c) = chunks.last() {
            if len + c.len() > width {
                break;
            }
            len += c.len();
            cur.extend(chunks.pop());
        }
        if let Some(c) = chunks.last_mut().filter(|c| c.len() > width) {
            let space_left = width - len;
            let mut end = space_left;
            if let Some(h) = c[..space_left].iter().rposition(|&x| x == '-') {
                if h > 0 && c[..h].iter().any(|&x| x != '-') {
                    end = h + 1;
                }
            }
            cur.push(c.drain(..end).collect());
        }
        if cur.last().is_some_and(blank) {
            cur.pop();
        }
        if !cur.is_empty() {
            lines.push(cur.concat().into_iter().collect());
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn wraps_like_textwrap() {
        // Expected values from Python's textwrap.wrap(line, width).
        assert_eq!(
            wrap("70831d74-66e3-4561-bef8-97dd082d8fc2", 8),
            s(&["70831d74", "-66e3-", "4561-", "bef8-", "97dd082d", "8fc2"])
        );
        assert_eq!(
            wrap(
                "hello world this is-a-long-hyphenated-word and averyveryverylongword ok",
                8
            ),
            s(&[
                "hello", "world", "this is-", "a-long-h", "yphenate", "d-word", "and aver",
                "yveryver", "ylongwor", "d ok"
            ])
        );
        assert_eq!(wrap("10.89.0.12", 9), s(&["10.89.0.1", "2"]));
        assert_eq!(wrap("a  b", 1), s(&["a", "b"]));
        assert_eq!(wrap("    ", 2), Vec::<String>::new());
        assert_eq!(wrap("ééééé ü", 3), s(&["ééé", "éé", "ü"]));
    }

    #[test]
    fn shrinks_like_cliff() {
        // cliff at --max-width 40: uuid, name, status 8 each (name and status need less),
        // addresses the 9 left.
        assert_eq!(
            max_widths(&[36, 7, 7, 10], 40, 8),
            Some(vec![Some(8), Some(8), Some(8), Some(9)])
        );
        assert_eq!(max_widths(&[36, 7], 80, 8), None);
        assert_eq!(
            max_widths(&[15, 200], 80, 16),
            Some(vec![None, Some(80 - 7 - 15)])
        );
    }

    #[test]
    fn right_aligned_numbers() {
        let out = render(
            &s(&["Id", "name"]),
            &[s(&["1", "a\nbbbbbb"]), s(&["12345", "x"])],
            &[Align::Right, Align::Left],
            None,
            8,
        );
        let want = "\
+-------+--------+
|    Id | name   |
+-------+--------+
|     1 | a      |
|       | bbbbbb |
| 12345 | x      |
+-------+--------+
";
        assert_eq!(out, want);
    }

    #[test]
    fn header_floor_and_overflow() {
        // Cannot fit in 10: columns stay at 8 (or their header) and the table overflows.
        let out = render(
            &s(&["a_long_header", "b"]),
            &[s(&["x".repeat(30).as_str(), "y".repeat(30).as_str()])],
            &[Align::Left, Align::Left],
            Some(10),
            8,
        );
        let first = out.lines().next().unwrap();
        assert_eq!(first, format!("+{}+{}+", "-".repeat(15), "-".repeat(10)));
        assert!(out.lines().all(|l| l.chars().count() == first.len()));
    }
}
