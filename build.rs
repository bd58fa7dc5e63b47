//! The migrations are embedded by `sqlx::migrate!`, which cargo does not know to watch: without
//! this, a new migration file is missed until some Rust source changes (as sqlx's docs advise).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
