//! Reading the process's metrics as `/metrics` renders them (Prometheus'
//! text format): the samples, their labels and values. Only what the
//! exporter writes is read; a line it would not write is skipped.

/// One sample: `name{labels} value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Every sample of `text`.
pub fn samples(text: &str) -> Vec<Sample> {
    text.lines().filter_map(sample).collect()
}

fn sample(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let (series, value) = line.rsplit_once(' ')?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        number => number.parse().ok()?,
    };
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, labels(rest.strip_suffix('}')?)?),
        None => (series, Vec::new()),
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// `a="x",b="y\"z"` as pairs.
fn labels(mut text: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    while !text.is_empty() {
        let (key, rest) = text.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next()? {
                (at, '"') => break at,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (_, other) => value.push(other),
            }
        };
        pairs.push((key.trim_start_matches(',').to_owned(), value));
        text = rest[end + 1..].trim_start_matches(',');
    }
    Some(pairs)
}

/// The `q` quantile (0 to 1) of a histogram's cumulative buckets (`le`
/// bounds with their counts, in order), interpolated within its bucket as
/// Prometheus' `histogram_quantile` does; `None` with no observations.
pub fn quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut below = (0.0, 0.0);
    for &(bound, count) in buckets {
        if count >= rank {
            if bound.is_infinite() {
                return Some(below.0);
            }
            let (low, low_count) = below;
            let within = count - low_count;
            let share = if within > 0.0 {
                (rank - low_count) / within
            } else {
                1.0
            };
            return Some(low + (bound - low) * share);
        }
        below = (bound, count);
    }
    Some(below.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_read_with_escaped_labels() {
        let text = "# TYPE x counter\nx_total{service=\"a.B\",why=\"say \\\"no\\\"\"} 3\nup 1\nh_bucket{le=\"+Inf\"} 4\nbad line\n";
        let read = samples(text);
        assert_eq!(read.len(), 3);
        assert_eq!(read[0].label("service"), Some("a.B"));
        assert_eq!(read[0].label("why"), Some("say \"no\""));
        assert_eq!(read[0].value, 3.0);
        assert_eq!(read[1].name, "up");
        assert_eq!(read[2].label("le"), Some("+Inf"));
    }

    #[test]
    fn a_quantile_is_interpolated_in_its_bucket() {
        let buckets = [
            (0.01, 50.0),
            (0.1, 90.0),
            (1.0, 100.0),
            (f64::INFINITY, 100.0),
        ];
        assert_eq!(quantile(0.5, &buckets), Some(0.01));
        let p99 = quantile(0.99, &buckets).unwrap_or_default();
        assert!((p99 - 0.91).abs() < 1e-9, "{p99}");
        assert_eq!(quantile(0.5, &[(1.0, 0.0), (f64::INFINITY, 0.0)]), None);
    }
}
