//! driftwatch's integration tests, one binary: each part in its own module (named as the
//! file), sharing `common` (in-process helpers: the shipped config, events, an independent
//! working-day reckoner) and `support` (the real daemon on a free port, a real SMTP server,
//! webhook receiver, PostgreSQL databases and a proxy to cut them off). One binary links once,
//! and `cargo test --test it PART::` runs one part (`cargo test --test it faults::`).

mod common;
mod support;

/// The benchmarks' synthetic caseload, which the model-based test and its own tests use.
#[path = "../../benches/scale/synth.rs"]
mod caseload;

mod ack;
mod architecture;
mod calendar;
mod cli;
mod daemon;
mod dashboard;
mod faults;
mod golive;
mod hostile;
mod lawful;
mod message;
mod model;
mod outbox;
mod planner;
mod preview;
mod probe14;
mod report;
mod rule_tests;
mod rules_errors;
mod scheduler;
mod schema;
mod store;
mod synth;
