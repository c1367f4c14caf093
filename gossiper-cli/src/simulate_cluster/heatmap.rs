//! `--html`'s heat map: a row per recorded member, a column per time step, each cell coloured
//! by what the other live nodes think of that member then (alive green, suspect amber, dead
//! red, not known grey, blended by fraction), with a black bar under the cells where the member
//! itself is down. A crash shows as a bar, then its row turning from green to red as the
//! verdict spreads; a join as a row turning green.
//!
//! Which members: every node a crash spec names and the late joiner, then an even sample of
//! the others, [`MAX_ROWS`] in all; the step is `--step`, coarsened so that a run has at most
//! [`MAX_COLUMNS`] of them.

use gossiper_sim::cluster::{ClusterSimConfig, MemberView, ViewRecording, ViewStep};

use crate::sim_flags::html::escape;

/// Most rows drawn: a readable height.
pub(super) const MAX_ROWS: usize = 40;
/// Most time steps drawn: a readable width.
pub(super) const MAX_COLUMNS: u64 = 200;

/// What to record for the heat map of `config`.
pub(super) fn recording(config: &ClusterSimConfig, step_ms: u64) -> ViewRecording {
    let n = config.nodes;
    let mut members: Vec<usize> = config
        .faults
        .crashes
        .iter()
        .flat_map(|c| c.nodes.iter())
        .map(|i| i as usize)
        .filter(|&i| i < n)
        .chain(config.late_joiner())
        .collect();
    members.sort_unstable();
    members.dedup();
    members.truncate(MAX_ROWS);
    // Fill up with an even sample of the rest, n0 first.
    let room = MAX_ROWS - members.len();
    let others = n - members.len();
    let stride = others.div_ceil(room.max(1)).max(1);
    let sample: Vec<usize> = (0..n)
        .filter(|i| members.binary_search(i).is_err())
        .step_by(stride)
        .take(room)
        .collect();
    members.extend(sample);
    members.sort_unstable();
    ViewRecording {
        members,
        every_ms: step_ms.max(config.duration_ms.div_ceil(MAX_COLUMNS)).max(1),
    }
}

const LABEL_W: usize = 150;
const ROW_H: usize = 16;
const TOP: usize = 22;
const WIDTH: usize = 800;

/// The colour of a cell: the statuses blended by fraction.
fn colour(v: &MemberView) -> String {
    const ALIVE: [f64; 3] = [26.0, 127.0, 55.0];
    const SUSPECT: [f64; 3] = [230.0, 160.0, 0.0];
    const DEAD: [f64; 3] = [207.0, 34.0, 46.0];
    const UNKNOWN: [f64; 3] = [225.0, 228.0, 232.0];
    let total = f64::from(v.observers.max(1));
    let (a, s, d) = (
        f64::from(v.alive) / total,
        f64::from(v.suspect) / total,
        f64::from(v.dead) / total,
    );
    let u = (1.0 - a - s - d).max(0.0);
    let mix = |k: usize| (a * ALIVE[k] + s * SUSPECT[k] + d * DEAD[k] + u * UNKNOWN[k]).round();
    format!("rgb({},{},{})", mix(0), mix(1), mix(2))
}

/// The heat map as SVG; `label(i)` names recorded member `i` (its row).
pub(super) fn svg(
    recording: &ViewRecording,
    steps: &[ViewStep],
    label: impl Fn(usize) -> String,
) -> String {
    let rows = recording.members.len();
    let cols = steps.len().max(1);
    let cell_w = (WIDTH - LABEL_W) as f64 / cols as f64;
    let height = TOP + rows * ROW_H + 24;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"heatmap\" width=\"{WIDTH}\" \
         height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" \
         aria-label=\"what the live nodes think of each recorded member over time\" \
         font-family=\"sans-serif\" font-size=\"11\">\n"
    );
    let x_of = |col: usize| LABEL_W as f64 + col as f64 * cell_w;
    // The time axis: a tick every tenth of the run.
    for k in 0..=10 {
        let col = (k * cols / 10).min(cols);
        let seconds = steps
            .get(col.min(cols - 1))
            .map_or(0.0, |s| s.at_ms as f64 / 1e3);
        out.push_str(&format!(
            "<text x=\"{:.1}\" y=\"14\" text-anchor=\"middle\">{seconds:.1}s</text>\n",
            x_of(col).min((WIDTH - 12) as f64)
        ));
    }
    for (row, &member) in recording.members.iter().enumerate() {
        let y = TOP + row * ROW_H;
        let name = label(member);
        out.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n",
            LABEL_W - 6,
            y + ROW_H - 4,
            escape(&name)
        ));
        // Runs of equal cells are one rectangle: fewer elements, same picture.
        let mut col = 0;
        while col < steps.len() {
            let v = steps[col].members[row];
            let mut end = col + 1;
            while end < steps.len() && steps[end].members[row] == v {
                end += 1;
            }
            let (x0, x1) = (x_of(col), x_of(end));
            let from = steps[col].at_ms as f64 / 1e3;
            let to = steps[end - 1].at_ms as f64 / 1e3;
            let state = if v.live { "up" } else { "down" };
            out.push_str(&format!(
                "<rect x=\"{x0:.2}\" y=\"{y}\" width=\"{:.2}\" height=\"{}\" fill=\"{}\">\
                 <title>{} ({state}), {from:.1}-{to:.1} s: of {} live nodes, {} alive, {} \
                 suspect, {} dead</title></rect>\n",
                x1 - x0,
                ROW_H - 2,
                colour(&v),
                escape(&name),
                v.observers,
                v.alive,
                v.suspect,
                v.dead
            ));
            if !v.live {
                out.push_str(&format!(
                    "<rect x=\"{x0:.2}\" y=\"{}\" width=\"{:.2}\" height=\"3\" fill=\"#000\"/>\n",
                    y + ROW_H - 5,
                    x1 - x0
                ));
            }
            col = end;
        }
    }
    out.push_str(&format!(
        "<text x=\"{LABEL_W}\" y=\"{}\">virtual time →</text>\n</svg>\n",
        height - 6
    ));
    out
}

/// The legend under the heat map, as HTML.
pub(super) fn legend() -> &'static str {
    "<ul class=\"legend\">\
     <li><span style=\"background:rgb(26,127,55)\"></span>alive to every other live node</li>\
     <li><span style=\"background:rgb(230,160,0)\"></span>suspect</li>\
     <li><span style=\"background:rgb(207,34,46)\"></span>dead</li>\
     <li><span style=\"background:rgb(225,228,232)\"></span>not known</li>\
     <li><span style=\"background:#000;height:.3em\"></span>the member itself is down</li>\
     </ul>\n<p class=\"muted\">Mixed colours are mixed opinions; hover a cell for the counts.</p>\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use gossiper_sim::{Crash, NodeSet};

    #[test]
    fn rows_hold_the_crashed_and_the_joiner_and_stay_few() {
        let mut c = ClusterSimConfig {
            nodes: 1_000,
            duration_ms: 20_000,
            ..ClusterSimConfig::default()
        };
        c.faults.crashes.push(Crash {
            at: 30,
            restart: None,
            nodes: NodeSet(vec![(500, 502)]),
            keep_state: false,
        });
        let r = recording(&c, 10);
        assert_eq!(r.members.len(), MAX_ROWS);
        for must in [0, 500, 501, 502, 999] {
            assert!(r.members.contains(&must), "{must}: {:?}", r.members);
        }
        assert!(
            r.members.windows(2).all(|w| w[0] < w[1]),
            "sorted, no repeats"
        );
        assert_eq!(r.every_ms, 100, "20 s in at most 200 steps");
        c.views = Some(r);
        assert!(c.validate().is_ok());
        let small = ClusterSimConfig {
            nodes: 5,
            ..ClusterSimConfig::default()
        };
        assert_eq!(recording(&small, 100).members, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn cells_blend_by_fraction_and_the_map_escapes_labels() {
        let v = |alive, dead| MemberView {
            live: true,
            observers: 4,
            alive,
            suspect: 0,
            dead,
        };
        assert_eq!(colour(&v(4, 0)), "rgb(26,127,55)");
        assert_eq!(colour(&v(0, 4)), "rgb(207,34,46)");
        assert_eq!(colour(&v(0, 0)), "rgb(225,228,232)");
        let rec = ViewRecording {
            members: vec![3],
            every_ms: 100,
        };
        let steps: Vec<ViewStep> = [v(4, 0), v(4, 0), v(2, 2)]
            .into_iter()
            .enumerate()
            .map(|(i, m)| ViewStep {
                at_ms: 100 * (i as u64 + 1),
                members: vec![m],
            })
            .collect();
        let svg = svg(&rec, &steps, |i| format!("<n{i}>"));
        assert_eq!(
            svg.matches("<title>").count(),
            2,
            "equal cells merged: {svg}"
        );
        assert!(svg.contains("&lt;n3&gt;") && !svg.contains("<n3>"), "{svg}");
    }
}
