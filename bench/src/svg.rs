//! A dependency-free SVG plot of latency distributions: one cumulative curve per series on a
//! logarithmic millisecond axis, so 90 ms and 9 s runs share a readable plot.

use std::fmt::Write as _;

/// One curve: its legend, colour and samples (ms, any order).
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// CSS colour.
    pub color: &'static str,
    /// Samples in milliseconds.
    pub samples: Vec<f64>,
}

const W: f64 = 860.0;
const H: f64 = 480.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 60.0;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Decades (1, 10, 100, ...) that cover `lo..=hi` ms.
fn decades(lo: f64, hi: f64) -> (i32, i32) {
    let a = lo.max(0.001).log10().floor() as i32;
    let b = hi.max(lo * 10.0).log10().ceil() as i32;
    (a, b.max(a + 1))
}

/// The cumulative distribution plot of `series`, titled `title`, as an SVG document.
pub fn cdf_plot(title: &str, series: &[Series]) -> String {
    let all = series.iter().flat_map(|s| s.samples.iter().copied());
    let (lo, hi) = all.fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (d0, d1) = if hi > 0.0 { decades(lo, hi) } else { (0, 3) };
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let x = |ms: f64| LEFT + (ms.max(1e-3).log10() - f64::from(d0)) / f64::from(d1 - d0) * plot_w;
    let y = |frac: f64| TOP + (1.0 - frac) * plot_h;

    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" \
         viewBox=\"0 0 {W} {H}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">{}</text>\n",
        W / 2.0,
        escape(title)
    );
    // Grid: decades and their 2x and 5x, and every 10 % of the samples.
    for d in d0..=d1 {
        for m in [1.0, 2.0, 5.0] {
            let ms = m * 10f64.powi(d);
            if ms > 10f64.powi(d1) {
                continue;
            }
            let px = x(ms);
            let stroke = if m == 1.0 { "#bbb" } else { "#e6e6e6" };
            let _ = writeln!(
                svg,
                "<line x1=\"{px:.1}\" y1=\"{TOP}\" x2=\"{px:.1}\" y2=\"{:.1}\" stroke=\"{stroke}\"/>",
                TOP + plot_h
            );
            let label = if ms >= 1000.0 {
                format!("{} s", ms / 1000.0)
            } else {
                format!("{ms} ms")
            };
            let _ = writeln!(
                svg,
                "<text x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#444\">{label}</text>",
                TOP + plot_h + 18.0
            );
        }
    }
    for i in 0..=10 {
        let frac = f64::from(i) / 10.0;
        let py = y(frac);
        let _ = writeln!(
            svg,
            "<line x1=\"{LEFT}\" y1=\"{py:.1}\" x2=\"{:.1}\" y2=\"{py:.1}\" stroke=\"#e6e6e6\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#444\">{}%</text>",
            LEFT + plot_w,
            LEFT - 6.0,
            py + 4.0,
            i * 10
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">latency (log scale)</text>\n\
         <text x=\"16\" y=\"{:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {:.1})\">\
         share of creates done</text>",
        LEFT + plot_w / 2.0,
        H - 14.0,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0
    );
    // The curves: a step up of 1/n at each sample.
    for (k, s) in series.iter().enumerate() {
        let mut v = s.samples.clone();
        v.sort_by(f64::total_cmp);
        let n = v.len() as f64;
        let mut path = String::new();
        for (i, ms) in v.iter().enumerate() {
            let (px, before, after) = (x(*ms), y(i as f64 / n), y((i + 1) as f64 / n));
            let cmd = if i == 0 { 'M' } else { 'L' };
            let _ = write!(path, "{cmd}{px:.1},{before:.1} L{px:.1},{after:.1} ");
        }
        let _ = writeln!(
            svg,
            "<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>",
            path.trim_end(),
            s.color
        );
        // The legend sits bottom right, where cumulative curves never go.
        let lx = LEFT + plot_w - 290.0;
        let ly = TOP + plot_h - 14.0 - 18.0 * (series.len() - 1 - k) as f64;
        let _ = writeln!(
            svg,
            "<line x1=\"{:.1}\" y1=\"{ly:.1}\" x2=\"{:.1}\" y2=\"{ly:.1}\" stroke=\"{}\" \
             stroke-width=\"3\"/>\n<text x=\"{:.1}\" y=\"{:.1}\">{} (n={})</text>",
            lx,
            lx + 24.0,
            s.color,
            lx + 30.0,
            ly + 4.0,
            escape(&s.label),
            v.len()
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_every_series_on_a_decade_axis() {
        let svg = cdf_plot(
            "t <1>",
            &[
                Series {
                    label: "ours".into(),
                    color: "#1f77b4",
                    samples: vec![90.0, 80.0, 120.0],
                },
                Series {
                    label: "podman".into(),
                    color: "#d62728",
                    samples: vec![400.0, 2500.0],
                },
            ],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("t &lt;1&gt;"));
        assert_eq!(svg.matches("<path ").count(), 2);
        assert!(svg.contains("ours (n=3)") && svg.contains("podman (n=2)"));
        // 80 ms .. 2.5 s spans the decades 10 ms .. 10 s.
        assert!(svg.contains(">10 ms<") && svg.contains(">10 s<"));
        assert!(!svg.contains(">1 ms<") && !svg.contains(">20 s<"));
    }
}
