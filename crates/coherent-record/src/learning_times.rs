//! `learning_times.csv`: the step at which each training example became, and stayed,
//! correctly classified.
//!
//! ```text
//! index,label,corrupted,learned_step
//! 0,7,0,120
//! 1,3,1,
//! ```
//!
//! An empty `learned_step` means never learned. Readers find the columns by their header
//! names, so extra columns and another order are fine (`label` is optional).

use crate::RecordError;
use std::fmt::Write;
use std::path::Path;

/// The learning time of one training example.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LearningTime {
    /// The example's index in the training set.
    pub index: usize,
    /// Its label as trained on (a class, or a regression target), as text.
    pub label: String,
    /// Whether its label was corrupted.
    pub corrupted: bool,
    /// The first evaluation step of its final unbroken run of correct evaluations; `None` if
    /// it was wrong at the last evaluation.
    pub learned_step: Option<usize>,
}

/// The file's text.
pub fn to_csv(rows: &[LearningTime]) -> String {
    let mut out = String::from("index,label,corrupted,learned_step\n");
    for r in rows {
        let when = r.learned_step.map_or(String::new(), |s| s.to_string());
        let _ = writeln!(out, "{},{},{},{when}", r.index, r.label, r.corrupted as u8);
    }
    out
}

/// Parses the text of a `learning_times.csv`; `path` names the file in errors.
pub fn parse(text: &str, path: &Path) -> Result<Vec<LearningTime>, RecordError> {
    let mut lines = text.lines().enumerate();
    let Some((_, header)) = lines.next() else {
        return Err(RecordError::malformed(
            path,
            Some(1),
            "empty file, expected a header",
        ));
    };
    let header: Vec<&str> = header.split(',').map(str::trim).collect();
    let column = |name: &str| {
        header.iter().position(|h| *h == name).ok_or_else(|| {
            RecordError::malformed(
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
    let label = header.iter().position(|h| *h == "label");
    let mut rows = Vec::new();
    for (k, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: String| RecordError::malformed(path, Some(k + 1), message);
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
        let learned_step = match fields[cl] {
            "" => None,
            s => Some(
                s.parse()
                    .map_err(|_| bad(format!("learned_step `{s}` is not a step")))?,
            ),
        };
        rows.push(LearningTime {
            index,
            label: label.map_or(String::new(), |c| fields[c].to_string()),
            corrupted,
            learned_step,
        });
    }
    Ok(rows)
}

/// Reads the file at `path`.
pub fn read(path: &Path) -> Result<Vec<LearningTime>, RecordError> {
    let text = std::fs::read_to_string(path).map_err(RecordError::io(path))?;
    parse(&text, path)
}

/// Examples ordered from earliest to latest learned; never-learned examples come last, ties
/// in index order. Returns positions in `rows`.
pub fn order_by_learning_time(rows: &[LearningTime]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| {
        let t = rows[i].learned_step;
        (t.is_none(), t.unwrap_or(0), rows[i].index)
    });
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(index: usize, corrupted: bool, learned_step: Option<usize>) -> LearningTime {
        LearningTime {
            index,
            label: "7".into(),
            corrupted,
            learned_step,
        }
    }

    #[test]
    fn rows_round_trip_with_empty_meaning_never() {
        let rows = vec![row(0, false, Some(120)), row(1, true, None)];
        let text = to_csv(&rows);
        assert_eq!(
            text,
            "index,label,corrupted,learned_step\n0,7,0,120\n1,7,1,\n"
        );
        assert_eq!(parse(&text, Path::new("lt.csv")).unwrap(), rows);
    }

    #[test]
    fn columns_are_found_by_name() {
        let t = parse("learned_step,corrupted,index\n5,1,9\n", Path::new("lt.csv")).unwrap();
        assert_eq!(
            t,
            [LearningTime {
                label: String::new(),
                ..row(9, true, Some(5))
            }]
        );
    }

    #[test]
    fn bad_rows_name_the_file_and_the_line() {
        let e = |text: &str| parse(text, Path::new("lt.csv")).unwrap_err().to_string();
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
            "lt.csv:2: learned_step `soon` is not a step"
        );
        assert!(e("index,label\n").starts_with("lt.csv:1: no column `corrupted`"));
        assert!(e("").starts_with("lt.csv:1: empty file"));
    }

    #[test]
    fn order_puts_never_learned_last() {
        let rows = [
            row(0, false, None),
            row(1, false, Some(30)),
            row(2, false, Some(10)),
            row(3, false, None),
            row(4, false, Some(10)),
        ];
        assert_eq!(order_by_learning_time(&rows), vec![2, 4, 1, 0, 3]);
    }
}
