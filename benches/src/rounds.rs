//! What a forge run shows a person, round by round: learn rates and training loss as
//! PNG charts, and the figures the facets registry's promotion rule reads.

use std::path::{Path, PathBuf};

use aura_forge::{LearnComparison, LearnRate, Learning};

use crate::plot::{line_chart, Chart, Series};
use crate::suite::Tally;

/// One model's figures in a run: the base (round 0) or a round's forged model.
#[derive(Clone, Debug, Default)]
pub struct RoundFigures {
    /// 0 for the base model, else the round that trained the adapter.
    pub round: u32,
    /// The curriculum's held-out tasks.
    pub held_out: Tally,
    /// The everyday suite, unless the run skipped it.
    pub everyday: Option<Tally>,
    /// `(step, training loss)` of the round's training (empty for the base).
    pub losses: Vec<(u32, f64)>,
}

/// A tally as the promotion rule counts it.
pub fn learn_rate(t: &Tally) -> LearnRate {
    let n = |x: usize| u32::try_from(x).unwrap_or(u32::MAX);
    LearnRate {
        requests: n(t.requests),
        learned: n(t.correct),
        wrong: n(t.wrong),
    }
}

/// The facet's learn rates against the serving model's, or why they cannot be judged.
pub fn learning(serving: &RoundFigures, facet: &RoundFigures) -> Result<Learning, String> {
    let (Some(serving_daily), Some(facet_daily)) = (&serving.everyday, &facet.everyday) else {
        return Err(
            "the everyday suite was skipped (--skip-everyday), and a facet must not lose on it"
                .into(),
        );
    };
    Ok(Learning {
        held_out: LearnComparison {
            serving: learn_rate(&serving.held_out),
            facet: learn_rate(&facet.held_out),
        },
        everyday: LearnComparison {
            serving: learn_rate(serving_daily),
            facet: learn_rate(facet_daily),
        },
    })
}

/// The learn-rate chart's lines: learned (% of requests) and committed but wrong (% of
/// commits), on each set, by round.
pub fn learn_rate_series(rounds: &[RoundFigures]) -> Vec<Series> {
    type Pick = fn(&RoundFigures) -> Option<&Tally>;
    let sets: [(&str, Pick); 2] = [
        ("held-out tasks", |r| Some(&r.held_out)),
        ("everyday suite", |r| r.everyday.as_ref()),
    ];
    let mut series = Vec::new();
    for (set, pick) in sets {
        let points = |f: fn(&Tally) -> f64| -> Vec<(f64, f64)> {
            rounds
                .iter()
                .filter_map(|r| pick(r).map(|t| (f64::from(r.round), f(t))))
                .collect()
        };
        let learned = points(Tally::learn_rate);
        if learned.is_empty() {
            continue;
        }
        series.push(Series {
            label: format!("{set}: learned, % of requests"),
            points: learned,
        });
        series.push(Series {
            label: format!("{set}: committed but wrong, % of commits"),
            points: points(Tally::wrong_rate),
        });
    }
    series
}

/// The loss chart's lines: each round's training loss by step.
pub fn loss_series(rounds: &[RoundFigures]) -> Vec<Series> {
    rounds
        .iter()
        .filter(|r| !r.losses.is_empty())
        .map(|r| Series {
            label: format!("round {} training loss", r.round),
            points: r
                .losses
                .iter()
                .map(|&(step, loss)| (f64::from(step), loss))
                .collect(),
        })
        .collect()
}

/// Draws `learn-rate.png` and, once a round has trained, `loss.png` into `dir`;
/// returns the files written.
pub fn draw(dir: &Path, rounds: &[RoundFigures]) -> Result<Vec<PathBuf>, String> {
    let charts = [
        (
            "learn-rate.png",
            "Expert iteration: learn rate by round (round 0 is the base model)",
            "round",
            "%",
            learn_rate_series(rounds),
        ),
        (
            "loss.png",
            "Expert iteration: training loss of each round's adapter",
            "optimiser step",
            "loss",
            loss_series(rounds),
        ),
    ];
    let mut written = Vec::new();
    for (name, title, x_label, y_label, series) in charts {
        if series.is_empty() {
            continue;
        }
        let file = dir.join(name);
        let chart = Chart {
            title,
            x_label,
            y_label,
            log_x: false,
            log_y: false,
            whole_x: true,
        };
        line_chart(&file, &chart, &series)?;
        written.push(file);
    }
    Ok(written)
}
