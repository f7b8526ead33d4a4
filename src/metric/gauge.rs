//! Gauge: a value that goes up and down. Any finite or infinite value; never NaN.

use crate::error::{Error, Result};

use super::AtomicF64;

#[derive(Debug, Default)]
pub struct Gauge {
    v: AtomicF64,
}

impl Gauge {
    pub fn new() -> Self {
        Self::default()
    }

    #[inline]
    pub fn set(&self, v: f64) -> Result<()> {
        if v.is_nan() {
            return Err(Error::NanValue);
        }
        self.v.set(v);
        Ok(())
    }

    /// Adds `d` (negative to decrease). A sum of opposite infinities would be NaN: refused.
    #[inline]
    pub fn add(&self, d: f64) -> Result<()> {
        if d.is_nan() {
            return Err(Error::NanValue);
        }
        if d.is_infinite() {
            return self
                .v
                .try_update(|x| Some(x + d).filter(|y| !y.is_nan()))
                .map(drop)
                .map_err(|_| Error::NanValue);
        }
        self.v.add(d);
        Ok(())
    }

    pub fn get(&self) -> f64 {
        self.v.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infinities_allowed_nan_refused() {
        let g = Gauge::new();
        g.set(f64::INFINITY).unwrap();
        assert_eq!(g.get(), f64::INFINITY);
        assert_eq!(g.add(f64::NEG_INFINITY), Err(Error::NanValue));
        assert_eq!(g.get(), f64::INFINITY);
        assert_eq!(g.set(f64::NAN), Err(Error::NanValue));
        g.set(-2.5).unwrap();
        g.add(1.0).unwrap();
        assert_eq!(g.get(), -1.5);
    }

    #[test]
    fn concurrent_adds_are_exact() {
        let g = std::sync::Arc::new(Gauge::new());
        let ts: Vec<_> = (0..4)
            .map(|i| {
                let g = g.clone();
                std::thread::spawn(move || {
                    for _ in 0..50_000 {
                        g.add(if i % 2 == 0 { 1.0 } else { -0.5 }).unwrap();
                    }
                })
            })
            .collect();
        for t in ts {
            t.join().unwrap();
        }
        assert_eq!(g.get(), 2.0 * 50_000.0 - 2.0 * 25_000.0);
    }
}
