//! `--plot`: the informed fraction per round as an SVG.

use gossiper_node::Protocol;
use gossiper_sim::{RunReport, SimConfig, Summary, Timing, theory};

use super::args::SimulateArgs;

/// The informed fraction per round: each run faint, the mean bold, the mean-field curve dashed
/// where one exists ([`theory::curve`]: anti-entropy, or push feedback coin rumor mongering, on
/// the complete graph in synchronous rounds).
pub(super) fn plot(
    path: &std::path::Path,
    args: &SimulateArgs,
    config: &SimConfig,
    reports: &[RunReport],
    summary: &Summary,
) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;

    let len = summary.mean_curve.len().max(2);
    let theory_curve = theory::curve(config, len - 1);
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let caption = format!(
        "{} nodes, {}",
        config.nodes,
        match config.protocol {
            Protocol::AntiEntropy => format!("anti-entropy {}", config.mode),
            Protocol::Rumor(rc) => format!("rumor {}", rc.describe()),
        }
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(0f64..(len - 1) as f64, 0f64..1.02f64)?;
    chart
        .configure_mesh()
        .x_desc(if matches!(config.timing, Timing::Sync) {
            "round"
        } else {
            "round (mean gossip intervals)"
        })
        .y_desc("informed fraction")
        .draw()?;
    let faint = RGBColor(70, 110, 200).mix(0.18);
    for r in reports {
        chart.draw_series(LineSeries::new(
            r.curve.iter().enumerate().map(|(i, &y)| (i as f64, y)),
            faint.stroke_width(1),
        ))?;
    }
    chart
        .draw_series(LineSeries::new(
            summary
                .mean_curve
                .iter()
                .enumerate()
                .map(|(i, &y)| (i as f64, y)),
            RGBColor(20, 50, 160).stroke_width(3),
        ))?
        .label(format!("mean of {} run(s)", reports.len()))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RGBColor(20, 50, 160)));
    if let Some(curve) = theory_curve {
        chart
            .draw_series(DashedLineSeries::new(
                curve.into_iter().enumerate().map(|(i, y)| (i as f64, y)),
                6,
                4,
                RGBColor(200, 40, 40).stroke_width(2),
            ))?
            .label("mean-field theory")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RGBColor(200, 40, 40)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    let _ = args;
    Ok(())
}
