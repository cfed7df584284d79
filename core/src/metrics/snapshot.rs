//! A gateway's metrics at one moment, by family and label values, ready to render. Snapshots
//! of several gateways (one per glommio executor) add up with [`Snapshot::merge`]; the live
//! counters behind them are plain numbers updated without locks on the query path.

use std::collections::BTreeMap;

use super::families::{Def, Kind};

/// Observations in fixed buckets, as Prometheus histograms count them (`le` is inclusive).
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    bounds: &'static [f64],
    /// One count per bound, then the observations above the last bound.
    counts: Vec<u64>,
    sum: f64,
}

impl Histogram {
    /// An empty histogram over `bounds` (ascending).
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
        }
    }

    /// Counts one observation.
    pub fn observe(&mut self, value: f64) {
        let bucket = self
            .bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(self.bounds.len());
        self.counts[bucket] += 1;
        self.sum += value;
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Their sum.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// `(upper bound, observations in that bucket alone)`, ending with `+Inf`.
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        self.bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.counts.iter().copied())
            .collect()
    }

    /// Cumulative count of observations at or below `bound` (a Prometheus `_bucket` sample).
    pub fn cumulative(&self, bound: f64) -> u64 {
        self.bounds
            .iter()
            .zip(&self.counts)
            .take_while(|(b, _)| **b <= bound)
            .map(|(_, c)| c)
            .sum::<u64>()
            + if bound.is_infinite() {
                self.counts[self.bounds.len()]
            } else {
                0
            }
    }

    fn add(&mut self, other: &Histogram) {
        if self.bounds != other.bounds {
            return;
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.sum += other.sum;
    }
}

/// One sample's value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A counter.
    Counter(u64),
    /// A counter of something measured in fractions (CPU seconds).
    FloatCounter(f64),
    /// A gauge.
    Gauge(f64),
    /// A histogram.
    Histogram(Histogram),
}

/// The samples of one family, by label values (in the order of its label names).
#[derive(Clone, Debug, PartialEq)]
pub struct Family {
    /// Name, help, kind and label names.
    pub def: &'static Def,
    /// Samples by label values.
    pub series: BTreeMap<Vec<String>, Value>,
}

/// Every family with at least one sample, by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    families: BTreeMap<&'static str, Family>,
}

impl Snapshot {
    /// The families, by name.
    pub fn families(&self) -> impl Iterator<Item = &Family> {
        self.families.values()
    }

    /// The family named `name`, if it has samples.
    pub fn family(&self, name: &str) -> Option<&Family> {
        self.families.get(name)
    }

    /// Declares a family without samples yet (so that it is rendered, as a registered but
    /// unused Go metric vector is not: use only for families CoreDNS shows at zero).
    pub fn declare(&mut self, def: &'static Def) {
        self.families.entry(def.name).or_insert_with(|| Family {
            def,
            series: BTreeMap::new(),
        });
    }

    /// Adds `value` to the sample of `def` with `labels` (counters and histograms add up,
    /// gauges follow the family's kind).
    pub fn put(&mut self, def: &'static Def, labels: Vec<String>, value: Value) {
        debug_assert_eq!(labels.len(), def.labels.len(), "{}", def.name);
        let family = self.families.entry(def.name).or_insert_with(|| Family {
            def,
            series: BTreeMap::new(),
        });
        match family.series.get_mut(&labels) {
            None => {
                family.series.insert(labels, value);
            }
            Some(existing) => combine(def.kind, existing, &value),
        }
    }

    /// A counter sample.
    pub fn counter(&mut self, def: &'static Def, labels: &[&str], value: u64) {
        self.put(def, owned(labels), Value::Counter(value));
    }

    /// A gauge sample.
    pub fn gauge(&mut self, def: &'static Def, labels: &[&str], value: f64) {
        self.put(def, owned(labels), Value::Gauge(value));
    }

    /// Adds another gateway's snapshot to this one.
    pub fn merge(&mut self, other: &Snapshot) {
        for family in other.families.values() {
            if family.series.is_empty() {
                self.declare(family.def);
            }
            for (labels, value) in &family.series {
                self.put(family.def, labels.clone(), value.clone());
            }
        }
    }

    /// The value of a counter or gauge sample (tests and tools).
    pub fn value(&self, name: &str, labels: &[&str]) -> Option<f64> {
        match self.families.get(name)?.series.get(&owned(labels))? {
            Value::Counter(v) => Some(*v as f64),
            Value::Gauge(v) | Value::FloatCounter(v) => Some(*v),
            Value::Histogram(h) => Some(h.count() as f64),
        }
    }
}

fn owned(labels: &[&str]) -> Vec<String> {
    labels.iter().map(|l| (*l).to_string()).collect()
}

fn combine(kind: Kind, existing: &mut Value, new: &Value) {
    match (existing, new) {
        (Value::Counter(a), Value::Counter(b)) => *a += b,
        (Value::FloatCounter(a), Value::FloatCounter(b)) => *a += b,
        (Value::Histogram(a), Value::Histogram(b)) => a.add(b),
        (Value::Gauge(a), Value::Gauge(b)) => {
            *a = match kind {
                Kind::GaugeMax => a.max(*b),
                _ => *a + b,
            }
        }
        // A family has one kind of value; a mismatch is a bug of ours, not worth a panic.
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::families::{self, SIZE_BUCKETS, TIME_BUCKETS};

    #[test]
    fn buckets_are_inclusive_and_overflow_goes_to_inf() {
        let mut h = Histogram::new(SIZE_BUCKETS);
        for v in [0.0, 100.0, 100.5, 70_000.0] {
            h.observe(v);
        }
        assert_eq!(h.count(), 4);
        assert_eq!(h.cumulative(0.0), 1);
        assert_eq!(h.cumulative(100.0), 2);
        assert_eq!(h.cumulative(200.0), 3);
        assert_eq!(h.cumulative(64e3), 3);
        assert_eq!(h.cumulative(f64::INFINITY), 4);
        assert_eq!(h.sum(), 70_200.5);
    }

    #[test]
    fn time_buckets_are_coredns_exponential_ones() {
        let computed: Vec<f64> = (0..16).map(|i| 0.00025 * 2f64.powi(i)).collect();
        assert_eq!(TIME_BUCKETS, computed.as_slice());
    }

    #[test]
    fn snapshots_add_up() {
        let mut a = Snapshot::default();
        a.counter(&families::DNS_REQUESTS, &["s", "z", "", "udp", "1", "A"], 2);
        a.gauge(&families::UPSTREAM_UP, &["1.2.3.4:53"], 0.0);
        a.gauge(&families::INFLIGHT, &[], 3.0);
        let mut b = Snapshot::default();
        b.counter(&families::DNS_REQUESTS, &["s", "z", "", "udp", "1", "A"], 3);
        b.counter(&families::DNS_REQUESTS, &["s", "z", "", "tcp", "1", "A"], 1);
        b.gauge(&families::UPSTREAM_UP, &["1.2.3.4:53"], 1.0);
        b.gauge(&families::INFLIGHT, &[], 4.0);
        let mut h = Histogram::new(TIME_BUCKETS);
        h.observe(0.001);
        b.put(
            &families::DNS_DURATION,
            vec!["s".into(), "z".into(), String::new()],
            Value::Histogram(h.clone()),
        );
        a.merge(&b);
        a.merge(&b);
        let udp = ["s", "z", "", "udp", "1", "A"];
        assert_eq!(a.value("coredns_dns_requests_total", &udp), Some(8.0));
        assert_eq!(a.value("gatherdns_upstream_up", &["1.2.3.4:53"]), Some(1.0));
        assert_eq!(a.value("gatherdns_queries_in_flight", &[]), Some(11.0));
        assert_eq!(
            a.value("coredns_dns_request_duration_seconds", &["s", "z", ""]),
            Some(2.0)
        );
    }
}
