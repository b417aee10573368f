//! Named values measured at one point of a run: what one line of `metrics.jsonl` holds.

/// The values of one measurement point, in the order they were written.
///
/// Names are `quantity` for the whole network and `quantity/layer` for one layer
/// ([`Measurements::push_layer`]); whether per-layer values are kept is the runner's choice
/// (a metric's `per_layer` setting), so plugins always offer them.
#[derive(Clone, Debug, PartialEq)]
pub struct Measurements {
    values: Vec<(String, f64)>,
    per_layer: bool,
}

impl Default for Measurements {
    fn default() -> Measurements {
        Measurements::new(true)
    }
}

impl Measurements {
    /// An empty set; per-layer values are kept when `per_layer`.
    pub fn new(per_layer: bool) -> Measurements {
        Measurements {
            values: Vec::new(),
            per_layer,
        }
    }

    /// Adds `name = value`.
    pub fn push(&mut self, name: impl Into<String>, value: f64) {
        self.values.push((name.into(), value));
    }

    /// Adds `quantity/layer = value`, if per-layer values are kept.
    pub fn push_layer(&mut self, quantity: &str, layer: &str, value: f64) {
        if self.per_layer {
            self.values.push((format!("{quantity}/{layer}"), value));
        }
    }

    /// Whether per-layer values are kept.
    pub fn per_layer(&self) -> bool {
        self.per_layer
    }

    /// Changes whether further per-layer values are kept.
    pub fn set_per_layer(&mut self, per_layer: bool) {
        self.per_layer = per_layer;
    }

    /// The value of `name`, if measured (the last one written, if several).
    pub fn get(&self, name: &str) -> Option<f64> {
        self.values
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }

    /// Every value, in order.
    pub fn values(&self) -> &[(String, f64)] {
        &self.values
    }

    /// Appends every value of `other`.
    pub fn extend(&mut self, other: Measurements) {
        self.values.extend(other.values);
    }

    /// The values, in order.
    pub fn into_values(self) -> Vec<(String, f64)> {
        self.values
    }

    /// Whether nothing was measured.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_layer_values_follow_the_setting() {
        let mut m = Measurements::new(false);
        m.push("coherence", 3.0);
        m.push_layer("coherence", "fc1", 2.0);
        m.set_per_layer(true);
        m.push_layer("coherence", "fc2", 4.0);
        assert_eq!(m.get("coherence"), Some(3.0));
        assert_eq!(m.get("coherence/fc1"), None);
        assert_eq!(m.get("coherence/fc2"), Some(4.0));
        assert_eq!(m.values().len(), 2);
    }
}
