//! Exemplars: a small label set (a trace id, the q user, the function called) attached to
//! one counter increment or histogram observation, so that a dashboard can say which
//! request was the slow one. A series keeps the latest per counter, and per classic
//! bucket of a histogram, as client_golang does. They are shown in OpenMetrics and
//! protobuf, never in text 0.0.4, which has no syntax for them.
//!
//! Slots are allocated at a series' first exemplar: series that never get one pay a
//! pointer. Writing one swaps an `Arc` under a mutex that a scrape holds only to clone
//! that `Arc`, so neither waits longer than a pointer copy.

use crate::error::{Error, Result};
use parking_lot::Mutex;
use std::sync::{Arc, OnceLock};

/// OpenMetrics: "The combined length of the label names and values of an Exemplar's
/// LabelSet MUST NOT exceed 128 UTF-8 character code points."
pub const MAX_RUNES: usize = 128;

#[derive(Debug, Clone, PartialEq)]
pub struct Exemplar {
    /// (name, value), names valid label names, in the caller's order.
    pub labels: Box<[(Box<str>, Box<str>)]>,
    /// The increment or observation it was attached to.
    pub value: f64,
    /// Unix seconds.
    pub timestamp: f64,
}

impl Exemplar {
    /// Checks the label names (Prometheus' label-name rule, distinct) and the 128-code-point
    /// limit. Values may be any UTF-8 (escaped when rendered); an empty set is refused.
    pub fn new(labels: Vec<(Box<str>, Box<str>)>, value: f64, timestamp: f64) -> Result<Exemplar> {
        if labels.is_empty() {
            return Err(Error::ExemplarLabels);
        }
        let mut runes = 0;
        for (i, (k, v)) in labels.iter().enumerate() {
            crate::registry::validate_label_name(k).map_err(|_| Error::ExemplarLabels)?;
            if labels[..i].iter().any(|(k2, _)| k2 == k) {
                return Err(Error::ExemplarLabels);
            }
            runes += k.chars().count() + v.chars().count();
        }
        if runes > MAX_RUNES {
            return Err(Error::ExemplarTooLong);
        }
        Ok(Exemplar { labels: labels.into_boxed_slice(), value, timestamp })
    }
}

/// The latest exemplar per slot (slot 0 of a counter; bucket i of a histogram, +Inf last).
#[derive(Debug, Default)]
pub struct Slots(OnceLock<Box<[Mutex<Option<Arc<Exemplar>>>]>>);

impl Slots {
    /// Stores `e` in slot `i` of `n`; the first call allocates the `n` slots.
    pub fn set(&self, n: usize, i: usize, e: Arc<Exemplar>) {
        let slots = self.0.get_or_init(|| (0..n).map(|_| Mutex::new(None)).collect());
        if let Some(s) = slots.get(i) {
            *s.lock() = Some(e);
        }
    }

    /// The latest exemplar of slot `i`, if any was set.
    pub fn get(&self, i: usize) -> Option<Arc<Exemplar>> {
        self.0.get()?.get(i)?.lock().clone()
    }

    /// Whether any exemplar was ever set (so a renderer can skip the lookups).
    pub fn any(&self) -> bool {
        self.0.get().is_some()
    }

}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(k: &str, v: &str) -> (Box<str>, Box<str>) {
        (k.into(), v.into())
    }

    #[test]
    fn limits() {
        assert!(Exemplar::new(vec![l("trace_id", "abc")], 1.0, 0.0).is_ok());
        assert_eq!(Exemplar::new(vec![], 1.0, 0.0), Err(Error::ExemplarLabels));
        assert_eq!(Exemplar::new(vec![l("1a", "x")], 1.0, 0.0), Err(Error::ExemplarLabels));
        assert_eq!(Exemplar::new(vec![l("a", "x"), l("a", "y")], 1.0, 0.0), Err(Error::ExemplarLabels));
        // 128 code points exactly (multi-byte ones count once), then one more.
        let v = "é".repeat(127);
        assert!(Exemplar::new(vec![l("a", &v)], 1.0, 0.0).is_ok());
        let v = "é".repeat(128);
        assert_eq!(Exemplar::new(vec![l("a", &v)], 1.0, 0.0), Err(Error::ExemplarTooLong));
    }

    #[test]
    fn slots_keep_the_latest() {
        let s = Slots::default();
        assert!(!s.any());
        assert_eq!(s.get(0), None);
        let e = |v| Arc::new(Exemplar::new(vec![l("a", "b")], v, 0.0).unwrap());
        s.set(3, 1, e(1.0));
        s.set(3, 1, e(2.0));
        s.set(3, 7, e(9.0)); // out of range: ignored
        assert!(s.any());
        assert_eq!(s.get(1).unwrap().value, 2.0);
        assert_eq!(s.get(0), None);
    }
}
