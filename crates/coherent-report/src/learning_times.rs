//! `learning_times.csv`: the step at which each training example became, and stayed, correctly
//! classified.
//!
//! ```text
//! index,label,corrupted,learned_step
//! 0,7,0,120
//! 1,3,1,
//! ```
//!
//! An empty `learned_step` means never learned. Columns are found by their header names, so
//! extra columns and another order are fine.

use crate::ReportError;
use std::path::Path;

/// The learning times of a run, one entry per training example.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LearningTimes {
    /// The example's index in the training set.
    pub index: Vec<usize>,
    /// Whether the example's label was corrupted.
    pub corrupted: Vec<bool>,
    /// The step at which it was learned, `None` if never.
    pub learned: Vec<Option<f64>>,
}

impl LearningTimes {
    /// The learning times of the examples whose `corrupted` flag is `corrupted`.
    pub fn of_group(&self, corrupted: bool) -> impl Iterator<Item = Option<f64>> + '_ {
        self.corrupted
            .iter()
            .zip(&self.learned)
            .filter(move |(c, _)| **c == corrupted)
            .map(|(_, l)| *l)
    }
}

/// Parses the text of a `learning_times.csv`; `path` names the file in errors.
pub fn parse(text: &str, path: &Path) -> Result<LearningTimes, ReportError> {
    let mut lines = text.lines().enumerate();
    let header: Vec<&str> = match lines.next() {
        Some((_, h)) => h.split(',').map(str::trim).collect(),
        None => {
            return Err(ReportError::malformed(
                path,
                Some(1),
                "empty file, expected a header",
            ))
        }
    };
    let column = |name: &str| {
        header.iter().position(|h| *h == name).ok_or_else(|| {
            ReportError::malformed(
                path,
                Some(1),
                format!("no column `{name}` in the header (expected index,label,corrupted,learned_step)"),
            )
        })
    };
    let (ci, cc, cl) = (
        column("index")?,
        column("corrupted")?,
        column("learned_step")?,
    );
    let mut times = LearningTimes::default();
    for (k, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: String| ReportError::malformed(path, Some(k + 1), message);
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != header.len() {
            return Err(bad(format!(
                "{} fields, the header has {}",
                fields.len(),
                header.len()
            )));
        }
        let index = fields[ci]
            .parse()
            .map_err(|_| bad(format!("index `{}` is not a whole number", fields[ci])))?;
        let corrupted = match fields[cc] {
            "0" | "false" => false,
            "1" | "true" => true,
            other => return Err(bad(format!("corrupted `{other}` is not 0 or 1"))),
        };
        let learned = match fields[cl] {
            "" => None,
            s => Some(
                s.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| bad(format!("learned_step `{s}` is not a number")))?,
            ),
        };
        times.index.push(index);
        times.corrupted.push(corrupted);
        times.learned.push(learned);
    }
    Ok(times)
}

/// Reads the file at `path`.
pub fn read(path: &Path) -> Result<LearningTimes, ReportError> {
    let text = std::fs::read_to_string(path).map_err(ReportError::io(path))?;
    parse(&text, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_give_index_group_and_step_with_empty_meaning_never() {
        let text = "index,label,corrupted,learned_step\n0,7,0,120\n1,3,1,\n2,1,0,40\n";
        let t = parse(text, Path::new("lt.csv")).unwrap();
        assert_eq!(t.index, [0, 1, 2]);
        assert_eq!(t.corrupted, [false, true, false]);
        assert_eq!(t.learned, [Some(120.0), None, Some(40.0)]);
        assert_eq!(
            t.of_group(false).collect::<Vec<_>>(),
            [Some(120.0), Some(40.0)]
        );
        assert_eq!(t.of_group(true).collect::<Vec<_>>(), [None]);
    }

    #[test]
    fn columns_are_found_by_name() {
        let text = "learned_step,corrupted,index\n5,1,9\n";
        let t = parse(text, Path::new("lt.csv")).unwrap();
        assert_eq!(
            (t.index[0], t.corrupted[0], t.learned[0]),
            (9, true, Some(5.0))
        );
    }

    #[test]
    fn bad_rows_name_the_file_and_the_line() {
        let p = Path::new("lt.csv");
        let e = |text: &str| parse(text, p).unwrap_err().to_string();
        assert_eq!(
            e("index,label,corrupted,learned_step\n0,7,0,1\n1,3,1"),
            "lt.csv:3: 3 fields, the header has 4"
        );
        assert_eq!(
            e("index,label,corrupted,learned_step\n0,7,2,1\n"),
            "lt.csv:2: corrupted `2` is not 0 or 1"
        );
        assert_eq!(
            e("index,label,corrupted,learned_step\n0,7,0,soon\n"),
            "lt.csv:2: learned_step `soon` is not a number"
        );
        assert!(e("index,label\n").starts_with("lt.csv:1: no column `corrupted`"));
        assert!(e("").starts_with("lt.csv:1: empty file"));
    }
}
