//! The one drawing routine: a figure is a grid of panels (lines, bars, reference lines, notes)
//! and a legend column to their right, drawn with plotters' SVG backend.
//!
//! The plots (`plots/`) only describe what to draw; layout, axes, colours and the legend are
//! decided here, once. Text is written as SVG `<text>` and laid out by whatever displays the
//! file, so no font is needed to draw; widths are estimated (about 0.6 em per character).

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::ops::Range;

/// Width and height of one panel, in pixels.
const PANEL: (u32, u32) = (470, 320);
/// Height of a legend row and of the figure's title.
const ROW: u32 = 22;
const TITLE: u32 = 34;
const FONT: &str = "sans-serif";

/// The colour of series `i`: d3's category10, then the light halves of its category20, cycled
/// after twenty.
pub fn color(i: usize) -> RGBColor {
    const C: [(u8, u8, u8); 20] = [
        (0x1f, 0x77, 0xb4),
        (0xff, 0x7f, 0x0e),
        (0x2c, 0xa0, 0x2c),
        (0xd6, 0x27, 0x28),
        (0x94, 0x67, 0xbd),
        (0x8c, 0x56, 0x4b),
        (0xe3, 0x77, 0xc2),
        (0x7f, 0x7f, 0x7f),
        (0xbc, 0xbd, 0x22),
        (0x17, 0xbe, 0xcf),
        (0xae, 0xc7, 0xe8),
        (0xff, 0xbb, 0x78),
        (0x98, 0xdf, 0x8a),
        (0xff, 0x98, 0x96),
        (0xc5, 0xb0, 0xd5),
        (0xc4, 0x9c, 0x94),
        (0xf7, 0xb6, 0xd2),
        (0xc7, 0xc7, 0xc7),
        (0xdb, 0xdb, 0x8d),
        (0x9e, 0xda, 0xe5),
    ];
    let (r, g, b) = C[i % C.len()];
    RGBColor(r, g, b)
}

/// A polyline in data coordinates.
#[derive(Clone, Debug)]
pub struct Line {
    /// `(x, y)` points, drawn in order.
    pub points: Vec<(f64, f64)>,
    /// Its colour.
    pub color: RGBColor,
    /// Dashed instead of solid.
    pub dashed: bool,
}

/// A filled rectangle from `y = 0` to `height` between `x0` and `x1`.
#[derive(Clone, Debug)]
pub struct Bar {
    /// Left and right edges.
    pub x: (f64, f64),
    /// Height.
    pub height: f64,
    /// Fill colour (drawn half transparent, so overlapping bars stay visible).
    pub color: RGBColor,
}

/// One chart of a figure.
#[derive(Clone, Debug, Default)]
pub struct Panel {
    /// Caption above the chart.
    pub title: String,
    /// Axis descriptions.
    pub x_label: String,
    /// Axis descriptions.
    pub y_label: String,
    /// Lines.
    pub lines: Vec<Line>,
    /// Bars.
    pub bars: Vec<Bar>,
    /// Horizontal grey dashed reference lines with a label at their right end.
    pub refs: Vec<(f64, String)>,
    /// Text at a data position (centred above it).
    pub notes: Vec<(f64, f64, String)>,
    /// Logarithmic y axis (non-positive values are left out).
    pub log_y: bool,
    /// Fixed y range; otherwise fitted to the data.
    pub y_range: Option<(f64, f64)>,
}

/// One legend entry: a line (solid or dashed) or a filled box, and its text.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The text.
    pub label: String,
    /// The colour.
    pub color: RGBColor,
    /// Dashed line sample.
    pub dashed: bool,
    /// A filled box instead of a line sample.
    pub boxed: bool,
}

impl Entry {
    /// A solid line entry.
    pub fn line(label: impl Into<String>, color: RGBColor) -> Entry {
        Entry {
            label: label.into(),
            color,
            dashed: false,
            boxed: false,
        }
    }
}

/// A titled grid of panels with a shared legend.
#[derive(Clone, Debug)]
pub struct Figure {
    /// Title above the grid.
    pub title: String,
    /// Panels, filled row by row.
    pub panels: Vec<Panel>,
    /// Legend entries, listed top to bottom to the right of the grid.
    pub legend: Vec<Entry>,
}

/// Compact tick text: at most four significant digits, no trailing zeros.
pub fn tick(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if !(1e-3..1e6).contains(&a) {
        return format!("{v:.1e}");
    }
    fixed(v, (3 - a.log10().floor() as i32).max(0) as usize)
}

/// `v` with `digits` decimals, trailing zeros (and a trailing point) removed.
fn fixed(v: f64, digits: usize) -> String {
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Tick text on a linear axis spanning `span`: as [`tick`], but a value within a billionth of
/// the span of zero is the axis's rounding noise and reads `0`, and no tick gets fewer decimals
/// than the spacing of about six ticks needs.
pub fn axis_tick(v: f64, span: f64) -> String {
    if !(span > 0.0 && span.is_finite() && v.is_finite()) {
        return tick(v);
    }
    if v.abs() < span * 1e-9 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e6).contains(&a) {
        return tick(v);
    }
    let spacing = span / 6.0;
    let needed = (1 - spacing.log10().floor() as i32).clamp(0, 9) as usize;
    let significant = (3 - a.log10().floor() as i32).max(0) as usize;
    fixed(v, needed.max(significant.min(needed + 1)))
}

fn text_width(text: &str, size: f64) -> u32 {
    (text.chars().count() as f64 * size * 0.6).ceil() as u32
}

fn fail<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

impl Figure {
    /// Columns of the grid: up to three panels side by side.
    fn columns(&self) -> usize {
        match self.panels.len() {
            0..=3 => self.panels.len().max(1),
            4 => 2,
            _ => 3,
        }
    }

    /// Draws the figure; returns the SVG document.
    pub fn to_svg(&self) -> Result<String, String> {
        let cols = self.columns();
        let rows = self.panels.len().div_ceil(cols).max(1);
        let legend_w = self
            .legend
            .iter()
            .map(|e| 48 + text_width(&e.label, 13.0))
            .max()
            .map_or(0, |w| w.clamp(120, 520));
        let grid = (PANEL.0 * cols as u32, PANEL.1 * rows as u32);
        let height = TITLE + grid.1.max(ROW * self.legend.len() as u32 + 2 * ROW);
        let mut svg = String::new();
        {
            let root =
                SVGBackend::with_string(&mut svg, (grid.0 + legend_w, height)).into_drawing_area();
            root.fill(&WHITE).map_err(fail)?;
            let body = root.titled(&self.title, (FONT, 18)).map_err(fail)?;
            let (plots, legend) = body.split_horizontally(grid.0);
            let plots = plots.shrink((0, 0), grid);
            for (area, panel) in plots.split_evenly((rows, cols)).iter().zip(&self.panels) {
                draw_panel(area, panel)?;
            }
            draw_legend(&legend, &self.legend)?;
            root.present().map_err(fail)?;
        }
        Ok(svg)
    }
}

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    entries: &[Entry],
) -> Result<(), String> {
    let style = TextStyle::from((FONT, 13).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (k, e) in entries.iter().enumerate() {
        let y = ROW as i32 * (k as i32 + 1);
        let (x0, x1) = (8, 36);
        if e.boxed {
            let fill = e.color.mix(0.6).filled();
            area.draw(&Rectangle::new([(x0 + 6, y - 6), (x1 - 6, y + 6)], fill))
                .map_err(fail)?;
        } else if e.dashed {
            let s = e.color.stroke_width(2);
            for (a, b) in [(x0, x0 + 8), (x0 + 12, x0 + 20), (x0 + 24, x1)] {
                area.draw(&PathElement::new(vec![(a, y), (b, y)], s))
                    .map_err(fail)?;
            }
        } else {
            area.draw(&PathElement::new(
                vec![(x0, y), (x1, y)],
                e.color.stroke_width(2),
            ))
            .map_err(fail)?;
        }
        area.draw(&Text::new(e.label.clone(), (x1 + 8, y), style.clone()))
            .map_err(fail)?;
    }
    Ok(())
}

/// The x and y extent of what a panel holds.
fn extent(panel: &Panel) -> (Range<f64>, Range<f64>) {
    let keep = |y: f64| y.is_finite() && (!panel.log_y || y > 0.0);
    let mut xs: Vec<f64> = Vec::new();
    let mut ys: Vec<f64> = panel
        .refs
        .iter()
        .map(|r| r.0)
        .filter(|y| keep(*y))
        .collect();
    for l in &panel.lines {
        for &(x, y) in &l.points {
            xs.push(x);
            if keep(y) {
                ys.push(y);
            }
        }
    }
    for b in &panel.bars {
        xs.extend([b.x.0, b.x.1]);
        ys.extend([0.0, b.height]);
    }
    let span = |v: &[f64]| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lo.is_finite()).then_some((lo, hi))
    };
    let (x0, x1) = span(&xs).unwrap_or((0.0, 1.0));
    let x = if x1 > x0 { x0..x1 } else { x0 - 0.5..x0 + 0.5 };
    let y = match (panel.y_range, span(&ys), panel.log_y) {
        (Some((lo, hi)), _, _) => lo..hi,
        (None, None, true) => 0.1..10.0,
        (None, None, false) => 0.0..1.0,
        (None, Some((lo, hi)), true) => lo / 1.25..hi * 1.25,
        (None, Some((lo, hi)), false) if hi > lo => {
            let pad = 0.05 * (hi - lo);
            lo - pad..hi + pad
        }
        (None, Some((v, _)), false) => v - 0.5 * v.abs().max(1.0)..v + 0.5 * v.abs().max(1.0),
    };
    (x, y)
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &Panel,
) -> Result<(), String> {
    let (x, y) = extent(panel);
    if panel.log_y {
        draw_in(area, panel, x, y.log_scale(), None)
    } else {
        let span = y.end - y.start;
        draw_in(area, panel, x, y, Some(span))
    }
}

fn draw_in<DB, Y>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    panel: &Panel,
    x: Range<f64>,
    y: Y,
    y_span: Option<f64>,
) -> Result<(), String>
where
    DB: DrawingBackend,
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
    RangedCoordf64: ValueFormatter<f64>,
{
    let (x0, x1) = (x.start, x.end);
    // Reference lines are labelled in the right margin, clear of the data.
    let ref_w = panel.refs.iter().map(|r| text_width(&r.1, 12.0) + 10).max();
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, (FONT, 15))
        .margin_top(6)
        .margin_left(6)
        .margin_right(ref_w.map_or(24, |w| w.max(24)))
        .margin_bottom(6)
        .x_label_area_size(42)
        .y_label_area_size(62)
        .build_cartesian_2d(x, y)
        .map_err(fail)?;
    let x_fmt = |v: &f64| axis_tick(*v, x1 - x0);
    let y_fmt = |v: &f64| match y_span {
        Some(span) => axis_tick(*v, span),
        None => tick(*v),
    };
    chart
        .configure_mesh()
        .x_desc(panel.x_label.as_str())
        .y_desc(panel.y_label.as_str())
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 13))
        .bold_line_style(BLACK.mix(0.08))
        .light_line_style(TRANSPARENT)
        .draw()
        .map_err(fail)?;
    let grey = RGBColor(120, 120, 120);
    for (level, label) in &panel.refs {
        chart
            .draw_series(DashedLineSeries::new(
                [(x0, *level), (x1, *level)],
                5,
                4,
                grey.stroke_width(1),
            ))
            .map_err(fail)?;
        let style = TextStyle::from((FONT, 12).into_font())
            .color(&grey)
            .pos(Pos::new(HPos::Left, VPos::Center));
        let (px, py) = chart.backend_coord(&(x1, *level));
        let (bx, by) = area.get_base_pixel();
        area.draw(&Text::new(label.clone(), (px - bx + 4, py - by), style))
            .map_err(fail)?;
    }
    for b in &panel.bars {
        let fill = b.color.mix(0.55).filled();
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(b.x.0, 0.0), (b.x.1, b.height)],
                fill,
            )))
            .map_err(fail)?;
    }
    let positive = |p: &&(f64, f64)| !panel.log_y || p.1 > 0.0;
    for l in &panel.lines {
        let points: Vec<(f64, f64)> = l.points.iter().filter(positive).copied().collect();
        if l.dashed {
            let series = DashedLineSeries::new(points, 6, 4, l.color.stroke_width(2));
            chart.draw_series(series).map_err(fail)?;
        } else {
            let series = LineSeries::new(points, l.color.stroke_width(2));
            chart.draw_series(series).map_err(fail)?;
        }
    }
    let style = TextStyle::from((FONT, 12).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
    for (nx, ny, text) in &panel.notes {
        chart
            .draw_series(std::iter::once(Text::new(
                text.clone(),
                (*nx, *ny),
                style.clone(),
            )))
            .map_err(fail)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_short() {
        assert_eq!(tick(0.0), "0");
        assert_eq!(tick(0.25), "0.25");
        assert_eq!(tick(0.3000000001), "0.3");
        assert_eq!(tick(1000.0), "1000");
        assert_eq!(tick(12.5), "12.5");
        assert_eq!(tick(2e6), "2.0e6");
    }

    #[test]
    fn axis_ticks_never_print_rounding_noise() {
        assert_eq!(axis_tick(-5.551115123125783e-17, 1.0), "0");
        assert_eq!(axis_tick(0.30000000000000004, 1.0), "0.3");
        assert_eq!(axis_tick(0.1 + 0.2, 0.5), "0.3");
        assert_eq!(axis_tick(4000.0, 8000.0), "4000");
        // a narrow axis far from zero keeps the digits that tell its ticks apart
        assert_eq!(axis_tick(1234.5, 0.6), "1234.5");
        assert_eq!(axis_tick(1234.6, 0.6), "1234.6");
        assert_eq!(axis_tick(0.02, 0.1), "0.02");
        assert_eq!(axis_tick(2e-5, 1e-4), "2.0e-5");
    }

    #[test]
    fn a_figure_draws_lines_bars_and_legend_as_svg() {
        let panel = Panel {
            title: "t".into(),
            x_label: "step".into(),
            y_label: "y".into(),
            lines: vec![Line {
                points: vec![(0.0, 1.0), (1.0, 2.0)],
                color: color(0),
                dashed: false,
            }],
            bars: vec![Bar {
                x: (0.0, 0.5),
                height: 1.0,
                color: color(1),
            }],
            refs: vec![(1.0, "1".into())],
            ..Panel::default()
        };
        let fig = Figure {
            title: "A figure".into(),
            panels: vec![
                panel.clone(),
                Panel {
                    log_y: true,
                    ..panel
                },
            ],
            legend: vec![Entry::line("run a", color(0))],
        };
        let svg = fig.to_svg().unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        for text in ["A figure", "run a", "step", "<polyline", "<rect"] {
            assert!(svg.contains(text), "{text}");
        }
    }
}
