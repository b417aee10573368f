//! The engine benchmark: the cost of per-example gradient quantities relative to a plain
//! training step, measured in one run so that the ratios are fair on a shared, noisy machine.
//!
//! Networks: the MLP 784-256-10 and the CNN conv(1->16, k5, p2)-relu-maxpool2-conv(16->32, k5,
//! p2)-relu-maxpool2-fc(1568->10), on a fixed batch of 128 bundled MNIST digits, SGD. Cases:
//!
//! * `plain`        forward, backward, mean aggregation, update;
//! * `coherence`    the same plus per-example squared norms and the m-coherence of the batch;
//! * `materialize`  the same plus every per-example gradient, materialised block by block in
//!   parallel and reduced (a coordinate-wise maximum over examples, as an order-statistic
//!   aggregator would);
//! * `loop`         the reference path: one dfdx backward pass per example (dfdx's own ops),
//!   per-example gradients summed, then the update (MLP only: dfdx 0.13 has no stable
//!   convolution);
//! * `loop_engine`  one forward and backward of this engine per example (batches of one).
//!
//! Further parts: the aggregators (suppression strategies) against the plain SGD step, and
//! several metrics on one sample against one metric (`metrics.rs`).
//!
//! Repetitions of the cases are interleaved and the median is reported. A second part measures
//! the m-coherence of a 10,000-example sample streamed in batches: its time and its peak memory
//! against the peak memory of one training step (Linux: `VmHWM`, reset with `clear_refs`).

mod aggregators;
mod gemm;
mod memory;
mod metrics;
mod networks;
mod serve;
mod timing;

pub use aggregators::AggregatorReport;
pub use metrics::MetricsReport;
pub use networks::{step_flops, BenchNetwork};
pub use serve::serve_plain_steps;

use coherent_core::{
    Batch, BatchGrads, CoherenceMetric, GradRequest, Measurements, Model, ModelSpec,
    PerExampleBlocks, PluginArgs, Registry, Split, Targets,
};
use coherent_nn::{reference, Sequential};
use rayon::prelude::*;
use serde::Serialize;
use std::time::{Duration, Instant};
use timing::interleaved;

/// What to measure and for how long.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// The networks.
    pub networks: Vec<BenchNetwork>,
    /// Examples per step.
    pub batch: usize,
    /// Interleaved repetitions of every case.
    pub reps: usize,
    /// Minimum time of one repetition of one case.
    pub min_time: Duration,
    /// Size of the sample whose m-coherence is measured.
    pub sample: usize,
    /// Also measure the aggregators (suppression strategies).
    pub aggregators: bool,
    /// Also measure several metrics on one sample against one metric.
    pub metrics: bool,
}

impl Default for BenchConfig {
    fn default() -> BenchConfig {
        BenchConfig {
            networks: vec![BenchNetwork::mlp(&[256]), BenchNetwork::cnn()],
            batch: 128,
            reps: 7,
            min_time: Duration::from_millis(300),
            sample: 10_000,
            aggregators: true,
            metrics: true,
        }
    }
}

/// One case of the step benchmark.
#[derive(Clone, Debug, Serialize)]
pub struct CaseResult {
    /// Case name.
    pub case: String,
    /// What it measures.
    pub what: String,
    /// Median milliseconds per training step.
    pub ms_per_step: f64,
    /// Ratio to the plain step.
    pub vs_plain: f64,
    /// The step's matrix-product operations (see [`step_flops`]) per second, in GFLOP/s
    /// (network cases).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gflops: Option<f64>,
    /// `gflops` as a fraction of the machine's measured matrix-product throughput.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub of_gemm: Option<f64>,
}

impl CaseResult {
    /// A case that took `ms` milliseconds per step, against `plain_ms` for the plain step; no
    /// FLOP rate.
    pub fn timed(case: String, what: &str, ms: f64, plain_ms: f64) -> CaseResult {
        CaseResult {
            case,
            what: what.to_string(),
            ms_per_step: ms,
            vs_plain: ms / plain_ms,
            gflops: None,
            of_gemm: None,
        }
    }
}

/// The streamed m-coherence of a large sample.
#[derive(Clone, Debug, Serialize)]
pub struct SampleResult {
    /// Sample size m.
    pub examples: usize,
    /// Seconds for one measurement.
    pub seconds: f64,
    /// The m-coherence measured (at initialisation).
    pub coherence: f64,
    /// Peak memory growth during the measurement, MiB (None where not measurable).
    pub peak_mib: Option<f64>,
}

/// What was measured for one network.
#[derive(Clone, Debug, Serialize)]
pub struct NetworkReport {
    /// The network.
    pub network: String,
    /// Examples per step.
    pub batch: usize,
    /// Operations of one training step (see [`step_flops`]).
    pub step_flops: f64,
    /// Step cases.
    pub cases: Vec<CaseResult>,
    /// The square matrix product's GFLOP/s (see [`BenchReport::gemm_gflops`]), measured
    /// interleaved with the cases: the limit their fractions are of.
    pub gemm_gflops: f64,
    /// Peak memory growth during one training step from a cold start, MiB (None where not
    /// measurable).
    pub step_peak_mib: Option<f64>,
    /// Large-sample coherence (networks on MNIST).
    pub sample: Option<SampleResult>,
}

/// Everything one run of the benchmark measured.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// Worker threads.
    pub threads: usize,
    /// Single-precision matrix-product throughput of the machine, GFLOP/s (a square product
    /// of side 1024 on every thread, through the layers' kernels), when networks were measured.
    pub gemm_gflops: Option<f64>,
    /// One report per network.
    pub networks: Vec<NetworkReport>,
    /// The suppression strategies' step times, when measured.
    pub aggregators: Option<AggregatorReport>,
    /// Several metrics on one sample, when measured.
    pub metrics: Option<MetricsReport>,
}

struct Setup {
    model: Box<dyn Model>,
    batch: Batch,
    grads: BatchGrads,
    direction: Vec<Vec<f32>>,
    metric: Box<dyn CoherenceMetric>,
    reference: Option<Sequential>,
    singles: Vec<Batch>,
    single_grads: BatchGrads,
}

fn mnist() -> Split {
    let registry = registry();
    let d = (registry.datasets["mnist"].build)(&PluginArgs::empty()).expect("bundled MNIST");
    let (train, test) = (d.train(), d.test());
    let mut inputs = train.inputs.clone();
    inputs.extend_from_slice(&test.inputs);
    let label = |s: &Split| match &s.targets {
        Targets::Classes { labels, .. } => labels.clone(),
        Targets::Values(_) => unreachable!("MNIST has classes"),
    };
    let mut labels = label(train);
    labels.extend(label(test));
    Split::new(
        inputs,
        784,
        Targets::Classes {
            labels,
            classes: 10,
        },
    )
}

pub(crate) fn registry() -> &'static Registry {
    coherent_plugins::registry().expect("plugins register")
}

pub(crate) fn spec() -> ModelSpec {
    ModelSpec::ten_class_images(1, 28)
}

fn build_model(network: &BenchNetwork) -> Box<dyn Model> {
    Box::new(network.sequential())
}

/// The same network as a [`Sequential`] for the dfdx reference path, when dfdx can express it.
fn reference_network(network: &BenchNetwork) -> Option<Sequential> {
    let args = PluginArgs::from_toml(&network.args).expect("valid TOML");
    let config: coherent_mlp::MlpConfig =
        (network.plugin == "mlp").then(|| args.parse().ok())??;
    config.network(&network.spec()).ok()
}

/// The `coherence` metric (its sample is what the caller streams through it).
fn metric() -> Box<dyn CoherenceMetric> {
    (registry().metrics["coherence"].build)(&PluginArgs::empty()).expect("valid metric")
}

/// Plain SGD update with the mean direction, the tail of every case.
fn update(model: &mut dyn Model, grads: &BatchGrads, direction: &mut [Vec<f32>]) {
    let scale = 1.0 / grads.batch_size as f32;
    for ((w, d), s) in model
        .params_mut()
        .into_iter()
        .zip(direction.iter_mut())
        .zip(&grads.sum)
    {
        for ((w, d), g) in w.iter_mut().zip(d.iter_mut()).zip(s) {
            *d = g * scale;
            *w -= 0.01 * *d;
        }
    }
}

/// Coordinates per materialised block: `BLOCK x batch` floats stay in the L2 cache.
const BLOCK: usize = 256;

/// The largest of `col`, eight lanes at a time (vectorises, unlike `f32::max` in a fold).
fn column_max(col: &[f32]) -> f32 {
    let mut lanes = [f32::MIN; 8];
    let mut chunks = col.chunks_exact(8);
    for chunk in &mut chunks {
        for (l, v) in lanes.iter_mut().zip(chunk) {
            *l = if *v > *l { *v } else { *l };
        }
    }
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::MIN, |m, v| if *v > m { *v } else { m });
    lanes.iter().fold(tail, |m, v| if *v > m { *v } else { m })
}

/// Materialises every per-example gradient, block by block on all threads, and reduces each
/// coordinate to its maximum over the examples.
fn materialize_all(source: &dyn PerExampleBlocks) -> f32 {
    let b = source.batch();
    let tasks: Vec<(usize, usize)> = (0..source.layers())
        .flat_map(|l| {
            (0..source.layer_params(l))
                .step_by(BLOCK)
                .map(move |start| (l, start))
        })
        .collect();
    tasks
        .par_iter()
        .map_init(Vec::new, |scratch, &(layer, start)| {
            let end = (start + BLOCK).min(source.layer_params(layer));
            scratch.resize((end - start) * b, 0.0);
            source.block(layer, start..end, scratch);
            scratch.chunks_exact(b).map(column_max).sum::<f32>()
        })
        .sum()
}

fn step(s: &mut Setup, case: &str) {
    match case {
        "plain" => {
            s.model
                .forward_backward(&s.batch, &GradRequest::SUM, &mut s.grads);
        }
        "coherence" => {
            s.model
                .forward_backward(&s.batch, &s.metric.needs(), &mut s.grads);
            s.metric.begin(s.model.layers());
            s.metric.accumulate(&s.grads, &s.batch);
            let mut values = Measurements::default();
            s.metric.finish(&mut values);
            std::hint::black_box(values);
        }
        "materialize" => {
            s.model
                .forward_backward(&s.batch, &GradRequest::BLOCKS, &mut s.grads);
            s.model.per_example_blocks(&mut |src| {
                std::hint::black_box(materialize_all(src));
            });
        }
        "loop" => {
            let reference = s
                .reference
                .as_ref()
                .expect("the loop case needs the dfdx reference");
            let per_example = reference::per_example_grads(reference, &s.batch);
            for (l, acc) in s.grads.sum.iter_mut().enumerate() {
                acc.fill(0.0);
                for g in &per_example {
                    for (a, v) in acc.iter_mut().zip(&g[l]) {
                        *a += v;
                    }
                }
            }
            s.grads.batch_size = per_example.len();
            if let Some(reference) = s.reference.as_mut() {
                update(reference, &s.grads, &mut s.direction);
            }
            return;
        }
        "loop_engine" => {
            for (k, single) in s.singles.iter().enumerate() {
                s.model
                    .forward_backward(single, &GradRequest::SUM, &mut s.single_grads);
                if k == 0 {
                    s.grads.clone_from(&s.single_grads);
                } else {
                    for (acc, g) in s.grads.sum.iter_mut().zip(&s.single_grads.sum) {
                        for (a, v) in acc.iter_mut().zip(g) {
                            *a += v;
                        }
                    }
                }
            }
            s.grads.batch_size = s.singles.len();
        }
        _ => unreachable!("unknown case {case}"),
    }
    let Setup {
        model,
        grads,
        direction,
        ..
    } = s;
    update(model.as_mut(), grads, direction);
}

const CASES: [(&str, &str); 5] = [
    ("plain", "forward + backward + mean + SGD update"),
    (
        "coherence",
        "plain step + per-example norms + m-coherence of the batch",
    ),
    (
        "materialize",
        "plain step + every per-example gradient, in parallel blocks, reduced",
    ),
    (
        "loop",
        "reference: one dfdx backward per example (dfdx's own ops), then the update",
    ),
    (
        "loop_engine",
        "this engine on batches of one, one per example, then the update",
    ),
];

/// The first `n` examples of `data` as a batch.
pub(crate) fn mnist_batch(data: &Split, n: usize) -> Batch {
    networks::first_batch(data, n)
}

/// Runs the benchmark.
pub fn run(config: &BenchConfig) -> BenchReport {
    let data = mnist();
    let aggregators = config
        .aggregators
        .then(|| aggregators::run(&data, config.reps, config.min_time));
    let metrics = config
        .metrics
        .then(|| metrics::run(&data, config.reps, config.min_time));
    let gemm_gflops =
        (!config.networks.is_empty()).then(|| gemm::throughput(config.reps, config.min_time));
    BenchReport {
        threads: rayon::current_num_threads(),
        gemm_gflops,
        networks: config
            .networks
            .iter()
            .map(|n| run_network(config, n, &data))
            .collect(),
        aggregators,
        metrics,
    }
}

/// The cases of `network`: the reference loops only on MNIST's small networks (`loop` only
/// where dfdx can express the network).
fn cases_of(network: &BenchNetwork, has_reference: bool) -> Vec<(&'static str, &'static str)> {
    CASES
        .iter()
        .copied()
        .filter(|(c, _)| match *c {
            "loop" => has_reference,
            "loop_engine" => network.on_mnist(),
            _ => true,
        })
        .collect()
}

/// The data of `network`'s cases: `mnist` where the network takes its digits, else random
/// inputs of its shape (`batch` of them, into `random`).
fn data_of<'d>(
    network: &BenchNetwork,
    mnist: &'d Split,
    batch: usize,
    random: &'d mut Option<Split>,
) -> &'d Split {
    match network.on_mnist() {
        true => mnist,
        false => random.insert(network.random_data(batch)),
    }
}

/// The model, the batch (the first `batch` examples of `data`) and the buffers of `network`'s
/// cases, with the floating-point operations of one plain step.
fn setup(network: &BenchNetwork, data: &Split, batch: usize) -> (Setup, f64) {
    let singles = (0..batch)
        .map(|i| {
            let mut b = Batch::default();
            b.gather(data, &[i]);
            b
        })
        .collect();
    let sequential = network.sequential();
    let flops = step_flops(&sequential, batch);
    let model: Box<dyn Model> = Box::new(sequential);
    let direction = model.layers().iter().map(|l| vec![0.0; l.params]).collect();
    let s = Setup {
        model,
        batch: mnist_batch(data, batch),
        grads: BatchGrads::default(),
        direction,
        metric: metric(),
        reference: reference_network(network),
        singles,
        single_grads: BatchGrads::default(),
    };
    (s, flops)
}

fn run_network(config: &BenchConfig, network: &BenchNetwork, mnist: &Split) -> NetworkReport {
    let mut random = None;
    let data = data_of(network, mnist, config.batch, &mut random);
    // first, as the peers do: the allocator holds nothing freed by the timed cases yet
    let step_peak_mib = step_peak(config, network, data);
    let (mut s, flops) = setup(network, data, config.batch);
    let cases = cases_of(network, s.reference.is_some());
    for (case, _) in &cases {
        step(&mut s, case);
    }
    // the square product runs among the cases, so the limit is measured in the same moments
    let mut square = gemm::Square::new();
    let mut medians = interleaved(cases.len() + 1, config.reps, config.min_time, |k| match k {
        k if k < cases.len() => step(&mut s, cases[k].0),
        _ => square.run(),
    });
    let gemm_gflops = gemm::gflops(medians.pop().expect("the square product's median"));
    drop((s, square));
    let results = cases
        .iter()
        .zip(&medians)
        .map(|((case, what), &ms)| {
            let gflops = flops / (ms * 1e6);
            CaseResult {
                gflops: Some(gflops),
                of_gemm: Some(gflops / gemm_gflops),
                ..CaseResult::timed(case.to_string(), what, ms, medians[0])
            }
        })
        .collect();
    NetworkReport {
        network: network.label.clone(),
        batch: config.batch,
        step_flops: flops,
        cases: results,
        gemm_gflops,
        step_peak_mib,
        sample: network
            .on_mnist()
            .then(|| sample_coherence(config, network, data)),
    }
}

/// Peak memory growth of one cold training step.
fn step_peak(config: &BenchConfig, network: &BenchNetwork, data: &Split) -> Option<f64> {
    let mut model = build_model(network);
    let base = memory::reset_peak();
    let batch = mnist_batch(data, config.batch);
    let mut grads = BatchGrads::default();
    let mut direction: Vec<Vec<f32>> = model.layers().iter().map(|l| vec![0.0; l.params]).collect();
    model.forward_backward(&batch, &GradRequest::SUM, &mut grads);
    update(model.as_mut(), &grads, &mut direction);
    memory::growth_since(base)
}

fn sample_coherence(config: &BenchConfig, network: &BenchNetwork, data: &Split) -> SampleResult {
    let m = config.sample.min(data.len());
    let mut model = build_model(network);
    let mut metric = metric();
    let base = memory::reset_peak();
    let start = Instant::now();
    let (mut batch, mut grads) = (Batch::default(), BatchGrads::default());
    metric.begin(model.layers());
    let all: Vec<usize> = (0..m).collect();
    for chunk in all.chunks(config.batch) {
        batch.gather(data, chunk);
        model.forward_backward(&batch, &metric.needs(), &mut grads);
        metric.accumulate(&grads, &batch);
    }
    let mut values = Measurements::default();
    metric.finish(&mut values);
    let seconds = start.elapsed().as_secs_f64();
    let peak = memory::growth_since(base);
    SampleResult {
        examples: m,
        seconds,
        coherence: values.get("coherence").unwrap_or(f64::NAN),
        peak_mib: peak,
    }
}

/// The report as tables for people.
pub fn render(report: &BenchReport) -> String {
    let mut out = String::new();
    if let Some(a) = &report.aggregators {
        out.push_str(&format!(
            "{}, batch {}, {} threads: one step per aggregator\n\n{:<24} {:>10} {:>9}  {}\n",
            a.network, a.batch, report.threads, "aggregator", "ms/step", "vs mean", "what"
        ));
        for c in &a.cases {
            out.push_str(&format!(
                "{:<24} {:>10.3} {:>8.2}x  {}\n",
                c.case, c.ms_per_step, c.vs_plain, c.what
            ));
        }
        out.push('\n');
    }
    if let Some(m) = &report.metrics {
        out.push_str(&format!(
            "{}, metrics on one sample of {} examples (chunks of {}), {} threads: one measurement\n\n{:<18} {:>10} {:>9}  {}\n",
            m.network, m.sample, m.chunk, report.threads, "metrics", "ms", "vs one", "what"
        ));
        for c in &m.cases {
            out.push_str(&format!(
                "{:<18} {:>10.3} {:>8.2}x  {}\n",
                c.case, c.ms_per_step, c.vs_plain, c.what
            ));
        }
        out.push('\n');
    }
    if let Some(g) = report.gemm_gflops {
        out.push_str(&format!(
            "matrix products: {g:.1} GFLOP/s (square, side {}, {} threads): the limit below\n\n",
            gemm::SIDE,
            report.threads
        ));
    }
    let mib = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.1} MiB"));
    for n in &report.networks {
        out.push_str(&format!(
            "{}, batch {}, {} threads, {:.2} GFLOP per step\n\n{:<12} {:>10} {:>9} {:>8} {:>7}  {}\n",
            n.network,
            n.batch,
            report.threads,
            n.step_flops / 1e9,
            "case",
            "ms/step",
            "vs plain",
            "GFLOP/s",
            "of max",
            "what"
        ));
        out.push_str(&format!(
            "{:<12} {:>10} {:>9} {:>8.1} {:>6.0}%  the square matrix product, among the cases: the max\n",
            "products", "", "", n.gemm_gflops, 100.0
        ));
        for c in &n.cases {
            out.push_str(&format!(
                "{:<12} {:>10.3} {:>8.2}x {:>8.1} {:>6.0}%  {}\n",
                c.case,
                c.ms_per_step,
                c.vs_plain,
                c.gflops.unwrap_or(f64::NAN),
                100.0 * c.of_gemm.unwrap_or(f64::NAN),
                c.what
            ));
        }
        out.push_str(&format!(
            "\npeak memory growth of one cold training step: {}\n",
            mib(n.step_peak_mib)
        ));
        if let Some(s) = &n.sample {
            out.push_str(&format!(
                "m-coherence of a {}-example sample (streamed in batches of {}): {:.3} s, coherence {:.3}, peak memory growth {}\n",
                s.examples,
                n.batch,
                s.seconds,
                s.coherence,
                mib(s.peak_mib),
            ));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn materialized_blocks_reduce_to_the_brute_force_column_maxima() {
        let mut model = build_model(&BenchNetwork::mlp(&[40]));
        let data = mnist();
        let mut batch = Batch::default();
        batch.gather(&data, &(0..9).collect::<Vec<_>>());
        let mut grads = BatchGrads::default();
        let all = GradRequest::PER_EXAMPLE;
        model.forward_backward(&batch, &all, &mut grads);
        let want: f32 = grads
            .per_example
            .iter()
            .zip(model.layers())
            .map(|(g, l)| {
                (0..l.params)
                    .map(|c| (0..9).map(|i| g[i * l.params + c]).fold(f32::MIN, f32::max))
                    .sum::<f32>()
            })
            .sum();
        let mut got = 0.0;
        model.per_example_blocks(&mut |src| got = materialize_all(src));
        assert!(
            (got - want).abs() <= 1e-4 * want.abs().max(1.0),
            "{got} vs {want}"
        );
    }

    #[test]
    fn column_max_handles_tails() {
        let col: Vec<f32> = (0..13).map(|i| -((i as f32) - 6.5).abs()).collect();
        assert_eq!(column_max(&col), -0.5);
    }
}
