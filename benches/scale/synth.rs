//! Synthetic caseloads for benchmarks: children entering care over the years, reviews on and
//! off schedule, recommendations that become decisions met or drifting, significant events,
//! social workers and IROs changing. No real personal data: every name is a role and a number,
//! every address is at `synthetic.example`.
//!
//! Seeded and reproducible: each case has its own random stream derived from the seed and the
//! case's number, so the first 10,000 cases of a 100,000-case caseload are the 10,000-case
//! caseload, and costs can be compared across sizes. `ChaCha8Rng` is used because its output is
//! documented as stable across `rand` versions.
#![allow(dead_code)]

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc, Weekday};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

/// What to generate.
#[derive(Debug, Clone)]
pub struct Shape {
    pub cases: usize,
    pub seed: u64,
    /// The moment the caseload is seen: no event happens after it.
    pub as_of: DateTime<Utc>,
    /// How far back children entered care.
    pub years: f64,
}

/// The moment caseloads are seen at by default: a Monday morning before the working day.
pub fn default_as_of() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 7, 0, 0)
        .single()
        .unwrap_or_default()
}

impl Shape {
    pub fn new(cases: usize, seed: u64) -> Shape {
        Shape {
            cases,
            seed,
            as_of: default_as_of(),
            years: 1.0,
        }
    }
}

/// One case's reference: `SYN-0000001`.
pub fn case_ref(n: usize) -> String {
    format!("SYN-{n:07}")
}

/// Every case's events, each case in time order.
pub fn caseload(shape: &Shape) -> Vec<Vec<Value>> {
    (0..shape.cases).map(|n| case(shape, n)).collect()
}

/// One case's events in time order, with ids `CASE-NNN`.
pub fn case(shape: &Shape, n: usize) -> Vec<Value> {
    let mut rng =
        ChaCha8Rng::seed_from_u64(shape.seed ^ (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut story = Story {
        case: case_ref(n),
        rng: &mut rng,
        events: Vec::new(),
        team: Team::of_case(n),
        start: shape.as_of,
    };
    story.tell(shape);
    let Story {
        case, mut events, ..
    } = story;
    events.retain(|(at, _, _)| *at <= shape.as_of);
    events.sort_by_key(|(at, _, _)| *at);
    events
        .into_iter()
        .enumerate()
        .map(|(i, (at, kind, data))| {
            json!({
                "id": format!("{case}-{i:03}"),
                "case": case,
                "type": kind,
                "at": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "data": data,
            })
        })
        .collect()
}

/// The people around a case, by number: neighbouring cases share them, about 18 children to a
/// social worker, 60 to an IRO and 7 social workers to a team manager. Derived from the case's
/// number alone, so a case is the same whatever the size of the caseload.
struct Team {
    social_worker: usize,
    iro: usize,
}

impl Team {
    fn of_case(n: usize) -> Team {
        Team {
            social_worker: n / 18,
            iro: n / 60,
        }
    }
}

fn person(kind: &str, n: usize) -> Value {
    json!({"name": format!("{} {n}", title_case(kind)), "email": format!("{kind}.{n}@synthetic.example")})
}

fn title_case(kind: &str) -> String {
    kind.split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

const LEGAL_BASES: [(&str, u32); 6] = [
    ("s31", 45),
    ("s20", 20),
    ("s38", 20),
    ("s44", 5),
    ("remand", 2),
    ("other", 8),
];

const SIGNIFICANT: [&str; 10] = [
    "placement_disruption",
    "unexpected_placement_change",
    "missing_from_placement",
    "health_event",
    "school_exclusion",
    "safeguarding_concern",
    "social_worker_change",
    "contact_arrangements_change",
    "complaint",
    "change_of_care_plan",
];

struct Story<'r> {
    case: String,
    rng: &'r mut ChaCha8Rng,
    events: Vec<(DateTime<Utc>, &'static str, Value)>,
    team: Team,
    /// When the child came into care: nothing else is recorded before it.
    start: DateTime<Utc>,
}

impl Story<'_> {
    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p.clamp(0.0, 1.0))
    }

    fn days(&mut self, low: i64, high: i64) -> Duration {
        Duration::days(self.rng.random_range(low..=high))
    }

    /// A moment in office hours on the same or the next weekday.
    fn office(&mut self, t: DateTime<Utc>) -> DateTime<Utc> {
        let mut day = t.date_naive();
        while matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
            day += Duration::days(1);
        }
        let minute = self.rng.random_range(9 * 60..17 * 60);
        moment(day, minute / 60, minute % 60)
    }

    /// An office moment between `low` and `high` days after `t`.
    fn office_after(&mut self, t: DateTime<Utc>, low: i64, high: i64) -> DateTime<Utc> {
        let shifted = t + self.days(low, high);
        self.office(shifted)
    }

    fn push(&mut self, at: DateTime<Utc>, kind: &'static str, data: Value) {
        let at = at.max(self.start);
        self.events.push((at, kind, data));
    }

    fn tell(&mut self, shape: &Shape) {
        let span = ((shape.years * 365.0) as i64).max(30);
        let start = self.office_after(shape.as_of, -span, -3);
        self.start = start;
        let basis = self.pick_basis();
        let born = start.date_naive() - self.days(30, 17 * 365);
        self.push(
            start,
            "child_looked_after",
            json!({"start": rfc(start), "legal_basis": basis, "date_of_birth": born.to_string()}),
        );
        // A third of children leave care within the span; the rest are still looked after.
        let end = self
            .chance(0.35)
            .then(|| start + self.days(60, span.max(61)))
            .map(|t| self.office(t));
        let end_at = end.unwrap_or(shape.as_of);
        let t = start + self.days(0, 2);
        self.allocate_social_worker(t);
        let t = self.office_after(start, 0, 3);
        self.push(t, "iro_service_notified", json!({}));
        let t = start + self.days(1, 10);
        self.allocate_iro(t);
        let t = self.office_after(start, 2, 15);
        self.push(t, "care_plan_updated", json!({}));
        if matches!(basis, "s31" | "s38") && self.chance(0.5) {
            self.proceedings(start, end_at);
        }
        self.reviews(start, end_at);
        self.happenings(start, end_at);
        if let Some(end) = end {
            self.push(end, "ceased_looked_after", json!({"ended_at": rfc(end)}));
        }
        // Nothing happens to a case after it closes.
        self.events.retain(|(at, _, _)| *at <= end_at);
    }

    /// A person near `n`: a new social worker or IRO usually comes from the same team.
    fn neighbour(&mut self, n: usize) -> usize {
        n + self.rng.random_range(0..3)
    }

    fn pick_basis(&mut self) -> &'static str {
        let total: u32 = LEGAL_BASES.iter().map(|(_, w)| w).sum();
        let mut roll = self.rng.random_range(0..total);
        for (basis, weight) in LEGAL_BASES {
            if roll < weight {
                return basis;
            }
            roll -= weight;
        }
        "other"
    }

    fn allocate_social_worker(&mut self, t: DateTime<Utc>) {
        let t = self.office(t);
        let sw = self.neighbour(self.team.social_worker);
        let tm = sw / 7;
        self.push(
            t,
            "social_worker_allocated",
            json!({"social_worker": person("social_worker", sw), "team_manager": person("team_manager", tm)}),
        );
    }

    fn allocate_iro(&mut self, t: DateTime<Utc>) {
        let t = self.office(t);
        let iro = self.neighbour(self.team.iro);
        self.push(t, "iro_allocated", json!({"iro": person("iro", iro)}));
    }

    fn proceedings(&mut self, start: DateTime<Utc>, end: DateTime<Utc>) {
        let t = self.office_after(start, 0, 5);
        let n = self.neighbour(self.team.social_worker);
        self.push(
            t,
            "proceedings_started",
            json!({"guardian": person("guardian", n), "legal_adviser": person("legal_adviser", n % 40)}),
        );
        let ended = self.office_after(t, 120, 300);
        if ended < end {
            self.push(ended, "proceedings_ended", json!({}));
        }
    }

    /// The review cycle: the first review about 20 working days in, the second three months
    /// after, then every six months; most on time, some late, a few moved.
    fn reviews(&mut self, start: DateTime<Utc>, end: DateTime<Utc>) {
        let mut due = start + Duration::days(28);
        let mut n = 1;
        while due < end + Duration::days(60) {
            let late = if self.chance(0.85) {
                -self.days(0, 7)
            } else {
                self.days(1, 30)
            };
            let meeting = self.meeting(due + late);
            let id = format!("R{n}");
            let booked = self
                .office_after(meeting, -35, -20)
                .max(start + Duration::hours(2));
            let participants = self.participants();
            self.push(
                booked,
                "review_scheduled",
                json!({"review_id": id, "meeting_at": rfc(meeting), "participants": participants}),
            );
            let meeting = if self.chance(0.1) {
                let later = meeting + self.days(3, 14);
                let moved = self.meeting(later);
                let t = self.office_after(booked, 1, 5);
                self.push(
                    t,
                    "review_rescheduled",
                    json!({"review_id": id, "meeting_at": rfc(moved)}),
                );
                moved
            } else {
                meeting
            };
            self.preparation(&id, booked, meeting);
            self.push(
                meeting + Duration::hours(2),
                "review_held",
                json!({"review_id": id, "held_at": rfc(meeting)}),
            );
            if self.chance(0.85) {
                let t = self.office_after(meeting, 5, 30);
                self.push(t, "record_distributed", json!({"review_id": id}));
            }
            self.recommendations(&id, meeting);
            if self.chance(0.6) {
                let t = self.office_after(meeting, 3, 20);
                self.push(t, "care_plan_updated", json!({}));
            }
            due = meeting
                + if n == 1 {
                    Duration::days(91)
                } else {
                    Duration::days(182)
                };
            n += 1;
        }
    }

    /// A meeting time: a weekday, on the hour, 09:00 to 15:00.
    fn meeting(&mut self, t: DateTime<Utc>) -> DateTime<Utc> {
        let mut day = t.date_naive();
        while matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
            day += Duration::days(1);
        }
        let hour = self.rng.random_range(9..=15);
        moment(day, hour, 0)
    }

    fn participants(&mut self) -> Value {
        let n = self.rng.random_range(1..=3);
        let roles = ["parent", "carer", "advocate"];
        Value::Array(
            roles[..n]
                .iter()
                .map(|role| {
                    json!({"name": format!("{} of {}", title_case(role), self.case),
                           "email": format!("{role}.{}@synthetic.example", self.case.to_lowercase()),
                           "role": role})
                })
                .collect(),
        )
    }

    fn preparation(&mut self, id: &str, booked: DateTime<Utc>, meeting: DateTime<Utc>) {
        let steps = [
            ("social_worker_consulted", 0.9, 15, 20),
            ("invitations_sent", 0.8, 14, 18),
            ("reports_submitted", 0.8, 2, 6),
        ];
        for (kind, p, low, high) in steps {
            if self.chance(p) {
                let t = self
                    .office_after(meeting, -high, -low)
                    .max(booked + Duration::hours(1));
                self.push(t, kind, json!({"review_id": id}));
            }
        }
    }

    /// Recommendations after a review; most completed, some late, some drifting, a few queried.
    fn recommendations(&mut self, id: &str, meeting: DateTime<Utc>) {
        if self.chance(0.1) {
            return;
        }
        let issued = self.office_after(meeting, 1, 4);
        let count = self.rng.random_range(1..=4);
        let mut items = Vec::new();
        for k in 1..=count {
            let due = (meeting + self.days(20, 90)).date_naive();
            let rec = format!("{id}-{k}");
            let owner = self.neighbour(self.team.social_worker);
            items.push(
                json!({"id": rec, "owner": person("social_worker", owner), "due": due.to_string()}),
            );
            if self.chance(0.08) {
                let t = self.office_after(issued, 1, 4);
                self.push(
                    t,
                    "recommendation_queried",
                    json!({"recommendation_id": rec}),
                );
            }
            let due_at = moment(due, 12, 0);
            if self.chance(0.75) {
                let t = self
                    .office_after(due_at, -15, 25)
                    .max(issued + Duration::days(6));
                self.push(t, "decision_completed", json!({"recommendation_id": rec}));
            } else if self.chance(0.3) {
                let t = self.office_after(due_at, 10, 60);
                self.push(t, "drift_resolved", json!({"recommendation_id": rec}));
            }
        }
        self.push(
            issued,
            "recommendations_issued",
            json!({"review_id": id, "recommendations": items}),
        );
    }

    /// Month by month: significant events (about one a year), new social workers and IROs.
    fn happenings(&mut self, start: DateTime<Utc>, end: DateTime<Utc>) {
        let mut month = start + Duration::days(30);
        while month < end {
            if self.chance(0.08) {
                let occurred =
                    month + self.days(0, 29) + Duration::hours(self.rng.random_range(0..24));
                let kind = SIGNIFICANT[self.rng.random_range(0..SIGNIFICANT.len())];
                let told = occurred + Duration::hours(self.rng.random_range(1..48));
                self.push(
                    told,
                    "significant_event",
                    json!({"kind": kind, "occurred_at": rfc(occurred)}),
                );
                if self.chance(0.7) {
                    let t = self.office_after(told, 1, 5);
                    self.push(t, "early_review_decided", json!({}));
                }
            }
            if self.chance(0.02) {
                let t = month + self.days(0, 29);
                self.allocate_social_worker(t);
            }
            if self.chance(0.01) {
                let t = month + self.days(0, 29);
                self.allocate_iro(t);
            }
            month += Duration::days(30);
        }
    }
}

fn moment(day: NaiveDate, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day.and_hms_opt(hour, minute, 0).unwrap_or_default())
}

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `count` cases whose review invitations all fall due at one moment, ten working days before
/// `meeting` (a weekday 09:00): each child came into care 200 days before, with a review booked.
/// With `participants`, each review has one participant, so the wave is one email per case.
/// (Under the shipped rules these cases also have overdue obligations; the wave benchmark runs
/// them under the invitations rule alone.)
pub fn wave(count: usize, meeting: DateTime<Utc>, participants: bool) -> Vec<Vec<Value>> {
    (0..count)
        .map(|n| {
            let case = format!("WAVE-{n:07}");
            let start = meeting - Duration::days(200);
            let at = |days: i64| rfc(start + Duration::days(days));
            let mut events = vec![
                json!({"type": "child_looked_after", "at": at(0), "data": {"start": at(0), "legal_basis": "s31", "date_of_birth": "2015-01-01"}}),
                json!({"type": "social_worker_allocated", "at": at(0), "data": {"social_worker": person("social_worker", n / 18), "team_manager": person("team_manager", n / 126)}}),
                json!({"type": "iro_service_notified", "at": at(1), "data": {}}),
                json!({"type": "iro_allocated", "at": at(1), "data": {"iro": person("iro", n / 60)}}),
                json!({"type": "care_plan_updated", "at": at(2), "data": {}}),
            ];
            let mut booking = json!({"review_id": "R3", "meeting_at": rfc(meeting)});
            if participants {
                booking["participants"] = json!([{"name": format!("Parent of {case}"), "email": format!("parent.{}@synthetic.example", case.to_lowercase()), "role": "parent"}]);
            }
            events.push(json!({"type": "review_scheduled", "at": rfc(meeting - Duration::days(40)), "data": booking}));
            for (i, e) in events.iter_mut().enumerate() {
                e["id"] = json!(format!("{case}-{i:03}"));
                e["case"] = json!(case);
            }
            events
        })
        .collect()
}
