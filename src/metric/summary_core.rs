// Placeholder until the sketch lands: keeps a bounded reservoir of the last 1024 values.
#[derive(Debug)]
pub struct SummaryCore { vals: Vec<f64>, scratch: Vec<f64> }
impl SummaryCore {
    pub const RELATIVE_ERROR: f64 = 0.01;
    pub fn new(_max_age_nanos: u64, _age_buckets: u32) -> Self { SummaryCore { vals: Vec::new(), scratch: Vec::new() } }
    pub fn observe(&mut self, v: f64, _now: u64) { if self.vals.len() >= 1024 { self.vals.remove(0); } self.vals.push(v); }
    pub fn quantiles(&mut self, qs: &[f64], _now: u64, out: &mut [f64]) {
        self.scratch.clear(); self.scratch.extend_from_slice(&self.vals);
        self.scratch.sort_by(|a, b| a.total_cmp(b));
        for (o, q) in out.iter_mut().zip(qs) {
            *o = if self.scratch.is_empty() { f64::NAN } else { self.scratch[((self.scratch.len() - 1) as f64 * q) as usize] };
        }
    }
    pub fn heap_bytes(&self) -> usize { self.vals.capacity() * 8 }
}
