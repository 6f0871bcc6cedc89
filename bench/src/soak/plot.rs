//! The soak's plot: one self-contained HTML page (inline SVG, no script,
//! nothing fetched) with a chart per quantity over time: calls per second,
//! p99, CPU, resident memory, file descriptors and database connections.

use std::{collections::BTreeMap, fmt::Write as _};

use super::timeline::Point;

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 260.0;
const MARGIN: f64 = 48.0;
const COLOURS: [&str; 10] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// A line per name: (seconds, value) points.
type Lines = BTreeMap<String, Vec<(f64, f64)>>;

/// Points drawn at most; a longer run's are merged in groups.
const MAX_POINTS: usize = 720;

/// The page, titled `title`, with `summary` (preformatted text) above the
/// charts.
pub fn page(title: &str, summary: &str, points: &[Point]) -> String {
    let thinned = thin(points, MAX_POINTS);
    let points = thinned.as_slice();
    let mut html = String::new();
    let title = escape(title);
    let _ = write!(
        html,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font-family:sans-serif;margin:2em}}pre{{background:#f4f4f4;padding:1em}}\
         svg{{display:block;margin-bottom:2em}}</style></head><body><h1>{title}</h1><pre>{}</pre>",
        escape(summary)
    );
    let calls: Lines = [
        ("calls/s".to_owned(), line(points, |p| p.calls_per_second)),
        ("failed/s".to_owned(), line(points, |p| p.failed as f64)),
    ]
    .into();
    html.push_str(&chart("Calls per second (all clients)", "calls/s", &calls));
    let p99: Lines = [("p99".to_owned(), line(points, |p| p.p99_ms))].into();
    html.push_str(&chart("p99 of the calls in each interval", "ms", &p99));
    let late: Lines = [("late".to_owned(), line(points, |p| p.machine_late_ms))].into();
    html.push_str(&chart(
        "The machine's stalls: how late a sleeping thread of the generator woke",
        "ms",
        &late,
    ));
    let waited: Lines = [("waited".to_owned(), line(points, |p| p.cpu_waited * 100.0))].into();
    html.push_str(&chart(
        "Share of the time some task waited for a CPU",
        "%",
        &waited,
    ));
    html.push_str(&chart(
        "CPU per process",
        "cores",
        &by_name(points, |p| &p.cpu_cores),
    ));
    html.push_str(&chart(
        "Resident memory per process",
        "MiB",
        &by_name(points, |p| &p.rss_mib),
    ));
    html.push_str(&chart(
        "Open file descriptors per process",
        "fds",
        &by_name(points, |p| &p.fds),
    ));
    html.push_str(&chart(
        "PostgreSQL connections per database",
        "connections",
        &by_name(points, |p| &p.db_connections),
    ));
    html.push_str("</body></html>\n");
    html
}

/// At most `max` points: each group of neighbours as one (calls/s and
/// CPU waited averaged, failures summed, the worst p99 and lateness, the
/// group's last memory, fds and connections), so nothing a group held is
/// hidden.
fn thin(points: &[Point], max: usize) -> Vec<Point> {
    let size = points.len().div_ceil(max.max(1)).max(1);
    points
        .chunks(size)
        .filter_map(|group| {
            let mut merged = group.last()?.clone();
            merged.calls_per_second =
                group.iter().map(|p| p.calls_per_second).sum::<f64>() / group.len() as f64;
            merged.failed = group.iter().map(|p| p.failed).sum();
            merged.p99_ms = group.iter().map(|p| p.p99_ms).fold(0.0, f64::max);
            merged.machine_late_ms = group.iter().map(|p| p.machine_late_ms).fold(0.0, f64::max);
            merged.cpu_waited =
                group.iter().map(|p| p.cpu_waited).sum::<f64>() / group.len() as f64;
            Some(merged)
        })
        .collect()
}

fn line(points: &[Point], value: impl Fn(&Point) -> f64) -> Vec<(f64, f64)> {
    points.iter().map(|p| (p.at, value(p))).collect()
}

fn by_name(points: &[Point], pick: impl Fn(&Point) -> &BTreeMap<String, f64>) -> Lines {
    let mut lines = Lines::new();
    for point in points {
        for (name, value) in pick(point) {
            lines
                .entry(name.clone())
                .or_default()
                .push((point.at, *value));
        }
    }
    lines
}

/// One chart: axes from zero to the largest value, a polyline and a
/// legend entry per line.
fn chart(title: &str, unit: &str, lines: &Lines) -> String {
    let x_max = lines
        .values()
        .flatten()
        .map(|(x, _)| *x)
        .fold(1.0_f64, f64::max);
    let y_max = lines
        .values()
        .flatten()
        .map(|(_, y)| *y)
        .fold(0.0_f64, f64::max)
        .max(1e-9)
        * 1.1;
    let (plot_w, plot_h) = (WIDTH - 2.0 * MARGIN, HEIGHT - 2.0 * MARGIN);
    let x_of = |x: f64| MARGIN + x / x_max * plot_w;
    let y_of = |y: f64| HEIGHT - MARGIN - y / y_max * plot_h;
    let legend_h = 16.0 * lines.len() as f64;
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<h2>{}</h2><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{}\" \
         font-size=\"11\"><rect x=\"{MARGIN}\" y=\"{MARGIN}\" width=\"{plot_w}\" \
         height=\"{plot_h}\" fill=\"none\" stroke=\"#999\"/>",
        escape(title),
        HEIGHT + legend_h
    );
    for tick in 0..=4 {
        let (x, y) = (x_max * f64::from(tick) / 4.0, y_max * f64::from(tick) / 4.0);
        let (at_x, at_y) = (x_of(x), y_of(y));
        let _ = write!(
            svg,
            "<line x1=\"{MARGIN}\" x2=\"{}\" y1=\"{at_y}\" y2=\"{at_y}\" stroke=\"#eee\"/>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <text x=\"{at_x}\" y=\"{}\" text-anchor=\"middle\">{} s</text>",
            WIDTH - MARGIN,
            MARGIN - 4.0,
            at_y + 4.0,
            round(y),
            HEIGHT - MARGIN + 14.0,
            x.round()
        );
    }
    let _ = write!(
        svg,
        "<text x=\"4\" y=\"{}\">{}</text>",
        MARGIN - 10.0,
        escape(unit)
    );
    for (index, (name, values)) in lines.iter().enumerate() {
        let colour = COLOURS[index % COLOURS.len()];
        let path: Vec<String> = values
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", x_of(*x), y_of(*y)))
            .collect();
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" points=\"{}\"/>\
             <rect x=\"{MARGIN}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{colour}\"/>\
             <text x=\"{}\" y=\"{}\">{}</text>",
            path.join(" "),
            HEIGHT + 16.0 * index as f64 - 6.0,
            MARGIN + 14.0,
            HEIGHT + 16.0 * index as f64 + 3.0,
            escape(name)
        );
    }
    svg.push_str("</svg>");
    svg
}

fn round(value: f64) -> String {
    if value >= 10.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_has_a_chart_per_quantity_and_a_line_per_process() {
        let points: Vec<Point> = (1..=3)
            .map(|second| Point {
                at: f64::from(second),
                calls_per_second: 100.0,
                p99_ms: 12.0,
                rss_mib: [("orders-0".to_owned(), 40.0), ("orders-1".to_owned(), 41.0)].into(),
                ..Point::default()
            })
            .collect();
        let html = page("soak <run>", "all hold & more", &points);
        assert_eq!(html.matches("<svg").count(), 8);
        assert!(html.contains("orders-1"));
        assert!(html.contains("soak &lt;run&gt;"));
        assert!(html.contains("all hold &amp; more"));
        assert!(!html.contains("<script"));
    }

    #[test]
    fn a_long_run_is_drawn_in_merged_groups_that_hide_no_failure() {
        let points: Vec<Point> = (0..10_000)
            .map(|second| Point {
                at: f64::from(second),
                calls_per_second: 10.0,
                failed: u64::from(second == 4321),
                p99_ms: if second == 77 { 900.0 } else { 5.0 },
                machine_late_ms: if second == 78 { 1200.0 } else { 1.0 },
                ..Point::default()
            })
            .collect();
        let thinned = thin(&points, 720);
        assert!(thinned.len() <= 720, "{}", thinned.len());
        assert_eq!(thinned.iter().map(|p| p.failed).sum::<u64>(), 1);
        assert!(thinned.iter().any(|p| p.p99_ms == 900.0));
        assert!(thinned.iter().any(|p| p.machine_late_ms == 1200.0));
        assert!(thinned.iter().all(|p| p.calls_per_second == 10.0));
    }
}
