//! Reading a Prometheus scrape in tests: the samples of OpenMetrics text
//! (`name{label="value",...} value` lines, ending with `# EOF`), and one sample's value by its
//! name and exact labels.

use std::collections::BTreeMap;

/// One sample: its name, labels and value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The series name (`zun_api_requests_total`).
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

/// The samples of `text`; panics (naming the line) on anything that is not OpenMetrics text,
/// including a missing `# EOF`.
pub fn samples(text: &str) -> Vec<Sample> {
    assert!(
        text.trim_end().ends_with("# EOF"),
        "not OpenMetrics: {text}"
    );
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("{l}"));
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.strip_suffix('}').unwrap_or_else(|| panic!("{l}"))),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once("=\"").unwrap_or_else(|| panic!("{l}"));
                    (k.to_owned(), v.trim_end_matches('"').to_owned())
                })
                .collect();
            Sample {
                name: name.to_owned(),
                labels,
                value: value.parse().unwrap_or_else(|_| panic!("{l}")),
            }
        })
        .collect()
}

/// The value of series `name` with exactly `labels`; 0 when there is none (as Prometheus
/// reads a counter that never moved).
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    find(samples, name, labels).unwrap_or(0.0)
}

/// The value of series `name` with exactly `labels`, if there is one.
pub fn find(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    samples
        .iter()
        .find(|s| s.name == name && s.labels == want)
        .map(|s| s.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_samples() {
        let text = "# HELP x_total X.\n# TYPE x counter\n\
                    x_total{api=\"container\",route=\"/v1/capsules/{ident}\"} 3\n\
                    up 1\n# EOF\n";
        let s = samples(text);
        assert_eq!(s.len(), 2);
        let route = [("api", "container"), ("route", "/v1/capsules/{ident}")];
        assert_eq!(value(&s, "x_total", &route), 3.0);
        assert_eq!(value(&s, "up", &[]), 1.0);
        assert_eq!(value(&s, "x_total", &[("api", "container")]), 0.0);
    }

    #[test]
    #[should_panic(expected = "not OpenMetrics")]
    fn text_without_eof_is_refused() {
        samples("up 1\n");
    }
}
