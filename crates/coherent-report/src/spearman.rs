//! Do seeds agree on which examples are learned first? Spearman rank correlation of learning
//! times between runs that differ only in their seed.
//!
//! The theory predicts that examples with many "helpers" (coherent gradients) are learned early
//! whatever the seed, so learning times of pristine examples should correlate across seeds,
//! while those of corrupted examples, learned one by one, should correlate less.

use crate::run::Run;
use std::collections::BTreeMap;

/// Average ranks (1-based): tied values share the mean of the ranks they span.
pub fn ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&i, &j| x[i].total_cmp(&x[j]));
    let mut r = vec![0.0; x.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && x[order[end]] == x[order[start]] {
            end += 1;
        }
        // Positions start..end hold ranks start+1 ..= end; their mean:
        let mean = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            r[i] = mean;
        }
        start = end;
    }
    r
}

/// Pearson correlation; NaN when fewer than two points or a constant input.
fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    if a.len() < 2 || saa == 0.0 || sbb == 0.0 {
        return f64::NAN;
    }
    sab / (saa * sbb).sqrt()
}

/// Spearman's rank correlation of `a` and `b` (equal lengths): the Pearson correlation of
/// their average ranks, so ties are handled exactly. Infinite values (e.g. never learned) rank
/// after all finite ones, tied with each other. NaN if fewer than two pairs or an input is
/// constant.
///
/// ```
/// use coherent_report::spearman;
/// assert_eq!(spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 15.0]), 0.5);
/// assert_eq!(spearman(&[1.0, 2.0, f64::INFINITY], &[3.0, 2.0, 1.0]), -1.0);
/// ```
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "spearman needs paired samples");
    pearson(&ranks(a), &ranks(b))
}

/// The learning-time agreement of runs that differ only in their seed.
#[derive(Clone, Debug)]
pub struct SeedGroup {
    /// The experiment and the shared sweep values (without `seed`).
    pub label: String,
    /// The seeds of the group's runs, in run order.
    pub seeds: Vec<String>,
    /// Mean Spearman correlation over the pairs of seeds: all examples.
    pub all: f64,
    /// The same over pristine examples only (NaN if none).
    pub pristine: f64,
    /// The same over corrupted examples only (NaN if none).
    pub corrupt: f64,
    /// Each pair's correlation over all examples: `(seed a, seed b, rho)`.
    pub pairs: Vec<(String, String, f64)>,
}

/// Learning times by example index, never learned as +infinity, and the corrupted flag.
fn by_index(run: &Run) -> Option<BTreeMap<usize, (f64, bool)>> {
    let t = run.learning_times.as_ref()?;
    Some(
        (0..t.index.len())
            .map(|k| {
                (
                    t.index[k],
                    (t.learned[k].unwrap_or(f64::INFINITY), t.corrupted[k]),
                )
            })
            .collect(),
    )
}

/// Spearman over the examples both runs have and `keep` accepts (by corrupted flag).
fn pair_rho(
    a: &BTreeMap<usize, (f64, bool)>,
    b: &BTreeMap<usize, (f64, bool)>,
    keep: impl Fn(bool) -> bool,
) -> f64 {
    let (x, y): (Vec<f64>, Vec<f64>) = a
        .iter()
        .filter(|(_, (_, c))| keep(*c))
        .filter_map(|(i, (ta, _))| Some((*ta, b.get(i)?.0)))
        .unzip();
    spearman(&x, &y)
}

fn mean_finite(values: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = values.filter(|v| v.is_finite()).collect();
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// Groups the runs that have learning times and a `seed` sweep value by experiment and their
/// other sweep values; returns the groups of two or more runs with their mean correlations.
pub fn seed_groups(runs: &[Run]) -> Vec<SeedGroup> {
    // Key: the experiment and the sweep values other than the seed.
    type Key = (String, Vec<(String, String)>);
    let mut groups: BTreeMap<Key, Vec<&Run>> = BTreeMap::new();
    for run in runs {
        if run.learning_times.is_none() || run.param("seed").is_none() {
            continue;
        }
        let others: Vec<(String, String)> = run
            .params
            .iter()
            .filter(|(k, _)| k != "seed")
            .cloned()
            .collect();
        groups
            .entry((run.experiment.clone(), others))
            .or_default()
            .push(run);
    }
    let mut out = Vec::new();
    for ((experiment, others), members) in groups {
        if members.len() < 2 {
            continue;
        }
        let times: Vec<_> = members.iter().filter_map(|r| by_index(r)).collect();
        let seeds: Vec<String> = members
            .iter()
            .map(|r| r.param("seed").unwrap_or("?").to_string())
            .collect();
        let (mut pairs, mut pristine, mut corrupt) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..times.len() {
            for j in i + 1..times.len() {
                let rho = pair_rho(&times[i], &times[j], |_| true);
                pairs.push((seeds[i].clone(), seeds[j].clone(), rho));
                pristine.push(pair_rho(&times[i], &times[j], |c| !c));
                corrupt.push(pair_rho(&times[i], &times[j], |c| c));
            }
        }
        let values: Vec<String> = others
            .iter()
            .map(|(k, v)| format!("{}={v}", crate::legend::short_key(k)))
            .collect();
        let label = match values.is_empty() {
            true => experiment,
            false => format!("{experiment}: {}", values.join(" ")),
        };
        out.push(SeedGroup {
            label,
            seeds,
            all: mean_finite(pairs.iter().map(|p| p.2)),
            pristine: mean_finite(pristine.into_iter()),
            corrupt: mean_finite(corrupt.into_iter()),
            pairs,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learning_times::LearningTimes;

    /// Ranks by counting: 1 + #smaller + (#equal - 1) / 2.
    fn brute_ranks(x: &[f64]) -> Vec<f64> {
        x.iter()
            .map(|&v| {
                let less = x.iter().filter(|&&w| w < v).count() as f64;
                let equal = x.iter().filter(|&&w| w == v).count() as f64;
                1.0 + less + (equal - 1.0) / 2.0
            })
            .collect()
    }

    /// A small deterministic generator (LCG) with many ties.
    fn sample(seed: u64, n: usize, levels: u64) -> Vec<f64> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 33) % levels) as f64
            })
            .collect()
    }

    #[test]
    fn ranks_match_counting_with_ties() {
        for seed in 0..20 {
            let x = sample(seed, 40, 7);
            assert_eq!(ranks(&x), brute_ranks(&x));
        }
        assert_eq!(
            ranks(&[10.0, 20.0, 10.0, f64::INFINITY, f64::INFINITY]),
            [1.5, 3.0, 1.5, 4.5, 4.5]
        );
    }

    #[test]
    fn without_ties_it_is_the_textbook_formula() {
        // 1 - 6 sum d^2 / (n (n^2 - 1)) for distinct values.
        for seed in 0..10 {
            let n = 30;
            let a = sample(seed, n, 1 << 30);
            let b = sample(seed + 100, n, 1 << 30);
            let (ra, rb) = (brute_ranks(&a), brute_ranks(&b));
            let d2: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - y) * (x - y)).sum();
            let n = n as f64;
            let want = 1.0 - 6.0 * d2 / (n * (n * n - 1.0));
            assert!((spearman(&a, &b) - want).abs() < 1e-12);
        }
    }

    #[test]
    fn with_ties_it_is_pearson_of_average_ranks() {
        for seed in 0..10 {
            let (a, b) = (sample(seed, 50, 4), sample(seed + 7, 50, 5));
            let want = pearson(&brute_ranks(&a), &brute_ranks(&b));
            assert!((spearman(&a, &b) - want).abs() < 1e-12);
        }
    }

    #[test]
    fn known_values() {
        // scipy.stats.spearmanr([1, 2, 2, 3], [1, 3, 2, 4]).statistic = 0.9486832980505138
        let rho = spearman(&[1.0, 2.0, 2.0, 3.0], &[1.0, 3.0, 2.0, 4.0]);
        assert!((rho - 0.9486832980505138).abs() < 1e-12, "{rho}");
        // Wikipedia's IQ / hours of TV example: rho = -29/165.
        let iq = [106., 100., 86., 101., 99., 103., 97., 113., 112., 110.];
        let tv = [7., 27., 2., 50., 28., 29., 20., 12., 6., 17.];
        assert!((spearman(&iq, &tv) + 29.0 / 165.0).abs() < 1e-12);
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), -1.0);
        assert!(
            spearman(&[1.0, 1.0], &[1.0, 2.0]).is_nan(),
            "constant input"
        );
        assert!(spearman(&[1.0], &[1.0]).is_nan());
    }

    fn run(name: &str, params: &[(&str, &str)], learned: &[Option<f64>]) -> Run {
        let n = learned.len();
        Run {
            learning_times: Some(LearningTimes {
                index: (0..n).collect(),
                corrupted: (0..n).map(|i| i % 2 == 1).collect(),
                learned: learned.to_vec(),
            }),
            ..Run::named("e", name).with_params(params)
        }
    }

    #[test]
    fn groups_are_runs_differing_only_in_seed_and_never_ranks_last() {
        let (a, b) = (Some(10.0), Some(20.0));
        let runs = [
            run(
                "0",
                &[("dataset.label_noise", "0.5"), ("seed", "0")],
                &[a, b, None, Some(30.0)],
            ),
            run(
                "1",
                &[("dataset.label_noise", "0.5"), ("seed", "1")],
                &[a, Some(50.0), Some(40.0), Some(30.0)],
            ),
            run(
                "2",
                &[("dataset.label_noise", "0.0"), ("seed", "0")],
                &[a, b, None, None],
            ),
        ];
        let g = seed_groups(&runs);
        assert_eq!(g.len(), 1, "the label_noise=0.0 run has no partner");
        assert_eq!(g[0].label, "e: label_noise=0.5");
        assert_eq!(g[0].seeds, ["0", "1"]);
        let want = spearman(
            &[10.0, 20.0, f64::INFINITY, 30.0],
            &[10.0, 50.0, 40.0, 30.0],
        );
        assert_eq!(g[0].pairs, [("0".into(), "1".into(), want)]);
        assert_eq!(g[0].all, want);
        assert_eq!(g[0].pristine, 1.0, "examples 0 and 2: 10 < never, 10 < 40");
        assert_eq!(
            g[0].corrupt, -1.0,
            "examples 1 and 3: 20 < 30, then 50 > 30"
        );
    }
}
