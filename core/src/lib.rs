//! The pure core of driftwatch: from a case's events, the rules, the working-day calendar and
//! the current time, every obligation and notification, with no I/O. Nothing here reads a
//! clock, a file, a database or the network: `Cargo.toml` gives this crate no async runtime,
//! database, HTTP or SMTP crate, and `clippy.toml` keeps `std::fs` and `Utc::now` out of it.
//! The `driftwatch` crate (the shell) reads files, stores, serves and sends.
//!
//! - [`calendar`]: working days (statutory and the council's), bank holidays, offsets;
//! - [`rules`]: the YAML rules language, checked on load from text ([`sources`]);
//! - [`expr`]: conditions and templates (MiniJinja);
//! - [`event`]: the event envelope and its checks;
//! - [`planner`]: obligations, deadlines, reminders and escalations for a case;
//! - [`message`]: what a notification says, rendered from its template;
//! - [`case_write`] and [`outbox`]: what the store keeps of a plan, in the state the go-live and
//!   catch-up policy gives each message;
//! - [`checks`] and [`report`]: the cross-case checks and the IRO annual report (figures,
//!   table, CSV and the board's HTML page);
//! - [`dashboard`]: the overdue and due-soon tables and a case's timeline, for the web pages;
//! - [`explain`]: a rule in plain English with an example timeline;
//! - [`preview`]: what a change of rules would move, case by case;
//! - [`localtime`]: Europe/London time in words, working hours;
//! - [`links`] and [`feed`]: signed acknowledgement and feed links, and the iCalendar feed;
//! - [`snapshot`]: a council's CSV export of its caseload turned into events, for going live;
//! - [`diagnostic`]: problems as `file:line:column: message`.

pub mod calendar;
pub mod case_write;
pub mod checks;
pub mod dashboard;
pub mod diagnostic;
pub mod digest;
pub mod event;
pub mod explain;
pub mod expr;
pub mod feed;
pub mod links;
pub mod localtime;
pub mod message;
pub mod outbox;
pub mod planner;
pub mod preview;
pub mod report;
pub mod rules;
pub mod snapshot;
pub mod sources;
