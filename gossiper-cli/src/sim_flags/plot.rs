//! `--plot`, for both simulators: one [`Chart`] (every run faint, their mean bold, a reference
//! curve dashed) drawn either as an SVG file or as text in the terminal (`--plot -`); `--html`
//! inlines the same SVG. The commands only say what the lines are; how a line is drawn is
//! written once, here.

use std::path::Path;

use super::Format;
use crate::CliError;

/// A line: its points `(x, y)`, in x order.
pub(crate) type Line = Vec<(f64, f64)>;

/// What to draw.
pub(crate) struct Chart {
    /// The title.
    pub caption: String,
    /// The x axis' name.
    pub x_desc: String,
    /// The y axis' name.
    pub y_desc: String,
    /// The x axis runs from 0 to this.
    pub x_max: f64,
    /// The y axis runs from 0 to this.
    pub y_max: f64,
    /// Each run's line, drawn faint (left out of the text plot).
    pub runs: Vec<Line>,
    /// The mean line and its legend.
    pub mean: (String, Line),
    /// A reference line (theory), dashed, and its legend.
    pub reference: Option<(String, Line)>,
}

/// Where `--plot` draws: `-` is the terminal (stdout, after the text report, so only with
/// `--format text`), anything else must be an `.svg` file. A usage error otherwise.
pub(crate) fn check_target(path: &Path, format: Format) -> Result<(), CliError> {
    if is_terminal_target(path) {
        if format != Format::Text {
            return Err(CliError::usage(
                "--plot - draws on the terminal after the text report: use --format text, \
                 or --plot FILE.svg",
            ));
        }
        return Ok(());
    }
    if path.extension().and_then(|e| e.to_str()) == Some("svg") {
        return Ok(());
    }
    Err(CliError::usage(format!(
        "--plot writes SVG or draws on the terminal: {} must end in .svg, or be -",
        path.display()
    )))
}

/// Whether `--plot` names the terminal.
pub(crate) fn is_terminal_target(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Draws `chart` as an SVG file at `path`.
pub(crate) fn draw_svg(path: &Path, chart: &Chart) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::write(path, render_svg(chart)?)?;
    Ok(())
}

/// Draws `chart` as SVG text (a file of its own, or inline in `--html`'s page).
pub(crate) fn render_svg(chart: &Chart) -> Result<String, Box<dyn std::error::Error>> {
    let mut svg = String::new();
    draw_on(&mut svg, chart)?;
    Ok(svg)
}

fn draw_on(svg: &mut String, chart: &Chart) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;

    let root = SVGBackend::with_string(svg, (900, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut c = ChartBuilder::on(&root)
        .caption(&chart.caption, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(0f64..chart.x_max, 0f64..chart.y_max)?;
    c.configure_mesh()
        .x_desc(chart.x_desc.as_str())
        .y_desc(chart.y_desc.as_str())
        .draw()?;
    let faint = RGBColor(70, 110, 200).mix(0.18);
    for r in &chart.runs {
        c.draw_series(LineSeries::new(r.iter().copied(), faint.stroke_width(1)))?;
    }
    let bold = RGBColor(20, 50, 160);
    c.draw_series(LineSeries::new(
        chart.mean.1.iter().copied(),
        bold.stroke_width(3),
    ))?
    .label(chart.mean.0.as_str())
    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], bold));
    if let Some((label, line)) = &chart.reference {
        let red = RGBColor(200, 40, 40);
        c.draw_series(DashedLineSeries::new(
            line.iter().copied(),
            6,
            4,
            red.stroke_width(2),
        ))?
        .label(label.as_str())
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], red));
    }
    c.configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Columns and rows of the text plot's drawing area (it fits an 80-column terminal with the
/// y labels).
const COLS: usize = 64;
const ROWS: usize = 16;

/// Draws `chart` as text: the mean as `•`, the reference as `·` where the mean is not, on a
/// 64 × 16 grid (80 columns with the labels) with the y range on the left and the x range below. Each column shows the line
/// at the x of its centre (linearly interpolated), so the picture does not depend on how many
/// points a line has.
pub(crate) fn draw_text(chart: &Chart) -> String {
    let mut grid = vec![[' '; COLS]; ROWS];
    let mut put = |line: &Line, glyph: char, over: bool| {
        for (col, row) in (0..COLS).filter_map(|col| {
            let x = (col as f64 + 0.5) / COLS as f64 * chart.x_max;
            let y = at(line, x)?;
            let frac = (y / chart.y_max).clamp(0.0, 1.0);
            Some((col, ((1.0 - frac) * (ROWS - 1) as f64).round() as usize))
        }) {
            if over || grid[row][col] == ' ' {
                grid[row][col] = glyph;
            }
        }
    };
    put(&chart.mean.1, '•', true);
    if let Some((_, line)) = &chart.reference {
        put(line, '·', false);
    }
    let label_w = 8;
    let mut out = format!(
        "{}\n{} (y) against {} (x)\n",
        chart.caption, chart.y_desc, chart.x_desc
    );
    for (r, cells) in grid.iter().enumerate() {
        let label = match r {
            0 => fmt_axis(chart.y_max),
            r if r == ROWS - 1 => fmt_axis(0.0),
            _ => String::new(),
        };
        let row: String = cells.iter().collect();
        out.push_str(&format!("{label:>label_w$} │{}\n", row.trim_end()));
    }
    out.push_str(&format!("{:>label_w$} └{}\n", "", "─".repeat(COLS)));
    let (lo, hi) = (fmt_axis(0.0), fmt_axis(chart.x_max));
    out.push_str(&format!(
        "{:>label_w$}  {lo}{}{hi}\n",
        "",
        " ".repeat(COLS.saturating_sub(lo.len() + hi.len()))
    ));
    out.push_str(&format!("{:>label_w$}  • {}\n", "", chart.mean.0));
    if let Some((label, _)) = &chart.reference {
        out.push_str(&format!("{:>label_w$}  · {label}\n", ""));
    }
    out
}

/// The line's y at `x`, linearly interpolated between its points; `None` outside its x range
/// or where a neighbouring point is not a number.
fn at(line: &[(f64, f64)], x: f64) -> Option<f64> {
    let i = line.partition_point(|&(px, _)| px < x);
    let y = match (i.checked_sub(1).map(|j| line[j]), line.get(i)) {
        (_, Some(&(px, py))) if px == x => py,
        (Some((x0, y0)), Some(&(x1, y1))) => y0 + (y1 - y0) * (x - x0) / (x1 - x0),
        (Some((x0, y0)), None) if x - x0 < f64::EPSILON.max(x0.abs() * 1e-9) => y0,
        _ => return None,
    };
    y.is_finite().then_some(y)
}

fn fmt_axis(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e9 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(mean: Line, reference: Option<Line>) -> Chart {
        Chart {
            caption: "c".into(),
            x_desc: "x".into(),
            y_desc: "y".into(),
            x_max: 10.0,
            y_max: 1.0,
            runs: Vec::new(),
            mean: ("mean".into(), mean),
            reference: reference.map(|l| ("theory".into(), l)),
        }
    }

    #[test]
    fn the_text_plot_puts_a_rising_line_low_on_the_left_and_high_on_the_right() {
        let text = draw_text(&chart(vec![(0.0, 0.0), (10.0, 1.0)], None));
        let rows: Vec<&str> = text.lines().skip(2).take(ROWS).collect();
        let col_of = |row: &str| row.chars().skip(10).position(|c| c == '•');
        // Top row: the mean reaches 1 only at the right end; bottom row: 0 at the left.
        assert!(col_of(rows[0]).is_some_and(|c| c >= COLS - 3), "{text}");
        assert!(col_of(rows[ROWS - 1]).is_some_and(|c| c <= 2), "{text}");
        assert_eq!(
            text.matches('•').count(),
            COLS + 1,
            "one per column and the legend"
        );
    }

    #[test]
    fn the_reference_shows_only_where_the_mean_does_not_and_gaps_stay_blank() {
        let flat = |y| vec![(0.0, y), (5.0, y)];
        let text = draw_text(&chart(flat(0.5), Some(flat(0.5))));
        // Same cells: the mean wins; the line ends at x = 5, so the right half is empty.
        assert!(
            !text.lines().take(2 + ROWS).any(|l| l.contains('·')),
            "{text}"
        );
        assert_eq!(text.matches('•').count(), COLS / 2 + 1, "{text}");
        let text = draw_text(&chart(flat(0.0), Some(flat(1.0))));
        assert_eq!(text.matches('·').count(), COLS / 2 + 1, "{text}");
        let legend = format!("• mean\n{}· theory\n", " ".repeat(10));
        assert!(text.ends_with(&legend), "{text}");
    }

    #[test]
    fn interpolation_skips_what_was_not_measured() {
        let line = vec![(0.0, 0.0), (1.0, f64::NAN), (2.0, 1.0)];
        assert_eq!(at(&line, 0.0), Some(0.0));
        assert_eq!(at(&line, 0.5), None);
        assert_eq!(at(&[(0.0, 0.0), (2.0, 1.0)], 1.0), Some(0.5));
        assert_eq!(at(&line, 3.0), None);
    }

    #[test]
    fn plot_targets_are_svg_files_or_the_terminal() {
        assert!(check_target(Path::new("a.svg"), Format::Json).is_ok());
        assert!(check_target(Path::new("-"), Format::Text).is_ok());
        assert!(check_target(Path::new("-"), Format::Csv).is_err());
        assert!(check_target(Path::new("a.png"), Format::Text).is_err());
    }
}
