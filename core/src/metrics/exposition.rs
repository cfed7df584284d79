//! Rendering a [`Snapshot`] as the OpenMetrics text format with `prometheus-client`'s encoder,
//! which Prometheus scrapes as it does CoreDNS's `/metrics`. Counter families are declared
//! without their `_total` (OpenMetrics names the family, the sample carries the suffix).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{text, DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::families::Kind;
use super::snapshot::{Family, Snapshot, Value};

/// The `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The snapshot as OpenMetrics text, ending with `# EOF`.
pub fn render(snapshot: Snapshot) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Families(snapshot)));
    let mut text = String::with_capacity(16 * 1024);
    // Writing into a String cannot fail, and our collector never returns an error.
    let _ = text::encode(&mut text, &registry);
    text
}

#[derive(Debug)]
struct Families(Snapshot);

impl Collector for Families {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for family in self.0.families() {
            encode_family(&mut encoder, family)?;
        }
        Ok(())
    }
}

fn encode_family(encoder: &mut DescriptorEncoder, family: &Family) -> std::fmt::Result {
    let def = family.def;
    let (name, metric_type) = match def.kind {
        Kind::Counter => (
            def.name.strip_suffix("_total").unwrap_or(def.name),
            MetricType::Counter,
        ),
        Kind::GaugeSum | Kind::GaugeMax => (def.name, MetricType::Gauge),
        Kind::Histogram(_) => (def.name, MetricType::Histogram),
    };
    let mut metric = encoder.encode_descriptor(name, def.help, None, metric_type)?;
    for (values, value) in &family.series {
        let labels: Vec<(&str, &str)> = def
            .labels
            .iter()
            .copied()
            .zip(values.iter().map(String::as_str))
            .collect();
        if labels.is_empty() {
            encode_value(&mut metric, value)?;
        } else {
            let mut sample = metric.encode_family(&labels)?;
            encode_value(&mut sample, value)?;
        }
    }
    Ok(())
}

fn encode_value(
    encoder: &mut prometheus_client::encoding::MetricEncoder<'_>,
    value: &Value,
) -> std::fmt::Result {
    match value {
        Value::Counter(v) => encoder.encode_counter::<NoLabelSet, _, u64>(v, None),
        Value::FloatCounter(v) => encoder.encode_counter::<NoLabelSet, _, f64>(v, None),
        // Whole gauges print as integers, as Go's client prints them (`1`, not `1.0`).
        Value::Gauge(v) if v.fract() == 0.0 && v.abs() < 9e15 => encoder.encode_gauge(&(*v as i64)),
        Value::Gauge(v) => encoder.encode_gauge(v),
        Value::Histogram(h) => {
            encoder.encode_histogram::<NoLabelSet>(h.sum(), h.count(), &h.buckets(), None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::families;
    use crate::metrics::snapshot::Histogram;

    #[test]
    fn renders_coredns_names_and_openmetrics_framing() {
        let mut s = Snapshot::default();
        let labels = ["dns://:53", "example.org.", "", "udp", "1", "A"];
        s.counter(&families::DNS_REQUESTS, &labels, 3);
        s.counter(&families::RELOAD_FAILED, &[], 0);
        s.gauge(&families::BUILD_INFO, &["0.1.0", "", ""], 1.0);
        let mut h = Histogram::new(families::SIZE_BUCKETS);
        h.observe(41.0);
        s.put(
            &families::DNS_REQUEST_SIZE,
            ["dns://:53", "example.org.", "", "udp"]
                .map(String::from)
                .to_vec(),
            Value::Histogram(h),
        );
        let text = render(s);
        assert!(
            text.contains("# TYPE coredns_dns_requests counter\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "coredns_dns_requests_total{server=\"dns://:53\",zone=\"example.org.\",view=\"\",\
                 proto=\"udp\",family=\"1\",type=\"A\"} 3\n"
            ),
            "{text}"
        );
        assert!(text.contains("coredns_reload_failed_total 0\n"), "{text}");
        assert!(text.contains("# TYPE coredns_build_info gauge\n"), "{text}");
        assert!(
            text.contains("coredns_build_info{version=\"0.1.0\",revision=\"\",goversion=\"\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "coredns_dns_request_size_bytes_bucket{le=\"100.0\",server=\"dns://:53\",\
                 zone=\"example.org.\",view=\"\",proto=\"udp\"} 1\n"
            ),
            "{text}"
        );
        assert!(text.contains("{le=\"+Inf\",server=\"dns://:53\""), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
