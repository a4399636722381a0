//! Properties of the Composite Entropy Metric and the stagnation rule.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aura_cognition::cem::{complexity, coverage, diversity, jaccard, novelty, shingles, CemInput};
use aura_cognition::{Cem, Stagnation, StagnationMonitor};

const A: &str = "def fibonacci(self, n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a";
const B: &str = "def greet(self, name):\n    return 'Hello, ' + name + '!'";

#[test]
fn identical_outputs_have_no_novelty() {
    assert_eq!(novelty(A, &[A.to_string()]), 0.0);
    assert_eq!(novelty(A, &[]), 1.0);
    let n = novelty(A, &[B.to_string()]);
    assert!(n > 0.9, "{n}");
    // the most similar item in the window decides
    assert_eq!(novelty(A, &[B.to_string(), A.to_string()]), 0.0);
}

#[test]
fn diversity_is_zero_for_echoes_and_high_for_different_texts() {
    assert_eq!(diversity(&[A, A, A]), 0.0);
    assert_eq!(diversity(&[A]), 0.0);
    assert!(diversity(&[A, B]) > 0.9);
}

#[test]
fn more_evidence_means_more_coverage() {
    assert_eq!(coverage(&[]), 0.0);
    assert_eq!(coverage(&[0, 0, 0, 0]), 0.0);
    assert_eq!(coverage(&[1, 0, 0, 0]), 0.25);
    assert_eq!(coverage(&[1, 2, 0, 3]), 0.75);
    assert_eq!(coverage(&[1, 1, 1, 1]), 1.0);
}

#[test]
fn complexity_counts_code_tokens_up_to_the_cap() {
    assert_eq!(complexity("", 20), 0.0);
    // def, for, return
    assert_eq!(complexity(A, 20), 3.0 / 20.0);
    let big = "if x:\n    return 1\n".repeat(30);
    assert_eq!(complexity(&big, 20), 1.0);
    // identifiers that merely contain keywords do not count
    assert_eq!(complexity("format_iffy = deferred", 20), 0.0);
}

#[test]
fn shingles_and_jaccard() {
    assert_eq!(shingles("a b c d").len(), 2);
    assert_eq!(shingles("one two").len(), 1);
    assert!(shingles("").is_empty());
    assert_eq!(jaccard(&shingles(""), &shingles("")), 1.0);
    assert_eq!(jaccard(&shingles("a b c"), &shingles("x y z")), 0.0);
}

#[test]
fn the_score_is_the_weighted_sum_in_unit_range() {
    let cem = Cem::default();
    let s = cem.score(&CemInput {
        output: A,
        history: &[],
        contributions: &[A, B],
        evidence_per_round: &[1, 0],
        code: A,
    });
    let w = cem.weights;
    let expected = w.novelty * s.novelty
        + w.diversity * s.diversity
        + w.coverage * s.coverage
        + w.complexity * s.complexity;
    assert!((s.value - expected).abs() < 1e-12);
    assert!((0.0..=1.0).contains(&s.value));
    assert!((w.novelty + w.diversity + w.coverage + w.complexity - 1.0).abs() < 1e-12);
}

#[test]
fn stagnation_is_a_low_windowed_mean() {
    let mut m = StagnationMonitor::new(3, 0.4);
    assert_eq!(m.record(0.1), Stagnation::Warming { cycles: 1 });
    assert_eq!(m.record(0.2), Stagnation::Warming { cycles: 2 });
    assert!(matches!(m.record(0.3), Stagnation::Stagnant { mean } if (mean - 0.2).abs() < 1e-9));
    assert!(m.is_stagnant());
    // one lively cycle pushes the oldest out: (0.2 + 0.3 + 0.9) / 3 ≈ 0.47
    assert!(matches!(m.record(0.9), Stagnation::Healthy { .. }));
    assert!(!m.is_stagnant());
    m.reset();
    assert_eq!(m.state(), Stagnation::Warming { cycles: 0 });
    assert_eq!(m.record(0.1), Stagnation::Warming { cycles: 1 });
}
