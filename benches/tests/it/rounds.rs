//! A forge run's charts and the figures its promotion reads.
#![allow(clippy::unwrap_used)] // tests: a broken fixture should fail loudly

use std::time::Duration;

use aura_benches::rounds::{self, learn_rate_series, loss_series, RoundFigures};
use aura_benches::suite::{Status, Tally};

/// A tally of `correct`, `wrong` and `refused` outcomes.
fn tally(correct: usize, wrong: usize, refused: usize) -> Tally {
    let mut t = Tally::default();
    for (status, n) in [
        (Status::Correct, correct),
        (Status::Wrong, wrong),
        (Status::Refused, refused),
    ] {
        for _ in 0..n {
            t.add(status, Duration::from_secs(1));
        }
    }
    t
}

fn figures(round: u32, held_out: Tally, everyday: Option<Tally>) -> RoundFigures {
    RoundFigures {
        round,
        held_out,
        everyday,
        losses: (1..=4).map(|s| (s, 1.0 / f64::from(s))).collect(),
    }
}

#[test]
fn the_learn_rate_chart_has_a_point_per_model_on_each_set() {
    let run = [
        RoundFigures {
            losses: Vec::new(),
            ..figures(0, tally(13, 6, 46), Some(tally(29, 3, 13)))
        },
        figures(1, tally(27, 14, 24), Some(tally(26, 10, 9))),
    ];
    let series = learn_rate_series(&run);
    let labels: Vec<&str> = series.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "held-out tasks: learned, % of requests",
            "held-out tasks: committed but wrong, % of commits",
            "everyday suite: learned, % of requests",
            "everyday suite: committed but wrong, % of commits",
        ]
    );
    assert_eq!(series[0].points, [(0.0, 20.0), (1.0, 27.0 * 100.0 / 65.0)]);
    assert_eq!(series[1].points[1], (1.0, 14.0 * 100.0 / 41.0));
    assert_eq!(series[2].points[0], (0.0, 29.0 * 100.0 / 45.0));
    // Only trained rounds have a loss curve.
    let losses = loss_series(&run);
    assert_eq!(losses.len(), 1);
    assert_eq!(losses[0].label, "round 1 training loss");
    assert_eq!(losses[0].points[3], (4.0, 0.25));
}

#[test]
fn a_run_without_the_everyday_suite_charts_the_held_out_tasks_and_cannot_promote() {
    let base = figures(0, tally(1, 0, 1), None);
    let forged = figures(1, tally(2, 0, 0), None);
    assert_eq!(learn_rate_series(&[base.clone(), forged.clone()]).len(), 2);
    let why = rounds::learning(&base, &forged).unwrap_err();
    assert!(why.contains("everyday suite was skipped"), "{why}");
}

#[test]
fn the_learning_compared_is_the_two_models_tallies() {
    let serving = figures(0, tally(13, 6, 46), Some(tally(29, 3, 13)));
    let forged = figures(1, tally(20, 5, 40), Some(tally(30, 3, 12)));
    let learning = rounds::learning(&serving, &forged).unwrap();
    assert_eq!(learning.held_out.serving.learned, 13);
    assert_eq!(learning.held_out.facet.wrong, 5);
    assert_eq!(learning.everyday.facet.requests, 45);
    assert!(learning.held_out.beats() && learning.everyday.beats());
}

#[test]
fn draw_writes_both_charts_as_png() {
    let dir = tempfile::tempdir().unwrap();
    let run = [
        figures(0, tally(13, 6, 46), Some(tally(29, 3, 13))),
        figures(1, tally(27, 14, 24), Some(tally(26, 10, 9))),
    ];
    let files = rounds::draw(dir.path(), &run).unwrap();
    assert_eq!(files.len(), 2);
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "{}", f.display());
    }
}
