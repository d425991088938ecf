//! The report: one line per scenario (two columns with a peer), the first mismatch under a
//! failure, and the summary line `N passed, M failed, K skipped`.

use serde_json::{json, Value};

use crate::runner::Outcome;

/// One scenario's result for our server and, optionally, the peer.
#[derive(Clone, Debug)]
pub struct Row {
    pub name: String,
    pub description: String,
    pub ours: Outcome,
    pub peer: Option<Outcome>,
}

/// Counts of one column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    pub differs: usize,
}

impl Summary {
    /// Counts the outcomes.
    pub fn of<'a>(outcomes: impl Iterator<Item = &'a Outcome>) -> Self {
        let mut s = Self::default();
        for o in outcomes {
            match o {
                Outcome::Pass => s.passed += 1,
                Outcome::Fail(_) => s.failed += 1,
                Outcome::Skipped(_) => s.skipped += 1,
                Outcome::Differs(_) => s.differs += 1,
            }
        }
        s
    }

    /// `N passed, M failed, K skipped` (plus `, D differ (documented)` when there are any).
    pub fn line(&self) -> String {
        let mut line = format!(
            "{} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        );
        if self.differs > 0 {
            line.push_str(&format!(", {} differ (documented)", self.differs));
        }
        line
    }
}

fn label(o: &Outcome) -> &'static str {
    match o {
        Outcome::Pass => "pass",
        Outcome::Fail(_) => "FAIL",
        Outcome::Skipped(_) => "skipped",
        Outcome::Differs(_) => "differs (documented)",
    }
}

fn detail(o: &Outcome) -> Option<&str> {
    match o {
        Outcome::Pass => None,
        Outcome::Fail(d) | Outcome::Skipped(d) | Outcome::Differs(d) => Some(d),
    }
}

/// The human-readable report.
pub fn text(rows: &[Row]) -> String {
    let with_peer = rows.iter().any(|r| r.peer.is_some());
    let mut out = String::new();
    if with_peer {
        out.push_str(&format!("{:<8} {:<22} scenario\n", "ours", "peer"));
    }
    for row in rows {
        match &row.peer {
            Some(peer) if with_peer => out.push_str(&format!(
                "{:<8} {:<22} {}\n",
                label(&row.ours),
                label(peer),
                row.name
            )),
            _ if with_peer => out.push_str(&format!(
                "{:<8} {:<22} {}\n",
                label(&row.ours),
                "-",
                row.name
            )),
            _ => out.push_str(&format!("{:<8} {}\n", label(&row.ours), row.name)),
        }
        for (who, o) in [("ours", Some(&row.ours)), ("peer", row.peer.as_ref())] {
            if let Some(Outcome::Fail(d) | Outcome::Differs(d)) = o {
                let prefix = if with_peer {
                    format!("{who}: ")
                } else {
                    String::new()
                };
                out.push_str(&format!("    {prefix}{}\n", d.replace('\n', "\n    ")));
            }
        }
    }
    if with_peer {
        out.push_str(&format!(
            "peer: {}\n",
            Summary::of(rows.iter().filter_map(|r| r.peer.as_ref())).line()
        ));
    }
    out.push_str(&Summary::of(rows.iter().map(|r| &r.ours)).line());
    out.push('\n');
    out
}

fn outcome_json(o: &Outcome) -> Value {
    json!({"status": label(o).split(' ').next().unwrap_or("").to_lowercase(), "detail": detail(o)})
}

/// The machine-readable report (`--json`).
pub fn json(rows: &[Row]) -> Value {
    let scenarios: Vec<Value> = rows
        .iter()
        .map(|r| json!({"name": r.name, "description": r.description, "ours": outcome_json(&r.ours), "peer": r.peer.as_ref().map(outcome_json)}))
        .collect();
    let ours = Summary::of(rows.iter().map(|r| &r.ours));
    let peer = rows
        .iter()
        .any(|r| r.peer.is_some())
        .then(|| Summary::of(rows.iter().filter_map(|r| r.peer.as_ref())));
    let sum = |s: Summary| json!({"passed": s.passed, "failed": s.failed, "skipped": s.skipped, "differs": s.differs, "line": s.line()});
    json!({"scenarios": scenarios, "summary": sum(ours), "peer_summary": peer.map(sum)})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_line_counts_each_outcome() {
        let rows = vec![
            Row {
                name: "a".into(),
                description: String::new(),
                ours: Outcome::Pass,
                peer: None,
            },
            Row {
                name: "b".into(),
                description: String::new(),
                ours: Outcome::Fail("at /id: expected 1, got 2".into()),
                peer: None,
            },
            Row {
                name: "c".into(),
                description: String::new(),
                ours: Outcome::Skipped("--scenario".into()),
                peer: None,
            },
        ];
        assert_eq!(text(&rows), "pass     a\nFAIL     b\n    at /id: expected 1, got 2\nskipped  c\n1 passed, 1 failed, 1 skipped\n");
    }

    #[test]
    fn a_peer_gets_its_own_column_and_summary() {
        let rows = vec![Row {
            name: "unknown-method".into(),
            description: String::new(),
            ours: Outcome::Pass,
            peer: Some(Outcome::Differs("-32600".into())),
        }];
        let report = text(&rows);
        assert!(
            report.contains("pass     differs (documented)   unknown-method\n    peer: -32600\n"),
            "{report}"
        );
        assert!(report.ends_with("peer: 0 passed, 0 failed, 0 skipped, 1 differ (documented)\n1 passed, 0 failed, 0 skipped\n"), "{report}");
    }
}
