//! Sizing a network before it is built: every `coherent_nn::NetworkBuilder` counts the parameters
//! and the activations of the layers it adds, with checked arithmetic, before it allocates
//! them.
//!
//! A caller (the runner's planner) runs a network plugin's build under [`measure`]: on that
//! thread, builders then allocate no layer at all (their `build` returns [`SIZED_ONLY`] as an
//! error) and the count is returned; or under [`limit`], where builders build as usual but
//! refuse a layer that would take the network past a number of parameters, before allocating
//! it. A network plugin written with the builder is so sized from its configuration alone,
//! whether it is bundled or out of tree.

use std::cell::Cell;

/// The error `NetworkBuilder::build` returns while [`measure`] runs: nothing was built.
pub const SIZED_ONLY: &str = "the network was sized, not built";

/// What a network needs, as its builders counted it (saturating at `u64::MAX`: a count that
/// overflows is that large).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetworkSize {
    /// Parameters of every layer.
    pub params: u64,
    /// Activations of one example: the input and every layer's output, in floats.
    pub activations: u64,
    /// Layers counted (0: the plugin builds without `coherent_nn::NetworkBuilder`, so its size is
    /// known only once it is built).
    pub layers: u64,
    /// Counting stopped past the most layers [`measure`] was given: the network has more.
    pub stopped: bool,
}

impl NetworkSize {
    /// Adds a layer of `params` parameters and `outputs` output floats per example.
    fn add(&mut self, params: u64, outputs: u64) {
        self.params = self.params.saturating_add(params);
        self.activations = self.activations.saturating_add(outputs);
        self.layers += 1;
    }
}

#[derive(Clone, Copy)]
struct Counter {
    size: NetworkSize,
    /// Builders allocate nothing.
    dry: bool,
    /// The most parameters builders may allocate (the most layers they count, when `dry`).
    max_params: u64,
}

thread_local! {
    static COUNTER: Cell<Option<Counter>> = const { Cell::new(None) };
}

/// Runs `build` (a network plugin's build) with every builder of this thread counting and
/// allocating nothing; returns the count. Past `max_layers` layers counting stops (the
/// builders return an error containing [`SIZED_ONLY`]), so that a network of absurd depth is
/// not counted layer by layer without end.
pub fn measure<T>(input: u64, max_layers: u64, build: impl FnOnce() -> T) -> NetworkSize {
    run(input, true, max_layers, build).1
}

/// Runs `build` with every builder of this thread refusing (with an error, before allocating)
/// a layer that takes the network past `max_params` parameters; returns its result and the
/// count.
pub fn limit<T>(input: u64, max_params: u64, build: impl FnOnce() -> T) -> (T, NetworkSize) {
    run(input, false, max_params, build)
}

fn run<T>(input: u64, dry: bool, max_params: u64, build: impl FnOnce() -> T) -> (T, NetworkSize) {
    let size = NetworkSize {
        activations: input,
        ..NetworkSize::default()
    };
    let counter = Counter {
        size,
        dry,
        max_params,
    };
    let outer = COUNTER.with(|c| c.replace(Some(counter)));
    let result = build();
    let counted = COUNTER.with(|c| c.replace(outer));
    (result, counted.map_or(size, |c| c.size))
}

/// Whether builders of this thread allocate nothing (inside [`measure`]); a builder that is
/// told so counts its layers with [`count`] and builds none.
pub fn dry() -> bool {
    COUNTER.with(|c| c.get().is_some_and(|c| c.dry))
}

/// Counts a layer of `params` parameters (`None`: more than a `u64` holds) and `outputs`
/// floats per example; `Err` in words if it takes the network past the limit of [`limit`]
/// (or, outside, past what an address can index). The caller allocates the layer only after
/// `Ok` and when not [`dry`].
pub fn count(what: &str, params: Option<u64>, outputs: Option<u64>) -> Result<(), String> {
    let params = params.unwrap_or(u64::MAX);
    let outputs = outputs.unwrap_or(u64::MAX);
    let Some(mut counter) = COUNTER.with(|c| c.get()) else {
        // no caller counts: only refuse what cannot be allocated at all
        return match usize::try_from(params).ok().and_then(|p| p.checked_mul(4)) {
            Some(bytes) if bytes <= isize::MAX as usize => Ok(()),
            _ => Err(format!(
                "{what} would have {params} parameters, more than memory can hold"
            )),
        };
    };
    counter.size.add(params, outputs);
    let over = match counter.dry {
        true => counter.size.layers > counter.max_params,
        false => counter.size.params > counter.max_params,
    };
    counter.size.stopped |= over && counter.dry;
    COUNTER.with(|c| c.set(Some(counter)));
    if over && counter.dry {
        return Err(format!(
            "{SIZED_ONLY}: more than {} layers",
            counter.max_params
        ));
    }
    if over {
        return Err(format!(
            "{what} takes the network to {} parameters, more than {} (nothing was allocated)",
            counter.size.params, counter.max_params
        ));
    }
    Ok(())
}

/// `a * b * ...`, `None` if it overflows.
pub fn product(factors: &[usize]) -> Option<u64> {
    factors
        .iter()
        .try_fold(1u64, |acc, &f| acc.checked_mul(u64::try_from(f).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_saturate_and_limits_refuse() {
        let size = measure(10, u64::MAX, || {
            count("a", Some(5), Some(3)).unwrap();
            count("b", None, Some(1)).unwrap();
        });
        assert_eq!(size.params, u64::MAX);
        assert!(!size.stopped);
        assert_eq!(size.activations, 14);
        assert_eq!(size.layers, 2);
        let size = measure(0, 2, || {
            (0..)
                .map(|_| count("a", Some(5), Some(1)))
                .find(|r| r.is_err())
        });
        assert_eq!((size.params, size.layers, size.stopped), (15, 3, true));
        assert!(!dry(), "the mode ends with measure");
        let (r, size) = limit(1, 100, || count("a dense layer", Some(101), Some(1)));
        assert_eq!(size.params, 101);
        assert!(r
            .unwrap_err()
            .starts_with("a dense layer takes the network to 101 parameters"));
        assert!(count("x", None, None).is_err(), "outside: more than memory");
        assert_eq!(product(&[usize::MAX, 2]), None);
        assert_eq!(product(&[3, 4]), Some(12));
    }
}
