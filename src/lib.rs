//! driftwatch keeps English councils' looked-after child reviews on time.
//!
//! This crate is the shell; the pure core is the `driftwatch-core` crate (`core/`), whose modules
//! are re-exported here at the same paths. The core computes, from a case's events, the rules,
//! the working-day calendar and the current time, every obligation and notification, with no
//! I/O:
//! - [`calendar`]: working days, bank holidays, offsets;
//! - [`rules`]: the YAML rules language, checked on load;
//! - [`planner`]: obligations, deadlines, reminders and escalations for a case;
//! - [`case_write`] and [`outbox`]: what the store keeps of a plan, and how catching up informs
//!   instead of flooding;
//! - [`links`] and [`feed`]: signed links and the iCalendar feed.
//!
//! Also pure, still in the shell: [`snapshot`] (a caseload CSV into events), [`explain`],
//! [`notify::retry`] and [`ruletest`] (an admin's rule tests, each case planned at the moments
//! the test names).
//!
//! The shell reads files and talks to people: [`config`] loads what the core needs; [`store`]
//! keeps events, obligations and the outbox; [`service`] stores events and re-plans their cases
//! ([`caseload`] hands it an imported file a few cases at a time);
//! [`scheduler`] sends what is due through [`notify`]; [`api`] is the HTTP interface, which
//! [`serve`] serves within limits; [`daemon`] wires them together with the injectable [`clock`];
//! [`telemetry`] exports metrics.

pub use driftwatch_core::{
    calendar, case_write, checks, dashboard, diagnostic, event, explain, expr, feed, links,
    localtime, message, outbox, planner, preview, report, rules,
};

pub mod api;
pub mod app;
pub mod caseload;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod digest;
pub mod http;
pub mod inbox;
pub mod notify;
pub mod ruletest;
pub mod scheduler;
pub mod serve;
pub mod service;
pub mod snapshot;
pub mod sources;
pub mod store;
pub mod telemetry;
pub mod web;
