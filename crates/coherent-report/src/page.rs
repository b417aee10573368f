//! The two pages of a report: `report.html`, self-contained (SVGs inlined, styles in the page,
//! nothing fetched), and `report.md`, which links the SVG files beside it.

use crate::plots::Plot;
use crate::spearman::SeedGroup;
use crate::table::Table;

/// What a page shows, in order.
pub struct Page<'a> {
    /// The heading.
    pub title: String,
    /// The run directories, as given.
    pub sources: Vec<String>,
    /// The summary table.
    pub table: &'a Table,
    /// The plots with their SVG text.
    pub plots: Vec<(&'a Plot, &'a str)>,
    /// Learning-time agreement across seeds.
    pub seeds: &'a [SeedGroup],
}

/// Escapes text for HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn rho(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.3}")
    } else {
        "-".into()
    }
}

/// The seed-agreement table: group, seeds, mean correlations, each pair.
fn seed_table(groups: &[SeedGroup]) -> Table {
    Table {
        header: [
            "runs (differing only in seed)",
            "seeds",
            "mean rho: all",
            "pristine",
            "corrupt",
            "pairs",
        ]
        .map(String::from)
        .to_vec(),
        rows: groups
            .iter()
            .map(|g| {
                let pairs: Vec<String> = g
                    .pairs
                    .iter()
                    .map(|(a, b, r)| format!("{a}-{b}: {}", rho(*r)))
                    .collect();
                vec![
                    g.label.clone(),
                    g.seeds.join(", "),
                    rho(g.all),
                    rho(g.pristine),
                    rho(g.corrupt),
                    pairs.join("; "),
                ]
            })
            .collect(),
    }
}

const SEEDS_TEXT: &str = "Spearman rank correlation of the examples' learning times between \
    every pair of seeds (average ranks for ties; examples never learned rank after all the \
    others, tied), averaged over the pairs; also over the pristine and the corrupted examples \
    alone.";

fn html_table(t: &Table) -> String {
    let mut s = String::from("<table>\n<thead><tr>");
    for h in &t.header {
        s.push_str(&format!("<th>{}</th>", escape(h)));
    }
    s.push_str("</tr></thead>\n<tbody>\n");
    for row in &t.rows {
        s.push_str("<tr>");
        for c in row {
            s.push_str(&format!("<td>{}</td>", escape(c)));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody>\n</table>\n");
    s
}

fn md_table(t: &Table) -> String {
    let cell = |c: &str| c.replace('|', "\\|");
    let mut s = format!(
        "| {} |\n",
        t.header
            .iter()
            .map(|h| cell(h))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    s.push_str(&format!("|{}\n", " --- |".repeat(t.header.len())));
    for row in &t.rows {
        s.push_str(&format!(
            "| {} |\n",
            row.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | ")
        ));
    }
    s
}

const STYLE: &str =
    "body{font-family:sans-serif;margin:2em auto;max-width:1500px;padding:0 1em;color:#222}\
table{border-collapse:collapse;margin:1em 0;font-size:14px}\
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}\
th{background:#f3f3f3}tbody tr:nth-child(even){background:#fafafa}\
figure{margin:1em 0}figure svg{max-width:100%;height:auto}\
p.caption{max-width:60em}code{background:#f3f3f3;padding:0 3px}";

impl Page<'_> {
    /// The self-contained HTML page.
    pub fn html(&self) -> String {
        let mut s = format!(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n<p>Runs: {}</p>\n<h2>Summary</h2>\n",
            escape(&self.title),
            escape(&self.title),
            self.sources.iter().map(|s| format!("<code>{}</code>", escape(s))).collect::<Vec<_>>().join(", "),
        );
        s.push_str(&html_table(self.table));
        for (plot, svg) in &self.plots {
            s.push_str(&format!(
                "<h2>{}</h2>\n<p class=\"caption\">{}</p>\n<figure>\n{}\n</figure>\n",
                escape(plot.heading),
                escape(&plot.caption),
                svg.trim()
            ));
        }
        if !self.seeds.is_empty() {
            s.push_str(&format!(
                "<h2>Learning-time agreement across seeds</h2>\n<p class=\"caption\">{}</p>\n",
                escape(SEEDS_TEXT)
            ));
            s.push_str(&html_table(&seed_table(self.seeds)));
        }
        s.push_str("</body>\n</html>\n");
        s
    }

    /// The Markdown page, linking the SVG files by name.
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "# {}\n\nRuns: {}\n\n## Summary\n\n",
            self.title,
            self.sources
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        s.push_str(&md_table(self.table));
        for (plot, _) in &self.plots {
            s.push_str(&format!(
                "\n## {}\n\n{}\n\n![{}]({})\n",
                plot.heading, plot.caption, plot.heading, plot.file
            ));
        }
        if !self.seeds.is_empty() {
            s.push_str(&format!(
                "\n## Learning-time agreement across seeds\n\n{SEEDS_TEXT}\n\n"
            ));
            s.push_str(&md_table(&seed_table(self.seeds)));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_escape_their_cells() {
        let t = Table {
            header: vec!["a".into(), "b".into()],
            rows: vec![vec!["x<y".into(), "p|q".into()]],
        };
        assert!(html_table(&t).contains("<td>x&lt;y</td><td>p|q</td>"));
        assert_eq!(md_table(&t), "| a | b |\n| --- | --- |\n| x<y | p\\|q |\n");
    }
}
