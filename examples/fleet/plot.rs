//! The load plot: one panel per scenario, token-endpoint requests per second on a log scale,
//! one line per policy, the capacity as a grey line and the outage shaded.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::sim::RunResult;

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),  // blue
    RGBColor(214, 39, 40),   // red
    RGBColor(255, 127, 14),  // orange
    RGBColor(44, 160, 44),   // green
    RGBColor(148, 103, 189), // purple
    RGBColor(140, 86, 75),   // brown
];

/// `runs` grouped by scenario (in order), each group in policy order.
pub fn plot(
    path: &std::path::Path,
    groups: &[Vec<&RunResult>],
    capacity: u32,
) -> Result<(), Box<dyn std::error::Error>> {
    let height = 330 * groups.len() as u32;
    let root = SVGBackend::new(path, (1000, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((groups.len(), 1));
    for (panel, runs) in panels.iter().zip(groups) {
        panel_for(panel, runs, capacity)?;
    }
    root.present()?;
    Ok(())
}

fn panel_for(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    runs: &[&RunResult],
    capacity: u32,
) -> Result<(), Box<dyn std::error::Error>> {
    let Some(first) = runs.first() else {
        return Ok(());
    };
    let scenario = first.scenario;
    let end_s = scenario.window_s.1;
    let top = runs
        .iter()
        .flat_map(|r| r.load.iter().map(|l| l.offered()))
        .max()
        .unwrap_or(1)
        .max(capacity);
    let y_max = 10f64.powf((f64::from(top) * 1.5).log10().ceil());
    let caption = match scenario.outage_ms {
        Some((a, b)) => format!(
            "{}: {} devices, token endpoint down from {} to {} min (figures from {} min)",
            scenario.name(),
            thousands(first.devices),
            a / 60_000,
            b / 60_000,
            scenario.window_s.0 / 60
        ),
        None if scenario.boot_spread_ms <= 1000 => format!(
            "{}: {} devices log in within the same second at t = 0",
            scenario.name(),
            thousands(first.devices)
        ),
        None => format!(
            "{}: {} devices booted over the first {} s (figures from {} min)",
            scenario.name(),
            thousands(first.devices),
            scenario.boot_spread_ms / 1000,
            scenario.window_s.0 / 60
        ),
    };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..end_s as f64 / 60.0, (1f64..y_max).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("minutes")
        .y_desc("token endpoint requests / s")
        .x_label_formatter(&|m| format!("{m:.0}"))
        .y_label_formatter(&|n| thousands(n.round() as usize))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    if let Some((a, b)) = scenario.outage_ms {
        chart.draw_series(std::iter::once(Rectangle::new(
            [(a as f64 / 60_000.0, 1.0), (b as f64 / 60_000.0, y_max)],
            RGBColor(0, 0, 0).mix(0.08).filled(),
        )))?;
    }
    chart
        .draw_series(LineSeries::new(
            [
                (0.0, f64::from(capacity)),
                (end_s as f64 / 60.0, f64::from(capacity)),
            ],
            RGBColor(120, 120, 120).stroke_width(1),
        ))?
        .label(format!(
            "capacity ({} requests/s)",
            thousands(capacity as usize)
        ))
        .legend(|(x, y)| {
            PathElement::new(
                [(x, y), (x + 20, y)],
                RGBColor(120, 120, 120).stroke_width(1),
            )
        });
    let mut extra = 3;
    for run in runs {
        // The same colour for a policy in every panel (and every plot).
        let color = match run.policy.as_str() {
            "default" => COLORS[0],
            name if name.starts_with("fixed-") => COLORS[1],
            "no-jitter" => COLORS[2],
            _ => {
                extra += 1;
                COLORS[(extra - 1) % COLORS.len()]
            }
        };
        let points = envelope(run, end_s);
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(1)))?
            .label(run.policy.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        // Where the lines are not: below the load, or above it beside the outage's storm.
        .position(if scenario.outage_ms.is_some() {
            SeriesLabelPosition::UpperLeft
        } else {
            SeriesLabelPosition::LowerRight
        })
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    Ok(())
}

/// The per-second load as a line, keeping only each few seconds' lowest and highest values (in
/// the order they came): at the plot's width it draws the same, in a fraction of the bytes.
fn envelope(run: &RunResult, end_s: u64) -> Vec<(f64, f64)> {
    let per_bin = (end_s as usize).div_ceil(600).max(1);
    let load: Vec<u32> = run
        .load
        .iter()
        .take(end_s as usize)
        .map(|l| l.offered().max(1))
        .collect();
    let mut points = Vec::new();
    for (b, bin) in load.chunks(per_bin).enumerate() {
        let extreme = |better: fn(u32, u32) -> bool| {
            (0..bin.len()).fold(
                0,
                |best, i| if better(bin[i], bin[best]) { i } else { best },
            )
        };
        let (lo, hi) = (extreme(|a, b| a < b), extreme(|a, b| a > b));
        let mut keep = vec![lo.min(hi), lo.max(hi)];
        keep.dedup();
        for i in keep {
            points.push(((b * per_bin + i) as f64 / 60.0, f64::from(bin[i])));
        }
    }
    points
}

/// `100000` as `100,000`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
