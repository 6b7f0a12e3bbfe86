//! The small pieces of the Prometheus text format (version 0.0.4).

use std::fmt::Write as _;

/// A metric or label name: `[a-zA-Z_:][a-zA-Z0-9_:]*` (no `:` in label
/// names, and names starting with `__` are Prometheus' own).
pub fn valid_name(name: &str, label: bool) -> bool {
    let ok_first = |c: char| c.is_ascii_alphabetic() || c == '_' || (!label && c == ':');
    let ok_rest = |c: char| c.is_ascii_alphanumeric() || c == '_' || (!label && c == ':');
    let mut chars = name.chars();
    chars.next().is_some_and(ok_first) && chars.all(ok_rest) && !(label && name.starts_with("__"))
}

/// A label value in quotes: `\`, `"` and newlines escaped.
pub fn push_label_value(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// HELP text: `\` and newlines escaped; with `quotes` (OpenMetrics), `"`
/// too (the Prometheus format leaves them).
fn push_help_as(out: &mut String, help: &str, quotes: bool) {
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quotes => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

// ANCHOR: header
/// A family's metadata lines. In the Prometheus format, `# HELP` and
/// `# TYPE` under the sample name. In OpenMetrics, the family is named
/// without a counter's `_total` (its samples keep it), and a name ending
/// in a base unit (`_seconds`, `_bytes`) gets a `# UNIT` line.
pub fn push_header(out: &mut String, name: &str, help: &str, kind: &str, openmetrics: bool) {
    let family = if openmetrics && kind == "counter" { name.strip_suffix("_total").unwrap_or(name) } else { name };
    out.push_str("# HELP ");
    out.push_str(family);
    out.push(' ');
    push_help_as(out, help, openmetrics);
    out.push_str("\n# TYPE ");
    out.push_str(family);
    out.push(' ');
    out.push_str(kind);
    out.push('\n');
    if openmetrics && let Some(unit) = ["seconds", "bytes"].into_iter().find(|u| family.ends_with(&format!("_{u}"))) {
        out.push_str("# UNIT ");
        out.push_str(family);
        out.push(' ');
        out.push_str(unit);
        out.push('\n');
    }
}
// ANCHOR_END: header

/// A sample value: integers as integers, `+Inf`, `-Inf`, `NaN` spelled
/// as Prometheus spells them.
pub fn push_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{v}");
    }
}

/// `{a="x",b="y"}` for these names and values, with one more pair at the
/// end when given (a histogram's `le`); nothing at all for no labels.
pub fn push_labels(out: &mut String, names: &[String], values: &[String], extra: Option<(&str, &str)>) {
    if names.is_empty() && extra.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    let pairs = names.iter().map(String::as_str).zip(values.iter().map(String::as_str)).chain(extra);
    for (name, value) in pairs {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(name);
        out.push('=');
        push_label_value(out, value);
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_data_model() {
        assert!(valid_name("lb_requests_total", false));
        assert!(valid_name("job:rate5m", false));
        assert!(!valid_name("job:rate5m", true));
        assert!(!valid_name("9lives", false));
        assert!(!valid_name("", false));
        assert!(!valid_name("__name__", true));
        assert!(!valid_name("a-b", false));
    }

    #[test]
    fn values_and_labels_are_escaped() {
        let mut s = String::new();
        push_labels(&mut s, &["path".into()], &["a\"b\\c\nd".into()], Some(("le", "+Inf")));
        assert_eq!(s, r#"{path="a\"b\\c\nd",le="+Inf"}"#);
        let mut f = String::new();
        for v in [1.0, 0.25, f64::INFINITY, f64::NEG_INFINITY, f64::NAN, 1e-7] {
            push_float(&mut f, v);
            f.push(' ');
        }
        assert_eq!(f, "1 0.25 +Inf -Inf NaN 0.0000001 ");
    }
}
