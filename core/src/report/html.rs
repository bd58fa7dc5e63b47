//! The annual report as one self-contained HTML page for the corporate parenting board: inline
//! CSS and SVG, no script, nothing fetched, each section on its own A4 page when printed. Every
//! figure carries a numbered note defining it. Renders only what [`Report`] holds: cases by
//! reference, IROs by name, never a child's name or free text from events.

use super::{CASELOAD_GUIDANCE, MonthTimeliness, Report};
use crate::localtime;
use chrono::NaiveDate;
use std::fmt::Write;

const STYLE: &str = r#"
@page { size: A4; margin: 14mm 14mm 16mm 14mm; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; font-size: 10.5pt; color: #1b1b1b; margin: 0; }
main { max-width: 182mm; margin: 0 auto; padding: 6mm 0; }
section { break-before: page; page-break-before: always; break-inside: avoid; }
section:first-of-type { break-before: auto; page-break-before: auto; }
h1 { font-size: 20pt; margin: 0 0 2mm; }
h2 { font-size: 14pt; margin: 0 0 3mm; border-bottom: 2px solid #1d4f91; padding-bottom: 1mm; color: #1d4f91; }
h3 { font-size: 11pt; margin: 4mm 0 1mm; }
p { margin: 1.5mm 0; }
.lead { color: #444; }
.figures { display: flex; gap: 4mm; margin: 4mm 0; }
.figure { flex: 1; border: 1px solid #c9d3e0; border-radius: 2mm; padding: 3mm; }
.figure .n { font-size: 20pt; font-weight: bold; color: #1d4f91; }
.figure .what { font-size: 9pt; color: #333; }
table { border-collapse: collapse; width: 100%; font-size: 9pt; margin: 2mm 0; }
th, td { border-bottom: 1px solid #d8dde6; padding: 1mm 1.5mm; text-align: right; vertical-align: top; }
th:first-child, td:first-child { text-align: left; }
th { background: #eef2f8; }
svg { display: block; margin: 1mm 0; }
.timescale { font-size: 8.5pt; color: #333; margin: 0 0 2mm; }
.empty { font-style: italic; color: #555; }
.key span { display: inline-block; width: 3mm; height: 3mm; margin: 0 1mm 0 3mm; vertical-align: middle; }
ol.notes { font-size: 7.5pt; color: #444; margin: 3mm 0 0; padding-left: 5mm; border-top: 1px solid #ccc; padding-top: 1.5mm; }
sup { font-size: 7pt; color: #1d4f91; }
"#;

const ON_TIME: &str = "#2e7d32";
const LATE: &str = "#f9a825";
const OVERDUE: &str = "#c62828";
/// Children in care, and caseloads below the band.
const CARE: &str = "#1d4f91";

/// Text for HTML.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `2027-01` as `Jan`.
fn short_month(month: &str) -> String {
    NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
        .map(|d| d.format("%b").to_string())
        .unwrap_or_else(|_| month.to_string())
}

/// A section's notes: each figure's definition, numbered within the section.
#[derive(Default)]
struct Notes(Vec<String>);

impl Notes {
    /// The marker for a figure, its definition kept for the section's foot.
    fn mark(&mut self, definition: &str) -> String {
        self.0.push(definition.to_string());
        format!("<sup>{}</sup>", self.0.len())
    }

    fn render(&self, out: &mut String) {
        if self.0.is_empty() {
            return;
        }
        out.push_str("<ol class=\"notes\">");
        for n in &self.0 {
            let _ = write!(out, "<li>{}</li>", esc(n));
        }
        out.push_str("</ol>");
    }
}

/// The page.
pub fn page(r: &Report) -> String {
    let period = match (r.from, r.to) {
        (Some(from), Some(to)) => format!(
            "{} to {}",
            localtime::date_in_words(from),
            localtime::date_in_words(to)
        ),
        _ => String::new(),
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html><html lang=\"en-GB\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>IRO annual report: {}</title><style>{STYLE}</style></head><body><main>",
        esc(&period)
    );
    children(&mut out, r, &period);
    reviews(&mut out, r);
    rules(&mut out, r);
    caseloads(&mut out, r);
    drift(&mut out, r);
    attention(&mut out, r);
    out.push_str("</main></body></html>\n");
    out
}

fn children(out: &mut String, r: &Report, period: &str) {
    let mut notes = Notes::default();
    let c = &r.children;
    let _ = write!(
        out,
        "<section id=\"children\"><h1>Independent Reviewing Officer service: annual report</h1>\
         <p class=\"lead\">{}{}</p><h2>Children looked after</h2>",
        esc(period),
        r.as_at.map_or_else(String::new, |t| format!(
            ". Figures as at {}.",
            esc(&localtime::in_words(t))
        ))
    );
    if c.in_period == 0 {
        out.push_str("<p class=\"empty\">No child was looked after in this period.</p>");
    } else {
        let average = c
            .monthly_average
            .map_or_else(|| "–".to_string(), |a| format!("{a:.1}"));
        let cards = [
            (
                average,
                "monthly average looked after",
                "Monthly average: the number of children looked after at the end of each month of the period (its last day, or the end of the period for its last month), averaged over the months.",
            ),
            (
                c.started.to_string(),
                "started to be looked after",
                "Started: periods of care that began in the period (a child who came into care twice counts twice).",
            ),
            (
                c.ceased.to_string(),
                "ceased to be looked after",
                "Ceased: periods of care that ended in the period.",
            ),
            (
                c.in_period.to_string(),
                "looked after at some time",
                "Looked after at some time: children with a period of care overlapping the period.",
            ),
        ];
        out.push_str("<div class=\"figures\">");
        for (n, what, definition) in cards {
            let _ = write!(
                out,
                "<div class=\"figure\"><div class=\"n\">{}</div><div class=\"what\">{}{}</div></div>",
                esc(&n),
                esc(what),
                notes.mark(definition)
            );
        }
        out.push_str("</div><h3>Looked after at the end of each month</h3>");
        let columns: Vec<(&str, Vec<(usize, &str)>)> = c
            .by_month
            .iter()
            .map(|m| (m.month.as_str(), vec![(m.looked_after, CARE)]))
            .collect();
        month_columns(
            out,
            "Children looked after at the end of each month",
            190.0,
            &columns,
        );
    }
    notes.render(out);
    out.push_str("</section>");
}

/// One column per month (`2027-01`), each a stack of (count, colour) from the bottom, with its
/// total above it and the month's short name below. `height` is the chart's, in the SVG's units
/// (680 wide).
fn month_columns(
    out: &mut String,
    label: &str,
    height: f64,
    columns: &[(&str, Vec<(usize, &str)>)],
) {
    let total = |stack: &[(usize, &str)]| stack.iter().map(|(n, _)| n).sum::<usize>();
    let max = columns
        .iter()
        .map(|(_, stack)| total(stack))
        .max()
        .unwrap_or(0)
        .max(1);
    let (width, base) = (680.0, height - 22.0);
    let slot = (width - 40.0) / columns.len().max(1) as f64;
    let _ = write!(
        out,
        "<svg viewBox=\"0 0 {width} {height}\" width=\"100%\" role=\"img\" aria-label=\"{}\">",
        esc(label)
    );
    for (i, (month, stack)) in columns.iter().enumerate() {
        let x = 30.0 + i as f64 * slot;
        let mut y = base;
        for (n, colour) in stack {
            let h = *n as f64 / max as f64 * (base - 16.0);
            y -= h;
            if *n > 0 {
                let _ = write!(
                    out,
                    "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{colour}\"/>",
                    slot * 0.7
                );
            }
        }
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">{}</text>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\" text-anchor=\"middle\">{}</text>",
            x + slot * 0.35,
            y - 3.0,
            total(stack),
            x + slot * 0.35,
            base + 13.0,
            esc(&short_month(month))
        );
    }
    let _ = write!(
        out,
        "<line x1=\"28\" y1=\"{base}\" x2=\"{}\" y2=\"{base}\" stroke=\"#555\"/></svg>",
        width - 8.0
    );
}

fn reviews(out: &mut String, r: &Report) {
    let mut notes = Notes::default();
    out.push_str("<section id=\"reviews\"><h2>Review timeliness</h2>");
    let held: usize = r
        .reviews
        .iter()
        .flat_map(|s| &s.months)
        .map(MonthTimeliness::total)
        .sum();
    if held == 0 {
        out.push_str("<p class=\"empty\">No review fell due in this period.</p>");
    } else {
        let _ = write!(
            out,
            "<p class=\"key\">By the month each review was due{}: \
             <span style=\"background:{ON_TIME}\"></span>held on time \
             <span style=\"background:{LATE}\"></span>held late \
             <span style=\"background:{OVERDUE}\"></span>still overdue</p>",
            notes.mark("Reviews: obligations met by a review being held (the rules' case model names that event). On time: held by the deadline; late: held after it; still overdue: not held and past its deadline when the report was made. Lateness is in statutory working days (weekends and bank holidays excluded).")
        );
        for series in &r.reviews {
            let on_time: usize = series.months.iter().map(|m| m.on_time).sum();
            let late: usize = series.months.iter().map(|m| m.late).sum();
            let overdue: usize = series.months.iter().map(|m| m.overdue).sum();
            let _ = write!(
                out,
                "<h3>{}: {on_time} on time, {late} late, {overdue} overdue</h3>",
                esc(&series.title)
            );
            if on_time + late + overdue == 0 {
                out.push_str("<p class=\"empty\">None fell due in this period.</p>");
            } else {
                let columns: Vec<(&str, Vec<(usize, &str)>)> = series
                    .months
                    .iter()
                    .map(|m| {
                        let stack =
                            vec![(m.on_time, ON_TIME), (m.late, LATE), (m.overdue, OVERDUE)];
                        (m.month.as_str(), stack)
                    })
                    .collect();
                month_columns(out, &series.title, 120.0, &columns);
            }
            let _ = write!(
                out,
                "<p class=\"timescale\">Statutory timescale: {}. {}</p>",
                esc(&series.timescale),
                esc(&series.source)
            );
        }
    }
    notes.render(out);
    out.push_str("</section>");
}

fn rules(out: &mut String, r: &Report) {
    let mut notes = Notes::default();
    out.push_str("<section id=\"rules\"><h2>Timeliness by duty</h2>");
    if r.rules.is_empty() {
        out.push_str("<p class=\"empty\">No obligation fell due in this period.</p>");
    } else {
        let _ = write!(
            out,
            "<p>Record distribution, invitations, recommendations becoming decisions, care-plan \
             updates and every other duty in the council's rules, by the day each was due.</p>\
             <table><thead><tr><th>Duty</th><th>Due{}</th><th>On time{}</th><th>Late{}</th>\
             <th>Overdue{}</th><th>Not done{}</th><th>Cancelled{}</th><th>On time %{}</th></tr></thead><tbody>",
            notes.mark("Due: obligations whose deadline fell in the period."),
            notes.mark("On time: met by the deadline."),
            notes.mark("Late: met after the deadline."),
            notes.mark("Overdue: not met and past the deadline when the report was made."),
            notes.mark("Not done: no longer possible (papers not sent before the meeting was held)."),
            notes.mark("Cancelled: no longer required (the review was cancelled, the child left care)."),
            notes.mark("On time %: on time as a share of on time, late, overdue and not done, rounded down; – when there are none."),
        );
        for f in &r.rules {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&f.title),
                f.due,
                f.met_on_time,
                f.met_late,
                f.overdue,
                f.not_done,
                f.cancelled,
                f.on_time_percent
                    .map_or_else(|| "–".to_string(), |p| format!("{p}%"))
            );
        }
        out.push_str("</tbody></table>");
    }
    notes.render(out);
    out.push_str("</section>");
}

fn caseloads(out: &mut String, r: &Report) {
    let mut notes = Notes::default();
    let _ = write!(
        out,
        "<section id=\"caseloads\"><h2>IRO caseloads</h2><p>Children looked after allocated to \
         each IRO{}, against the {}–{} band of the IRO Handbook{}.</p>",
        notes.mark("Caseload: looked-after children whose allocated IRO this is, as the cases stand when the report was made."),
        CASELOAD_GUIDANCE.0,
        CASELOAD_GUIDANCE.1,
        notes.mark("The IRO Handbook: a caseload of 50 to 70 children for a full-time IRO represents good practice."),
    );
    if r.caseloads.is_empty() {
        out.push_str("<p class=\"empty\">No child has an allocated IRO.</p>");
    } else {
        let n = r.caseloads.len();
        let max = r
            .caseloads
            .iter()
            .map(|c| c.children)
            .max()
            .unwrap_or(0)
            .max(CASELOAD_GUIDANCE.1 + 10);
        let bar = (600.0 / n as f64).clamp(6.0, 22.0);
        let (left, width) = (190.0, 470.0);
        let height = bar * n as f64 + 24.0;
        let scale = |c: usize| left + c as f64 / max as f64 * width;
        let _ = write!(
            out,
            "<svg viewBox=\"0 0 680 {height:.0}\" width=\"100%\" role=\"img\" aria-label=\"IRO caseloads\">\
             <rect x=\"{:.1}\" y=\"0\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#e3f0e3\"/>",
            scale(CASELOAD_GUIDANCE.0),
            scale(CASELOAD_GUIDANCE.1) - scale(CASELOAD_GUIDANCE.0),
            bar * n as f64
        );
        let font = (bar * 0.7).clamp(5.0, 11.0);
        for (i, c) in r.caseloads.iter().enumerate() {
            let y = i as f64 * bar;
            let colour = match c.guidance {
                "over" => OVERDUE,
                "within" => ON_TIME,
                _ => CARE,
            };
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"{font:.1}\" text-anchor=\"end\">{}</text>\
                 <rect x=\"{left}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"{font:.1}\">{}</text>",
                left - 4.0,
                y + bar * 0.75,
                esc(&c.iro),
                y + bar * 0.12,
                scale(c.children) - left,
                bar * 0.76,
                scale(c.children) + 3.0,
                y + bar * 0.75,
                c.children
            );
        }
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\" text-anchor=\"middle\">{}</text>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\" text-anchor=\"middle\">{}</text></svg>",
            scale(CASELOAD_GUIDANCE.0),
            bar * n as f64 + 14.0,
            CASELOAD_GUIDANCE.0,
            scale(CASELOAD_GUIDANCE.1),
            bar * n as f64 + 14.0,
            CASELOAD_GUIDANCE.1
        );
        let over = r.caseloads.iter().filter(|c| c.guidance == "over").count();
        let within = r
            .caseloads
            .iter()
            .filter(|c| c.guidance == "within")
            .count();
        let _ = write!(
            out,
            "<p>{n} IROs: {within} within the band, {over} above it, {} below it.</p>",
            n - over - within
        );
    }
    notes.render(out);
    out.push_str("</section>");
}

fn drift(out: &mut String, r: &Report) {
    let mut notes = Notes::default();
    out.push_str("<section id=\"drift\"><h2>Drift and delay challenged</h2>");
    if r.drift.rules.is_empty() {
        out.push_str("<p class=\"empty\">No escalation was raised in this period.</p>");
    } else {
        let _ = write!(
            out,
            "<table><thead><tr><th>Duty and stage of escalation</th><th>Raised{}</th>\
             <th>Resolved{}</th><th>Median working days{}</th><th>Longest</th></tr></thead><tbody>",
            notes.mark("Raised: escalation stages whose time came in the period, each counted once however many people were told; for a duty, the obligations escalated."),
            notes.mark("Resolved: escalated obligations since met, or ended by the IRO recording the matter resolved."),
            notes.mark("Working days to resolve: statutory working days from the deadline to the day it was met or resolved; the median and the longest of those resolved."),
        );
        for e in &r.drift.rules {
            let days = |d: Option<i32>| d.map_or_else(|| "–".to_string(), |d| d.to_string());
            let _ = write!(
                out,
                "<tr><td><strong>{}</strong></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&e.title),
                e.obligations,
                e.resolved,
                days(e.median_working_days),
                days(e.longest_working_days)
            );
            for (stage, n) in &e.stages {
                let _ = write!(
                    out,
                    "<tr><td>&nbsp;&nbsp;{}</td><td>{n}</td><td></td><td></td><td></td></tr>",
                    esc(stage)
                );
            }
        }
        out.push_str("</tbody></table>");
    }
    let _ = write!(
        out,
        "<p>Referrals to Cafcass considered{}: <strong>{}</strong></p>",
        notes.mark("Referrals to Cafcass considered: escalation stages raised whose title names Cafcass (the last stage of the dispute-resolution ladder)."),
        r.drift.cafcass_referrals_considered
    );
    let _ = write!(
        out,
        "<h3>Events notified at once{}</h3>",
        notes.mark("Events notified at once: events (significant events and others the rules send a notice for) that caused a message in the period, each counted once, by type and kind.")
    );
    if r.notified.is_empty() {
        out.push_str("<p class=\"empty\">No event was notified at once in this period.</p>");
    } else {
        out.push_str("<table><thead><tr><th>Event</th><th>Notified</th></tr></thead><tbody>");
        for (label, n) in &r.notified {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{n}</td></tr>",
                esc(&label.replace('_', " ").replace('/', ": "))
            );
        }
        out.push_str("</tbody></table>");
    }
    notes.render(out);
    out.push_str("</section>");
}

fn attention(out: &mut String, r: &Report) {
    let mut notes = Notes::default();
    let a = &r.attention;
    out.push_str("<section id=\"attention\"><h2>Needs attention</h2>");
    let _ = write!(
        out,
        "<h3>Duties whose timeliness fell{}</h3>",
        notes.mark(&format!("Fell: on time % in the second half of the period at least {} points below the first half.", super::FALL_POINTS))
    );
    if a.falling.is_empty() {
        out.push_str("<p class=\"empty\">None.</p>");
    } else {
        out.push_str("<table><thead><tr><th>Duty</th><th>First half</th><th>Second half</th></tr></thead><tbody>");
        for f in &a.falling {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}%</td><td>{}%</td></tr>",
                esc(&f.title),
                f.first_half_percent,
                f.second_half_percent
            );
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("<h3>IROs above the caseload band</h3>");
    if a.over_guidance.is_empty() {
        out.push_str("<p class=\"empty\">None.</p>");
    } else {
        out.push_str("<table><thead><tr><th>IRO</th><th>Children</th></tr></thead><tbody>");
        for c in &a.over_guidance {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td></tr>",
                esc(&c.iro),
                c.children
            );
        }
        out.push_str("</tbody></table>");
    }
    let _ = write!(
        out,
        "<h3>Overdue longest{}</h3>",
        notes.mark(&format!("Overdue longest: the {} obligations overdue longest when the report was made, by case reference, in statutory working days past the day they were due.", super::OVERDUE_LONGEST))
    );
    if a.overdue_longest.is_empty() {
        out.push_str("<p class=\"empty\">Nothing is overdue.</p>");
    } else {
        out.push_str("<table><thead><tr><th>Case</th><th>Duty</th><th>Due</th><th>Working days late</th></tr></thead><tbody>");
        for o in &a.overdue_longest {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&o.case),
                esc(&o.title),
                esc(&localtime::short_date_in_words(o.due)),
                o.working_days_late
            );
        }
        out.push_str("</tbody></table>");
    }
    notes.render(out);
    out.push_str("</section>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_period_says_so_in_every_section() {
        let page = page(&Report::default());
        for said in [
            "No child was looked after in this period.",
            "No review fell due in this period.",
            "No obligation fell due in this period.",
            "No child has an allocated IRO.",
            "No escalation was raised in this period.",
            "Nothing is overdue.",
        ] {
            assert!(page.contains(said), "{said}");
        }
        assert!(!page.contains("<svg"), "no empty chart is drawn");
        assert!(!page.contains("<script") && !page.contains("http"));
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc("<b>\"A&B\"</b>"),
            "&lt;b&gt;&quot;A&amp;B&quot;&lt;/b&gt;"
        );
    }
}
