//! Line charts for the book, drawn as SVG from measured points: a title,
//! grid lines with their labels, the axes' names, one line per series
//! named at its right end, and a footer saying where the data came from.
//! The caller maps its values to pixels (linear or logarithmic axes are
//! its choice) and says what the ticks read.

use std::fmt::Write as _;

/// The picture's size and the margins around the plot.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    pub width: f64,
    pub height: f64,
    pub left: f64,
    pub right: f64,
    pub top: f64,
    pub bottom: f64,
}

impl Frame {
    /// The plot's width and height, inside the margins.
    pub fn plot(&self) -> (f64, f64) {
        (self.width - self.left - self.right, self.height - self.top - self.bottom)
    }
}

/// One line: its name, its colour and its points, in pixels.
#[derive(Debug, Clone)]
pub struct Series<'a> {
    pub name: &'a str,
    pub colour: &'a str,
    pub points: Vec<(f64, f64)>,
}

/// Everything a chart shows; ticks are (position in pixels, label).
#[derive(Debug, Clone)]
pub struct LineChart<'a> {
    pub frame: Frame,
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub x_ticks: Vec<(f64, String)>,
    pub y_ticks: Vec<(f64, String)>,
    pub series: Vec<Series<'a>>,
    pub footer: String,
}

/// The chart as an SVG document.
pub fn svg(c: &LineChart<'_>) -> String {
    let f = c.frame;
    let (w, h, left, top) = (f.width, f.height, f.left, f.top);
    let (plot_w, plot_h) = f.plot();
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" font-family="Helvetica, Arial, sans-serif" font-size="13">"#
    );
    let _ = writeln!(s, r##"  <rect x="0" y="0" width="{w}" height="{h}" fill="#ffffff"/>"##);
    let _ = writeln!(
        s,
        r##"  <text x="{}" y="28" text-anchor="middle" font-size="17" font-weight="bold" fill="#111827">{}</text>"##,
        w / 2.0,
        c.title
    );
    for (yy, label) in &c.y_ticks {
        let _ =
            writeln!(s, r##"  <line x1="{left}" y1="{yy:.1}" x2="{}" y2="{yy:.1}" stroke="#e5e7eb"/>"##, left + plot_w);
        let _ = writeln!(
            s,
            r##"  <text x="{}" y="{:.1}" text-anchor="end" font-size="12" fill="#4b5563">{label}</text>"##,
            left - 8.0,
            yy + 4.0
        );
    }
    for (xx, label) in &c.x_ticks {
        let _ =
            writeln!(s, r##"  <line x1="{xx:.1}" y1="{top}" x2="{xx:.1}" y2="{}" stroke="#e5e7eb"/>"##, top + plot_h);
        let _ = writeln!(
            s,
            r##"  <text x="{xx:.1}" y="{}" text-anchor="middle" font-size="12" fill="#4b5563">{label}</text>"##,
            top + plot_h + 18.0
        );
    }
    let _ = writeln!(
        s,
        r##"  <text x="{}" y="{}" text-anchor="middle" fill="#111827">{}</text>"##,
        left + plot_w / 2.0,
        top + plot_h + 42.0,
        c.x_label
    );
    let _ = writeln!(
        s,
        r##"  <text transform="rotate(-90)" x="{}" y="20" text-anchor="middle" fill="#111827">{}</text>"##,
        -(top + plot_h / 2.0),
        c.y_label
    );
    let mut labels: Vec<(f64, f64, &str, &str)> = Vec::new();
    for line in &c.series {
        let path: Vec<String> = line.points.iter().map(|(px, py)| format!("{px:.1},{py:.1}")).collect();
        let _ = writeln!(
            s,
            r#"  <polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>"#,
            path.join(" "),
            line.colour
        );
        for (px, py) in &line.points {
            let _ = writeln!(s, r#"  <circle cx="{px:.1}" cy="{py:.1}" r="3.5" fill="{}"/>"#, line.colour);
        }
        if let Some(&(px, py)) = line.points.last() {
            labels.push((px + 8.0, py + 4.0, line.name, line.colour));
        }
    }
    // Names at the right end, moved apart where lines end close together.
    labels.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut last_y = f64::MIN;
    for (lx, ly, name, colour) in labels {
        let ly = ly.max(last_y + 15.0);
        last_y = ly;
        let _ = writeln!(s, r#"  <text x="{lx:.1}" y="{ly:.1}" fill="{colour}">{name}</text>"#);
    }
    let _ = writeln!(s, r##"  <text x="12" y="{}" font-size="11" fill="#4b5563">{}</text>"##, h - 12.0, c.footer);
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_is_drawn_and_close_names_are_moved_apart() {
        let frame = Frame { width: 400.0, height: 300.0, left: 50.0, right: 100.0, top: 50.0, bottom: 50.0 };
        let chart = LineChart {
            frame,
            title: "T",
            x_label: "X",
            y_label: "Y",
            x_ticks: vec![(50.0, "1".into()), (300.0, "10".into())],
            y_ticks: vec![(250.0, "0".into())],
            series: vec![
                Series { name: "a", colour: "#000001", points: vec![(50.0, 100.0), (300.0, 100.0)] },
                Series { name: "b", colour: "#000002", points: vec![(300.0, 102.0)] },
            ],
            footer: "from here".into(),
        };
        let svg = svg(&chart);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        for part in [">T</text>", ">X</text>", ">Y</text>", ">10</text>", ">from here</text>", "50.0,100.0 300.0,100.0"]
        {
            assert!(svg.contains(part), "{part} in {svg}");
        }
        assert!(
            svg.contains(r##"y="104.0" fill="#000001">a<"##) && svg.contains(r##"y="119.0" fill="#000002">b<"##),
            "{svg}"
        );
    }
}
