//! The generated sample policy file, with its rule lines uncommented, loads back into exactly
//! the default rules.

use policy::{defaults, parse, sample_yaml, Enforcer};

/// Uncomments the `#"name": "check"` lines, as an operator would; description and operation
/// comments (`# ...`) stay comments.
fn uncomment(sample: &str) -> String {
    sample
        .lines()
        .map(|l| {
            l.strip_prefix("#\"")
                .map_or(l.to_owned(), |rest| format!("\"{rest}"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn uncommented_sample_parses_back_into_the_defaults() {
    let sample = sample_yaml();
    let mut enforcer = Enforcer::empty();
    let report = enforcer.load_overrides(&uncomment(&sample)).unwrap();

    // Every default came back, and nothing else.
    assert_eq!(report.redundant.len(), defaults().len());
    assert!(report.overridden.is_empty(), "{:?}", report.overridden);
    assert!(report.added.is_empty(), "{:?}", report.added);
    assert_eq!(enforcer.rule_names().len(), defaults().len());

    for d in defaults() {
        assert_eq!(enforcer.check_str(d.name), Some(d.check_str), "{}", d.name);
        assert_eq!(
            parse(enforcer.check_str(d.name).unwrap()).unwrap(),
            parse(d.check_str).unwrap(),
            "{}",
            d.name
        );
    }
}

#[test]
fn commented_sample_changes_nothing() {
    let mut enforcer = Enforcer::with_defaults();
    let report = enforcer.load_overrides(&sample_yaml()).unwrap();
    assert_eq!(report, policy::LoadReport::default());
}

#[test]
fn sample_documents_every_rule() {
    let sample = sample_yaml();
    for d in defaults() {
        assert!(
            sample.contains(&format!("#\"{}\": ", d.name)),
            "{} missing from the sample",
            d.name
        );
        for op in d.operations {
            assert!(sample.contains(&format!("# {}  {}\n", op.method, op.path)));
        }
    }
}
