//! Container names Zun-style (`capsule-<capsule>-<greek>-<n>`) for containers the template
//! leaves unnamed, never colliding within the capsule.

use std::collections::HashSet;

use rand::Rng;

const GREEK: [&str; 24] = [
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
    "lambda", "mu", "nu", "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi",
    "psi", "omega",
];

/// Picks a name for an unnamed container of capsule `capsule` (its name, or its uuid), unused
/// in `taken`, and records it there.
pub fn generate(capsule: &str, taken: &mut HashSet<String>) -> String {
    let mut rng = rand::thread_rng();
    // 576 combinations; a capsule holds at most a few dozen containers, so random picks end
    // fast, and the counter fallback makes termination certain.
    for _ in 0..64 {
        let name = format!(
            "capsule-{capsule}-{}-{}",
            GREEK[rng.gen_range(0..GREEK.len())],
            rng.gen_range(1..=24)
        );
        if taken.insert(name.clone()) {
            return name;
        }
    }
    let mut n = 25;
    loop {
        let name = format!("capsule-{capsule}-omega-{n}");
        if taken.insert(name.clone()) {
            return name;
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_zun_shaped_and_unique() {
        let mut taken = HashSet::new();
        let names: Vec<String> = (0..700).map(|_| generate("web", &mut taken)).collect();
        assert_eq!(taken.len(), 700);
        let first = &names[0];
        let parts: Vec<&str> = first.split('-').collect();
        assert_eq!(parts[0], "capsule");
        assert_eq!(parts[1], "web");
        assert!(GREEK.contains(&parts[2]));
        let n: u32 = parts[3].parse().unwrap();
        assert!((1..=24).contains(&n));
    }
}
