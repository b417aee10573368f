//! The learning times of a run as the plots use them, from its `learning_times.csv`
//! (read by `coherent_record::learning_times`).

use coherent_record::LearningTime;

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
    /// The learning times of the record's rows.
    pub fn from_rows(rows: &[LearningTime]) -> LearningTimes {
        LearningTimes {
            index: rows.iter().map(|r| r.index).collect(),
            corrupted: rows.iter().map(|r| r.corrupted).collect(),
            learned: rows
                .iter()
                .map(|r| r.learned_step.map(|s| s as f64))
                .collect(),
        }
    }

    /// The learning times of the examples whose `corrupted` flag is `corrupted`.
    pub fn of_group(&self, corrupted: bool) -> impl Iterator<Item = Option<f64>> + '_ {
        self.corrupted
            .iter()
            .zip(&self.learned)
            .filter(move |(c, _)| **c == corrupted)
            .map(|(_, l)| *l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_keep_never_learned_examples() {
        let row = |index, corrupted, learned_step| LearningTime {
            index,
            label: "1".into(),
            corrupted,
            learned_step,
        };
        let t = LearningTimes::from_rows(&[
            row(0, false, Some(120)),
            row(1, true, None),
            row(2, false, Some(40)),
        ]);
        assert_eq!(
            t.of_group(false).collect::<Vec<_>>(),
            [Some(120.0), Some(40.0)]
        );
        assert_eq!(t.of_group(true).collect::<Vec<_>>(), [None]);
    }
}
