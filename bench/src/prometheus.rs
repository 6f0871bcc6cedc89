//! Reading the services' `/metrics` (Prometheus' text format) where the
//! harness needs a figure from it: one parse of a series line, its labels
//! and its value.

/// One series of a metric: its labels as written, and its value.
#[derive(Clone, Copy, Debug)]
pub struct Series<'a> {
    labels: &'a str,
    pub value: f64,
}

impl<'a> Series<'a> {
    /// The value of label `name`, if the series has it.
    pub fn label(&self, name: &str) -> Option<&'a str> {
        self.labels.split(',').find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (key.trim() == name).then(|| value.trim().trim_matches('"'))
        })
    }
}

/// Every series of metric `name` in `text` (a `/metrics` page).
pub fn series<'a>(text: &'a str, name: &'a str) -> impl Iterator<Item = Series<'a>> + 'a {
    text.lines().filter_map(move |line| {
        let rest = line.strip_prefix(name)?;
        let (labels, value) = match rest.strip_prefix('{') {
            Some(labelled) => labelled.split_once("} ")?,
            None => ("", rest.strip_prefix(' ')?),
        };
        Some(Series {
            labels,
            value: value.trim().parse().ok()?,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_is_read_by_its_exact_name_with_its_labels() {
        let page = "# TYPE shop_x_total counter\n\
                    shop_x_total{service=\"orders\",code=\"ok\"} 12\n\
                    shop_x_total_more{service=\"orders\"} 5\n\
                    shop_y 3.5\n";
        let found: Vec<_> = series(page, "shop_x_total").collect();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].label("service"), Some("orders"));
        assert_eq!(found[0].label("code"), Some("ok"));
        assert_eq!(found[0].label("missing"), None);
        assert_eq!(found[0].value, 12.0);
        assert_eq!(series(page, "shop_y").map(|s| s.value).sum::<f64>(), 3.5);
    }
}
