//! Output queues per connection: which subscriber is slow. `.z.W` gives q's queued bytes
//! per handle; the top N handles by queued bytes get a series each, labelled with the
//! handle and with what identifies the subscriber across reconnects (`.z.u` and `.z.a`
//! as `.z.po` saw them). A handle that closes or drops out of the top N loses its series,
//! so the family never holds more than N.

use crate::error::Result;
use crate::metric::MetricType;
use crate::registry::{Family, FamilyDesc, Registry};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

pub const QUEUE_BY_CONNECTION: &str = "kdb_output_queue_bytes_by_connection";
/// The `queueTopN` init key's default: enough for the few subscribers that matter.
pub const DEFAULT_TOP: usize = 5;

pub struct Subscribers {
    top: usize,
    fam: Arc<Family>,
    /// handle -> (user, address), from the connection hooks.
    peers: Mutex<HashMap<i64, (String, String)>>,
    /// The label values of the series now exposed.
    shown: Mutex<Vec<[String; 3]>>,
}

/// An IPv4 address as `.z.a` holds it (an int, most significant byte first) in dotted form.
pub fn ipv4(a: i32) -> String {
    let b = (a as u32).to_be_bytes();
    format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])
}

impl Subscribers {
    /// None when `top` is 0 (off).
    pub fn register(reg: &Registry, top: usize) -> Result<Option<Subscribers>> {
        if top == 0 {
            return Ok(None);
        }
        let mut d = FamilyDesc::new(
            QUEUE_BY_CONNECTION,
            MetricType::Gauge,
            "Bytes queued for output to a connection (.z.W), for the connections with the most.",
            &["handle", "user", "address"],
        );
        d.series_limit = Some(top.max(1));
        let fam = reg.register(&d)?;
        Ok(Some(Subscribers { top, fam, peers: Mutex::new(HashMap::new()), shown: Mutex::new(Vec::new()) }))
    }

    pub fn open(&self, handle: i64, user: &str, address: &str) {
        self.peers.lock().insert(handle, (user.to_string(), address.to_string()));
    }

    /// A closed handle: forgotten, and its series (if shown) removed.
    pub fn close(&self, reg: &Registry, handle: i64) {
        self.peers.lock().remove(&handle);
        let h = handle.to_string();
        let mut shown = self.shown.lock();
        shown.retain(|l| {
            if l[0] == h {
                let _ = reg.remove_series(self.fam.name(), &l[..]);
                false
            } else {
                true
            }
        });
    }

    /// Forgets every connection and removes every series (at `.prom.stop`: the handlers
    /// that tracked them are gone, so the series would go stale).
    pub fn clear(&self, reg: &Registry) {
        self.peers.lock().clear();
        for l in self.shown.lock().drain(..) {
            let _ = reg.remove_series(self.fam.name(), &l[..]);
        }
    }

    /// One sample of `.z.W` (handle, queued bytes): the top N with bytes queued get their
    /// value; the series of the others go.
    pub fn sample(&self, reg: &Registry, queues: &[(i64, f64)]) -> Result<()> {
        let mut q: Vec<(i64, f64)> = queues.iter().copied().filter(|(_, b)| *b > 0.0 && b.is_finite()).collect();
        q.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        q.truncate(self.top);
        let peers = self.peers.lock();
        let now: Vec<([String; 3], f64)> = q
            .iter()
            .map(|(h, b)| {
                let (u, a) = peers.get(h).cloned().unwrap_or_default();
                ([h.to_string(), u, a], *b)
            })
            .collect();
        drop(peers);
        let mut shown = self.shown.lock();
        for old in shown.iter() {
            if !now.iter().any(|(l, _)| l == old) {
                let _ = reg.remove_series(self.fam.name(), &old[..]);
            }
        }
        for (l, b) in &now {
            reg.get_or_create_in(&self.fam, &l[..], None)?.set(*b)?;
        }
        *shown = now.into_iter().map(|(l, _)| l).collect();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(r: &Registry) -> Vec<(Vec<String>, f64)> {
        let mut v: Vec<(Vec<String>, f64)> = Vec::new();
        r.family(QUEUE_BY_CONNECTION).unwrap().for_each_series(|s| v.push((s.labels().iter().map(|x| x.to_string()).collect(), s.get())));
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    #[test]
    fn top_n_by_bytes_with_identity_and_removal() {
        let r = Registry::new();
        let s = Subscribers::register(&r, 2).unwrap().unwrap();
        s.open(7, "tp", "10.0.0.1");
        s.open(8, "rdb", "10.0.0.2");
        s.open(9, "slow", "10.0.0.3");
        s.sample(&r, &[(7, 10.0), (8, 0.0), (9, 5e6), (12, 300.0)]).unwrap();
        assert_eq!(shown(&r), vec![(vec!["12".into(), "".into(), "".into()], 300.0), (vec!["9".into(), "slow".into(), "10.0.0.3".into()], 5e6)]);
        // 12 drops out of the top 2, 7 comes in
        s.sample(&r, &[(7, 1000.0), (9, 6e6), (12, 1.0)]).unwrap();
        assert_eq!(shown(&r), vec![(vec!["7".into(), "tp".into(), "10.0.0.1".into()], 1000.0), (vec!["9".into(), "slow".into(), "10.0.0.3".into()], 6e6)]);
        s.close(&r, 9);
        assert_eq!(shown(&r).len(), 1);
        s.clear(&r);
        assert!(shown(&r).is_empty());
        s.sample(&r, &[(7, 5.0)]).unwrap();
        assert_eq!(shown(&r), vec![(vec!["7".into(), "".into(), "".into()], 5.0)], "forgotten at clear");
        s.sample(&r, &[]).unwrap();
        assert!(shown(&r).is_empty());
    }

    #[test]
    fn off_and_addresses() {
        let r = Registry::new();
        assert!(Subscribers::register(&r, 0).unwrap().is_none());
        assert_eq!(ipv4(2130706433), "127.0.0.1");
        assert_eq!(ipv4(-1062731519), "192.168.1.1");
    }
}
