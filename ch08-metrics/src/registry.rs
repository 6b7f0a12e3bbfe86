//! The registry: every family, rendered as a Prometheus scrape expects
//! (text format 0.0.4: `# HELP` and `# TYPE` once per family, then its
//! samples, each line ending in a newline, the last one too).

use std::sync::{Arc, Mutex, PoisonError};

use crate::family::Family;
use crate::metric::{Counter, Gauge, Histogram};
use crate::text::{push_float, push_header, push_labels};

/// The media type of what [`Registry::render`] writes.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The media type of OpenMetrics 1.0 text.
pub const OPENMETRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Which text format a scrape is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus' text format 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0: the same samples, families named without a
    /// counter's `_total`, `# UNIT` lines, and `# EOF` at the end.
    OpenMetrics,
}

impl Format {
    // ANCHOR: negotiate
    /// The format a scraper's `Accept` header asks for: OpenMetrics when it
    /// lists `application/openmetrics-text` without `q=0` (Prometheus does,
    /// preferring it), else the Prometheus format every scraper reads.
    pub fn from_accept(accept: Option<&str>) -> Format {
        let wants_openmetrics = accept.unwrap_or("").split(',').any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("");
            let refused = parts.any(|p| p.strip_prefix("q=").is_some_and(|q| q.parse::<f64>().is_ok_and(|q| q <= 0.0)));
            media.eq_ignore_ascii_case("application/openmetrics-text") && !refused
        });
        if wants_openmetrics { Format::OpenMetrics } else { Format::Prometheus }
    }
    // ANCHOR_END: negotiate

    /// The `Content-Type` of a scrape in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => CONTENT_TYPE,
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }
}

/// Something that renders a family of samples.
pub trait Collect: Send + Sync + std::fmt::Debug {
    /// The family's name.
    fn name(&self) -> &str;
    /// Appends its metadata and sample lines in `format`.
    fn render(&self, out: &mut String, format: Format);
    /// Resolutions folded into `__other__` (the cardinality budget);
    /// `None` for a collector without a budget (its series are fixed).
    fn folded(&self) -> Option<u64>;
}

/// How a metric type writes its samples.
pub trait Kind: Send + Sync {
    /// `counter`, `gauge` or `histogram`.
    const TYPE: &'static str;
    /// Appends the sample lines of one series.
    fn samples(&self, name: &str, label_names: &[String], values: &[String], out: &mut String);
}

pub(crate) fn line(out: &mut String, name: &str, suffix: &str, names: &[String], values: &[String], value: f64) {
    out.push_str(name);
    out.push_str(suffix);
    push_labels(out, names, values, None);
    out.push(' ');
    push_float(out, value);
    out.push('\n');
}

impl Kind for Counter {
    const TYPE: &'static str = "counter";
    fn samples(&self, name: &str, names: &[String], values: &[String], out: &mut String) {
        line(out, name, "", names, values, self.get() as f64);
    }
}

impl Kind for Gauge {
    const TYPE: &'static str = "gauge";
    fn samples(&self, name: &str, names: &[String], values: &[String], out: &mut String) {
        line(out, name, "", names, values, self.get() as f64);
    }
}

// ANCHOR: histogram_samples
impl Kind for Histogram {
    const TYPE: &'static str = "histogram";
    fn samples(&self, name: &str, names: &[String], values: &[String], out: &mut String) {
        let cumulative = self.cumulative();
        let count = cumulative.last().copied().unwrap_or(0);
        let mut le = String::new();
        for (i, c) in cumulative.iter().enumerate() {
            le.clear();
            match self.bounds().get(i) {
                Some(&b) => push_float(&mut le, b),
                None => le.push_str("+Inf"),
            }
            out.push_str(name);
            out.push_str("_bucket");
            push_labels(out, names, values, Some(("le", &le)));
            out.push(' ');
            push_float(out, *c as f64);
            out.push('\n');
        }
        line(out, name, "_sum", names, values, self.sum());
        line(out, name, "_count", names, values, count as f64);
    }
}
// ANCHOR_END: histogram_samples

impl<M: Kind + 'static> Collect for Family<M> {
    fn name(&self) -> &str {
        Family::name(self)
    }

    fn render(&self, out: &mut String, format: Format) {
        push_header(out, self.name(), self.help(), M::TYPE, format == Format::OpenMetrics);
        for (values, series) in self.snapshot() {
            series.samples(self.name(), self.label_names(), &values, out);
        }
    }

    fn folded(&self) -> Option<u64> {
        Some(Family::folded(self))
    }
}

/// Every family a program exports.
#[derive(Debug, Default)]
pub struct Registry {
    families: Mutex<Vec<Arc<dyn Collect>>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a family; returns it, for the caller to resolve series from.
    pub fn register<M: Kind + 'static>(&self, family: Family<M>) -> Arc<Family<M>> {
        let family = Arc::new(family);
        let collect: Arc<dyn Collect> = Arc::clone(&family) as Arc<dyn Collect>;
        self.families.lock().unwrap_or_else(PoisonError::into_inner).push(collect);
        family
    }

    /// Adds any other collector (one read at scrape time, say).
    pub fn add(&self, collect: Arc<dyn Collect>) {
        self.families.lock().unwrap_or_else(PoisonError::into_inner).push(collect);
    }

    // ANCHOR: render
    /// The whole scrape: each family in the order registered, then how
    /// many label resolutions each family folded into `__other__`.
    pub fn render(&self) -> String {
        self.render_as(Format::Prometheus)
    }

    /// The whole scrape in `format`.
    pub fn render_as(&self, format: Format) -> String {
        let families = self.families.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let mut out = String::with_capacity(4096);
        for f in &families {
            f.render(&mut out, format);
        }
        let budgets: Vec<(&str, u64)> = families.iter().filter_map(|f| Some((f.name(), f.folded()?))).collect();
        if !budgets.is_empty() {
            let help = "Label values folded into the __other__ series because their family reached its maximum number of series.";
            push_header(&mut out, "metrics_series_folded_total", help, "counter", format == Format::OpenMetrics);
            let names = ["family".to_string()];
            for (name, folded) in budgets {
                line(&mut out, "metrics_series_folded_total", "", &names, &[name.to_string()], folded as f64);
            }
        }
        if format == Format::OpenMetrics {
            out.push_str("# EOF\n");
        }
        out
    }
    // ANCHOR_END: render
}
