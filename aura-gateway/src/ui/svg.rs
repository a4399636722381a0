//! The inspector's drawings, rendered on the server as SVG: graphs (the delegation
//! chain, a memory node's neighbourhood), a learn cycle's waterfall and line plots.
//!
//! Every text drawn here passes through [`escape`], and nothing is styled inline (the
//! page's policy forbids it): shapes carry classes the style sheet colours.

use std::fmt::Write as _;

/// Text made safe for an SVG text node or attribute.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn short(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

/// A node of a drawn graph.
pub(super) struct Node {
    /// What the box says (clipped to fit).
    pub label: String,
    /// Where clicking it goes (an inspector path).
    pub href: Option<String>,
    /// A style-sheet class (`focus`, `object`, a memory kind…).
    pub class: &'static str,
    pub x: f64,
    pub y: f64,
}

/// A graph laid out by the caller: nodes, and edges between their indices with an
/// optional label.
pub(super) struct Graph {
    pub nodes: Vec<Node>,
    pub edges: Vec<(usize, usize, Option<String>)>,
}

const BOX_W: f64 = 150.0;
const BOX_H: f64 = 30.0;

impl Graph {
    /// Lays out levels top to bottom (level 0 first), each level's nodes side by side.
    pub(super) fn place_in_levels(&mut self, levels: &[Vec<usize>]) {
        for (depth, level) in levels.iter().enumerate() {
            for (i, &n) in level.iter().enumerate() {
                if let Some(node) = self.nodes.get_mut(n) {
                    node.x = 20.0 + i as f64 * (BOX_W + 30.0);
                    node.y = 20.0 + depth as f64 * (BOX_H + 50.0);
                }
            }
        }
    }

    /// Lays out node 0 at the centre and each ring of nodes around it.
    pub(super) fn place_in_rings(&mut self, rings: &[Vec<usize>]) {
        let radius_step = 170.0;
        let centre = 20.0 + radius_step * rings.len() as f64;
        if let Some(c) = self.nodes.first_mut() {
            c.x = centre;
            c.y = centre * 0.75;
        }
        for (r, ring) in rings.iter().enumerate() {
            let radius = radius_step * (r + 1) as f64;
            let offset = r as f64 * 0.4;
            for (i, &n) in ring.iter().enumerate() {
                let angle = offset + std::f64::consts::TAU * i as f64 / ring.len().max(1) as f64;
                if let Some(node) = self.nodes.get_mut(n) {
                    node.x = centre + radius * angle.cos();
                    node.y = centre * 0.75 + radius * 0.72 * angle.sin();
                }
            }
        }
    }

    /// The drawing, sized to what it holds.
    pub(super) fn render(&self, title: &str) -> String {
        let (mut min_x, mut min_y, mut max_x, mut max_y) = (f64::MAX, f64::MAX, 0.0f64, 0.0f64);
        for n in &self.nodes {
            min_x = min_x.min(n.x - BOX_W / 2.0);
            min_y = min_y.min(n.y - BOX_H / 2.0);
            max_x = max_x.max(n.x + BOX_W / 2.0);
            max_y = max_y.max(n.y + BOX_H / 2.0);
        }
        if self.nodes.is_empty() {
            (min_x, min_y, max_x, max_y) = (0.0, 0.0, 10.0, 10.0);
        }
        let (w, h) = (max_x - min_x + 20.0, max_y - min_y + 20.0);
        let mut svg = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" class="graph" role="img" viewBox="{:.0} {:.0} {w:.0} {h:.0}" width="{w:.0}" height="{h:.0}"><title>{}</title>"#,
            min_x - 10.0,
            min_y - 10.0,
            escape(title)
        );
        svg.push_str(r#"<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead"/></marker></defs>"#);
        for (from, to, label) in &self.edges {
            let (Some(a), Some(b)) = (self.nodes.get(*from), self.nodes.get(*to)) else {
                continue;
            };
            let (x1, y1, x2, y2) = clip_to_boxes(a, b);
            let _ = write!(
                svg,
                r#"<line class="edge" x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" marker-end="url(#arrow)"/>"#
            );
            if let Some(label) = label {
                let _ = write!(
                    svg,
                    r#"<text class="edge-label" x="{:.1}" y="{:.1}">{}</text>"#,
                    (x1 + x2) / 2.0 + 4.0,
                    (y1 + y2) / 2.0 - 3.0,
                    escape(&short(label, 24))
                );
            }
        }
        for n in &self.nodes {
            let body = format!(
                r#"<rect class="node {}" x="{:.1}" y="{:.1}" width="{BOX_W}" height="{BOX_H}" rx="5"/><text class="node-label" x="{:.1}" y="{:.1}">{}</text><title>{}</title>"#,
                n.class,
                n.x - BOX_W / 2.0,
                n.y - BOX_H / 2.0,
                n.x,
                n.y + 4.0,
                escape(&short(&n.label, 22)),
                escape(&n.label)
            );
            match &n.href {
                Some(href) => {
                    let _ = write!(svg, r#"<a href="{}">{body}</a>"#, escape(href));
                }
                None => svg.push_str(&body),
            }
        }
        svg.push_str("</svg>");
        svg
    }
}

/// An edge's ends moved from the boxes' centres to their borders.
fn clip_to_boxes(a: &Node, b: &Node) -> (f64, f64, f64, f64) {
    let (dx, dy) = (b.x - a.x, b.y - a.y);
    let scale = |dx: f64, dy: f64| {
        let sx = if dx == 0.0 {
            f64::MAX
        } else {
            (BOX_W / 2.0) / dx.abs()
        };
        let sy = if dy == 0.0 {
            f64::MAX
        } else {
            (BOX_H / 2.0) / dy.abs()
        };
        sx.min(sy).min(1.0)
    };
    let s = scale(dx, dy);
    (a.x + dx * s, a.y + dy * s, b.x - dx * s, b.y - dy * s)
}

/// One row of a waterfall: a label and its segments `(start, length, class)` in ms.
pub(super) struct Bar {
    pub label: String,
    pub segments: Vec<(f64, f64, &'static str)>,
}

/// Horizontal bars on one time axis, in milliseconds.
pub(super) fn waterfall(title: &str, bars: &[Bar]) -> String {
    let end = bars
        .iter()
        .flat_map(|b| b.segments.iter().map(|(s, l, _)| s + l))
        .fold(1.0f64, f64::max);
    let (label_w, plot_w, row_h) = (190.0, 560.0, 22.0);
    let h = 40.0 + row_h * bars.len() as f64;
    let x = |ms: f64| label_w + plot_w * ms / end;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="waterfall" role="img" viewBox="0 0 {w:.0} {h:.0}" width="{w:.0}" height="{h:.0}"><title>{}</title>"#,
        escape(title),
        w = label_w + plot_w + 50.0,
    );
    for tick in 0..=4 {
        let ms = end * f64::from(tick) / 4.0;
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{0:.1}" y1="14" x2="{0:.1}" y2="{1:.1}"/><text class="tick" x="{0:.1}" y="11">{2}</text>"#,
            x(ms),
            h - 8.0,
            escape(&format_ms(ms))
        );
    }
    for (i, bar) in bars.iter().enumerate() {
        let y = 20.0 + row_h * i as f64;
        let _ = write!(
            svg,
            r#"<text class="row-label" x="4" y="{:.1}">{}</text>"#,
            y + 14.0,
            escape(&short(&bar.label, 28))
        );
        for (start, len, class) in &bar.segments {
            let _ = write!(
                svg,
                r#"<rect class="seg {class}" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}"><title>{}: {} from {}</title></rect>"#,
                x(*start),
                y + 3.0,
                (plot_w * len / end).max(1.0),
                row_h - 6.0,
                class,
                escape(&format_ms(*len)),
                escape(&format_ms(*start)),
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Milliseconds as a person reads them.
pub(super) fn format_ms(ms: f64) -> String {
    if ms >= 10_000.0 {
        format!("{:.0} s", ms / 1e3)
    } else if ms >= 1_000.0 {
        format!("{:.1} s", ms / 1e3)
    } else if ms >= 10.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// One line of a plot: its name, its style-sheet class and its `(x, y)` points.
pub(super) type Series<'a> = (&'a str, &'static str, Vec<(f64, f64)>);

/// Lines through `(x, y)` points, one per series, on shared axes.
pub(super) fn line_plot(title: &str, x_label: &str, series: &[Series<'_>]) -> String {
    let points = || series.iter().flat_map(|(_, _, p)| p.iter());
    let (x0, x1) = points().fold((f64::MAX, f64::MIN), |(a, b), (x, _)| {
        (a.min(*x), b.max(*x))
    });
    let (y0, y1) = points().fold((f64::MAX, f64::MIN), |(a, b), (_, y)| {
        (a.min(*y), b.max(*y))
    });
    let (x0, x1) = if x0 > x1 {
        (0.0, 1.0)
    } else if x0 == x1 {
        (x0 - 1.0, x1 + 1.0)
    } else {
        (x0, x1)
    };
    let (y0, y1) = if y0 > y1 {
        (0.0, 1.0)
    } else if y0 == y1 {
        (y0 - 1.0, y1 + 1.0)
    } else {
        (y0.min(0.0), y1)
    };
    let (left, top, w, h) = (50.0, 24.0, 480.0, 200.0);
    let px = |x: f64| left + w * (x - x0) / (x1 - x0);
    let py = |y: f64| top + h - h * (y - y0) / (y1 - y0);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="plot" role="img" viewBox="0 0 {W:.0} {H:.0}" width="{W:.0}" height="{H:.0}"><title>{t}</title><text class="plot-title" x="{left}" y="14">{t}</text>"#,
        W = left + w + 150.0,
        H = top + h + 40.0,
        t = escape(title),
    );
    let _ = write!(
        svg,
        r#"<line class="axis" x1="{left}" y1="{b:.1}" x2="{r:.1}" y2="{b:.1}"/><line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{b:.1}"/><text class="tick" x="{left}" y="{lb:.1}">{x0}</text><text class="tick" x="{r:.1}" y="{lb:.1}">{x1}</text><text class="tick" x="4" y="{b:.1}">{y0}</text><text class="tick" x="4" y="{top2:.1}">{y1}</text><text class="tick" x="{mid:.1}" y="{lb:.1}">{xl}</text>"#,
        b = top + h,
        r = left + w,
        lb = top + h + 16.0,
        top2 = top + 8.0,
        mid = left + w / 2.0 - 20.0,
        x0 = escape(&trim_num(x0)),
        x1 = escape(&trim_num(x1)),
        y0 = escape(&trim_num(y0)),
        y1 = escape(&trim_num(y1)),
        xl = escape(x_label),
    );
    for (i, (name, class, pts)) in series.iter().enumerate() {
        let path: Vec<String> = pts
            .iter()
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline class="series {class}" points="{}"/>"#,
            path.join(" ")
        );
        for (x, y) in pts {
            let _ = write!(
                svg,
                r#"<circle class="series {class}" cx="{:.1}" cy="{:.1}" r="3"><title>{}: {}</title></circle>"#,
                px(*x),
                py(*y),
                escape(name),
                escape(&trim_num(*y))
            );
        }
        let ly = top + 12.0 + 18.0 * i as f64;
        let _ = write!(
            svg,
            r#"<rect class="series {class}" x="{:.1}" y="{:.1}" width="12" height="4"/><text class="tick" x="{:.1}" y="{:.1}">{}</text>"#,
            left + w + 12.0,
            ly - 4.0,
            left + w + 28.0,
            ly,
            escape(name)
        );
    }
    svg.push_str("</svg>");
    svg
}

fn trim_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e9 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_labels_are_text_in_every_drawing() {
        let evil = r#"<script>alert(1)</script>"><img src=x onerror=alert(2)>"#;
        let mut g = Graph {
            nodes: vec![
                Node {
                    label: evil.into(),
                    href: Some(format!("/ui/x?{evil}")),
                    class: "focus",
                    x: 0.0,
                    y: 0.0,
                },
                Node {
                    label: "b".into(),
                    href: None,
                    class: "object",
                    x: 0.0,
                    y: 0.0,
                },
            ],
            edges: vec![(0, 1, Some(evil.into()))],
        };
        g.place_in_levels(&[vec![0], vec![1]]);
        let drawings = [
            g.render(evil),
            waterfall(
                evil,
                &[Bar {
                    label: evil.into(),
                    segments: vec![(0.0, 5.0, "model")],
                }],
            ),
            line_plot(evil, evil, &[(evil, "a", vec![(1.0, 2.0), (2.0, 1.0)])]),
        ];
        for svg in drawings {
            assert!(!svg.contains("<script"), "{svg}");
            assert!(!svg.contains("<img"), "{svg}");
            assert!(svg.contains("&lt;script&gt;"), "{svg}");
        }
    }

    #[test]
    fn levels_and_rings_place_every_node() {
        let node = |l: &str| Node {
            label: l.into(),
            href: None,
            class: "object",
            x: -1.0,
            y: -1.0,
        };
        let mut g = Graph {
            nodes: vec![node("a"), node("b"), node("c")],
            edges: vec![(0, 1, None), (0, 2, None)],
        };
        g.place_in_rings(&[vec![1, 2]]);
        assert!(g.nodes.iter().all(|n| n.x >= 0.0 && n.y >= 0.0));
        assert_ne!((g.nodes[1].x, g.nodes[1].y), (g.nodes[2].x, g.nodes[2].y));
        assert_eq!(g.render("t").matches("<rect").count(), 3);
    }
}
