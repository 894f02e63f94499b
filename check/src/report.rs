//! The result of a run: one row per check (check, route, error, tolerance, verdict), a
//! readable table with a one-line summary, and JSON for machines.

use std::fmt::{self, Write as _};

use serde::Serialize;

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Fail,
    /// Not applicable here, or not runnable (the reason is in the row's detail).
    Skip,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "skip",
        })
    }
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// `group/what`, e.g. `gradient/jvp vs finite differences`.
    pub check: String,
    /// The route of the endpoint under test (`native`, `looped`, ...), `-` if none.
    pub route: String,
    /// The measured error (relative unless the detail says otherwise), if one was measured.
    pub error: Option<f64>,
    /// What the error was judged against.
    pub tolerance: Option<f64>,
    pub verdict: Verdict,
    /// Why it failed or was skipped; empty for a plain pass.
    pub detail: String,
}

/// Every check of one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// The component's name and version.
    pub component: String,
    pub seed: u64,
    pub rows: Vec<Row>,
}

fn count(rows: &[Row], v: Verdict) -> usize {
    rows.iter().filter(|r| r.verdict == v).count()
}

fn number(x: Option<f64>) -> String {
    match x {
        None => "-".into(),
        Some(0.0) => "0".into(),
        Some(x) => format!("{x:.1e}"),
    }
}

/// The name of the row for apply at a base point (` @N` is appended with several points).
/// Every other check needs apply's outputs there, so this row says whether anything ran.
pub(crate) const APPLY: &str = "contract/apply";

/// What an inconclusive report says after its counts.
const INCONCLUSIVE: &str = "inconclusive: no check ran at a valid base point; \
     give regression cases whose inputs the component accepts (--inputs @cases.json)";

impl Report {
    /// Whether the run tested the component and no check failed.
    ///
    /// False when the report is [`inconclusive`](Report::inconclusive): checks that could not
    /// run are not a pass.
    pub fn passed(&self) -> bool {
        self.failures().next().is_none() && self.applied()
    }

    /// Whether no check failed but none ran at a valid base point either: the component
    /// refused every generated input, or no input could be generated from its schema. Give
    /// it regression cases whose inputs it accepts (`--inputs @cases.json`,
    /// [`Options::cases`](crate::Options::cases)).
    pub fn inconclusive(&self) -> bool {
        self.failures().next().is_none() && !self.applied()
    }

    /// Whether apply was judged (pass or fail) at some base point.
    fn applied(&self) -> bool {
        self.rows.iter().any(|r| {
            r.verdict != Verdict::Skip
                && r.check
                    .strip_prefix(APPLY)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(" @"))
        })
    }

    /// The failed rows.
    pub fn failures(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.verdict == Verdict::Fail)
    }

    /// `name 0.1: 12 passed, 1 failed, 2 skipped`, then why when the report is inconclusive
    /// (the reason is in the skipped apply or inputs row's detail).
    pub fn summary(&self) -> String {
        let counts = format!(
            "{}: {} passed, {} failed, {} skipped",
            self.component,
            count(&self.rows, Verdict::Pass),
            count(&self.rows, Verdict::Fail),
            count(&self.rows, Verdict::Skip)
        );
        if self.inconclusive() {
            format!("{counts}; {INCONCLUSIVE}")
        } else {
            counts
        }
    }

    /// The report as a JSON value (`component`, `seed`, `passed`, `inconclusive`, `summary`,
    /// `rows`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "component": self.component,
            "seed": self.seed,
            "passed": self.passed(),
            "inconclusive": self.inconclusive(),
            "summary": self.summary(),
            "rows": self.rows,
        })
    }

    /// The readable table: one line per check, details indented under failures and skips,
    /// then the summary line.
    pub fn table(&self) -> String {
        let header = ["check", "route", "error", "tolerance", "verdict"];
        let cells: Vec<[String; 5]> = self
            .rows
            .iter()
            .map(|r| {
                [
                    r.check.clone(),
                    r.route.clone(),
                    number(r.error),
                    number(r.tolerance),
                    r.verdict.to_string(),
                ]
            })
            .collect();
        let mut widths = header.map(|h| h.chars().count());
        for row in &cells {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cols: [&str; 5]| -> String {
            let mut s = String::new();
            for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
                let pad = w.saturating_sub(c.chars().count());
                if i == 2 || i == 3 {
                    let _ = write!(s, "{}{c}  ", " ".repeat(pad));
                } else {
                    let _ = write!(s, "{c}{}  ", " ".repeat(pad));
                }
            }
            s.trim_end().to_owned()
        };
        let mut out = line(header) + "\n";
        for (row, r) in cells.iter().zip(&self.rows) {
            out += &line([&row[0], &row[1], &row[2], &row[3], &row[4]]);
            out.push('\n');
            if r.verdict != Verdict::Pass && !r.detail.is_empty() {
                let _ = writeln!(out, "    {}", r.detail);
            }
        }
        out += &self.summary();
        out.push('\n');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(check: &str, verdict: Verdict) -> Row {
        Row {
            check: check.into(),
            route: "native".into(),
            error: Some(1.5e-9),
            tolerance: Some(1e-6),
            verdict,
            detail: if verdict == Verdict::Pass {
                String::new()
            } else {
                "because".into()
            },
        }
    }

    #[test]
    fn table_aligns_columns_and_shows_details_of_failures() {
        let report = Report {
            component: "t 0.1".into(),
            seed: 1,
            rows: vec![
                row("gradient/jvp", Verdict::Pass),
                row("determinism/apply", Verdict::Fail),
            ],
        };
        let table = report.table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0].find("route"), lines[1].find("native"));
        assert!(lines[1].contains("1.5e-9") && lines[1].ends_with("pass"));
        assert!(lines[2].ends_with("FAIL"));
        assert_eq!(lines[3], "    because");
        assert_eq!(lines[4], "t 0.1: 1 passed, 1 failed, 0 skipped");
        assert!(!report.passed());
        assert_eq!(report.to_json()["rows"][1]["verdict"], "fail");
    }

    fn report(rows: Vec<Row>) -> Report {
        Report {
            component: "t 0.1".into(),
            seed: 0,
            rows,
        }
    }

    #[test]
    fn a_report_passes_only_if_apply_ran_at_some_base_point() {
        // Only optional checks skipped, apply ran: a pass.
        let ran = report(vec![
            row(APPLY, Verdict::Pass),
            row("gradient/jacobian vs jvp", Verdict::Skip),
        ]);
        assert!(ran.passed() && !ran.inconclusive());
        // apply refused the generated inputs: nothing was tested.
        let refused = report(vec![row(APPLY, Verdict::Skip)]);
        assert!(!refused.passed() && refused.inconclusive());
        assert_eq!(
            refused.summary(),
            format!("t 0.1: 0 passed, 0 failed, 1 skipped; {INCONCLUSIVE}")
        );
        assert!(refused.table().ends_with(&format!("{INCONCLUSIVE}\n")));
        // No base point at all.
        let none = report(vec![row("inputs", Verdict::Skip)]);
        assert!(!none.passed() && none.inconclusive());
        // One of several base points is enough; a row merely named like apply is not.
        let second = report(vec![
            row(&format!("{APPLY} @1"), Verdict::Skip),
            row(&format!("{APPLY} @2"), Verdict::Pass),
        ]);
        assert!(second.passed());
        let lookalike = report(vec![row(&format!("{APPLY}x"), Verdict::Pass)]);
        assert!(lookalike.inconclusive());
        // A failure is a failure, whether or not apply ran.
        let failed = report(vec![
            row(APPLY, Verdict::Skip),
            row("regression/case 1 (apply)", Verdict::Fail),
        ]);
        assert!(!failed.passed() && !failed.inconclusive());
    }
}
